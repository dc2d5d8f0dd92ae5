import { randomBytes } from 'node:crypto';
import type { JsonValue, PublishEventResponse, RoomEpochPayload, RoomEvent, RoomPosition } from '@switchboard/contract';
import {
  HistoryUnavailableError,
  capPage,
  type HistoryPage,
  type HistoryQuery,
  type RoomHistory,
} from '../history/types.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { RedisUnavailableError, type RedisConnection } from '../redis/connection.js';
import { LateWriteError } from '../redis/late.js';
import { createCoalescer } from './coalescer.js';
import { needsHistoryRead, planRecovery, refused, type Recovery } from './recovery.js';
import type { RoomBus } from './room-bus.js';
import { RoomStream, type RoomStreamOptions } from './room-stream.js';

export interface Rooms {
  /** Follows `room` for one more local member; resolves with its stream, positioned. */
  enter(room: string): Promise<RoomStream>;
  /** One member fewer; the room is let go a little after its last member leaves. */
  leave(room: string): void;
  /** Numbers and fans out an event; local (`local: true`) while Redis is unreachable. */
  publish(room: string, event: { type: string; data: JsonValue }, from: string): Promise<PublishEventResponse>;
  /** A history read (at most `historyReplyMaxBytes` of events); from this replica's stream when it holds the answer. */
  read(room: string, query: HistoryQuery): Promise<HistoryPage>;
  /** Works out what `recover` misses; `finish` then runs in the tick the socket joins. */
  prepareRecovery(stream: RoomStream, recover: RoomPosition): Promise<(now: number) => Recovery>;
  /** Sends what is queued for the room's local members (before a socket joins it). */
  flush(room: string): void;
  /** Rooms with members on this replica. */
  count(): number;
  close(): void;
}

export interface RoomsOptions {
  history: RoomHistory;
  /** The rooms' channels: events arrive on it, and a room is followed there while it has members here. */
  bus: RoomBus;
  redis: RedisConnection | undefined;
  historySize: number;
  historyMaxBytes: number;
  historyReplyMaxBytes: number;
  historyTtlSeconds: number;
  recoveryMaxEvents: number;
  coalesceMs: number;
  /** Writes to the room's local members. */
  emitEvents: (room: string, events: RoomEvent[]) => void;
  emitMoved: (room: string, payload: RoomEpochPayload) => void;
  logger: Logger;
  metrics: Metrics;
}

interface Entry {
  refs: number;
  stream: RoomStream | undefined;
  ready: Promise<RoomStream>;
  /** Channel events that arrived while the stream was being positioned. */
  pending: Array<{ epoch: string; event: RoomEvent }>;
  linger: NodeJS.Timeout | undefined;
  lastActivity: number;
}

/** A room stays followed this long after its last member left, so a reconnect finds it warm. */
const LINGER_MS = 5_000;
/** An event ahead of its predecessor waits this long for it before the hole is filled. */
const HOLD_MS = 25;

/**
 * The rooms this replica follows: for each, a RoomStream that turns the room's channel
 * into ordered, gap-free delivery, and a coalescer in front of the members' sockets.
 */
export function createRooms(options: RoomsOptions): Rooms {
  const { history, bus, redis, metrics } = options;
  const log = options.logger.child({ component: 'rooms' });
  const entries = new Map<string, Entry>();
  const idPrefix = randomBytes(6).toString('base64url');
  let counter = 0;
  let lastFillWarning = 0;
  // Recoveries and reads are served from here; keep enough for both (nothing with history off).
  const keep = options.historySize > 0 ? Math.max(options.historySize, options.recoveryMaxEvents) : 0;

  const coalescer = createCoalescer({ deliver: options.emitEvents, coalesceMs: options.coalesceMs });

  const settings: RoomStreamOptions = {
    read: (room, query) => history.read(room, query),
    restart: (room, epoch) => history.restart(room, epoch),
    onRegressed: (room) => {
      metrics.historyRegressions.inc();
      log.warn({ room }, 'room history went backwards (lost writes or an older snapshot): new epoch');
    },
    historySize: options.historySize,
    keep,
    keepBytes: options.historyMaxBytes,
    holdMs: HOLD_MS,
    output: {
      deliver: (room, events) => coalescer.push(room, events),
      moved: (room, payload) => {
        // Whatever is queued was numbered in the old epoch: it goes first.
        coalescer.flush(room);
        metrics.roomEpochMoves.inc({ reason: payload.reason ?? 'none' });
        options.emitMoved(room, { room, ...payload });
      },
    },
    onFilled: (events) => metrics.historyFilled.inc(events),
    onFillError: (error) => {
      metrics.historyFillFailures.inc();
      if (Date.now() - lastFillWarning < 5_000) return;
      lastFillWarning = Date.now();
      log.warn({ err: error instanceof Error ? error.message : String(error) }, 'history fill failed; retrying');
    },
  };

  /** Positions a new stream for `room`; channel events that arrive meanwhile wait in `pending`. */
  async function open(room: string, pending: Entry['pending']): Promise<RoomStream> {
    // Subscribed before the read: whatever is published after the read arrives on the channel.
    // While Redis is down the subscription waits for it, and the room starts locally meanwhile.
    if (redis?.isReady()) await bus.follow(room);
    else void bus.follow(room);
    let stream: RoomStream;
    try {
      if (redis && !redis.isReady()) throw new HistoryUnavailableError();
      stream = new RoomStream(room, settings, await history.read(room, { after: undefined, limit: keep }));
    } catch (error) {
      if (!redis) throw error;
      stream = RoomStream.local(room, settings);
    }
    for (const { epoch, event } of pending.splice(0)) stream.receive(epoch, event);
    return stream;
  }

  const follow = (room: string): Entry => {
    let entry = entries.get(room);
    if (!entry) {
      const pending: Entry['pending'] = [];
      const ready = open(room, pending).then((stream) => {
        created.stream = stream;
        return stream;
      });
      const created: Entry = {
        refs: 0,
        stream: undefined,
        ready,
        pending,
        linger: undefined,
        lastActivity: Date.now(),
      };
      // A failed open is reported to whoever awaits it; the entry must not keep it.
      ready.catch(() => {
        if (entries.get(room) === created) entries.delete(room);
      });
      entries.set(room, created);
      entry = created;
    }
    clearTimeout(entry.linger);
    entry.linger = undefined;
    return entry;
  };

  const release = (room: string, entry: Entry): void => {
    if (entry.refs > 0 || entry.linger) return;
    entry.linger = setTimeout(() => {
      if (entries.get(room) !== entry || entry.refs > 0) return;
      entries.delete(room);
      coalescer.flush(room);
      entry.stream?.close();
      bus.unfollow(room);
    }, LINGER_MS);
    entry.linger.unref();
  };

  const rejoin = (entry: Entry): void => {
    entry.stream?.rejoin().catch((error: unknown) => {
      log.warn({ err: error instanceof Error ? error.message : String(error) }, 'room rejoin failed; will retry');
    });
  };

  // Quiet rooms are read now and then: to keep their history's TTL alive while they
  // have members, and to notice an event lost at the very end of a burst.
  const checkMs = Math.min(60_000, Math.max(1_000, (options.historyTtlSeconds * 1000) / 3));
  const checker = setInterval(() => {
    const now = Date.now();
    for (const entry of entries.values()) {
      const stream = entry.stream;
      if (!stream) continue;
      if (stream.isLocal) {
        if (redis?.isReady()) rejoin(entry);
      } else if (now - entry.lastActivity >= checkMs) {
        entry.lastActivity = now;
        void stream.catchUp();
      }
    }
  }, checkMs);
  checker.unref();
  // Redis is back (a reconnect, or a silent link that answers again): local rooms rejoin
  // the shared history, and every other room reads what its channel may have dropped.
  const offReady = redis?.onReady(() => {
    for (const entry of entries.values()) {
      if (entry.stream?.isLocal) rejoin(entry);
      else void entry.stream?.catchUp();
    }
  });

  async function readPage(room: string, query: HistoryQuery): Promise<HistoryPage> {
    const stream = entries.get(room)?.stream;
    if (stream) {
      const { epoch, seq: top } = stream.position;
      if (options.historySize === 0) return { epoch, top, events: [] };
      const recent = stream.recentAfter(query.after ?? Math.max(0, top - query.limit));
      if (recent) return { epoch, top, events: recent.slice(0, query.limit) };
      // A local epoch exists only here: what this replica holds is all there is.
      if (stream.isLocal) return { epoch, top, events: [] };
    }
    if (redis && !redis.isReady()) throw new HistoryUnavailableError();
    return history.read(room, query);
  }

  // Events of the rooms this replica follows, from their channels (or memory mode's log).
  const offEvents = bus.onEvent((room, epoch, event) => {
    const entry = entries.get(room);
    if (!entry) return;
    entry.lastActivity = Date.now();
    if (entry.stream) entry.stream.receive(epoch, event);
    else entry.pending.push({ epoch, event });
  });
  // The channels may have dropped messages (the subscriber reconnected): read every room again.
  const offResubscribed = bus.onResubscribed(() => {
    for (const entry of entries.values()) void entry.stream?.catchUp();
  });

  /** Rooms with members here, kept as members come and go: read on every join, so never counted by a walk. */
  let occupied = 0;
  const ref = (entry: Entry, by: 1 | -1): void => {
    if (by === -1 && entry.refs === 0) return;
    entry.refs += by;
    if (entry.refs === 0) occupied--;
    else if (by === 1 && entry.refs === 1) occupied++;
  };

  return {
    async enter(room) {
      const entry = follow(room);
      ref(entry, 1);
      try {
        return await entry.ready;
      } catch (error) {
        ref(entry, -1);
        throw error;
      }
    },
    leave(room) {
      const entry = entries.get(room);
      if (!entry) return;
      ref(entry, -1);
      release(room, entry);
    },
    async publish(room, { type, data }, from) {
      const event = { id: `${idPrefix}-${(counter++).toString(36)}`, type, data, from, ts: Date.now() };
      metrics.eventsOut.inc({ event: 'room_event' });
      if (!redis || redis.isReady()) {
        try {
          const stream = entries.get(room)?.stream;
          // What this replica delivered: a history behind it went backwards (see GUARD_REGRESSED).
          const delivered = stream && !stream.isLocal ? stream.position : undefined;
          const { seq } = await history.append(room, event, delivered);
          const entry = entries.get(room);
          // Redis is back while this room was numbering locally.
          if (entry?.stream?.isLocal) rejoin(entry);
          return { id: event.id, seq };
        } catch (error) {
          if (!redis) throw error;
          if (!(error instanceof RedisUnavailableError) && !(error instanceof LateWriteError)) {
            log.warn({ err: error instanceof Error ? error.message : String(error) }, 'history append failed; local');
          }
        }
      }
      // Redis is unreachable: only this replica's members can be reached, under a local epoch.
      const entry = follow(room);
      const stream = await entry.ready;
      release(room, entry);
      const { seq } = stream.appendLocal(event);
      metrics.localPublishes.inc();
      return { id: event.id, seq, local: true };
    },
    async read(room, query) {
      return capPage(await readPage(room, query), options.historyReplyMaxBytes);
    },
    async prepareRecovery(stream, recover) {
      const maxEvents = options.recoveryMaxEvents;
      const historyDisabled = options.historySize === 0;
      if (!historyDisabled && recover.epoch === stream.position.epoch && recover.seq > stream.position.seq) {
        // Seen through another replica, not yet here: catch up before judging.
        await Promise.race([stream.catchUp(), new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
      }
      let fetched: RoomEvent[] = [];
      const recentAfter = (seq: number) => stream.recentAfter(seq);
      if (needsHistoryRead({ recover, position: stream.position, recentAfter, maxEvents, historyDisabled })) {
        // A local epoch exists only here: what this replica no longer holds is gone.
        if (stream.isLocal) return () => refused('history_expired');
        try {
          const page = await history.read(stream.room, { after: recover.seq, limit: maxEvents });
          if (page.epoch !== recover.epoch) return () => refused('epoch_changed');
          fetched = page.events;
        } catch {
          return () => refused('history_expired');
        }
      }
      return (now) =>
        planRecovery({
          recover,
          position: stream.position,
          recentAfter,
          fetched,
          maxEvents,
          ttlMs: options.historyTtlSeconds * 1000,
          now,
          historyDisabled,
        });
    },
    flush(room) {
      coalescer.flush(room);
    },
    count: () => occupied,
    close() {
      clearInterval(checker);
      offReady?.();
      offEvents();
      offResubscribed();
      for (const [room, entry] of entries) {
        clearTimeout(entry.linger);
        entry.stream?.close();
        bus.unfollow(room);
      }
      entries.clear();
      occupied = 0;
      coalescer.close();
    },
  };
}
