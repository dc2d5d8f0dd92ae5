import type { GatewaySocket } from './types.js';

/** The parts of an Engine.IO connection this reads; stable across its transport upgrade. */
interface Connection {
  on(event: 'packetCreate', listener: (this: Connection, packet: { data?: unknown }) => void): unknown;
  on(event: 'flush', listener: (this: Connection) => void): unknown;
  transport: {
    name: string;
    /** False while the previous batch of frames is still being written. */
    writable: boolean;
    /** The `ws` socket under the websocket transport: bytes written but not yet sent, and a hard close. */
    socket?: { bufferedAmount: number; readyState: number; terminate(): void };
  };
  close(discard?: boolean): void;
}

export interface SlowConsumers {
  /** Counts what `socket` has not been able to send from now on. */
  watch(socket: GatewaySocket): void;
  /** Past half the limit: work that would add to the socket's backlog (acks) is refused. */
  congested(socket: GatewaySocket): boolean;
  /**
   * Disconnects politely (the client learns it was the server), and cuts the connection
   * if it is still open `graceMs` later: a polite close waits for the backlog to drain,
   * which a client that does not read never lets happen.
   */
  disconnect(socket: GatewaySocket): void;
}

export interface SlowConsumersOptions {
  maxBytes: number;
  /** How long a disconnected socket may take to drain before it is cut. */
  graceMs?: number;
  /** Called once for a socket past the limit, after its connection was cut. */
  onSlow: (socket: GatewaySocket, unsentBytes: number) => void;
}

/** `WebSocket.CLOSED`. */
const WS_CLOSED = 3;

const sizeOf = (data: unknown): number =>
  typeof data === 'string' ? data.length : data instanceof Uint8Array ? data.byteLength : 0;

/**
 * Bounds what a socket that does not read can cost. Engine.IO queues frames while its
 * transport is still writing the previous batch, and `ws` buffers what the kernel will
 * not take: neither has a limit, so one stalled member of a busy room, or a client that
 * asks for history and never reads the answers, would grow the replica until it dies.
 * Counting happens only while a socket is congested (its transport not writable); a
 * socket past `maxBytes` is cut at once: a polite close would wait for the backlog to drain.
 */
export function createSlowConsumers({ maxBytes, onSlow, graceMs = 2_000 }: SlowConsumersOptions): SlowConsumers {
  // The counts live in the socket's data (`queued`, `cut`), not in an object of their own.
  const watched = new WeakMap<Connection, GatewaySocket>();
  const unsent = (conn: Connection, socket: GatewaySocket): number =>
    socket.data.queued + (conn.transport.socket?.bufferedAmount ?? 0);

  // Shared listeners (`this` is the connection), not closures per socket.
  const cut = (conn: Connection, socket: GatewaySocket): void => {
    if (socket.data.cut) return;
    socket.data.cut = true;
    const bytes = unsent(conn, socket);
    if (conn.transport.name === 'websocket' && conn.transport.socket) conn.transport.socket.terminate();
    else conn.close(true);
    onSlow(socket, bytes);
  };

  function onPacket(this: Connection, packet: { data?: unknown }): void {
    if (this.transport.writable) return;
    const socket = watched.get(this);
    if (!socket || socket.data.cut) return;
    socket.data.queued += sizeOf(packet.data);
    if (unsent(this, socket) > maxBytes) cut(this, socket);
  }
  function onFlush(this: Connection): void {
    const socket = watched.get(this);
    if (socket) socket.data.queued = 0;
  }

  return {
    watch(socket) {
      const conn = socket.conn as unknown as Connection;
      socket.data.queued = 0;
      socket.data.cut = false;
      watched.set(conn, socket);
      conn.on('packetCreate', onPacket);
      conn.on('flush', onFlush);
    },
    congested(socket) {
      const conn = socket.conn as unknown as Connection;
      return watched.has(conn) && !conn.transport.writable && unsent(conn, socket) > maxBytes / 2;
    },
    disconnect(socket) {
      const conn = socket.conn as unknown as Connection;
      const watching = watched.has(conn);
      // Engine.IO calls the connection closed at once, while `ws` keeps what it could not
      // send, for up to 30 s, waiting to send its close frame after it.
      const ws = conn.transport.name === 'websocket' ? conn.transport.socket : undefined;
      socket.disconnect(true);
      if (!watching || !ws) return;
      const timer = setTimeout(() => {
        if (ws.readyState !== WS_CLOSED && ws.bufferedAmount > 0) cut(conn, socket);
      }, graceMs);
      timer.unref();
    },
  };
}
