import { ERROR_MESSAGES, HTTP_ERROR_STATUS, LIMITS, type ErrorCode } from '@switchboard/contract';
import { httpErrorResponseSchema } from '@switchboard/contract/schemas';
import type { z } from 'zod';
import type { HttpAnswer, HttpRoute } from './http-routes.js';
import { referencedSchemas, schemaComponents, type JsonSchema, type SchemaComponents } from './json-schema.js';

const SECURITY_SCHEME = 'accessToken';

const RETRY_AFTER = { 'Retry-After': { $ref: '#/components/headers/RetryAfter' } };
/** Headers that go with an error code wherever it is answered. */
const ERROR_HEADERS: Partial<Record<ErrorCode, Record<string, JsonSchema>>> = {
  rate_limited: RETRY_AFTER,
  unavailable: RETRY_AFTER,
  identity_unavailable: RETRY_AFTER,
};

/** What every route that takes an access JWT can answer while its keys cannot be fetched. */
const IDENTITY_UNAVAILABLE =
  "`JWT_JWKS_URL` is set and the identity provider's key that signed the JWT cannot be fetched (the endpoint is unreachable, slow or broken): the JWT may well be valid, so retry after `Retry-After` rather than sign in again.";

const TAGS = [
  { name: 'operations', description: 'Health, readiness and metrics, for load balancers and monitoring.' },
  { name: 'auth', description: 'Access JWTs during development.' },
  { name: 'tokens', description: 'Single-use RTC tokens that admit a Socket.IO connection to one room.' },
  { name: 'rooms', description: 'Rooms as services see them: publish events, list peers, read recent events.' },
  {
    name: 'voice',
    description:
      "AI voice: short-lived OpenAI Realtime client secrets, minted with the gateway's key, so a browser talks to the model directly. Served only when the gateway has an `OPENAI_API_KEY`; otherwise these routes answer 404 `not_found`.",
  },
  { name: 'documents', description: 'This document, and the AsyncAPI document of the Socket.IO events.' },
];

const DESCRIPTION = `The HTTP side of a Switchboard gateway: RTC tokens that admit a browser to a room over Socket.IO, and the routes services use to reach rooms. The Socket.IO events are in the AsyncAPI document at \`/api/asyncapi.json\`.

Every error answer is JSON, \`{"error": {"code", "message"}}\`, whose \`code\` is stable: branch on it, show \`message\` to people. A route can also answer 500 \`internal\`, and a path no route serves 404 \`not_found\`. Bodies are JSON (\`Content-Type: application/json\`) of at most ${LIMITS.httpBodyBytes / 1024} KiB.`;

function parameters(route: HttpRoute, components: SchemaComponents): JsonSchema[] {
  const list = (where: 'path' | 'query', schemas: Record<string, z.ZodType> | undefined) =>
    Object.entries(schemas ?? {}).map(([name, schema]) => ({
      name,
      in: where,
      required: where === 'path' || !schema.safeParse(undefined).success,
      schema: components.schemaFor(schema),
    }));
  return [...list('path', route.params), ...list('query', route.query)];
}

function answer({ description, body, contentType = 'application/json' }: HttpAnswer, components: SchemaComponents) {
  return body ? { description, content: { [contentType]: { schema: components.schemaFor(body) } } } : { description };
}

/** Error answers grouped by status: codes that share one are told apart by their examples. */
function errorAnswers(route: HttpRoute, components: SchemaComponents): Record<string, JsonSchema> {
  const errors: Partial<Record<ErrorCode, string>> = {
    ...route.errors,
    ...(route.auth === 'bearer' ? { identity_unavailable: IDENTITY_UNAVAILABLE } : {}),
    internal: 'The gateway failed.',
  };
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of Object.keys(errors) as ErrorCode[]) {
    const status = HTTP_ERROR_STATUS[code] ?? 400;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return Object.fromEntries(
    [...byStatus].map(([status, codes]) => {
      const headers = Object.assign({}, ...codes.map((code) => ERROR_HEADERS[code] ?? {})) as Record<string, unknown>;
      const examples = Object.fromEntries(
        codes.map((code) => [code, { value: { error: { code, message: ERROR_MESSAGES[code] } } }]),
      );
      const response = {
        description: codes.map((code) => `\`${code}\`: ${errors[code] ?? ''}`).join('\n\n'),
        ...(Object.keys(headers).length > 0 ? { headers } : {}),
        content: { 'application/json': { schema: components.schemaFor(httpErrorResponseSchema), examples } },
      };
      return [String(status), response];
    }),
  );
}

function operation(route: HttpRoute, components: SchemaComponents) {
  const params = parameters(route, components);
  return {
    operationId: route.operationId,
    tags: [route.tag],
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    security: route.auth === 'bearer' ? [{ [SECURITY_SCHEME]: [] }] : [],
    ...(params.length > 0 ? { parameters: params } : {}),
    ...(route.body
      ? {
          requestBody: {
            required: route.bodyOptional !== true,
            content: { 'application/json': { schema: components.schemaFor(route.body) } },
          },
        }
      : {}),
    responses: {
      ...Object.fromEntries(
        Object.entries(route.responses).map(([status, response]) => [status, answer(response, components)]),
      ),
      ...errorAnswers(route, components),
    },
  };
}

/** The OpenAPI 3.1 document of `routes`, with every schema generated from the contract's zod schemas. */
export function createOpenApiDocument(routes: readonly HttpRoute[], version: string): JsonSchema {
  const components = schemaComponents('draft-2020-12');
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = (paths[route.path] ??= {});
    if (path[route.method]) throw new Error(`${route.method.toUpperCase()} ${route.path} is listed twice`);
    path[route.method] = operation(route, components);
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Switchboard HTTP API', version, description: DESCRIPTION },
    servers: [{ url: '/', description: 'The gateway that serves this document.' }],
    tags: TAGS,
    paths,
    components: {
      schemas: referencedSchemas(components.schemas, paths),
      securitySchemes: {
        [SECURITY_SCHEME]: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description:
            "An access JWT with `sub` and `exp`, signed with the gateway's `JWT_SECRET` (HS256), the key of `JWT_PUBLIC_KEY`, or a key (by `kid`) of the identity provider whose key set `JWT_JWKS_URL` names (RS256/ES256), and with `iss`/`aud` when `JWT_ISSUER`/`JWT_AUDIENCE` are set. A service JWT is one whose `scope` claim (or the claim `JWT_SCOPE_CLAIM` names: space-separated, or an array) is not empty. In development, `POST /api/dev/login` hands them out.",
        },
      },
      headers: {
        RetryAfter: {
          description: 'Seconds to wait before trying again.',
          required: true,
          schema: { type: 'integer', minimum: 1 },
        },
      },
    },
  };
}
