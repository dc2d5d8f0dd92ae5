import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';

/**
 * A deliberately small Socket.IO v5 client: RFC 6455 framing over a raw TCP socket,
 * speaking the Engine.IO v4 text protocol directly. It exists so that the load
 * generator spends its CPU on almost nothing (no streams, no EventEmitter per
 * packet, no JSON unless asked), leaving the cores to the servers under test.
 *
 * Scope: text frames only, no fragmentation, no compression, websocket transport only.
 */

const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;

const CHAR_0 = 0x30;
const CHAR_1 = 0x31;
const CHAR_2 = 0x32;
const CHAR_3 = 0x33;
const CHAR_4 = 0x34;
const CHAR_9 = 0x39;

const HEADER_END = Buffer.from('\r\n\r\n');
const PONG = encodeFrame('3');

/**
 * A masked client frame. The masking key is all zeroes, which RFC 6455 permits on the
 * wire (it only asks clients to choose keys unpredictably, to protect proxies); the
 * server unmasks with it as with any other, and the generator skips the XOR pass.
 */
function encodeFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const length = payload.length;
  let header: Buffer;
  if (length < 126) {
    header = Buffer.alloc(6);
    header[1] = 0x80 | length;
  } else if (length < 65_536) {
    header = Buffer.alloc(8);
    header[1] = 0x80 | 126;
    header.writeUInt16BE(length, 2);
  } else {
    header = Buffer.alloc(14);
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(length), 2);
  }
  header[0] = 0x80 | OP_TEXT;
  return Buffer.concat([header, payload]);
}

export interface SocketClientOptions {
  host: string;
  port: number;
  /** Over TLS (`wss://`), as to a deployment behind an ingress; plain TCP otherwise. */
  tls?: boolean;
  /** Sent as `auth` in the namespace CONNECT packet (e.g. `{token, recover}`). */
  auth: Record<string, unknown>;
  /** The namespace to connect to (default `/`). */
  namespace?: string;
  /** Resolve `ready` on this server event instead of on the CONNECT ack (e.g. `session`). */
  readyEvent?: string;
  /**
   * Every Socket.IO packet from the ready event on (the ready event's own packet included),
   * as raw bytes starting at the packet type; acks of `request` are not passed on.
   */
  onPacket?: (packet: Buffer) => void;
  /** The connection is gone, after `ready` or instead of it; called once. */
  onClose?: (reason: CloseReason) => void;
}

/**
 * Socket.IO's names for why a connection ended: the server ended the session (it sent
 * a DISCONNECT packet first), the connection dropped without one, or we closed it.
 */
export type CloseReason = 'io server disconnect' | 'transport close' | 'io client disconnect';

/** The server refused the namespace CONNECT (`connect_error`); `code` is its message. */
export class ConnectRefused extends Error {
  constructor(readonly code: string) {
    super(`connect_error: ${code}`);
    this.name = 'ConnectRefused';
  }
}

/** The connection ended before the server answered a `request`. */
export class AckLost extends Error {
  constructor(event: string) {
    super(`${event}: the connection closed before the ack`);
    this.name = 'AckLost';
  }
}

interface AckWaiter {
  event: string;
  resolve: (answer: unknown) => void;
  reject: (error: Error) => void;
}

export type ClientState = 'connecting' | 'open' | 'connected' | 'ready' | 'closed';

export class SocketClient {
  state: ClientState = 'connecting';
  /** Socket.IO id once connected. */
  sid = '';
  private readonly socket: Socket;
  private pending: Buffer | undefined;
  private upgraded = false;
  private ackId = 0;
  /** Requests waiting for their ack, by ack id. */
  private readonly acks = new Map<number, AckWaiter>();
  private serverDisconnected = false;
  private readonly readyPrefix: Buffer | undefined;
  private settle: { resolve: () => void; reject: (error: Error) => void } | undefined;
  /** Resolves once the namespace accepted us (and `readyEvent` arrived, when set). */
  readonly ready: Promise<void>;
  onPacket: ((packet: Buffer) => void) | undefined;
  private onClose: ((reason: CloseReason) => void) | undefined;

  constructor(private readonly options: SocketClientOptions) {
    this.onPacket = options.onPacket;
    this.onClose = options.onClose;
    this.readyPrefix = options.readyEvent ? Buffer.from(`42["${options.readyEvent}"`) : undefined;
    this.ready = new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    // Nobody may be awaiting yet; the failure still surfaces through `ready`.
    this.ready.catch(() => undefined);
    this.socket = options.tls
      ? connectTls({ host: options.host, port: options.port, servername: options.host }).setNoDelay(true)
      : connect({ host: options.host, port: options.port, noDelay: true });
    this.socket.on(options.tls ? 'secureConnect' : 'connect', () => {
      const key = randomBytes(16).toString('base64');
      this.socket.write(
        `GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: ${options.host}:${options.port}\r\n` +
          `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    this.socket.on('data', (chunk: Buffer) => {
      this.onData(chunk);
    });
    this.socket.on('error', (error) => {
      this.fail(error);
    });
    this.socket.on('close', () => {
      this.fail(new Error('connection closed'));
      this.state = 'closed';
      this.ended(this.serverDisconnected ? 'io server disconnect' : 'transport close');
    });
  }

  /**
   * Emits `event` with `payload` and resolves with the first argument of its ack (the
   * server's answer, e.g. `{ok: true, id, seq}`); rejects with AckLost if the connection
   * ends first. Only once `ready`.
   */
  request(event: string, payload: unknown): Promise<unknown> {
    if (this.state !== 'ready') return Promise.reject(new AckLost(event));
    const id = this.ackId++;
    return new Promise((resolve, reject) => {
      this.acks.set(id, { event, resolve, reject });
      this.socket.write(encodeFrame(`42${id}${JSON.stringify([event, payload])}`));
    });
  }

  close(): void {
    this.drop('io client disconnect');
  }

  /** Ends the connection as a network failure would (`transport close`). */
  cut(): void {
    this.drop('transport close');
  }

  private drop(reason: CloseReason): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.fail(new Error(reason));
    this.ended(reason);
    this.socket.destroy();
  }

  private ended(reason: CloseReason): void {
    for (const waiter of this.acks.values()) waiter.reject(new AckLost(waiter.event));
    this.acks.clear();
    const onClose = this.onClose;
    this.onClose = undefined;
    onClose?.(reason);
  }

  private fail(error: Error): void {
    const settle = this.settle;
    this.settle = undefined;
    settle?.reject(error);
  }

  private becomeReady(): void {
    this.state = 'ready';
    const settle = this.settle;
    this.settle = undefined;
    settle?.resolve();
  }

  private onData(chunk: Buffer): void {
    let buffer = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    if (!this.upgraded) {
      const end = buffer.indexOf(HEADER_END);
      if (end === -1) {
        this.pending = buffer;
        return;
      }
      const status = buffer.toString('latin1', 0, 12);
      if (!status.startsWith('HTTP/1.1 101')) {
        this.fail(new Error(`websocket upgrade refused: ${buffer.toString('latin1', 0, end).split('\r\n')[0] ?? ''}`));
        this.close();
        return;
      }
      this.upgraded = true;
      this.state = 'open';
      buffer = buffer.subarray(end + 4);
    }
    let offset = 0;
    const total = buffer.length;
    while (total - offset >= 2) {
      const b0 = buffer[offset] as number;
      let length = (buffer[offset + 1] as number) & 0x7f;
      let header = 2;
      if (length === 126) {
        if (total - offset < 4) break;
        length = buffer.readUInt16BE(offset + 2);
        header = 4;
      } else if (length === 127) {
        if (total - offset < 10) break;
        length = buffer.readUInt32BE(offset + 6);
        header = 10;
      }
      if (total - offset < header + length) break;
      const start = offset + header;
      offset = start + length;
      const opcode = b0 & 0x0f;
      if (opcode === OP_TEXT) this.onText(buffer.subarray(start, offset));
      else if (opcode === OP_PING) this.socket.write(Buffer.from([0x8a, 0x80, 0, 0, 0, 0]));
      else if (opcode === OP_CLOSE) {
        this.drop(this.serverDisconnected ? 'io server disconnect' : 'transport close');
        return;
      } else if (opcode === OP_CONTINUATION || (b0 & 0x80) === 0) {
        this.fail(new Error('fragmented frames are not supported'));
        this.close();
        return;
      }
    }
    if (offset < total) this.pending = buffer.subarray(offset);
  }

  private onText(text: Buffer): void {
    const type = text[0];
    if (type === CHAR_4) {
      // Socket.IO packet inside an Engine.IO message.
      const packetType = text[1];
      if (this.state === 'ready') {
        if (packetType === CHAR_3 && this.acks.size > 0 && this.settleAck(text)) return;
        if (packetType === CHAR_1) this.serverDisconnected = true;
        this.onPacket?.(text.subarray(1));
        return;
      }
      if (packetType === CHAR_0) {
        // `40{…}`, or `40/nsp,{…}` for another namespace.
        const body = JSON.parse(text.toString('utf8', text.indexOf('{', 2))) as { sid?: string };
        this.sid = body.sid ?? '';
        if (this.readyPrefix) this.state = 'connected';
        else this.becomeReady();
      } else if (packetType === CHAR_4) {
        const body = JSON.parse(text.toString('utf8', 2)) as { message?: string };
        this.fail(new ConnectRefused(body.message ?? 'unknown'));
        this.close();
      } else if (this.readyPrefix && this.state === 'connected' && startsWith(text, this.readyPrefix)) {
        this.becomeReady();
        this.onPacket?.(text.subarray(1));
      } else if (packetType === CHAR_1) {
        this.serverDisconnected = true;
      }
      return;
    }
    if (type === CHAR_2) this.socket.write(PONG);
    else if (type === CHAR_0) {
      const namespace = this.options.namespace && this.options.namespace !== '/' ? `${this.options.namespace},` : '';
      this.socket.write(encodeFrame(`40${namespace}${JSON.stringify(this.options.auth)}`));
    }
  }

  /** `43<id>[answer]`: hands the answer to its `request`; false when the id is not ours. */
  private settleAck(text: Buffer): boolean {
    let id = 0;
    let at = 2;
    for (; at < text.length; at++) {
      const char = text[at] as number;
      if (char < CHAR_0 || char > CHAR_9) break;
      id = id * 10 + char - CHAR_0;
    }
    const waiter = this.acks.get(id);
    if (!waiter || at === 2) return false;
    this.acks.delete(id);
    const args = JSON.parse(text.toString('utf8', at)) as unknown[];
    waiter.resolve(args[0]);
    return true;
  }
}

/** Whether `buffer`, from `offset`, starts with `prefix`. */
export function startsWith(buffer: Buffer, prefix: Buffer, offset = 0): boolean {
  if (buffer.length - offset < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (buffer[offset + i] !== prefix[i]) return false;
  return true;
}
