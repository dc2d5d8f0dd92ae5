import { connect, type Socket } from 'node:net';

/**
 * A lean HTTP/1.1 keep-alive client: one request in flight per connection, requests
 * written as one string, responses parsed just far enough to find the status and
 * the body (servers here answer with Content-Length). node:http costs tens of
 * microseconds per request, which on two cores would be taken from the server.
 */

const HEADER_END = Buffer.from('\r\n\r\n');

export interface HttpResponse {
  status: number;
  body: Buffer;
}

interface Waiter {
  resolve: (response: HttpResponse) => void;
  reject: (error: Error) => void;
}

export class HttpConnection {
  private readonly socket: Socket;
  private buffer: Buffer | undefined;
  private waiter: Waiter | undefined;
  private closed = false;
  private readonly connected: Promise<void>;

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {
    this.socket = connect({ host, port, noDelay: true });
    this.connected = new Promise((resolve, reject) => {
      this.socket.once('connect', resolve);
      this.socket.once('error', reject);
    });
    this.connected.catch(() => undefined);
    this.socket.on('data', (chunk: Buffer) => {
      this.onData(chunk);
    });
    this.socket.on('error', (error) => {
      this.failWaiter(error);
    });
    this.socket.on('close', () => {
      this.closed = true;
      this.failWaiter(new Error('connection closed'));
    });
  }

  async request(method: string, path: string, headers: string, body = ''): Promise<HttpResponse> {
    await this.connected;
    if (this.closed) throw new Error('connection closed');
    if (this.waiter) throw new Error('one request at a time per connection');
    const promise = new Promise<HttpResponse>((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
    const length = Buffer.byteLength(body);
    this.socket.write(
      `${method} ${path} HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\n${headers}` +
        `Content-Length: ${length}\r\n\r\n${body}`,
    );
    return promise;
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private failWaiter(error: Error): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(error);
  }

  private onData(chunk: Buffer): void {
    const buffer = this.buffer ? Buffer.concat([this.buffer, chunk]) : chunk;
    this.buffer = undefined;
    const end = buffer.indexOf(HEADER_END);
    if (end === -1) {
      this.buffer = buffer;
      return;
    }
    const head = buffer.toString('latin1', 0, end);
    const status = Number(head.slice(9, 12));
    const match = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (!match?.[1]) {
      this.failWaiter(new Error(`response without Content-Length: ${head.split('\r\n')[0] ?? ''}`));
      this.close();
      return;
    }
    const bodyEnd = end + 4 + Number(match[1]);
    if (buffer.length < bodyEnd) {
      this.buffer = buffer;
      return;
    }
    if (buffer.length > bodyEnd) this.buffer = buffer.subarray(bodyEnd);
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.resolve({ status, body: buffer.subarray(end + 4, bodyEnd) });
  }
}

export interface HttpPool {
  readonly connections: HttpConnection[];
  close(): void;
}

export function openPool(host: string, port: number, size: number): HttpPool {
  const connections = Array.from({ length: size }, () => new HttpConnection(host, port));
  return {
    connections,
    close() {
      for (const connection of connections) connection.close();
    },
  };
}

export const JSON_HEADERS = 'Content-Type: application/json\r\n';

/**
 * Runs `count` jobs through the pool, at most one per connection at a time,
 * and returns their results in order.
 */
export async function runAll<T>(
  pool: HttpPool,
  count: number,
  job: (connection: HttpConnection, index: number) => Promise<T>,
): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  await Promise.all(
    pool.connections.map(async (connection) => {
      while (next < count) {
        const index = next++;
        results[index] = await job(connection, index);
      }
    }),
  );
  return results;
}
