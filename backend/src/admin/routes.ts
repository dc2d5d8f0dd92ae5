import { Router, type Request, type RequestHandler } from 'express';
import {
  ADMIN_LIMITS,
  ADMIN_NOTICE_EVENT,
  ADMIN_PATHS,
  type AdminRoomDetail,
  type AdminRoomEvent,
  type DevLoginResponse,
  type PublishEventResponse,
  type RoomEvent,
  USER_ID_PATTERN,
} from '@switchboard/contract';
import { roomNameSchema } from '@switchboard/contract/schemas';
import { z } from 'zod';
import type { Principal } from '../auth/access-token.js';
import type { RoomsApi } from '../http/app.js';
import { ApiError } from '../http/errors.js';
import { parse } from '../http/validation.js';
import type { Logger } from '../observability/logger.js';
import type { ClusterView } from './cluster-view.js';
import { ADMIN_SCOPE, isAdmin } from './scope.js';

export interface AdminRoutesOptions {
  view: ClusterView;
  rooms: RoomsApi;
  /** Refuses a request without a valid access JWT (401). */
  authenticate: RequestHandler;
  principal: (req: Request) => Principal;
  json: RequestHandler[];
  /** Signs a dashboard token in development; undefined where the dev login is off. */
  devToken: (() => DevLoginResponse) | undefined;
  logger: Logger;
}

const userIdSchema = z.string().regex(USER_ID_PATTERN, 'must be a user id');
const noticeSchema = z.strictObject({
  text: z.string().trim().min(1, 'must not be empty').max(ADMIN_LIMITS.noticeChars),
});

function preview(event: RoomEvent): AdminRoomEvent {
  const text = JSON.stringify(event.data) ?? 'null';
  return {
    seq: event.seq,
    id: event.id,
    type: event.type,
    from: event.from,
    ts: event.ts,
    preview: text.length > ADMIN_LIMITS.eventPreviewChars ? `${text.slice(0, ADMIN_LIMITS.eventPreviewChars)}…` : text,
  };
}

/**
 * The dashboard's API. Reads are cheap (the overview is cached for a second however many
 * tabs poll it); each action is written to the log with the admin's `sub` before it runs.
 */
export function createAdminRoutes(options: AdminRoutesOptions): Router {
  const { view, rooms, principal } = options;
  const audit = options.logger.child({ component: 'admin', audit: true });
  const router = Router();

  const admin: RequestHandler = (req, _res, next) => {
    if (!isAdmin(principal(req)))
      throw new ApiError('forbidden', `a service token with scope "${ADMIN_SCOPE}" is required`);
    next();
  };
  const guarded = [options.authenticate, admin];

  router.post(ADMIN_PATHS.devLogin, (_req, res) => {
    if (!options.devToken) throw new ApiError('not_found', 'dev login is disabled');
    res.json(options.devToken());
  });

  router.get(ADMIN_PATHS.overview, ...guarded, async (_req, res) => {
    res.set('Cache-Control', 'no-store').json(await view.overview());
  });

  router.get(`${ADMIN_PATHS.rooms}/:room`, ...guarded, async (req, res) => {
    const room = parse(roomNameSchema, req.params.room);
    const peers = await rooms.peers(room);
    const detail: AdminRoomDetail = {
      room,
      members: peers.map(({ peerId, userId, name, replica, joinedAt }) => ({
        peerId,
        userId,
        name,
        replica,
        joinedAt,
      })),
      replicas: [...new Set(peers.map((peer) => peer.replica))].sort(),
      events: [],
    };
    try {
      const page = await rooms.history(room, { after: undefined, limit: ADMIN_LIMITS.events });
      detail.events = page.events.map(preview);
    } catch (error) {
      detail.historyError = error instanceof Error ? error.message : 'history unavailable';
    }
    res.set('Cache-Control', 'no-store').json(detail);
  });

  router.delete(`${ADMIN_PATHS.rooms}/:room/members/:userId`, ...guarded, async (req, res) => {
    const room = parse(roomNameSchema, req.params.room);
    const userId = parse(userIdSchema, req.params.userId);
    audit.info({ action: 'kick', admin: principal(req).userId, room, userId }, 'admin action');
    await rooms.kick(room, userId);
    res.status(204).end();
  });

  router.post(`${ADMIN_PATHS.rooms}/:room/notices`, ...guarded, ...options.json, async (req, res) => {
    const room = parse(roomNameSchema, req.params.room);
    const { text } = parse(noticeSchema, req.body);
    const sub = principal(req).userId;
    audit.info({ action: 'notice', admin: sub, room, chars: text.length }, 'admin action');
    const published: PublishEventResponse = await rooms.publish(
      room,
      { type: ADMIN_NOTICE_EVENT, data: { text } },
      `admin:${sub}`,
    );
    res.status(202).json(published);
  });

  return router;
}
