import type { Membership } from './types.js';

/**
 * A connection's memberships by room, with the part of `Map`'s interface the gateway uses.
 * Nearly every connection is in one room, so that one is held in a field and a `Map` is
 * made only for a second: an empty `Map` with its table is ~180 bytes per connection, as
 * much as the rest of what the gateway keeps for it.
 */
export class MembershipSet {
  private only: Membership | undefined;
  private many: Map<string, Membership> | undefined;

  get size(): number {
    return this.many ? this.many.size : this.only ? 1 : 0;
  }

  get(room: string): Membership | undefined {
    if (this.many) return this.many.get(room);
    return this.only?.room === room ? this.only : undefined;
  }

  has(room: string): boolean {
    return this.get(room) !== undefined;
  }

  set(room: string, membership: Membership): void {
    if (this.many) {
      this.many.set(room, membership);
    } else if (!this.only || this.only.room === room) {
      this.only = membership;
    } else {
      this.many = new Map([
        [this.only.room, this.only],
        [room, membership],
      ]);
      this.only = undefined;
    }
  }

  delete(room: string): boolean {
    if (this.many) return this.many.delete(room);
    if (this.only?.room !== room) return false;
    this.only = undefined;
    return true;
  }

  /** The membership of a connection in exactly one room; undefined otherwise. */
  single(): Membership | undefined {
    if (!this.many) return this.only;
    if (this.many.size !== 1) return undefined;
    for (const membership of this.many.values()) return membership;
    return undefined;
  }

  /** In the order they were added. */
  values(): IterableIterator<Membership> {
    if (this.many) return this.many.values();
    return (this.only ? [this.only] : []).values();
  }
}
