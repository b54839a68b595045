import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { createMetrics } from '../../appliance/src/observability';

const ROOT = resolve(__dirname, '../..');
const ALERTS = join(ROOT, 'monitoring/prometheus/alerts.yaml');
const ALERT_TESTS = join(ROOT, 'monitoring/prometheus/alerts.test.yaml');
const DASHBOARD = join(ROOT, 'monitoring/grafana/signet-dashboard.json');

const hasPromtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: Array<{ expr: string; datasource?: { type: string; uid: string } }>;
}

/** Metric names in the exposition of a fresh registry (histograms as their _bucket/_sum/_count series). */
async function exposedMetricNames(): Promise<Set<string>> {
  const text = await createMetrics().registry.metrics();
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (!m) continue;
    const [, name, type] = m as unknown as [string, string, string];
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
    else names.add(name);
  }
  return names;
}

// Identifiers in a PromQL expression that name Signet metrics.
function signetMetricsIn(expr: string): string[] {
  return [...expr.matchAll(/\bsignet_[a-z0-9_]+\b/g)].map((m) => m[0]);
}

const alertRules = (): AlertRule[] =>
  (parseYaml(readFileSync(ALERTS, 'utf8')) as { groups: Array<{ rules: AlertRule[] }> }).groups.flatMap((g) => g.rules);
const dashboard = () => JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[]; templating: { list: Array<{ name: string; type: string; query?: unknown }> }; __inputs: Array<{ name: string; pluginId: string }> };

describe('monitoring: Prometheus alert rules', () => {
  it('has the alerts operators need, each with severity, summary, description and a runbook link', () => {
    const rules = alertRules();
    const names = rules.map((r) => r.alert);
    for (const name of ['SignetTempfailsRising', 'SignetNodeNotReady', 'SignetDownstreamUnreachable', 'SignetCertificateExpiringSoon', 'SignetConfigReloadFailing', 'SignetDirectorySyncStale', 'SignetNoMailProcessed']) {
      expect(names).to.include(name);
    }
    for (const rule of rules) {
      expect(rule.labels?.severity, rule.alert).to.be.oneOf(['warning', 'critical']);
      expect(rule.annotations?.summary, rule.alert).to.be.a('string').and.not.equal('');
      expect(rule.annotations?.description, rule.alert).to.be.a('string').and.not.equal('');
      expect(rule.annotations?.runbook_url, rule.alert).to.match(/^runbooks\/[a-z0-9-]+\.md$/);
    }
    const cert = rules.find((r) => r.alert === 'SignetCertificateExpiringSoon')!;
    expect(cert.expr).to.include('21 * 86400');
    expect(rules.find((r) => r.alert === 'SignetDownstreamUnreachable')!.annotations!.summary).to.include('{{ $labels.cause }}');
  });

  it('queries only metrics the relay exposes', async () => {
    const exposed = await exposedMetricNames();
    for (const rule of alertRules()) {
      for (const name of signetMetricsIn(rule.expr)) expect(exposed.has(name), `${rule.alert}: ${name}`).to.equal(true);
    }
  });

  it('passes promtool check rules', function () {
    if (!hasPromtool) this.skip();
    const r = spawnSync('promtool', ['check', 'rules', ALERTS], { encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).to.equal(0);
  });

  it('passes its unit tests (promtool test rules): every alert fires when it should and not otherwise', function () {
    if (!hasPromtool) this.skip();
    this.timeout(120_000);
    const tests = parseYaml(readFileSync(ALERT_TESTS, 'utf8')) as { tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }> };
    const cases = tests.tests.flatMap((t) => t.alert_rule_test);
    for (const rule of alertRules()) {
      expect(cases.some((c) => c.alertname === rule.alert && c.exp_alerts.length > 0), `${rule.alert} firing case`).to.equal(true);
    }
    for (const name of ['SignetTempfailsRising', 'SignetNodeNotReady', 'SignetDownstreamUnreachable', 'SignetConfigReloadFailing', 'SignetDirectorySyncStale', 'SignetNoMailProcessed']) {
      expect(cases.some((c) => c.alertname === name && c.exp_alerts.length === 0), `${name} not-firing case`).to.equal(true);
    }
    const r = spawnSync('promtool', ['test', 'rules', ALERT_TESTS], { encoding: 'utf8', cwd: join(ROOT, 'monitoring/prometheus') });
    expect(r.status, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout + r.stderr).to.include('SUCCESS');
  });

  it('promtool test rules fails when an expected alert does not fire (the unit tests can fail)', function () {
    if (!hasPromtool) this.skip();
    this.timeout(120_000);
    const dir = mkdtempSync(join(tmpdir(), 'signet-alerts-'));
    try {
      writeFileSync(join(dir, 'alerts.yaml'), readFileSync(ALERTS, 'utf8').replace('expr: signet_ready == 0', 'expr: signet_ready == 2'));
      writeFileSync(join(dir, 'alerts.test.yaml'), readFileSync(ALERT_TESTS, 'utf8'));
      const r = spawnSync('promtool', ['test', 'rules', 'alerts.test.yaml'], { encoding: 'utf8', cwd: dir });
      expect(r.status).to.not.equal(0);
      expect(r.stdout + r.stderr).to.include('SignetNodeNotReady');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('monitoring: Grafana dashboard', () => {
  it('takes its data source from the DS_PROMETHEUS template variable in every panel and query', () => {
    const d = dashboard();
    expect(d.__inputs.map((i) => [i.name, i.pluginId])).to.deep.include(['DS_PROMETHEUS', 'prometheus']);
    const variable = d.templating.list.find((v) => v.name === 'DS_PROMETHEUS');
    expect(variable?.type).to.equal('datasource');
    const panels = d.panels.filter((p) => p.type !== 'row');
    expect(panels.length).to.be.greaterThan(10);
    for (const panel of panels) {
      expect(panel.datasource, panel.title).to.deep.equal({ type: 'prometheus', uid: '${DS_PROMETHEUS}' });
      expect(panel.targets?.length, panel.title).to.be.greaterThan(0);
      for (const target of panel.targets ?? []) expect(target.datasource, panel.title).to.deep.equal({ type: 'prometheus', uid: '${DS_PROMETHEUS}' });
    }
    expect(new Set(d.panels.map((p) => p.id)).size).to.equal(d.panels.length);
  });

  it('has the panels operators look at', () => {
    const titles = dashboard().panels.map((p) => p.title.toLowerCase());
    for (const wanted of ['throughput by outcome', 'latency percentiles', 'tempfail and reject rate', 'downstream errors', 'tls errors', 'active sessions', 'config version per node', 'directory sync age', 'certificate expiry']) {
      expect(titles.some((t) => t.includes(wanted)), wanted).to.equal(true);
    }
    const latency = dashboard().panels.find((p) => p.title.toLowerCase().includes('latency'))!;
    for (const t of latency.targets!) expect(t.expr).to.match(/histogram_quantile\(0\.\d+, sum by \(le\) \(rate\(signet_[a-z_]+_bucket/);
  });

  it('queries only metrics in the relay\'s /metrics output', async () => {
    const exposed = await exposedMetricNames();
    let count = 0;
    for (const panel of dashboard().panels) {
      for (const target of panel.targets ?? []) {
        const names = signetMetricsIn(target.expr);
        expect(names.length, `${panel.title}: ${target.expr}`).to.be.greaterThan(0);
        for (const name of names) {
          count++;
          expect(exposed.has(name), `${panel.title}: ${name} is not exposed by createMetrics()`).to.equal(true);
        }
      }
    }
    expect(count).to.be.greaterThan(15);
  });

  it('every query is valid PromQL (checked by promtool as recording rules, Grafana variables substituted)', function () {
    if (!hasPromtool) this.skip();
    const rules = dashboard()
      .panels.flatMap((p) => p.targets ?? [])
      .map((t, i) => ({ record: `signet:dashboard_query_${i}`, expr: t.expr.replaceAll('$__rate_interval', '5m').replaceAll('$instance', '.*') }));
    const dir = mkdtempSync(join(tmpdir(), 'signet-dashboard-'));
    try {
      const file = join(dir, 'queries.yaml');
      writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboard', rules }] }));
      const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
      expect(r.status, r.stdout + r.stderr).to.equal(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
