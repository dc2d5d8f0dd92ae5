import type { JsonValue, SignalKind } from '@switchboard/contract';

/** The part of RTCPeerConnection that perfect negotiation drives; fakes implement it in tests. */
export interface NegotiationPeerConnection {
  readonly signalingState: RTCSignalingState;
  readonly localDescription: { readonly type: RTCSdpType; readonly sdp: string } | null;
  setLocalDescription(description?: RTCLocalSessionDescriptionInit): Promise<void>;
  setRemoteDescription(description: RTCSessionDescriptionInit): Promise<void>;
  addIceCandidate(candidate: RTCIceCandidateInit): Promise<void>;
}

export type SendSignal = (kind: SignalKind, data: JsonValue) => Promise<void>;

export interface PerfectNegotiationOptions {
  pc: NegotiationPeerConnection;
  /** The polite peer yields in a collision; exactly one side of a pair must be polite. */
  polite: boolean;
  send: SendSignal;
  /** Failures that are not part of the protocol (a broken SDP, a closed connection). */
  onError?: (error: unknown) => void;
  /**
   * Hold our first offer until the other side's offer has been answered, or for at most
   * this long; 0 offers at once. Meant for the polite side: see `PerfectNegotiation`.
   * @default 0
   */
  yieldFirstOfferMs?: number;
}

/** Politeness from peer ids alone, so both sides agree without a message: the lower id yields. */
export function isPolite(myPeerId: string, theirPeerId: string): boolean {
  return myPeerId < theirPeerId;
}

/** A description from signal data, or undefined when the data is not one. */
export function parseDescription(data: JsonValue): RTCSessionDescriptionInit | undefined {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return undefined;
  const { type, sdp } = data;
  if ((type !== 'offer' && type !== 'answer') || typeof sdp !== 'string') return undefined;
  return { type, sdp };
}

/** An ICE candidate from signal data (the JSON of `RTCIceCandidate.toJSON()`). */
export function parseCandidate(data: JsonValue): RTCIceCandidateInit | undefined {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return undefined;
  const { candidate, sdpMid, sdpMLineIndex, usernameFragment } = data;
  if (typeof candidate !== 'string') return undefined;
  return {
    candidate,
    sdpMid: typeof sdpMid === 'string' ? sdpMid : null,
    sdpMLineIndex: typeof sdpMLineIndex === 'number' ? sdpMLineIndex : null,
    ...(typeof usernameFragment === 'string' ? { usernameFragment } : {}),
  };
}

/** Plain JSON for a candidate: signal data must survive JSON, and `toJSON()` drops getters-only fields. */
export function candidateToJson(candidate: RTCIceCandidateInit): JsonValue {
  return {
    candidate: candidate.candidate ?? '',
    sdpMid: candidate.sdpMid ?? null,
    sdpMLineIndex: candidate.sdpMLineIndex ?? null,
    usernameFragment: candidate.usernameFragment ?? null,
  };
}

/**
 * MDN's "perfect negotiation" for one remote peer. Both sides may start an offer at
 * any time (a track added, a channel created); when offers collide, the impolite
 * side ignores the other's offer and the polite side rolls its own back and answers.
 * Incoming signals are handled one at a time, in arrival order, so a candidate is
 * never applied before the description it belongs to.
 *
 * The pattern alone lets both sides offer when a connection is new. Chromium then
 * sometimes never gathers ICE candidates on the polite side after it rolls back that
 * first offer (reproduced in about half of fresh pages), and the call stalls at "new".
 * So the polite side can yield its first offer (`yieldFirstOfferMs`): it answers the
 * impolite side's offer instead, and browsers fire `negotiationneeded` again afterwards
 * if that answer did not cover everything. Later collisions are rolled back as usual.
 */
export class PerfectNegotiation {
  makingOffer = false;
  ignoreOffer = false;
  isSettingRemoteAnswerPending = false;
  readonly polite: boolean;
  readonly #pc: NegotiationPeerConnection;
  readonly #send: SendSignal;
  readonly #onError: (error: unknown) => void;
  #queue: Promise<void> = Promise.resolve();
  #closed = false;
  /** Our first offer is being held back; `#held` records that one was wanted meanwhile. */
  #yielding = false;
  #held = false;
  #yieldTimer: ReturnType<typeof setTimeout> | undefined;

  constructor({ pc, polite, send, onError, yieldFirstOfferMs = 0 }: PerfectNegotiationOptions) {
    this.#pc = pc;
    this.polite = polite;
    this.#send = send;
    this.#onError = onError ?? (() => undefined);
    if (yieldFirstOfferMs > 0) {
      this.#yielding = true;
      // The other side may not know about us yet; then we go first after all.
      this.#yieldTimer = setTimeout(() => {
        this.#stopYielding(true);
      }, yieldFirstOfferMs);
    }
  }

  /** True while our first offer is held back for the other side's. */
  get yielding(): boolean {
    return this.#yielding;
  }

  /** Wire to `negotiationneeded`. */
  async negotiationNeeded(): Promise<void> {
    if (this.#closed) return;
    if (this.#yielding) {
      this.#held = true;
      return;
    }
    try {
      this.makingOffer = true;
      await this.#pc.setLocalDescription();
      await this.#sendDescription();
    } catch (error) {
      this.#report(error);
    } finally {
      this.makingOffer = false;
    }
  }

  /** Wire to `icecandidate`; `null` (end of gathering) needs no message. */
  iceCandidate(candidate: RTCIceCandidateInit | null): void {
    if (this.#closed || !candidate) return;
    this.#send('candidate', candidateToJson(candidate)).catch((error: unknown) => {
      this.#report(error);
    });
  }

  /** A signal from the remote peer; resolves once it (and all before it) are applied. */
  receive(kind: SignalKind, data: JsonValue): Promise<void> {
    const next = this.#queue.then(() => this.#apply(kind, data));
    this.#queue = next.catch((error: unknown) => {
      this.#report(error);
    });
    return this.#queue;
  }

  /** Stops sending and applying; pending work finishes quietly. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#yieldTimer);
  }

  #stopYielding(offerIfHeld: boolean): void {
    clearTimeout(this.#yieldTimer);
    if (!this.#yielding) return;
    this.#yielding = false;
    const held = this.#held;
    this.#held = false;
    if (offerIfHeld && held) void this.negotiationNeeded();
  }

  async #apply(kind: SignalKind, data: JsonValue): Promise<void> {
    if (this.#closed) return;
    const pc = this.#pc;
    if (kind === 'offer' || kind === 'answer') {
      const description = parseDescription(data);
      if (!description || description.type !== kind) return;
      const readyForOffer = !this.makingOffer && (pc.signalingState === 'stable' || this.isSettingRemoteAnswerPending);
      const offerCollision = description.type === 'offer' && !readyForOffer;
      this.ignoreOffer = !this.polite && offerCollision;
      if (this.ignoreOffer) return;
      this.isSettingRemoteAnswerPending = description.type === 'answer';
      try {
        // For the polite peer in a collision this rolls back its own offer implicitly.
        await pc.setRemoteDescription(description);
      } finally {
        this.isSettingRemoteAnswerPending = false;
      }
      if (description.type === 'offer') {
        await pc.setLocalDescription();
        await this.#sendDescription();
        // Anything the answer did not cover raises `negotiationneeded` again from here.
        this.#stopYielding(false);
      }
      return;
    }
    if (kind === 'candidate') {
      const candidate = parseCandidate(data);
      if (!candidate) return;
      try {
        await pc.addIceCandidate(candidate);
      } catch (error) {
        // Candidates of an offer we chose to ignore are expected to fail.
        if (!this.ignoreOffer) throw error;
      }
    }
  }

  async #sendDescription(): Promise<void> {
    const description = this.#pc.localDescription;
    if (!description || this.#closed) return;
    await this.#send(description.type === 'offer' ? 'offer' : 'answer', {
      type: description.type,
      sdp: description.sdp,
    });
  }

  #report(error: unknown): void {
    if (!this.#closed) this.#onError(error);
  }
}
