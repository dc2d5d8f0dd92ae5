import type { IceServer } from '@switchboard/contract';
import type { NegotiationPeerConnection } from './negotiation.js';

/** What a peer connection reports back; the factory wires these to the real events. */
export interface PeerConnectionHandlers {
  negotiationNeeded(): void;
  iceCandidate(candidate: RTCIceCandidateInit | null): void;
  track(track: MediaStreamTrack, streams: readonly MediaStream[]): void;
  connectionStateChange(state: RTCPeerConnectionState): void;
  chatOpen(): void;
  chatClose(): void;
  chatMessage(text: string): void;
}

/**
 * A peer connection with its chat channel, reduced to what a call needs. The browser
 * factory wraps RTCPeerConnection; tests substitute fakes, since node has no WebRTC.
 */
export interface PeerConnectionLike extends NegotiationPeerConnection {
  readonly connectionState: RTCPeerConnectionState;
  readonly chatOpen: boolean;
  sendChat(text: string): void;
  addTrack(track: MediaStreamTrack, stream: MediaStream): void;
  restartIce(): void;
  close(): void;
}

export type PeerConnectionFactory = (
  config: { iceServers: IceServer[] },
  handlers: PeerConnectionHandlers,
) => PeerConnectionLike;

/** The factory for real browsers. */
export const createBrowserPeerConnection: PeerConnectionFactory = ({ iceServers }, on) => {
  const pc = new RTCPeerConnection({ iceServers });
  // Negotiated with a fixed id: both sides create it up front, so neither waits for an
  // offer to carry it, and it survives the rollbacks of perfect negotiation.
  const chat = pc.createDataChannel('chat', { negotiated: true, id: 0 });
  pc.onnegotiationneeded = () => {
    on.negotiationNeeded();
  };
  pc.onicecandidate = (event) => {
    on.iceCandidate(event.candidate ? event.candidate.toJSON() : null);
  };
  pc.ontrack = (event) => {
    on.track(event.track, event.streams);
  };
  pc.onconnectionstatechange = () => {
    on.connectionStateChange(pc.connectionState);
  };
  chat.onopen = () => {
    on.chatOpen();
  };
  chat.onclose = () => {
    on.chatClose();
  };
  chat.onmessage = (event: MessageEvent<unknown>) => {
    if (typeof event.data === 'string') on.chatMessage(event.data);
  };
  return {
    get signalingState() {
      return pc.signalingState;
    },
    get localDescription() {
      return pc.localDescription;
    },
    get connectionState() {
      return pc.connectionState;
    },
    get chatOpen() {
      return chat.readyState === 'open';
    },
    setLocalDescription: (description) => pc.setLocalDescription(description),
    setRemoteDescription: (description) => pc.setRemoteDescription(description),
    addIceCandidate: (candidate) => pc.addIceCandidate(candidate),
    sendChat(text) {
      chat.send(text);
    },
    addTrack(track, stream) {
      pc.addTrack(track, stream);
    },
    restartIce() {
      pc.restartIce();
    },
    close() {
      chat.close();
      pc.close();
    },
  };
};
