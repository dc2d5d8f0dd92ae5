import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { AdminSeries } from '@switchboard/contract';
import { h } from '../demo/dom.js';

const PALETTE = ['#4f46e5', '#16a34a', '#d97706', '#dc2626', '#0891b2', '#9333ea', '#64748b'];
const MIN_WIDTH = 260;
const HEIGHT = 120;

interface ChartSpec {
  id: string;
  title: string;
  /** One line per name; the refusals chart has one per code. */
  lines: (series: AdminSeries) => Array<[string, number[]]>;
}

const SPECS: ChartSpec[] = [
  { id: 'publishes', title: 'Publishes/s', lines: (s) => [['publishes', s.publishes]] },
  { id: 'deliveries', title: 'Deliveries/s', lines: (s) => [['deliveries', s.deliveries]] },
  { id: 'recoveries', title: 'Recoveries/s', lines: (s) => [['recovered', s.recoveries]] },
  { id: 'refusals', title: 'Refusals/s by code', lines: (s) => Object.entries(s.refusals) },
  {
    id: 'slow',
    title: 'Slow-consumer disconnects/s',
    lines: (s) => [['disconnects', s.slowConsumerDisconnects]],
  },
];

interface Chart {
  spec: ChartSpec;
  holder: HTMLElement;
  total: HTMLElement;
  plot: uPlot | undefined;
  names: string;
}

/**
 * The last minute as five small line charts. A chart is rebuilt only when its set of
 * lines changes (a refusal code appears or goes); otherwise uPlot just takes new data.
 */
export function createCharts(container: HTMLElement) {
  const charts: Chart[] = SPECS.map((spec) => {
    const total = h('span', { class: 'chart-total', 'data-testid': `chart-total-${spec.id}` }, '0');
    const holder = h('div', { class: 'chart-plot' });
    container.append(
      h(
        'figure',
        { class: 'card chart', 'data-testid': `chart-${spec.id}` },
        h('figcaption', {}, spec.title, total),
        holder,
      ),
    );
    return { spec, holder, total, plot: undefined, names: '' };
  });

  return {
    update(series: AdminSeries): void {
      const t = series.t.map((ms) => ms / 1000);
      for (const chart of charts) {
        const lines = chart.spec.lines(series);
        const shown = lines.length > 0 ? lines : ([['none', series.t.map(() => 0)]] as Array<[string, number[]]>);
        chart.total.textContent = String(lines.reduce((sum, [, values]) => sum + values.reduce((a, b) => a + b, 0), 0));
        const data: uPlot.AlignedData = [t, ...shown.map(([, values]) => values)];
        const names = shown.map(([name]) => name).join(',');
        if (chart.plot && chart.names === names) {
          chart.plot.setData(data);
          continue;
        }
        chart.plot?.destroy();
        chart.names = names;
        chart.plot = new uPlot(
          {
            width: Math.max(MIN_WIDTH, chart.holder.clientWidth),
            height: HEIGHT,
            legend: { show: shown.length > 1 },
            cursor: { show: false },
            scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
            axes: [{ size: 24, space: 60 }, { size: 36 }],
            series: [
              {},
              ...shown.map(([name], i) => ({
                label: name,
                stroke: PALETTE[i % PALETTE.length],
                width: 1.5,
                points: { show: false },
              })),
            ],
          },
          data,
          chart.holder,
        );
      }
    },
  };
}
