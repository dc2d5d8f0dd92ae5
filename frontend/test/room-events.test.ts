import type { RoomEvent } from '@switchboard/contract';
import { describe, expect, it } from 'vitest';
import { unpackRoomEvents } from '../src/sdk/room-events.js';

const event = (n: number): RoomEvent => ({
  id: `e${n}`,
  type: 'note',
  data: { n },
  from: 'peer-1',
  ts: 1000 + n,
  seq: n,
});

describe('room event batches', () => {
  it('unpacks a coalesced batch into single events, oldest first', () => {
    expect(unpackRoomEvents([event(1), event(2), event(3)]).map((e) => e.id)).toEqual(['e1', 'e2', 'e3']);
  });

  it('passes a single event through', () => {
    expect(unpackRoomEvents(event(4))).toEqual([event(4)]);
  });

  it('drops entries that are not room events rather than handing apps garbage', () => {
    expect(unpackRoomEvents([event(1), null, { id: 'x' }, event(2)]).map((e) => e.id)).toEqual(['e1', 'e2']);
    expect(unpackRoomEvents(undefined)).toEqual([]);
  });
});
