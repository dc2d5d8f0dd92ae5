/**
 * `npm run stack`: the docker-compose.yml topology without Docker. A password-protected
 * redis-server, N gateway replicas in production mode, and nginx running
 * deploy/nginx/nginx.conf as the load balancer, all on loopback.
 *
 *   npm run stack                      # 2 replicas, load balancer on :8080
 *   npm run stack -- --replicas 3 --port 9000
 *
 * Tests use `startStack()` instead; the command line below runs only when this file
 * is the entry point.
 */
import { randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { accessToken } from '../support/client.js';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import { startNginx, type NginxHandle } from '../support/nginx.js';
import { freePort, waitFor } from '../support/ports.js';
import { startRedisServer, type RedisServerHandle } from '../support/redis-server.js';

export interface StackOptions {
  /** Gateway replicas behind the load balancer (default 2, like docker-compose.yml). */
  replicas?: number;
  /** Load balancer port on 127.0.0.1 (default: a free one). */
  port?: number;
  /** Extra gateway environment, over the defaults below; `undefined` removes a variable. */
  env?: Record<string, string | undefined>;
  /** Streams every process's output, tagged with where it came from. */
  onOutput?: (source: string, text: string) => void;
}

export interface Stack {
  /** The load balancer: the one address clients use. */
  readonly url: string;
  readonly replicas: readonly GatewayProcess[];
  readonly redis: RedisServerHandle;
  readonly nginx: NginxHandle;
  /**
   * An access JWT signed with the replicas' JWT_SECRET (random per stack unless given),
   * e.g. a service token `{ sub: 'ops', scope: 'publish' }`.
   */
  accessToken(claims: Parameters<typeof accessToken>[0], expiresInSeconds?: number): string;
  /** Stops nginx, then the replicas (they drain), then Redis; idempotent. */
  close(): Promise<void>;
}

/** Past this a replica that is still draining is killed, so `close()` always ends. */
const STOP_TIMEOUT_MS = 10_000;

async function stopGateway(gateway: GatewayProcess): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => {
      resolve('timeout');
    }, STOP_TIMEOUT_MS);
  });
  try {
    const result = await Promise.race([gateway.stop('SIGTERM'), timedOut]);
    if (result === 'timeout') await gateway.stop('SIGKILL');
  } finally {
    clearTimeout(timer);
  }
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const replicaCount = options.replicas ?? 2;
  if (!Number.isInteger(replicaCount) || replicaCount < 1) {
    throw new Error(`replicas must be a positive integer, got ${replicaCount}`);
  }
  const port = options.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const tag = (source: string) => (text: string) => options.onOutput?.(source, text);

  let redis: RedisServerHandle | undefined;
  const replicas: GatewayProcess[] = [];
  let nginx: NginxHandle | undefined;
  let accessSecret: string | undefined;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      // Load balancer first, so no new work reaches replicas that are about to drain.
      await nginx?.stop();
      await Promise.all(replicas.map(stopGateway));
      await redis?.stop();
    })();
    return closing;
  };

  try {
    // Like docker-compose.yml: Redis requires a password, the gateways have real (random,
    // per-stack) secrets and decide room access from grants in the access JWT. Development
    // mode only for the dev login, which the demo signs in with (never in production).
    redis = await startRedisServer({ password: randomBytes(16).toString('hex') });
    const env: Record<string, string | undefined> = {
      NODE_ENV: 'development',
      ROOM_ACCESS: 'grants',
      REDIS_URL: redis.url,
      JWT_SECRET: randomBytes(32).toString('hex'),
      RTC_TOKEN_SECRET: randomBytes(32).toString('hex'),
      CORS_ORIGINS: `${url},http://localhost:${port}`,
      // The demo app and the e2e test sign in through the dev login.
      DEV_LOGIN: 'true',
      // The operations dashboard at /admin/, signed in with the dev sign-in.
      ADMIN_ENABLED: 'true',
      LOG_LEVEL: 'warn',
      SHUTDOWN_TIMEOUT_MS: '3000',
      ...options.env,
    };
    accessSecret = env.JWT_SECRET;
    const started = await Promise.allSettled(
      Array.from({ length: replicaCount }, (_, index) => {
        const replica = `gateway-${index + 1}`;
        return startGatewayProcess({ replica, env: { ...env, REPLICA_ID: replica }, onOutput: tag(replica) });
      }),
    );
    for (const result of started) if (result.status === 'fulfilled') replicas.push(result.value);
    const failed = started.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    // /readyz is 200 while Redis is still connecting ("degraded"); until every replica
    // is on Redis, events would not cross between them.
    await Promise.all(
      (env.REDIS_URL ? replicas : []).map((replica) =>
        waitFor(`${replica.replica} connected to Redis`, async () => {
          const response = await fetch(`${replica.url}/readyz`);
          const body = (await response.json()) as { redis?: unknown };
          return body.redis === 'connected' || undefined;
        }),
      ),
    );

    nginx = await startNginx({
      port,
      upstreams: replicas.map((replica) => `127.0.0.1:${replica.port}`),
      onOutput: tag('nginx'),
    });
  } catch (error) {
    await close();
    throw error;
  }

  return {
    url,
    replicas,
    redis,
    nginx,
    accessToken(claims, expiresInSeconds = 3600) {
      if (!accessSecret) throw new Error('this stack does not verify access JWTs with JWT_SECRET');
      return accessToken(claims, { secret: accessSecret, expiresInSeconds });
    },
    close,
  };
}

/**
 * What `npm run stack` prints once it is up: where everything runs, and a service token
 * for the stack's random JWT_SECRET, so the README's publish recipe works against it.
 */
export function stackBanner(stack: Stack): string {
  const service = stack.accessToken({ sub: 'ops', scope: 'publish mint kick' });
  const user = stack.accessToken({ sub: 'alice', name: 'Alice', rooms: { demo: ['publish'], 'lobby-*': [] } });
  return [
    '',
    'switchboard stack is up',
    `  load balancer  ${stack.url}   (nginx, deploy/nginx/nginx.conf)`,
    ...stack.replicas.map((replica) => `  ${replica.replica.padEnd(13)}  ${replica.url}/   (its demo, directly)`),
    `  redis          redis://127.0.0.1:${stack.redis.port}   (password protected)`,
    '',
    `Open ${stack.url} for the demo app. Ctrl+C stops everything.`,
    'nginx keeps each client on one replica (it hashes the client address), so two tabs of one',
    'browser land on the same replica. To see two replicas talk, open each replica link above',
    "in its own tab: the badge names the replica a tab is on. Each replica's /admin/ shows both.",
    '',
    'Room access is ROOM_ACCESS=grants: an access JWT names the rooms its user may enter. One for',
    'alice (room "demo" with publish, rooms "lobby-*" read-only, valid 1 h), and minting an RTC token with it:',
    '',
    `  export ALICE=${user}`,
    `  curl -s -XPOST ${stack.url}/api/rtc/tokens -H "authorization: Bearer $ALICE" \\`,
    `    -H 'content-type: application/json' -d '{"room":"demo"}'`,
    '',
    'A service token (scopes "publish mint kick", valid 1 h) for this stack: publishing, minting for a user, kicking:',
    '',
    `  export SERVICE=${service}`,
    `  curl -s -XPOST ${stack.url}/api/rooms/demo/events -H "authorization: Bearer $SERVICE" \\`,
    `    -H 'content-type: application/json' -d '{"type":"notice","data":{"text":"hello"}}'`,
    `  curl -s -XPOST ${stack.url}/api/rtc/tokens -H "authorization: Bearer $SERVICE" \\`,
    `    -H 'content-type: application/json' -d '{"room":"demo","userId":"bob","name":"Bob"}'`,
    `  curl -s -XDELETE ${stack.url}/api/rooms/demo/members/bob -H "authorization: Bearer $SERVICE"`,
    '',
    'The demo app grants itself the room it joins, except rooms named private-…: try one to see a refusal.',
    '',
    'To sign access JWTs of your own, start the stack with JWT_SECRET=<32 bytes or more>.',
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      replicas: { type: 'string', default: '2' },
      port: { type: 'string', default: '8080' },
    },
  });
  const replicas = Number(values.replicas);
  const port = Number(values.port);
  // Let a developer point their own app's tokens at the stack.
  const env: Record<string, string> = {};
  for (const name of ['JWT_SECRET', 'RTC_TOKEN_SECRET', 'LOG_LEVEL', 'CORS_ORIGINS', 'STUN_URLS']) {
    const value = process.env[name];
    if (value) env[name] = value;
  }
  env.LOG_LEVEL ??= 'info';

  const stack = await startStack({
    replicas,
    port,
    env,
    onOutput: (source, text) => {
      for (const line of text.split('\n')) if (line.trim()) process.stdout.write(`[${source}] ${line}\n`);
    },
  });

  process.stdout.write(stackBanner(stack));

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) {
      process.stdout.write(`${signal} again: not waiting for the replicas to drain\n`);
      process.exit(1);
    }
    stopping = true;
    process.stdout.write(`${signal}: stopping the stack\n`);
    stack.close().then(
      () => {
        process.stdout.write('stack stopped\n');
      },
      (error: unknown) => {
        process.stderr.write(`stopping the stack failed: ${String(error)}\n`);
        process.exitCode = 1;
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

const entry = process.argv[1];
if (entry && import.meta.url === pathToFileURL(realpathSync(entry)).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
