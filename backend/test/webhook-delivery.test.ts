import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebhookBody } from '@switchboard/contract';
import { joinRoom, scrapeMetric } from '../../support/client.js';
import { startTestGateway, type TestGateway } from '../../support/gateway.js';
import { waitFor } from '../../support/ports.js';
import { startWebhookReceiver, type WebhookReceiver } from '../../support/webhook-receiver.js';
import { DEV_SECRETS } from '../src/config/index.js';
import { retryDelayMs } from '../src/webhooks/dispatcher.js';

describe('the webhook retry schedule', () => {
  it('doubles from 1 s to a 30 s ceiling, each delay between half and all of it', () => {
    const ceilings = [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000];
    ceilings.forEach((ceiling, i) => {
      expect(retryDelayMs(i + 1, () => 0)).toBe(ceiling / 2);
      expect(retryDelayMs(i + 1, () => 1)).toBe(ceiling);
    });
  });
});

describe('webhook delivery to two receivers, one refusing (memory mode)', () => {
  let gateway: TestGateway;
  let accepting: WebhookReceiver;
  let refusing: WebhookReceiver;
  beforeAll(async () => {
    [accepting, refusing] = await Promise.all([startWebhookReceiver(), startWebhookReceiver()]);
    await refusing.behave({ kind: 'status', status: 503 });
    gateway = await startTestGateway({
      WEBHOOK_URLS: `${accepting.url},${refusing.url}`,
      WEBHOOK_RETRY_SECONDS: '3',
      WEBHOOK_EVENTS: 'room.occupied',
    });
  }, 30_000);
  afterAll(async () => {
    await gateway?.close();
    await Promise.all([accepting?.close(), refusing?.close()]);
  });

  it('sends each event once to the receiver that accepts it, retries the other, then gives up, counted and logged', async () => {
    const client = await joinRoom(gateway.url, 'ivy', 'refused-room');
    await waitFor(
      'the give-up',
      async () => ((await scrapeMetric(gateway.url, 'switchboard_webhooks_given_up_total')) >= 1 ? true : undefined),
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    client.close();
    expect(await refusing.attempts()).toBeGreaterThanOrEqual(2);
    expect(await scrapeMetric(gateway.url, 'switchboard_webhooks_retried_total')).toBeGreaterThanOrEqual(1);
    expect(await scrapeMetric(gateway.url, 'switchboard_webhooks_given_up_total', { reason: 'expired' })).toBe(1);
    expect(await scrapeMetric(gateway.url, 'switchboard_webhooks_delivered_total')).toBe(0);
    // The receiver that accepted got it once, though the other was retried: no repeats.
    const got = (await accepting.received()).map((hook) => JSON.parse(hook.body) as WebhookBody);
    expect(got.map((hook) => hook.type)).toEqual(['room.occupied']);
    const given = gateway
      .logs()
      .split('\n')
      .find((line) => line.includes('webhook given up'));
    expect(given).toContain('refused-room');
    expect(given).toContain('answered 503');
    // The secret that signs them never reaches the logs.
    expect(gateway.logs()).not.toContain(DEV_SECRETS.WEBHOOK_SECRET);
  });
});
