// signet status against real relay nodes on loopback: the relay's own HTTP
// side (/readyz with reasons, /metrics from its registry), a real SMTP
// transaction with the example organization's engine during the interval, and
// a node whose downstream refuses connections.
import { expect } from 'chai';
import { EventEmitter } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { loadOrgFolder, type OrgConfig } from '../../appliance/src/config';
import { loadDirectoryFile, type DirectorySnapshot } from '../../appliance/src/directory';
import { collectStatus } from '../../appliance/src/fleet';
import { createLogger, createMetrics } from '../../appliance/src/observability';
import { createEngine } from '../../appliance/src/signature';
import { parseRelayConfig } from '../../appliance/src/smtp';
import { startRelayNode, type OrgSourceLike, type RelayNode } from '../../appliance/src/smtp/node';
import { startSink, type DevSink } from '../../appliance/src/smtp/dev/sink';
import { testPki, writePemFiles } from '../support/certs';
import { sampleMessage, send } from '../smtp/support/harness';

const ROOT = resolve(__dirname, '../..');

function staticSource(org: OrgConfig): OrgSourceLike {
  const emitter = new EventEmitter();
  return { start: async () => undefined, stop: () => undefined, current: () => org, on: (e, l) => emitter.on(e, l) };
}

describe('fleet: signet status against running relay nodes', function () {
  this.timeout(60_000);
  const nodes: RelayNode[] = [];
  let sink: DevSink;
  let files: ReturnType<typeof writePemFiles>;
  let org: OrgConfig;
  let directory: DirectorySnapshot;

  async function startNode(downstreamPort: number): Promise<RelayNode> {
    const config = parseRelayConfig(
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
    const node = await startRelayNode(config, {
      createEngine: (options) => createEngine({ org: options.org, directory: options.directory }),
      orgSource: staticSource(org),
      directory: () => directory,
      metrics: createMetrics({ processMetrics: false }),
      logger: createLogger({ level: 'silent' }),
    });
    nodes.push(node);
    await node.probe();
    return node;
  }

  before(async () => {
    org = await loadOrgFolder(join(ROOT, 'config/examples/contoso'));
    directory = await loadDirectoryFile(join(ROOT, 'config/examples/contoso/directory.yaml'));
    const pki = await testPki();
    sink = await startSink({ key: pki.sinkServer.key, cert: pki.sinkServer.cert, clientCa: pki.ca.cert });
    files = writePemFiles({ 'server.crt': pki.relayServer.cert, 'server.key': pki.relayServer.key, 'ca.crt': pki.ca.cert, 'client.crt': pki.relayClient.cert, 'client.key': pki.relayClient.key });
  });

  after(async () => {
    for (const node of nodes) await node.stop();
    await sink.close();
    files.cleanup();
  });

  it('reports a ready node with its config, certificate and the message it relayed, and a node that cannot reach Exchange Online', async () => {
    const healthy = await startNode(sink.port);
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const cut = await startNode(deadPort);
    const pki = await testPki();

    const [one, two] = await collectStatus(
      [
        { name: 'node0', url: `http://127.0.0.1:${healthy.httpPort}` },
        { name: 'node1', url: `http://127.0.0.1:${cut.httpPort}` },
      ],
      {
        intervalSeconds: 1,
        // One real message through node0 during the interval.
        sleep: async () => {
          const result = await send(healthy.smtpPorts[0]!, pki.exoClient, {
            from: 'tom.okafor@contoso.com',
            to: ['buyer@fabrikam.com'],
            raw: sampleMessage({ from: 'tom.okafor@contoso.com', to: ['buyer@fabrikam.com'] }),
          });
          expect(result.ok, result.response).to.equal(true);
        },
      },
    );
    expect(one).to.include({ ready: true, reachable: true, configOrg: 'contoso', configVersion: org.version, messages: 1, tempfails: 0, downstreamErrors: 0 });
    expect(one!.certificateExpiry!.getTime()).to.be.greaterThan(Date.now());
    expect(two).to.include({ ready: false, reachable: true, reason: 'downstream unreachable: refused' });
    expect(two!.downstreamDown).to.deep.equal(['refused']);
    expect(sink.messages.length).to.be.greaterThan(0);
  });
});
