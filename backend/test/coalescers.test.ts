import { afterEach, describe, expect, it, vi } from 'vitest';
import { createCoalescer } from '../src/realtime/coalescer.js';
import { createCountCoalescer } from '../src/realtime/presence-frames.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('the frame coalescer', () => {
  it('sends the first items at once, batches the rest of the window, and keeps order per room', () => {
    vi.useFakeTimers();
    const sent: Array<[string, number[]]> = [];
    const coalescer = createCoalescer<number>({ coalesceMs: 10, deliver: (room, items) => sent.push([room, items]) });
    coalescer.push('a', [1]);
    coalescer.push('a', [2]);
    coalescer.push('b', [1]);
    coalescer.push('a', [3, 4]);
    expect(sent).toEqual([
      ['a', [1]],
      ['b', [1]],
    ]);
    vi.advanceTimersByTime(10);
    expect(sent).toEqual([
      ['a', [1]],
      ['b', [1]],
      ['a', [2, 3, 4]],
    ]);
    // flush sends a room's queue now (before a newcomer's session).
    coalescer.push('a', [5]);
    coalescer.flush('a');
    expect(sent.at(-1)).toEqual(['a', [5]]);
    coalescer.close();
    // Closed: whatever still comes goes out at once.
    coalescer.push('c', [9]);
    expect(sent.at(-1)).toEqual(['c', [9]]);
  });

  it('with a window of 0, sends everything at once', () => {
    const sent: number[][] = [];
    const coalescer = createCoalescer<number>({ coalesceMs: 0, deliver: (_room, items) => sent.push(items) });
    coalescer.push('a', [1]);
    coalescer.push('a', [2]);
    expect(sent).toEqual([[1], [2]]);
    coalescer.close();
  });
});

describe('the presence count coalescer', () => {
  it('sends a room’s count at most once per interval, and only when it changed', () => {
    vi.useFakeTimers();
    const sizes = new Map([['hall', 600]]);
    const sent: Array<[string, number]> = [];
    const counts = createCountCoalescer({
      intervalMs: 1_000,
      count: (room) => sizes.get(room) ?? 0,
      send: (room, count) => sent.push([room, count]),
      counting: (count) => count > 500,
    });
    for (let i = 0; i < 50; i++) {
      sizes.set('hall', 600 + i);
      counts.changed('hall');
    }
    expect(sent).toEqual([]);
    vi.advanceTimersByTime(1_000);
    expect(sent).toEqual([['hall', 649]]);
    // A join and a leave within one interval: the count is back where it was, nothing is sent.
    counts.changed('hall');
    vi.advanceTimersByTime(1_000);
    expect(sent).toEqual([['hall', 649]]);
    sizes.set('hall', 650);
    counts.changed('hall');
    vi.advanceTimersByTime(999);
    expect(sent).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(sent.at(-1)).toEqual(['hall', 650]);
    counts.close();
  });

  it('sends the count a room shrinks back to, then forgets it', () => {
    vi.useFakeTimers();
    let size = 501;
    const sent: number[] = [];
    const counts = createCountCoalescer({
      intervalMs: 100,
      count: () => size,
      send: (_room, count) => sent.push(count),
      counting: (count) => count > 500,
    });
    counts.changed('hall');
    vi.advanceTimersByTime(100);
    size = 500;
    counts.changed('hall');
    vi.advanceTimersByTime(100);
    size = 501;
    counts.changed('hall');
    vi.advanceTimersByTime(100);
    expect(sent).toEqual([501, 500, 501]);
    counts.close();
  });
});
