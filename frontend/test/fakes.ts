import type { PeerInfo, PeerJoinedPayload, SessionPayload } from '@switchboard/contract';
import type { CallRoom, RoomEventMap } from '../src/sdk/index.js';
import { Emitter } from '../src/sdk/emitter.js';
import type { PeerConnectionHandlers, PeerConnectionLike } from '../src/sdk/peer-connection.js';

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

const invalidState = (message: string) => new DOMException(message, 'InvalidStateError');

/**
 * An RTCPeerConnection stand-in that follows the signaling state machine of the spec,
 * including the implicit rollback of a local offer when a remote offer is applied.
 * Every operation takes a macrotask, so the interleavings of real networks happen.
 */
export class FakePeerConnection implements PeerConnectionLike {
  signalingState: RTCSignalingState = 'stable';
  localDescription: { type: RTCSdpType; sdp: string } | null = null;
  remoteDescription: RTCSessionDescriptionInit | null = null;
  connectionState: RTCPeerConnectionState = 'new';
  chatOpen = false;
  closed = false;
  rollbacks = 0;
  restarts = 0;
  readonly candidates: RTCIceCandidateInit[] = [];
  readonly chatSent: string[] = [];
  readonly tracks: MediaStreamTrack[] = [];
  #offers = 0;

  constructor(
    readonly label: string,
    readonly handlers?: PeerConnectionHandlers,
    readonly iceServers: unknown[] = [],
  ) {}

  async setLocalDescription(): Promise<void> {
    await tick();
    if (this.closed) throw invalidState('closed');
    if (this.signalingState === 'stable' || this.signalingState === 'have-local-offer') {
      this.localDescription = { type: 'offer', sdp: `offer ${this.label} #${++this.#offers}` };
      this.signalingState = 'have-local-offer';
    } else if (this.signalingState === 'have-remote-offer') {
      this.localDescription = { type: 'answer', sdp: `answer ${this.label} to [${this.remoteDescription?.sdp ?? ''}]` };
      this.signalingState = 'stable';
    } else throw invalidState(`setLocalDescription in ${this.signalingState}`);
  }

  async setRemoteDescription(description: RTCSessionDescriptionInit): Promise<void> {
    await tick();
    if (this.closed) throw invalidState('closed');
    if (description.type === 'offer') {
      if (this.signalingState === 'have-local-offer') {
        this.rollbacks += 1;
        this.localDescription = null;
      } else if (this.signalingState !== 'stable' && this.signalingState !== 'have-remote-offer') {
        throw invalidState(`offer in ${this.signalingState}`);
      }
      this.remoteDescription = description;
      this.signalingState = 'have-remote-offer';
      return;
    }
    if (description.type === 'answer') {
      if (this.signalingState !== 'have-local-offer') throw invalidState(`answer in ${this.signalingState}`);
      this.remoteDescription = description;
      this.signalingState = 'stable';
      return;
    }
    throw new TypeError(`unexpected description type ${description.type}`);
  }

  async addIceCandidate(candidate: RTCIceCandidateInit): Promise<void> {
    await tick();
    if (!this.remoteDescription) throw invalidState('no remote description');
    this.candidates.push(candidate);
  }

  sendChat(text: string): void {
    if (!this.chatOpen) throw invalidState('chat channel is not open');
    this.chatSent.push(text);
  }

  addTrack(track: MediaStreamTrack): void {
    this.tracks.push(track);
  }

  restartIce(): void {
    this.restarts += 1;
  }

  close(): void {
    this.closed = true;
    this.connectionState = 'closed';
    this.signalingState = 'closed';
  }
}

export interface SentSignal {
  to: string;
  kind: string;
  data: unknown;
}

/** A room that tests drive by hand: `fire` plays the gateway, `signals` records what was sent. */
export class FakeRoom extends Emitter<RoomEventMap> implements CallRoom {
  session: SessionPayload | undefined;
  iceServers = [{ urls: ['stun:stun.example.test:3478'] }];
  readonly signals: SentSignal[] = [];
  directory: PeerInfo[] = [];

  get peerId(): string | undefined {
    return this.session?.peerId;
  }

  fire<K extends keyof RoomEventMap>(event: K, payload: RoomEventMap[K]): void {
    if (event === 'session') this.session = payload as SessionPayload;
    this.emit(event, payload);
  }

  signal(to: string, kind: string, data: unknown): Promise<void> {
    this.signals.push({ to, kind, data });
    return Promise.resolve();
  }

  peers(): Promise<PeerInfo[]> {
    return Promise.resolve(this.directory);
  }
}

/** A peer as `peer:joined` names it (in room `standup`); `session.peers` carry the same fields. */
export function peer(peerId: string, name: string, replica = 'replica-1'): PeerJoinedPayload {
  return { room: 'standup', peerId, userId: name.toLowerCase(), name, replica, joinedAt: Date.now() };
}

export function session(peerId: string, peers: PeerInfo[], overrides: Partial<SessionPayload> = {}): SessionPayload {
  return {
    peerId,
    userId: 'me',
    name: 'Me',
    room: 'standup',
    replica: 'replica-1',
    peers,
    peerCount: peers.length + 1,
    expiresAt: Date.now() + 3_600_000,
    caps: ['publish'],
    position: { epoch: 'e1', seq: 0 },
    ...overrides,
  };
}
