import {
  ERROR_MESSAGES,
  type PeerLeftReason,
  type RecoveryFailureReason,
  type RecoveryOutcome,
} from '@switchboard/contract';
import { DEV_LOGIN_OFF } from './auth.js';
import { describeError, type ClientErrorCode, type ConnectionState, type ConnectionStatus } from '../sdk/index.js';

const TOKEN_TROUBLE = 'Could not confirm your access to this room. Trying again…';

/** What a person should read for each failure; the contract's text where it already reads well. */
const FRIENDLY: Partial<Record<ClientErrorCode, string>> = {
  unreachable: 'Lost contact with the server. Reconnecting…',
  timeout: 'The server is slow to answer. Reconnecting…',
  token_missing: TOKEN_TROUBLE,
  token_invalid: TOKEN_TROUBLE,
  token_expired: TOKEN_TROUBLE,
  token_used: TOKEN_TROUBLE,
  rate_limited: 'Too many attempts in a short time. Waiting a moment before trying again…',
  server_draining: ERROR_MESSAGES.server_draining,
  origin_forbidden: `${ERROR_MESSAGES.origin_forbidden} Ask whoever runs this server to allow this address.`,
  unauthorized: 'Your sign-in was refused or has expired. Please join again.',
  kicked: 'You were removed from this room.',
  authorizer_unavailable: 'Could not check your access to this room. Trying again…',
  invalid_request: 'That room name is not valid.',
  internal: 'The server hit a problem. Reconnecting…',
};

export function friendlyError(code: ClientErrorCode, detail?: string, status?: ConnectionStatus): string {
  // The demo's own sign-in knows why it failed; a generic "refused" would hide it.
  if (code === 'unauthorized' && detail === DEV_LOGIN_OFF) return detail;
  // Nothing was lost if we never got in.
  if (code === 'unreachable' && status === 'connecting') return 'Cannot reach the server. Retrying…';
  // The gateway says which grant was missing; that is what the person (or developer) needs.
  if (code === 'forbidden') return `This room is not open to you${detail ? `: ${detail}` : '.'}`;
  return FRIENDLY[code] ?? detail ?? describeError(code);
}

/** What the room's activity says when someone leaves. */
export function leftText(name: string, reason: PeerLeftReason): string {
  switch (reason) {
    case 'kicked':
      return `${name} was removed from the room`;
    case 'session_expired':
      return `${name} left (their sign-in expired)`;
    case 'replica_lost':
      return `${name} lost their connection`;
    default:
      return `${name} left`;
  }
}

/** Media buttons say what a click does; `isOn`/`isOff` describe the state (their title). */
export const MIC_LABELS = {
  on: 'Unmute',
  off: 'Mute',
  none: 'No microphone',
  isOn: 'Your microphone is on',
  isOff: 'You are muted',
};
export const CAMERA_LABELS = {
  on: 'Start video',
  off: 'Stop video',
  none: 'No camera',
  isOn: 'Your camera is on',
  isOff: 'Your camera is off',
};

export function badgeText(state: ConnectionState): string {
  switch (state.status) {
    case 'connecting':
      return 'Connecting…';
    case 'connected':
      return state.replica ? `Connected · ${state.replica}` : 'Connected';
    case 'reconnecting':
      return 'Reconnecting…';
    case 'disconnected':
      return 'Not connected';
    case 'failed':
      return 'Cannot connect';
  }
}

export function peerStatusText(state: string): string {
  switch (state) {
    case 'connected':
      return 'In call';
    case 'new':
    case 'connecting':
      return 'Connecting…';
    case 'disconnected':
      return 'Reconnecting…';
    case 'failed':
      return 'Connection failed';
    default:
      return 'Not connected';
  }
}

const UNRECOVERABLE: Record<RecoveryFailureReason, string> = {
  epoch_changed: 'the server lost part of the room’s history, e.g. in a Redis failover, or was cut off from it',
  history_expired: 'you were away longer than the room keeps its history',
  too_many: 'too much happened while you were away',
  history_disabled: 'this server keeps no room history',
};

/** What a person reads after a reconnect: what came back, or why some activity is missing. */
export function recoveryText(outcome: RecoveryOutcome): string {
  if (outcome.recovered) {
    if (outcome.replayed === 0) return 'Reconnected · nothing was missed';
    return `Reconnected · ${outcome.replayed} missed ${outcome.replayed === 1 ? 'event' : 'events'} recovered`;
  }
  // Also sent while connected (`room:epoch`), so it does not claim a reconnect.
  return `Some room activity is missing: ${UNRECOVERABLE[outcome.reason]}. Reload to see the room as it is now.`;
}
