import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CONFIG_RELOAD_RESULTS } from '../../appliance/src/config/source';
import { createMetrics, type Outcome } from '../../appliance/src/observability';
import { DOWNSTREAM_ERROR_REASONS, MESSAGE_REASONS, RECIPIENT_REFUSALS, TLS_ERROR_REASONS } from '../../appliance/src/smtp/outcomes';
import { SESSION_REFUSALS } from '../../appliance/src/smtp/relay';

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
  targets?: Array<{ refId: string; expr: string; datasource?: { type: string; uid: string } }>;
  fieldConfig?: {
    defaults?: { unit?: string };
    overrides?: Array<{ matcher: { id: string; options: string }; properties: Array<{ id: string; value: unknown }> }>;
  };
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

interface MetricFacts {
  type: string;
  labels: Set<string>;
  /** Label values a relay can export, for the labels whose values are a closed set. */
  values: Map<string, Set<string>>;
}

// Every outcome (the Record makes the compiler check the list against the type).
const OUTCOMES: Record<Outcome, true> = { signed: true, passed: true, rejected: true, tempfailed: true, abandoned: true };
const CLOSED_VALUES: Record<string, Record<string, string[]>> = {
  signet_messages_total: { outcome: Object.keys(OUTCOMES), reason: Object.values(MESSAGE_REASONS).flat() },
  signet_engine_duration_seconds: { outcome: Object.keys(OUTCOMES) },
  signet_transaction_duration_seconds: { outcome: Object.keys(OUTCOMES) },
  signet_message_size_bytes: { direction: ['in', 'out'] },
  signet_certificate_expiry_timestamp_seconds: { certificate: ['server', 'downstream-client', 'upstream-client'] },
  signet_certificate_reloads_total: { certificate: ['server', 'downstream-client'], result: ['reloaded', 'refused'] },
  signet_certificate_refused: { certificate: ['server', 'downstream-client'] },
  signet_directory_last_sync_timestamp_seconds: { source: ['graph', 'file'] },
  signet_directory_users: { source: ['graph', 'file'] },
  signet_directory_syncs_total: { source: ['graph', 'file'], result: ['ok', 'failed'] },
  // the lists the relay and the org source export at 0 (their types come from them)
  signet_tls_errors_total: { reason: [...TLS_ERROR_REASONS] },
  signet_downstream_errors_total: { reason: [...DOWNSTREAM_ERROR_REASONS] },
  signet_recipients_refused_total: { outcome: [...new Set(RECIPIENT_REFUSALS.map(([outcome]) => outcome))], reason: [...new Set(RECIPIENT_REFUSALS.map(([, reason]) => reason))] },
  signet_sessions_refused_total: { reason: [...SESSION_REFUSALS] },
  signet_config_reloads_total: { result: [...CONFIG_RELOAD_RESULTS] },
};


/** Type, label names and known label values of every metric a relay exports (histograms also as _bucket/_sum/_count). */
async function exposedMetrics(): Promise<Map<string, MetricFacts>> {
  const { registry } = createMetrics();
  const facts = new Map<string, MetricFacts>();
  for (const metric of await registry.getMetricsAsJSON()) {
    const base = metric.name;
    const labels = new Set<string>(((registry.getSingleMetric(base) as unknown as { labelNames?: string[] }).labelNames ?? []));
    const values = new Map<string, Set<string>>();
    for (const [label, list] of Object.entries(CLOSED_VALUES[base] ?? {})) values.set(label, new Set(list));
    const type = String(metric.type);
    if (type === 'histogram') {
      facts.set(`${base}_bucket`, { type: 'counter', labels: new Set([...labels, 'le']), values });
      facts.set(`${base}_sum`, { type: 'counter', labels, values });
      facts.set(`${base}_count`, { type: 'counter', labels, values });
    } else {
      facts.set(base, { type, labels, values });
    }
  }
  return facts;
}

/**
 * Problems with how a PromQL expression uses Signet metrics: label names a metric
 * does not have, label values it never takes, rate()/increase() of a gauge, and
 * grouping by a label none of its metrics has.
 */
function misuses(expr: string, exposed: Map<string, MetricFacts>): string[] {
  const problems: string[] = [];
  const target = ['instance', 'job'];
  const used = relayMetricsIn(expr);
  for (const m of expr.matchAll(new RegExp(`${RELAY_METRIC.source}\\s*(?:\\{([^}]*)\\})?`, 'g'))) {
    const [, name, selector] = m as unknown as [string, string, string | undefined];
    const facts = exposed.get(name);
    if (!facts) {
      problems.push(`${name} is not exported`);
      continue;
    }
    for (const matcher of (selector ?? '').matchAll(/([a-zA-Z_]+)\s*(=~|!~|!=|=)\s*"([^"]*)"/g)) {
      const [, label, op, value] = matcher as unknown as [string, string, string, string];
      if (!facts.labels.has(label) && !target.includes(label)) problems.push(`${name} has no label ${label}`);
      const known = facts.values.get(label);
      if (!known || value.includes('$')) continue;
      const wanted = op.endsWith('~') ? value.split('|') : [value];
      for (const w of wanted) if (!known.has(w)) problems.push(`${name}{${label}} is never ${JSON.stringify(w)} (exported: ${[...known].join(', ')})`);
    }
  }
  for (const m of expr.matchAll(new RegExp(`\\b(?:rate|irate|increase)\\(\\s*${RELAY_METRIC.source}`, 'g'))) {
    const facts = exposed.get(m[1]!);
    if (facts && facts.type !== 'counter') problems.push(`${m[0]}: ${m[1]} is a ${facts.type}, not a counter`);
  }
  const labelsOfExpr = new Set([...target, ...used.flatMap((n) => [...(exposed.get(n)?.labels ?? [])])]);
  for (const m of expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) {
    for (const label of m[1]!.split(',').map((l) => l.trim()).filter(Boolean)) {
      if (!labelsOfExpr.has(label)) problems.push(`grouping by ${label}, which none of ${used.join(', ')} has`);
    }
  }
  return problems;
}

/** A metric the relay exports: Signet's own and prom-client's process and Node.js metrics. */
const RELAY_METRIC = /\b((?:signet|process|nodejs)_[a-z0-9_]+)\b/;

// Identifiers in a PromQL expression that name metrics the relay exports.
function relayMetricsIn(expr: string): string[] {
  return [...expr.matchAll(new RegExp(RELAY_METRIC.source, 'g'))].map((m) => m[1]!);
}

const alertRules = (): AlertRule[] =>
  (parseYaml(readFileSync(ALERTS, 'utf8')) as { groups: Array<{ rules: AlertRule[] }> }).groups.flatMap((g) => g.rules);
const dashboard = () => JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[]; templating: { list: Array<{ name: string; type: string; query?: unknown }> }; __inputs: Array<{ name: string; pluginId: string }> };

describe('monitoring: Prometheus alert rules', () => {
  it('has the alerts operators need, each with severity, summary, description and a runbook link', () => {
    const rules = alertRules();
    const names = rules.map((r) => r.alert);
    for (const name of [
      'SignetTempfailsRising',
      'SignetRejectsRising',
      'SignetNodeNotReady',
      'SignetAtCapacity',
      'SignetNodeBusy',
      'SignetNodeDown',
      'SignetNotScraped',
      'SignetDownstreamUnreachable',
      'SignetClientCertificateRefused',
      'SignetCertificateExpiringSoon',
      'SignetCertificateExpiringCritical',
      'SignetConfigReloadFailing',
      'SignetTemplateFailing',
      'SignetDirectorySyncStale',
      'SignetNoMailProcessed',
      'SignetWatchdog',
    ]) {
      expect(names).to.include(name);
    }
    for (const rule of rules) {
      // severity none: the watchdog alone, which pages nobody (it goes to a dead man's switch)
      expect(rule.labels?.severity, rule.alert).to.be.oneOf(rule.alert === 'SignetWatchdog' ? ['none'] : ['warning', 'critical']);
      expect(rule.annotations?.summary, rule.alert).to.be.a('string').and.not.equal('');
      expect(rule.annotations?.description, rule.alert).to.be.a('string').and.not.equal('');
      expect(rule.annotations?.runbook_url, rule.alert).to.match(/^runbooks\/[a-z0-9-]+\.md$/);
    }
    const cert = rules.find((r) => r.alert === 'SignetCertificateExpiringSoon')!;
    expect(cert.expr).to.include('21 * 86400');
    // the cause is in the text, not in the alert's identity (a new cause must not restart `for:`)
    const downstream = rules.find((r) => r.alert === 'SignetDownstreamUnreachable')!;
    expect(downstream.expr).to.match(/without \(cause\)/);
    expect(downstream.annotations!.summary).to.include('.Labels.cause');
  });

  it('has a watchdog that always fires, without delay, for a dead man\'s switch (silence: the monitoring itself is down)', () => {
    const watchdog = alertRules().find((r) => r.alert === 'SignetWatchdog')!;
    expect(watchdog.expr.trim()).to.equal('vector(1)');
    expect(watchdog.for, 'a for: would delay the heartbeat after every restart').to.equal(undefined);
    expect(watchdog.labels).to.deep.equal({ severity: 'none' });
    expect(watchdog.annotations!.description).to.match(/dead man's switch/).and.match(/Alertmanager/).and.match(/heartbeat/);
    // no other rule is always on: only the watchdog may be routed to the heartbeat service
    expect(alertRules().filter((r) => /^\s*vector\(\s*1\s*\)\s*$/.test(r.expr)).map((r) => r.alert)).to.deep.equal(['SignetWatchdog']);
  });

  it('selects only label names and values the relay exports, rates only counters, groups only by labels that exist', async () => {
    const exposed = await exposedMetrics();
    for (const rule of alertRules()) expect(misuses(rule.expr, exposed), rule.alert).to.deep.equal([]);
    // the check itself finds what it is for
    expect(misuses('rate(signet_messages_total{outcome="tempfail"}[5m])', exposed)).to.have.length(1);
    expect(misuses('rate(signet_active_sessions[5m])', exposed)).to.have.length(1);
    expect(misuses('rate(process_resident_memory_bytes[5m])', exposed)).to.have.length(1);
    expect(misuses('process_cpu_seconds_total{reason="x"}', exposed)).to.have.length(1);
    expect(misuses('sum by (cause) (rate(signet_downstream_errors_total[5m]))', exposed)).to.have.length(1);
    expect(misuses('signet_tls_errors_total{reason="bad-cert"}', exposed)).to.have.length(1);
    expect(misuses('signet_config_info{tenant="x"}', exposed)).to.have.length(1);
  });

  it('queries only metrics the relay exposes', async () => {
    const exposed = await exposedMetricNames();
    for (const rule of alertRules()) {
      for (const name of relayMetricsIn(rule.expr)) expect(exposed.has(name), `${rule.alert}: ${name}`).to.equal(true);
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
    for (const name of ['SignetTempfailsRising', 'SignetRejectsRising', 'SignetNodeNotReady', 'SignetDownstreamUnreachable', 'SignetClientCertificateRefused', 'SignetConfigReloadFailing', 'SignetTemplateFailing', 'SignetDirectorySyncStale', 'SignetNoMailProcessed']) {
      expect(cases.some((c) => c.alertname === name && c.exp_alerts.length === 0), `${name} not-firing case`).to.equal(true);
    }
    const r = spawnSync('promtool', ['test', 'rules', ALERT_TESTS], { encoding: 'utf8', cwd: join(ROOT, 'monitoring/prometheus') });
    expect(r.status, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout + r.stderr).to.include('SUCCESS');
  });

  /** promtool's result for the alert unit tests run against the rules with `from` replaced by `to` (which must be in them). */
  function promtoolWithRuleChanged(from: string, to: string): { status: number | null; output: string } {
    const rules = readFileSync(ALERTS, 'utf8');
    expect(rules).to.include(from);
    const dir = mkdtempSync(join(tmpdir(), 'signet-alerts-'));
    try {
      writeFileSync(join(dir, 'alerts.yaml'), rules.replace(from, to));
      writeFileSync(join(dir, 'alerts.test.yaml'), readFileSync(ALERT_TESTS, 'utf8'));
      const r = spawnSync('promtool', ['test', 'rules', 'alerts.test.yaml'], { encoding: 'utf8', cwd: dir });
      return { status: r.status, output: r.stdout + r.stderr };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('promtool test rules fails when an expected alert does not fire (the unit tests can fail)', function () {
    if (!hasPromtool) this.skip();
    this.timeout(120_000);
    const r = promtoolWithRuleChanged('expr: signet_ready == 0', 'expr: signet_ready == 2');
    expect(r.status).to.not.equal(0);
    expect(r.output).to.include('SignetNodeNotReady');
  });

  it('promtool test rules fails when the watchdog stops firing', function () {
    if (!hasPromtool) this.skip();
    this.timeout(120_000);
    const r = promtoolWithRuleChanged('expr: vector(1)', 'expr: vector(1) == 0');
    expect(r.status).to.not.equal(0);
    expect(r.output).to.include('SignetWatchdog');
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
    for (const wanted of ['throughput by outcome', 'latency percentiles', 'tempfail and reject rate', 'downstream errors', 'tls errors', 'active sessions', 'config version per node', 'directory sync age', 'certificate expiry', 'relay thread busy', 'relay memory']) {
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
        const names = relayMetricsIn(target.expr);
        expect(names.length, `${panel.title}: ${target.expr}`).to.be.greaterThan(0);
        for (const name of names) {
          count++;
          expect(exposed.has(name), `${panel.title}: ${name} is not exposed by createMetrics()`).to.equal(true);
        }
      }
    }
    expect(count).to.be.greaterThan(15);
  });

  it('selects only label names and values the relay exports, rates only counters, groups only by labels that exist', async () => {
    const exposed = await exposedMetrics();
    for (const panel of dashboard().panels) {
      for (const target of panel.targets ?? []) expect(misuses(target.expr, exposed), `${panel.title}: ${target.expr}`).to.deep.equal([]);
    }
  });

  it('gives each series a unit that fits it (seconds for durations and ages, bytes for sizes)', () => {
    let checked = 0;
    for (const panel of dashboard().panels) {
      for (const target of panel.targets ?? []) {
        const override = panel.fieldConfig?.overrides?.find((o) => o.matcher.id === 'byFrameRefID' && o.matcher.options === target.refId);
        const unit = (override?.properties.find((p) => p.id === 'unit')?.value as string | undefined) ?? panel.fieldConfig?.defaults?.unit;
        const names = relayMetricsIn(target.expr);
        if (unit === 's') {
          checked++;
          for (const name of names) expect(name, `${panel.title} (${target.refId}): ${name} shown in seconds`).to.match(/_seconds(_bucket)?$/);
        }
        if (unit === 'bytes') {
          checked++;
          for (const name of names) expect(name, `${panel.title} (${target.refId}): ${name} shown in bytes`).to.match(/_bytes(_bucket)?$/);
        }
      }
    }
    expect(checked).to.be.greaterThan(4);
  });

  it('shows an age only for timestamps that are set (0 means "not yet", not 1970)', () => {
    for (const panel of dashboard().panels) {
      for (const target of panel.targets ?? []) {
        for (const m of target.expr.matchAll(/time\(\) - (signet_[a-z_]+_timestamp_seconds)\b/g)) {
          expect(target.expr, `${panel.title}: ${target.expr}`).to.match(new RegExp(`and ${m[1]}\\{[^}]*\\} > 0`));
        }
      }
    }
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
