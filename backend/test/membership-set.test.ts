import { describe, expect, it } from 'vitest';
import { MembershipSet } from '../src/realtime/membership-set.js';
import type { Membership } from '../src/realtime/types.js';

const membership = (room: string): Membership => ({ room }) as Membership;

describe("a connection's memberships by room", () => {
  it('holds one room, then several in the order they were joined, and back down to none', () => {
    const rooms = new MembershipSet();
    const [lobby, call, feed] = [membership('lobby'), membership('call'), membership('feed')];
    expect(rooms.size).toBe(0);
    expect(rooms.get('lobby')).toBeUndefined();

    rooms.set('lobby', lobby);
    expect(rooms.size).toBe(1);
    expect(rooms.single()).toBe(lobby);
    expect(rooms.get('lobby')).toBe(lobby);
    expect(rooms.has('call')).toBe(false);

    rooms.set('call', call);
    rooms.set('feed', feed);
    expect(rooms.size).toBe(3);
    expect(rooms.single()).toBeUndefined();
    expect([...rooms.values()]).toEqual([lobby, call, feed]);

    expect(rooms.delete('call')).toBe(true);
    expect(rooms.delete('call')).toBe(false);
    expect([...rooms.values()]).toEqual([lobby, feed]);
    rooms.delete('lobby');
    expect(rooms.single()).toBe(feed);
    rooms.delete('feed');
    expect(rooms.size).toBe(0);
    expect([...rooms.values()]).toEqual([]);
  });

  it('replaces the membership of a room it holds, and deletes only the room it is asked to', () => {
    const rooms = new MembershipSet();
    const first = membership('lobby');
    const again = membership('lobby');
    rooms.set('lobby', first);
    rooms.set('lobby', again);
    expect(rooms.size).toBe(1);
    expect(rooms.get('lobby')).toBe(again);
    expect(rooms.delete('call')).toBe(false);
    expect(rooms.get('lobby')).toBe(again);
  });
});
