import { HTTP_PATHS, LIMITS, type ErrorCode } from '@switchboard/contract';
import {
  devLoginRequestSchema,
  devLoginResponseSchema,
  healthResponseSchema,
  historyQuerySchema,
  historyResponseSchema,
  mintTokenRequestSchema,
  mintTokenResponseSchema,
  peersResponseSchema,
  publishEventRequestSchema,
  publishEventResponseSchema,
  readyResponseSchema,
  roomNameSchema,
  tokenIdSchema,
  upstreamCapabilityResponseSchema,
  upstreamSessionIdSchema,
  upstreamSessionRequestSchema,
  upstreamSessionResponseSchema,
} from '@switchboard/contract/schemas';
import { z } from 'zod';

export interface HttpAnswer {
  description: string;
  /** No body when absent (204). */
  body?: z.ZodType;
  /** @default 'application/json' */
  contentType?: string;
}

/** One route of the HTTP API, as the OpenAPI document describes it. */
export interface HttpRoute {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** OpenAPI form: `{room}` where Express writes `:room`. */
  path: string;
  /** Stable and unique: client generators name their methods after it. */
  operationId: string;
  tag: 'operations' | 'auth' | 'tokens' | 'rooms' | 'voice' | 'documents';
  summary: string;
  description?: string;
  /** `bearer`: an access JWT in `Authorization: Bearer <jwt>`; `description` says which caller may. */
  auth: 'none' | 'bearer';
  params?: Record<string, z.ZodType>;
  query?: Record<string, z.ZodType>;
  /** A JSON body. */
  body?: z.ZodType;
  /** The body may be left out. */
  bodyOptional?: true;
  /** The answers that are not errors, by status. */
  responses: Record<number, HttpAnswer>;
  /**
   * The contract codes it can refuse with, and when; each becomes an answer with the
   * code's status and the `HttpErrorResponse` body. `internal` (500) goes with every
   * route, `identity_unavailable` (503) with every `bearer` one.
   */
  errors: Partial<Record<ErrorCode, string>>;
}

const BODY_LIMIT = `The body is over ${LIMITS.httpBodyBytes / 1024} KiB.`;
const NOT_JSON =
  'or the body is not JSON, or is sent without `Content-Type: application/json` (the message says what to send)';
const VOICE_ONLY = 'Served only when the gateway has an `OPENAI_API_KEY`.';
const NO_VOICE = 'The gateway has no `OPENAI_API_KEY`, so it does not serve this route.';
const NO_ACCESS_JWT =
  'No `Authorization: Bearer <jwt>`, or the JWT is malformed, expired, has no `exp` or `sub`, or fails its signature, `iss` or `aud` check.';

/**
 * Every route the gateway serves. The OpenAPI document is generated from this table and
 * the contract's zod schemas; the API document tests fail while the app serves a route
 * that is missing here. A new route is one entry.
 */
export const HTTP_ROUTES: readonly HttpRoute[] = [
  {
    method: 'get',
    path: HTTP_PATHS.healthz,
    operationId: 'getHealth',
    tag: 'operations',
    summary: 'Liveness',
    auth: 'none',
    responses: { 200: { description: 'The process is up.', body: healthResponseSchema } },
    errors: {},
  },
  {
    method: 'get',
    path: HTTP_PATHS.readyz,
    operationId: 'getReadiness',
    tag: 'operations',
    summary: 'Readiness',
    description:
      'Stays 200 while Redis is unreachable (`status: "degraded"`), so that a Redis outage does not take every replica out of the load balancer; turns 503 once the replica drains.',
    auth: 'none',
    responses: {
      200: { description: 'Ready, or degraded: serving from memory on this replica.', body: readyResponseSchema },
      503: { description: 'Draining after SIGTERM: send new traffic elsewhere.', body: readyResponseSchema },
    },
    errors: {},
  },
  {
    method: 'get',
    path: HTTP_PATHS.metrics,
    operationId: 'getMetrics',
    tag: 'operations',
    summary: 'Prometheus metrics',
    description: 'Served here unless `METRICS_PORT` gives the metrics a port of their own.',
    auth: 'none',
    responses: { 200: { description: 'The Prometheus text format.', body: z.string(), contentType: 'text/plain' } },
    errors: {},
  },
  {
    method: 'post',
    path: HTTP_PATHS.devLogin,
    operationId: 'devLogin',
    tag: 'auth',
    summary: 'Sign in for development',
    description:
      "Signs an access JWT for whoever asks: a stand-in for your app's own login during development. Only while `DEV_LOGIN` is on (by default outside production, and never with `JWT_PUBLIC_KEY`).",
    auth: 'none',
    body: devLoginRequestSchema,
    responses: { 200: { description: 'An access JWT for `userId`.', body: devLoginResponseSchema } },
    errors: {
      invalid_request: `\`userId\` or \`name\` is not valid, ${NOT_JSON}.`,
      not_found: 'Dev login is off on this gateway.',
      payload_too_large: BODY_LIMIT,
    },
  },
  {
    method: 'post',
    path: HTTP_PATHS.rtcTokens,
    operationId: 'mintRtcToken',
    tag: 'tokens',
    summary: 'Mint an RTC token',
    description:
      'A single-use token that admits one Socket.IO connection to one room within `ttlSeconds`, and the ICE servers for its peer connections. Any access JWT may mint; the session it opens ends when that JWT expires.',
    auth: 'bearer',
    body: mintTokenRequestSchema,
    responses: { 201: { description: 'The token.', body: mintTokenResponseSchema } },
    errors: {
      invalid_request: `The room name or \`caps\` are not valid, ${NOT_JSON}.`,
      unauthorized: NO_ACCESS_JWT,
      payload_too_large: BODY_LIMIT,
      rate_limited: 'This user minted more than `MINT_RATE_PER_MINUTE` tokens in the last minute.',
    },
  },
  {
    method: 'delete',
    path: `${HTTP_PATHS.rtcTokens}/{jti}`,
    operationId: 'revokeRtcToken',
    tag: 'tokens',
    summary: 'Revoke an RTC token',
    description:
      "Makes a token that was minted but not yet redeemed unusable. A user may revoke their own tokens; a service JWT (any `scope`) anyone's.",
    auth: 'bearer',
    params: { jti: tokenIdSchema },
    responses: { 204: { description: 'Revoked.' } },
    errors: {
      unauthorized: NO_ACCESS_JWT,
      not_found:
        "No such token: unknown, expired, already redeemed or revoked, or someone else's (answered alike, so token ids cannot be probed).",
    },
  },
  {
    method: 'get',
    path: HTTP_PATHS.upstreamOpenai,
    operationId: 'getOpenAiCapability',
    tag: 'voice',
    summary: 'Whether AI voice is offered',
    description: `What a client may ask \`POST ${HTTP_PATHS.upstreamOpenai}\` for, and where to open the call: the flag an app shows its voice button by. ${VOICE_ONLY}`,
    auth: 'none',
    responses: { 200: { description: 'AI voice is offered.', body: upstreamCapabilityResponseSchema } },
    errors: { not_found: NO_VOICE },
  },
  {
    method: 'post',
    path: HTTP_PATHS.upstreamOpenai,
    operationId: 'mintOpenAiClientSecret',
    tag: 'voice',
    summary: 'Mint an OpenAI Realtime client secret',
    description: `Asks OpenAI for a short-lived client secret with the gateway's API key and session configuration, the chosen \`model\` and \`voice\`; the browser then opens the call itself, POSTing its SDP offer to \`callsUrl\` with \`value\` as Bearer. The body may be left out: the first model and voice apply. A user holds at most \`UPSTREAM_SESSIONS_PER_USER\` live secrets and mints at most \`UPSTREAM_MINTS_PER_MINUTE\` in any 60 s (deleted ones included), across replicas, and no answer takes longer than \`UPSTREAM_TIMEOUT_MS\`. ${VOICE_ONLY}`,
    auth: 'bearer',
    body: upstreamSessionRequestSchema,
    bodyOptional: true,
    responses: { 201: { description: 'The secret.', body: upstreamSessionResponseSchema } },
    errors: {
      invalid_request:
        '`model` or `voice` is not one the gateway offers, the room name is not valid, the body has another field, or a body sent as `application/json` is not JSON.',
      unauthorized: NO_ACCESS_JWT,
      not_found: NO_VOICE,
      payload_too_large: BODY_LIMIT,
      rate_limited:
        'The user already holds `UPSTREAM_SESSIONS_PER_USER` live secrets (`Retry-After`: until the first expires; or `DELETE` one), or minted `UPSTREAM_MINTS_PER_MINUTE` in the last 60 s (`Retry-After`: until the oldest is a minute old; a `DELETE` does not help), or OpenAI is rate limiting the gateway (its `Retry-After`).',
      upstream_unavailable:
        "OpenAI did not answer within `UPSTREAM_TIMEOUT_MS`, could not be reached, failed, or refused the gateway's key or session configuration.",
    },
  },
  {
    method: 'delete',
    path: `${HTTP_PATHS.upstreamSessions}/{id}`,
    operationId: 'deleteUpstreamSession',
    tag: 'voice',
    summary: "Free a client secret's slot",
    description: `Forgets the gateway's record of a secret, e.g. when its call ends, so that it no longer counts against the user's \`UPSTREAM_SESSIONS_PER_USER\` (it still counts against \`UPSTREAM_MINTS_PER_MINUTE\` for a minute). The secret itself stays usable until its \`expiresAt\`: the provider cannot revoke it. A user may delete their own records; a service JWT (any \`scope\`) anyone's. ${VOICE_ONLY}`,
    auth: 'bearer',
    params: { id: upstreamSessionIdSchema },
    responses: { 204: { description: 'Forgotten.' } },
    errors: {
      unauthorized: NO_ACCESS_JWT,
      not_found: `No such record: unknown, expired, already deleted, or someone else's (answered alike, so ids cannot be probed). Or: ${NO_VOICE}`,
    },
  },
  {
    method: 'post',
    path: '/api/rooms/{room}/events',
    operationId: 'publishRoomEvent',
    tag: 'rooms',
    summary: 'Publish a room event',
    description:
      'Delivers a `room:event` (`from: "service:<sub>"`) to every member of the room, on every replica. Needs a service JWT whose space-separated `scope` claim holds `publish`.',
    auth: 'bearer',
    params: { room: roomNameSchema },
    body: publishEventRequestSchema,
    responses: { 202: { description: 'Accepted for delivery.', body: publishEventResponseSchema } },
    errors: {
      invalid_request: `The room name, \`type\` or \`data\` are not valid, ${NOT_JSON}.`,
      unauthorized: NO_ACCESS_JWT,
      forbidden: 'The JWT has no `publish` scope.',
      payload_too_large: BODY_LIMIT,
    },
  },
  {
    method: 'get',
    path: '/api/rooms/{room}/peers',
    operationId: 'listRoomPeers',
    tag: 'rooms',
    summary: "List a room's peers",
    description: 'The members of the room across replicas. For a service JWT (any `scope`), or a user in the room.',
    auth: 'bearer',
    params: { room: roomNameSchema },
    responses: { 200: { description: 'The peers.', body: peersResponseSchema } },
    errors: {
      invalid_request: 'The room name is not valid.',
      unauthorized: NO_ACCESS_JWT,
      forbidden: 'A user who is not in the room.',
    },
  },
  {
    method: 'get',
    path: '/api/rooms/{room}/events',
    operationId: 'listRoomEvents',
    tag: 'rooms',
    summary: "Read a room's recent events",
    description: `The events with \`seq\` after \`after\`, oldest first, at most \`limit\` (default and most ${LIMITS.historyLimit}); without \`after\`, the latest \`limit\`. \`seq\` counts within \`epoch\`; \`top\` is the room's last one, so page on with \`after\` = the last \`seq\` received until it reaches \`top\`. A room keeps its last \`ROOM_HISTORY_SIZE\` events for \`ROOM_HISTORY_TTL_SECONDS\`. For a service JWT (any \`scope\`), or a user in the room.`,
    auth: 'bearer',
    params: { room: roomNameSchema },
    query: historyQuerySchema.shape,
    responses: { 200: { description: 'The events.', body: historyResponseSchema } },
    errors: {
      invalid_request: 'The room name, `after` or `limit` is not valid, or the query has another parameter.',
      unauthorized: NO_ACCESS_JWT,
      forbidden: 'A user who is not in the room.',
      unavailable:
        'Redis is unreachable and this replica does not hold the events asked for (it holds the recent events of the rooms with members connected to it).',
    },
  },
  {
    method: 'get',
    path: HTTP_PATHS.openApi,
    operationId: 'getOpenApiDocument',
    tag: 'documents',
    summary: 'This document',
    description: 'The HTTP API as OpenAPI 3.1.',
    auth: 'none',
    responses: { 200: { description: 'The OpenAPI document.', body: z.looseObject({ openapi: z.string() }) } },
    errors: {},
  },
  {
    method: 'get',
    path: HTTP_PATHS.asyncApi,
    operationId: 'getAsyncApiDocument',
    tag: 'documents',
    summary: 'The Socket.IO API',
    description: 'The Socket.IO events, with their payloads and acks, as AsyncAPI 3.0.',
    auth: 'none',
    responses: { 200: { description: 'The AsyncAPI document.', body: z.looseObject({ asyncapi: z.string() }) } },
    errors: {},
  },
];
