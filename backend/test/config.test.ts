import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError, DEV_SECRETS, KNOWN_ENV_VARS, loadConfig } from '../src/config/index.js';

const STRONG = 'x'.repeat(40);

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env, 'host');
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('config', () => {
  it('starts with defaults outside production, in memory mode, with loud warnings', () => {
    const config = loadConfig({}, 'pod-7');
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

  it('never echoes a secret in its errors', () => {
    const message = problems({ NODE_ENV: 'production', JWT_SECRET: 'hunter2-secret', RTC_TOKEN_SECRET: STRONG }).join();
    expect(message).not.toContain('hunter2');
  });

  it('runs in production with real secrets: dev login off, same-origin CORS only', () => {
    const config = loadConfig({ NODE_ENV: 'production', JWT_SECRET: STRONG, RTC_TOKEN_SECRET: STRONG }, 'h');
    expect(config.devLogin).toBe(false);
    expect(config.corsOrigins).toEqual([]);
  });

  it('picks RS256 or ES256 from a PEM public key, with flattened newlines accepted', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' });
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' });
    expect(loadConfig({ JWT_PUBLIC_KEY: rsa.toString() }, 'h').accessJwt.key.algorithms).toEqual(['RS256']);
    expect(loadConfig({ JWT_PUBLIC_KEY: ec.toString().replace(/\n/g, '\\n') }, 'h').accessJwt.key.algorithms).toEqual([
      'ES256',
    ]);
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
    expect(problems({ ...production, JWT_JWKS_URL: 'http://idp.internal/keys' })).toEqual([
      'JWT_JWKS_URL: must be an https:// URL in production',
    ]);
    const config = loadConfig({ ...production, JWT_JWKS_URL: 'https://idp.example/keys', DEV_LOGIN: 'true' }, 'h');
    expect(config.accessJwt).toEqual({
      key: {
        kind: 'jwks',
        algorithms: ['RS256', 'ES256'],
        url: 'https://idp.example/keys',
        cacheMaxAgeMs: 600_000,
        cooldownMs: 30_000,
        timeoutMs: 3000,
      },
      issuer: undefined,
      audience: undefined,
      scopeClaim: 'scope',
    });
    expect(config.devLogin).toBe(false);
    expect(config.warnings).toContain('DEV_LOGIN needs JWT_SECRET; it is off with JWT_JWKS_URL');
    expect(loadConfig({ JWT_SCOPE_CLAIM: ' scp ' }, 'h').accessJwt.scopeClaim).toBe('scp');
  });

  it('leaves upstream voice sessions off without OPENAI_API_KEY, and parses their settings with it', () => {
    expect(loadConfig({}, 'h').upstream).toEqual({
      openai: undefined,
      sessionsPerUser: 2,
      timeoutMs: 5_000,
      secretTtlSeconds: 60,
    });
    const config = loadConfig(
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
    expect(loadConfig({ OPENAI_API_KEY: 'sk' }, 'h').upstream.openai?.baseUrl).toBe('https://api.openai.com/v1');
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
    expect(problems({ UPSTREAM_TIMEOUT_MS: 'soon' })[0]).toMatch(/^UPSTREAM_TIMEOUT_MS: /);
    const credentials = problems({ OPENAI_API_KEY: 'sk-hunter2', OPENAI_BASE_URL: 'https://user:sk-hunter2@proxy/v1' });
    expect(credentials[0]).toMatch(/^OPENAI_BASE_URL: /);
    expect(credentials.join()).not.toContain('hunter2');
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
      'UPSTREAM_TIMEOUT_MS',
      'UPSTREAM_SECRET_TTL_SECONDS',
    ]) {
      expect(KNOWN_ENV_VARS).toContain(name);
    }
  });
});
