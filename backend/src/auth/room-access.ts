import { CAPABILITIES, type Capability, type RoomAccessMode, type RoomAuthorizerRequest } from '@switchboard/contract';
import { roomAuthorizerResponseSchema } from '@switchboard/contract/schemas';
import type { RoomAccessConfig } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Principal } from './access-token.js';
import { SIGNATURE_HEADER, signatureHeader } from './signature.js';

/** The app does not let this user into this room (or not with what was asked). */
export class RoomForbiddenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RoomForbiddenError';
  }
}

/** The room authorizer gave no usable answer in time; access fails closed. */
export class AuthorizerUnavailableError extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super("the app's room authorizer did not answer; try again shortly");
    this.name = 'AuthorizerUnavailableError';
  }
}

export interface RoomAccess {
  readonly mode: RoomAccessMode;
  /**
   * The capabilities `user` gets in `room`: `requested` if given and allowed, else all that
   * the app allows. Rejects with RoomForbiddenError or AuthorizerUnavailableError.
   */
  check(user: Principal, room: string, requested: Capability[] | undefined): Promise<Capability[]>;
}

export interface RoomAccessOptions {
  config: RoomAccessConfig;
  logger: Logger;
  metrics: Metrics;
  /** For tests; the global fetch by default. */
  fetch?: typeof fetch;
  now?: () => number;
}

/** Most decisions one replica remembers; past it the oldest is forgotten (and asked again). */
const CACHE_CAP = 10_000;

type Grant = Capability[];

/**
 * The grant the claim gives `room`: an exact name first, else the longest `prefix*`.
 * Returns undefined when nothing matches; throws when the claim is not a grants object.
 */
export function grantFor(claim: unknown, claimName: string, room: string): Grant | undefined {
  if (claim === undefined) return undefined;
  if (typeof claim !== 'object' || claim === null || Array.isArray(claim)) {
    throw new RoomForbiddenError(
      `the access token's "${claimName}" claim must map room names or "prefix*" patterns to capabilities`,
    );
  }
  const grants = claim as Record<string, unknown>;
  let match: unknown = Object.hasOwn(grants, room) ? grants[room] : undefined;
  if (match === undefined) {
    let longest = -1;
    for (const pattern of Object.keys(grants)) {
      if (!pattern.endsWith('*')) continue;
      const prefix = pattern.slice(0, -1);
      if (prefix.length > longest && room.startsWith(prefix)) {
        longest = prefix.length;
        match = grants[pattern];
      }
    }
  }
  if (match === undefined) return undefined;
  if (!Array.isArray(match)) {
    throw new RoomForbiddenError(
      `the access token's "${claimName}" claim must give each room a list of capabilities (room "${room}" has none)`,
    );
  }
  // Capabilities this gateway does not know are ignored, so an app may grant ahead of an upgrade.
  return CAPABILITIES.filter((cap) => match.includes(cap));
}

/** `requested` if the grant covers it, else a refusal naming what is missing. */
function narrow(granted: Grant, requested: Capability[] | undefined, room: string, source: string): Capability[] {
  if (!requested) return granted;
  const missing = requested.filter((cap) => !granted.includes(cap));
  if (missing.length > 0) {
    throw new RoomForbiddenError(
      `${source} grants ${granted.length ? granted.join(', ') : 'no capabilities'} in room "${room}", not ${missing.join(', ')}`,
    );
  }
  return requested;
}

interface Decision {
  /** Undefined: denied. */
  caps: Grant | undefined;
  expiresAt: number;
}

/**
 * How the gateway learns the app's decision on who may enter which room (`ROOM_ACCESS`):
 * the access JWT's room grants, the app's authorizer endpoint (grants first, decisions
 * cached), or nothing at all (`open`, for demos). Services minting for users are the
 * app's own backend: their tokens are the decision, and never reach this check.
 */
export function createRoomAccess(options: RoomAccessOptions): RoomAccess {
  const { config, metrics } = options;
  const { mode, claim: claimName } = config;
  const now = options.now ?? Date.now;
  const log = options.logger.child({ component: 'room-access' });
  const decided = (source: string, result: 'allow' | 'deny' | 'unavailable'): void => {
    metrics.roomAccess.inc({ source, result });
  };

  const fromGrants = (user: Principal, room: string, requested: Capability[] | undefined): Capability[] | undefined => {
    const grant = grantFor(user.claims[claimName], claimName, room);
    if (!grant) return undefined;
    const caps = narrow(grant, requested, room, `the access token's "${claimName}" claim`);
    decided('grant', 'allow');
    return caps;
  };

  if (mode === 'open') {
    return {
      mode,
      check: (_user, _room, requested) => {
        decided('open', 'allow');
        return Promise.resolve(requested ?? [...CAPABILITIES]);
      },
    };
  }

  if (mode === 'grants' || !config.authorizer) {
    return {
      mode,
      // A promise for one shape with the authorizer; a grant check itself never waits.
      check: (user, room, requested) =>
        Promise.resolve().then(() => {
          let caps: Capability[] | undefined;
          try {
            caps = fromGrants(user, room, requested);
          } finally {
            if (!caps) decided('grant', 'deny');
          }
          if (caps) return caps;
          throw new RoomForbiddenError(
            `the access token's "${claimName}" claim does not grant room "${room}" (an exact name or a "prefix*" pattern)`,
          );
        }),
    };
  }

  const authorizer = config.authorizer;
  const doFetch = options.fetch ?? fetch;
  // Map order is insertion order: the first key is the oldest decision.
  const cache = new Map<string, Decision>();
  // Concurrent mints for the same user and room share one call.
  const inFlight = new Map<string, Promise<Decision>>();
  let lastWarning = 0;
  const warn = (fields: Record<string, unknown>, message: string): void => {
    if (now() - lastWarning < 5_000) return;
    lastWarning = now();
    log.warn(fields, message);
  };
  const retryAfter = Math.max(1, Math.ceil(authorizer.timeoutMs / 1000));

  async function ask(user: Principal, room: string, caps: Capability[]): Promise<Decision> {
    const request: RoomAuthorizerRequest = { userId: user.userId, room, caps, claims: { ...user.claims } };
    const body = JSON.stringify(request);
    let response: Response;
    try {
      response = await doFetch(authorizer.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signatureHeader(authorizer.secret, body) },
        body,
        signal: AbortSignal.timeout(authorizer.timeoutMs),
        redirect: 'error',
      });
    } catch (error) {
      const timedOut = error instanceof Error && error.name === 'TimeoutError';
      warn({ timeoutMs: authorizer.timeoutMs }, timedOut ? 'room authorizer timed out' : 'room authorizer unreachable');
      throw new AuthorizerUnavailableError(retryAfter);
    }
    let answer: unknown;
    try {
      answer = response.ok ? await response.json() : undefined;
    } catch {
      answer = undefined;
    }
    const parsed = roomAuthorizerResponseSchema.safeParse(answer);
    if (!parsed.success) {
      warn(
        { status: response.status },
        response.ok
          ? 'room authorizer answered something other than {allow, caps?, ttlSeconds?}'
          : 'room authorizer failed',
      );
      throw new AuthorizerUnavailableError(retryAfter);
    }
    const ttlMs = (parsed.data.ttlSeconds ?? authorizer.cacheSeconds) * 1000;
    return { caps: parsed.data.allow ? (parsed.data.caps ?? caps) : undefined, expiresAt: now() + ttlMs };
  }

  const remember = (key: string, decision: Decision): void => {
    cache.delete(key);
    if (decision.expiresAt <= now()) return;
    if (cache.size >= CACHE_CAP) {
      const oldest = cache.keys().next();
      if (!oldest.done) cache.delete(oldest.value);
    }
    cache.set(key, decision);
  };

  return {
    mode,
    async check(user, room, requested) {
      // A matching grant in the token is the app's decision already: no call.
      const granted = fromGrants(user, room, requested);
      if (granted) return granted;
      const key = `${user.userId}\n${room}`;
      const cached = cache.get(key);
      const wanted = requested ?? [...CAPABILITIES];
      let decision: Decision;
      let source = 'cache';
      // A cached allow is the app's whole answer for a request without caps; one that names
      // caps beyond it asks again.
      const covered = !cached?.caps || !requested || requested.every((cap) => cached.caps?.includes(cap));
      if (cached && cached.expiresAt > now() && covered) {
        decision = cached;
      } else {
        source = 'authorizer';
        const asking = `${key}\n${wanted.join(',')}`;
        let call = inFlight.get(asking);
        if (!call) {
          call = ask(user, room, wanted).finally(() => inFlight.delete(asking));
          inFlight.set(asking, call);
        }
        try {
          decision = await call;
        } catch (error) {
          decided(source, 'unavailable');
          throw error;
        }
        remember(key, decision);
      }
      if (!decision.caps) {
        decided(source, 'deny');
        throw new RoomForbiddenError(`the app's room authorizer does not let this user into room "${room}"`);
      }
      const caps = narrow(decision.caps, requested, room, "the app's room authorizer");
      decided(source, 'allow');
      return caps;
    },
  };
}
