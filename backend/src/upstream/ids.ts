import { randomBytes } from 'node:crypto';
import { userSlotTag } from '../redis/keys.js';

/**
 * Upstream record ids are `<owner's slot tag>.<random>` (see redis/keys.ts), so whoever
 * holds an id (the owner, or a service deleting it) reaches the owner's Redis keys
 * without a lookup, and every key of one owner shares one Cluster slot.
 */
const ID_PATTERN = /^([A-Za-z0-9_-]{8})\.([A-Za-z0-9_-]{22})$/;

export function newUpstreamId(userId: string): string {
  return `${userSlotTag(userId)}.${randomBytes(16).toString('base64url')}`;
}

/** The owner tag and random part of a well-formed id, or undefined for anything else. */
export function parseUpstreamId(id: string): { tag: string; key: string } | undefined {
  const match = ID_PATTERN.exec(id);
  return match?.[1] && match[2] ? { tag: match[1], key: match[2] } : undefined;
}
