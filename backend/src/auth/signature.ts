import { createHmac } from 'node:crypto';

/** The header every request the gateway signs carries (room authorizer, webhooks). */
export const SIGNATURE_HEADER = 'Switchboard-Signature';

/**
 * `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, as Stripe signs webhooks: the
 * timestamp is covered by the MAC, so a receiver can refuse old requests replayed later.
 */
export function signatureHeader(secret: string, body: string, nowMs: number = Date.now()): string {
  const t = Math.floor(nowMs / 1000);
  const v1 = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
  return `t=${t},v1=${v1}`;
}
