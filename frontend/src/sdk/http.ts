import {
  HTTP_PATHS,
  type Capability,
  type DevLoginRequest,
  type DevLoginResponse,
  type MintTokenRequest,
  type MintTokenResponse,
  type UpstreamCapabilityResponse,
  type UpstreamSessionRequest,
  type UpstreamSessionResponse,
} from '@switchboard/contract';
import { SwitchboardError, codeForStatus, isErrorCode, parseRetryAfter } from './errors.js';

/** The part of `fetch` the SDK uses; pass your own to add headers, a proxy or a test double. */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/** Options every HTTP call of the SDK takes. */
export interface HttpOptions {
  /**
   * How requests are sent.
   * @default the global `fetch` (browsers and Node have one)
   */
  fetch?: FetchLike;
  /**
   * Time limit for the whole request; past it the call rejects with `timeout`.
   * @default 10000
   */
  timeoutMs?: number;
}

/** Turns a non-2xx response into a SwitchboardError with the contract code and `Retry-After`. */
export async function errorFromResponse(response: Response): Promise<SwitchboardError> {
  let code = codeForStatus(response.status);
  let message: string | undefined;
  try {
    const body: unknown = await response.json();
    const error = typeof body === 'object' && body !== null ? (body as { error?: unknown }).error : undefined;
    if (typeof error === 'object' && error !== null) {
      const fields = error as { code?: unknown; message?: unknown };
      if (isErrorCode(fields.code)) code = fields.code;
      if (typeof fields.message === 'string') message = fields.message;
    }
  } catch {
    // Not JSON (a proxy's error page): the status alone decides.
  }
  return new SwitchboardError(code, message, {
    status: response.status,
    retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
  });
}

/** Sends one request and returns the response if it is 2xx, or throws a SwitchboardError with a code. */
async function send(
  method: 'GET' | 'POST' | 'DELETE',
  baseUrl: string,
  path: string,
  body: unknown,
  headers: Record<string, string>,
  options: HttpOptions,
): Promise<Response> {
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  const timeoutMs = options.timeoutMs ?? 10_000;
  const url = new URL(path, baseUrl).toString();
  let response: Response;
  try {
    response = await doFetch(url, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    const timedOut = error instanceof Error && error.name === 'TimeoutError';
    throw new SwitchboardError(
      timedOut ? 'timeout' : 'unreachable',
      timedOut
        ? `${method} ${path} timed out after ${timeoutMs} ms`
        : `${method} ${path} failed: the server cannot be reached`,
      { cause: error },
    );
  }
  if (!response.ok) throw await errorFromResponse(response);
  return response;
}

/** POSTs JSON and returns the parsed body, or throws a SwitchboardError with a code. */
export async function postJson<T>(
  baseUrl: string,
  path: string,
  body: unknown,
  headers: Record<string, string>,
  options: HttpOptions = {},
): Promise<T> {
  return (await (await send('POST', baseUrl, path, body, headers, options)).json()) as T;
}

/** What {@link mintRtcToken} needs. */
export interface MintOptions extends HttpOptions {
  /** The gateway's origin, e.g. `https://rtc.example.com`. */
  baseUrl: string;
  /** Your app's access JWT (or one from {@link devLogin} in development). */
  accessToken: string;
  /** The room the token admits to: 1-128 characters of `A-Z a-z 0-9 _ . : -`. */
  room: string;
  /**
   * Capabilities to ask for, a subset of `['publish']`.
   * @default every capability, i.e. `['publish']`
   */
  caps?: Capability[];
}

/**
 * Mints an RTC token: `POST /api/rtc/tokens` with `Authorization: Bearer <accessToken>`.
 *
 * The token admits one Socket.IO connection to one room, once, within `ttlSeconds`
 * (60 s by default); the answer also carries the ICE servers (STUN, and TURN with
 * time-limited credentials) for that room's peer connections. {@link createSwitchboard}
 * calls this on every connection attempt by itself, so most apps never do. Call it
 * yourself when you open Socket.IO without the SDK (`io(url, { auth: { token } })`),
 * or when you need only the ICE servers.
 *
 * @returns `{ token, room, expiresAt, ttlSeconds, iceServers }`; `expiresAt` is epoch milliseconds.
 * @throws {SwitchboardError} with `code`:
 * - `unauthorized` (401): the access token is missing, malformed, expired, or signed with another key;
 * - `invalid_request` (400): the room name or `caps` are not valid;
 * - `rate_limited` (429): this user minted too many tokens in the last minute; `retryAfterMs` says how long to wait;
 * - `payload_too_large` (413), `internal` (500): as the gateway answered;
 * - `unreachable`: no answer (network error, or a 502/503/504 from a proxy in front of the gateway);
 * - `timeout`: no answer within `timeoutMs`.
 *
 * Every error from an answer also carries the HTTP `status`.
 *
 * @example
 * ```ts
 * const { token, iceServers } = await mintRtcToken({ baseUrl, accessToken, room: 'standup' });
 * const socket = io(baseUrl, { auth: { token }, transports: ['websocket'] });
 * ```
 */
export function mintRtcToken({ baseUrl, accessToken, room, caps, ...http }: MintOptions): Promise<MintTokenResponse> {
  const body: MintTokenRequest = caps ? { room, caps } : { room };
  return postJson<MintTokenResponse>(
    baseUrl,
    HTTP_PATHS.rtcTokens,
    body,
    { authorization: `Bearer ${accessToken}` },
    http,
  );
}

/**
 * Signs in for development: `POST /api/dev/login` with `{ userId, name? }`, no credentials.
 *
 * The gateway signs an access JWT for whoever asks (valid for `expiresIn` seconds, one
 * hour), so it is a stand-in for your app's own login while you develop, test or run the
 * demo. The route exists only while the gateway's `DEV_LOGIN` is on: by default outside
 * `NODE_ENV=production`, and never with `JWT_PUBLIC_KEY`. In production, get the access
 * token from your own identity provider and pass it to `getAccessToken`.
 *
 * @param baseUrl The gateway's origin, e.g. `http://localhost:3000`.
 * @param userId Becomes the token's `sub`: 1-128 characters of `A-Z a-z 0-9 _ . : @ -`.
 * @param name Display name shown to other peers (1-64 characters); defaults to `userId`.
 * @param options `rooms`: room grants to sign into the token, as your app's login would with
 *   `ROOM_ACCESS=grants` (a room name or `prefix*` pattern → capabilities); plus HTTP options.
 * @returns `{ accessToken, expiresIn }`, `expiresIn` in seconds.
 * @throws {SwitchboardError} with `code`:
 * - `not_found` (404): dev login is off on this gateway;
 * - `invalid_request` (400): `userId`, `name` or `rooms` is not valid;
 * - `internal` (500): as the gateway answered;
 * - `unreachable` or `timeout`: no answer, or none within `timeoutMs`.
 *
 * @example
 * ```ts
 * const switchboard = createSwitchboard({
 *   url: 'http://localhost:3000',
 *   getAccessToken: async () => (await devLogin('http://localhost:3000', 'alice', 'Alice')).accessToken,
 * });
 * ```
 */
export function devLogin(
  baseUrl: string,
  userId: string,
  name?: string,
  options: HttpOptions & { rooms?: DevLoginRequest['rooms'] } = {},
): Promise<DevLoginResponse> {
  const { rooms, ...http } = options;
  const body: DevLoginRequest = { userId, ...(name ? { name } : {}), ...(rooms ? { rooms } : {}) };
  return postJson<DevLoginResponse>(baseUrl, HTTP_PATHS.devLogin, body, {}, http);
}

export interface UpstreamMintOptions extends HttpOptions, UpstreamSessionRequest {
  baseUrl: string;
  accessToken: string;
}

/** `POST /api/rtc/upstream/openai`: an OpenAI Realtime client secret minted for this user. */
export function mintUpstreamSession({
  baseUrl,
  accessToken,
  room,
  model,
  voice,
  ...http
}: UpstreamMintOptions): Promise<UpstreamSessionResponse> {
  const body: UpstreamSessionRequest = {
    ...(room === undefined ? {} : { room }),
    ...(model === undefined ? {} : { model }),
    ...(voice === undefined ? {} : { voice }),
  };
  return postJson<UpstreamSessionResponse>(
    baseUrl,
    HTTP_PATHS.upstreamOpenai,
    body,
    { authorization: `Bearer ${accessToken}` },
    http,
  );
}

/** `DELETE /api/rtc/upstream/:id`: frees the user's slot early. */
export async function forgetUpstreamSession(
  baseUrl: string,
  accessToken: string,
  id: string,
  http: HttpOptions = {},
): Promise<void> {
  const path = `${HTTP_PATHS.upstreamSessions}/${encodeURIComponent(id)}`;
  await send('DELETE', baseUrl, path, undefined, { authorization: `Bearer ${accessToken}` }, http);
}

/** `GET /api/rtc/upstream/openai`: what the gateway offers, or undefined when it has no provider key (404). */
export async function upstreamCapability(
  baseUrl: string,
  http: HttpOptions = {},
): Promise<UpstreamCapabilityResponse | undefined> {
  try {
    const response = await send('GET', baseUrl, HTTP_PATHS.upstreamOpenai, undefined, {}, http);
    // 204: not offered. Gateways before it answered 404, handled below.
    if (response.status === 204) return undefined;
    return (await response.json()) as UpstreamCapabilityResponse;
  } catch (error) {
    if (error instanceof SwitchboardError && error.code === 'not_found') return undefined;
    throw error;
  }
}
