import { randomBytes } from 'node:crypto';
import type { MemberLeftReason, PeerInfo, PeerLeftReason, WebhookBody, WebhookEventType } from '@switchboard/contract';

/**
 * What presence and the voice broker tell the app's backend. Presence decides each
 * transition inside its Redis scripts; these are the bodies it hands them, prepared in
 * advance (an empty string for an event `WEBHOOK_EVENTS` filters out), so that a script
 * can write the ones that happened to the outbox in the same step as the presence change.
 */
export interface Lifecycle {
  /** False when webhooks are off: presence skips preparing bodies. */
  readonly enabled: boolean;
  /**
   * The outbox stream a presence script may write in the same step as the room's presence
   * hash, or undefined when it cannot (Redis Cluster: another slot, or memory mode); on a
   * Cluster the script then keeps the bodies in the room's pending list, and presence
   * moves them with `write`.
   */
  outboxKey(room: string): string | undefined;
  /** Most entries an outbox stream keeps (XADD MAXLEN ~). */
  readonly maxLength: number;
  /** `[room.occupied, member.joined]` bodies for `peer` joining `room`; `occupied` is used only if it was empty. */
  joined(room: string, peer: PeerInfo): [occupied: string, joined: string];
  left(room: string, peer: Pick<PeerInfo, 'peerId' | 'userId'>, reason: PeerLeftReason): string;
  vacated(room: string): string;
  upstreamMinted(
    room: string | undefined,
    userId: string,
    data: { id: string; provider: 'openai'; model: string; expiresAt: number },
  ): void;
  /** Writes bodies memory presence decided (or an `upstream.minted`) to the outbox, in order; failures are logged. */
  enqueue(room: string, bodies: string[]): void;
  /**
   * Writes bodies to the outbox, in order, and settles once they are there: how a
   * Cluster's presence moves a room's pending webhooks. Rejects when they may not be
   * written; the caller keeps them and tries again.
   */
  write(room: string, bodies: string[]): Promise<void>;
}

/** How a socket's end reads to the app's backend. */
export const MEMBER_LEFT_REASON: Record<PeerLeftReason, MemberLeftReason> = {
  disconnect: 'left',
  kicked: 'kicked',
  session_expired: 'expired',
  replica_lost: 'crashed',
  server_shutdown: 'drained',
};

export interface LifecycleOptions {
  replica: string;
  events: ReadonlySet<WebhookEventType>;
  outboxKey: (room: string) => string | undefined;
  maxLength: number;
  enqueue: (room: string, bodies: string[]) => void;
  /** Default: `enqueue`, settled at once. */
  write?: (room: string, bodies: string[]) => Promise<void>;
  now?: () => number;
}

export function createLifecycle({
  replica,
  events,
  outboxKey,
  maxLength,
  enqueue,
  write = (room, bodies) => {
    enqueue(room, bodies);
    return Promise.resolve();
  },
  now = Date.now,
}: LifecycleOptions): Lifecycle {
  // A webhook id: unique per transition (a random prefix per process, then a counter),
  // sortable by when it was made on one replica. Not a random draw per id: presence
  // prepares bodies on every join and leave.
  const origin = randomBytes(8).toString('base64url');
  let counter = 0;
  const newId = (): string => `wh_${now().toString(36)}${origin}${(counter++).toString(36)}`;
  const body = ({ type, ...rest }: Omit<WebhookBody, 'id' | 'ts' | 'replica'>): string =>
    // Key order fixed here: receivers see `{id, type, ts, room, …}`.
    events.has(type) ? JSON.stringify({ id: newId(), type, ts: now(), ...rest, replica }) : '';
  return {
    enabled: true,
    outboxKey,
    maxLength,
    joined: (room, peer) => [
      body({ type: 'room.occupied', room, data: {} }),
      body({ type: 'member.joined', room, userId: peer.userId, peerId: peer.peerId, data: { name: peer.name } }),
    ],
    left: (room, peer, reason) =>
      body({
        type: 'member.left',
        room,
        userId: peer.userId,
        peerId: peer.peerId,
        data: { reason: MEMBER_LEFT_REASON[reason] },
      }),
    vacated: (room) => body({ type: 'room.vacated', room, data: {} }),
    upstreamMinted(room, userId, data) {
      const minted = body({ type: 'upstream.minted', room: room ?? '', userId, data });
      if (minted) enqueue(room ?? '', [minted]);
    },
    enqueue,
    write,
  };
}

/** Webhooks off: nothing is prepared or written. */
export const NO_LIFECYCLE: Lifecycle = {
  enabled: false,
  outboxKey: () => undefined,
  maxLength: 0,
  joined: () => ['', ''],
  left: () => '',
  vacated: () => '',
  upstreamMinted: () => undefined,
  enqueue: () => undefined,
  write: () => Promise.resolve(),
};
