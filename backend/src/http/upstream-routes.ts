import { Router, type Request, type RequestHandler, type Response } from 'express';
import { HTTP_PATHS, type UpstreamSessionResponse } from '@switchboard/contract';
import { upstreamSessionRequestSchema } from '@switchboard/contract/schemas';
import type { Principal } from '../auth/access-token.js';
import { UpstreamError, type UpstreamFailureKind } from '../upstream/provider.js';
import { UpstreamChoiceError, UpstreamLimitError, type UpstreamSessions } from '../upstream/service.js';
import { ApiError } from './errors.js';
import { parse } from './validation.js';

export interface UpstreamRoutesOptions {
  upstream: UpstreamSessions;
  /** Refuses a request without a valid access JWT (401). */
  authenticate: RequestHandler;
  principal: (req: Request) => Principal;
  /** Refuses (403, or 503 while the authorizer is away) a room the app does not let `who` into. */
  authorizeRoom: (who: Principal, room: string) => Promise<void>;
  /** Told of every secret minted (the `upstream.minted` webhook). */
  onMinted?: (room: string | undefined, userId: string, minted: UpstreamSessionResponse) => void;
  /** The app's JSON body parser (with its size limit), refusing a body of another type. */
  json: RequestHandler[];
}

const FAILURE_TEXT: Record<UpstreamFailureKind, string> = {
  rate_limited: 'the voice provider is rate limiting this gateway; try again later',
  timeout: 'the voice provider did not answer in time',
  unreachable: 'the voice provider cannot be reached',
  server_error: 'the voice provider failed',
  auth: 'the voice provider refused this gateway; its operator has been told',
  rejected: 'the voice provider refused the session configuration; its operator has been told',
  invalid_response: 'the voice provider answered something unexpected',
};

function toApiError(error: unknown): unknown {
  if (error instanceof UpstreamChoiceError) return new ApiError('invalid_request', error.message);
  if (error instanceof UpstreamLimitError) {
    const frees =
      error.limit === 'rate' ? 'try again when the minute has passed' : 'one frees when a secret expires or is deleted';
    return new ApiError('rate_limited', `${error.message}; ${frees}`, {
      'Retry-After': String(error.retryAfterSeconds),
    });
  }
  if (error instanceof UpstreamError && error.kind === 'rate_limited') {
    return new ApiError('rate_limited', FAILURE_TEXT.rate_limited, {
      'Retry-After': String(error.retryAfterSeconds ?? 1),
    });
  }
  if (error instanceof UpstreamError) return new ApiError('upstream_unavailable', FAILURE_TEXT[error.kind]);
  return error;
}

/** `GET`/`POST /api/rtc/upstream/openai` and `DELETE /api/rtc/upstream/:id` (see docs/protocol.md). */
export function createUpstreamRoutes({
  upstream,
  authenticate,
  principal,
  authorizeRoom,
  onMinted,
  json,
}: UpstreamRoutesOptions): Router {
  const router = Router();

  router.get(HTTP_PATHS.upstreamOpenai, (_req, res) => {
    res.json(upstream.capability());
  });

  router.post(HTTP_PATHS.upstreamOpenai, authenticate, ...json, async (req: Request, res: Response) => {
    const who = principal(req);
    const body = parse(upstreamSessionRequestSchema, req.body ?? {});
    // The voice session is billed to the operator: only for a room the app lets this user into.
    if (body.room !== undefined) await authorizeRoom(who, body.room);
    let minted: UpstreamSessionResponse;
    try {
      minted = await upstream.mint(who.userId, body);
    } catch (error) {
      throw toApiError(error);
    }
    onMinted?.(body.room, who.userId, minted);
    res.status(201).json(minted);
  });

  router.delete(`${HTTP_PATHS.upstreamSessions}/:id`, authenticate, async (req, res) => {
    const who = principal(req);
    const forgotten = await upstream.forget(String(req.params.id), {
      userId: who.userId,
      service: who.scopes.has('revoke'),
    });
    if (!forgotten) throw new ApiError('not_found', 'no such upstream session');
    res.status(204).end();
  });

  return router;
}
