/**
 * Storage of organisations' custom OpenAI-compatible endpoints. The API key is sealed with the
 * AEAD, bound to org and endpoint by the associated data, and is write-only: `list`/`get` report
 * only whether one is set; `openOrg` (for the model resolver's cache only) opens it.
 */
import type { ColumnType, Kysely } from 'kysely';
import { z } from 'zod';
import type { Aead } from '../core/aead.js';
import type { Clock } from '../core/clock.js';
import type { Database, Db } from '../store/db/index.js';
import { maxInputTokensSchema, maxOutputTokensSchema, priceSchema } from './config.js';

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

export const CUSTOM_ALIAS_PATTERN = /^[A-Za-z0-9._:/-]{1,128}$/;
const modelName = z.string().regex(CUSTOM_ALIAS_PATTERN, 'use letters, digits and . _ : / - (at most 128)');
/** A model an org serves from its endpoint: its alias, the upstream name, and optionally a price (integer micro-units per million tokens). */
const customModelSchema = z
  .object({ alias: modelName, upstream: modelName, price: priceSchema.optional(), maxOutputTokens: maxOutputTokensSchema.optional(), maxInputTokens: maxInputTokensSchema.optional() })
  .strict();
export const customModelsSchema = z
  .array(customModelSchema)
  .min(1)
  .max(100)
  .refine((models) => new Set(models.map((m) => m.alias)).size === models.length, 'aliases must be unique');
export type CustomModel = z.infer<typeof customModelSchema>;

export interface CustomEndpointView {
  endpointId: string;
  baseUrl: string;
  hasKey: boolean;
  models: CustomModel[];
  updatedAt: string;
}

/** An endpoint with its key opened: what the model resolver caches; never shown to anyone. */
export interface OpenedEndpoint {
  endpointId: string;
  baseUrl: string;
  apiKey: string | null;
  models: CustomModel[];
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

  /**
   * Writes the endpoint if `conflict` (shown the org's endpoints as they are now) finds nothing
   * wrong, and answers its verdict. The org's row is locked for the check and the write, so two
   * writes at once cannot both pass a check the other would fail (the same alias on two
   * endpoints, one endpoint over the limit). `baseUrl` must already have passed
   * `checkCustomEndpoint`; `apiKey` undefined keeps the stored key, null clears it.
   */
  async put(
    orgId: string,
    endpointId: string,
    input: { baseUrl: string; apiKey?: string | null; models: CustomModel[] },
    actor: string,
    conflict: (existing: readonly CustomEndpointView[]) => string | null = () => null,
  ): Promise<string | null> {
    const models = JSON.stringify(customModelsSchema.parse(input.models));
    const updatedAt = new Date(this.clock.now());
    const keyFields =
      input.apiKey === undefined
        ? {}
        : input.apiKey === null
          ? { sealed_key: null, key_id: null }
          : { sealed_key: this.aead.seal(input.apiKey, associatedData(orgId, endpointId)), key_id: this.aead.activeKeyId };
    return this.#db.transaction().execute(async (trx) => {
      await trx.selectFrom('orgs').select('id').where('id', '=', orgId).forUpdate().executeTakeFirst();
      const existing = await trx.selectFrom('org_custom_endpoints').selectAll().where('org_id', '=', orgId).orderBy('endpoint_id').execute();
      const verdict = conflict(existing.map(toView));
      if (verdict !== null) return verdict;
      await trx
        .insertInto('org_custom_endpoints')
        .values({ org_id: orgId, endpoint_id: endpointId, base_url: input.baseUrl, models, updated_by: actor, updated_at: updatedAt, sealed_key: null, key_id: null, ...keyFields })
        .onConflict((onConflict) => onConflict.columns(['org_id', 'endpoint_id']).doUpdateSet({ base_url: input.baseUrl, models, updated_by: actor, updated_at: updatedAt, ...keyFields }))
        .execute();
      return null;
    });
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

  /** Every endpoint of this org only, keys opened, in endpoint-id order; for the model resolver's cache. */
  async openOrg(orgId: string): Promise<OpenedEndpoint[]> {
    const rows = await this.#db.selectFrom('org_custom_endpoints').selectAll().where('org_id', '=', orgId).orderBy('endpoint_id').execute();
    return rows.map((row) => ({
      endpointId: row.endpoint_id,
      baseUrl: row.base_url,
      apiKey: row.sealed_key === null ? null : this.aead.open(row.sealed_key, associatedData(orgId, row.endpoint_id)).toString('utf8'),
      models: parseModels(row.models),
    }));
  }
}

function toView(row: { endpoint_id: string; base_url: string; sealed_key: string | null; models: string; updated_at: Date }): CustomEndpointView {
  return { endpointId: row.endpoint_id, baseUrl: row.base_url, hasKey: row.sealed_key !== null, models: parseModels(row.models), updatedAt: new Date(row.updated_at).toISOString() };
}
