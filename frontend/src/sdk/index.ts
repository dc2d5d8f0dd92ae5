/**
 * @switchboard/client: the Switchboard SDK, for browsers and Node. Join a room, exchange
 * signaling and room events, and run a WebRTC mesh call with perfect negotiation.
 */
export {
  createSwitchboard,
  type AccessTokenContext,
  type ConnectionError,
  type ConnectionState,
  type ConnectionStatus,
  type JoinOptions,
  type PeerPageOptions,
  type Room,
  type RoomEventMap,
  type SocketFactory,
  type Switchboard,
  type RtcTokenRequest,
  type SwitchboardOptions,
} from './client.js';
export {
  Call,
  type CallEventMap,
  type CallOptions,
  type CallPeer,
  type CallRoom,
  type ChatMessage,
  type PeerConnectionStatus,
} from './call.js';
export {
  createBrowserPeerConnection,
  type PeerConnectionFactory,
  type PeerConnectionHandlers,
  type PeerConnectionLike,
} from './peer-connection.js';
export {
  PerfectNegotiation,
  isPolite,
  parseCandidate,
  parseDescription,
  type NegotiationPeerConnection,
  type PerfectNegotiationOptions,
} from './negotiation.js';
export {
  SwitchboardError,
  CLIENT_ERROR_MESSAGES,
  connectErrorCode,
  describeError,
  type ClientErrorCode,
} from './errors.js';
export { backoffCeiling, backoffDelay, resolveBackoff, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
export { planRetry, isFatal, type ConnectionFailure, type RetryPlan } from './retry-policy.js';
export { refreshDelayMs } from './session-refresh.js';
export { newIdempotencyKey } from './publish-queue.js';
export { unpackRoomEvents } from './room-events.js';
export { unwrapAck } from './acks.js';
export {
  devLogin,
  forgetUpstreamSession,
  mintRtcToken,
  mintUpstreamSession,
  upstreamCapability,
  type FetchLike,
  type HttpOptions,
  type MintOptions,
} from './http.js';
export { type UpstreamApi, type UpstreamSecret, type UpstreamSessionOptions } from './upstream.js';
// The wire types this API hands out, so an app needs no direct dependency on the contract.
export type {
  Capability,
  DevLoginResponse,
  ErrorCode,
  IceServer,
  JsonValue,
  MintTokenResponse,
  PeerInfo,
  PeerJoinedPayload,
  PeerLeftPayload,
  PeersPage,
  PresenceCountPayload,
  PeerLeftReason,
  RoomEvent,
  RoomEventFrame,
  ServerShutdownPayload,
  SessionEndedPayload,
  SessionPayload,
  SignalKind,
  SignalMessage,
} from '@switchboard/contract';
