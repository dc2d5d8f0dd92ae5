/**
 * Writes the kustomize monitoring component's copies of the shipped dashboard and alert
 * rules (kustomize reads files only below a component's own folder):
 *
 *   npm run monitoring:sync
 *
 * deploy/grafana/switchboard.json and deploy/prometheus/alerts.yml are the sources; the
 * deploy-files test fails when the copies in k8s/components/monitoring are out of date.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import { parse, stringify } from 'yaml';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const COMPONENT = `${ROOT}k8s/components/monitoring/`;

/** The files of the component that are derived from deploy/, by path, with their text. */
export function monitoringCopies(): Record<string, string> {
  const rules = parse(readFileSync(`${ROOT}deploy/prometheus/alerts.yml`, 'utf8')) as { groups: unknown[] };
  const rule = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: {
      name: 'switchboard-gateway',
      labels: { 'app.kubernetes.io/name': 'switchboard', 'app.kubernetes.io/component': 'gateway' },
    },
    spec: { groups: rules.groups },
  };
  return {
    [`${COMPONENT}prometheusrule.yaml`]:
      '# Generated from deploy/prometheus/alerts.yml by `npm run monitoring:sync`; edit that file instead.\n' +
      stringify(rule, { lineWidth: 0 }),
    [`${COMPONENT}switchboard.json`]: readFileSync(`${ROOT}deploy/grafana/switchboard.json`, 'utf8'),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const [path, text] of Object.entries(monitoringCopies())) {
    // Laid out as the formatter check in `npm test` expects.
    writeFileSync(path, await format(text, { ...(await resolveConfig(path)), filepath: path }));
    console.log(`wrote ${path.slice(ROOT.length)}`);
  }
}
