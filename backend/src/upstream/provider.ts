import type { UpstreamProvider } from '@switchboard/contract';

export const UPSTREAM_FAILURE_KINDS = [
  'timeout',
  'unreachable',
  'server_error',
  'rate_limited',
  'auth',
  'rejected',
  'invalid_response',
] as const;
export type UpstreamFailureKind = (typeof UPSTREAM_FAILURE_KINDS)[number];

/**
 * A failed provider call. The message names only the provider, the kind and the status:
 * a provider's own error text can echo part of the API key, so it is never kept.
 */
export class UpstreamError extends Error {
  constructor(
    readonly provider: UpstreamProvider,
    readonly kind: UpstreamFailureKind,
    readonly status?: number,
    /** The provider's `Retry-After`, in whole seconds (at least 1), on `rate_limited`. */
    readonly retryAfterSeconds?: number,
  ) {
    super(`${provider} ${kind}${status === undefined ? '' : ` (HTTP ${status})`}`);
    this.name = 'UpstreamError';
  }
}

export interface ClientSecretRequest {
  model: string;
  voice: string;
  ttlSeconds: number;
}

export interface ClientSecret {
  /** The ephemeral key. */
  value: string;
  /** Epoch milliseconds. */
  expiresAt: number;
}

/** Mints realtime client secrets at one provider. */
export interface RealtimeSecretsProvider {
  readonly name: UpstreamProvider;
  /** Where a browser POSTs its SDP offer, with a client secret as Bearer. */
  readonly callsUrl: string;
  createClientSecret(request: ClientSecretRequest): Promise<ClientSecret>;
}
