// What Prometheus reads from a relay node: signet_ready as /readyz would answer
// at scrape time, and every series of the fixed-label counters present at 0
// before its first event (rate() and increase() need a sample before it).
import { expect } from 'chai';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { createOrgSource, loadOrgFolder, type OrgConfig } from '../../appliance/src/config';
import { createMetrics } from '../../appliance/src/observability';
import { DOWNSTREAM_ERROR_REASONS, MESSAGE_REASONS, RECIPIENT_REFUSALS } from '../../appliance/src/smtp/outcomes';
import { closedPort, startRelayNodes, type RelayNodes } from '../support/relay-nodes';

const ROOT = resolve(__dirname, '../..');

function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const family = parsePrometheusTextFormat(text).find((f) => f.name === name);
  const s = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return s?.value === undefined ? undefined : Number(s.value);
}

async function scrapeMetrics(port: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(response.status).to.equal(200);
  return response.text();
}

describe('metrics: what a scrape of a fresh registry shows', () => {
  it('exports the config-reload counters at 0 once an org source exists, so increase() sees the first refusal', async () => {
    const metrics = createMetrics({ processMetrics: false });
    createOrgSource({ location: join(ROOT, 'config/examples/contoso'), pollSeconds: 0, metrics });
    const text = await metrics.registry.metrics();
    for (const result of ['loaded', 'refused', 'unchanged']) expect(sample(text, 'signet_config_reloads_total', { result }), result).to.equal(0);
  });

  it('says what the end-to-end histogram measures: from MAIL FROM (where the relay starts its clock) to the final answer', async () => {
    const { registry } = createMetrics({ processMetrics: false });
    const [family] = await registry.getMetricsAsJSON().then((all) => all.filter((m) => m.name === 'signet_transaction_duration_seconds'));
    expect(family?.help).to.match(/MAIL FROM/);
  });

  it("counts the relay thread's busy time, not the time that passes: rate() of it is the share of the thread in use", async () => {
    const { registry } = createMetrics({ processMetrics: false });
    const busy = async (): Promise<number> => sample(await registry.metrics(), 'signet_event_loop_busy_seconds_total')!;
    const before = await busy();
    const spinUntil = performance.now() + 200;
    while (performance.now() < spinUntil) {
      // the thread is busy: nothing else runs
    }
    const afterSpin = await busy();
    expect(afterSpin - before, '200 ms of work').to.be.within(0.19, 2);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await busy()) - afterSpin, '300 ms of waiting').to.be.below(0.25);
  });

  it('exports process metrics unless told not to', async () => {
    expect(sample(await createMetrics().registry.metrics(), 'process_resident_memory_bytes')).to.be.a('number');
    expect(sample(await createMetrics({ processMetrics: false }).registry.metrics(), 'process_resident_memory_bytes')).to.equal(undefined);
  });
});

describe('metrics: signet_ready on a running relay node', function () {
  this.timeout(60_000);
  let nodes: RelayNodes;
  let org: OrgConfig;

  before(async () => {
    org = await loadOrgFolder(join(ROOT, 'config/examples/contoso'));
    nodes = await startRelayNodes();
  });

  after(async () => {
    await nodes.close();
  });

  it('exports every client-certificate and session-refusal reason at 0 before the first event', async () => {
    const node = await nodes.start(nodes.sink.port, org);
    const text = await scrapeMetrics(node.httpPort);
    for (const reason of ['handshake', 'no-certificate', 'untrusted', 'expired', 'not-yet-valid', 'name-mismatch', 'invalid']) {
      expect(sample(text, 'signet_tls_errors_total', { reason }), reason).to.equal(0);
    }
    for (const reason of ['max-sessions', 'max-sessions-per-source', 'source-not-allowed', 'draining']) {
      expect(sample(text, 'signet_sessions_refused_total', { reason }), reason).to.equal(0);
    }
  });

  it('exports every message outcome and reason, downstream error and recipient refusal at 0, so the first of each counts in rate() and increase()', async () => {
    const node = await nodes.start(nodes.sink.port, org);
    const text = await scrapeMetrics(node.httpPort);
    const families = parsePrometheusTextFormat(text);
    const series = (name: string) => families.find((f) => f.name === name)?.metrics.map((m) => ({ labels: m.labels, value: Number(m.value) })) ?? [];
    const messages = series('signet_messages_total');
    for (const [outcome, reasons] of Object.entries(MESSAGE_REASONS)) {
      for (const reason of reasons) expect(messages.find((m) => m.labels?.outcome === outcome && m.labels?.reason === reason)?.value, `${outcome}/${reason}`).to.equal(0);
    }
    // the first tempfail of a kind the alerts read, and the ones operators ask about
    for (const reason of ['upstream-dropped', 'shutdown', 'downstream-timeout', 'no-tenant-header']) expect(sample(text, 'signet_messages_total', { outcome: 'tempfailed', reason }), reason).to.equal(0);
    expect(messages, 'no series beyond the known ones').to.have.length(Object.values(MESSAGE_REASONS).flat().length);
    for (const reason of ['timeout', 'address-refused', 'probe-port25-blocked']) expect(sample(text, 'signet_downstream_errors_total', { reason }), reason).to.equal(0);
    expect(series('signet_downstream_errors_total')).to.have.length(DOWNSTREAM_ERROR_REASONS.length);
    for (const [outcome, reason] of RECIPIENT_REFUSALS) expect(sample(text, 'signet_recipients_refused_total', { outcome, reason }), `${outcome}/${reason}`).to.equal(0);
  });

  it('is what /readyz would answer at scrape time, whether or not anything asked /readyz before', async () => {
    const ready = await nodes.start(nodes.sink.port, org);
    const cut = await nodes.start(await closedPort(), org);
    const empty = await nodes.start(nodes.sink.port, undefined);
    // Nothing has called /readyz on any of them: Prometheus scrapes /metrics only.
    expect(sample(await scrapeMetrics(ready.httpPort), 'signet_ready')).to.equal(1);
    expect(sample(await scrapeMetrics(cut.httpPort), 'signet_ready')).to.equal(0);
    expect(sample(await scrapeMetrics(empty.httpPort), 'signet_ready')).to.equal(0);

    // A node whose state changes says so at the next scrape, not at the next health probe.
    expect(empty.applyOrg(org)).to.equal(true);
    expect(sample(await scrapeMetrics(empty.httpPort), 'signet_ready')).to.equal(1);
  });
});
