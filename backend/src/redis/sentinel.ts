import { createClient } from 'redis';
import type { Logger } from '../observability/logger.js';

export interface MasterAddress {
  host: string;
  port: number;
}

export interface SentinelWatch {
  /** The master's address as the first sentinel that answers names it; rejects when none does. */
  resolve(): Promise<MasterAddress>;
  /** Looks again now (a connection to the master failed), instead of at the next poll. */
  check(): void;
  close(): Promise<void>;
}

export interface SentinelWatchOptions {
  urls: string[];
  master: string;
  /** Called with the master's address whenever it differs from the last one seen. */
  onMaster: (address: MasterAddress) => void;
  logger: Logger;
  pollMs?: number;
  timeoutMs?: number;
}

/**
 * Follows the master that Sentinel names. Polling `SENTINEL get-master-addr-by-name`
 * every second is as quick as the `+switch-master` message (Sentinel updates the
 * answer when it announces the switch) and cannot be missed while a connection is down;
 * each sentinel is asked in turn until one answers.
 */
export function createSentinelWatch({
  urls,
  master,
  onMaster,
  logger,
  pollMs = 1_000,
  timeoutMs = 1_000,
}: SentinelWatchOptions): SentinelWatch {
  const clients = urls.map((url) => {
    const client = createClient({ url, socket: { connectTimeout: timeoutMs, reconnectStrategy: false } });
    client.on('error', () => undefined);
    return client;
  });
  let last: MasterAddress | undefined;
  let closed = false;
  let asking: Promise<MasterAddress> | undefined;

  const askOne = async (client: (typeof clients)[number]): Promise<MasterAddress> => {
    if (!client.isOpen) await client.connect();
    const reply = await Promise.race([
      client.sendCommand(['SENTINEL', 'get-master-addr-by-name', master]),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('sentinel timed out')), timeoutMs).unref()),
    ]);
    if (!Array.isArray(reply) || typeof reply[0] !== 'string' || typeof reply[1] !== 'string') {
      throw new Error(`sentinel does not know master ${master}`);
    }
    return { host: reply[0], port: Number(reply[1]) };
  };

  const resolve = (): Promise<MasterAddress> => {
    asking ??= (async () => {
      let lastError: unknown;
      for (const client of clients) {
        try {
          const address = await askOne(client);
          if (!last || last.host !== address.host || last.port !== address.port) {
            if (last)
              logger.warn({ component: 'redis', master, from: last, to: address }, 'sentinel names a new master');
            last = address;
            if (!closed) onMaster(address);
          }
          return address;
        } catch (error) {
          lastError = error;
          // A half-open client is dropped, so the next question opens a fresh one.
          if (client.isOpen) client.destroy();
        }
      }
      throw lastError instanceof Error ? lastError : new Error('no sentinel answered');
    })().finally(() => {
      asking = undefined;
    });
    return asking;
  };

  const timer = setInterval(() => {
    resolve().catch(() => undefined);
  }, pollMs);
  timer.unref();

  return {
    resolve,
    check() {
      resolve().catch(() => undefined);
    },
    close() {
      closed = true;
      clearInterval(timer);
      for (const client of clients) if (client.isOpen) client.destroy();
      return Promise.resolve();
    },
  };
}
