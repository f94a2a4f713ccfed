/**
 * The route fuzz shared by the embedded and distributed suites: requests derived from the
 * gateway's own OpenAPI document — bodies built from each route's request schema and then bent in
 * one place (a wrong type, a bound overstepped, a NUL character, a lone surrogate, an extra field
 * under a plain, prototype-polluting, control-character or huge name), path parameters that are
 * valid, foreign or malformed, query values likewise — sent as every kind of caller (platform
 * admin, org member, anonymous). A finding is any answer that is not a deliberate one: a 500 (or a
 * 5xx outside the model routes), a stack trace, a refusal that is not in the JSON error shape, or
 * one whose message repeats input raw (a control character, a lone surrogate) or at length. The
 * sequence is seeded, so a finding names a request to replay.
 */
import { expect } from 'vitest';
import { LONE_SURROGATE } from '../../src/core/text.js';

interface JsonSchema {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  allOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
}

interface Parameter {
  name: string;
  in: string;
  schema?: JsonSchema;
}

interface Operation {
  parameters?: Parameter[];
  requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
}

interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, JsonSchema> };
}

function asText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** mulberry32: small, fast, and the same sequence for the same seed. */
function seededRandom(seed: number): () => number {
  let state = seed | 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Values that bend a field: wrong types, bounds overstepped, text the stores cannot keep. */
/** Names of an extra field: plain, prototype-polluting, and ones an error must not repeat raw or whole. */
const BENT_KEYS: readonly string[] = ['extra', '__proto__', 'constructor', 'a\u0000b', '\ud800', '\u001b[31m', 'k'.repeat(5_000)];
const BENT_VALUES: readonly unknown[] = [null, -1, 0, 2 ** 53, 1e308, -1e308, 0.5, '', 'a\u0000b', '\ud800', 'x'.repeat(70_000), [], {}, true, '0', '__proto__', '../x', ' ', 'http://169.254.169.254/latest'];
/** Path parameters a caller may invent: none of them names anything of theirs. */
const BENT_PARAMS: readonly string[] = ['%00', 'x', '..', 'org_AAAAAAAAAAAAAAAA', '%E2%80%AE', 'a'.repeat(300)];
/** Routes that would end the fuzz's own credentials or org; their refusals are tested elsewhere. */
const SELF_DESTRUCTIVE = /rotate-pepper|^DELETE \/api\/orgs\/\{orgId\}$|^DELETE .*\/keys\/|^DELETE .*\/members\/|^PATCH \/api\/users\/|^POST \/api\/auth\/(logout|password|mfa\/disable)$/;

class RequestGenerator {
  readonly #random: () => number;

  constructor(
    private readonly doc: OpenApiDocument,
    private readonly ids: { orgId: string; userId: string },
    seed: number,
  ) {
    this.#random = seededRandom(seed);
  }

  chance(p: number): boolean {
    return this.#random() < p;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.#random() * items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }

  resolve(schema: JsonSchema | undefined): JsonSchema {
    if (schema?.$ref === undefined) return schema ?? {};
    const name = schema.$ref.split('/').at(-1) ?? '';
    return this.resolve(this.doc.components?.schemas?.[name]);
  }

  #id(prefix: string): string {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';
    return `${prefix}_${Array.from({ length: 16 }, () => alphabet[Math.floor(this.#random() * alphabet.length)] ?? 'A').join('')}`;
  }

  text(schema: JsonSchema): string {
    if (schema.enum !== undefined) return asText(this.pick(schema.enum));
    if (schema.const !== undefined) return asText(schema.const);
    const prefix = schema.pattern === undefined ? undefined : /\^([a-z]+)_/.exec(schema.pattern)?.[1];
    if (prefix === 'org') return this.chance(0.7) ? this.ids.orgId : this.#id('org');
    if (prefix === 'usr') return this.chance(0.7) ? this.ids.userId : this.#id('usr');
    if (prefix !== undefined) return this.#id(prefix);
    if (schema.format === 'email') return `fuzz${Math.floor(this.#random() * 1e6)}@example.test`;
    if (schema.format === 'uri') return this.pick(['http://127.0.0.1:9/v1', 'https://api.example.test/v1', 'http://[::ffff:a9fe:a9fe]/', 'http://0x7f.1/']);
    return 'v'.repeat(Math.min(schema.maxLength ?? 12, Math.max(schema.minLength ?? 1, 8)));
  }

  /** A value the schema accepts (as far as this subset of JSON Schema goes). */
  valid(schema: JsonSchema | undefined, depth = 0): unknown {
    const s = this.resolve(schema);
    const alternatives = s.oneOf ?? s.anyOf;
    if (alternatives !== undefined) return this.valid(this.pick(alternatives), depth);
    if (s.allOf !== undefined) return Object.assign({}, ...s.allOf.map((part) => this.valid(part, depth) as object)) as unknown;
    if (s.const !== undefined) return s.const;
    if (s.enum !== undefined) return this.pick(s.enum);
    const type = Array.isArray(s.type) ? this.pick(s.type.filter((t) => t !== 'null')) : s.type;
    if (type === 'object' || s.properties !== undefined) {
      const value: Record<string, unknown> = {};
      for (const [name, property] of Object.entries(s.properties ?? {})) {
        if ((s.required ?? []).includes(name) || this.chance(0.5)) value[name] = this.valid(property, depth + 1);
      }
      return value;
    }
    if (type === 'array') {
      const length = Math.min(s.maxItems ?? 3, Math.max(s.minItems ?? 0, depth > 2 ? 0 : Math.floor(this.#random() * 4)));
      return Array.from({ length }, () => this.valid(s.items, depth + 1));
    }
    if (type === 'string') return this.text(s);
    if (type === 'integer' || type === 'number') {
      const low = s.minimum ?? 0;
      const high = Math.min(s.maximum ?? 1000, 1e15);
      return this.pick([low, high, Math.floor((low + high) / 2)]);
    }
    if (type === 'boolean') return this.chance(0.5);
    return 'x';
  }

  /** The same value with one place bent. */
  bent(value: unknown, depth = 0): unknown {
    if (typeof value === 'object' && value !== null && depth < 4 && this.chance(0.7)) {
      if (Array.isArray(value) && value.length > 0 && this.chance(0.85)) {
        const copy: unknown[] = [...(value as unknown[])];
        const index = Math.floor(this.#random() * copy.length);
        copy[index] = this.bent(copy[index], depth + 1);
        return copy;
      }
      const entries = Object.keys(value);
      if (!Array.isArray(value) && entries.length > 0 && this.chance(0.85)) {
        const name = this.pick(entries);
        const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
        copy[name] = this.bent(copy[name], depth + 1);
        return copy;
      }
      if (!Array.isArray(value)) return { ...(value as Record<string, unknown>), [this.pick(BENT_KEYS)]: this.pick(BENT_VALUES) };
    }
    return this.pick(BENT_VALUES);
  }

  param(parameter: Parameter | undefined): string {
    if (this.chance(0.15)) return this.pick(BENT_PARAMS);
    return encodeURIComponent(this.text(this.resolve(parameter?.schema)));
  }

  query(operation: Operation): string {
    const parameters = (operation.parameters ?? []).filter((parameter) => parameter.in === 'query');
    if (parameters.length === 0 || this.chance(0.4)) return '';
    const pairs = parameters
      .filter(() => this.chance(0.6))
      .map((parameter) => {
        const value = this.chance(0.7) ? this.valid(parameter.schema) : this.pick(BENT_VALUES);
        const text = String(value).replace(/[\ud800-\udfff]/g, '?');
        return `${encodeURIComponent(parameter.name)}=${encodeURIComponent(text)}`;
      });
    return pairs.length === 0 ? '' : `?${pairs.join('&')}`;
  }
}

export interface Finding {
  request: string;
  status: number | string;
  answer: string;
}

export interface FuzzTarget {
  url: string;
  adminToken: string;
  memberToken: string;
  /** The member's org and user: the valid ids path parameters and bodies mostly use. */
  orgId: string;
  userId: string;
}

export interface FuzzRun {
  findings: Finding[];
  statuses: Map<number, number>;
  /** Routes the document listed and the run drew from. */
  operations: number;
}

/** What every run must show: no finding, and answers past the front door (successes, validation, access). */
export function expectOnlyDeliberateAnswers(run: FuzzRun): void {
  expect(run.operations).toBeGreaterThan(40);
  expect(run.findings).toEqual([]);
  for (const status of [200, 400, 401, 404]) expect(run.statuses.get(status) ?? 0).toBeGreaterThan(0);
}

export async function fuzzRoutes(target: FuzzTarget, options: { seed: number; requests: number }): Promise<FuzzRun> {
  const doc = (await (await fetch(`${target.url}/openapi.json`)).json()) as OpenApiDocument;
  const generator = new RequestGenerator(doc, { orgId: target.orgId, userId: target.userId }, options.seed);
  const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods)
      .map(([method, operation]) => ({ method: method.toUpperCase(), path, operation }))
      .filter(({ method, path: p }) => !SELF_DESTRUCTIVE.test(`${method} ${p}`)),
  );
  const findings: Finding[] = [];
  const statuses = new Map<number, number>();
  for (let i = 0; i < options.requests; i += 1) {
    const { method, path, operation } = generator.pick(operations);
    const concrete = path.replace(/\{(\w+)\}/g, (_match, name: string) => generator.param((operation.parameters ?? []).find((p) => p.name === name)));
    const caller = generator.pick(['admin', 'member', 'member', 'anonymous'] as const);
    const headers: Record<string, string> = {};
    if (caller === 'admin') headers.authorization = `Bearer ${target.adminToken}`;
    if (caller === 'member') headers.authorization = `Bearer ${target.memberToken}`;
    let body: string | undefined;
    const schema = operation.requestBody?.content?.['application/json']?.schema;
    if (schema !== undefined || ['POST', 'PUT', 'PATCH'].includes(method)) {
      headers['content-type'] = 'application/json';
      const valid = schema === undefined ? {} : generator.valid(schema);
      body = JSON.stringify(generator.chance(0.7) ? generator.bent(valid) : valid);
    }
    const pathAndQuery = `${concrete}${generator.query(operation)}`;
    const response = await fetch(`${target.url}${pathAndQuery}`, { method, headers, ...(body === undefined ? {} : { body }) });
    const answer = await response.text();
    statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
    const deliberate = response.status < 500 || (response.status >= 502 && response.status <= 504 && path.startsWith('/v1/'));
    const shaped = response.status < 400 || answer.trimStart().startsWith('{');
    if (!deliberate || !shaped || /\n\s+at |TypeError|ReferenceError|Cannot read prop/.test(answer) || (response.status >= 400 && !tameMessage(answer))) {
      findings.push({ request: `${method} ${pathAndQuery} as ${caller}: ${(body ?? '').slice(0, 300)}`, status: response.status, answer: answer.slice(0, 300) });
    }
  }
  return { findings, statuses, operations: operations.length };
}

/** Longest error message an answer may carry: enough for any rule, too short to echo a body. */
const MAX_ERROR_MESSAGE = 1_000;

/**
 * Whether an error answer's message is one a client may show and a log may keep: no control
 * character or lone surrogate (what the input held is named escaped, if at all) and no echo of a
 * whole input. Answers that are not our JSON error shape are judged by `shaped` instead.
 */
function tameMessage(answer: string): boolean {
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer);
  } catch {
    return true;
  }
  const error = typeof parsed === 'object' && parsed !== null ? (parsed as { error?: { message?: unknown } }).error : undefined;
  const message = error?.message;
  if (typeof message !== 'string') return true;
  return message.length <= MAX_ERROR_MESSAGE && !hasControlCharacter(message) && message.search(LONE_SURROGATE) === -1;
}

/** C0 controls and DEL: what a terminal or a log viewer would act on. */
function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

async function json(response: Response): Promise<Record<string, unknown>> {
  return (await response.json()) as Record<string, unknown>;
}

/**
 * The fuzz's callers: the platform admin, and an ordinary member (role `member`, no admin scope) of a
 * fresh org the platform admin made and owns.
 */
export async function memberOf(url: string, adminToken: string): Promise<FuzzTarget> {
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` };
  const post = async (path: string, body: unknown): Promise<Record<string, unknown>> => {
    const response = await fetch(`${url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
    if (!response.ok) throw new Error(`${path} answered ${response.status}: ${await response.text()}`);
    return json(response);
  };
  const org = await post('/api/orgs', { name: 'Fuzz' });
  const orgId = String(org.id);
  const user = await post('/api/users', { email: `fuzz-member-${Date.now()}@example.test` });
  const userId = String(user.id);
  await post(`/api/orgs/${orgId}/members`, { userId, role: 'member' });
  const key = await post(`/api/orgs/${orgId}/keys`, { name: 'fuzz', scopes: ['models', 'tasks'], userId });
  return { url, adminToken, memberToken: String(key.token), orgId, userId };
}
