import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A loopback TCP proxy that can go silent: while frozen it forwards nothing in either
 * direction and resets nothing (what it reads waits), so the connections through it look
 * like a link whose packets are dropped, and when it thaws what waited goes through, as
 * retransmissions would. For places where nftables is not usable (no root): the bench.
 */
export interface FreezableProxy {
  readonly port: number;
  freeze(): void;
  thaw(): void;
  close(): Promise<void>;
}

export async function startFreezableProxy(target: { host?: string; port: number }): Promise<FreezableProxy> {
  let frozen = false;
  const pipes = new Set<{ flush(): void; destroy(): void }>();
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: target.host ?? '127.0.0.1', port: target.port });
    const waiting: Array<[Socket, Buffer]> = [];
    const forward = (to: Socket) => (chunk: Buffer) => {
      if (frozen) waiting.push([to, chunk]);
      else to.write(chunk);
    };
    client.on('data', forward(upstream));
    upstream.on('data', forward(client));
    const pipe = {
      flush() {
        for (const [to, chunk] of waiting.splice(0)) to.write(chunk);
      },
      destroy() {
        client.destroy();
        upstream.destroy();
      },
    };
    pipes.add(pipe);
    const end = () => {
      pipes.delete(pipe);
      pipe.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    freeze() {
      frozen = true;
    },
    thaw() {
      frozen = false;
      for (const pipe of pipes) pipe.flush();
    },
    async close() {
      for (const pipe of pipes) pipe.destroy();
      pipes.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
