import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { createClient } from 'redis';

const exec = promisify(execFile);

/** `nft` is in /usr/sbin, which a non-root PATH often lacks. */
const NFT = ['/usr/sbin/nft', '/usr/bin/nft', 'nft'];

async function nft(args: string[]): Promise<string> {
  let lastError: unknown;
  for (const binary of NFT) {
    try {
      return (await exec(binary, args, { timeout: 10_000 })).stdout;
    } catch (error) {
      lastError = error;
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  throw lastError;
}

/**
 * Why packets cannot be dropped here (undefined when they can): `nft` missing, not root,
 * or a kernel without nf_tables. Creates and deletes a probe table to be sure.
 */
export async function nftUnusable(): Promise<string | undefined> {
  const table = `sbprobe_${process.pid}_${randomBytes(3).toString('hex')}`;
  try {
    await nft(['add', 'table', 'inet', table]);
    await nft(['delete', 'table', 'inet', table]);
    return undefined;
  } catch (error) {
    const err = error as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT')
      return 'nft is not installed (Debian package nftables; scripts/system-deps.sh installs it)';
    const why = (err.stderr ?? err.message).trim().split('\n')[0];
    const root = process.getuid?.() === 0 ? '' : ' (dropping packets needs root or CAP_NET_ADMIN)';
    return `nft cannot change the ruleset: ${why}${root}`;
  }
}

/** Both ends of one TCP connection on loopback. */
export interface PortPair {
  local: number;
  remote: number;
}

/**
 * Silent packet loss on loopback, in an nftables table of its own (a unique name, so
 * tests running in parallel do not touch each other's rules): connections stay open and
 * nothing is reset, as with a dead node or a load balancer that drops a flow.
 */
export interface Partition {
  /** Drops every packet to or from `port` (new connections too). */
  dropPort(port: number): Promise<void>;
  /** Drops the packets of these connections only, both ways. */
  dropPairs(pairs: PortPair[]): Promise<void>;
  /** Lets everything through again (the rules go; the table stays until `close`). */
  heal(): Promise<void>;
  /** Deletes the table; idempotent. */
  close(): Promise<void>;
}

export async function createPartition(): Promise<Partition> {
  const table = `sbtest_${process.pid}_${randomBytes(4).toString('hex')}`;
  await nft(['add', 'table', 'inet', table]);
  await nft(['add', 'chain', 'inet', table, 'out', '{ type filter hook output priority 0; policy accept; }']);
  let closed = false;
  const rule = (match: string[]) =>
    nft(['add', 'rule', 'inet', table, 'out', 'ip', 'daddr', '127.0.0.1', ...match, 'drop']);
  return {
    async dropPort(port) {
      await rule(['tcp', 'dport', String(port)]);
      await rule(['tcp', 'sport', String(port)]);
    },
    async dropPairs(pairs) {
      for (const { local, remote } of pairs) {
        await rule(['tcp', 'sport', String(local), 'tcp', 'dport', String(remote)]);
        await rule(['tcp', 'sport', String(remote), 'tcp', 'dport', String(local)]);
      }
    },
    async heal() {
      if (!closed) await nft(['flush', 'chain', 'inet', table, 'out']);
    },
    async close() {
      if (closed) return;
      closed = true;
      await nft(['delete', 'table', 'inet', table]).catch(() => undefined);
    },
  };
}

/** A client connected to a Redis server, as `CLIENT LIST` shows it. */
export interface RedisPeer {
  /** The client's end of the connection (its ephemeral port). */
  port: number;
  /** The client name (`switchboard-commands`, `switchboard-rooms-sub`, ...), empty when unnamed. */
  name: string;
  /** `CLIENT LIST` flags: `S` for a replica's replication link, `P` for a subscriber, ... */
  flags: string;
  /** The process that owns the client's socket, when it runs on this machine. */
  pid: number | undefined;
}

/** Which local process owns each established connection to `port` (from `ss`). */
async function socketOwners(port: number): Promise<Map<number, number>> {
  const owners = new Map<number, number>();
  const { stdout } = await exec('ss', ['-Htnp', 'state', 'established', `( dport = :${port} )`], { timeout: 10_000 });
  for (const line of stdout.split('\n')) {
    const local = /127\.0\.0\.1:(\d+)\s+127\.0\.0\.1:\d+/.exec(line);
    const pid = /pid=(\d+)/.exec(line);
    if (local?.[1] && pid?.[1]) owners.set(Number(local[1]), Number(pid[1]));
  }
  return owners;
}

/** The clients of the Redis server on `port`, with their names and owning processes. */
export async function redisPeers(port: number): Promise<RedisPeer[]> {
  const client = createClient({ socket: { port, host: '127.0.0.1', reconnectStrategy: false } });
  client.on('error', () => undefined);
  let list: string;
  try {
    await client.connect();
    const reply = await client.sendCommand<string>(['CLIENT', 'LIST']);
    list = typeof reply === 'string' ? reply : '';
  } finally {
    if (client.isOpen) client.destroy();
  }
  const owners = await socketOwners(port);
  return list
    .split('\n')
    .map((line) => {
      const fields = new Map(line.split(' ').map((field) => field.split('=', 2) as [string, string]));
      const peerPort = Number(fields.get('addr')?.split(':').pop());
      return {
        port: peerPort,
        name: fields.get('name') ?? '',
        flags: fields.get('flags') ?? '',
        pid: owners.get(peerPort),
      };
    })
    .filter((peer) => Number.isInteger(peer.port) && peer.port > 0);
}

/** The port pairs of `pid`'s connections to the Redis server on `port` (optionally only some clients). */
export async function linksOf(port: number, pid: number, which?: (peer: RedisPeer) => boolean): Promise<PortPair[]> {
  const peers = await redisPeers(port);
  return peers
    .filter((peer) => peer.pid === pid && (!which || which(peer)))
    .map((peer) => ({ local: peer.port, remote: port }));
}
