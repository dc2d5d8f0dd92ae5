/**
 * The shipped monitoring: every metric the Grafana dashboard queries is one a live
 * gateway exports; the alert rules pass `promtool check rules` and their unit tests
 * (`promtool test rules`); the kustomize component carries current copies of both.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { monitoringCopies } from '../scripts/monitoring-component.js';
import { ROOT } from './deploy-files.js';

const DASHBOARD = `${ROOT}deploy/grafana/switchboard.json`;
const RULES = `${ROOT}deploy/prometheus/alerts.yml`;
const RULE_TESTS = `${ROOT}deploy/prometheus/alerts.test.yml`;

interface Panel {
  title?: string;
  targets?: Array<{ expr?: string }>;
  panels?: Panel[];
}

function panelQueries(panels: Panel[]): Array<{ title: string; expr: string }> {
  return panels.flatMap((panel) => [
    ...(panel.targets ?? []).flatMap((target) =>
      target.expr ? [{ title: panel.title ?? '?', expr: target.expr }] : [],
    ),
    ...panelQueries(panel.panels ?? []),
  ]);
}

/** Metric names in a PromQL expression: identifiers that are not functions, keywords or labels. */
function metricNames(expr: string): string[] {
  const withoutLabels = expr
    .replace(/\{[^}]*\}/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  return [...withoutLabels.matchAll(/\b(switchboard|nodejs|process)_[a-z0-9_]+\b/g)].map((match) => match[0]);
}

/** `# TYPE` names in a scrape; a histogram's series add _bucket, _sum and _count. */
function exported(text: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    if (!name) continue;
    names.add(name);
    if (type === 'histogram' || type === 'summary')
      for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
  }
  return names;
}

function promtool(...args: string[]): { status: number | null; output: string } {
  const result = spawnSync('promtool', args, { encoding: 'utf8' });
  if (result.error)
    throw new Error('promtool is missing: `npm test` installs it (scripts/system-deps.sh, package prometheus)');
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('the Grafana dashboard', () => {
  let gateway: TestGateway;
  let scrape: string;
  beforeAll(async () => {
    gateway = await startTestGateway();
    scrape = await (await fetch(`${gateway.url}/metrics`)).text();
  });
  afterAll(() => gateway.close());

  it('queries only metrics that /metrics exports', () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] };
    const queries = panelQueries(dashboard.panels);
    expect(queries.length).toBeGreaterThan(20);
    const names = exported(scrape);
    const missing = queries.flatMap(({ title, expr }) =>
      metricNames(expr)
        .filter((name) => !names.has(name))
        .map((name) => `${title}: ${name}`),
    );
    expect(missing).toEqual([]);
    // Each area the dashboard promises has a panel.
    const all = queries.map(({ expr }) => expr).join('\n');
    for (const metric of [
      'switchboard_connected_sockets',
      'switchboard_handshakes_total',
      'switchboard_deliveries_total',
      'switchboard_recoveries_total',
      'switchboard_redis_up',
      'nodejs_eventloop_lag_p99_seconds',
    ])
      expect(all).toContain(metric);
  });
});

describe('the alert rules', () => {
  it('pass promtool check rules', () => {
    const { status, output } = promtool('check', 'rules', RULES);
    expect(status, output).toBe(0);
    expect(output).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('pass their unit tests (promtool test rules): Redis down, and a replica far off the others', () => {
    const { status, output } = promtool('test', 'rules', RULE_TESTS);
    expect(status, output).toBe(0);
    const tested = parse(readFileSync(RULE_TESTS, 'utf8')) as {
      tests: Array<{ alert_rule_test: Array<{ alertname: string }> }>;
    };
    const names = new Set(tested.tests.flatMap((test) => test.alert_rule_test.map((rule) => rule.alertname)));
    expect([...names]).toEqual(expect.arrayContaining(['SwitchboardRedisDown', 'SwitchboardConnectionImbalance']));
  });

  it('each have a runbook in docs/operations.md', () => {
    const rules = parse(readFileSync(RULES, 'utf8')) as {
      groups: Array<{ rules: Array<{ alert: string; annotations: { runbook: string } }> }>;
    };
    const operations = readFileSync(`${ROOT}docs/operations.md`, 'utf8');
    for (const rule of rules.groups.flatMap((group) => group.rules)) {
      expect(rule.annotations.runbook).toBe(`docs/operations.md#${rule.alert.toLowerCase()}`);
      expect(operations, rule.alert).toContain(`### ${rule.alert}`);
    }
  });
});

describe('the kustomize monitoring component', () => {
  it('carries current copies of the dashboard and the rules (npm run monitoring:sync)', () => {
    for (const [path, text] of Object.entries(monitoringCopies())) {
      const shipped = readFileSync(path, 'utf8');
      // Compared as data: the formatter may lay the copies out differently.
      const read = (source: string): unknown => (path.endsWith('.json') ? JSON.parse(source) : parse(source));
      expect(read(shipped), `${path} is stale: run npm run monitoring:sync`).toEqual(read(text));
    }
  });
});
