import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPoster, type Poster } from '../src/webhooks/poster.js';

/** A receiver whose answer each test sets; it counts the TCP connections it accepted. */
describe('the webhook poster against a real HTTP receiver', () => {
  let server: Server;
  let url: string;
  let answer: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end();
  const connections = new Set<Socket>();
  let accepted = 0;
  const received: Array<{ body: string; headers: IncomingMessage['headers'] }> = [];
  const poster: Poster = createPoster({ concurrency: 4, timeoutMs: 300, userAgent: 'switchboard-test' });

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        received.push({ body, headers: req.headers });
        answer(req, res);
      });
    });
    server.on('connection', (socket: Socket) => {
      accepted++;
      connections.add(socket);
      socket.on('close', () => connections.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  });
  afterAll(async () => {
    poster.close();
    for (const socket of connections) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  it('sends the JSON body with its headers, and reuses one connection for posts one after another', async () => {
    answer = (_req, res) => res.writeHead(204).end();
    accepted = 0;
    received.length = 0;
    for (let i = 0; i < 5; i++) await poster(url, JSON.stringify({ i }), { 'switchboard-signature': `t=1,v1=${i}` });
    expect(received.map(({ body }) => JSON.parse(body) as unknown)).toEqual([0, 1, 2, 3, 4].map((i) => ({ i })));
    expect(received[4]?.headers).toMatchObject({
      'content-type': 'application/json',
      'user-agent': 'switchboard-test',
      'switchboard-signature': 't=1,v1=4',
    });
    expect(accepted).toBe(1);
  });

  it('rejects a non-2xx answer and a redirect, naming the status', async () => {
    answer = (_req, res) => res.writeHead(503).end('busy');
    await expect(poster(url, '{}', {})).rejects.toThrow('answered 503');
    answer = (_req, res) => res.writeHead(302, { location: 'http://127.0.0.1:1/' }).end();
    await expect(poster(url, '{}', {})).rejects.toThrow('answered 302');
  });

  it('gives up on a receiver that never answers after its timeout', async () => {
    answer = () => undefined;
    await expect(poster(url, '{}', {})).rejects.toThrow('no answer within 300 ms');
  });

  it('rejects when nothing listens', async () => {
    await expect(poster('http://127.0.0.1:1/hooks', '{}', {})).rejects.toThrow(/ECONNREFUSED/);
  });
});
