import { SwitchboardError, describeError, isErrorCode } from './errors.js';

/**
 * The success fields of an ack, or a SwitchboardError carrying the contract code of
 * `{ok:false, error}`. Acks are checked rather than trusted: a gateway of another
 * version must produce a clear error, not an undefined field deep in app code.
 */
export function unwrapAck(raw: unknown, operation: string): Record<string, unknown> {
  if (typeof raw === 'object' && raw !== null) {
    const ack = raw as { ok?: unknown; error?: unknown };
    if (ack.ok === true) return raw as Record<string, unknown>;
    if (ack.ok === false && typeof ack.error === 'object' && ack.error !== null) {
      const error = ack.error as { code?: unknown; message?: unknown };
      const code = isErrorCode(error.code) ? error.code : 'internal';
      throw new SwitchboardError(code, typeof error.message === 'string' ? error.message : describeError(code));
    }
  }
  throw new SwitchboardError('internal', `${operation} got a malformed acknowledgement`);
}
