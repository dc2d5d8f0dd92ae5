/** A growable list of float samples (latencies in ms) without per-sample allocation. */
export class Samples {
  private values = new Float64Array(1024);
  private count = 0;

  get length(): number {
    return this.count;
  }

  push(value: number): void {
    if (this.count === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.count++] = value;
  }

  clear(): void {
    this.count = 0;
  }

  /** One list holding the samples of all `lists`. */
  static merge(...lists: Samples[]): Samples {
    const merged = new Samples();
    for (const list of lists) for (let i = 0; i < list.count; i++) merged.push(list.values[i] ?? 0);
    return merged;
  }

  /** p50, p99 and max in the samples' unit; NaN when empty. */
  summary(): LatencySummary {
    if (this.count === 0) return { samples: 0, p50: Number.NaN, p99: Number.NaN, max: Number.NaN };
    const sorted = this.values.slice(0, this.count).sort();
    return {
      samples: this.count,
      p50: quantile(sorted, 0.5),
      p99: quantile(sorted, 0.99),
      max: sorted[sorted.length - 1] ?? Number.NaN,
    };
  }
}

export interface LatencySummary {
  samples: number;
  p50: number;
  p99: number;
  max: number;
}

/** Nearest-rank quantile of sorted values. */
export function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

export function round(value: number, digits = 2): number {
  if (!Number.isFinite(value)) return value;
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
