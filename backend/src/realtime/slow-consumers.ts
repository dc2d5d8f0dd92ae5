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
    socket?: { bufferedAmount: number; terminate(): void };
  };
  close(discard?: boolean): void;
}

export interface SlowConsumers {
  /** Counts what `socket` has not been able to send from now on. */
  watch(socket: GatewaySocket): void;
  /** Past half the limit: work that would add to the socket's backlog (acks) is refused. */
  congested(socket: GatewaySocket): boolean;
}

export interface SlowConsumersOptions {
  maxBytes: number;
  /** Called once for a socket past the limit, after its connection was cut. */
  onSlow: (socket: GatewaySocket, unsentBytes: number) => void;
}

interface Watched {
  socket: GatewaySocket;
  /** Bytes of frames queued in Engine.IO since its last flush to the transport. */
  queued: number;
  cut: boolean;
}

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
export function createSlowConsumers({ maxBytes, onSlow }: SlowConsumersOptions): SlowConsumers {
  const watched = new WeakMap<Connection, Watched>();
  const unsent = (conn: Connection, state: Watched): number =>
    state.queued + (conn.transport.socket?.bufferedAmount ?? 0);

  // Shared listeners (`this` is the connection), not closures per socket.
  function onPacket(this: Connection, packet: { data?: unknown }): void {
    if (this.transport.writable) return;
    const state = watched.get(this);
    if (!state || state.cut) return;
    state.queued += sizeOf(packet.data);
    const bytes = unsent(this, state);
    if (bytes <= maxBytes) return;
    state.cut = true;
    if (this.transport.name === 'websocket' && this.transport.socket) this.transport.socket.terminate();
    else this.close(true);
    onSlow(state.socket, bytes);
  }
  function onFlush(this: Connection): void {
    const state = watched.get(this);
    if (state) state.queued = 0;
  }

  return {
    watch(socket) {
      const conn = socket.conn as unknown as Connection;
      watched.set(conn, { socket, queued: 0, cut: false });
      conn.on('packetCreate', onPacket);
      conn.on('flush', onFlush);
    },
    congested(socket) {
      const conn = socket.conn as unknown as Connection;
      const state = watched.get(conn);
      return state !== undefined && !conn.transport.writable && unsent(conn, state) > maxBytes / 2;
    },
  };
}
