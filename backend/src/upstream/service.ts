import type {
  UpstreamCapabilityResponse,
  UpstreamSessionRequest,
  UpstreamSessionResponse,
} from '@switchboard/contract';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { RedisConnection } from '../redis/connection.js';
import { createRedisFallback } from '../redis/fallback.js';
import { newUpstreamId, parseUpstreamId } from './ids.js';
import { createMemoryUpstreamStore } from './memory-store.js';
import { UpstreamError, type ClientSecret, type RealtimeSecretsProvider } from './provider.js';
import { createRedisUpstreamStore } from './redis-store.js';
import type { ReserveLimit, ReserveLimits, UpstreamRecord } from './store.js';

/** The provider's longest secret lifetime: a record never outlives it, whatever the answer says. */
const MAX_SECRET_MS = 7_200_000;

/** A model or voice outside the configured lists. */
export class UpstreamChoiceError extends Error {
  constructor(field: 'model' | 'voice', allowed: readonly string[]) {
    super(`${field}: must be one of ${allowed.join(', ')}`);
    this.name = 'UpstreamChoiceError';
  }
}

/** Mints are counted over this window: `UPSTREAM_MINTS_PER_MINUTE`. */
const MINT_WINDOW_MS = 60_000;

/** The user already holds the most live secrets allowed, or minted the most allowed this minute. */
export class UpstreamLimitError extends Error {
  constructor(
    readonly limit: ReserveLimit,
    readonly max: number,
    readonly retryAfterSeconds: number,
  ) {
    super(
      limit === 'rate'
        ? `at most ${max} voice sessions per user per minute, deleted ones included`
        : `at most ${max} live voice sessions per user`,
    );
    this.name = 'UpstreamLimitError';
  }
}

export interface UpstreamSessions {
  capability(): UpstreamCapabilityResponse;
  /** Reserves one of the user's slots, asks the provider for a secret and records it. */
  mint(userId: string, request: UpstreamSessionRequest): Promise<UpstreamSessionResponse>;
  /** Forgets a live record if `requester` owns it (or is a service); false when there is none. */
  forget(id: string, requester: { userId: string; service: boolean }): Promise<boolean>;
  close(): void;
}

export interface UpstreamSessionsOptions {
  provider: RealtimeSecretsProvider;
  models: readonly string[];
  voices: readonly string[];
  sessionsPerUser: number;
  /** Secrets one user may mint per minute, across replicas; deleting one early gives none back. */
  mintsPerMinute: number;
  timeoutMs: number;
  secretTtlSeconds: number;
  redis: RedisConnection | undefined;
  keyPrefix: string;
  memoryCap: number;
  logger: Logger;
  metrics: Metrics;
}

function pick(field: 'model' | 'voice', wanted: string | undefined, allowed: readonly string[]): string {
  const chosen = wanted ?? allowed[0];
  if (chosen === undefined || !allowed.includes(chosen)) throw new UpstreamChoiceError(field, allowed);
  return chosen;
}

export function createUpstreamSessions(options: UpstreamSessionsOptions): UpstreamSessions {
  const { provider, redis, metrics } = options;
  const log = options.logger.child({ component: 'upstream', provider: provider.name });
  const memory = createMemoryUpstreamStore({ cap: options.memoryCap });
  const limits: ReserveLimits = {
    live: options.sessionsPerUser,
    perWindow: options.mintsPerMinute,
    windowMs: MINT_WINDOW_MS,
  };
  const redisStore = redis ? createRedisUpstreamStore(redis, options.keyPrefix) : undefined;

  const { attempt, close: stopReplay } = createRedisFallback({
    redis,
    primary: redisStore,
    memory,
    name: 'upstream records',
    logger: log,
  });

  const failed = (error: UpstreamError): void => {
    metrics.upstreamFailures.inc({ provider: provider.name, kind: error.kind });
    const fields = { kind: error.kind, status: error.status };
    if (error.kind === 'auth') log.error(fields, `${provider.name} refused the gateway's API key`);
    else if (error.kind === 'rejected') log.error(fields, `${provider.name} rejected the session configuration`);
    else log.warn(fields, `${provider.name} client secret failed`);
  };

  return {
    capability: () => ({
      provider: provider.name,
      models: [...options.models],
      voices: [...options.voices],
      callsUrl: provider.callsUrl,
    }),
    async mint(userId, request) {
      const model = pick('model', request.model, options.models);
      const voice = pick('voice', request.voice, options.voices);
      const id = newUpstreamId(userId);
      // Held for as long as the secret could live if the provider answers at the deadline.
      const holdUntil = Date.now() + options.timeoutMs + options.secretTtlSeconds * 1000;
      const { value: reserved, store } = await attempt((s) => s.reserve(id, holdUntil, limits));
      if (!reserved.ok) {
        metrics.upstreamRefused.inc({ provider: provider.name, limit: reserved.limit });
        throw new UpstreamLimitError(
          reserved.limit,
          reserved.limit === 'rate' ? limits.perWindow : limits.live,
          Math.max(1, Math.ceil(reserved.retryAfterMs / 1000)),
        );
      }
      const release = () =>
        store.release(id).catch((error: unknown) => {
          log.warn(
            { err: (error as Error).message },
            'could not free an upstream slot; it frees when its hold expires',
          );
        });
      let secret: ClientSecret;
      try {
        secret = await provider.createClientSecret({ model, voice, ttlSeconds: options.secretTtlSeconds });
        if (secret.expiresAt <= Date.now()) throw new UpstreamError(provider.name, 'invalid_response');
      } catch (error) {
        await release();
        if (error instanceof UpstreamError) failed(error);
        throw error;
      }
      const record: UpstreamRecord = {
        id,
        owner: userId,
        room: request.room,
        provider: provider.name,
        model,
        voice,
        expiresAt: Math.min(secret.expiresAt, Date.now() + MAX_SECRET_MS),
      };
      let kept = store;
      try {
        await store.commit(record);
      } catch (error) {
        // Redis went away between reserve and commit: the reservation there lapses on its own.
        log.warn({ err: (error as Error).message }, 'upstream record kept in memory');
        await memory.commit(record);
        kept = memory;
      }
      metrics.upstreamMinted.inc({ provider: provider.name, store: kept.kind });
      log.debug({ id, model, voice, store: kept.kind }, 'client secret minted');
      return { id, value: secret.value, expiresAt: secret.expiresAt, provider: provider.name, model, voice };
    },
    async forget(id, requester) {
      if (!parseUpstreamId(id)) return false;
      const { value: found } = await attempt((s) => s.get(id));
      const record = found ?? (await memory.get(id));
      if (!record || (!requester.service && record.owner !== requester.userId)) return false;
      const { value: removed } = await attempt((s) => s.remove(id));
      const removedLocally = await memory.remove(id);
      return removed || removedLocally;
    },
    close() {
      stopReplay();
      memory.close();
    },
  };
}
