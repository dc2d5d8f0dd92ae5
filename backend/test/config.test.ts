import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, DEV_SECRETS, KNOWN_ENV_VARS, loadConfig } from '../src/config/index.js';

const STRONG = 'x'.repeat(40);
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

/** Outside production unless `env` says otherwise: an unset NODE_ENV means production. */
const load = (env: Record<string, string>, host = 'h') => loadConfig({ NODE_ENV: 'development', ...env }, host);

function problems(env: Record<string, string>): string[] {
  try {
    load(env, 'host');
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('config', () => {
  it('starts with defaults outside production, in memory mode, with loud warnings', () => {
    const config = load({}, 'pod-7');
    expect(config.port).toBe(3000);
    expect(config.replicaId).toBe('pod-7');
    expect(config.rtcToken.ttlSeconds).toBe(60);
    expect(config.redis.topology).toBeUndefined();
    expect(config.corsOrigins).toBe('*');
    expect(config.devLogin).toBe(true);
    expect(config.warnings.join('\n')).toMatch(/development secret/);
  });

  it('names the variable in every error', () => {
    expect(problems({ PORT: 'eighty' })[0]).toMatch(/^PORT: /);
    expect(problems({ REDIS_URL: 'http://nope' })[0]).toMatch(/^REDIS_URL: .*redis:\/\//);
    expect(problems({ SOCKETIO_ADAPTER: 'kafka' })[0]).toMatch(/^SOCKETIO_ADAPTER: /);
    expect(problems({ RTC_TOKEN_TTL_SECONDS: '0' })[0]).toMatch(/^RTC_TOKEN_TTL_SECONDS: /);
    expect(problems({ JWT_PUBLIC_KEY: 'not a key' })[0]).toMatch(/^JWT_PUBLIC_KEY: /);
  });

  it('echoes the bad value it read, except where the value may be a secret', () => {
    expect(problems({ PORT: 'abc' })).toEqual(['PORT: must be a whole number from 0 to 65535 (got "abc")']);
    expect(problems({ REDIS_URL: 'http://user:hunter2@host' })[0]).not.toContain('hunter2');
    expect(problems({ JWT_SECRET: 'short', NODE_ENV: 'production', RTC_TOKEN_SECRET: STRONG }).join()).not.toContain(
      'short',
    );
  });

  it('refuses a CORS origin without a scheme, or with a path, saying how to write it', () => {
    expect(problems({ CORS_ORIGINS: 'localhost:3010' })).toEqual([
      'CORS_ORIGINS.0: "localhost:3010" has no scheme: write it as the browser sends it, e.g. http://localhost:3010',
    ]);
    expect(problems({ CORS_ORIGINS: 'https://app.example.com, https://b.example/app' })).toEqual([
      'CORS_ORIGINS.1: "https://b.example/app" is not an origin: write scheme://host[:port], with no path',
    ]);
    const origins = 'https://app.example.com,http://localhost:3010';
    expect(loadConfig({ NODE_ENV: 'development', CORS_ORIGINS: origins }, 'h').corsOrigins).toEqual([
      'https://app.example.com',
      'http://localhost:3010',
    ]);
  });

  it('warns about a set variable that is a near miss of a known one, and leaves the rest of the environment alone', () => {
    const { warnings } = loadConfig(
      {
        NODE_ENV: 'development',
        REDIS_URI: 'redis://127.0.0.1:6379',
        LOG_LEVL: 'debug',
        port: '4000',
        HOME: '/root',
        PATH: '/bin',
        HOSTNAME: 'h',
        PWD: '/',
        SHELL: '/bin/sh',
        TERM: 'xterm',
        NODE_OPTIONS: '',
      },
      'h',
    );
    expect(warnings.filter((warning) => warning.includes('did you mean'))).toEqual([
      'REDIS_URI is not a Switchboard variable: did you mean REDIS_URL?',
      'LOG_LEVL is not a Switchboard variable: did you mean LOG_LEVEL?',
      'port is not a Switchboard variable: did you mean PORT?',
    ]);
    // Set both ways, the known one is clearly meant; the other is some other program's.
    const both = loadConfig({ NODE_ENV: 'development', REDIS_URI: 'x', REDIS_URL: 'redis://h:1' }, 'h');
    expect(both.warnings.join()).not.toContain('REDIS_URI');
  });

  it('refuses to start in production with missing, default or short secrets, and says which', () => {
    expect(problems({ NODE_ENV: 'production' })).toEqual([
      'RTC_TOKEN_SECRET: is required in production',
      'JWT_SECRET: is required in production (or JWT_PUBLIC_KEY, or JWT_JWKS_URL)',
    ]);
    expect(problems({ NODE_ENV: 'production', ...DEV_SECRETS })).toEqual([
      'RTC_TOKEN_SECRET: is the development default; set a real secret',
      'JWT_SECRET: is the development default; set a real secret',
    ]);
    expect(problems({ NODE_ENV: 'production', JWT_SECRET: 'short', RTC_TOKEN_SECRET: STRONG })).toEqual([
      'JWT_SECRET: must be at least 32 bytes in production',
    ]);
  });

  it('treats an unset NODE_ENV as production: no default secrets, no dev login, no open CORS', () => {
    expect(() => loadConfig({}, 'h')).toThrow(/RTC_TOKEN_SECRET: is required in production/);
    const config = loadConfig({ JWT_SECRET: STRONG, RTC_TOKEN_SECRET: `${STRONG}-rtc` }, 'h');
    expect(config.env).toBe('production');
    expect(config.devLogin).toBe(false);
    expect(config.corsOrigins).toEqual([]);
    expect(config.roomAccess.mode).toBe('grants');
  });

  it('refuses one secret for both access JWTs and RTC tokens', () => {
    expect(problems({ JWT_SECRET: STRONG, RTC_TOKEN_SECRET: STRONG })).toEqual([
      'RTC_TOKEN_SECRET: must differ from JWT_SECRET',
    ]);
    expect(problems({ NODE_ENV: 'production', JWT_SECRET: STRONG, RTC_TOKEN_SECRET: STRONG })).toEqual([
      'RTC_TOKEN_SECRET: must differ from JWT_SECRET',
    ]);
  });

  it('picks room access: grants in production, open elsewhere, the authorizer only with its URL', () => {
    const production = { NODE_ENV: 'production', JWT_SECRET: STRONG, RTC_TOKEN_SECRET: `${STRONG}-rtc` };
    expect(load({}).roomAccess).toEqual({ mode: 'open', claim: 'rooms', authorizer: undefined });
    expect(loadConfig(production, 'h').roomAccess.mode).toBe('grants');
    const open = loadConfig({ ...production, ROOM_ACCESS: 'open' }, 'h');
    expect(open.roomAccess.mode).toBe('open');
    expect(open.warnings.join('\n')).toMatch(/ROOM_ACCESS=open in production/);
    expect(problems({ ROOM_ACCESS: 'authorizer' })).toEqual([
      'ROOM_AUTHORIZER_URL: is required with ROOM_ACCESS=authorizer',
    ]);
    expect(problems({ ROOM_AUTHORIZER_URL: 'https://app.example/authorize' })[0]).toMatch(
      /^ROOM_AUTHORIZER_URL: is set, but ROOM_ACCESS is open/,
    );
    expect(
      problems({ ...production, ROOM_ACCESS: 'authorizer', ROOM_AUTHORIZER_URL: 'https://app.example/authorize' }),
    ).toEqual(['ROOM_AUTHORIZER_SECRET: is required in production with ROOM_ACCESS=authorizer']);
    const authorizer = load({
      ROOM_ACCESS: 'authorizer',
      ROOM_AUTHORIZER_URL: 'https://app.example/authorize',
      JWT_ROOMS_CLAIM: 'https://app.example/rooms',
    }).roomAccess;
    expect(authorizer).toMatchObject({
      mode: 'authorizer',
      claim: 'https://app.example/rooms',
      authorizer: { url: 'https://app.example/authorize', timeoutMs: 2000, cacheSeconds: 30 },
    });
    expect(problems({ ROOM_ACCESS: 'everyone' })[0]).toMatch(/^ROOM_ACCESS: /);
  });

  it('turns webhooks on with WEBHOOK_URLS, filters them, and refuses a missing or default secret in production', () => {
    const production = { NODE_ENV: 'production', JWT_SECRET: STRONG, RTC_TOKEN_SECRET: `${STRONG}-rtc` };
    expect(load({}).webhooks).toBeUndefined();
    expect(load({}).history.idempotencyWindowSeconds).toBe(300);
    const on = load({ WEBHOOK_URLS: 'https://app.example/hooks, http://10.0.0.2/hooks' });
    expect(on.webhooks).toMatchObject({
      urls: ['https://app.example/hooks', 'http://10.0.0.2/hooks'],
      secret: DEV_SECRETS.WEBHOOK_SECRET,
      retrySeconds: 3600,
    });
    expect([...(on.webhooks?.events ?? [])]).toEqual([
      'room.occupied',
      'room.vacated',
      'member.joined',
      'member.left',
      'upstream.minted',
    ]);
    expect(on.warnings.join('\n')).toMatch(/WEBHOOK_SECRET is unset/);
    const filtered = load({ WEBHOOK_URLS: 'https://a.example/h', WEBHOOK_EVENTS: 'room.occupied,room.vacated' });
    expect([...(filtered.webhooks?.events ?? [])]).toEqual(['room.occupied', 'room.vacated']);
    expect(problems({ WEBHOOK_URLS: 'https://a.example/h', WEBHOOK_EVENTS: 'room.opened' })[0]).toMatch(
      /^WEBHOOK_EVENTS\.0: /,
    );
    expect(problems({ WEBHOOK_URLS: 'ftp://a.example/h' })[0]).toMatch(/^WEBHOOK_URLS\.0: /);
    expect(problems({ WEBHOOK_RETRY_SECONDS: '0' })[0]).toMatch(/^WEBHOOK_RETRY_SECONDS: /);
    expect(problems({ IDEMPOTENCY_WINDOW_SECONDS: 'soon' })[0]).toMatch(/^IDEMPOTENCY_WINDOW_SECONDS: /);
    expect(problems({ ...production, WEBHOOK_URLS: 'https://a.example/h' })).toEqual([
      'WEBHOOK_SECRET: is required in production when WEBHOOK_URLS is set',
    ]);
    expect(
      problems({ ...production, WEBHOOK_URLS: 'https://a.example/h', WEBHOOK_SECRET: DEV_SECRETS.WEBHOOK_SECRET }),
    ).toEqual(['WEBHOOK_SECRET: is the development default; set a real secret']);
    expect(
      loadConfig({ ...production, WEBHOOK_URLS: 'https://a.example/h', WEBHOOK_SECRET: `${STRONG}-wh` }, 'h').webhooks
        ?.secret,
    ).toBe(`${STRONG}-wh`);
  });

  it('never echoes a secret in its errors', () => {
    const message = problems({ NODE_ENV: 'production', JWT_SECRET: 'hunter2-secret', RTC_TOKEN_SECRET: STRONG }).join();
    expect(message).not.toContain('hunter2');
  });

  it('runs in production with real secrets: dev login off, same-origin CORS only', () => {
    const config = loadConfig({ NODE_ENV: 'production', JWT_SECRET: STRONG, RTC_TOKEN_SECRET: `${STRONG}-rtc` }, 'h');
    expect(config.devLogin).toBe(false);
    expect(config.corsOrigins).toEqual([]);
  });

  it('picks RS256 or ES256 from a PEM public key, with flattened newlines accepted', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' });
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' });
    expect(load({ JWT_PUBLIC_KEY: rsa.toString() }).accessJwt.key.algorithms).toEqual(['RS256']);
    expect(load({ JWT_PUBLIC_KEY: ec.toString().replace(/\n/g, '\\n') }).accessJwt.key.algorithms).toEqual(['ES256']);
    expect(problems({ JWT_PUBLIC_KEY: rsa.toString(), JWT_SECRET: STRONG })[0]).toMatch(/^JWT_PUBLIC_KEY: /);
  });

  it('takes access keys from exactly one of JWT_SECRET, JWT_PUBLIC_KEY and JWT_JWKS_URL', () => {
    const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' });
    const jwks = 'https://idp.example/.well-known/jwks.json';
    expect(problems({ JWT_SECRET: STRONG, JWT_JWKS_URL: jwks })).toEqual([
      'JWT_JWKS_URL: set only one of JWT_SECRET, JWT_PUBLIC_KEY, JWT_JWKS_URL',
    ]);
    expect(problems({ JWT_PUBLIC_KEY: pem.toString(), JWT_JWKS_URL: jwks })[0]).toMatch(/^JWT_JWKS_URL: set only one/);
    expect(problems({ JWT_JWKS_URL: 'ftp://idp.example/keys' })[0]).toMatch(/^JWT_JWKS_URL: must be an http/);
    expect(problems({ JWT_JWKS_URL: 'not a url' })[0]).toMatch(/^JWT_JWKS_URL: /);
    expect(problems({ JWT_SCOPE_CLAIM: 'two words' })[0]).toMatch(/^JWT_SCOPE_CLAIM: /);
    expect(problems({ JWT_JWKS_COOLDOWN_SECONDS: '-1' })[0]).toMatch(/^JWT_JWKS_COOLDOWN_SECONDS: /);
  });

  it('verifies with a JWKS in production over https only, with dev login off and the defaults documented', () => {
    const production = { NODE_ENV: 'production', RTC_TOKEN_SECRET: STRONG };
    const audience = { JWT_ISSUER: 'https://idp.example/', JWT_AUDIENCE: 'switchboard' };
    expect(problems({ ...production, ...audience, JWT_JWKS_URL: 'http://idp.internal/keys' })).toEqual([
      'JWT_JWKS_URL: must be an https:// URL in production',
    ]);
    expect(problems({ ...production, JWT_JWKS_URL: 'https://idp.example/keys' })).toEqual([
      'JWT_ISSUER, JWT_AUDIENCE: required in production with JWT_JWKS_URL, so tokens the provider issues for other apps are refused',
    ]);
    expect(problems({ ...production, JWT_ISSUER: 'x', JWT_JWKS_URL: 'https://idp.example/keys' })[0]).toMatch(
      /^JWT_AUDIENCE: required/,
    );
    expect(
      problems({ ...production, ...audience, JWT_JWKS_URL: 'https://idp.example/keys', DEV_LOGIN: 'true' }),
    ).toEqual(['DEV_LOGIN: cannot be on in production: anyone could sign in as anyone with the real JWT_SECRET']);
    const config = loadConfig({ ...production, ...audience, JWT_JWKS_URL: 'https://idp.example/keys' }, 'h');
    expect(config.accessJwt).toEqual({
      key: {
        kind: 'jwks',
        algorithms: ['RS256', 'ES256'],
        url: 'https://idp.example/keys',
        cacheMaxAgeMs: 600_000,
        cooldownMs: 30_000,
        timeoutMs: 3000,
      },
      issuer: 'https://idp.example/',
      audience: 'switchboard',
      scopeClaim: 'scope',
      scopePrefix: '',
    });
    expect(config.devLogin).toBe(false);
    expect(load({ JWT_JWKS_URL: 'https://idp.example/keys' }).warnings).toContain(
      'DEV_LOGIN needs JWT_SECRET; it is off with JWT_JWKS_URL',
    );
    expect(load({ JWT_SCOPE_CLAIM: ' scp ' }).accessJwt.scopeClaim).toBe('scp');
  });

  it('leaves upstream voice sessions off without OPENAI_API_KEY, and parses their settings with it', () => {
    expect(load({}).upstream).toEqual({
      openai: undefined,
      sessionsPerUser: 2,
      mintsPerMinute: 10,
      timeoutMs: 5_000,
      secretTtlSeconds: 60,
    });
    const config = load(
      {
        OPENAI_API_KEY: 'sk-live-key',
        OPENAI_BASE_URL: 'http://127.0.0.1:8080/v1/',
        OPENAI_REALTIME_SESSION: '{"instructions":"Be brief.","audio":{"output":{"speed":1.2}}}',
        OPENAI_REALTIME_VOICES: 'cedar, marin',
      },
      'h',
    );
    expect(config.upstream.openai).toEqual({
      apiKey: 'sk-live-key',
      baseUrl: 'http://127.0.0.1:8080/v1',
      session: { type: 'realtime', instructions: 'Be brief.', audio: { output: { speed: 1.2 } } },
      models: ['gpt-realtime'],
      voices: ['cedar', 'marin'],
    });
    expect(load({ OPENAI_API_KEY: 'sk' }).upstream.openai?.baseUrl).toBe('https://api.openai.com/v1');
  });

  it('names the upstream variable in every error, and never echoes the API key', () => {
    expect(problems({ OPENAI_REALTIME_SESSION: '{not json' })).toEqual(['OPENAI_REALTIME_SESSION: is not valid JSON']);
    expect(problems({ OPENAI_REALTIME_SESSION: '{"type":"transcription"}' })[0]).toMatch(
      /^OPENAI_REALTIME_SESSION\.type: /,
    );
    expect(problems({ OPENAI_REALTIME_SESSION: '{"model":"gpt-realtime"}' })[0]).toMatch(
      /^OPENAI_REALTIME_SESSION\.model: .*OPENAI_REALTIME_MODELS/,
    );
    expect(problems({ OPENAI_REALTIME_SESSION: '{"audio":{"output":{"voice":"x"}}}' })[0]).toMatch(
      /^OPENAI_REALTIME_SESSION\.audio\.output\.voice: .*OPENAI_REALTIME_VOICES/,
    );
    expect(problems({ OPENAI_REALTIME_MODELS: ' , ' })[0]).toMatch(/^OPENAI_REALTIME_MODELS: /);
    expect(problems({ OPENAI_REALTIME_VOICES: 'two words' })[0]).toMatch(/^OPENAI_REALTIME_VOICES\.0: /);
    expect(problems({ UPSTREAM_SECRET_TTL_SECONDS: '9' })[0]).toMatch(/^UPSTREAM_SECRET_TTL_SECONDS: /);
    expect(problems({ UPSTREAM_SECRET_TTL_SECONDS: '7201' })[0]).toMatch(/^UPSTREAM_SECRET_TTL_SECONDS: /);
    expect(problems({ UPSTREAM_SESSIONS_PER_USER: '0' })[0]).toMatch(/^UPSTREAM_SESSIONS_PER_USER: /);
    expect(problems({ UPSTREAM_MINTS_PER_MINUTE: '0' })[0]).toMatch(/^UPSTREAM_MINTS_PER_MINUTE: /);
    expect(load({ UPSTREAM_MINTS_PER_MINUTE: '3' }).upstream.mintsPerMinute).toBe(3);
    expect(problems({ UPSTREAM_TIMEOUT_MS: 'soon' })[0]).toMatch(/^UPSTREAM_TIMEOUT_MS: /);
    const credentials = problems({ OPENAI_API_KEY: 'sk-hunter2', OPENAI_BASE_URL: 'https://user:sk-hunter2@proxy/v1' });
    expect(credentials[0]).toMatch(/^OPENAI_BASE_URL: /);
    expect(credentials.join()).not.toContain('hunter2');
  });

  it('takes exactly one Redis topology, and refuses every combination it cannot serve, naming the variables', () => {
    const url = 'redis://127.0.0.1:6390';
    const urls = 'redis://127.0.0.1:7000,redis://127.0.0.1:7001';
    expect(problems({ REDIS_URL: url, REDIS_CLUSTER_URLS: urls })).toEqual([
      'REDIS_URL, REDIS_CLUSTER_URLS: set exactly one of them (one server, a Cluster, or Sentinel)',
    ]);
    expect(problems({ REDIS_URL: url, REDIS_SENTINEL_URLS: url, REDIS_SENTINEL_MASTER: 'm' })[0]).toMatch(
      /^REDIS_URL, REDIS_SENTINEL_URLS: set exactly one/,
    );
    expect(problems({ REDIS_URL: url, REDIS_CLUSTER_URLS: urls, REDIS_SENTINEL_URLS: url })[0]).toMatch(
      /^REDIS_URL, REDIS_CLUSTER_URLS, REDIS_SENTINEL_URLS: /,
    );
    expect(problems({ REDIS_SENTINEL_URLS: url })).toEqual([
      'REDIS_SENTINEL_MASTER: is required with REDIS_SENTINEL_URLS (the monitored master name)',
    ]);
    expect(problems({ REDIS_SENTINEL_MASTER: 'm' })).toEqual([
      'REDIS_SENTINEL_MASTER: is set without REDIS_SENTINEL_URLS',
    ]);
    expect(problems({ REDIS_CLUSTER_URLS: urls, SOCKETIO_ADAPTER: 'redis' })[0]).toMatch(
      /^SOCKETIO_ADAPTER: "redis" cannot serve REDIS_CLUSTER_URLS: /,
    );
    expect(problems({ REDIS_CLUSTER_URLS: 'http://127.0.0.1:7000' })[0]).toMatch(/^REDIS_CLUSTER_URLS\.0: /);
    expect(problems({ ROOM_HISTORY_SIZE: '-1' })[0]).toMatch(/^ROOM_HISTORY_SIZE: /);
    expect(problems({ RECOVERY_MAX_EVENTS: 'all' })[0]).toMatch(/^RECOVERY_MAX_EVENTS: /);

    expect(load({ REDIS_URL: url })).toMatchObject({
      redis: { topology: { kind: 'standalone', url } },
      adapter: 'redis',
    });
    expect(load({ REDIS_CLUSTER_URLS: urls })).toMatchObject({
      redis: { topology: { kind: 'cluster', urls: urls.split(',') } },
      adapter: 'redis-sharded',
    });
    expect(
      load({ REDIS_SENTINEL_URLS: url, REDIS_SENTINEL_MASTER: 'm', SOCKETIO_ADAPTER: 'redis-sharded' }),
    ).toMatchObject({ redis: { topology: { kind: 'sentinel', urls: [url], master: 'm' } }, adapter: 'redis-sharded' });
    expect(load({}).history).toEqual({
      size: 100,
      ttlSeconds: 300,
      maxBytes: 1024 * 1024,
      replyMaxBytes: 256 * 1024,
      recoveryMaxEvents: 100,
      idempotencyWindowSeconds: 300,
    });
  });

  it('stops the process at start-up with the error, for a topology it cannot serve', () => {
    const result = spawnSync(process.execPath, [MAIN], {
      env: {
        PATH: process.env.PATH ?? '',
        REDIS_URL: 'redis://127.0.0.1:1',
        REDIS_CLUSTER_URLS: 'redis://127.0.0.1:2',
      },
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('REDIS_URL, REDIS_CLUSTER_URLS: set exactly one of them');
  });

  it('knows every variable DESIGN.md lists', () => {
    for (const name of [
      'PORT',
      'REDIS_URL',
      'JWT_SECRET',
      'JWT_PUBLIC_KEY',
      'JWT_ISSUER',
      'JWT_AUDIENCE',
      'JWT_JWKS_URL',
      'JWT_SCOPE_CLAIM',
      'RTC_TOKEN_SECRET',
      'RTC_TOKEN_TTL_SECONDS',
      'CORS_ORIGINS',
      'DEV_LOGIN',
      'SOCKETIO_ADAPTER',
      'REPLICA_ID',
      'STUN_URLS',
      'TURN_URLS',
      'TURN_SECRET',
      'SHUTDOWN_TIMEOUT_MS',
      'LOG_LEVEL',
      'REDIS_KEY_PREFIX',
      'OPENAI_API_KEY',
      'OPENAI_BASE_URL',
      'OPENAI_REALTIME_SESSION',
      'OPENAI_REALTIME_MODELS',
      'OPENAI_REALTIME_VOICES',
      'UPSTREAM_SESSIONS_PER_USER',
      'UPSTREAM_MINTS_PER_MINUTE',
      'UPSTREAM_TIMEOUT_MS',
      'UPSTREAM_SECRET_TTL_SECONDS',
      'REDIS_CLUSTER_URLS',
      'REDIS_SENTINEL_URLS',
      'REDIS_SENTINEL_MASTER',
      'ROOM_HISTORY_SIZE',
      'ROOM_HISTORY_TTL_SECONDS',
      'RECOVERY_MAX_EVENTS',
      'ROOM_ACCESS',
      'JWT_ROOMS_CLAIM',
      'JWT_SCOPE_PREFIX',
      'ROOM_AUTHORIZER_URL',
      'ROOM_AUTHORIZER_TIMEOUT_MS',
      'ROOM_AUTHORIZER_CACHE_SECONDS',
      'ROOM_HISTORY_MAX_BYTES',
      'HISTORY_REPLY_MAX_BYTES',
      'SOCKET_MAX_BUFFERED_BYTES',
      'WEBHOOK_URLS',
      'WEBHOOK_SECRET',
      'WEBHOOK_EVENTS',
      'WEBHOOK_RETRY_SECONDS',
      'IDEMPOTENCY_WINDOW_SECONDS',
    ]) {
      expect(KNOWN_ENV_VARS).toContain(name);
    }
  });
});
