// What Prometheus reads from a relay node: signet_ready as /readyz would answer
// at scrape time, and the counters alerts read with increase() present at 0
// before their first event.
import { expect } from 'chai';
import { join, resolve } from 'node:path';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { createOrgSource, loadOrgFolder, type OrgConfig } from '../../appliance/src/config';
import { createMetrics } from '../../appliance/src/observability';
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
