import { ERROR_MESSAGES, type ErrorCode, type HttpErrorResponse } from '@switchboard/contract';

/** The HTTP status of each code the HTTP API answers with (400 for any other). */
export const ERROR_STATUS: Partial<Record<ErrorCode, number>> = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  payload_too_large: 413,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
  upstream_unavailable: 502,
  server_draining: 503,
  identity_unavailable: 503,
  authorizer_unavailable: 503,
};

/** An error with a contract code; the HTTP error handler turns it into the JSON body. */
export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string = ERROR_MESSAGES[code],
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = ERROR_STATUS[code] ?? 400;
  }

  body(): HttpErrorResponse {
    return { error: { code: this.code, message: this.message } };
  }
}
