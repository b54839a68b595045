// signet status against real relay nodes on loopback: the relay's own HTTP
// side (/readyz with reasons, /metrics from its registry), a real SMTP
// transaction with the example organization's engine during the interval, and
// a node whose downstream refuses connections.
import { expect } from 'chai';
import { join, resolve } from 'node:path';
import { loadOrgFolder, type OrgConfig } from '../../appliance/src/config';
import { loadDirectoryFile, type DirectorySnapshot } from '../../appliance/src/directory';
import { collectStatus } from '../../appliance/src/fleet';
import { testPki } from '../support/certs';
import { closedPort, startRelayNodes, type RelayNodes } from '../support/relay-nodes';
import { sampleMessage, send } from '../smtp/support/harness';

const ROOT = resolve(__dirname, '../..');

describe('fleet: signet status against running relay nodes', function () {
  this.timeout(60_000);
  let nodes: RelayNodes;
  let org: OrgConfig;
  let directory: DirectorySnapshot;

  before(async () => {
    org = await loadOrgFolder(join(ROOT, 'config/examples/contoso'));
    directory = await loadDirectoryFile(join(ROOT, 'config/examples/contoso/directory.yaml'));
    nodes = await startRelayNodes();
  });

  after(async () => {
    await nodes.close();
  });

  it('reports a ready node with its config, certificate and the message it relayed, and a node that cannot reach Exchange Online', async () => {
    const healthy = await nodes.start(nodes.sink.port, org, directory);
    const cut = await nodes.start(await closedPort(), org, directory);
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
    // the node exports its thread's busy seconds (here the test's own thread, busy sending, relaying and receiving)
    expect(one!.busy).to.be.greaterThan(0).and.at.most(1);
    expect(two).to.include({ ready: false, reachable: true, reason: 'downstream unreachable: refused' });
    expect(two!.downstreamDown).to.deep.equal(['refused']);
    expect(nodes.sink.messages.length).to.be.greaterThan(0);
  });
});
