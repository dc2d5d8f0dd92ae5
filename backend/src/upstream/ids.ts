import { createHash, randomBytes } from 'node:crypto';

/**
 * Upstream record ids are `<owner tag>.<random>`. The tag is a hash of the owner's user
 * id, so whoever holds an id (the owner, or a service deleting it) reaches the owner's
 * Redis keys without a lookup, and every key of one owner shares the hash tag `{<tag>}`
 * (one Cluster slot). A hash rather than the user id itself: ids may hold `{`/`}`.
 */
const ID_PATTERN = /^([0-9a-f]{16})\.([A-Za-z0-9_-]{22})$/;

export function ownerTag(userId: string): string {
  return createHash('sha256').update(userId).digest('hex').slice(0, 16);
}

export function newUpstreamId(userId: string): string {
  return `${ownerTag(userId)}.${randomBytes(16).toString('base64url')}`;
}

/** The owner tag and random part of a well-formed id, or undefined for anything else. */
export function parseUpstreamId(id: string): { tag: string; key: string } | undefined {
  const match = ID_PATTERN.exec(id);
  return match?.[1] && match[2] ? { tag: match[1], key: match[2] } : undefined;
}
