import './styles.css';
import {
  ROOM_NAME_PATTERN,
  type JsonValue,
  type RecoveryOutcome,
  type RoomEvent,
  type RoomPosition,
} from '@switchboard/contract';
import {
  Call,
  SwitchboardError,
  createSwitchboard,
  type CallPeer,
  type ChatMessage,
  type ConnectionState,
  type Room,
  type Switchboard,
} from '../sdk/index.js';
import { startAssistant, type AssistantCall, type AssistantState } from './assistant.js';
import { createDevAuth, userIdFor } from './auth.js';
import { badgeText, CAMERA_LABELS, friendlyError, leftText, MIC_LABELS, peerStatusText, recoveryText } from './copy.js';
import { appendToLog, byId, clockTime, h, hueFor, initials } from './dom.js';
import { getLocalMedia } from './media.js';

/** What end-to-end tests (and curious developers) can read from the console. */
interface DebugHandle {
  room: Room;
  /** The lobby, on the same connection as the call's room. */
  lobby: Room | undefined;
  call: Call;
  snapshot(): {
    status: ConnectionState['status'];
    replica: string | undefined;
    peerId: string | undefined;
    peers: Array<Pick<CallPeer, 'peerId' | 'name' | 'connectionState' | 'chatOpen'>>;
  };
}

declare global {
  interface Window {
    __switchboard?: DebugHandle;
  }
}

interface Params {
  gateways: string[];
  room: string | undefined;
  /** A second room on the same connection: everyone's comings and goings, and how many are around. */
  lobby: string;
  name: string | undefined;
  autojoin: boolean;
}

interface Active {
  switchboard: Switchboard;
  room: Room;
  lobby: Room | undefined;
  call: Call;
  name: string;
  localStream: MediaStream | undefined;
  /** The voice assistant, when the gateway offers one and it is running. */
  assistant: AssistantCall | undefined;
}

interface Tile {
  element: HTMLElement;
  video: HTMLVideoElement;
  label: HTMLElement;
  status: HTMLElement;
  avatar: HTMLElement;
}

const NAME_KEY = 'switchboard.name';
/** How many of the lobby's announcements stay on screen. */
const LOBBY_ITEMS = 6;
/** How much earlier room activity a person sees on joining (or after reloading it). */
const EARLIER_EVENTS = 30;

const ui = {
  joinView: byId('join-view', HTMLElement),
  joinForm: byId('join-form', HTMLFormElement),
  nameInput: byId('name-input', HTMLInputElement),
  roomInput: byId('room-input', HTMLInputElement),
  joinError: byId('join-error', HTMLElement),
  joinButton: byId('join-button', HTMLButtonElement),
  callView: byId('call-view', HTMLElement),
  roomName: byId('room-name', HTMLElement),
  badge: byId('badge', HTMLElement),
  badgeText: byId('badge-text', HTMLElement),
  notice: byId('notice', HTMLElement),
  noticeText: byId('notice-text', HTMLElement),
  tiles: byId('tiles', HTMLElement),
  callState: byId('call-state', HTMLElement),
  micButton: byId('mic-button', HTMLButtonElement),
  cameraButton: byId('camera-button', HTMLButtonElement),
  leaveButton: byId('leave-button', HTMLButtonElement),
  peerList: byId('peer-list', HTMLElement),
  peerCount: byId('peer-count', HTMLElement),
  chatLog: byId('chat-log', HTMLElement),
  chatForm: byId('chat-form', HTMLFormElement),
  chatInput: byId('chat-input', HTMLInputElement),
  eventLog: byId('event-log', HTMLElement),
  eventForm: byId('event-form', HTMLFormElement),
  eventInput: byId('event-input', HTMLInputElement),
  lobbyPanel: byId('lobby-panel', HTMLElement),
  lobbyCount: byId('lobby-count', HTMLElement),
  lobbyLog: byId('lobby-log', HTMLElement),
};

const params = readParams();
const tiles = new Map<string, Tile>();
let active: Active | undefined;

function readParams(): Params {
  const query = new URLSearchParams(location.search);
  const gateways = (query.get('gateways') ?? '')
    .split(',')
    .map((url) => url.trim())
    .filter(Boolean);
  return {
    gateways: gateways.length > 0 ? gateways : [location.origin],
    room: query.get('room') ?? undefined,
    lobby: query.get('lobby') ?? 'lobby',
    name: query.get('name') ?? undefined,
    autojoin: query.get('autojoin') === '1',
  };
}

// ---- joining and leaving -----------------------------------------------------

function join(name: string, roomName: string): void {
  localStorage.setItem(NAME_KEY, name);
  const lobbyName = params.lobby !== roomName && ROOM_NAME_PATTERN.test(params.lobby) ? params.lobby : undefined;
  const switchboard = createSwitchboard({
    urls: params.gateways,
    getAccessToken: createDevAuth(
      params.gateways,
      userIdFor(name),
      name,
      lobbyName ? [roomName, lobbyName] : [roomName],
    ),
  });
  // The call's room first: it rides in the handshake, and the lobby joins the same connection.
  const room = switchboard.join(roomName);
  const lobby = lobbyName === undefined ? undefined : switchboard.join(lobbyName);
  const call = new Call({ room });
  const session: Active = { switchboard, room, lobby, call, name, localStream: undefined, assistant: undefined };
  active = session;
  if (lobby) watchLobby(session, lobby, roomName);

  ui.joinView.hidden = true;
  ui.callView.hidden = false;
  ui.roomName.hidden = false;
  ui.roomName.textContent = roomName;
  ui.chatLog.replaceChildren();
  ui.eventLog.replaceChildren();
  renderTiles([]);
  renderPeers([]);

  room.on('state', (state) => {
    if (active === session) renderState(state);
  });
  room.on('room:event', (event) => {
    if (active === session) appendEvent(event);
  });
  // Comings and goings belong in the room's activity; a leave no longer names the peer.
  const names = new Map<string, string>();
  room.on('session', ({ peers }) => {
    for (const peer of peers) names.set(peer.peerId, peer.name);
  });
  room.on('peer:joined', (peer) => {
    names.set(peer.peerId, peer.name);
    if (active === session) appendSystem(ui.eventLog, `${peer.name} joined`);
  });
  room.on('peer:left', ({ peerId, reason }) => {
    const name = names.get(peerId) ?? 'Someone';
    names.delete(peerId);
    if (active === session) appendSystem(ui.eventLog, leftText(name, reason));
  });
  // Only on the first session: later ones recover what was missed, or say they could not.
  const firstSession = room.on('session', ({ position }) => {
    firstSession();
    if (active === session) void loadEarlier(session, position);
  });
  room.on('recovery', (outcome) => {
    if (active === session) showRecovery(session, outcome);
  });
  call.on('peers', (peers) => {
    if (active === session) renderPeers(peers);
  });
  call.on('chat', (message) => {
    if (active === session) appendChat(message);
  });
  renderState(room.state);

  window.__switchboard = {
    room,
    lobby,
    call,
    snapshot: () => ({
      status: room.state.status,
      replica: room.state.replica,
      peerId: room.peerId,
      peers: call.peers().map(({ peerId, name: peerName, connectionState, chatOpen }) => ({
        peerId,
        name: peerName,
        connectionState,
        chatOpen,
      })),
    }),
  };

  // The button exists only when the gateway holds a provider key (its capability route answers).
  switchboard.upstream.capability().then(
    (offer) => {
      if (offer && active === session) addAssistantControls(session, offer.callsUrl, roomName);
    },
    () => undefined,
  );

  // Media is asked for after joining, so chat works while the person decides.
  void getLocalMedia().then((stream) => {
    if (!stream) return;
    if (active !== session) {
      for (const track of stream.getTracks()) track.stop();
      return;
    }
    session.localStream = stream;
    call.setLocalStream(stream);
    renderTiles(call.peers());
    renderMediaButtons();
  });
}

function leave(reason?: string): void {
  const session = active;
  if (!session) return;
  active = undefined;
  session.assistant?.stop();
  document.getElementById('assistant-controls')?.remove();
  session.call.close();
  session.switchboard.close();
  for (const track of session.localStream?.getTracks() ?? []) track.stop();
  for (const tile of tiles.values()) tile.video.srcObject = null;
  tiles.clear();
  ui.tiles.replaceChildren();
  ui.callView.hidden = true;
  ui.roomName.hidden = true;
  ui.joinView.hidden = false;
  ui.joinError.hidden = reason === undefined;
  ui.joinError.textContent = reason ?? '';
  renderBadge(undefined);
  renderMediaButtons();
  ui.lobbyPanel.hidden = true;
  ui.lobbyLog.replaceChildren();
  delete window.__switchboard;
}

// ---- the lobby: a second room on the same connection ---------------------------------

function watchLobby(session: Active, lobby: Room, roomName: string): void {
  const panel = ui.lobbyPanel;
  panel.hidden = false;
  panel.dataset.status = lobby.state.status;
  ui.lobbyLog.replaceChildren();
  const renderCount = (count: number) => {
    ui.lobbyCount.textContent = String(count);
    ui.lobbyCount.title = `${count} ${count === 1 ? 'person' : 'people'} in the lobby`;
  };
  renderCount(lobby.peerCount);
  lobby.on('state', (state) => {
    if (active !== session) return;
    panel.dataset.status = state.status;
    // The lobby is a nice-to-have: if it is refused, the call goes on without it.
    if (state.status === 'failed')
      panel.title = state.error ? friendlyError(state.error.code, state.error.message) : '';
  });
  lobby.on('peerCount', (count) => {
    if (active === session) renderCount(count);
  });
  lobby.on('room:event', (event) => {
    if (active !== session) return;
    appendToLog(
      ui.lobbyLog,
      h('li', { class: 'system', 'data-testid': 'lobby-item', 'data-seq': event.seq }, summarize(event.data)),
      LOBBY_ITEMS,
    );
  });
  lobby.on('recovery', (outcome) => {
    if (active !== session) return;
    panel.dataset.recovered = String(outcome.recovered);
    panel.dataset.replayed = String(outcome.replayed);
  });
  // Announced once; after a reconnect the SDK recovers what was missed instead.
  lobby.ready
    .then(
      () => lobby.publish('arrival', { text: `${session.name} joined ${roomName}` }),
      () => undefined,
    )
    .catch(() => undefined);
}

// ---- voice assistant ------------------------------------------------------------

function addAssistantControls(session: Active, callsUrl: string, roomName: string): void {
  const button = h(
    'button',
    { class: 'button', type: 'button', 'data-testid': 'assistant-button' },
    'Talk to the assistant',
  );
  const state = h(
    'span',
    { class: 'chip off', 'data-testid': 'assistant-state', 'data-state': 'idle' },
    'Assistant off',
  );
  const render = ({ status, text }: AssistantState): void => {
    state.dataset.state = status;
    state.className = `chip ${chipClass(status === 'ended' ? 'closed' : status)}`;
    state.textContent = text;
    const over = status === 'ended' || status === 'failed';
    button.textContent = over ? 'Talk to the assistant' : 'End assistant';
    if (over) session.assistant = undefined;
  };
  button.addEventListener('click', () => {
    if (session.assistant) {
      session.assistant.stop();
      return;
    }
    session.assistant = startAssistant({ switchboard: session.switchboard, callsUrl, room: roomName, onState: render });
  });
  ui.leaveButton.before(h('span', { class: 'assistant', id: 'assistant-controls' }, state, button));
}

// ---- rendering ----------------------------------------------------------------

function renderBadge(state: ConnectionState | undefined): void {
  ui.badge.dataset.status = state?.status ?? 'idle';
  ui.badge.dataset.replica = state?.replica ?? '';
  ui.badge.dataset.peerId = state?.peerId ?? '';
  ui.badgeText.textContent = state ? badgeText(state) : 'Not connected';
  ui.badge.title = state?.url ? `Gateway: ${state.url}` : '';
}

function renderState(state: ConnectionState): void {
  renderBadge(state);
  if (state.status === 'failed') {
    leave(state.error ? friendlyError(state.error.code, state.error.message) : 'Could not join the room.');
    return;
  }
  const problem = state.status === 'connected' ? undefined : state.error;
  ui.notice.hidden = problem === undefined;
  ui.noticeText.textContent = problem ? friendlyError(problem.code, problem.message, state.status) : '';
  ui.notice.dataset.code = problem?.code ?? '';
  if (active) renderPeers(active.call.peers());
}

function avatar(name: string, size: 'small' | 'large'): HTMLElement {
  return h('span', { class: `avatar ${size}`, style: `--hue: ${hueFor(name)}`, 'aria-hidden': 'true' }, initials(name));
}

function renderPeers(peers: CallPeer[]): void {
  const self = active;
  const items: HTMLElement[] = [];
  if (self) {
    const { status, replica } = self.room.state;
    items.push(
      h(
        'li',
        { class: 'person self', 'data-testid': 'peer-self' },
        avatar(self.name, 'small'),
        h(
          'span',
          { class: 'person-body' },
          h('span', { class: 'person-name' }, `${self.name} (you)`),
          h('span', { class: 'person-meta' }, status === 'connected' && replica ? `via ${replica}` : `${status}…`),
        ),
      ),
    );
  }
  for (const peer of peers) {
    items.push(
      h(
        'li',
        {
          class: 'person',
          'data-testid': 'peer-item',
          'data-peer-id': peer.peerId,
          'data-name': peer.name,
          'data-connection': peer.connectionState,
          'data-chat': peer.chatOpen ? 'open' : 'closed',
        },
        avatar(peer.name, 'small'),
        h(
          'span',
          { class: 'person-body' },
          h('span', { class: 'person-name' }, peer.name),
          h('span', { class: 'person-meta' }, peer.replica ? `via ${peer.replica}` : ''),
        ),
        h('span', { class: `chip ${chipClass(peer.connectionState)}` }, peerStatusText(peer.connectionState)),
      ),
    );
  }
  ui.peerList.replaceChildren(...items);
  ui.peerCount.textContent = String(peers.length + (self ? 1 : 0));
  renderTiles(peers);
  if (self) renderCallState(peers, self.room.state);
}

function chipClass(state: string): string {
  if (state === 'connected') return 'ok';
  if (state === 'failed' || state === 'closed' || state === 'none') return 'off';
  return 'pending';
}

function listNames(names: string[]): string {
  if (names.length <= 2) return names.join(' and ');
  return `${names.length} people`;
}

function renderCallState(peers: CallPeer[], state: ConnectionState): void {
  const connected = peers.filter((peer) => peer.connectionState === 'connected');
  let key: string;
  let text: string;
  if (state.status !== 'connected' && connected.length === 0) {
    key = state.status;
    text = state.status === 'connecting' ? 'Joining the room…' : 'Reconnecting to the room…';
  } else if (connected.length > 0) {
    key = 'connected';
    text = `In call with ${listNames(connected.map((peer) => peer.name))}`;
  } else if (peers.length > 0) {
    key = 'connecting';
    text = `Connecting to ${listNames(peers.map((peer) => peer.name))}…`;
  } else {
    key = 'waiting';
    text = 'Waiting for others to join';
  }
  ui.callState.dataset.state = key;
  ui.callState.dataset.connectedPeers = String(connected.length);
  ui.callState.textContent = text;
}

function createTile(key: string, self: boolean): Tile {
  const video = h('video', { autoplay: true, playsinline: true, 'data-testid': self ? 'local-video' : 'remote-video' });
  video.muted = self;
  const label = h('span', { class: 'tile-label' });
  const status = h('span', { class: 'tile-status' });
  const avatarSlot = h('span', { class: 'tile-avatar' });
  const element = h(
    'figure',
    { class: self ? 'tile self' : 'tile', 'data-testid': self ? 'tile-self' : 'tile-peer', 'data-key': key },
    video,
    avatarSlot,
    h('figcaption', {}, label, status),
  );
  ui.tiles.append(element);
  const tile = { element, video, label, status, avatar: avatarSlot };
  tiles.set(key, tile);
  return tile;
}

function attach(tile: Tile, stream: MediaStream | undefined): void {
  const hasVideo = (stream?.getVideoTracks().length ?? 0) > 0;
  tile.element.classList.toggle('has-video', hasVideo);
  if (tile.video.srcObject === (stream ?? null)) return;
  tile.video.srcObject = stream ?? null;
  if (!stream) return;
  tile.video.play().catch(() => {
    // Autoplay with sound needs a gesture; start muted rather than show a frozen tile.
    tile.video.muted = true;
    tile.video.play().catch(() => undefined);
  });
}

function renderTiles(peers: CallPeer[]): void {
  const session = active;
  if (!session) return;
  const self = tiles.get('self') ?? createTile('self', true);
  self.label.textContent = `${session.name} (you)`;
  self.avatar.replaceChildren(avatar(session.name, 'large'));
  attach(self, session.localStream);
  const seen = new Set(['self']);
  for (const peer of peers) {
    seen.add(peer.peerId);
    const tile = tiles.get(peer.peerId) ?? createTile(peer.peerId, false);
    tile.label.textContent = peer.name;
    tile.status.textContent = peer.connectionState === 'connected' ? '' : peerStatusText(peer.connectionState);
    tile.element.dataset.connection = peer.connectionState;
    if (tile.avatar.dataset.name !== peer.name) {
      tile.avatar.dataset.name = peer.name;
      tile.avatar.replaceChildren(avatar(peer.name, 'large'));
    }
    attach(tile, peer.streams[0]);
  }
  for (const [key, tile] of tiles) {
    if (seen.has(key)) continue;
    tile.video.srcObject = null;
    tile.element.remove();
    tiles.delete(key);
  }
  ui.tiles.dataset.count = String(tiles.size);
}

function renderMediaButtons(): void {
  const stream = active?.localStream;
  const setup = (button: HTMLButtonElement, tracks: MediaStreamTrack[], label: typeof MIC_LABELS) => {
    button.disabled = tracks.length === 0;
    const on = tracks.some((track) => track.enabled);
    // The label says what a click does; the state is in the title and for screen readers.
    button.removeAttribute('aria-pressed');
    button.textContent = tracks.length === 0 ? label.none : on ? label.off : label.on;
    button.title = tracks.length === 0 ? label.none : on ? label.isOn : label.isOff;
  };
  setup(ui.micButton, stream?.getAudioTracks() ?? [], MIC_LABELS);
  setup(ui.cameraButton, stream?.getVideoTracks() ?? [], CAMERA_LABELS);
}

function nameOf(peerId: string): string {
  const session = active;
  if (!session) return 'Someone';
  if (peerId === session.room.peerId) return 'You';
  if (peerId.startsWith('service:')) return peerId.slice('service:'.length);
  return session.call.peers().find((peer) => peer.peerId === peerId)?.name ?? 'Someone';
}

function summarize(data: JsonValue): string {
  if (typeof data === 'string') return data;
  if (data && typeof data === 'object' && !Array.isArray(data) && typeof data.text === 'string') return data.text;
  return data === null ? '' : JSON.stringify(data);
}

function appendEvent(event: RoomEvent): void {
  appendToLog(ui.eventLog, eventItem(event));
}

function eventItem(event: RoomEvent): HTMLElement {
  return h(
    'li',
    {
      class: 'event',
      'data-testid': 'event-item',
      'data-type': event.type,
      'data-id': event.id,
      'data-seq': event.seq,
    },
    h(
      'div',
      { class: 'entry-head' },
      h('span', { class: 'entry-who' }, nameOf(event.from)),
      h('span', { class: 'tag' }, event.type),
      h('time', { datetime: new Date(event.ts).toISOString() }, clockTime(event.ts)),
    ),
    h('p', { class: 'entry-text' }, summarize(event.data)),
  );
}

/**
 * Puts the room's activity up to `position` above whatever arrived live since, so a page
 * reload (or a refused recovery) does not leave the log empty.
 */
async function loadEarlier(session: Active, position: RoomPosition): Promise<void> {
  if (position.seq === 0) return;
  const after = Math.max(0, position.seq - EARLIER_EVENTS);
  try {
    const { epoch, events } = await session.room.history({ after, limit: EARLIER_EVENTS });
    if (active !== session || epoch !== position.epoch) return;
    const earlier = events.filter((event) => event.seq <= position.seq).map(eventItem);
    if (earlier.length === 0) return;
    ui.eventLog.prepend(
      h('li', { class: 'system', 'data-testid': 'earlier-notice' }, 'Earlier in this room'),
      ...earlier,
    );
    ui.eventLog.scrollTop = ui.eventLog.scrollHeight;
  } catch (error) {
    const code = error instanceof SwitchboardError ? error.code : 'internal';
    appendSystem(ui.eventLog, `Earlier activity could not be loaded: ${friendlyError(code)}`);
  }
}

function showRecovery(session: Active, outcome: RecoveryOutcome): void {
  const attributes = {
    class: outcome.recovered ? 'system' : 'system warning',
    'data-testid': 'recovery-notice',
    'data-recovered': String(outcome.recovered),
    'data-replayed': outcome.replayed,
  };
  if (outcome.recovered) {
    appendToLog(ui.eventLog, h('li', attributes, recoveryText(outcome)));
    return;
  }
  const reload = h(
    'button',
    { class: 'button ghost small', type: 'button', 'data-testid': 'reload-activity' },
    'Reload',
  );
  const notice = h('li', attributes, recoveryText(outcome), ' ', reload);
  reload.addEventListener('click', () => {
    const position = session.room.position;
    ui.eventLog.replaceChildren();
    if (position) void loadEarlier(session, position);
  });
  appendToLog(ui.eventLog, notice);
}

function appendChat(message: ChatMessage): void {
  const item = h(
    'li',
    { class: message.self ? 'msg self' : 'msg', 'data-testid': 'chat-item' },
    h(
      'div',
      { class: 'entry-head' },
      h('span', { class: 'entry-who' }, message.self ? 'You' : message.name),
      h('time', { datetime: new Date(message.ts).toISOString() }, clockTime(message.ts)),
    ),
    h('p', { class: 'entry-text' }, message.text),
  );
  appendToLog(ui.chatLog, item);
}

function appendSystem(log: HTMLElement, text: string): void {
  appendToLog(log, h('li', { class: 'system', 'data-testid': 'log-notice' }, text));
}

// ---- wiring ---------------------------------------------------------------------

ui.joinForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = ui.nameInput.value.trim();
  const room = ui.roomInput.value.trim();
  let problem: string | undefined;
  if (!name) problem = 'Please enter your name.';
  else if (name.length > 64) problem = 'Please use a name of at most 64 characters.';
  else if (!ROOM_NAME_PATTERN.test(room)) problem = 'Room names use letters, digits and _ . : - (up to 128).';
  ui.joinError.hidden = problem === undefined;
  ui.joinError.textContent = problem ?? '';
  if (!problem) join(name, room);
});

ui.leaveButton.addEventListener('click', () => {
  leave();
});

ui.chatForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.chatInput.value.trim();
  if (!text || !active) return;
  if (active.call.sendChat(text) === 0) appendSystem(ui.chatLog, 'Nobody is connected to hear that yet.');
  ui.chatInput.value = '';
});

ui.eventForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.eventInput.value.trim();
  const session = active;
  if (!text || !session) return;
  ui.eventInput.value = '';
  session.room.publish('note', { text }).catch((error: unknown) => {
    const code = error instanceof SwitchboardError ? error.code : 'internal';
    appendSystem(ui.eventLog, `Not posted: ${friendlyError(code)}`);
  });
});

for (const [button, kind] of [
  [ui.micButton, 'audio'],
  [ui.cameraButton, 'video'],
] as const) {
  button.addEventListener('click', () => {
    const stream = active?.localStream;
    if (!stream) return;
    const tracks = kind === 'audio' ? stream.getAudioTracks() : stream.getVideoTracks();
    const enable = !tracks.some((track) => track.enabled);
    for (const track of tracks) track.enabled = enable;
    renderMediaButtons();
  });
}

window.addEventListener('pagehide', () => {
  // Says goodbye to peers so they drop our tile now, not after the gateway notices.
  active?.assistant?.stop();
  active?.call.close();
  active?.switchboard.close();
});

ui.nameInput.value = params.name ?? localStorage.getItem(NAME_KEY) ?? '';
ui.roomInput.value = params.room ?? 'team-standup';
renderMediaButtons();
if (params.autojoin && ui.nameInput.value && ui.roomInput.value) ui.joinForm.requestSubmit();
else (ui.nameInput.value ? ui.roomInput : ui.nameInput).focus();
