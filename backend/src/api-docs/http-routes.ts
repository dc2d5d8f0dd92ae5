import { HTTP_PATHS, LIMITS, type ErrorCode } from '@switchboard/contract';
import {
  batchPublishRequestSchema,
  batchPublishResponseSchema,
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
  roomDetailResponseSchema,
  roomNameSchema,
  roomsListQuerySchema,
  roomsListResponseSchema,
  tokenIdSchema,
  userIdParamSchema,
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
      "Signs an access JWT for whoever asks: a stand-in for your app's own login during development. `rooms` becomes the room-grants claim (`JWT_ROOMS_CLAIM`), as your login would set it for `ROOM_ACCESS=grants`. Only while `DEV_LOGIN` is on (by default outside production, never in production, and never with `JWT_PUBLIC_KEY`).",
    auth: 'none',
    body: devLoginRequestSchema,
    responses: { 200: { description: 'An access JWT for `userId`.', body: devLoginResponseSchema } },
    errors: {
      invalid_request: `\`userId\`, \`name\` or \`rooms\` is not valid, ${NOT_JSON}.`,
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
      "A single-use token that admits one Socket.IO connection to one room within `ttlSeconds`, and the ICE servers for its peer connections. Only for a room the app lets the caller into (`ROOM_ACCESS`: the access JWT's room grants, the app's authorizer, or `open`), with at most the capabilities it allows: without `caps`, all of those. A service JWT with scope `mint` mints for `{userId, name?}` instead, with no access check: the backend is the authority. The session the token opens ends when the minting JWT expires.",
    auth: 'bearer',
    body: mintTokenRequestSchema,
    responses: { 201: { description: 'The token.', body: mintTokenResponseSchema } },
    errors: {
      invalid_request: `The room name, \`caps\`, \`userId\` or \`name\` are not valid, or \`name\` comes without \`userId\`, ${NOT_JSON}.`,
      unauthorized: NO_ACCESS_JWT,
      forbidden:
        "The app does not let the caller into the room, or not with the `caps` asked for (the message names the missing grant, e.g. the JWT's room claim), or `userId` was sent without scope `mint`.",
      payload_too_large: BODY_LIMIT,
      rate_limited: 'This user minted more than `MINT_RATE_PER_MINUTE` tokens in the last minute.',
      authorizer_unavailable:
        "With `ROOM_ACCESS=authorizer`: the app's authorizer did not answer within `ROOM_AUTHORIZER_TIMEOUT_MS`, failed, or answered something else than a decision. Access fails closed; `Retry-After` says when to try again.",
      unavailable:
        'Tokens cannot be recorded right now: memory mode holds `MEMORY_TOKEN_CAP` live tokens (it never forgets one early), with `Retry-After`.',
    },
  },
  {
    method: 'delete',
    path: `${HTTP_PATHS.rtcTokens}/{jti}`,
    operationId: 'revokeRtcToken',
    tag: 'tokens',
    summary: 'Revoke an RTC token',
    description:
      "Makes a token that was minted but not yet redeemed unusable. A user may revoke their own tokens; a service JWT with scope `revoke` anyone's.",
    auth: 'bearer',
    params: { jti: tokenIdSchema },
    responses: { 204: { description: 'Revoked.' } },
    errors: {
      unauthorized: NO_ACCESS_JWT,
      not_found:
        "No such token: unknown, expired, already redeemed or revoked, or someone else's (answered alike, so token ids cannot be probed).",
      unavailable: 'Redis is up but did not confirm the revocation in time; try again (`Retry-After`).',
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
    responses: {
      200: { description: 'AI voice is offered.', body: upstreamCapabilityResponseSchema },
      204: { description: 'AI voice is not offered here (no `OPENAI_API_KEY`): show no voice button.' },
    },
    errors: {},
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
      forbidden: '`room` is one the app does not let this user into (checked as for minting an RTC token).',
      authorizer_unavailable: "With `ROOM_ACCESS=authorizer` and a `room`: the app's authorizer did not answer.",
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
    description: `Forgets the gateway's record of a secret, e.g. when its call ends, so that it no longer counts against the user's \`UPSTREAM_SESSIONS_PER_USER\` (it still counts against \`UPSTREAM_MINTS_PER_MINUTE\` for a minute). The secret itself stays usable until its \`expiresAt\`: the provider cannot revoke it. A user may delete their own records; a service JWT with scope \`revoke\` anyone's. ${VOICE_ONLY}`,
    auth: 'bearer',
    params: { id: upstreamSessionIdSchema },
    responses: { 204: { description: 'Forgotten.' } },
    errors: {
      unauthorized: NO_ACCESS_JWT,
      not_found: `No such record: unknown, expired, already deleted, or someone else's (answered alike, so ids cannot be probed). Or: ${NO_VOICE}`,
    },
  },
  {
    method: 'get',
    path: HTTP_PATHS.rooms,
    operationId: 'listRooms',
    tag: 'rooms',
    summary: 'List active rooms',
    description: `The rooms with members on some replica, ordered by name, with their member count and last \`seq\`: at most \`limit\` (default and most ${LIMITS.roomsPage}) per page; pass the answer's \`cursor\` for the next page (none on the last). Rooms that fill or empty between pages may be missed or listed once more. Needs a service JWT with scope \`read\`.`,
    auth: 'bearer',
    query: roomsListQuerySchema.shape,
    responses: { 200: { description: 'A page of rooms.', body: roomsListResponseSchema } },
    errors: {
      invalid_request:
        'The `cursor` was not handed out by this API, `limit` is not valid, or the query has another parameter.',
      unauthorized: NO_ACCESS_JWT,
      forbidden: 'The JWT has no `read` scope.',
      unavailable: 'Redis is unreachable; try again (`Retry-After`).',
    },
  },
  {
    method: 'get',
    path: `${HTTP_PATHS.rooms}/{room}`,
    operationId: 'getRoom',
    tag: 'rooms',
    summary: 'Describe a room',
    description:
      'Its members across replicas, its position (`epoch`, `top`: the last `seq`), and the replicas that hold its members. A room nobody is in answers `members: 0`. Needs a service JWT with scope `read`.',
    auth: 'bearer',
    params: { room: roomNameSchema },
    responses: { 200: { description: 'The room now.', body: roomDetailResponseSchema } },
    errors: {
      invalid_request: 'The room name is not valid.',
      unauthorized: NO_ACCESS_JWT,
      forbidden: 'The JWT has no `read` scope.',
      unavailable: 'Redis is unreachable; try again (`Retry-After`).',
    },
  },
  {
    method: 'post',
    path: HTTP_PATHS.roomsEventsBatch,
    operationId: 'publishRoomEventsBatch',
    tag: 'rooms',
    summary: 'Publish events into several rooms',
    description: `Up to ${LIMITS.batchEvents} events, each with its \`room\` and, like a single publish, an optional \`idempotencyKey\`. Each room's events are published in the order sent; every event gets its own result, in the order sent: what a single publish answers (\`{ok: true, id, seq, local?}\`), or \`{ok: false, error}\` (\`invalid_request\` for an event that is not valid; the others are still published). Needs a service JWT with scope \`publish\`.`,
    auth: 'bearer',
    body: batchPublishRequestSchema,
    responses: { 200: { description: 'One result per event.', body: batchPublishResponseSchema } },
    errors: {
      invalid_request: `\`events\` is missing, empty or longer than ${LIMITS.batchEvents}, ${NOT_JSON}.`,
      unauthorized: NO_ACCESS_JWT,
      forbidden: 'The JWT has no `publish` scope.',
      payload_too_large: BODY_LIMIT,
    },
  },
  {
    method: 'post',
    path: '/api/rooms/{room}/events',
    operationId: 'publishRoomEvent',
    tag: 'rooms',
    summary: 'Publish a room event',
    description:
      'Delivers a `room:event` (`from: "service:<sub>"`) to every member of the room, on every replica. With `idempotencyKey`, a repeat of the key in the room within `IDEMPOTENCY_WINDOW_SECONDS` (default 300) answers the first publish\'s `{id, seq}` and publishes nothing, so a publish whose answer was lost can be retried. Needs a service JWT whose scope claim (`JWT_SCOPE_CLAIM`, after `JWT_SCOPE_PREFIX`) holds `publish`.',
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
    description: 'The members of the room across replicas. For a service JWT with scope `read`, or a user in the room.',
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
    description: `The events with \`seq\` after \`after\`, oldest first, at most \`limit\` (default and most ${LIMITS.historyLimit}); without \`after\`, the latest \`limit\`. \`seq\` counts within \`epoch\`; \`top\` is the room's last one, so page on with \`after\` = the last \`seq\` received until it reaches \`top\`. A reply stops before \`HISTORY_REPLY_MAX_BYTES\` of events and then says \`more: true\`: ask again with \`after\`. A room keeps its last \`ROOM_HISTORY_SIZE\` events (at most \`ROOM_HISTORY_MAX_BYTES\`) for \`ROOM_HISTORY_TTL_SECONDS\`. For a service JWT with scope \`read\`, or a user in the room.`,
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
    method: 'delete',
    path: '/api/rooms/{room}/members/{userId}',
    operationId: 'kickRoomMember',
    tag: 'rooms',
    summary: 'Remove a user from a room',
    description:
      'Ends every connection of the user in the room, on every replica: each gets `session:ended {reason: "kicked"}` and the SDK does not reconnect it. Tokens minted for that user and room until now are refused (`token_revoked`); letting the user back is the app\'s decision, with a new token. Answers 204 also when the user was not there. Needs a service JWT with scope `kick`; logged with the caller\'s `sub`.',
    auth: 'bearer',
    params: { room: roomNameSchema, userId: userIdParamSchema },
    responses: { 204: { description: 'Removed (or was not there).' } },
    errors: {
      invalid_request: 'The room name or `userId` is not valid.',
      unauthorized: NO_ACCESS_JWT,
      forbidden: 'The JWT has no `kick` scope.',
      unavailable: 'Redis is up but did not record the kick in time; try again (`Retry-After`).',
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
