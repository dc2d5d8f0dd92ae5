import { existsSync } from 'node:fs';
import { IncomingMessage, ServerResponse, type RequestListener } from 'node:http';
import { Socket } from 'node:net';
import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import helmet from 'helmet';
import {
  CAPABILITIES,
  HTTP_PATHS,
  LIMITS,
  type BatchPublishResponse,
  type BatchPublishResult,
  type DevLoginResponse,
  type HistoryResponse,
  type MintTokenResponse,
  type PeerInfo,
  type PeersResponse,
  type PublishEventResponse,
  type ReadyResponse,
  type RoomDetailResponse,
  type RoomsListResponse,
  type Capability,
  type ServiceScope,
  type UpstreamSessionResponse,
} from '@switchboard/contract';
import {
  devLoginRequestSchema,
  batchEventRequestSchema,
  batchEnvelopeSchema,
  historyQuerySchema,
  mintTokenRequestSchema,
  publishEventRequestSchema,
  roomNameSchema,
  roomsListQuerySchema,
  tokenIdSchema,
  userIdParamSchema,
} from '@switchboard/contract/schemas';
import { createApiDocuments } from '../api-docs/index.js';
import {
  IdentityUnavailableError,
  UnauthorizedError,
  type AccessTokenVerifier,
  type Principal,
} from '../auth/access-token.js';
import { AuthorizerUnavailableError, RoomForbiddenError, type RoomAccess } from '../auth/room-access.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { HistoryUnavailableError } from '../history/types.js';
import { iceServersFor, type IceServerOptions } from '../rtc/ice-servers.js';
import { MintRateLimitedError, TokenStoreUnavailableError, type TokenService } from '../tokens/service.js';
import type { UpstreamSessions } from '../upstream/service.js';
import { ApiError, notJsonError } from './errors.js';
import type { RoomsApi } from '../realtime/rooms-api.js';
import { rawJsonRoute } from './raw-json-route.js';
import { decodeCursor, InvalidCursorError, type RoomDirectory } from './room-directory.js';
import { createUpstreamRoutes } from './upstream-routes.js';
import { firstIssue, parse } from './validation.js';

/** What the HTTP API needs from the realtime side. */
export type { RoomsApi } from '../realtime/rooms-api.js';

export interface HttpAppOptions {
  logger: Logger;
  metrics: Metrics;
  tokens: TokenService;
  access: AccessTokenVerifier;
  /** Who may enter which room (`ROOM_ACCESS`). */
  roomAccess: RoomAccess;
  /** The access-JWT claim that carries room grants, which the dev login fills in. */
  roomsClaim: string;
  devLogin:
    | {
        expiresIn: number;
        sign(
          userId: string,
          name: string | undefined,
          rooms: Record<string, string[]> | undefined,
          claim: string,
        ): string;
      }
    | undefined;
  corsOrigins: '*' | string[];
  ice: IceServerOptions;
  readiness: () => ReadyResponse;
  rooms: RoomsApi;
  /** Active rooms across replicas, for the server API. */
  directory: RoomDirectory;
  /** Serve `/metrics` here (false when it has a port of its own). */
  serveMetrics: boolean;
  /** The built demo app, served at `/` when present. */
  staticDir: string | undefined;
  /** Let pages connect to gateways over plain http/ws (never in production). */
  allowInsecureConnect: boolean;
  /** Brokered voice sessions; absent when no provider key is configured (the routes 404). */
  upstream?: UpstreamSessions;
  /** Told of every voice secret minted (the `upstream.minted` webhook). */
  onUpstreamMinted?: (room: string | undefined, userId: string, minted: UpstreamSessionResponse) => void;
  /** The operations dashboard's routes, given the app's authentication; absent when it is off. */
  admin?: (auth: {
    authenticate: RequestHandler;
    principal: (req: Request) => Principal;
    json: RequestHandler[];
  }) => Router;
}

const BODY_LIMIT = '64kb';

/** The CORS headers an answer to `origin` carries, as a flat `[name, value, ...]` list. */
function corsHeaders(origins: '*' | string[]): (origin: string | undefined) => string[] {
  if (origins === '*') return () => ['Access-Control-Allow-Origin', '*'];
  const allowed = new Set(origins);
  return (origin) => (origin && allowed.has(origin) ? ['Access-Control-Allow-Origin', origin, 'Vary', 'Origin'] : []);
}

function cors(headersFor: (origin: string | undefined) => string[]): RequestHandler {
  return (req, res, next) => {
    const headers = headersFor(req.headers.origin);
    for (let i = 0; i < headers.length; i += 2) res.setHeader(headers[i] as string, headers[i + 1] as string);
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method']) {
      res.setHeader('Access-Control-Allow-Methods', 'GET, POST, DELETE');
      res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type');
      res.setHeader('Access-Control-Max-Age', '600');
      res.status(204).end();
      return;
    }
    next();
  };
}

/** The headers a middleware sets on every response, read once from a stand-in response. */
function headersSetBy(middleware: (req: IncomingMessage, res: ServerResponse, next: () => void) => void): string[] {
  const req = new IncomingMessage(new Socket());
  const res = new ServerResponse(req);
  middleware(req, res, () => undefined);
  // Raw names keep the middleware's spelling (Node >= 15.13; missing from this @types/node).
  const raw = res as ServerResponse & { getRawHeaderNames(): string[] };
  return raw.getRawHeaderNames().flatMap((name) => {
    const value = res.getHeader(name);
    return value === undefined ? [] : [name, Array.isArray(value) ? value.join(', ') : String(value)];
  });
}

/**
 * The HTTP API. Express serves every route; the token mint, the one endpoint every
 * connection (and reconnection) calls, is also answered by a raw route that skips
 * Express for plain requests and answers identically (see raw-json-route.ts).
 */
export function createHttpApp(options: HttpAppOptions): RequestListener {
  const { tokens, access, roomAccess, metrics, rooms } = options;
  const log = options.logger.child({ component: 'http' });
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const security = helmet({
    contentSecurityPolicy: {
      directives: {
        // The SDK fails over to other gateway origins, which only the deployment knows.
        connectSrc: ["'self'", 'https:', 'wss:', ...(options.allowInsecureConnect ? ['http:', 'ws:'] : [])],
        // On plain-http deployments (compose on a LAN address) the browser would upgrade
        // every asset to https and break the page; TLS belongs to the ingress, with HSTS.
        upgradeInsecureRequests: null,
      },
    },
  });
  app.use(security);
  const corsFor = corsHeaders(options.corsOrigins);
  app.use(cors(corsFor));

  /**
   * The caller an `Authorization: Bearer <jwt>` header names; rejects with an
   * `unauthorized` ApiError, or `identity_unavailable` when the keys cannot be fetched.
   */
  const principalFrom = async (header: string | undefined): Promise<Principal> => {
    const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!match?.[1]) throw new ApiError('unauthorized', 'send an access token as "Authorization: Bearer <jwt>"');
    try {
      return await access.verify(match[1]);
    } catch (error) {
      if (error instanceof IdentityUnavailableError) {
        throw new ApiError('identity_unavailable', error.message, { 'Retry-After': String(error.retryAfterSeconds) });
      }
      throw new ApiError('unauthorized', error instanceof UnauthorizedError ? error.message : 'unauthorized');
    }
  };
  const principals = new WeakMap<Request, Principal>();
  const authenticate: RequestHandler = async (req, _res, next) => {
    principals.set(req, await principalFrom(req.headers.authorization));
    next();
  };
  const principal = (req: Request): Principal => {
    const found = principals.get(req);
    if (!found) throw new ApiError('unauthorized');
    return found;
  };
  const roomParam = (req: Request): string => parse(roomNameSchema, req.params.room);
  /** Refuses a caller without `scope` in its service JWT. */
  const requireScope = (who: Principal, scope: ServiceScope): void => {
    if (!who.scopes.has(scope)) throw new ApiError('forbidden', `a service token with scope "${scope}" is required`);
  };
  /** The capabilities the app lets `who` have in `room`, as contract errors. */
  const roomCaps = async (who: Principal, room: string, requested: Capability[] | undefined) => {
    try {
      return await roomAccess.check(who, room, requested);
    } catch (error) {
      if (error instanceof RoomForbiddenError) throw new ApiError('forbidden', error.message);
      if (error instanceof AuthorizerUnavailableError) {
        throw new ApiError('authorizer_unavailable', error.message, {
          'Retry-After': String(error.retryAfterSeconds),
        });
      }
      throw error;
    }
  };

  app.get(HTTP_PATHS.healthz, (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get(HTTP_PATHS.readyz, (_req, res) => {
    const body = options.readiness();
    res.status(body.status === 'draining' ? 503 : 200).json(body);
  });
  if (options.serveMetrics) {
    app.get(HTTP_PATHS.metrics, async (_req, res) => {
      res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    });
  }

  const json = express.json({ limit: BODY_LIMIT });
  // express.json() leaves bodies of other types unread, which would fail later as
  // "expected object, received undefined"; say what to send instead.
  const jsonBody =
    (optional: boolean): RequestHandler =>
    (req, _res, next) => {
      const sentBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
      if (req.body === undefined && (!optional || sentBody)) {
        const type = req.headers['content-type']?.split(';')[0]?.trim().slice(0, 100);
        // A JSON type with no body at all (no Content-Length) also lands here.
        const sent = !type ? '' : /^application\/json$/i.test(type) ? '; this request has no body' : `, not "${type}"`;
        throw new ApiError('invalid_request', `send a JSON body with "Content-Type: application/json"${sent}`);
      }
      next();
    };
  const requireJson = jsonBody(false);

  app.post(HTTP_PATHS.devLogin, json, requireJson, (req, res) => {
    if (!options.devLogin) throw new ApiError('not_found', 'dev login is disabled');
    const body = parse(devLoginRequestSchema, req.body);
    const response: DevLoginResponse = {
      accessToken: options.devLogin.sign(body.userId, body.name, body.rooms, options.roomsClaim),
      expiresIn: options.devLogin.expiresIn,
    };
    res.json(response);
  });

  const mint = async (who: Principal, requestBody: unknown): Promise<MintTokenResponse> => {
    const started = process.hrtime.bigint();
    const body = parse(mintTokenRequestSchema, requestBody);
    // A backend minting for its user is the app's decision itself (scope `mint`).
    const onBehalf = body.userId !== undefined;
    if (onBehalf) {
      requireScope(who, 'mint');
      metrics.roomAccess.inc({ source: 'service', result: 'allow' });
    }
    const userId = body.userId ?? who.userId;
    const caps = onBehalf ? (body.caps ?? [...CAPABILITIES]) : await roomCaps(who, body.room, body.caps);
    try {
      const minted = await tokens.mint({
        userId,
        name: onBehalf ? (body.name ?? userId) : who.name,
        room: body.room,
        caps,
        sessionExpiresAt: who.expiresAt,
      });
      const response: MintTokenResponse = {
        token: minted.token,
        jti: minted.jti,
        room: body.room,
        expiresAt: minted.expiresAt,
        ttlSeconds: tokens.ttlSeconds,
        iceServers: iceServersFor(userId, options.ice),
      };
      return response;
    } catch (error) {
      if (error instanceof MintRateLimitedError) {
        throw new ApiError('rate_limited', 'too many tokens minted; try again later', {
          'Retry-After': String(error.retryAfterSeconds),
        });
      }
      throw storeError(error);
    } finally {
      metrics.mintSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    }
  };
  app.post(HTTP_PATHS.rtcTokens, authenticate, json, requireJson, async (req, res) => {
    res.status(201).json(await mint(principal(req), req.body));
  });

  app.delete(`${HTTP_PATHS.rtcTokens}/:jti`, authenticate, async (req, res) => {
    const who = principal(req);
    const jti = String(req.params.jti);
    if (!tokenIdSchema.safeParse(jti).success) throw new ApiError('not_found', 'no such token');
    let revoked: boolean;
    try {
      revoked = await tokens.revoke(jti, { userId: who.userId, service: who.scopes.has('revoke') });
    } catch (error) {
      throw storeError(error);
    }
    if (!revoked) throw new ApiError('not_found', 'no such token');
    res.status(204).end();
  });

  app.get(HTTP_PATHS.rooms, authenticate, async (req, res) => {
    requireScope(principal(req), 'read');
    const query = parse(roomsListQuerySchema, req.query);
    let after: string | undefined;
    try {
      after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    } catch (error) {
      if (error instanceof InvalidCursorError) throw new ApiError('invalid_request', `cursor: ${error.message}`);
      throw error;
    }
    const response: RoomsListResponse = await options.directory
      .list(after, query.limit ?? LIMITS.roomsPage)
      .catch(unavailable);
    res.json(response);
  });

  // `:` is literal here (path-to-regexp would read `:batch` as a parameter).
  app.post(HTTP_PATHS.roomsEventsBatch.replace(':', '\\:'), authenticate, json, requireJson, async (req, res) => {
    const who = principal(req);
    requireScope(who, 'publish');
    const { events: items } = parse(batchEnvelopeSchema, req.body);
    const events = items.map((item) => batchEventRequestSchema.safeParse(item));
    const from = `service:${who.userId}`;
    const results: BatchPublishResult[] = new Array<BatchPublishResult>(events.length);
    // Each room's events in the order sent; rooms side by side.
    const byRoom = new Map<string, number[]>();
    events.forEach((parsed, i) => {
      if (!parsed.success)
        results[i] = { ok: false, error: { code: 'invalid_request', message: firstIssue(parsed.error) } };
      else byRoom.set(parsed.data.room, [...(byRoom.get(parsed.data.room) ?? []), i]);
    });
    await Promise.all(
      [...byRoom.values()].map(async (indexes) => {
        for (const i of indexes) {
          const event = events[i]?.data;
          if (!event) continue;
          try {
            const published = await rooms.publish(
              event.room,
              { type: event.type, data: event.data ?? null, idempotencyKey: event.idempotencyKey },
              from,
            );
            results[i] = { ok: true, ...published };
            metrics.eventsIn.inc({ event: 'http_publish', result: 'ok' });
          } catch (error) {
            // As the single publish would answer it (an unexpected error is logged there).
            results[i] = { ok: false, ...toApiError(error, req.method, req.path).body() };
          }
        }
      }),
    );
    const response: BatchPublishResponse = { results };
    res.status(200).json(response);
  });

  app.get(`${HTTP_PATHS.rooms}/:room`, authenticate, async (req, res) => {
    requireScope(principal(req), 'read');
    const room = roomParam(req);
    const response: RoomDetailResponse = await options.directory.detail(room).catch(unavailable);
    res.json(response);
  });

  app.post('/api/rooms/:room/events', authenticate, json, requireJson, async (req, res) => {
    const who = principal(req);
    requireScope(who, 'publish');
    const room = roomParam(req);
    const body = parse(publishEventRequestSchema, req.body);
    const response: PublishEventResponse = await rooms.publish(
      room,
      { type: body.type, data: body.data ?? null, idempotencyKey: body.idempotencyKey },
      `service:${who.userId}`,
    );
    metrics.eventsIn.inc({ event: 'http_publish', result: 'ok' });
    res.status(202).json(response);
  });

  /** Services may read any room; a user only a room they are in now (across replicas). */
  const roomReader = async (req: Request): Promise<{ room: string; peers: PeerInfo[] }> => {
    const who = principal(req);
    const room = roomParam(req);
    const peers = await rooms.peers(room);
    if (!who.scopes.has('read') && !peers.some((peer) => peer.userId === who.userId)) {
      throw new ApiError('forbidden', 'only members of the room, or a service token with scope "read", may read it');
    }
    return { room, peers };
  };

  app.get('/api/rooms/:room/peers', authenticate, async (req, res) => {
    const { peers } = await roomReader(req);
    const response: PeersResponse = { peers };
    res.json(response);
  });

  app.get('/api/rooms/:room/events', authenticate, async (req, res) => {
    const { room } = await roomReader(req);
    const query = parse(historyQuerySchema, req.query);
    try {
      const response: HistoryResponse = await rooms.history(room, {
        after: query.after,
        limit: query.limit ?? LIMITS.historyLimit,
      });
      res.json(response);
    } catch (error) {
      if (error instanceof HistoryUnavailableError) {
        throw new ApiError(error.code, error.message, { 'Retry-After': '1' });
      }
      throw error;
    }
  });

  app.delete('/api/rooms/:room/members/:userId', authenticate, async (req, res) => {
    const who = principal(req);
    requireScope(who, 'kick');
    const room = roomParam(req);
    const userId = parse(userIdParamSchema, req.params.userId);
    try {
      await rooms.kick(room, userId);
    } catch (error) {
      throw storeError(error);
    }
    // Audited: removing someone is an action an operator must be able to trace.
    log.info({ room, userId, by: who.userId }, 'member kicked');
    res.status(204).end();
  });

  // Off, the capability check still answers 2xx: a browser logs every 404 as a console error,
  // and an app asks on every page load.
  if (!options.upstream) {
    app.get(HTTP_PATHS.upstreamOpenai, (_req, res) => {
      res.status(204).end();
    });
  }
  if (options.upstream)
    app.use(
      createUpstreamRoutes({
        upstream: options.upstream,
        authenticate,
        principal,
        authorizeRoom: async (who, room) => {
          await roomCaps(who, room, []);
        },
        onMinted: options.onUpstreamMinted,
        json: [json, jsonBody(true)],
      }),
    );

  if (options.admin) app.use(options.admin({ authenticate, principal, json: [json, requireJson] }));
  else {
    app.use(['/admin', '/api/admin'], () => {
      throw new ApiError('not_found', 'the operations dashboard is off; set ADMIN_ENABLED=true to serve it');
    });
  }

  const documents = createApiDocuments();
  app.get(HTTP_PATHS.openApi, (_req, res) => {
    res.json(documents.openApi());
  });
  app.get(HTTP_PATHS.asyncApi, (_req, res) => {
    res.json(documents.asyncApi());
  });

  if (options.staticDir && existsSync(options.staticDir)) {
    app.use(express.static(options.staticDir, { index: 'index.html', maxAge: '1h' }));
  }

  app.use((_req, _res, next) => {
    next(new ApiError('not_found', 'no such route'));
  });

  // Every failure leaves as contract JSON: body-parser errors, thrown ApiErrors and bugs alike.
  const toApiError = (error: unknown, method: string | undefined, path: string): ApiError => {
    if (error instanceof ApiError) return error;
    if (isBodyParserError(error) && error.type === 'entity.too.large')
      return new ApiError('payload_too_large', `request bodies are limited to ${BODY_LIMIT}`);
    if (isBodyParserError(error)) return notJsonError();
    log.error({ err: error, method, path }, 'unhandled http error');
    return new ApiError('internal');
  };
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const apiError = toApiError(error, req.method, req.path);
    if (res.headersSent) return;
    res.status(apiError.status).set(apiError.headers).json(apiError.body());
  });

  const securityHeaders = headersSetBy(security);
  const mintRoute = rawJsonRoute({
    method: 'POST',
    path: HTTP_PATHS.rtcTokens,
    limitBytes: LIMITS.httpBodyBytes,
    // What helmet and cors() set on the Express path, in the same order.
    headers: (req) => [...securityHeaders, ...corsFor(req.headers.origin)],
    before: (req) => principalFrom(req.headers.authorization),
    handle: async (who, body) => ({ status: 201, body: await mint(who, body) }),
    toApiError: (error, req) => toApiError(error, req.method, HTTP_PATHS.rtcTokens),
  });

  return (req, res) => {
    if (!mintRoute(req, res)) app(req, res);
  };
}

/** Redis or history trouble behind a room read, as a retryable contract error. */
function unavailable(error: unknown): never {
  if (error instanceof ApiError) throw error;
  throw new ApiError('unavailable', 'room state is unreachable right now; try again shortly', { 'Retry-After': '1' });
}

/** Token-store refusals as contract errors; anything else unchanged. */
function storeError(error: unknown): unknown {
  if (error instanceof TokenStoreUnavailableError) {
    return new ApiError('unavailable', error.message, { 'Retry-After': String(error.retryAfterSeconds) });
  }
  return error;
}

function isBodyParserError(error: unknown): error is { type: string; status: number } {
  return typeof error === 'object' && error !== null && typeof (error as { type?: unknown }).type === 'string';
}
