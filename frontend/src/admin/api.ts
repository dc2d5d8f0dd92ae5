import {
  ADMIN_PATHS,
  type AdminOverview,
  type AdminRoomDetail,
  type DevLoginResponse,
  type HttpErrorResponse,
  type PublishEventResponse,
} from '@switchboard/contract';

/** An answer that was not 2xx, with the gateway's code and message when it sent them. */
export class AdminApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'AdminApiError';
  }
}

async function call<T>(path: string, init: RequestInit & { token?: string } = {}): Promise<T> {
  const headers = new Headers(init.headers);
  if (init.token) headers.set('authorization', `Bearer ${init.token}`);
  if (init.body) headers.set('content-type', 'application/json');
  const response = await fetch(path, { ...init, headers });
  if (!response.ok) {
    const body = (await response.json().catch(() => undefined)) as HttpErrorResponse | undefined;
    throw new AdminApiError(
      response.status,
      body?.error.code ?? 'http_error',
      body?.error.message ?? `the gateway answered ${response.status}`,
    );
  }
  return response.status === 204 ? (undefined as T) : ((await response.json()) as T);
}

/** The dashboard's calls, all with the admin's token. */
export function adminApi(token: string) {
  const room = (name: string) => `${ADMIN_PATHS.rooms}/${encodeURIComponent(name)}`;
  return {
    overview: () => call<AdminOverview>(ADMIN_PATHS.overview, { token }),
    room: (name: string) => call<AdminRoomDetail>(room(name), { token }),
    kick: (name: string, userId: string) =>
      call<undefined>(`${room(name)}/members/${encodeURIComponent(userId)}`, { method: 'DELETE', token }),
    notice: (name: string, text: string) =>
      call<PublishEventResponse>(`${room(name)}/notices`, { method: 'POST', token, body: JSON.stringify({ text }) }),
  };
}

export type AdminApi = ReturnType<typeof adminApi>;

/** A token from the gateway's development sign-in; refused (404) outside development. */
export function devSignIn(): Promise<DevLoginResponse> {
  return call<DevLoginResponse>(ADMIN_PATHS.devLogin, { method: 'POST' });
}
