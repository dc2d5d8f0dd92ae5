import {
  ROOM_NAME_PATTERN,
  type RoomDetailResponse,
  type RoomsListResponse,
  type RoomSummary,
} from '@switchboard/contract';
import type { RedisConnection } from '../redis/connection.js';
import type { RedisKeys } from '../redis/keys.js';
import type { RoomsApi } from './app.js';

/** `GET /api/rooms` and `GET /api/rooms/:room`: which rooms are active, across replicas. */
export interface RoomDirectory {
  /** Active rooms after `after` (by name), at most `limit`. */
  list(after: string | undefined, limit: number): Promise<RoomsListResponse>;
  detail(room: string): Promise<RoomDetailResponse>;
}

export class InvalidCursorError extends Error {}

/** The cursor is the last room of a page, opaque to clients. */
export const encodeCursor = (room: string): string => Buffer.from(room).toString('base64url');
export function decodeCursor(cursor: string): string {
  const room = Buffer.from(cursor, 'base64url').toString();
  if (!ROOM_NAME_PATTERN.test(room)) throw new InvalidCursorError('cursor is not one this API handed out');
  return room;
}

export interface RoomDirectoryOptions {
  /** Undefined in memory mode: this replica's rooms are all there are. */
  redis: RedisConnection | undefined;
  keys: RedisKeys;
  rooms: RoomsApi;
  /** Rooms with members on this replica (memory mode). */
  localRooms: () => Array<{ room: string; members: number }>;
}

export function createRoomDirectory({ redis, keys, rooms, localRooms }: RoomDirectoryOptions): RoomDirectory {
  const page = (names: string[], after: string | undefined, limit: number) => {
    const sorted = [...new Set(names)].filter((room) => after === undefined || room > after).sort();
    return { names: sorted.slice(0, limit), more: sorted.length > limit };
  };
  const topOf = async (room: string): Promise<number> =>
    (await rooms.history(room, { after: undefined, limit: 1 })).top;
  return {
    async list(after, limit) {
      let summaries: RoomSummary[];
      let more: boolean;
      if (!redis) {
        const local = new Map(localRooms().map(({ room, members }) => [room, members]));
        const chosen = page([...local.keys()], after, limit);
        more = chosen.more;
        summaries = await Promise.all(
          chosen.names.map(async (room) => ({ room, members: local.get(room) ?? 0, top: await topOf(room) })),
        );
      } else {
        // Every live replica lists the rooms it has members in (presence): their union is
        // every active room, without a SCAN over the keyspace (or each Cluster node).
        const replicas = await redis.run('rooms-replicas', (c) => c.zRange(keys.replicas, 0, -1));
        const lists = await redis.run('rooms-list', (c) =>
          Promise.all(replicas.map((id) => c.sMembers(keys.replica(id)))),
        );
        const chosen = page(lists.flat(), after, limit);
        more = chosen.more;
        const counts = await redis.run('rooms-counts', (c) =>
          Promise.all(
            chosen.names.map((room) => Promise.all([c.hLen(keys.presence(room)), c.hGet(keys.history(room), 's')])),
          ),
        );
        summaries = chosen.names.map((room, i) => ({
          room,
          members: counts[i]?.[0] ?? 0,
          top: Number(counts[i]?.[1] ?? 0) || 0,
        }));
      }
      const last = summaries[summaries.length - 1];
      // A room listed by a replica that has just let it go has no members: not active.
      const active = summaries.filter((summary) => summary.members > 0);
      return more && last ? { rooms: active, cursor: encodeCursor(last.room) } : { rooms: active };
    },
    async detail(room) {
      const [peers, history] = await Promise.all([
        rooms.peers(room),
        rooms.history(room, { after: undefined, limit: 1 }),
      ]);
      return {
        room,
        members: peers.length,
        epoch: history.epoch,
        top: history.top,
        replicas: [...new Set(peers.map((peer) => peer.replica))].sort(),
      };
    },
  };
}
