import { createHash } from 'node:crypto';

/** Length of the user slot tag at the start of every RTC token id. */
const SLOT_TAG_LENGTH = 8;

/**
 * A short tag derived from a user id, shared by all of that user's keys so that one
 * script may touch several of them on a Cluster. Hashing spreads users over slots and
 * keeps ids with any characters out of the braces.
 */
export function userSlotTag(userId: string): string {
  return createHash('sha256').update(userId).digest('base64url').slice(0, SLOT_TAG_LENGTH);
}

/** The owner's slot tag an RTC token id starts with (see `RtcTokenCodec.newJti`). */
export function slotTagOfJti(jti: string): string {
  return jti.slice(0, SLOT_TAG_LENGTH);
}

export type RedisKeys = ReturnType<typeof redisKeys>;

/**
 * Every key and channel Switchboard uses, in one place. `{…}` is the Cluster hash tag:
 * keys that one command or script touches together share it. Room names and user
 * slot tags never contain braces, and `#` never occurs in a room name, so bookkeeping
 * keys cannot collide with a room's.
 */
export function redisKeys(prefix: string) {
  return {
    /** String: the owner of an unused RTC token, or a used/revoked mark; `PX` = token TTL. */
    token: (jti: string) => `${prefix}rtc:token:{${slotTagOfJti(jti)}}${jti}`,
    /**
     * String: when a user was last removed from a room (ms), `PX` = the longest a token
     * minted before it can live; same slot as the user's tokens, so redemption reads it.
     */
    kick: (userId: string, room: string) =>
      `${prefix}rtc:kick:{${userSlotTag(userId)}}${userId.length}:${userId}${room}`,
    /** Counter: mints in the current window; same slot as the user's tokens. */
    mintWindow: (userId: string) => `${prefix}ratelimit:mint:{${userSlotTag(userId)}}${userId}`,
    /** Hash replica -> open sockets of one user, for the cluster-wide connection cap. */
    connections: (userId: string) => `${prefix}connections:{${userSlotTag(userId)}}${userId}`,
    /** Hash peerId -> PeerInfo JSON: the room's peers across replicas. */
    presence: (room: string) => `${prefix}presence:{${room}}`,
    /**
     * List of the room's lifecycle webhooks (JSON bodies) not yet in the outbox, oldest
     * first: on a Cluster the outbox stream is in another slot, so the presence scripts put
     * them here in the same step as the presence change, and a replica moves them.
     */
    webhookPending: (room: string) => `${prefix}presence:{${room}}:hooks`,
    /** String: the claim `<replica>#<n>` of whoever moves the room's pending webhooks now, `PX` = a few seconds. */
    webhookPendingClaim: (room: string) => `${prefix}presence:{${room}}:hooks:claim`,
    /** Hash `e` (epoch), `s` (last seq) of a room's history. */
    history: (room: string) => `${prefix}history:{${room}}`,
    /** List of the room's last events (JSON), oldest first. */
    historyLog: (room: string) => `${prefix}history:{${room}}:log`,
    /** Pub/sub channel of a room's traffic between replicas (events, signals, presence). */
    roomChannel: (room: string) => `${prefix}room:{${room}}`,
    /** Sorted set of a user's live upstream (AI voice) secret ids, scored by expiry (ms). */
    upstreamSlots: (tag: string) => `${prefix}rtc:upstream:user:{${tag}}`,
    /** Sorted set of a user's upstream reservations in the rate window, scored by when (ms); same slot. */
    upstreamMints: (tag: string) => `${prefix}rtc:upstream:mints:{${tag}}`,
    /** String: an upstream secret's record (owner, room, model; never the secret), `PX` = its lifetime. */
    upstreamRecord: (tag: string, key: string) => `${prefix}rtc:upstream:{${tag}}.${key}`,
    /** Hash replica -> its latest operations report (JSON), read by the dashboard's overview. */
    adminReports: `${prefix}admin:#reports`,
    /**
     * Stream: one partition of the lifecycle-webhook outbox (fields `r` room, `b` body), read
     * by the consumer group `deliverers`. A room's webhooks always go to the same partition.
     * On one server or Sentinel the presence scripts write it in the same step as the
     * presence hash; on a Cluster it is another slot, and the entries come from the
     * room's `webhookPending` list.
     */
    webhookOutbox: (partition: number) => `${prefix}webhooks:{outbox:${partition}}`,
    /** String: the replica delivering that partition now, `PX` = the lease; same slot as the stream. */
    webhookLease: (partition: number) => `${prefix}webhooks:{outbox:${partition}}:lease`,
    /** Sorted set replica -> when it last said it delivers webhooks (ms): how many share the partitions. */
    webhookDeliverers: `${prefix}webhooks:deliverers`,
    /**
     * String `<id> <seq>`: the answer to a publish's idempotency key in a room, `PX` =
     * IDEMPOTENCY_WINDOW_SECONDS; in the room's slot, so the append script reads and writes it.
     */
    idempotency: (room: string, key: string) => `${prefix}history:{${room}}:idem:${key}`,
    /** Sorted set replica -> last heartbeat (ms). */
    replicas: `${prefix}presence:#replicas`,
    /** Set of the rooms a replica has members in, so a survivor can find its peers and clean up after it. */
    replica: (id: string) => `${prefix}presence:#replica:${id}`,
  };
}
