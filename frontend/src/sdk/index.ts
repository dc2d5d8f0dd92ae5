/**
 * @switchboard/client: the browser SDK for Switchboard. Join a room, exchange
 * signaling and room events, and run a WebRTC mesh call with perfect negotiation.
 */
export {
  createSwitchboard,
  type AccessTokenContext,
  type ConnectionError,
  type ConnectionState,
  type ConnectionStatus,
  type JoinOptions,
  type Room,
  type RoomEventMap,
  type SocketFactory,
  type Switchboard,
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
export { unpackRoomEvents } from './room-events.js';
export { unwrapAck } from './acks.js';
export {
  devLogin,
  forgetUpstreamSession,
  mintRtcToken,
  mintUpstreamSession,
  upstreamCapability,
  type FetchLike,
} from './http.js';
export { type UpstreamApi, type UpstreamSecret, type UpstreamSessionOptions } from './upstream.js';
