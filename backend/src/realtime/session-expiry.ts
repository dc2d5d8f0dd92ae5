/**
 * Ends sessions at their `expiresAt` with one timer for the whole replica instead
 * of one per socket: entries are bucketed by second and swept once a second.
 */
export interface ExpiryWheel<T> {
  schedule(item: T, expiresAtMs: number): void;
  cancel(item: T): void;
  close(): void;
}

export function createExpiryWheel<T>(onExpire: (item: T) => void, now: () => number = Date.now): ExpiryWheel<T> {
  const buckets = new Map<number, Set<T>>();
  const bucketOf = new Map<T, number>();
  let swept = Math.floor(now() / 1000);

  const sweep = (): void => {
    const current = Math.floor(now() / 1000);
    for (let second = swept; second <= current; second++) {
      const due = buckets.get(second);
      if (!due) continue;
      buckets.delete(second);
      for (const item of due) {
        bucketOf.delete(item);
        onExpire(item);
      }
    }
    swept = current;
  };
  const timer = setInterval(sweep, 250);
  timer.unref();

  const cancel = (item: T): void => {
    const second = bucketOf.get(item);
    if (second === undefined) return;
    bucketOf.delete(item);
    const bucket = buckets.get(second);
    bucket?.delete(item);
    if (bucket?.size === 0) buckets.delete(second);
  };

  return {
    schedule(item, expiresAtMs) {
      cancel(item);
      // Never schedule into a second already swept, or the entry would never fire.
      const second = Math.max(Math.ceil(expiresAtMs / 1000), swept);
      let bucket = buckets.get(second);
      if (!bucket) {
        bucket = new Set();
        buckets.set(second, bucket);
      }
      bucket.add(item);
      bucketOf.set(item, second);
    },
    cancel,
    close() {
      clearInterval(timer);
      buckets.clear();
      bucketOf.clear();
    },
  };
}
