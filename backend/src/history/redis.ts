import { randomBytes } from 'node:crypto';
import type { RoomEvent } from '@switchboard/contract';
import type { RedisConnection } from '../redis/connection.js';
import { redisKeys } from '../redis/keys.js';
import { GUARD_LATE, guardArgument, lateAware } from '../redis/late.js';
import { lua, runScript } from '../redis/lua.js';
import type { HistoryPage, HistoryQuery, HistorySettings, RoomHistory, UnsequencedEvent } from './types.js';

/**
 * Shared head of both scripts. KEYS[1]: the room's `{e: epoch, s: last seq, b: log bytes}` hash;
 * KEYS[2]: the list of its last events; ARGV[1]: a fresh epoch; ARGV[2]: TTL ms;
 * ARGV[3]: history size. Leaves `epoch` and `top` set, starting a new epoch when the
 * room has none, or when its log is gone while its counter is not (an eviction took one
 * key and not the other, or history was off): positions in a lost history must never
 * match. The log is always a contiguous run of seqs ending at `top`.
 */
const HEAD = `
local size = tonumber(ARGV[3])
local meta = redis.call('HMGET', KEYS[1], 'e', 's')
local epoch, top = meta[1], tonumber(meta[2] or '0')
if epoch and size > 0 and top > 0 and redis.call('EXISTS', KEYS[2]) == 0 then epoch = false end
if not epoch then
  epoch, top = ARGV[1], 0
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch, 's', 0, 'b', 0)
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if size > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
`;

/**
 * Partition guards (docs/architecture.md, "Partitions and late commands"), reading the
 * last argument `<deadline> <epoch> <seq>` (see redis/late.ts): GUARD_LATE refuses an
 * append that arrives after the gateway answered `local: true` for it, so no event is
 * both local and shared. GUARD_REGRESSED (after HEAD): the caller already delivered `seq`
 * in `epoch`; a history behind it went backwards (a failover lost acknowledged writes, an
 * older snapshot came back). The numbering goes on in a new epoch (the log is kept,
 * renamed), so no seq is handed out twice within one epoch.
 */
const GUARD_REGRESSED = `
if guard[2] == epoch and top < (tonumber(guard[3]) or 0) then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'e', epoch)
end
`;

/**
 * (After GUARD_REGRESSED.) The replication history of the server that numbers the room's
 * events (`master_replid`) changes with every failover and every restart. Writes just
 * before such a switch can be lost (replication is asynchronous; `appendfsync everysec`
 * can lose a second), and a replica that delivered none of them could not tell the
 * history went backwards. So the first event after a switch starts a new epoch: no seq
 * is handed out twice within one epoch, at the price of recovery across a failover or a
 * Redis restart answering `epoch_changed`. A room numbered before this field existed
 * only records it.
 */
const GUARD_LINEAGE = `
local lineage = string.match(redis.call('INFO', 'replication'), 'master_replid:(%x+)') or ''
local numberedBy = redis.call('HGET', KEYS[1], 'r')
if numberedBy ~= lineage then
  if numberedBy and top > 0 then
    epoch = ARGV[1]
    redis.call('HSET', KEYS[1], 'e', epoch)
  end
  redis.call('HSET', KEYS[1], 'r', lineage)
end
`;

/**
 * Idempotent publish: KEYS[3], present only when the publish has an idempotency key, holds
 * `<seq> <epoch> <id>` of the first publish with that key in the room for ARGV[8] ms (set
 * at the end of APPEND). A repeat answers `{'=', <that>}` and writes and publishes nothing;
 * without a key this costs nothing. Checked after GUARD_LATE: a late repeat is refused
 * like any late append.
 */
const IDEMPOTENT = `
if KEYS[3] then
  local first = redis.call('GET', KEYS[3])
  if first then return {'=', first} end
end
`;

/**
 * Numbers the event, keeps it, and publishes it on the room's channel, in one step:
 * Redis runs scripts one at a time, so the channel carries a room's events in seq order.
 * ARGV[4]: the channel; ARGV[5]: 1 for SPUBLISH (sharded), 0 for PUBLISH; ARGV[6]: the
 * event's JSON without its opening brace, to which the script prepends `{"seq":N,`;
 * ARGV[7]: most bytes the log may hold; ARGV[8], ARGV[9]: the idempotency window (ms) and the
 * event's id (see IDEMPOTENT). The message is `e<epoch> <event JSON>`.
 * The oldest events go first, by count or by bytes, but never the newest: the log stays
 * a contiguous run ending at `top`, and a log that exists is never empty.
 */
const APPEND = lua(`${GUARD_LATE}${IDEMPOTENT}${HEAD}${GUARD_REGRESSED}${GUARD_LINEAGE}
top = top + 1
local entry = '{"seq":' .. top .. ',' .. ARGV[6]
if size > 0 then
  local bytes = tonumber(redis.call('HGET', KEYS[1], 'b') or '0') + #entry
  local length = redis.call('RPUSH', KEYS[2], entry)
  local maxBytes = tonumber(ARGV[7])
  while length > 1 and (length > size or bytes > maxBytes) do
    bytes = bytes - #redis.call('LPOP', KEYS[2])
    length = length - 1
  end
  -- A log written before bytes were counted converges once its old entries are gone.
  if bytes < 0 then bytes = 0 end
  redis.call('HSET', KEYS[1], 's', top, 'b', bytes)
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
else
  redis.call('HSET', KEYS[1], 's', top)
  redis.call('DEL', KEYS[2])
end
redis.call(ARGV[5] == '1' and 'SPUBLISH' or 'PUBLISH', ARGV[4], 'e' .. epoch .. ' ' .. entry)
if KEYS[3] then redis.call('SET', KEYS[3], top .. ' ' .. epoch .. ' ' .. ARGV[9], 'PX', ARGV[8]) end
return {epoch, top}`);

/**
 * ARGV[4]: events after this seq, or -1 for the latest; ARGV[5]: at most this many.
 * The log holds seqs top-len+1 .. top, so an index is a subtraction.
 */
const READ = lua(`${HEAD}
local limit = tonumber(ARGV[5])
local events = {}
if size > 0 and limit > 0 and top > 0 then
  local after = tonumber(ARGV[4])
  if after < 0 then
    events = redis.call('LRANGE', KEYS[2], -limit, -1)
  elseif after < top then
    local first = top - redis.call('LLEN', KEYS[2]) + 1
    local from = math.max(after + 1 - first, 0)
    events = redis.call('LRANGE', KEYS[2], from, from + limit - 1)
  end
end
return {epoch, top, events}`);

/**
 * Starts a new epoch for a room whose history went backwards, if it is still in
 * `ARGV[4]` (another replica may have started one already); the log is kept, renamed.
 */
const RESTART = lua(`${HEAD}
if epoch == ARGV[4] then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'e', epoch)
end
return {epoch, top}`);

function parseEvents(entries: unknown): RoomEvent[] {
  if (!Array.isArray(entries)) return [];
  return entries.flatMap((entry) => (typeof entry === 'string' ? [JSON.parse(entry) as RoomEvent] : []));
}

/**
 * The history in Redis: per room, `history:{room}` (epoch and last seq) and
 * `history:{room}:log` (the last `size` events), both expiring `ttlSeconds` after the
 * room's last event or join; the room's channel shares their hash tag, so the append
 * script may publish on it on a Cluster too.
 */
export function createRedisHistory(
  redis: RedisConnection,
  {
    keyPrefix,
    sharded,
    size,
    maxBytes,
    ttlSeconds,
    idempotencyWindowSeconds = 300,
  }: HistorySettings & { keyPrefix: string; sharded: boolean },
): RoomHistory {
  const keys = redisKeys(keyPrefix);
  const ttlMs = ttlSeconds * 1000;
  const epoch = () => randomBytes(6).toString('base64url');
  return {
    kind: 'redis',
    async append(room, event: UnsequencedEvent, delivered, idempotencyKey) {
      // `{"seq":N,` is prepended by the script, so the event is encoded exactly once.
      const tail = JSON.stringify(event).slice(1);
      const scriptKeys = [keys.history(room), keys.historyLog(room)];
      if (idempotencyKey !== undefined) scriptKeys.push(keys.idempotency(room, idempotencyKey));
      const reply = await redis.run(
        'history-append',
        (c) =>
          lateAware(
            'history-append',
            runScript(c, APPEND, scriptKeys, [
              epoch(),
              ttlMs,
              size,
              keys.roomChannel(room),
              sharded ? 1 : 0,
              tail,
              maxBytes,
              idempotencyWindowSeconds * 1000,
              event.id,
              // Last, whatever is added before it: see GUARD_LATE.
              delivered ? guardArgument(redis, delivered.epoch, delivered.seq) : guardArgument(redis),
            ]),
          ),
        // The circuit of a Cluster is per master: see RedisConnection.run.
        { key: keys.history(room) },
      );
      if (Array.isArray(reply) && reply[0] === '=' && typeof reply[1] === 'string') {
        const [seq, epoch, id] = reply[1].split(' ');
        if (seq && epoch && id) return { epoch, seq: Number(seq), id, repeated: true };
      }
      if (!Array.isArray(reply) || typeof reply[0] !== 'string' || typeof reply[1] !== 'number') {
        throw new Error('history-append: unexpected reply');
      }
      return { epoch: reply[0], seq: reply[1], id: event.id };
    },
    async read(room, { after, limit }: HistoryQuery): Promise<HistoryPage> {
      const reply = await redis.run('history-read', (c) =>
        runScript(c, READ, [keys.history(room), keys.historyLog(room)], [epoch(), ttlMs, size, after ?? -1, limit]),
      );
      if (!Array.isArray(reply) || typeof reply[0] !== 'string' || typeof reply[1] !== 'number') {
        throw new Error('history-read: unexpected reply');
      }
      return { epoch: reply[0], top: reply[1], events: parseEvents(reply[2]) };
    },
    async restart(room, known) {
      const reply = await redis.run('history-restart', (c) =>
        runScript(c, RESTART, [keys.history(room), keys.historyLog(room)], [epoch(), ttlMs, size, known]),
      );
      if (!Array.isArray(reply) || typeof reply[0] !== 'string') throw new Error('history-restart: unexpected reply');
      return reply[0];
    },
  };
}
