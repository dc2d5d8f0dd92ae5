import type { JsonValue, PeerInfo, SessionPayload } from '@switchboard/contract';
import type { ConnectionState, Room } from './client.js';
import { Emitter } from './emitter.js';
import { SwitchboardError } from './errors.js';
import { PerfectNegotiation, isPolite } from './negotiation.js';
import { createBrowserPeerConnection, type PeerConnectionFactory, type PeerConnectionLike } from './peer-connection.js';

/** The parts of a Room a call uses. */
export type CallRoom = Pick<Room, 'peerId' | 'session' | 'iceServers' | 'on' | 'signal' | 'peers'>;

export interface CallOptions {
  room: CallRoom;
  /** Camera and microphone to send; can also be set later with `setLocalStream`. */
  localStream?: MediaStream;
  /** Defaults to real RTCPeerConnections; tests pass fakes. */
  createPeerConnection?: PeerConnectionFactory;
  /**
   * How long the polite side of a new connection waits for the other side's offer
   * before making its own.
   * @default 3000
   */
  politeFirstOfferDelayMs?: number;
  /**
   * A connection whose ICE has not even started after this long is replaced (by the
   * impolite side, which says `bye` first so the other side starts over too).
   * @default 10000
   */
  stallTimeoutMs?: number;
}

export type PeerConnectionStatus = RTCPeerConnectionState | 'none';

export interface CallPeer {
  peerId: string;
  userId: string;
  name: string;
  /** The replica the peer is connected to, when known. */
  replica: string | undefined;
  /** `none` when no connection to this peer exists (yet, or after it hung up). */
  connectionState: PeerConnectionStatus;
  chatOpen: boolean;
  polite: boolean;
  /** Media the peer sends us. */
  streams: MediaStream[];
}

export interface ChatMessage {
  peerId: string;
  name: string;
  text: string;
  /** Epoch milliseconds at which the sender sent it. */
  ts: number;
  /** True for messages this side sent. */
  self: boolean;
}

export interface CallEventMap {
  /** Membership or any connection's state changed. */
  peers: CallPeer[];
  chat: ChatMessage;
  /** A connection failed in a way the protocol does not absorb. */
  error: { peerId: string; error: unknown };
}

interface Link {
  readonly pc: PeerConnectionLike;
  readonly negotiation: PerfectNegotiation;
  connectionState: RTCPeerConnectionState;
  chatOpen: boolean;
  readonly streams: Map<string, MediaStream>;
  watchdog: ReturnType<typeof setTimeout> | undefined;
}

/** Errors that only mean the other side is gone or we are between sessions. */
const EXPECTED_SIGNAL_ERRORS = new Set(['not_in_room', 'not_connected', 'closed']);

/**
 * A mesh call over a room: one peer connection per remote peer, negotiated with
 * perfect negotiation over `signal`, each with a chat data channel. A rejoin gives
 * us a new peer id, so every connection is rebuilt then; peers that leave are closed.
 */
export class Call extends Emitter<CallEventMap> {
  readonly #room: CallRoom;
  readonly #factory: PeerConnectionFactory;
  readonly #politeDelayMs: number;
  readonly #stallTimeoutMs: number;
  readonly #members = new Map<string, PeerInfo>();
  readonly #links = new Map<string, Link>();
  /** Peers that left; late signals from them must not resurrect a connection. */
  readonly #departed = new Set<string>();
  readonly #unsubscribe: Array<() => void>;
  #myPeerId: string | undefined;
  #localStream: MediaStream | undefined;
  #closed = false;

  constructor(options: CallOptions) {
    super();
    this.#room = options.room;
    this.#factory = options.createPeerConnection ?? createBrowserPeerConnection;
    this.#politeDelayMs = options.politeFirstOfferDelayMs ?? 3_000;
    this.#stallTimeoutMs = options.stallTimeoutMs ?? 10_000;
    this.#localStream = options.localStream;
    const room = this.#room;
    this.#unsubscribe = [
      room.on('session', (session) => {
        this.#onSession(session);
      }),
      room.on('peer:joined', (peer) => {
        this.#onPeerJoined(peer);
      }),
      room.on('peer:left', ({ peerId }) => {
        this.#onPeerLeft(peerId);
      }),
      room.on('signal', ({ from, kind, data }) => {
        this.#onSignal(from, kind, data);
      }),
      room.on('state', (state) => {
        this.#onState(state);
      }),
    ];
    if (room.session) this.#onSession(room.session);
  }

  get myPeerId(): string | undefined {
    return this.#myPeerId;
  }

  peers(): CallPeer[] {
    return [...this.#members.values()]
      .sort((a, b) => a.joinedAt - b.joinedAt || a.peerId.localeCompare(b.peerId))
      .map((member) => {
        const link = this.#links.get(member.peerId);
        return {
          peerId: member.peerId,
          userId: member.userId,
          name: member.name,
          replica: member.replica || undefined,
          connectionState: link?.connectionState ?? 'none',
          chatOpen: link?.chatOpen ?? false,
          polite: this.#myPeerId !== undefined && isPolite(this.#myPeerId, member.peerId),
          streams: link ? [...link.streams.values()] : [],
        };
      });
  }

  /** Sends a chat message to every peer whose channel is open; returns how many got it. */
  sendChat(text: string): number {
    const body = JSON.stringify({ text, ts: Date.now() });
    let sent = 0;
    for (const link of this.#links.values()) {
      if (!link.chatOpen) continue;
      link.pc.sendChat(body);
      sent += 1;
    }
    if (sent > 0) {
      this.emit('chat', {
        peerId: this.#myPeerId ?? '',
        name: this.#room.session?.name ?? '',
        text,
        ts: Date.now(),
        self: true,
      });
    }
    return sent;
  }

  /** Starts sending this stream's tracks to every peer, now and later (renegotiates). */
  setLocalStream(stream: MediaStream): void {
    this.#localStream = stream;
    for (const link of this.#links.values()) this.#addTracks(link.pc);
  }

  /** Says goodbye to every peer and stops following the room; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const peerId of [...this.#links.keys()]) {
      this.#room.signal(peerId, 'bye', null).catch(() => undefined);
      this.#closeLink(peerId);
    }
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    this.#members.clear();
    this.emit('peers', []);
    this.removeAllListeners();
  }

  // ---- room events ----------------------------------------------------------

  #onSession(session: SessionPayload): void {
    if (this.#closed || session.peerId === this.#myPeerId) return;
    // A new peer id: every peer knew us by the old one, so every connection starts over.
    for (const peerId of [...this.#links.keys()]) this.#closeLink(peerId);
    this.#members.clear();
    this.#departed.clear();
    // After losing a replica, presence can list our old self until its entry expires.
    if (this.#myPeerId) this.#departed.add(this.#myPeerId);
    this.#myPeerId = session.peerId;
    for (const peer of session.peers) {
      if (peer.peerId === session.peerId || this.#departed.has(peer.peerId)) continue;
      this.#members.set(peer.peerId, peer);
      this.#ensureLink(peer.peerId);
    }
    this.#emitPeers();
  }

  #onPeerJoined(peer: PeerInfo): void {
    if (this.#closed || !this.#myPeerId || peer.peerId === this.#myPeerId || this.#departed.has(peer.peerId)) return;
    this.#members.set(peer.peerId, peer);
    this.#ensureLink(peer.peerId);
    this.#emitPeers();
  }

  #onPeerLeft(peerId: string): void {
    if (this.#closed) return;
    this.#departed.add(peerId);
    this.#members.delete(peerId);
    this.#closeLink(peerId);
    this.#emitPeers();
  }

  #onSignal(from: string, kind: string, data: JsonValue): void {
    if (this.#closed || !this.#myPeerId || from === this.#myPeerId || this.#departed.has(from)) return;
    if (kind === 'bye') {
      this.#closeLink(from);
      this.#emitPeers();
      return;
    }
    if (kind !== 'offer' && kind !== 'answer' && kind !== 'candidate') return;
    if (!this.#members.has(from)) {
      // Signals can overtake the `peer:joined` announcement; learn the name afterwards.
      this.#members.set(from, { peerId: from, userId: '', name: 'Someone', replica: '', joinedAt: Date.now() });
      this.#lookUpMembers();
    }
    const link = this.#ensureLink(from);
    void link.negotiation.receive(kind, data);
  }

  #onState(state: ConnectionState): void {
    // While reconnecting, media keeps flowing peer to peer; only leaving ends the call.
    if (state.status !== 'disconnected' && state.status !== 'failed') return;
    for (const peerId of [...this.#links.keys()]) this.#closeLink(peerId);
    this.#members.clear();
    this.#myPeerId = undefined;
    this.#emitPeers();
  }

  #lookUpMembers(): void {
    this.#room.peers().then(
      (peers) => {
        let changed = false;
        for (const peer of peers) {
          if (this.#members.has(peer.peerId) && !this.#departed.has(peer.peerId)) {
            this.#members.set(peer.peerId, peer);
            changed = true;
          }
        }
        if (changed) this.#emitPeers();
      },
      () => undefined,
    );
  }

  // ---- connections ------------------------------------------------------------

  #ensureLink(peerId: string): Link {
    const existing = this.#links.get(peerId);
    if (existing) return existing;
    const me = this.#myPeerId ?? '';
    const room = this.#room;
    const current = () => this.#links.get(peerId) === link;
    // The connection's handlers and its negotiation refer to each other; this breaks the cycle.
    const ref: { negotiation?: PerfectNegotiation } = {};
    const pc = this.#factory(
      { iceServers: room.iceServers },
      {
        negotiationNeeded: () => {
          if (current()) void ref.negotiation?.negotiationNeeded();
        },
        iceCandidate: (candidate) => {
          if (current()) ref.negotiation?.iceCandidate(candidate);
        },
        track: (track, streams) => {
          if (!current()) return;
          const stream = streams[0] ?? new MediaStream([track]);
          link.streams.set(stream.id, stream);
          this.#emitPeers();
        },
        connectionStateChange: (state) => {
          if (!current()) return;
          link.connectionState = state;
          // A changed network path: ask ICE to try again instead of giving up on the peer.
          if (state === 'failed') pc.restartIce();
          this.#emitPeers();
        },
        chatOpen: () => {
          if (!current()) return;
          link.chatOpen = true;
          this.#emitPeers();
        },
        chatClose: () => {
          if (!current()) return;
          link.chatOpen = false;
          this.#emitPeers();
        },
        chatMessage: (text) => {
          if (current()) this.#onChat(peerId, text);
        },
      },
    );
    const polite = isPolite(me, peerId);
    const negotiation = new PerfectNegotiation({
      pc,
      polite,
      yieldFirstOfferMs: polite ? this.#politeDelayMs : 0,
      send: (kind, data) => room.signal(peerId, kind, data),
      onError: (error) => {
        if (error instanceof SwitchboardError && EXPECTED_SIGNAL_ERRORS.has(error.code)) return;
        if (current()) this.emit('error', { peerId, error });
      },
    });
    ref.negotiation = negotiation;
    const link: Link = {
      pc,
      negotiation,
      connectionState: pc.connectionState,
      chatOpen: pc.chatOpen,
      streams: new Map(),
      watchdog: undefined,
    };
    this.#links.set(peerId, link);
    this.#addTracks(pc);
    if (!polite) {
      // Only one side replaces a stalled connection, so the two never undo each other's.
      link.watchdog = setTimeout(() => {
        if (current() && link.connectionState === 'new') this.#replaceLink(peerId);
      }, this.#stallTimeoutMs);
    }
    return link;
  }

  #replaceLink(peerId: string): void {
    this.#room.signal(peerId, 'bye', null).catch(() => undefined);
    this.#closeLink(peerId);
    this.#ensureLink(peerId);
    this.#emitPeers();
  }

  #addTracks(pc: PeerConnectionLike): void {
    const stream = this.#localStream;
    if (!stream) return;
    for (const track of stream.getTracks()) pc.addTrack(track, stream);
  }

  #closeLink(peerId: string): void {
    const link = this.#links.get(peerId);
    if (!link) return;
    this.#links.delete(peerId);
    clearTimeout(link.watchdog);
    link.negotiation.close();
    link.pc.close();
  }

  #onChat(peerId: string, raw: string): void {
    let text: unknown;
    let ts: unknown;
    try {
      ({ text, ts } = JSON.parse(raw) as { text?: unknown; ts?: unknown });
    } catch {
      return;
    }
    if (typeof text !== 'string') return;
    const name = this.#members.get(peerId)?.name ?? 'Someone';
    this.emit('chat', { peerId, name, text, ts: typeof ts === 'number' ? ts : Date.now(), self: false });
  }

  #emitPeers(): void {
    if (!this.#closed) this.emit('peers', this.peers());
  }
}
