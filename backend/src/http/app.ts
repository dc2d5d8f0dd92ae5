import { existsSync } from 'node:fs';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import helmet from 'helmet';
import {
  CAPABILITIES,
  HTTP_PATHS,
  devLoginRequestSchema,
  mintTokenRequestSchema,
  publishEventRequestSchema,
  roomNameSchema,
  type DevLoginResponse,
  type MintTokenResponse,
  type PeerInfo,
  type PeersResponse,
  type PublishEventResponse,
  type ReadyResponse,
} from '@switchboard/contract';
import type { z } from 'zod';
import { UnauthorizedError, type AccessTokenVerifier, type Principal } from '../auth/access-token.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { iceServersFor, type IceServerOptions } from '../rtc/ice-servers.js';
import { MintRateLimitedError, type TokenService } from '../tokens/service.js';
import { ApiError } from './errors.js';

/** What the HTTP API needs from the realtime side. */
export interface RoomsApi {
  publish(room: string, event: { type: string; data: unknown }, from: string): string;
  peers(room: string): Promise<PeerInfo[]>;
}

export interface HttpAppOptions {
  logger: Logger;
  metrics: Metrics;
  tokens: TokenService;
  access: AccessTokenVerifier;
  devLogin: { expiresIn: number; sign(userId: string, name: string | undefined): string } | undefined;
  corsOrigins: '*' | string[];
  ice: IceServerOptions;
  readiness: () => ReadyResponse;
  rooms: RoomsApi;
  /** Serve `/metrics` here (false when it has a port of its own). */
  serveMetrics: boolean;
  /** The built demo app, served at `/` when present. */
  staticDir: string | undefined;
}

const BODY_LIMIT = '64kb';

function parse<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    throw new ApiError('invalid_request', `${where}${issue?.message ?? 'invalid request'}`);
  }
  return result.data;
}

function cors(origins: '*' | string[]): RequestHandler {
  const allowed = new Set(origins === '*' ? [] : origins);
  return (req, res, next) => {
    const origin = req.headers.origin;
    if (origins === '*') res.setHeader('Access-Control-Allow-Origin', '*');
    else if (origin && allowed.has(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.vary('Origin');
    }
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

export function createHttpApp(options: HttpAppOptions): express.Express {
  const { tokens, access, metrics, rooms } = options;
  const log = options.logger.child({ component: 'http' });
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(helmet());
  app.use(cors(options.corsOrigins));

  const principals = new WeakMap<Request, Principal>();
  const authenticate: RequestHandler = (req, _res, next) => {
    const header = req.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!match?.[1]) throw new ApiError('unauthorized', 'send an access token as "Authorization: Bearer <jwt>"');
    try {
      principals.set(req, access.verify(match[1]));
    } catch (error) {
      throw new ApiError('unauthorized', error instanceof UnauthorizedError ? error.message : 'unauthorized');
    }
    next();
  };
  const principal = (req: Request): Principal => {
    const found = principals.get(req);
    if (!found) throw new ApiError('unauthorized');
    return found;
  };
  const roomParam = (req: Request): string => parse(roomNameSchema, req.params.room);

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

  app.post(HTTP_PATHS.devLogin, json, (req, res) => {
    if (!options.devLogin) throw new ApiError('not_found', 'dev login is disabled');
    const body = parse(devLoginRequestSchema, req.body);
    const response: DevLoginResponse = {
      accessToken: options.devLogin.sign(body.userId, body.name),
      expiresIn: options.devLogin.expiresIn,
    };
    res.json(response);
  });

  app.post(HTTP_PATHS.rtcTokens, authenticate, json, async (req, res) => {
    const started = process.hrtime.bigint();
    const who = principal(req);
    const body = parse(mintTokenRequestSchema, req.body);
    try {
      const minted = await tokens.mint({
        userId: who.userId,
        name: who.name,
        room: body.room,
        caps: body.caps ?? [...CAPABILITIES],
        sessionExpiresAt: who.expiresAt,
      });
      const response: MintTokenResponse = {
        token: minted.token,
        room: body.room,
        expiresAt: minted.expiresAt,
        ttlSeconds: tokens.ttlSeconds,
        iceServers: iceServersFor(who.userId, options.ice),
      };
      res.status(201).json(response);
    } catch (error) {
      if (error instanceof MintRateLimitedError) {
        throw new ApiError('rate_limited', 'too many tokens minted; try again later', {
          'Retry-After': String(error.retryAfterSeconds),
        });
      }
      throw error;
    } finally {
      metrics.mintSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    }
  });

  app.delete(`${HTTP_PATHS.rtcTokens}/:jti`, authenticate, async (req, res) => {
    const who = principal(req);
    const jti = String(req.params.jti);
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(jti)) throw new ApiError('not_found', 'no such token');
    const revoked = await tokens.revoke(jti, { userId: who.userId, service: who.scopes.length > 0 });
    if (!revoked) throw new ApiError('not_found', 'no such token');
    res.status(204).end();
  });

  app.post('/api/rooms/:room/events', authenticate, json, (req, res) => {
    const who = principal(req);
    if (!who.scopes.includes('publish'))
      throw new ApiError('forbidden', 'a service token with scope "publish" is required');
    const room = roomParam(req);
    const body = parse(publishEventRequestSchema, req.body);
    const id = rooms.publish(room, { type: body.type, data: body.data ?? null }, `service:${who.userId}`);
    metrics.eventsIn.inc({ event: 'http_publish', result: 'ok' });
    const response: PublishEventResponse = { id };
    res.status(202).json(response);
  });

  app.get('/api/rooms/:room/peers', authenticate, async (req, res) => {
    const who = principal(req);
    const room = roomParam(req);
    const peers = await rooms.peers(room);
    if (who.scopes.length === 0 && !peers.some((peer) => peer.userId === who.userId)) {
      throw new ApiError('forbidden', 'only members of the room or services may list its peers');
    }
    const response: PeersResponse = { peers };
    res.json(response);
  });

  if (options.staticDir && existsSync(options.staticDir)) {
    app.use(express.static(options.staticDir, { index: 'index.html', maxAge: '1h' }));
  }

  app.use((_req, _res, next) => {
    next(new ApiError('not_found', 'no such route'));
  });

  // Every failure leaves as contract JSON: body-parser errors, thrown ApiErrors and bugs alike.
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    let apiError: ApiError;
    if (error instanceof ApiError) apiError = error;
    else if (isBodyParserError(error) && error.type === 'entity.too.large')
      apiError = new ApiError('payload_too_large', `request bodies are limited to ${BODY_LIMIT}`);
    else if (isBodyParserError(error)) apiError = new ApiError('invalid_request', 'the body is not valid JSON');
    else {
      log.error({ err: error, method: req.method, path: req.path }, 'unhandled http error');
      apiError = new ApiError('internal');
    }
    if (res.headersSent) return;
    res.status(apiError.status).set(apiError.headers).json(apiError.body());
  });

  return app;
}

function isBodyParserError(error: unknown): error is { type: string; status: number } {
  return typeof error === 'object' && error !== null && typeof (error as { type?: unknown }).type === 'string';
}
