import type { FanoutResult } from '../scenarios/rooms.js';
import type { SystemKind } from '../lib/systems.js';

/**
 * A hand-rolled SVG line chart: fan-out latency (p50 solid, p99 dashed, log scale)
 * against publish rate, for both systems. No dependencies, stable output.
 */

const WIDTH = 760;
const HEIGHT = 440;
const MARGIN = { top: 56, right: 190, bottom: 56, left: 72 };
const STYLE: Record<SystemKind, { color: string; label: string }> = {
  baseline: { color: '#d9480f', label: 'baseline (Socket.IO + redis-adapter)' },
  switchboard: { color: '#1864ab', label: 'Switchboard' },
};

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const decadeLabel = (value: number) => (value >= 1 ? value.toFixed(0) : String(Number(value.toPrecision(1))));

export function fanoutLatencyChart(fanout: FanoutResult, subtitle: string): string {
  const rates = fanout.points.map((point) => point.baseline.rate);
  const values = fanout.points.flatMap((point) =>
    (['baseline', 'switchboard'] as const).flatMap((kind) => [point[kind].p50Ms, point[kind].p99Ms]),
  );
  const finite = values.filter((value) => Number.isFinite(value) && value > 0);
  const low = 10 ** Math.floor(Math.log10(Math.min(...finite, 1)));
  const high = 10 ** Math.ceil(Math.log10(Math.max(...finite, 10)));
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const minRate = Math.min(...rates);
  const maxRate = Math.max(...rates);
  const x = (rate: number) =>
    MARGIN.left + (maxRate === minRate ? plotW / 2 : ((rate - minRate) / (maxRate - minRate)) * plotW);
  const y = (ms: number) =>
    MARGIN.top + plotH - ((Math.log10(Math.max(ms, low)) - Math.log10(low)) / Math.log10(high / low)) * plotH;

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`,
    `<text x="${MARGIN.left}" y="24" font-size="16" font-weight="600">Fan-out latency vs publish rate (${fanout.members} members, ${fanout.replicas} replicas)</text>`,
    `<text x="${MARGIN.left}" y="42" fill="#555">${escape(subtitle)}</text>`,
  );
  // Grid and y axis (decades, log scale).
  for (let decade = low; decade <= high; decade *= 10) {
    const gy = y(decade).toFixed(1);
    parts.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${gy}" y2="${gy}" stroke="#e9ecef"/>`,
      `<text x="${MARGIN.left - 8}" y="${gy}" text-anchor="end" dominant-baseline="middle" fill="#333">${decadeLabel(decade)}</text>`,
    );
  }
  for (const rate of rates) {
    const gx = x(rate).toFixed(1);
    parts.push(
      `<line x1="${gx}" x2="${gx}" y1="${MARGIN.top}" y2="${MARGIN.top + plotH}" stroke="#f1f3f5"/>`,
      `<text x="${gx}" y="${MARGIN.top + plotH + 18}" text-anchor="middle" fill="#333">${rate}</text>`,
    );
  }
  parts.push(
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#adb5bd"/>`,
    `<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 14}" text-anchor="middle" fill="#333">publish rate into the room (events/s)</text>`,
    `<text transform="translate(18 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle" fill="#333">end-to-end latency (ms, log scale; lower is better)</text>`,
  );
  // Series.
  let legendY = MARGIN.top + 8;
  for (const kind of ['baseline', 'switchboard'] as const) {
    const { color, label } = STYLE[kind];
    for (const [metric, dash] of [
      ['p50Ms', ''],
      ['p99Ms', ' stroke-dasharray="6 4"'],
    ] as const) {
      const points = fanout.points
        .map((point) => point[kind])
        .filter((figures) => Number.isFinite(figures[metric]))
        .map((figures) => `${x(figures.rate).toFixed(1)},${y(figures[metric]).toFixed(1)}`);
      parts.push(`<polyline points="${points.join(' ')}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`);
      for (const point of points) {
        const [px, py] = point.split(',');
        parts.push(`<circle cx="${px ?? 0}" cy="${py ?? 0}" r="3" fill="${color}"/>`);
      }
      const lx = MARGIN.left + plotW + 16;
      parts.push(
        `<line x1="${lx}" x2="${lx + 26}" y1="${legendY}" y2="${legendY}" stroke="${color}" stroke-width="2"${dash}/>`,
        `<text x="${lx + 32}" y="${legendY}" dominant-baseline="middle">${escape(label.split(' (')[0] ?? label)} ${metric.slice(0, 3)}</text>`,
      );
      legendY += 20;
    }
  }
  parts.push(
    `<text x="${MARGIN.left + plotW + 16}" y="${legendY + 12}" fill="#555" font-size="11">baseline: plain Socket.IO</text>`,
    `<text x="${MARGIN.left + plotW + 16}" y="${legendY + 26}" fill="#555" font-size="11">+ @socket.io/redis-adapter</text>`,
    '</svg>',
  );
  return `${parts.join('\n')}\n`;
}
