import { HANDSHAKE_ERROR_CODES } from '@switchboard/contract';
import { describe, expect, it } from 'vitest';
import { resolveBackoff } from '../src/sdk/backoff.js';
import {
  SwitchboardError,
  codeForStatus,
  connectErrorCode,
  describeError,
  parseRetryAfter,
} from '../src/sdk/errors.js';
import { errorFromResponse } from '../src/sdk/http.js';
import { unwrapAck } from '../src/sdk/acks.js';
import { planRetry } from '../src/sdk/retry-policy.js';

const backoff = resolveBackoff({ baseMs: 500, maxMs: 15_000, jitter: 0 });

describe('error codes', () => {
  it('reads every handshake refusal code from connect_error, and transport failures as unreachable', () => {
    for (const code of HANDSHAKE_ERROR_CODES) expect(connectErrorCode(new Error(code))).toBe(code);
    expect(connectErrorCode(new Error('xhr poll error'))).toBe('unreachable');
    expect(connectErrorCode(new Error('websocket error'))).toBe('unreachable');
    expect(connectErrorCode(new Error('timeout'))).toBe('unreachable');
    expect(connectErrorCode(Object.assign(new Error('refused'), { data: { code: 'rate_limited' } }))).toBe(
      'rate_limited',
    );
  });

  it('maps HTTP errors to the contract code in the body, or to the status', async () => {
    const limited = await errorFromResponse(
      new Response(JSON.stringify({ error: { code: 'rate_limited', message: 'too many tokens minted' } }), {
        status: 429,
        headers: { 'retry-after': '7' },
      }),
    );
    expect(limited).toBeInstanceOf(SwitchboardError);
    expect(limited.code).toBe('rate_limited');
    expect(limited.message).toBe('too many tokens minted');
    expect(limited.retryAfterMs).toBe(7000);

    const proxy = await errorFromResponse(new Response('<html>Bad Gateway</html>', { status: 502 }));
    expect(proxy.code).toBe('unreachable');
    expect(codeForStatus(401)).toBe('unauthorized');
    expect(codeForStatus(500)).toBe('internal');
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(10_000);
    expect(parseRetryAfter(null)).toBeUndefined();
  });

  it('turns a refused ack into an error carrying its code, and says which operation got a bad ack', () => {
    expect(unwrapAck({ ok: true, id: 'e1' }, 'publish')).toEqual({ ok: true, id: 'e1' });
    expect(() => unwrapAck({ ok: false, error: { code: 'not_in_room', message: 'gone' } }, 'signal')).toThrow(
      expect.objectContaining({ name: 'SwitchboardError', code: 'not_in_room', message: 'gone' }),
    );
    expect(() => unwrapAck({ ok: false, error: { code: 'made_up' } }, 'signal')).toThrow(
      expect.objectContaining({ code: 'internal' }),
    );
    expect(() => unwrapAck(undefined, 'peers')).toThrow('peers got a malformed acknowledgement');
  });

  it('has words for every code, from the contract where it has them', () => {
    expect(describeError('server_draining')).toBe('The server is restarting; reconnecting elsewhere.');
    expect(describeError('unreachable')).toBe('The server cannot be reached.');
  });
});

describe('retry plan', () => {
  it('retries transient refusals with backoff, on the same gateway', () => {
    for (const code of ['token_missing', 'token_invalid', 'token_expired', 'token_used', 'rate_limited'] as const) {
      expect(planRetry({ kind: 'error', code }, 2, backoff)).toEqual({
        action: 'retry',
        delayMs: 2000,
        rotate: false,
        code,
      });
    }
  });

  it('moves to the next gateway when this one is unreachable or draining', () => {
    expect(planRetry({ kind: 'error', code: 'unreachable' }, 0, backoff)).toMatchObject({ rotate: true, delayMs: 500 });
    expect(planRetry({ kind: 'error', code: 'server_draining' }, 0, backoff)).toMatchObject({ rotate: true });
    expect(planRetry({ kind: 'disconnect', reason: 'transport close' }, 0, backoff)).toMatchObject({ rotate: true });
    expect(planRetry({ kind: 'disconnect', reason: 'ping timeout' }, 0, backoff)).toMatchObject({ rotate: true });
  });

  it('rejoins the same gateway when it ended the session itself', () => {
    expect(planRetry({ kind: 'disconnect', reason: 'io server disconnect' }, 0, backoff)).toMatchObject({
      action: 'retry',
      rotate: false,
    });
  });

  it('waits as long as the draining replica asked, then goes elsewhere', () => {
    expect(planRetry({ kind: 'shutdown', reconnectAfterMs: 1234 }, 5, backoff)).toEqual({
      action: 'retry',
      delayMs: 1234,
      rotate: true,
      code: 'server_draining',
    });
  });

  it('honours Retry-After when it is longer than the backoff', () => {
    expect(planRetry({ kind: 'error', code: 'rate_limited', retryAfterMs: 30_000 }, 0, backoff)).toMatchObject({
      delayMs: 30_000,
    });
    expect(planRetry({ kind: 'error', code: 'rate_limited', retryAfterMs: 10 }, 1, backoff)).toMatchObject({
      delayMs: 1000,
    });
  });

  it('waits out an identity provider outage on the same gateway, rather than signing out', () => {
    expect(planRetry({ kind: 'error', code: 'identity_unavailable', retryAfterMs: 30_000 }, 0, backoff)).toMatchObject({
      action: 'retry',
      delayMs: 30_000,
      rotate: false,
      code: 'identity_unavailable',
    });
  });

  it('gives up on refusals that no retry can fix', () => {
    for (const code of ['origin_forbidden', 'unauthorized', 'forbidden', 'invalid_request'] as const) {
      expect(planRetry({ kind: 'error', code }, 0, backoff)).toEqual({ action: 'fail', code });
    }
  });
});
