import { createPublicKey } from 'node:crypto';
import { z } from 'zod';
import { ROOM_ACCESS_MODES, type RoomAccessMode } from '@switchboard/contract';

/** Stand-ins that make `npm start` work out of the box; production refuses them. */
export const DEV_SECRETS = {
  JWT_SECRET: 'switchboard-dev-access-secret-change-me',
  RTC_TOKEN_SECRET: 'switchboard-dev-rtc-token-secret-change-me',
} as const;

const MIN_SECRET_BYTES = 32;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const integer = (min: number, max: number) =>
  z.coerce
    .number({ error: `must be a whole number from ${min} to ${max}` })
    .int()
    .min(min)
    .max(max);
const flag = z
  .enum(['1', '0', 'true', 'false', 'on', 'off', 'yes', 'no'])
  .transform((value) => ['1', 'true', 'on', 'yes'].includes(value));
const list = z.string().transform((value) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean),
);
const redisUrl = z.string().regex(/^rediss?:\/\/[^\s]+$/, 'must be redis://[user:password@]host:port or rediss://…');
/** A browser origin as the Origin header spells it (scheme, host, optional port), or `*`. */
const corsOrigin = z.string().refine((value) => value === '*' || /^https?:\/\/[^/\s:]+(?::\d{1,5})?$/.test(value), {
  error: ({ input }) =>
    /^[a-z][a-z0-9+.-]*:\/\//i.test(String(input))
      ? `"${String(input)}" is not an origin: write scheme://host[:port], with no path`
      : `"${String(input)}" has no scheme: write it as the browser sends it, e.g. http://${String(input)}`,
});
const optionalText = z
  .string()
  .transform((value) => value.trim())
  .transform((value) => (value === '' ? undefined : value))
  .optional();

export const OPENAI_PUBLIC_BASE_URL = 'https://api.openai.com/v1';

function parseJson(text: string, context: z.RefinementCtx): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    context.addIssue({ code: 'custom', message: 'is not valid JSON' });
    return z.NEVER;
  }
}

/** Names of models and voices: one or more, each a plain identifier. */
const names = z
  .array(z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, 'entries must be 1-128 characters of A-Z a-z 0-9 _ . : -'))
  .min(1, 'must name at least one');

/**
 * A Realtime session configuration object. Model and voice come from the lists, so
 * setting them here would be silently overridden: refused instead.
 */
const realtimeSession = z
  .looseObject({
    type: z.literal('realtime').default('realtime'),
    model: z.never({ error: 'set models with OPENAI_REALTIME_MODELS, not in the session' }).optional(),
    audio: z
      .looseObject({
        output: z
          .looseObject({
            voice: z.never({ error: 'set voices with OPENAI_REALTIME_VOICES, not in the session' }).optional(),
          })
          .optional(),
      })
      .optional(),
  })
  .transform((session): RealtimeSessionConfig => session);

/** The session configuration sent upstream, as JSON. */
export type RealtimeSessionConfig = { type: 'realtime' } & Record<string, unknown>;

/**
 * Every environment variable the gateway reads. Deploy files are checked against
 * these keys, so a variable set in compose or k8s that is not here is a bug.
 */
const envSchema = z.object({
  /** Unset means production: a forgotten variable must not open the dev login or CORS. */
  NODE_ENV: z.enum(['development', 'test', 'production']).default('production'),
  PORT: integer(0, 65535).default(3000),
  /** Serve `/metrics` on this port instead of the public one (0 = public port). */
  METRICS_PORT: integer(0, 65535).default(0),
  REDIS_URL: optionalText.pipe(redisUrl.optional()),
  /** Redis Cluster seed nodes. */
  REDIS_CLUSTER_URLS: optionalText.pipe(list.pipe(z.array(redisUrl).min(1)).optional()),
  /** Sentinels that monitor REDIS_SENTINEL_MASTER. */
  REDIS_SENTINEL_URLS: optionalText.pipe(list.pipe(z.array(redisUrl).min(1)).optional()),
  REDIS_SENTINEL_MASTER: optionalText.pipe(
    z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be the monitored master name (A-Z a-z 0-9 _ . -)')
      .optional(),
  ),
  /** A Redis client whose PING is unanswered this long makes Redis unresponsive (a silent link). */
  REDIS_UNRESPONSIVE_AFTER_MS: integer(100, 60_000).default(2_000),
  REDIS_KEY_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{0,64}$/, 'must be at most 64 characters of A-Z a-z 0-9 _ . : -')
    .default(''),
  JWT_SECRET: optionalText,
  JWT_PUBLIC_KEY: optionalText,
  /** An identity provider's JSON Web Key Set; access JWTs are verified by `kid` against it. */
  JWT_JWKS_URL: optionalText.pipe(
    z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
  ),
  /** How long fetched keys are trusted before the set is fetched again. */
  JWT_JWKS_CACHE_SECONDS: integer(1, 86_400).default(600),
  /** After a fetch, a token with an unknown `kid` can trigger the next one only this much later. */
  JWT_JWKS_COOLDOWN_SECONDS: integer(0, 3600).default(30),
  JWT_JWKS_TIMEOUT_MS: integer(100, 30_000).default(3000),
  JWT_ISSUER: optionalText,
  JWT_AUDIENCE: optionalText,
  /** The claim that carries a service token's scopes: a space-separated string or an array. */
  JWT_SCOPE_CLAIM: optionalText.pipe(
    z
      .string()
      .regex(/^\S{1,256}$/, 'must be one claim name without spaces')
      .optional(),
  ),
  /** Prepended to each scope name an identity provider namespaces, e.g. `switchboard:`. */
  JWT_SCOPE_PREFIX: z
    .string()
    .regex(/^\S{0,64}$/, 'must be at most 64 characters without spaces')
    .default(''),
  /** How the gateway learns which rooms a user may enter; unset: `grants` in production, else `open`. */
  ROOM_ACCESS: z.enum(ROOM_ACCESS_MODES).optional(),
  /** The access-JWT claim mapping room names and `prefix*` patterns to capabilities. */
  JWT_ROOMS_CLAIM: z
    .string()
    .regex(/^\S{1,256}$/, 'must be one claim name without spaces')
    .default('rooms'),
  /** The app's endpoint that decides room access with ROOM_ACCESS=authorizer. */
  ROOM_AUTHORIZER_URL: optionalText.pipe(
    z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
  ),
  /** Signs what the gateway POSTs to ROOM_AUTHORIZER_URL (`Switchboard-Signature`). */
  ROOM_AUTHORIZER_SECRET: optionalText,
  ROOM_AUTHORIZER_TIMEOUT_MS: integer(100, 30_000).default(2_000),
  /** How long a decision is reused when the authorizer names no `ttlSeconds` (0 = never). */
  ROOM_AUTHORIZER_CACHE_SECONDS: integer(0, 3_600).default(30),
  RTC_TOKEN_SECRET: optionalText,
  RTC_TOKEN_TTL_SECONDS: integer(1, 3600).default(60),
  CORS_ORIGINS: optionalText.pipe(list.pipe(z.array(corsOrigin)).optional()),
  DEV_LOGIN: flag.optional(),
  /** Unset: `redis` on one server or Sentinel, `redis-sharded` on Cluster. */
  SOCKETIO_ADAPTER: z.enum(['redis', 'redis-sharded']).optional(),
  REPLICA_ID: optionalText.pipe(z.string().max(64).optional()),
  STUN_URLS: optionalText.pipe(list.optional()),
  TURN_URLS: optionalText.pipe(list.optional()),
  TURN_SECRET: optionalText,
  TURN_TTL_SECONDS: integer(60, 86_400).default(3600),
  SHUTDOWN_TIMEOUT_MS: integer(0, 600_000).default(10_000),
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  /** RTC token mints allowed per user per minute. */
  MINT_RATE_PER_MINUTE: integer(1, 100_000).default(60),
  /** Concurrent sockets one user may hold, across replicas (per replica while Redis is unreachable). */
  MAX_CONNECTIONS_PER_USER: integer(1, 10_000).default(20),
  /** Client → server events one socket may send per second (burst = 2x). */
  SOCKET_EVENTS_PER_SECOND: integer(1, 100_000).default(50),
  /** Room events published within this window reach each socket as one frame (0 = off). */
  EVENT_COALESCE_MS: integer(0, 1000).default(5),
  /** Most tokens the in-memory fallback holds at once. */
  MEMORY_TOKEN_CAP: integer(100, 10_000_000).default(100_000),
  /** Seconds before a silent replica's peers are announced as left. */
  PRESENCE_TTL_SECONDS: integer(3, 300).default(10),
  /** Rooms one connection may be in at once (`room:join` beyond it: `rate_limited`). */
  MAX_ROOMS_PER_CONNECTION: integer(1, 1_000).default(16),
  /** Most peers a `session` (or `room:join` answer) lists; the rest are paged with `peers`. At most 150, so the frame stays under 64 KiB. */
  PRESENCE_SNAPSHOT_MAX: integer(0, 150).default(100),
  /** Above this many members a room sends `presence:count` instead of announcing each join and leave. */
  ROOM_ANNOUNCE_MAX: integer(1, 1_000_000).default(500),
  /** Least time between two `presence:count` frames of one room. */
  PRESENCE_COUNT_INTERVAL_MS: integer(50, 60_000).default(1000),
  /** Room events kept per room for recovery and history reads (0 = history and recovery off). */
  ROOM_HISTORY_SIZE: integer(0, 10_000).default(100),
  /** A room's history is dropped this long after its last event. */
  ROOM_HISTORY_TTL_SECONDS: integer(1, 86_400).default(300),
  /** Most bytes of events kept per room, whatever ROOM_HISTORY_SIZE allows. */
  ROOM_HISTORY_MAX_BYTES: integer(128 * 1024, 1024 * 1024 * 1024).default(1024 * 1024),
  /** A history reply (socket or HTTP) stops before this many bytes of events and says `more`. */
  HISTORY_REPLY_MAX_BYTES: integer(80 * 1024, 64 * 1024 * 1024).default(256 * 1024),
  /** Unsent bytes a socket may hold before it is disconnected as a slow consumer. */
  SOCKET_MAX_BUFFERED_BYTES: integer(256 * 1024, 1024 * 1024 * 1024).default(4 * 1024 * 1024),
  /** Most events one reconnecting client may recover. */
  RECOVERY_MAX_EVENTS: integer(0, 10_000).default(100),
  /** Mints OpenAI Realtime client secrets; unset turns `/api/rtc/upstream/openai` off (404). */
  OPENAI_API_KEY: optionalText,
  OPENAI_BASE_URL: z
    .url({ protocol: /^https?$/ })
    .regex(/^https?:\/\/[^@/]+(?:\/|$)/, 'must be an http(s) URL without credentials')
    .transform((value) => value.replace(/\/+$/, ''))
    .default(OPENAI_PUBLIC_BASE_URL),
  /** The session every client secret is minted with (JSON); clients only pick model and voice. */
  OPENAI_REALTIME_SESSION: z
    .string()
    .max(32_768)
    .transform(parseJson)
    .pipe(realtimeSession)
    .default({ type: 'realtime' }),
  OPENAI_REALTIME_MODELS: list.pipe(names).default(['gpt-realtime']),
  OPENAI_REALTIME_VOICES: list.pipe(names).default(['marin', 'cedar']),
  /** Live upstream secrets one user may hold at once, across replicas. */
  UPSTREAM_SESSIONS_PER_USER: integer(1, 1_000).default(2),
  /** Secrets one user may mint per minute, across replicas; a DELETE frees a live slot, not a mint. */
  UPSTREAM_MINTS_PER_MINUTE: integer(1, 1_000).default(10),
  /** Bound on one upstream call, retries included. */
  UPSTREAM_TIMEOUT_MS: integer(100, 60_000).default(5_000),
  /** The expiry asked of the provider for each client secret (the provider accepts 10–7200). */
  UPSTREAM_SECRET_TTL_SECONDS: integer(10, 7_200).default(60),
  /** Serves the operations dashboard at /admin and its API at /api/admin (scope `admin`). */
  ADMIN_ENABLED: flag.default(false),
});

export const KNOWN_ENV_VARS: readonly string[] = Object.keys(envSchema.shape);

/** Variables whose values may be secret (or carry credentials): never echoed in an error. */
const SENSITIVE = /SECRET|KEY|PASSWORD|TOKEN|_URLS?$|SESSION/;

/** Levenshtein distance, bounded: anything above `max` is reported as `max + 1`. */
function distance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        (previous[j] ?? 0) + 1,
        (current[j - 1] ?? 0) + 1,
        (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return Math.min(previous[b.length] ?? 0, max + 1);
}

/**
 * The known variable a set, unknown one was probably meant to be (`REDIS_URI` →
 * `REDIS_URL`, `port` → `PORT`), or undefined. Short names only match at distance 1,
 * so ordinary environment variables (HOME, PATH, HOSTNAME) are left alone.
 */
export function nearMiss(name: string, known: readonly string[] = KNOWN_ENV_VARS): string | undefined {
  if (known.includes(name)) return undefined;
  const upper = name.toUpperCase().replace(/-/g, '_');
  const max = upper.length >= 8 ? 2 : 1;
  let best: { name: string; distance: number } | undefined;
  for (const candidate of known) {
    const d = candidate === upper ? 0 : distance(upper, candidate, max);
    if (d <= max && (!best || d < best.distance)) best = { name: candidate, distance: d };
  }
  return best?.name;
}

function describeIssue(issue: z.core.$ZodIssue, env: Record<string, string | undefined>): string {
  const name = String(issue.path[0] ?? '');
  const value = env[name];
  // Say what was read, so `PORT=abc` is not a guessing game; never a secret's value.
  const got =
    value === undefined || SENSITIVE.test(name) || issue.message.includes('"')
      ? ''
      : ` (got ${JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value)})`;
  return `${issue.path.join('.')}: ${issue.message}${got}`;
}

export type AccessKey =
  | { kind: 'secret'; algorithms: ['HS256']; key: string }
  | { kind: 'public'; algorithms: ['RS256'] | ['ES256']; key: string }
  | {
      kind: 'jwks';
      algorithms: ['RS256', 'ES256'];
      url: string;
      cacheMaxAgeMs: number;
      cooldownMs: number;
      timeoutMs: number;
    };

/** Where access-JWT keys come from; exactly one may be set. */
const ACCESS_KEY_SOURCES = ['JWT_SECRET', 'JWT_PUBLIC_KEY', 'JWT_JWKS_URL'] as const;

/** How Redis is reached: exactly one of REDIS_URL, REDIS_CLUSTER_URLS, REDIS_SENTINEL_URLS. */
export type RedisTopology =
  | { kind: 'standalone'; url: string }
  | { kind: 'cluster'; urls: string[] }
  | { kind: 'sentinel'; urls: string[]; master: string };

export interface Config {
  env: 'development' | 'test' | 'production';
  port: number;
  metricsPort: number;
  /** Undefined in memory mode. */
  redis: { topology: RedisTopology | undefined; keyPrefix: string; unresponsiveAfterMs: number };
  adapter: 'redis' | 'redis-sharded';
  accessJwt: {
    key: AccessKey;
    issuer: string | undefined;
    audience: string | undefined;
    scopeClaim: string;
    scopePrefix: string;
  };
  roomAccess: RoomAccessConfig;
  rtcToken: { secret: string; ttlSeconds: number };
  corsOrigins: '*' | string[];
  devLogin: boolean;
  replicaId: string;
  ice: { stunUrls: string[]; turnUrls: string[]; turnSecret: string | undefined; turnTtlSeconds: number };
  shutdownTimeoutMs: number;
  logLevel: (typeof LOG_LEVELS)[number];
  limits: {
    mintPerMinute: number;
    connectionsPerUser: number;
    socketEventsPerSecond: number;
    memoryTokenCap: number;
    socketMaxBufferedBytes: number;
  };
  coalesceMs: number;
  presenceTtlSeconds: number;
  rooms: {
    maxPerConnection: number;
    presenceSnapshotMax: number;
    announceMax: number;
    presenceCountIntervalMs: number;
  };
  history: { size: number; ttlSeconds: number; maxBytes: number; replyMaxBytes: number; recoveryMaxEvents: number };
  upstream: {
    /** Undefined when OPENAI_API_KEY is unset: the feature is off. */
    openai:
      | { apiKey: string; baseUrl: string; session: RealtimeSessionConfig; models: string[]; voices: string[] }
      | undefined;
    sessionsPerUser: number;
    mintsPerMinute: number;
    timeoutMs: number;
    secretTtlSeconds: number;
  };
  /** Serve the operations dashboard and its API. */
  adminEnabled: boolean;
  /** Insecure choices that are allowed here but deserve a loud warning at start. */
  warnings: string[];
}

export interface RoomAccessConfig {
  mode: RoomAccessMode;
  /** The access-JWT claim holding room grants (read in every mode that reads grants). */
  claim: string;
  /** Set with mode `authorizer`. */
  authorizer: { url: string; secret: string; timeoutMs: number; cacheSeconds: number } | undefined;
}

/** Signs authorizer requests in development when ROOM_AUTHORIZER_SECRET is unset. */
export const DEV_AUTHORIZER_SECRET = 'switchboard-dev-authorizer-secret-change-me';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

function accessKey(pem: string | undefined, secret: string | undefined, problems: string[]): AccessKey | undefined {
  if (pem) {
    try {
      // Deploy tools often flatten PEM newlines into literal "\n".
      const key = pem.includes('\\n') ? pem.replace(/\\n/g, '\n') : pem;
      const type = createPublicKey(key).asymmetricKeyType;
      if (type === 'rsa') return { kind: 'public', algorithms: ['RS256'], key };
      if (type === 'ec') return { kind: 'public', algorithms: ['ES256'], key };
      problems.push(`JWT_PUBLIC_KEY: must be an RSA or EC public key, got ${type ?? 'unknown'}`);
    } catch {
      problems.push('JWT_PUBLIC_KEY: is not a PEM public key');
    }
    return undefined;
  }
  return secret ? { kind: 'secret', algorithms: ['HS256'], key: secret } : undefined;
}

const TOPOLOGY_VARIABLES = ['REDIS_URL', 'REDIS_CLUSTER_URLS', 'REDIS_SENTINEL_URLS'] as const;

function redisTopology(e: z.infer<typeof envSchema>, problems: string[]): RedisTopology | undefined {
  const chosen = TOPOLOGY_VARIABLES.filter((name) => e[name] !== undefined);
  if (chosen.length > 1) {
    problems.push(`${chosen.join(', ')}: set exactly one of them (one server, a Cluster, or Sentinel)`);
    return undefined;
  }
  if (e.REDIS_SENTINEL_MASTER && !e.REDIS_SENTINEL_URLS) {
    problems.push('REDIS_SENTINEL_MASTER: is set without REDIS_SENTINEL_URLS');
  }
  if (e.REDIS_URL) return { kind: 'standalone', url: e.REDIS_URL };
  if (e.REDIS_CLUSTER_URLS) return { kind: 'cluster', urls: e.REDIS_CLUSTER_URLS };
  if (e.REDIS_SENTINEL_URLS) {
    if (!e.REDIS_SENTINEL_MASTER) {
      problems.push('REDIS_SENTINEL_MASTER: is required with REDIS_SENTINEL_URLS (the monitored master name)');
      return undefined;
    }
    return { kind: 'sentinel', urls: e.REDIS_SENTINEL_URLS, master: e.REDIS_SENTINEL_MASTER };
  }
  return undefined;
}

/** Parses the environment once; throws `ConfigError` naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined>, hostname: string): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => describeIssue(issue, env)));
  }
  const e = parsed.data;
  const production = e.NODE_ENV === 'production';
  const problems: string[] = [];
  const warnings: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    const meant = value === undefined ? undefined : nearMiss(name);
    if (meant && env[meant] === undefined)
      warnings.push(`${name} is not a Switchboard variable: did you mean ${meant}?`);
  }

  const secretProblem = (name: 'JWT_SECRET' | 'RTC_TOKEN_SECRET', value: string | undefined): void => {
    if (value === undefined) problems.push(`${name}: is required in production`);
    else if (value === DEV_SECRETS[name]) problems.push(`${name}: is the development default; set a real secret`);
    else if (Buffer.byteLength(value) < MIN_SECRET_BYTES)
      problems.push(`${name}: must be at least ${MIN_SECRET_BYTES} bytes in production`);
  };

  const keySources = ACCESS_KEY_SOURCES.filter((name) => e[name] !== undefined);
  if (keySources.length > 1)
    problems.push(`${keySources.slice(1).join(', ')}: set only one of ${ACCESS_KEY_SOURCES.join(', ')}`);
  if (production) {
    secretProblem('RTC_TOKEN_SECRET', e.RTC_TOKEN_SECRET);
    if (keySources.length === 0)
      problems.push('JWT_SECRET: is required in production (or JWT_PUBLIC_KEY, or JWT_JWKS_URL)');
    else if (e.JWT_SECRET !== undefined) secretProblem('JWT_SECRET', e.JWT_SECRET);
    // Keys fetched over plain http could be swapped by anyone on the path.
    if (e.JWT_JWKS_URL?.startsWith('http:')) problems.push('JWT_JWKS_URL: must be an https:// URL in production');
    if (e.TURN_URLS?.length && !e.TURN_SECRET) problems.push('TURN_SECRET: is required when TURN_URLS is set');
    // Without both, any token the identity provider signs for any other app would do.
    if (e.JWT_JWKS_URL && (!e.JWT_ISSUER || !e.JWT_AUDIENCE))
      problems.push(
        `${[!e.JWT_ISSUER && 'JWT_ISSUER', !e.JWT_AUDIENCE && 'JWT_AUDIENCE'].filter(Boolean).join(', ')}: ` +
          'required in production with JWT_JWKS_URL, so tokens the provider issues for other apps are refused',
      );
    if (e.DEV_LOGIN === true)
      problems.push('DEV_LOGIN: cannot be on in production: anyone could sign in as anyone with the real JWT_SECRET');
    if (e.ROOM_ACCESS === 'authorizer') {
      if (e.ROOM_AUTHORIZER_SECRET === undefined)
        problems.push('ROOM_AUTHORIZER_SECRET: is required in production with ROOM_ACCESS=authorizer');
      else if (Buffer.byteLength(e.ROOM_AUTHORIZER_SECRET) < MIN_SECRET_BYTES)
        problems.push(`ROOM_AUTHORIZER_SECRET: must be at least ${MIN_SECRET_BYTES} bytes in production`);
    }
  }
  // One leaked secret must not give both: an access JWT could otherwise pass for an RTC token's signer.
  if (e.JWT_SECRET !== undefined && e.JWT_SECRET === e.RTC_TOKEN_SECRET)
    problems.push('RTC_TOKEN_SECRET: must differ from JWT_SECRET');
  const accessMode: RoomAccessMode = e.ROOM_ACCESS ?? (production ? 'grants' : 'open');
  if (accessMode === 'authorizer' && !e.ROOM_AUTHORIZER_URL)
    problems.push('ROOM_AUTHORIZER_URL: is required with ROOM_ACCESS=authorizer');
  if (accessMode !== 'authorizer' && e.ROOM_AUTHORIZER_URL)
    problems.push(`ROOM_AUTHORIZER_URL: is set, but ROOM_ACCESS is ${accessMode}; set ROOM_ACCESS=authorizer`);
  const topology = redisTopology(e, problems);
  const adapter = e.SOCKETIO_ADAPTER ?? (topology?.kind === 'cluster' ? 'redis-sharded' : 'redis');
  if (topology?.kind === 'cluster' && adapter === 'redis') {
    problems.push(
      'SOCKETIO_ADAPTER: "redis" cannot serve REDIS_CLUSTER_URLS: classic pub/sub is broadcast to every node of a ' +
        'cluster, so it adds no throughput; use SOCKETIO_ADAPTER=redis-sharded (the default on Cluster)',
    );
  }
  const key: AccessKey | undefined = e.JWT_JWKS_URL
    ? {
        kind: 'jwks',
        algorithms: ['RS256', 'ES256'],
        url: e.JWT_JWKS_URL,
        cacheMaxAgeMs: e.JWT_JWKS_CACHE_SECONDS * 1000,
        cooldownMs: e.JWT_JWKS_COOLDOWN_SECONDS * 1000,
        timeoutMs: e.JWT_JWKS_TIMEOUT_MS,
      }
    : accessKey(e.JWT_PUBLIC_KEY, e.JWT_SECRET ?? (production ? undefined : DEV_SECRETS.JWT_SECRET), problems);
  if (problems.length > 0 || !key) throw new ConfigError(problems);

  if (!production && keySources.length === 0) warnings.push('JWT_SECRET is unset: using the development secret');
  if (!production && !e.RTC_TOKEN_SECRET) warnings.push('RTC_TOKEN_SECRET is unset: using the development secret');
  const devLogin = e.DEV_LOGIN ?? !production;
  if (accessMode === 'open' && production)
    warnings.push('ROOM_ACCESS=open in production: any signed-in user may enter any room with every capability');
  if (accessMode === 'authorizer' && !e.ROOM_AUTHORIZER_SECRET)
    warnings.push('ROOM_AUTHORIZER_SECRET is unset: authorizer requests are signed with the development secret');
  if (devLogin && key.kind !== 'secret')
    warnings.push(
      `DEV_LOGIN needs JWT_SECRET; it is off with ${key.kind === 'public' ? 'JWT_PUBLIC_KEY' : 'JWT_JWKS_URL'}`,
    );
  const corsOrigins = e.CORS_ORIGINS?.length ? e.CORS_ORIGINS : production ? [] : '*';
  if (production && corsOrigins !== '*' && corsOrigins.includes('*')) warnings.push('CORS_ORIGINS allows every origin');
  if (!topology)
    warnings.push(
      'no Redis is configured (REDIS_URL, REDIS_CLUSTER_URLS or REDIS_SENTINEL_URLS): memory mode, one replica only',
    );
  if (e.TURN_URLS?.length && !e.TURN_SECRET) warnings.push('TURN_URLS is set without TURN_SECRET: TURN is not offered');
  if (e.OPENAI_API_KEY && production && !e.OPENAI_BASE_URL.startsWith('https:'))
    warnings.push('OPENAI_BASE_URL is not https: the API key travels in clear text');

  return {
    env: e.NODE_ENV,
    port: e.PORT,
    metricsPort: e.METRICS_PORT,
    redis: { topology, keyPrefix: e.REDIS_KEY_PREFIX, unresponsiveAfterMs: e.REDIS_UNRESPONSIVE_AFTER_MS },
    adapter,
    accessJwt: {
      key,
      issuer: e.JWT_ISSUER,
      audience: e.JWT_AUDIENCE,
      scopeClaim: e.JWT_SCOPE_CLAIM ?? 'scope',
      scopePrefix: e.JWT_SCOPE_PREFIX,
    },
    roomAccess: {
      mode: accessMode,
      claim: e.JWT_ROOMS_CLAIM,
      authorizer:
        accessMode === 'authorizer' && e.ROOM_AUTHORIZER_URL
          ? {
              url: e.ROOM_AUTHORIZER_URL,
              secret: e.ROOM_AUTHORIZER_SECRET ?? DEV_AUTHORIZER_SECRET,
              timeoutMs: e.ROOM_AUTHORIZER_TIMEOUT_MS,
              cacheSeconds: e.ROOM_AUTHORIZER_CACHE_SECONDS,
            }
          : undefined,
    },
    rtcToken: { secret: e.RTC_TOKEN_SECRET ?? DEV_SECRETS.RTC_TOKEN_SECRET, ttlSeconds: e.RTC_TOKEN_TTL_SECONDS },
    corsOrigins: corsOrigins.includes('*') ? '*' : corsOrigins,
    devLogin: devLogin && key.kind === 'secret',
    replicaId: e.REPLICA_ID ?? hostname,
    ice: {
      stunUrls: e.STUN_URLS ?? [],
      turnUrls: e.TURN_URLS ?? [],
      turnSecret: e.TURN_SECRET,
      turnTtlSeconds: e.TURN_TTL_SECONDS,
    },
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    logLevel: e.LOG_LEVEL,
    limits: {
      mintPerMinute: e.MINT_RATE_PER_MINUTE,
      connectionsPerUser: e.MAX_CONNECTIONS_PER_USER,
      socketEventsPerSecond: e.SOCKET_EVENTS_PER_SECOND,
      memoryTokenCap: e.MEMORY_TOKEN_CAP,
      socketMaxBufferedBytes: e.SOCKET_MAX_BUFFERED_BYTES,
    },
    coalesceMs: e.EVENT_COALESCE_MS,
    presenceTtlSeconds: e.PRESENCE_TTL_SECONDS,
    rooms: {
      maxPerConnection: e.MAX_ROOMS_PER_CONNECTION,
      presenceSnapshotMax: e.PRESENCE_SNAPSHOT_MAX,
      announceMax: e.ROOM_ANNOUNCE_MAX,
      presenceCountIntervalMs: e.PRESENCE_COUNT_INTERVAL_MS,
    },
    history: {
      size: e.ROOM_HISTORY_SIZE,
      ttlSeconds: e.ROOM_HISTORY_TTL_SECONDS,
      maxBytes: e.ROOM_HISTORY_MAX_BYTES,
      replyMaxBytes: e.HISTORY_REPLY_MAX_BYTES,
      recoveryMaxEvents: e.RECOVERY_MAX_EVENTS,
    },
    upstream: {
      openai: e.OPENAI_API_KEY
        ? {
            apiKey: e.OPENAI_API_KEY,
            baseUrl: e.OPENAI_BASE_URL,
            session: e.OPENAI_REALTIME_SESSION,
            models: e.OPENAI_REALTIME_MODELS,
            voices: e.OPENAI_REALTIME_VOICES,
          }
        : undefined,
      sessionsPerUser: e.UPSTREAM_SESSIONS_PER_USER,
      mintsPerMinute: e.UPSTREAM_MINTS_PER_MINUTE,
      timeoutMs: e.UPSTREAM_TIMEOUT_MS,
      secretTtlSeconds: e.UPSTREAM_SECRET_TTL_SECONDS,
    },
    adminEnabled: e.ADMIN_ENABLED,
    warnings,
  };
}

/** Settings production refuses to start without (one access-key source suffices). */
export const PRODUCTION_SECRETS = { required: ['RTC_TOKEN_SECRET'], oneOf: ACCESS_KEY_SOURCES } as const;
