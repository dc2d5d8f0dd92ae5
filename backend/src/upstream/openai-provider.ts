import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import type { ClientSecretCreateParams } from 'openai/resources/realtime/client-secrets';
import type { RealtimeSessionConfig } from '../config/index.js';
import { UpstreamError, type RealtimeSecretsProvider, type UpstreamFailureKind } from './provider.js';

export interface OpenAiProviderOptions {
  apiKey: string;
  /** e.g. `https://api.openai.com/v1`, no trailing slash. */
  baseUrl: string;
  session: RealtimeSessionConfig;
  /** Bound on the whole call: connect, headers and body. */
  timeoutMs: number;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** `Retry-After` (or the provider's `retry-after-ms`) as whole seconds, at least 1. */
function retryAfterSeconds(headers: Headers | undefined, now: number = Date.now()): number | undefined {
  const ms = Number(headers?.get('retry-after-ms') ?? Number.NaN);
  const after = headers?.get('retry-after') ?? '';
  let delayMs: number | undefined;
  if (Number.isFinite(ms)) delayMs = ms;
  else if (after.trim() !== '' && Number.isFinite(Number(after))) delayMs = Number(after) * 1000;
  else if (!Number.isNaN(Date.parse(after))) delayMs = Date.parse(after) - now;
  return delayMs === undefined ? undefined : Math.max(1, Math.ceil(delayMs / 1000));
}

function kindOf(status: number): UpstreamFailureKind {
  if (status === 429) return 'rate_limited';
  if (status === 401 || status === 403) return 'auth';
  if (status >= 500) return 'server_error';
  return 'rejected';
}

/**
 * OpenAI Realtime client secrets (`POST /v1/realtime/client_secrets`) through the
 * official `openai` package. The package retries twice by default and sleeps out a
 * `Retry-After` of up to a minute; here it never retries, and one deadline covers the
 * whole call, so no answer takes longer than `timeoutMs`.
 */
export function createOpenAiProvider({
  apiKey,
  baseUrl,
  session,
  timeoutMs,
}: OpenAiProviderOptions): RealtimeSecretsProvider {
  const client = new OpenAI({
    apiKey,
    baseURL: baseUrl,
    // Explicit, so the package does not read OPENAI_ORG_ID and friends from the
    // environment behind the config schema's back (it still reads OPENAI_CUSTOM_HEADERS,
    // which no option overrides).
    organization: null,
    project: null,
    adminAPIKey: null,
    webhookSecret: null,
    maxRetries: 0,
    timeout: timeoutMs,
    // Failures are logged by the gateway's own logger, which knows what is secret.
    logLevel: 'off',
  });
  const audio = isRecord(session.audio) ? session.audio : {};
  const output = isRecord(audio.output) ? audio.output : {};

  return {
    name: 'openai',
    callsUrl: `${baseUrl}/realtime/calls`,
    async createClientSecret({ model, voice, ttlSeconds }) {
      // The session is the operator's validated JSON; the provider checks its fields.
      const upstreamSession = {
        ...session,
        type: 'realtime',
        model,
        audio: { ...audio, output: { ...output, voice } },
      } as ClientSecretCreateParams['session'];
      // The package's `timeout` stops at the response headers; this covers the body too.
      const deadline = new AbortController();
      const timer = setTimeout(() => {
        deadline.abort();
      }, timeoutMs);
      let answer: unknown;
      try {
        answer = await client.realtime.clientSecrets.create(
          { expires_after: { anchor: 'created_at', seconds: ttlSeconds }, session: upstreamSession },
          { signal: deadline.signal },
        );
      } catch (error) {
        if (error instanceof APIUserAbortError || error instanceof APIConnectionTimeoutError || deadline.signal.aborted)
          throw new UpstreamError('openai', 'timeout');
        if (error instanceof APIConnectionError) throw new UpstreamError('openai', 'unreachable');
        if (error instanceof APIError && typeof error.status === 'number') {
          const kind = kindOf(error.status);
          throw new UpstreamError(
            'openai',
            kind,
            error.status,
            kind === 'rate_limited' ? (retryAfterSeconds(error.headers as Headers | undefined) ?? 1) : undefined,
          );
        }
        throw new UpstreamError('openai', 'invalid_response');
      } finally {
        clearTimeout(timer);
      }
      if (
        !isRecord(answer) ||
        typeof answer.value !== 'string' ||
        answer.value === '' ||
        !Number.isFinite(answer.expires_at)
      )
        throw new UpstreamError('openai', 'invalid_response');
      return { value: answer.value, expiresAt: Number(answer.expires_at) * 1000 };
    },
  };
}
