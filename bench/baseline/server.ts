/**
 * The baseline Switchboard is measured against: what a team writes by hand with
 * Express, Socket.IO and @socket.io/redis-adapter. Tokens are random UUIDs stored
 * with `SET EX 60` and redeemed with `GETDEL`; room events are `io.to(room).emit`.
 * Nothing else: no JWTs, no rate limits, no presence, no coalescing.
 *
 * Env: PORT (0 = any; the port is printed as `listening <port>`), REDIS_URL, KEY_PREFIX.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdapter } from '@socket.io/redis-adapter';
import express from 'express';
import { createClient } from 'redis';
import { Server } from 'socket.io';

interface TokenRecord {
  userId: string;
  room: string;
}

interface PublishPayload {
  type: string;
  data: unknown;
}

const redisUrl = process.env.REDIS_URL;
if (!redisUrl) throw new Error('REDIS_URL is required');
const prefix = process.env.KEY_PREFIX ?? '';

const redis = createClient({ url: redisUrl });
const pub = redis.duplicate();
const sub = redis.duplicate();
for (const client of [redis, pub, sub]) client.on('error', (error: Error) => console.error('redis:', error.message));
await Promise.all([redis.connect(), pub.connect(), sub.connect()]);

const app = express();
app.use(express.json());

app.get('/healthz', (_req, res) => {
  res.json({ status: 'ok' });
});

// The bare Express reference: JSON in, JSON out, no work.
app.post('/bare', (_req, res) => {
  res.json({ ok: true });
});

app.post('/token', async (req, res) => {
  const { room, userId } = req.body as Partial<TokenRecord>;
  if (typeof room !== 'string' || typeof userId !== 'string') {
    res.status(400).json({ error: 'room and userId are required' });
    return;
  }
  const token = randomUUID();
  await redis.set(`${prefix}rtc:token:${token}`, JSON.stringify({ userId, room }), { EX: 60 });
  res.json({ token });
});

const server = createServer(app);
const io = new Server(server, { cors: { origin: '*' } });
io.adapter(createAdapter(pub, sub, { key: `${prefix}socket.io` }));

// The Socket.IO floor: a namespace with no middleware and nothing on connect, so the bench
// can tell Socket.IO's own handshake cost from what every server adds to it.
io.of('/bare');

io.use((socket, next) => {
  const token: unknown = (socket.handshake.auth as { token?: unknown }).token;
  if (typeof token !== 'string') {
    next(new Error('token_missing'));
    return;
  }
  redis.getDel(`${prefix}rtc:token:${token}`).then(
    (record) => {
      if (!record) {
        next(new Error('token_invalid'));
        return;
      }
      socket.data = JSON.parse(record) as TokenRecord;
      next();
    },
    (error: unknown) => {
      next(error instanceof Error ? error : new Error(String(error)));
    },
  );
});

io.on('connection', (socket) => {
  const { room } = socket.data as TokenRecord;
  void socket.join(room);
  socket.on('publish', (payload: PublishPayload, ack?: (result: unknown) => void) => {
    const event = { id: randomUUID(), type: payload.type, data: payload.data, from: socket.id, ts: Date.now() };
    io.to(room).emit('room:event', event);
    if (typeof ack === 'function') ack({ ok: true, id: event.id });
  });
});

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  console.log(`listening ${(server.address() as AddressInfo).port}`);
});

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void io.close().then(async () => {
    await Promise.all([redis.close(), pub.close(), sub.close()]);
    process.exit(0);
  });
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
