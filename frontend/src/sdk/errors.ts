import { ERROR_CODES, ERROR_MESSAGES, isHandshakeErrorCode, type ErrorCode } from '@switchboard/contract';

/**
 * Codes the SDK adds to the contract's: failures that happen on the client side of
 * the wire, so they never arrive from a server.
 */
export const CLIENT_ERROR_CODES = ['unreachable', 'timeout', 'not_connected', 'closed', 'kicked'] as const;
export type ClientOnlyErrorCode = (typeof CLIENT_ERROR_CODES)[number];
export type ClientErrorCode = ErrorCode | ClientOnlyErrorCode;

export const CLIENT_ERROR_MESSAGES: Record<ClientOnlyErrorCode, string> = {
  unreachable: 'The server cannot be reached.',
  timeout: 'The server took too long to answer.',
  not_connected: 'Not connected to the room right now.',
  closed: 'You left the room.',
  kicked: 'You were removed from this room.',
};

export function isErrorCode(value: unknown): value is ErrorCode {
  return (ERROR_CODES as readonly unknown[]).includes(value);
}

/** Human text for any code the SDK can report. */
export function describeError(code: ClientErrorCode): string {
  return isErrorCode(code) ? ERROR_MESSAGES[code] : CLIENT_ERROR_MESSAGES[code];
}

export interface SwitchboardErrorOptions {
  /** HTTP status, when the error came from the HTTP API. */
  status?: number;
  /** How long the server asked us to wait (`Retry-After`), in milliseconds. */
  retryAfterMs?: number;
  cause?: unknown;
}

/** Every error the SDK rejects with or reports carries a contract (or client) code. */
export class SwitchboardError extends Error {
  override readonly name = 'SwitchboardError';
  readonly code: ClientErrorCode;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(code: ClientErrorCode, message: string = describeError(code), options: SwitchboardErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** The code of a Socket.IO `connect_error`: the contract's handshake codes, else a transport failure. */
export function connectErrorCode(error: { message: string; data?: unknown }): ClientErrorCode {
  if (isHandshakeErrorCode(error.message)) return error.message;
  const data = error.data;
  if (typeof data === 'object' && data !== null) {
    const code = (data as { code?: unknown }).code;
    if (isErrorCode(code)) return code;
  }
  // "xhr poll error", "websocket error", "timeout": the gateway was not reached.
  return 'unreachable';
}

/** The code for an HTTP error status when the body did not carry one (e.g. from a load balancer). */
export function codeForStatus(status: number): ClientErrorCode {
  if (status === 400) return 'invalid_request';
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not_found';
  if (status === 413) return 'payload_too_large';
  if (status === 429) return 'rate_limited';
  if (status === 502 || status === 503 || status === 504) return 'unreachable';
  return 'internal';
}

/** Wraps anything thrown into a SwitchboardError, keeping one that already is. */
export function toSwitchboardError(error: unknown, fallback: ClientErrorCode = 'internal'): SwitchboardError {
  if (error instanceof SwitchboardError) return error;
  const message = error instanceof Error ? error.message : undefined;
  return new SwitchboardError(fallback, message ?? describeError(fallback), { cause: error });
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, Math.round(seconds * 1000));
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
