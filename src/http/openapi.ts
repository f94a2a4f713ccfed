/** Builds the OpenAPI 3.1 document from the declared routes, so it cannot drift from the code. */
import { z } from 'zod';
import type { RegisteredRoute, RouteRegistry } from './route.js';

type JsonObject = Record<string, unknown>;

function toOpenApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

function jsonSchema(schema: z.ZodType): JsonObject {
  try {
    return z.toJSONSchema(schema, { unrepresentable: 'any', io: 'input' });
  } catch {
    return {};
  }
}

function parametersOf(route: RegisteredRoute): JsonObject[] {
  const parameters: JsonObject[] = [];
  for (const [where, schema] of [['path', route.params], ['query', route.query]] as const) {
    if (schema === undefined) continue;
    const json = jsonSchema(schema);
    const properties = (json.properties ?? {}) as Record<string, JsonObject>;
    const required = new Set((json.required ?? []) as string[]);
    for (const [name, property] of Object.entries(properties)) {
      parameters.push({ name, in: where, required: where === 'path' || required.has(name), schema: property });
    }
  }
  return parameters;
}

const ERROR_SCHEMA = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
  },
};

export function buildOpenApiDocument(registry: RouteRegistry, version: string): JsonObject {
  const paths: Record<string, Record<string, JsonObject>> = {};
  for (const route of registry.routes) {
    const path = toOpenApiPath(route.url);
    const operation: JsonObject = {
      summary: route.summary,
      tags: route.tags,
      parameters: parametersOf(route),
      responses: {
        [String(route.successStatus)]: { description: 'Success' },
        default: { description: 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
      },
    };
    if (route.auth === 'required') operation.security = [{ bearer: [] }, { session: [] }];
    if (route.auth === 'none') operation.security = [];
    if (route.body !== undefined) {
      operation.requestBody = { required: true, content: { 'application/json': { schema: jsonSchema(route.body) } } };
    }
    paths[path] = { ...(paths[path] ?? {}), [route.method.toLowerCase()]: operation };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Portcullis admin API', version },
    paths,
    components: {
      schemas: { Error: ERROR_SCHEMA },
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'An API key (pck_…) or an OIDC access token.' },
        session: { type: 'apiKey', in: 'cookie', name: 'portcullis_session' },
      },
    },
    security: [{ bearer: [] }],
  };
}
