// What Prometheus reads from a relay node: signet_ready as /readyz would answer
// at scrape time, and the counters alerts read with increase() present at 0
// before their first event.
import { expect } from 'chai';
import { EventEmitter } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { loadOrgFolder, type OrgConfig } from '../../appliance/src/config';
import { createEngine } from '../../appliance/src/signature';
import { createLogger, createMetrics } from '../../appliance/src/observability';
import { parseRelayConfig } from '../../appliance/src/smtp';
import { startRelayNode, type OrgSourceLike, type RelayNode } from '../../appliance/src/smtp/node';
import { startSink, type DevSink } from '../../appliance/src/smtp/dev/sink';
import { testPki, writePemFiles } from '../support/certs';

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
  it('exports the config-refused and client-certificate counters at 0 before the first event, so increase() sees the first one', async () => {
    const text = await createMetrics({ processMetrics: false }).registry.metrics();
    for (const result of ['loaded', 'refused', 'unchanged']) expect(sample(text, 'signet_config_reloads_total', { result }), result).to.equal(0);
    for (const reason of ['handshake', 'no-certificate', 'untrusted', 'expired', 'not-yet-valid', 'name-mismatch', 'invalid']) {
      expect(sample(text, 'signet_tls_errors_total', { reason }), reason).to.equal(0);
    }
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
  const nodes: RelayNode[] = [];
  let sink: DevSink;
  let files: ReturnType<typeof writePemFiles>;
  let org: OrgConfig;

  function staticSource(config: OrgConfig | undefined): OrgSourceLike {
    const emitter = new EventEmitter();
    return { start: async () => undefined, stop: () => undefined, current: () => config, on: (e, l) => emitter.on(e, l) };
  }

  async function startNode(downstreamPort: number, config: OrgConfig | undefined): Promise<RelayNode> {
    const relayConfig = parseRelayConfig(
      {
        hostname: 'relay.test.invalid',
        listen: [{ host: '127.0.0.1', port: 0 }],
        tls: { cert: 'server.crt', key: 'server.key', ca: 'ca.crt' },
        downstream: { host: '127.0.0.1', port: downstreamPort, tls: { cert: 'client.crt', key: 'client.key', ca: 'ca.crt', servername: 'sink.test.invalid' }, probeSeconds: 3600 },
        limits: { drainSeconds: 5 },
        http: { listen: '127.0.0.1', port: 0 },
        org: { source: 'unused' },
      },
      'test',
      files.dir,
    );
    const node = await startRelayNode(relayConfig, {
      createEngine: (options) => createEngine({ org: options.org, directory: options.directory }),
      orgSource: staticSource(config),
      directory: () => undefined,
      metrics: createMetrics({ processMetrics: false }),
      logger: createLogger({ level: 'silent' }),
    });
    nodes.push(node);
    await node.probe();
    return node;
  }

  before(async () => {
    org = await loadOrgFolder(join(ROOT, 'config/examples/contoso'));
    const pki = await testPki();
    sink = await startSink({ key: pki.sinkServer.key, cert: pki.sinkServer.cert, clientCa: pki.ca.cert });
    files = writePemFiles({ 'server.crt': pki.relayServer.cert, 'server.key': pki.relayServer.key, 'ca.crt': pki.ca.cert, 'client.crt': pki.relayClient.cert, 'client.key': pki.relayClient.key });
  });

  after(async () => {
    for (const node of nodes) await node.stop();
    await sink.close();
    files.cleanup();
  });

  it('is what /readyz would answer at scrape time, whether or not anything asked /readyz before', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));

    const ready = await startNode(sink.port, org);
    const cut = await startNode(deadPort, org);
    const empty = await startNode(sink.port, undefined);
    // Nothing has called /readyz on any of them: Prometheus scrapes /metrics only.
    expect(sample(await scrapeMetrics(ready.httpPort), 'signet_ready')).to.equal(1);
    expect(sample(await scrapeMetrics(cut.httpPort), 'signet_ready')).to.equal(0);
    expect(sample(await scrapeMetrics(empty.httpPort), 'signet_ready')).to.equal(0);

    // A node whose state changes says so at the next scrape, not at the next health probe.
    expect(empty.applyOrg(org)).to.equal(true);
    expect(sample(await scrapeMetrics(empty.httpPort), 'signet_ready')).to.equal(1);
  });
});
