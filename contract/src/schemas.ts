/**
 * Runtime validation of everything a client sends, for the gateway. A separate entry
 * (`@switchboard/contract/schemas`) so the browser SDK, which needs only the types,
 * does not bundle zod. `satisfies` keeps each schema in step with its contract type.
 */
import { z } from 'zod';
import {
  CAPABILITIES,
  EVENT_TYPE_PATTERN,
  LIMITS,
  ROOM_NAME_PATTERN,
  SIGNAL_KINDS,
  USER_ID_PATTERN,
  isBoundedJson,
  type DevLoginRequest,
  type HistoryRequest,
  type JsonValue,
  type MintTokenRequest,
  type PublishEventRequest,
  type SessionRefreshRequest,
  type SignalRequest,
  type UpstreamSessionRequest,
} from './index.js';

const jsonData = z.custom<JsonValue>((value) => isBoundedJson(value), {
  message: `must be JSON, at most ${LIMITS.dataDepth} levels deep and ${LIMITS.dataNodes} values`,
});

export const roomNameSchema = z
  .string()
  .regex(ROOM_NAME_PATTERN, 'room must be 1-128 characters of A-Z a-z 0-9 _ . : -');
export const eventTypeSchema = z
  .string()
  .regex(EVENT_TYPE_PATTERN, 'type must be 1-64 characters of A-Z a-z 0-9 _ . : -');

export const devLoginRequestSchema = z.strictObject({
  userId: z.string().regex(USER_ID_PATTERN, 'userId must be 1-128 characters of A-Z a-z 0-9 _ . : @ -'),
  name: z.string().trim().min(1).max(LIMITS.displayName).optional(),
}) satisfies z.ZodType<DevLoginRequest>;

export const mintTokenRequestSchema = z.strictObject({
  room: roomNameSchema,
  caps: z
    .array(z.enum(CAPABILITIES))
    .max(CAPABILITIES.length)
    .refine((caps) => new Set(caps).size === caps.length, 'caps must not repeat')
    .optional(),
}) satisfies z.ZodType<MintTokenRequest>;

/** Shapes only: which models and voices are allowed is the gateway's configuration. */
export const upstreamSessionRequestSchema = z.strictObject({
  room: roomNameSchema.optional(),
  model: z.string().min(1).max(128).optional(),
  voice: z.string().min(1).max(128).optional(),
}) satisfies z.ZodType<UpstreamSessionRequest>;

export const publishEventRequestSchema = z.strictObject({
  type: eventTypeSchema,
  data: jsonData.optional(),
}) satisfies z.ZodType<PublishEventRequest>;

export const signalRequestSchema = z.strictObject({
  to: z.string().min(1).max(64),
  kind: z.enum(SIGNAL_KINDS),
  data: jsonData,
}) satisfies z.ZodType<SignalRequest>;

export const publishRequestSchema = publishEventRequestSchema;

export const sessionRefreshRequestSchema = z.strictObject({
  token: z.string().min(1).max(4096),
}) satisfies z.ZodType<SessionRefreshRequest>;

export const historyRequestSchema = z.strictObject({
  after: z.number().int().min(0).optional(),
  limit: z.number().int().min(1).max(LIMITS.historyLimit).optional(),
}) satisfies z.ZodType<HistoryRequest>;

/** The query of `GET /api/rooms/:room/events`: the same request, as strings. */
export const historyQuerySchema = z.strictObject({
  after: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(LIMITS.historyLimit).optional(),
}) satisfies z.ZodType<HistoryRequest>;

/** `auth.recover` of a handshake. */
export const roomPositionSchema = z.strictObject({
  epoch: z.string().min(1).max(64),
  seq: z.number().int().min(0),
});

export const peersRequestSchema = z.union([z.strictObject({}), z.undefined(), z.null()]);
