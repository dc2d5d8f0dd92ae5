import type { HistoryResponse, RecoveryFailureReason, RoomEvent, SessionPayload } from '@switchboard/contract';
import { describe, expect, it } from 'vitest';
import { EventOrder } from '../src/sdk/event-order.js';

const event = (seq: number, id = `e${seq}`): RoomEvent => ({ id, type: 'note', data: {}, from: 'p', ts: seq, seq });

function order(page: HistoryResponse = { epoch: 'new', top: 0, events: [] }) {
  const delivered: string[] = [];
  const told: RecoveryFailureReason[] = [];
  const sdk = new EventOrder({
    deliver: (e) => delivered.push(e.id),
    fetchHistory: () => Promise.resolve(page),
    lost: (reason) => told.push(reason),
    holdMs: 1,
  });
  return { sdk, delivered, told };
}

const session = (epoch: string, seq: number, recovery?: SessionPayload['recovery']) =>
  ({ position: { epoch, seq }, ...(recovery ? { recovery } : {}) }) as SessionPayload;

describe('the SDK tells the app once when the room history moved', () => {
  it('tells once per new epoch, however many notices name it, and goes on delivering in it', () => {
    const { sdk, delivered, told } = order();
    sdk.start(session('old', 10));
    sdk.receive(event(11));
    sdk.moved({ epoch: 'new', seq: 8, reason: 'epoch_changed' });
    sdk.moved({ epoch: 'new', seq: 8, reason: 'epoch_changed' });
    sdk.receive(event(9, 'after-failover'));
    expect(told).toEqual(['epoch_changed']);
    expect(delivered).toEqual(['e11', 'after-failover']);
    sdk.moved({ epoch: 'newer', seq: 0, reason: 'epoch_changed' });
    expect(told).toEqual(['epoch_changed', 'epoch_changed']);
  });

  it('a refused recovery is the news: a notice of the same epoch after it is not told again', () => {
    const { sdk, told } = order();
    sdk.start(session('new', 4, { recovered: false, replayed: 0, reason: 'epoch_changed' }));
    sdk.moved({ epoch: 'new', seq: 4, reason: 'epoch_changed' });
    expect(told).toEqual([]);
  });

  it('a fill that finds another epoch tells once, and the gateway’s notice of it adds nothing', async () => {
    const { sdk, told } = order({ epoch: 'new', top: 3, events: [] });
    sdk.start(session('old', 1));
    sdk.receive(event(3));
    await new Promise((resolve) => setTimeout(resolve, 20));
    sdk.moved({ epoch: 'new', seq: 3, reason: 'epoch_changed' });
    expect(told).toEqual(['epoch_changed']);
  });
});
