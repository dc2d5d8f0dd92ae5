import { EventEmitter } from 'node:events';
import { createClient, createCluster, createSentinel } from 'redis';
import type { RedisTopology } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

/**
 * `ready`: every node answers. `partial`: a Cluster with some masters down; commands
 * for the others still work. `disconnected`: nothing answers (commands fail at once).
 */
export type RedisState = 'connecting' | 'ready' | 'partial' | 'disconnected' | 'closed';

/** A Redis command that did not answer in time; names the operation. */
export class RedisTimeoutError extends Error {
  constructor(operation: string, timeoutMs: number) {
    super(`redis ${operation} timed out after ${timeoutMs} ms`);
    this.name = 'RedisTimeoutError';
  }
}

/** Raised without touching the network when the connection is known to be down. */
export class RedisUnavailableError extends Error {
  constructor(operation: string) {
    super(`redis ${operation} skipped: not connected`);
    this.name = 'RedisUnavailableError';
  }
}

export interface RedisConnectionOptions {
  topology: RedisTopology;
  logger: Logger;
  metrics: Metrics;
  /** Upper bound on any one command, so Redis trouble can never stall a request. */
  commandTimeoutMs?: number;
  /** Cap of the reconnect backoff. */
  maxBackoffMs?: number;
}

export type StandaloneClient = ReturnType<typeof openStandalone>;
type ClusterClient = ReturnType<typeof openCluster>;
type SentinelClient = ReturnType<typeof openSentinel>;
/** One client of whichever topology is configured; their command methods are the same. */
export type RedisClient = StandaloneClient | ClusterClient | SentinelClient;

export interface RedisConnection {
  readonly topology: RedisTopology['kind'];
  readonly state: RedisState;
  /** True while commands can be expected to work (all nodes, or some nodes of a Cluster). */
  isReady(): boolean;
  /** True only when every node answers. */
  isHealthy(): boolean;
  /** Runs `operation` on the command client with a deadline; rejects at once when Redis is down. */
  run<T>(operation: string, command: (client: RedisClient) => Promise<T>): Promise<T>;
  /** Fires on every transition to `ready` (first connect, each reconnect, a failover, a node's return). */
  onReady(listener: () => void): () => void;
  /**
   * A client with connections of its own (for pub/sub), closed with this connection.
   * `connected` resolves once it first connects (never, if this connection closes first).
   */
  open(name: string, options?: { subscriber: boolean }): { client: RedisClient; connected: Promise<void> };
  close(): Promise<void>;
}

/** How long `close()` waits for replies in flight before dropping the connections. */
const CLOSE_GRACE_MS = 1_000;

/** Exponential backoff with jitter, capped so a returning Redis is noticed within seconds. */
export function reconnectDelay(retries: number, maxBackoffMs: number): number {
  const base = Math.min(maxBackoffMs, 50 * 2 ** Math.min(retries, 10));
  return Math.round(base / 2 + Math.random() * (base / 2));
}

interface NodeOptions {
  name: string;
  subscriber: boolean;
  maxBackoffMs: number;
}

/** Options shared by every connection to a data node, whatever the topology. */
function nodeClientOptions({ name, subscriber, maxBackoffMs }: NodeOptions, url: URL) {
  return {
    name: `switchboard-${name}`,
    // Fail fast while down instead of queueing without bound; the callers fall back or retry.
    disableOfflineQueue: true,
    RESP: 2 as const,
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    // Detects half-open connections; a subscriber's PING reply is a pub/sub frame, so not there.
    ...(subscriber ? {} : { pingInterval: 5_000 }),
    socket: {
      connectTimeout: 2_000,
      reconnectStrategy: (retries: number) => reconnectDelay(retries, maxBackoffMs),
      ...(url.protocol === 'rediss:' ? { tls: true as const } : {}),
    },
  };
}

function openStandalone(url: string, options: NodeOptions) {
  return createClient({ ...nodeClientOptions(options, new URL(url)), url });
}

function openCluster(urls: string[], options: NodeOptions) {
  const first = new URL(urls[0] ?? '');
  return createCluster({
    rootNodes: urls.map((url) => ({ url })),
    // Nodes discovered from CLUSTER SLOTS get these, so credentials and TLS apply to all.
    defaults: nodeClientOptions(options, first),
  });
}

function openSentinel(urls: string[], master: string, options: NodeOptions) {
  const first = new URL(urls[0] ?? '');
  const nodeOptions = nodeClientOptions(options, first);
  return createSentinel({
    name: master,
    sentinelRootNodes: urls.map((url) => {
      const parsed = new URL(url);
      return { host: parsed.hostname, port: Number(parsed.port || 26379) };
    }),
    // Credentials in the sentinel URLs are used for the sentinels and the data nodes alike.
    nodeClientOptions: nodeOptions,
    sentinelClientOptions: { ...nodeOptions, disableOfflineQueue: false, pingInterval: 5_000 },
    masterPoolSize: 1,
    // Topology is also re-read on every +switch-master; the scan catches what a lost message missed.
    scanInterval: 5_000,
  });
}

function openClient(topology: RedisTopology, options: NodeOptions): RedisClient {
  switch (topology.kind) {
    case 'standalone':
      return openStandalone(topology.url, options);
    case 'cluster':
      return openCluster(topology.urls, options);
    case 'sentinel':
      return openSentinel(topology.urls, topology.master, options);
  }
}

/** Answers whether every node behind `client` responds, within `timeoutMs`. */
async function probe(
  client: RedisClient,
  topology: RedisTopology['kind'],
  timeoutMs: number,
): Promise<'ready' | 'partial' | 'disconnected'> {
  const ping = (p: Promise<unknown>) =>
    withDeadline(p, timeoutMs, 'ping').then(
      () => true,
      () => false,
    );
  if (topology === 'cluster') {
    const cluster = client as ClusterClient;
    const masters = cluster.masters;
    if (masters.length === 0) return 'disconnected';
    const answers = await Promise.all(masters.map((node) => ping(cluster.nodeClient(node).then((c) => c.ping()))));
    const up = answers.filter(Boolean).length;
    return up === answers.length ? 'ready' : up > 0 ? 'partial' : 'disconnected';
  }
  return (await ping(client.ping())) ? 'ready' : 'disconnected';
}

function withDeadline<T>(pending: Promise<T>, timeoutMs: number, operation: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RedisTimeoutError(operation, timeoutMs)), timeoutMs);
  });
  return Promise.race([pending, deadline]).finally(() => clearTimeout(timer));
}

/**
 * The Redis connections of one gateway, for any topology. A Redis that is down at
 * boot or later only means degraded mode: nothing here throws on connect, and every
 * command is bounded by a deadline.
 *
 * A standalone client reports its state through its own events. Cluster and
 * Sentinel clients have no single connection to watch, so their state is probed:
 * a PING to every master, every second and at once on any node event.
 */
export function createRedisConnection({
  topology,
  logger,
  metrics,
  commandTimeoutMs = 500,
  maxBackoffMs = 2_000,
}: RedisConnectionOptions): RedisConnection {
  const log = logger.child({ component: 'redis', topology: topology.kind });
  const events = new EventEmitter();
  const clients: RedisClient[] = [];
  let state: RedisState = 'connecting';
  let closing: Promise<void> | undefined;

  const open = (name: string, subscriber: boolean): { client: RedisClient; connected: Promise<void> } => {
    const client = openClient(topology, { name, subscriber, maxBackoffMs });
    // Listeners go on before connect(): node-redis emits 'error' on every failed
    // attempt and an EventEmitter without one would crash the process.
    let lastError = '';
    client.on('error', (error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      if (message !== lastError) log.warn({ client: name, err: message }, 'redis client error');
      lastError = message;
    });
    clients.push(client);
    const connected = new Promise<void>((resolve) => {
      const connect = async (): Promise<void> => {
        for (let attempt = 0; !closing; attempt++) {
          try {
            await client.connect();
            resolve();
            return;
          } catch (error) {
            // Cluster and Sentinel give up when no seed answers at start, so they are asked
            // again until one does.
            if (closing) return;
            if (attempt === 0) log.warn({ client: name, err: String(error) }, 'redis not reachable yet; retrying');
            // A standalone client goes on reconnecting by itself; it reports ready when it gets there.
            if (topology.kind === 'standalone') {
              client.once('ready', () => resolve());
              return;
            }
            await new Promise((done) => setTimeout(done, reconnectDelay(attempt, maxBackoffMs)).unref());
          }
        }
      };
      void connect();
    });
    return { client, connected };
  };

  let check = (): void => undefined;
  const { client, connected: commandsConnected } = open('commands', false);
  void commandsConnected.then(() => check());
  const setState = (next: RedisState): void => {
    if (state === next || state === 'closed') return;
    const previous = state;
    state = next;
    metrics.redisUp.set(next === 'ready' ? 1 : 0);
    log.info({ state: next, previous }, 'redis state');
    if (next === 'ready') events.emit('ready');
  };
  metrics.redisUp.set(0);

  let prober: NodeJS.Timeout | undefined;
  if (topology.kind === 'standalone') {
    const standalone = client as StandaloneClient;
    standalone.on('ready', () => setState('ready'));
    standalone.on('reconnecting', () => setState('disconnected'));
    standalone.on('end', () => setState('disconnected'));
    standalone.on('error', () => {
      if (!standalone.isReady) setState('disconnected');
    });
  } else {
    let probing = false;
    check = (): void => {
      if (probing || closing || !client.isOpen) return;
      probing = true;
      probe(client, topology.kind, commandTimeoutMs)
        .then(setState, () => setState('disconnected'))
        .finally(() => {
          probing = false;
        });
    };
    prober = setInterval(check, 1_000);
    prober.unref();
    // Node events of a Cluster, and topology changes of Sentinel, call for a look now.
    for (const event of ['node-ready', 'node-reconnecting', 'node-error', 'topology-change', 'client-error']) {
      client.on(event, () => setImmediate(check));
    }
  }

  const usable = (): boolean => state === 'ready' || state === 'partial';

  return {
    topology: topology.kind,
    get state() {
      return state;
    },
    isReady: usable,
    isHealthy: () => state === 'ready',
    async run<T>(operation: string, command: (c: RedisClient) => Promise<T>): Promise<T> {
      if (!usable()) {
        metrics.redisCommandFailures.inc({ operation });
        throw new RedisUnavailableError(operation);
      }
      let pending: Promise<T> | undefined;
      try {
        pending = command(client);
        return await withDeadline(pending, commandTimeoutMs, operation);
      } catch (error) {
        metrics.redisCommandFailures.inc({ operation });
        // The command may still settle after the deadline; nobody awaits it then.
        pending?.catch(() => undefined);
        throw error;
      }
    },
    onReady(listener) {
      events.on('ready', listener);
      return () => events.off('ready', listener);
    },
    open: (name, options = { subscriber: false }) => open(name, options.subscriber),
    close() {
      closing ??= (async () => {
        state = 'closed';
        clearInterval(prober);
        metrics.redisUp.set(0);
        events.removeAllListeners();
        await Promise.all(
          clients.map(async (c) => {
            try {
              // close() lets replies in flight arrive, but waits for the whole command queue
              // to drain, which a client caught mid-reconnect with resubscriptions queued never
              // does (see redis/node-redis#3089); after a grace period it is destroyed.
              if (c.isOpen) await withDeadline(c.close(), CLOSE_GRACE_MS, 'close');
            } catch {
              // Timed out, or already gone: closing must not fail.
            }
            try {
              if (c.isOpen) await c.destroy();
            } catch {
              // Already gone.
            }
          }),
        );
      })();
      return closing;
    },
  };
}
