import { createRequire } from 'node:module';
import { createAsyncApiDocument } from './asyncapi.js';
import { HTTP_ROUTES } from './http-routes.js';
import type { JsonSchema } from './json-schema.js';
import { createOpenApiDocument } from './openapi.js';

export interface ApiDocuments {
  /** `GET /api/openapi.json`: the HTTP API. */
  openApi(): JsonSchema;
  /** `GET /api/asyncapi.json`: the Socket.IO events. */
  asyncApi(): JsonSchema;
}

/** Both documents, each generated on first use and then kept: they change only with the code. */
export function createApiDocuments(): ApiDocuments {
  let openApi: JsonSchema | undefined;
  let asyncApi: JsonSchema | undefined;
  return {
    openApi: () => (openApi ??= createOpenApiDocument(HTTP_ROUTES, contractVersion())),
    asyncApi: () => (asyncApi ??= createAsyncApiDocument(contractVersion())),
  };
}

/** The wire contract's version: the documents describe that, whichever gateway serves them. */
function contractVersion(): string {
  const manifest: unknown = createRequire(import.meta.url)('@switchboard/contract/package.json');
  const version = typeof manifest === 'object' && manifest !== null ? (manifest as { version?: unknown }).version : '';
  if (typeof version !== 'string' || version === '') throw new Error('@switchboard/contract has no version');
  return version;
}
