import { EventEmitter } from 'node:events';
import calculateSlot from 'cluster-key-slot';
import { createClient, createCluster } from 'redis';
import type { RedisStatus } from '@switchboard/contract';
import type { RedisTopology } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { LateWriteError } from './late.js';
import { createSentinelWatch, type MasterAddress } from './sentinel.js';

/**
 * `ready`: every node answers. `partial`: a Cluster with some masters down; commands
 * for the others still work. `disconnected`: nothing answers (commands fail at once).
 */
export type RedisState = 'connecting' | 'ready' | 'partial' | 'disconnected' | 'closed';

/** What `/readyz` and the dashboard say of a replica's Redis (`disabled`: memory mode). */
export function redisStatus(redis: RedisConnection | undefined): RedisStatus {
  if (!redis) return 'disabled';
  if (redis.isUnresponsive()) return 'unresponsive';
  return redis.isHealthy() ? 'connected' : 'disconnected';
}

/** A Redis command that did not answer in time; names the operation. */
export class RedisTimeoutError extends Error {
  constructor(operation: string, timeoutMs: number) {
    super(`redis ${operation} timed out after ${timeoutMs} ms`);
    this.name = 'RedisTimeoutError';
  }
}

/** Raised without touching the network when the connection is known to be down. */
export class RedisUnavailableError extends Error {
  constructor(operation: string, unresponsive = false) {
    super(`redis ${operation} skipped: ${unresponsive ? 'unresponsive (circuit open)' : 'not connected'}`);
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
  /**
   * A client whose PING has gone unanswered this long makes Redis unresponsive (a silent
   * link: packets dropped, nothing reset). On the command client that opens the circuit.
   */
  unresponsiveAfterMs?: number;
}

export type StandaloneClient = ReturnType<typeof createStandalone>;
type ClusterClient = ReturnType<typeof createClusterClient>;
/** A client of one server (also the master Sentinel names), or of a Cluster; their command methods are the same. */
export type RedisClient = StandaloneClient | ClusterClient;

/**
 * One logical client. On Sentinel, `client` is replaced by a client of the new master
 * after a failover, so it is read each time it is used, never kept.
 */
export interface RedisHandle {
  readonly client: RedisClient;
  /** Resolves once a client first connects (never, if the connection closes first). */
  readonly connected: Promise<void>;
  /** `replaced`: a failover swapped `client`, whose subscriptions are gone. `reconnected`: the same client is back. */
  on(event: 'replaced' | 'reconnected', listener: () => void): void;
}

export interface RedisConnection {
  readonly topology: RedisTopology['kind'];
  readonly state: RedisState;
  /** True while commands can be expected to work (all nodes, or some nodes of a Cluster). */
  isReady(): boolean;
  /** True only when every node answers. */
  isHealthy(): boolean;
  /**
   * True while some link (commands or pub/sub; on a Cluster, any master's) has left a PING
   * unanswered for `unresponsiveAfterMs`.
   */
  isUnresponsive(): boolean;
  /**
   * Redis is judged down right now: disconnected, or the command link is unresponsive (the
   * circuit is open and commands fail at once). What a store asks before choosing its outage rule.
   */
  isDown(): boolean;
  /**
   * For a write sent now: a time in Redis's own clock (ms, see `TIME`) after which the
   * gateway may have given up on the reply, so a script must refuse to apply. 0 while the
   * clock offset is not measured yet (no check).
   */
  applyDeadline(): number;
  /**
   * Runs `operation` on the command client with a deadline; rejects at once when Redis is
   * down. `key`: the key the command is routed by, so that on a Cluster a command for a
   * master judged unresponsive fails at once too (the circuit is per master there).
   */
  run<T>(operation: string, command: (client: RedisClient) => Promise<T>, routing?: { key: string }): Promise<T>;
  /** Fires on every transition to `ready` (first connect, each reconnect, a failover, a node's return). */
  onReady(listener: () => void): () => void;
  /** A client with connections of its own (for pub/sub), closed with this connection. */
  open(name: string, options?: { subscriber: boolean }): RedisHandle;
  close(): Promise<void>;
}

/**
 * How long before the gateway's own deadline a script's deadline falls: the reply must
 * still have time to come back, or an applied write would be taken for a failed one.
 */
function applyMargin(commandTimeoutMs: number): number {
  return Math.min(250, Math.round(commandTimeoutMs / 2));
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
    // RESP2, as the Socket.IO adapters are written and tested against its replies; node-redis 5
    // still flags several RESP3 reply shapes as unstable (`unstableResp3`).
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

function createStandalone(url: string, options: NodeOptions) {
  return createClient({ ...nodeClientOptions(options, new URL(url)), url });
}

function createClusterClient(urls: string[], options: NodeOptions) {
  return createCluster({
    rootNodes: urls.map((url) => ({ url })),
    // Nodes discovered from CLUSTER SLOTS get these, so credentials and TLS apply to all.
    defaults: nodeClientOptions(options, new URL(urls[0] ?? '')),
  });
}

/** The URL of the master Sentinel named, with the credentials and scheme of the sentinel URLs. */
function masterUrl(sentinelUrl: string, address: MasterAddress): string {
  const url = new URL(sentinelUrl);
  url.hostname = address.host.includes(':') ? `[${address.host}]` : address.host;
  url.port = String(address.port);
  return url.toString();
}

function withDeadline<T>(pending: Promise<T>, timeoutMs: number, operation: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RedisTimeoutError(operation, timeoutMs)), timeoutMs);
  });
  return Promise.race([pending, deadline]).finally(() => clearTimeout(timer));
}

/** Closes gracefully, or destroys after a grace period: see `close()` below. */
async function shut(client: RedisClient): Promise<void> {
  try {
    // close() lets replies in flight arrive, but waits for the whole command queue to
    // drain, which a client caught mid-reconnect with resubscriptions queued never does
    // (see redis/node-redis#3089); after a grace period it is destroyed.
    if (client.isOpen) await withDeadline(client.close(), CLOSE_GRACE_MS, 'close');
  } catch {
    // Timed out, or already gone.
  }
  try {
    if (client.isOpen) client.destroy();
  } catch {
    // Already gone.
  }
}

/**
 * The Redis connections of one gateway, for any topology. A Redis that is down at
 * boot or later only means degraded mode: nothing here throws on connect, and every
 * command is bounded by a deadline.
 *
 * - One server: node-redis clients, whose own events tell the state.
 * - Cluster: node-redis cluster clients; the state is probed (a PING to every master,
 *   every second and at once on any node event).
 * - Sentinel: plain clients of the master Sentinel names, replaced by clients of the new
 *   master after a failover (redis/sentinel.ts). node-redis's own Sentinel client was not
 *   used: its commands take a pool lease each, so concurrent commands can run out of the
 *   order they were sent in (one publisher's events would be numbered out of order), and
 *   its `sendCommand(isReadonly, args)` differs from what the Socket.IO adapter calls.
 */
export function createRedisConnection({
  topology,
  logger,
  metrics,
  commandTimeoutMs = 500,
  maxBackoffMs = 2_000,
  unresponsiveAfterMs = 2_000,
}: RedisConnectionOptions): RedisConnection {
  const log = logger.child({ component: 'redis', topology: topology.kind });
  const applyMarginMs = applyMargin(commandTimeoutMs);
  const events = new EventEmitter();
  const handles: Array<{ replace(address: MasterAddress): void; shut(): Promise<void> }> = [];
  let state: RedisState = 'connecting';
  let closing: Promise<void> | undefined;
  let master: MasterAddress | undefined;

  const watch =
    topology.kind === 'sentinel'
      ? createSentinelWatch({
          urls: topology.urls,
          master: topology.master,
          logger,
          onMaster: (address) => {
            master = address;
            for (const handle of handles) handle.replace(address);
          },
        })
      : undefined;

  const clientFor = (options: NodeOptions, address: MasterAddress | undefined): RedisClient => {
    if (topology.kind === 'cluster') return createClusterClient(topology.urls, options);
    if (topology.kind === 'standalone') return createStandalone(topology.url, options);
    // Until Sentinel has named a master, an unconnected client stands in (nothing uses it).
    return createStandalone(masterUrl(topology.urls[0] ?? '', address ?? { host: '127.0.0.1', port: 1 }), options);
  };

  const open = (name: string, subscriber: boolean): RedisHandle => {
    const options: NodeOptions = { name, subscriber, maxBackoffMs };
    const emitter = new EventEmitter();
    let resolveConnected: () => void = () => undefined;
    const connected = new Promise<void>((resolve) => {
      resolveConnected = resolve;
    });
    let lastError = '';

    const connect = async (client: RedisClient, onUp: () => void): Promise<void> => {
      // Listeners go on before connect(): node-redis emits 'error' on every failed
      // attempt and an EventEmitter without one would crash the process.
      client.on('error', (error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        if (message !== lastError) log.warn({ client: name, err: message }, 'redis client error');
        lastError = message;
        if (topology.kind === 'sentinel') watch?.check();
      });
      let wasReady = false;
      client.on('ready', () => {
        lastError = '';
        if (wasReady) emitter.emit('reconnected');
        wasReady = true;
      });
      for (let attempt = 0; !closing && client === current; attempt++) {
        try {
          await client.connect();
          onUp();
          return;
        } catch (error) {
          // A Cluster client gives up when no seed answers at start, so it is asked again.
          if (closing || client !== current) return;
          if (attempt === 0) log.warn({ client: name, err: String(error) }, 'redis not reachable yet; retrying');
          // A standalone client goes on reconnecting by itself; it reports ready when it gets there.
          if (topology.kind !== 'cluster') {
            client.once('ready', onUp);
            return;
          }
          await new Promise((done) => setTimeout(done, reconnectDelay(attempt, maxBackoffMs)).unref());
        }
      }
    };

    let current = clientFor(options, master);
    if (topology.kind !== 'sentinel' || master) void connect(current, resolveConnected);
    if (topology.kind === 'cluster') {
      // Node events of a Cluster call for a look at the state now.
      for (const event of ['node-ready', 'node-reconnecting', 'node-error'])
        current.on(event, () => setImmediate(check));
      current.on('node-ready', () => emitter.emit('reconnected'));
    }

    handles.push({
      replace(address) {
        const previous = current;
        const next = clientFor(options, address);
        current = next;
        void connect(next, () => {
          resolveConnected();
          if (next !== current) return;
          emitter.emit('replaced');
          check();
        });
        void shut(previous);
      },
      shut: () => shut(current),
    });
    const handle: RedisHandle = {
      get client() {
        return current;
      },
      connected,
      on(event, listener) {
        emitter.on(event, listener);
      },
    };
    if (topology.kind === 'cluster') clusterHandles.push({ name, subscriber, handle });
    else {
      const commandLink = !subscriber && name === 'commands';
      watches.set(
        name,
        newWatch(name, commandLink, () => handle.client as StandaloneClient),
      );
    }
    return handle;
  };

  /**
   * Liveness of one link, by its PING (TIME on a standalone or Sentinel command client,
   * which also measures the clock offset). `since`: when the unanswered probe was sent, or
   * when a subscriber link that had been connected lost its connection. A Cluster's links
   * are one per master (commands, sharded pub/sub) plus its pub/sub node, found anew on
   * every round as slots move.
   */
  interface Watch {
    name: string;
    /** A command link: a silent one opens the circuit (for its master, on a Cluster). */
    commands: boolean;
    link: () => StandaloneClient | undefined;
    /** The master a Cluster link goes to. */
    address?: string;
    wasReady: boolean;
    since: number | undefined;
    pinging: StandaloneClient | undefined;
    silent: boolean;
  }
  const newWatch = (name: string, commands: boolean, link: Watch['link'], address?: string): Watch => ({
    name,
    commands,
    link,
    ...(address === undefined ? {} : { address }),
    wasReady: false,
    since: undefined,
    pinging: undefined,
    silent: false,
  });
  const watches = new Map<string, Watch>();
  const clusterHandles: Array<{ name: string; subscriber: boolean; handle: RedisHandle }> = [];
  /** Masters of a Cluster whose command link is silent: commands routed to them fail at once. */
  let silentMasters = new Set<string>();

  /** The links of every Cluster client now; watches of links that are gone are dropped. */
  function watchClusterLinks(): void {
    const seen = new Set<string>();
    const see = (name: string, commands: boolean, address: string, link: Watch['link']): void => {
      seen.add(name);
      if (!watches.has(name)) watches.set(name, newWatch(name, commands, link, address));
    };
    for (const { name, subscriber, handle } of clusterHandles) {
      const cluster = handle.client as ClusterClient;
      if (!cluster.isOpen) continue;
      for (const master of cluster.masters) {
        const { address } = master;
        if (!subscriber) {
          see(`${name}@${address}`, name === 'commands', address, () => master.client as StandaloneClient | undefined);
        } else if (master.pubSub) {
          see(
            `${name}@${address}/sharded`,
            false,
            address,
            () => master.pubSub?.client as StandaloneClient | undefined,
          );
        }
      }
      const node = cluster.pubSubNode;
      if (subscriber && node)
        see(`${name}@${node.address}`, false, node.address, () => node.client as StandaloneClient);
    }
    for (const name of watches.keys()) if (!seen.has(name)) watches.delete(name);
  }

  /** Redis unresponsive on some client (readiness), and on the command client (the circuit). */
  let unresponsive = false;
  let circuitOpen = false;
  /** The highest lower bound measured of Redis's clock minus this process's (ms). */
  let clockOffset: number | undefined;
  const sampleClock = (reply: unknown, receivedAt: number): void => {
    if (!Array.isArray(reply) || reply.length < 2) return;
    // Redis read its clock before this reply arrived, so this is a lower bound of the offset.
    const redisMs = Number(reply[0]) * 1000 + Math.floor(Number(reply[1]) / 1000);
    if (!Number.isFinite(redisMs)) return;
    const bound = redisMs - receivedAt;
    clockOffset = clockOffset === undefined ? bound : Math.max(clockOffset, bound);
  };

  const commands = open('commands', false);
  const reportUp = (): void => {
    metrics.redisUp.set(state === 'ready' && !unresponsive ? 1 : 0);
  };
  const setState = (next: RedisState): void => {
    if (state === next || state === 'closed') return;
    const previous = state;
    state = next;
    reportUp();
    log.info({ state: next, previous }, 'redis state');
    if (next === 'ready' && !circuitOpen) events.emit('ready');
  };
  metrics.redisUp.set(0);

  const probeEveryMs = Math.max(50, Math.min(1_000, Math.round(unresponsiveAfterMs / 4)));
  /** Sends a probe on `watch`'s client unless one is in flight, and judges how long it has waited. */
  function probe(watch: Watch, now: number): void {
    const client = watch.link();
    if (!client?.isReady) {
      // A command client that is not connected is judged by `state`; a subscriber that
      // lost its connection misses messages as surely as a silent one.
      if (watch.commands || !watch.wasReady) watch.since = undefined;
      else watch.since ??= now;
    } else {
      watch.wasReady = true;
      if (watch.pinging !== client) {
        watch.pinging = client;
        watch.since ??= now;
        // RESP2 subscribers may PING too (the reply is a pub/sub frame node-redis resolves).
        // A Cluster's clock is sampled by `check()`, on one master.
        const clock = watch.commands && watch.address === undefined;
        const answer: Promise<unknown> = clock ? client.time() : client.ping();
        answer.then(
          (reply) => {
            if (watch.pinging === client) watch.pinging = undefined;
            if (client !== watch.link() || closing) return;
            watch.since = undefined;
            watch.silent = false;
            if (clock) sampleClock(reply, Date.now());
            evaluate();
          },
          () => {
            if (watch.pinging === client) watch.pinging = undefined;
          },
        );
      }
    }
    watch.silent = watch.since !== undefined && now - watch.since >= unresponsiveAfterMs;
  }

  /** Opens or closes the circuit from the probes; one warning on entering, one on leaving. */
  function evaluate(): void {
    if (closing) return;
    const silent = [...watches.values()].filter((w) => w.silent);
    const wasUnresponsive = unresponsive;
    const wasOpen = circuitOpen;
    unresponsive = silent.length > 0;
    if (topology.kind === 'cluster') {
      silentMasters = new Set(silent.flatMap((w) => (w.commands && w.address ? [w.address] : [])));
      const masters = (commands.client as ClusterClient).masters.length;
      circuitOpen = masters > 0 && silentMasters.size >= masters;
    } else circuitOpen = silent.some((w) => w.commands);
    if (unresponsive && !wasUnresponsive) {
      log.warn(
        { clients: silent.map((w) => w.name), afterMs: unresponsiveAfterMs, circuit: circuitOpen ? 'open' : 'closed' },
        'redis unresponsive: no answer to PING; failing fast until a probe succeeds',
      );
    } else if (!unresponsive && wasUnresponsive) {
      log.warn({ afterMs: unresponsiveAfterMs }, 'redis responsive again');
    }
    if (unresponsive !== wasUnresponsive) reportUp();
    // Back: every late command on these links was applied or refused before the probe's answer.
    if (((wasOpen && !circuitOpen) || (wasUnresponsive && !unresponsive)) && usable()) events.emit('ready');
  }

  const probeAll = (): void => {
    if (topology.kind === 'cluster') watchClusterLinks();
    const now = Date.now();
    for (const watch of watches.values()) probe(watch, now);
  };
  const watcher = setInterval(() => {
    probeAll();
    evaluate();
  }, probeEveryMs);
  watcher.unref();
  void commands.connected.then(probeAll);

  let probing = false;
  /** Asks every master for a PONG (one, unless Cluster) and sets the state from the answers. */
  function check(): void {
    if (probing || closing || !commands.client.isOpen) return;
    probing = true;
    const ping = (p: Promise<unknown>) =>
      withDeadline(p, commandTimeoutMs, 'ping').then(
        () => true,
        () => false,
      );
    const client = commands.client;
    const answers =
      topology.kind === 'cluster'
        ? Promise.all(
            (client as ClusterClient).masters.map((node) =>
              ping((client as ClusterClient).nodeClient(node).then((c) => c.ping())),
            ),
          )
        : ping((client as StandaloneClient).ping()).then((up) => [up]);
    if (topology.kind === 'cluster' && (client as ClusterClient).masters[0]) {
      // The deadline clock of a Cluster is measured on one master (the nodes' clocks are assumed synchronised).
      const first = (client as ClusterClient).masters[0];
      if (first) {
        void withDeadline(
          (client as ClusterClient).nodeClient(first).then((c) => c.time()),
          commandTimeoutMs,
          'time',
        ).then(
          (reply) => sampleClock(reply, Date.now()),
          () => undefined,
        );
      }
    }
    answers
      .then((ups) => {
        const up = ups.filter(Boolean).length;
        setState(up > 0 && up === ups.length ? 'ready' : up > 0 ? 'partial' : 'disconnected');
      })
      .catch(() => setState('disconnected'))
      .finally(() => {
        probing = false;
      });
  }

  let prober: NodeJS.Timeout | undefined;
  if (topology.kind === 'standalone') {
    const standalone = commands.client as StandaloneClient;
    standalone.on('ready', () => setState('ready'));
    standalone.on('reconnecting', () => setState('disconnected'));
    standalone.on('end', () => setState('disconnected'));
    standalone.on('error', () => {
      if (!standalone.isReady) setState('disconnected');
    });
  } else {
    prober = setInterval(check, 1_000);
    prober.unref();
    void commands.connected.then(check);
  }
  if (watch) {
    // Ask at once; the watch keeps asking every second, and on every client error.
    watch.resolve().catch((error: unknown) => {
      log.warn({ err: error instanceof Error ? error.message : String(error) }, 'no sentinel answered yet');
    });
  }

  /** The address of the Cluster master serving `key`'s slot ('' when unknown). */
  function masterOf(key: string): string {
    const shard = (commands.client as ClusterClient).slots[calculateSlot(key)];
    return shard?.master.address ?? '';
  }

  function usable(): boolean {
    return (state === 'ready' || state === 'partial') && !circuitOpen;
  }

  return {
    topology: topology.kind,
    get state() {
      return state;
    },
    isReady: usable,
    isHealthy: () => state === 'ready' && !unresponsive,
    isUnresponsive: () => unresponsive,
    isDown: () => !usable(),
    applyDeadline: () => (clockOffset === undefined ? 0 : Date.now() + clockOffset + commandTimeoutMs - applyMarginMs),
    async run<T>(operation: string, command: (c: RedisClient) => Promise<T>, routing?: { key: string }): Promise<T> {
      const masterSilent = routing !== undefined && silentMasters.size > 0 && silentMasters.has(masterOf(routing.key));
      if (!usable() || masterSilent) {
        metrics.redisCommandFailures.inc({ operation });
        throw new RedisUnavailableError(operation, circuitOpen || masterSilent);
      }
      let pending: Promise<T> | undefined;
      try {
        pending = command(commands.client);
        return await withDeadline(pending, commandTimeoutMs, operation);
      } catch (error) {
        metrics.redisCommandFailures.inc({ operation });
        // The command may still settle after the deadline (a silent link that came back);
        // nobody awaits it then, but how it ended is counted.
        if (error instanceof RedisTimeoutError) {
          pending?.then(
            () => metrics.lateReplies.inc({ operation, outcome: 'answered' }),
            (late: unknown) =>
              metrics.lateReplies.inc({ operation, outcome: late instanceof LateWriteError ? 'refused' : 'failed' }),
          );
        } else pending?.catch(() => undefined);
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
        clearInterval(watcher);
        metrics.redisUp.set(0);
        events.removeAllListeners();
        await watch?.close();
        await Promise.all(handles.map((handle) => handle.shut()));
      })();
      return closing;
    },
  };
}
