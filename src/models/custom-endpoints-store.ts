/**
 * Storage of organisations' custom OpenAI-compatible endpoints. The API key is sealed with the
 * AEAD, bound to org and endpoint by the associated data, and is write-only: `list`/`get` report
 * only whether one is set; `resolveModel` (request path only) opens it.
 */
import type { ColumnType, Kysely } from 'kysely';
import { z } from 'zod';
import type { Aead } from '../core/aead.js';
import type { Clock } from '../core/clock.js';
import type { Database, Db } from '../store/db/index.js';

type OrgCustomEndpointsTable = {
  org_id: string;
  endpoint_id: string;
  base_url: string;
  sealed_key: string | null;
  key_id: string | null;
  models: string;
  updated_by: string;
  updated_at: ColumnType<Date, Date | undefined, Date>;
};

type EndpointDb = Kysely<Database & { org_custom_endpoints: OrgCustomEndpointsTable }>;

const modelName = z.string().min(1).max(128).regex(/^[A-Za-z0-9._:/-]+$/);
export const customModelsSchema = z.array(z.object({ alias: modelName, upstream: modelName })).min(1).max(100);
export type CustomModel = z.infer<typeof customModelsSchema>[number];

export interface CustomEndpointView {
  endpointId: string;
  baseUrl: string;
  hasKey: boolean;
  models: CustomModel[];
  updatedAt: string;
}

export interface ResolvedCustomModel {
  endpointId: string;
  baseUrl: string;
  apiKey: string | null;
  upstreamModel: string;
}

function associatedData(orgId: string, endpointId: string): string {
  return `org-custom-endpoint:${orgId}:${endpointId}`;
}

function parseModels(raw: string): CustomModel[] {
  const parsed = customModelsSchema.safeParse(JSON.parse(raw));
  return parsed.success ? parsed.data : [];
}

export class OrgCustomEndpoints {
  readonly #db: EndpointDb;

  constructor(db: Db, private readonly aead: Aead, private readonly clock: Clock) {
    this.#db = db.withTables<{ org_custom_endpoints: OrgCustomEndpointsTable }>();
  }

  /** `baseUrl` must already have passed `checkCustomEndpoint`; `apiKey` undefined keeps the stored key, null clears it. */
  async put(orgId: string, endpointId: string, input: { baseUrl: string; apiKey?: string | null; models: CustomModel[] }, actor: string): Promise<void> {
    const models = JSON.stringify(customModelsSchema.parse(input.models));
    const updatedAt = new Date(this.clock.now());
    const keyFields =
      input.apiKey === undefined
        ? {}
        : input.apiKey === null
          ? { sealed_key: null, key_id: null }
          : { sealed_key: this.aead.seal(input.apiKey, associatedData(orgId, endpointId)), key_id: this.aead.activeKeyId };
    await this.#db
      .insertInto('org_custom_endpoints')
      .values({ org_id: orgId, endpoint_id: endpointId, base_url: input.baseUrl, models, updated_by: actor, updated_at: updatedAt, sealed_key: null, key_id: null, ...keyFields })
      .onConflict((conflict) => conflict.columns(['org_id', 'endpoint_id']).doUpdateSet({ base_url: input.baseUrl, models, updated_by: actor, updated_at: updatedAt, ...keyFields }))
      .execute();
  }

  async remove(orgId: string, endpointId: string): Promise<boolean> {
    const result = await this.#db.deleteFrom('org_custom_endpoints').where('org_id', '=', orgId).where('endpoint_id', '=', endpointId).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async get(orgId: string, endpointId: string): Promise<CustomEndpointView | null> {
    const row = await this.#db.selectFrom('org_custom_endpoints').selectAll().where('org_id', '=', orgId).where('endpoint_id', '=', endpointId).executeTakeFirst();
    return row === undefined ? null : toView(row);
  }

  async list(orgId: string): Promise<CustomEndpointView[]> {
    const rows = await this.#db.selectFrom('org_custom_endpoints').selectAll().where('org_id', '=', orgId).orderBy('endpoint_id').execute();
    return rows.map(toView);
  }

  /** The endpoint serving `alias` for this org only, with its opened key; null when the org has none. */
  async resolveModel(orgId: string, alias: string): Promise<ResolvedCustomModel | null> {
    const rows = await this.#db.selectFrom('org_custom_endpoints').selectAll().where('org_id', '=', orgId).orderBy('endpoint_id').execute();
    for (const row of rows) {
      const model = parseModels(row.models).find((m) => m.alias === alias);
      if (model === undefined) continue;
      const apiKey = row.sealed_key === null ? null : this.aead.open(row.sealed_key, associatedData(orgId, row.endpoint_id)).toString('utf8');
      return { endpointId: row.endpoint_id, baseUrl: row.base_url, apiKey, upstreamModel: model.upstream };
    }
    return null;
  }
}

function toView(row: { endpoint_id: string; base_url: string; sealed_key: string | null; models: string; updated_at: Date }): CustomEndpointView {
  return { endpointId: row.endpoint_id, baseUrl: row.base_url, hasKey: row.sealed_key !== null, models: parseModels(row.models), updatedAt: new Date(row.updated_at).toISOString() };
}
