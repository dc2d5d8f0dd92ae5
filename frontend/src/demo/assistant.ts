import { SwitchboardError, describeError, type Switchboard } from '../sdk/index.js';

export type AssistantStatus = 'starting' | 'connecting' | 'connected' | 'ended' | 'failed';

export interface AssistantState {
  status: AssistantStatus;
  /** What a person reads next to the button. */
  text: string;
}

export interface AssistantOptions {
  switchboard: Switchboard;
  /** The provider's WebRTC endpoint, from the gateway's capability answer. */
  callsUrl: string;
  room: string;
  onState: (state: AssistantState) => void;
}

export interface AssistantCall {
  /** Hangs up and frees the user's slot at the gateway; idempotent. */
  stop(): void;
}

function failureText(error: unknown): string {
  if (!(error instanceof SwitchboardError)) return error instanceof Error ? error.message : 'Something went wrong.';
  if (error.code === 'rate_limited' && error.retryAfterMs !== undefined)
    return `Too many assistant sessions open; try again in ${Math.ceil(error.retryAfterMs / 1000)} s.`;
  if (error.code === 'upstream_unavailable') return 'The assistant is unavailable right now; try again shortly.';
  return describeError(error.code);
}

/**
 * A voice conversation with the provider's realtime model, by its published WebRTC flow:
 * the gateway mints a short-lived client secret (the API key stays on the server), the
 * browser POSTs its SDP offer to the provider's calls endpoint with that secret as
 * Bearer, and applies the SDP answer. Audio flows straight between the browser and the
 * provider; the `oai-events` data channel carries the provider's session events.
 */
export function startAssistant({ switchboard, callsUrl, room, onState }: AssistantOptions): AssistantCall {
  let stopped = false;
  let pc: RTCPeerConnection | undefined;
  let microphone: MediaStream | undefined;
  let secretId: string | undefined;
  const speaker = new Audio();
  speaker.autoplay = true;

  const report = (status: AssistantStatus, text: string): void => {
    if (!stopped || status === 'ended') onState({ status, text });
  };
  const release = (): void => {
    pc?.close();
    for (const track of microphone?.getTracks() ?? []) track.stop();
    speaker.srcObject = null;
    if (secretId) switchboard.upstream.forget(secretId).catch(() => undefined);
    secretId = undefined;
  };

  const run = async (): Promise<void> => {
    report('starting', 'Asking for the microphone…');
    microphone = await navigator.mediaDevices.getUserMedia({ audio: true });
    if (stopped) return;
    report('starting', 'Getting a voice session…');
    const secret = await switchboard.upstream.openai({ room });
    secretId = secret.id;
    if (stopped) return;

    const connection = new RTCPeerConnection();
    pc = connection;
    connection.ontrack = (event) => {
      speaker.srcObject = event.streams[0] ?? new MediaStream([event.track]);
    };
    for (const track of microphone.getAudioTracks()) connection.addTrack(track, microphone);
    const events = connection.createDataChannel('oai-events');
    events.onopen = () => {
      report('connected', `Talking to the assistant (${secret.voice})`);
    };
    connection.onconnectionstatechange = () => {
      if (connection.connectionState === 'failed') report('failed', 'The connection to the assistant failed.');
      if (connection.connectionState === 'disconnected') report('connecting', 'Reconnecting to the assistant…');
    };

    report('connecting', 'Connecting to the assistant…');
    const offer = await connection.createOffer();
    await connection.setLocalDescription(offer);
    const answer = await fetch(callsUrl, {
      method: 'POST',
      body: offer.sdp ?? '',
      headers: { authorization: `Bearer ${secret.value}`, 'content-type': 'application/sdp' },
    });
    if (!answer.ok) throw new Error(`The provider refused the call (HTTP ${answer.status}).`);
    const sdp = await answer.text();
    if (stopped) return;
    await connection.setRemoteDescription({ type: 'answer', sdp });
  };

  run().catch((error: unknown) => {
    if (stopped) return;
    release();
    report('failed', failureText(error));
  });

  return {
    stop() {
      if (stopped) return;
      stopped = true;
      release();
      report('ended', 'Assistant ended.');
    },
  };
}
