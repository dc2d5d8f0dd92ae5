import { afterEach, describe, expect, it } from 'vitest';
import type { RoomEpochPayload, RoomEvent } from '@switchboard/contract';
import type { HistoryPage, HistoryQuery } from '../src/history/types.js';
import { RoomStream, type RoomStreamOptions } from '../src/realtime/room-stream.js';
import { waitFor } from '../../support/ports.js';

const event = (seq: number): RoomEvent => ({ id: `e${seq}`, type: 't', data: seq, from: 'p', ts: Date.now(), seq });

/** A stream over an in-test history: `log` is what the shared history holds (from `first` on). */
function harness(opts: { holdMs?: number; first?: number } = {}) {
  const log: RoomEvent[] = [];
  const delivered: number[] = [];
  const moves: Array<Omit<RoomEpochPayload, 'room'>> = [];
  const reads: HistoryQuery[] = [];
  const first = () => opts.first ?? 1;
  const read = (_room: string, query: HistoryQuery): Promise<HistoryPage> => {
    reads.push(query);
    const top = log.at(-1)?.seq ?? 0;
    const kept = log.filter((e) => e.seq >= first());
    const after = query.after ?? Math.max(0, top - query.limit);
    return Promise.resolve({ epoch: 'a', top, events: kept.filter((e) => e.seq > after).slice(0, query.limit) });
  };
  const options: RoomStreamOptions = {
    read,
    restart: () => Promise.resolve('a'),
    onRegressed: () => undefined,
    historySize: 100,
    keep: 100,
    keepBytes: 1 << 20,
    holdMs: opts.holdMs ?? 20,
    output: {
      deliver: (_room, events) => delivered.push(...events.map((e) => e.seq)),
      moved: (_room, payload) => moves.push(payload),
    },
    onFilled: () => undefined,
    onFillError: () => undefined,
  };
  const stream = new RoomStream('r', options, { epoch: 'a', top: 0, events: [] });
  streams.push(stream);
  const publish = (...seqs: number[]) => {
    for (const seq of seqs) log.push(event(seq));
  };
  return { stream, log, delivered, moves, reads, publish };
}

const streams: RoomStream[] = [];
afterEach(() => {
  for (const stream of streams.splice(0)) stream.close();
});

describe('RoomStream', () => {
  it('delivers in seq order, each event once, whatever order the channel brings them in', () => {
    const { stream, delivered, publish, log } = harness({ holdMs: 1_000 });
    publish(1, 2, 3, 4);
    for (const seq of [1, 3, 2, 2, 1, 4]) stream.receive('a', log[seq - 1] as RoomEvent);
    expect(delivered).toEqual([1, 2, 3, 4]);
    expect(stream.position).toEqual({ epoch: 'a', seq: 4 });
    expect(stream.recentAfter(2)?.map((e) => e.seq)).toEqual([3, 4]);
  });

  it('holds an event ahead of a hole, then fills the hole from the history rather than skip it', async () => {
    const { stream, delivered, publish, log, reads } = harness({ holdMs: 20 });
    publish(1, 2, 3, 4);
    stream.receive('a', log[0] as RoomEvent);
    // 2 and 3 are lost on the channel; 4 arrives.
    stream.receive('a', log[3] as RoomEvent);
    expect(delivered).toEqual([1]);
    await waitFor('the hole filled', () => (delivered.length === 4 ? true : undefined));
    expect(delivered).toEqual([1, 2, 3, 4]);
    expect(reads[0]).toEqual({ after: 1, limit: 100 });
  });

  it('says what was lost when the history no longer holds the hole, and goes on', async () => {
    const { stream, delivered, moves, publish, log } = harness({ holdMs: 10, first: 4 });
    publish(1, 2, 3, 4, 5);
    stream.receive('a', log[0] as RoomEvent);
    stream.receive('a', log[4] as RoomEvent);
    await waitFor('delivery past the lost events', () => (delivered.at(-1) === 5 ? true : undefined));
    expect(delivered).toEqual([1, 4, 5]);
    expect(moves).toEqual([{ epoch: 'a', seq: 3, reason: 'history_expired' }]);
  });

  it('ignores an event it already delivered', () => {
    const { stream, delivered, publish, log } = harness();
    publish(1);
    stream.receive('a', log[0] as RoomEvent);
    stream.receive('a', log[0] as RoomEvent);
    expect(delivered).toEqual([1]);
  });
});
