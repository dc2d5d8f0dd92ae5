import {
  HTTP_PATHS,
  type Capability,
  type DevLoginResponse,
  type MintTokenRequest,
  type MintTokenResponse,
  type UpstreamCapabilityResponse,
  type UpstreamSessionRequest,
  type UpstreamSessionResponse,
} from '@switchboard/contract';
import { SwitchboardError, codeForStatus, isErrorCode, parseRetryAfter } from './errors.js';

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface HttpOptions {
  fetch?: FetchLike;
  /** @default 10000 */
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

export interface MintOptions extends HttpOptions {
  baseUrl: string;
  accessToken: string;
  room: string;
  caps?: Capability[];
}

/** `POST /api/rtc/tokens`: a single-use RTC token for one room, plus ICE servers. */
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

/** `POST /api/dev/login`: a development-only stand-in for your app's own login. */
export function devLogin(
  baseUrl: string,
  userId: string,
  name: string | undefined,
  http: HttpOptions = {},
): Promise<DevLoginResponse> {
  return postJson<DevLoginResponse>(baseUrl, HTTP_PATHS.devLogin, name ? { userId, name } : { userId }, {}, http);
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
    return (await (
      await send('GET', baseUrl, HTTP_PATHS.upstreamOpenai, undefined, {}, http)
    ).json()) as UpstreamCapabilityResponse;
  } catch (error) {
    if (error instanceof SwitchboardError && error.code === 'not_found') return undefined;
    throw error;
  }
}
