/**
 * The operations dashboard's API (`/api/admin/*`, a service JWT with scope `admin`).
 * Every figure is a sum or a list across the replicas that reported in the last
 * few seconds; rates are per second.
 */

import type { RedisStatus } from './index.js';

export const ADMIN_PATHS = {
  /** `GET`: the whole cluster at a glance ({@link AdminOverview}). */
  overview: '/api/admin/overview',
  /** `GET <rooms>/:room`: one room's members and recent events ({@link AdminRoomDetail}). */
  rooms: '/api/admin/rooms',
  /** `POST`, development only: an access JWT with scope `admin` for the dashboard's sign-in. */
  devLogin: '/api/admin/dev-login',
} as const;

/** The dashboard page (served when `ADMIN_ENABLED=true`). */
export const ADMIN_PAGE = '/admin/';

export type AdminReplicaStatus = 'ready' | 'degraded' | 'draining';

export interface AdminReplica {
  id: string;
  status: AdminReplicaStatus;
  connections: number;
  rooms: number;
  /** Event-loop delay over the last second: mean and 99th percentile, milliseconds. */
  loopLagMs: { mean: number; p99: number };
  /** Share of one core used over the last second, in percent. */
  cpuPercent: number;
  rssBytes: number;
  heapUsedBytes: number;
  uptimeSeconds: number;
  /** When this replica last reported (epoch ms). */
  seenAt: number;
}

export interface AdminRoom {
  room: string;
  /** Members on every replica. */
  members: number;
  /** Replicas with members in the room. */
  replicas: string[];
  /** Room events per second over the last 10 seconds. */
  eventRate: number;
}

/** Per-second counts for the last minute, oldest first; `t` holds each second's epoch ms. */
export interface AdminSeries {
  t: number[];
  publishes: number[];
  deliveries: number[];
  recoveries: number[];
  /** Handshakes and client events refused, by code. */
  refusals: Record<string, number[]>;
  slowConsumerDisconnects: number[];
}

export interface AdminRedis {
  topology: 'standalone' | 'cluster' | 'sentinel' | 'disabled';
  /** What this replica's connection says; `disabled` in memory mode. */
  status: RedisStatus;
}

export interface AdminOverview {
  generatedAt: number;
  /** The replica that answered. */
  replica: string;
  redis: AdminRedis;
  replicas: AdminReplica[];
  /** The busiest rooms, by members (ties by event rate); at most {@link ADMIN_LIMITS.rooms}. */
  rooms: AdminRoom[];
  series: AdminSeries;
}

export interface AdminRoomMember {
  peerId: string;
  userId: string;
  name: string;
  replica: string;
  joinedAt: number;
}

export interface AdminRoomEvent {
  seq: number;
  id: string;
  type: string;
  from: string;
  ts: number;
  /** The event's data as JSON, cut at {@link ADMIN_LIMITS.eventPreviewChars}. */
  preview: string;
}

export interface AdminRoomDetail {
  room: string;
  members: AdminRoomMember[];
  replicas: string[];
  /** The latest events from the room's history, newest last; empty with history off. */
  events: AdminRoomEvent[];
  /** Set when the history could not be read (Redis unreachable). */
  historyError?: string;
}

export interface AdminNoticeRequest {
  text: string;
}

export const ADMIN_LIMITS = {
  /** Rooms listed in the overview, and reported by each replica. */
  rooms: 200,
  /** Recent events shown for a room. */
  events: 20,
  eventPreviewChars: 200,
  noticeChars: 500,
  /** Seconds of per-second series kept. */
  seriesSeconds: 60,
} as const;

/** The event type a dashboard notice is published as. */
export const ADMIN_NOTICE_EVENT = 'admin.notice';
