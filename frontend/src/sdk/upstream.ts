import type { UpstreamCapabilityResponse, UpstreamSessionRequest } from '@switchboard/contract';
import { SwitchboardError } from './errors.js';
import { forgetUpstreamSession, mintUpstreamSession, upstreamCapability, type FetchLike } from './http.js';

export type UpstreamSessionOptions = UpstreamSessionRequest;

/** A client secret for the provider's realtime API, minted by the gateway for this user. */
export interface UpstreamSecret {
  /** The gateway's record; pass it to `forget` when the session is over. */
  id: string;
  /** The ephemeral key: send it as `Authorization: Bearer <value>` to the provider. */
  value: string;
  /** Epoch milliseconds after which the provider refuses it for new sessions. */
  expiresAt: number;
  model: string;
  voice: string;
}

export interface UpstreamApi {
  /**
   * Mints an OpenAI Realtime client secret through the gateway, which holds the API key
   * and the session configuration; `model` and `voice` must be on its allowed lists.
   * Rejects with `rate_limited` (and `retryAfterMs`) when the user already holds the
   * most live secrets allowed, `upstream_unavailable` when the provider failed, and
   * `not_found` when the gateway has no provider key.
   */
  openai(options?: UpstreamSessionOptions): Promise<UpstreamSecret>;
  /** Frees the user's slot before the secret expires (the provider cannot revoke it). */
  forget(id: string): Promise<void>;
  /** Which models and voices the gateway offers, and its calls URL; undefined when it offers none. */
  capability(): Promise<UpstreamCapabilityResponse | undefined>;
}

export interface UpstreamApiOptions {
  urls: readonly string[];
  accessToken: (forceRefresh: boolean) => Promise<string>;
  fetch: FetchLike | undefined;
  timeoutMs: number;
}

/** Codes that say "this gateway was not reached", so the next one is worth trying. */
const unreached = (error: unknown) =>
  error instanceof SwitchboardError && (error.code === 'unreachable' || error.code === 'timeout');

export function createUpstreamApi({ urls, accessToken, fetch, timeoutMs }: UpstreamApiOptions): UpstreamApi {
  const http = { timeoutMs, ...(fetch ? { fetch } : {}) };

  /** Tries each gateway in turn while none is reached. */
  async function anyGateway<T>(call: (baseUrl: string) => Promise<T>): Promise<T> {
    let lastError: unknown = new SwitchboardError('unreachable');
    for (const baseUrl of urls) {
      try {
        return await call(baseUrl);
      } catch (error) {
        if (!unreached(error)) throw error;
        lastError = error;
      }
    }
    throw lastError;
  }

  /** Runs `call` with the access token, and once more with a fresh one if it was refused. */
  async function authorized<T>(call: (baseUrl: string, token: string) => Promise<T>): Promise<T> {
    return anyGateway(async (baseUrl) => {
      try {
        return await call(baseUrl, await accessToken(false));
      } catch (error) {
        if (!(error instanceof SwitchboardError) || error.code !== 'unauthorized') throw error;
        return call(baseUrl, await accessToken(true));
      }
    });
  }

  return {
    async openai(options = {}) {
      const minted = await authorized((baseUrl, token) =>
        mintUpstreamSession({ baseUrl, accessToken: token, ...options, ...http }),
      );
      return {
        id: minted.id,
        value: minted.value,
        expiresAt: minted.expiresAt,
        model: minted.model,
        voice: minted.voice,
      };
    },
    forget(id) {
      return authorized((baseUrl, token) => forgetUpstreamSession(baseUrl, token, id, http));
    },
    capability() {
      return anyGateway((baseUrl) => upstreamCapability(baseUrl, http));
    },
  };
}
