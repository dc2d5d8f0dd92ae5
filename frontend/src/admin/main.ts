import './styles.css';
import type { AdminOverview, AdminReplica, AdminRoom, AdminRoomDetail } from '@switchboard/contract';
import { byId, clockTime, h } from '../demo/dom.js';
import { AdminApiError, adminApi, devSignIn, type AdminApi } from './api.js';
import { createCharts } from './charts.js';

/** How often the page asks for the overview while it is visible. */
const POLL_MS = 2_000;
const TOKEN_KEY = 'switchboard.admin.token';

const signinView = byId('signin-view', HTMLElement);
const signinForm = byId('signin-form', HTMLFormElement);
const tokenInput = byId('token-input', HTMLTextAreaElement);
const signinError = byId('signin-error', HTMLElement);
const devSigninButton = byId('dev-signin', HTMLButtonElement);
const signOutButton = byId('sign-out', HTMLButtonElement);
const dashboard = byId('dashboard-view', HTMLElement);
const redisPill = byId('redis-pill', HTMLElement);
const updated = byId('updated', HTMLElement);
const replicaRows = byId('replica-rows', HTMLElement);
const replicaCount = byId('replica-count', HTMLElement);
const roomRows = byId('room-rows', HTMLElement);
const roomCount = byId('room-count', HTMLElement);
const roomsEmpty = byId('rooms-empty', HTMLElement);
const roomSearch = byId('room-search', HTMLInputElement);
const roomSort = byId('room-sort', HTMLSelectElement);
const detail = byId('room-detail', HTMLElement);
const detailName = byId('detail-name', HTMLElement);
const detailReplicas = byId('detail-replicas', HTMLElement);
const detailMembers = byId('detail-members', HTMLElement);
const detailEvents = byId('detail-events', HTMLElement);
const detailError = byId('detail-error', HTMLElement);
const noticeForm = byId('notice-form', HTMLFormElement);
const noticeInput = byId('notice-input', HTMLInputElement);

const charts = createCharts(byId('charts', HTMLElement));
let api: AdminApi | undefined;
let overview: AdminOverview | undefined;
let selectedRoom: string | undefined;
let timer: ReturnType<typeof setTimeout> | undefined;

const bytes = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MiB`;
const duration = (seconds: number) =>
  seconds < 120
    ? `${seconds} s`
    : seconds < 7200
      ? `${Math.round(seconds / 60)} min`
      : `${Math.round(seconds / 3600)} h`;

function show(view: 'signin' | 'dashboard'): void {
  signinView.hidden = view !== 'signin';
  dashboard.hidden = view !== 'dashboard';
  signOutButton.hidden = view !== 'dashboard';
}

function fail(element: HTMLElement, message: string | undefined): void {
  element.textContent = message ?? '';
  element.hidden = message === undefined;
}

function replicaRow(replica: AdminReplica): HTMLElement {
  const row = h(
    'tr',
    { 'data-testid': 'replica-row', 'data-replica': replica.id, 'data-status': replica.status },
    h('td', { class: 'mono' }, replica.id),
    h('td', {}, h('span', { class: `pill ${replica.status}` }, replica.status)),
    h('td', { class: 'num', 'data-testid': 'replica-connections' }, String(replica.connections)),
    h('td', { class: 'num' }, String(replica.rooms)),
    h('td', { class: 'num' }, `${replica.loopLagMs.mean.toFixed(1)} / ${replica.loopLagMs.p99.toFixed(1)} ms`),
    h('td', { class: 'num' }, `${replica.cpuPercent.toFixed(1)} %`),
    h('td', { class: 'num' }, `${bytes(replica.rssBytes)} / ${bytes(replica.heapUsedBytes)}`),
    h('td', { class: 'num' }, duration(replica.uptimeSeconds)),
  );
  return row;
}

function roomRow(room: AdminRoom): HTMLElement {
  const row = h(
    'tr',
    {
      'data-testid': 'room-row',
      'data-room': room.room,
      class: room.room === selectedRoom ? 'selected' : undefined,
      tabindex: 0,
    },
    h('td', { class: 'mono' }, room.room),
    h('td', { class: 'num', 'data-testid': 'room-members' }, String(room.members)),
    h('td', { class: 'num' }, room.eventRate.toFixed(1)),
    h('td', { class: 'mono muted' }, room.replicas.join(', ')),
  );
  const open = () => void selectRoom(room.room);
  row.addEventListener('click', open);
  row.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') open();
  });
  return row;
}

function renderRooms(): void {
  if (!overview) return;
  const query = roomSearch.value.trim().toLowerCase();
  const rooms = overview.rooms
    .filter((room) => room.room.toLowerCase().includes(query))
    .sort((a, b) =>
      roomSort.value === 'rate' ? b.eventRate - a.eventRate || b.members - a.members : b.members - a.members,
    );
  roomRows.replaceChildren(...rooms.map(roomRow));
  roomCount.textContent = String(overview.rooms.length);
  roomsEmpty.hidden = overview.rooms.length > 0;
}

function render(next: AdminOverview): void {
  overview = next;
  redisPill.textContent = `Redis ${next.redis.topology === 'disabled' ? 'off (memory mode)' : `${next.redis.topology}: ${next.redis.status}`}`;
  redisPill.dataset.state = next.redis.status;
  updated.textContent = `via ${next.replica} at ${new Date(next.generatedAt).toLocaleTimeString()}`;
  replicaRows.replaceChildren(...next.replicas.map(replicaRow));
  replicaCount.textContent = String(next.replicas.length);
  renderRooms();
  charts.update(next.series);
}

function renderDetail(room: AdminRoomDetail): void {
  detail.hidden = false;
  detailName.textContent = room.room;
  detailReplicas.textContent =
    room.replicas.length > 0 ? `On ${room.replicas.join(', ')}` : 'Nobody is in this room right now.';
  detailMembers.replaceChildren(
    ...room.members.map((member) => {
      const kick = h('button', { class: 'button danger small', type: 'button', 'data-testid': 'kick-button' }, 'Kick');
      kick.addEventListener('click', () => void kickMember(room.room, member.userId, kick));
      return h(
        'li',
        { 'data-testid': 'member-row', 'data-user': member.userId },
        h('span', { class: 'who' }, member.name, h('span', { class: 'mono muted' }, ` ${member.userId}`)),
        h('span', { class: 'mono muted' }, member.replica),
        kick,
      );
    }),
  );
  detailEvents.replaceChildren(
    ...(room.events.length === 0
      ? [h('li', { class: 'muted' }, room.historyError ?? 'No events in the history.')]
      : room.events
          .slice()
          .reverse()
          .map((event) =>
            h(
              'li',
              { 'data-testid': 'event-row' },
              h('span', { class: 'mono muted' }, `#${event.seq} ${clockTime(event.ts)}`),
              h('span', { class: 'mono' }, event.type),
              h('span', { class: 'muted' }, event.from),
              h('code', {}, event.preview),
            ),
          )),
  );
}

async function refreshDetail(): Promise<void> {
  if (!api || !selectedRoom) return;
  const room = selectedRoom;
  const answer = await api.room(room);
  if (room === selectedRoom) renderDetail(answer);
}

async function selectRoom(room: string): Promise<void> {
  selectedRoom = room;
  fail(detailError, undefined);
  renderRooms();
  try {
    await refreshDetail();
  } catch (error) {
    fail(detailError, error instanceof Error ? error.message : String(error));
  }
}

async function kickMember(room: string, userId: string, button: HTMLButtonElement): Promise<void> {
  if (!api) return;
  button.disabled = true;
  try {
    await api.kick(room, userId);
    await refreshDetail();
  } catch (error) {
    fail(detailError, `Could not kick ${userId}: ${error instanceof Error ? error.message : String(error)}`);
    button.disabled = false;
  }
}

noticeForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = noticeInput.value.trim();
  if (!api || !selectedRoom || !text) return;
  const room = selectedRoom;
  fail(detailError, undefined);
  api.notice(room, text).then(
    () => {
      noticeInput.value = '';
      return refreshDetail();
    },
    (error: unknown) => {
      fail(detailError, `Could not publish: ${error instanceof Error ? error.message : String(error)}`);
    },
  );
});

/** Polls while the tab is visible: a hidden tab costs the gateway nothing. */
async function poll(): Promise<void> {
  clearTimeout(timer);
  if (!api) return;
  if (!document.hidden) {
    try {
      render(await api.overview());
      if (selectedRoom) await refreshDetail();
    } catch (error) {
      if (error instanceof AdminApiError && (error.status === 401 || error.status === 403)) {
        signOut(error.message);
        return;
      }
      updated.textContent = `update failed: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
  timer = setTimeout(() => void poll(), POLL_MS);
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && api) void poll();
});

function signIn(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
  api = adminApi(token);
  fail(signinError, undefined);
  show('dashboard');
  void poll();
}

function signOut(reason?: string): void {
  clearTimeout(timer);
  sessionStorage.removeItem(TOKEN_KEY);
  api = undefined;
  overview = undefined;
  selectedRoom = undefined;
  detail.hidden = true;
  show('signin');
  fail(signinError, reason);
}

signinForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const token = tokenInput.value.trim();
  if (token) signIn(token);
  else fail(signinError, 'Paste an access token first.');
});
devSigninButton.addEventListener('click', () => {
  devSignIn().then(
    (answer) => signIn(answer.accessToken),
    (error: unknown) =>
      fail(
        signinError,
        error instanceof AdminApiError && error.status === 404
          ? 'The development sign-in is off on this gateway (production, or DEV_LOGIN=false): paste a token instead.'
          : `Development sign-in failed: ${error instanceof Error ? error.message : String(error)}`,
      ),
  );
});
signOutButton.addEventListener('click', () => signOut());
roomSearch.addEventListener('input', renderRooms);
roomSort.addEventListener('change', renderRooms);

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) signIn(saved);
else show('signin');
