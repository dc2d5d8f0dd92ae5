import {
  HTTP_PATHS,
  type Capability,
  type DevLoginResponse,
  type MintTokenRequest,
  type MintTokenResponse,
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

/** POSTs JSON and returns the parsed body, or throws a SwitchboardError with a code. */
export async function postJson<T>(
  baseUrl: string,
  path: string,
  body: unknown,
  headers: Record<string, string>,
  options: HttpOptions = {},
): Promise<T> {
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  const timeoutMs = options.timeoutMs ?? 10_000;
  const url = new URL(path, baseUrl).toString();
  let response: Response;
  try {
    response = await doFetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    const timedOut = error instanceof Error && error.name === 'TimeoutError';
    throw new SwitchboardError(
      timedOut ? 'timeout' : 'unreachable',
      timedOut ? `POST ${path} timed out after ${timeoutMs} ms` : `POST ${path} failed: the server cannot be reached`,
      { cause: error },
    );
  }
  if (!response.ok) throw await errorFromResponse(response);
  return (await response.json()) as T;
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
