// Stack config validation: a bad value stops the program before any resource
// is declared, with a message naming the key as it appears in the stack file.
import { expect } from 'chai';
import * as pulumi from '@pulumi/pulumi';
import { grafanaFrontDoorOrigin, grafanaFrontDoorWarning, loadStackConfig, parseStackConfig } from '../../infra/config';
import { createTenantStack } from '../../infra/stack';
import { failureOf, REPO_ROOT, runUnderMocks } from './support/harness';
import { exampleStackValues, fabrikam, placeholderArtifact, type ArtifactFixture } from './support/fixtures';

/** A relay cluster's node subnet (infra/k8s), in another resource group and network. */
const SUBSCRIPTION = '0f0e0d0c-0b0a-4909-8807-060504030201';
const AKS_SUBNET = `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-aks-westeurope/providers/Microsoft.Network/virtualNetworks/vnet-aks/subnets/aks-nodes`;

describe('infra: stack config validation', function () {
  let artifact: ArtifactFixture;
  before(() => { artifact = placeholderArtifact(); });
  after(() => artifact.cleanup());

  it('accepts the example stack file and fills the defaults', function () {
    const config = parseStackConfig(fabrikam(artifact.path));
    expect(config.tenantName).to.equal('fabrikam');
    expect(config.nodeCount).to.equal(2);
    expect(config.httpPort).to.equal(9025);
    expect(config.adminUsername).to.equal('signetops');
    expect(config.certificates).to.deep.equal({ mode: 'selfSigned', validityDays: 90 });
    expect(config.auditLogs).to.deep.equal({ retentionDays: 90 });
    expect(parseStackConfig(fabrikam(artifact.path, { auditLogs: { retentionDays: 365 } })).auditLogs.retentionDays).to.equal(365);
  });

  it('publishes Grafana through Front Door only with an origin certificate, and warns only when Front Door is asked for without one', function () {
    const monitoring = exampleStackValues().monitoring as Record<string, unknown>;
    const withMonitoring = (extra: Record<string, unknown>) => parseStackConfig(fabrikam(artifact.path, { monitoring: { ...monitoring, ...extra } }));
    const originCertificate = { certificateFile: 'certs/fabrikam/grafana-origin.pem' };
    const originHostName = 'grafana-origin.fabrikam.relay.signet-msp.example';
    // the example: a development stack, Front Door on, no origin certificate
    const example = parseStackConfig(fabrikam(artifact.path));
    expect(grafanaFrontDoorOrigin(example)).to.equal(undefined);
    expect(grafanaFrontDoorWarning(example)).to.match(/not published through Front Door/);
    const published = withMonitoring({ originHostName, originCertificate });
    expect(grafanaFrontDoorOrigin(published)).to.deep.equal({ hostName: originHostName, secretName: 'monitoring-tls', certificateFile: originCertificate.certificateFile });
    expect(grafanaFrontDoorWarning(published)).to.equal(undefined);
    // Front Door off, or no monitoring at all: nothing published, nothing to warn about
    for (const off of [{ frontDoor: false }, { enabled: false }, { frontDoor: false, originHostName, originCertificate }, { enabled: false, originHostName, originCertificate }]) {
      const config = withMonitoring(off);
      expect(grafanaFrontDoorOrigin(config), JSON.stringify(off)).to.equal(undefined);
      expect(grafanaFrontDoorWarning(config), JSON.stringify(off)).to.equal(undefined);
    }
  });

  it('accepts the operators\' private ranges (RFC 1918 and the shared 100.64.0.0/10 VPNs use), none by default', function () {
    expect(parseStackConfig(fabrikam(artifact.path)).privateOperatorRanges).to.deep.equal([]);
    const ranges = ['10.0.1.0/26', '172.16.201.0/24', '192.168.50.7', '100.100.0.0/16', '10.40.0.128/26'];
    expect(parseStackConfig(fabrikam(artifact.path, { privateOperatorRanges: ranges })).privateOperatorRanges).to.deep.equal(ranges);
    // a stack file that does not mention them gets the same default
    const { privateOperatorRanges: _omitted, ...rest } = fabrikam(artifact.path);
    expect(rest).to.not.have.property('privateOperatorRanges');
    expect(parseStackConfig(rest).privateOperatorRanges).to.deep.equal([]);
  });

  it('warns about the ranges only on the development stack\'s Front Door warning: set while Grafana is published, they still serve the nodes', function () {
    const monitoring = exampleStackValues().monitoring as Record<string, unknown>;
    const published = { originHostName: 'grafana-origin.fabrikam.relay.signet-msp.example', originCertificate: { certificateFile: 'certs/fabrikam/grafana-origin.pem' } };
    const stack = (extra: Record<string, unknown>, ranges: string[] = []) => parseStackConfig(fabrikam(artifact.path, { monitoring: { ...monitoring, ...extra }, privateOperatorRanges: ranges }));
    expect(grafanaFrontDoorWarning(stack(published, ['10.0.1.0/26']))).to.equal(undefined);
    expect(grafanaFrontDoorWarning(stack({ frontDoor: false }, ['10.0.1.0/26']))).to.equal(undefined);
    // the development stack's warning says how a private Grafana is reached, with or without ranges
    expect(grafanaFrontDoorWarning(stack({}))).to.match(/nothing reaches Grafana/).and.include('signet:privateOperatorRanges');
    expect(grafanaFrontDoorWarning(stack({}, ['10.0.1.0/26']))).to.include('signet:privateOperatorRanges only (10.0.1.0/26: a VPN, a Bastion or a jump host subnet)');
  });

  it('accepts a relay cluster\'s subnets by resource id, none by default', function () {
    expect(parseStackConfig(fabrikam(artifact.path)).clusterSubnetIds).to.deep.equal([]);
    expect(parseStackConfig(fabrikam(artifact.path, { clusterSubnetIds: [AKS_SUBNET] })).clusterSubnetIds).to.deep.equal([AKS_SUBNET]);
  });

  const privateRanges = (ranges: unknown) => ({ privateOperatorRanges: ranges });
  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    ['a public private-operator range (what it opens answers plain HTTP)', privateRanges(['10.0.1.0/26', '203.0.113.0/28']), 'signet:privateOperatorRanges', /\(at 1\): must be a private range.*signet:operatorRanges/],
    ['private operators from anywhere', privateRanges(['0.0.0.0/0']), 'signet:privateOperatorRanges', /must be a private range/],
    ['a private-operator range reaching past private space', privateRanges(['10.0.0.0/7']), 'signet:privateOperatorRanges', /must be a private range/],
    ['an IPv6 private-operator range (the VNet is IPv4)', privateRanges(['fd00::/8']), 'signet:privateOperatorRanges', /IPv4 CIDR/],
    ['a malformed private-operator range', privateRanges(['10.0.0.0/33']), 'signet:privateOperatorRanges', /IPv4 CIDR/],
    ['a service tag as a private-operator range', privateRanges(['VirtualNetwork']), 'signet:privateOperatorRanges', /IPv4 CIDR/],
    ['a private-operator range that takes in the nodes', privateRanges(['10.40.0.0/24']), 'signet:privateOperatorRanges', /\(at 0\): 10\.40\.0\.0\/24 overlaps nodeSubnetCidr 10\.40\.0\.0\/26/],
    ['a private-operator range inside the node subnet', privateRanges(['10.0.1.0/26', '10.40.0.5']), 'signet:privateOperatorRanges', /\(at 1\): 10\.40\.0\.5 overlaps nodeSubnetCidr/],
    ['a private-operator range listed twice', privateRanges(['10.0.1.0/26', '10.0.1.0/26']), 'signet:privateOperatorRanges', /lists a range twice/],
    ['private-operator ranges that are not a list', privateRanges('10.0.1.0/26'), 'signet:privateOperatorRanges', /array|expected/i],
    ['a key the monitoring setting does not have (privateAccessRanges is top-level privateOperatorRanges)', { monitoring: { ...(exampleStackValues().monitoring as Record<string, unknown>), privateAccessRanges: [] } }, 'signet:monitoring', /signet:monitoring: unknown key "privateAccessRanges" \(misspelt/],
    ['a misspelt key in a nested setting', { auditLogs: { retentiondays: 60 } }, 'signet:auditLogs', /unknown key "retentiondays"/],
    ['a misspelt key in a certificate entry', { certificates: { mode: 'selfSigned', validityDay: 30 } }, 'signet:certificates', /unknown key "validityDay"/],
    ['a private range in operatorRanges (pointing at privateOperatorRanges)', { operatorRanges: ['203.0.113.0/28', '172.16.201.0/24'] }, 'signet:operatorRanges', /public addresses.*signet:privateOperatorRanges/],
    ["a VPN's shared-space (CGNAT) range in operatorRanges", { operatorRanges: ['100.100.0.0/16'] }, 'signet:operatorRanges', /public addresses/],
    ['a cluster subnet given by name instead of resource id', { clusterSubnetIds: ['aks-nodes'] }, 'signet:clusterSubnetIds', /\(at 0\): must be a subnet resource id/],
    ['a cluster subnet given as a virtual network', { clusterSubnetIds: [`/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-aks/providers/Microsoft.Network/virtualNetworks/vnet-aks`] }, 'signet:clusterSubnetIds', /must be a subnet resource id/],
    ['a cluster subnet listed twice', { clusterSubnetIds: [AKS_SUBNET, AKS_SUBNET.toUpperCase().replace('/SUBSCRIPTIONS/', '/subscriptions/')] }, 'signet:clusterSubnetIds', /lists a subnet twice/],
    ['one node', { nodeCount: 1 }, 'signet:nodeCount', /at least 2/],
    ['a fractional node count', { nodeCount: 2.5 }, 'signet:nodeCount', /whole number/],
    ['a missing tenant id', { tenantId: undefined }, 'signet:tenantId', /is required/],
    ['a tenant id that is not a GUID', { tenantId: 'fabrikam' }, 'signet:tenantId', /guid|uuid/i],
    ['a tenant name with capitals', { tenantName: 'Fabrikam' }, 'signet:tenantName', /lowercase/],
    ['a downstream that is not Exchange Online', { downstreamSmartHost: 'smtp.fabrikam.com' }, 'signet:downstreamSmartHost', /mail\.protection\.outlook\.com/],
    ['SMTP open to the internet', { exchangeOnlineRanges: ['0.0.0.0/0'] }, 'signet:exchangeOnlineRanges', /any-source/],
    ['a malformed range', { exchangeOnlineRanges: ['40.92.0.0/33'] }, 'signet:exchangeOnlineRanges', /CIDR/],
    ['operators from anywhere', { operatorRanges: ['0.0.0.0/0'] }, 'signet:operatorRanges', /0\.0\.0\.0\/0/],
    ['an operator range that is private (the vault and storage firewalls refuse it)', { operatorRanges: ['203.0.113.0/28', '10.20.0.0/16'] }, 'signet:operatorRanges', /public addresses/],
    ['an operator range that contains a private block', { operatorRanges: ['172.0.0.0/8'] }, 'signet:operatorRanges', /public addresses/],
    ['a single zone', { zones: ['1'] }, 'signet:zones', /two availability zones/],
    ['a zone listed twice', { zones: ['1', '1'] }, 'signet:zones', /twice/],
    ['a password instead of an SSH key', { sshPublicKey: 'hunter2' }, 'signet:sshPublicKey', /OpenSSH public key/],
    ['a privileged HTTP port', { httpPort: 80 }, 'signet:httpPort', />=1024|1024/],
    ['an unknown certificate mode', { certificates: { mode: 'letsencrypt' } }, 'signet:certificates', /mode|invalid/i],
    ['imported certificates for fewer nodes than nodeCount', { nodeCount: 3, certificates: { mode: 'imported', nodes: [{ secretName: 'a', certificateFile: 'a.pem' }, { secretName: 'b', certificateFile: 'b.pem' }] } }, 'signet:certificates', /nodeCount is 3/],
    ['a node subnet outside the VNet', { nodeSubnetCidr: '10.41.0.0/26' }, 'signet:nodeSubnetCidr', /not inside vnetCidr/],
    ['overlapping subnets', { monitoringSubnetCidr: '10.40.0.32/27' }, 'signet:monitoringSubnetCidr', /overlaps nodeSubnetCidr/],
    ['a node subnet too small for the nodes', { nodeSubnetCidr: '10.40.0.0/29', nodeCount: 4 }, 'signet:nodeSubnetCidr', /too small for 4 nodes/],
    ['a version that is not semver', { applianceVersion: 'latest' }, 'signet:applianceVersion', /semantic version/],
    ['an audit log retention below what the workspace allows', { auditLogs: { retentionDays: 7 } }, 'signet:auditLogs', /at least 30 days/],
    ['an audit log retention beyond what the workspace allows', { auditLogs: { retentionDays: 3650 } }, 'signet:auditLogs', /at most 730 days/],
    ['an origin host name that is not a DNS name', { monitoring: { enabled: true, frontDoor: true, originHostName: 'grafana origin' } }, 'signet:monitoring', /DNS name/],
  ];
  for (const [label, change, key, message] of cases) {
    it(`refuses ${label}, naming ${key}`, function () {
      const error = failureOf(() => parseStackConfig(fabrikam(artifact.path, change)));
      expect(error).to.be.instanceOf(pulumi.RunError);
      const line = error.message.split('\n').find((l) => l.trim().startsWith(`${key}:`) || l.trim().startsWith(`${key} (`));
      expect(line, error.message).to.not.equal(undefined);
      expect(line).to.match(message);
    });
  }

  it('reads structured values from the stack the way `pulumi config` stores them (JSON strings)', async function () {
    const values = fabrikam(artifact.path, { nodeCount: 1 });
    const all: Record<string, string> = {};
    for (const [k, v] of Object.entries(values)) all[`signet:${k}`] = typeof v === 'string' ? v : JSON.stringify(v);
    await pulumi.runtime.setMocks({ newResource: () => ({ id: undefined, state: {} }), call: () => ({}) }, 'signet', 'fabrikam', false);
    pulumi.runtime.setAllConfig(all);
    try {
      const error = failureOf(() => loadStackConfig());
      expect(error.message).to.match(/signet:nodeCount: must be at least 2/);
      pulumi.runtime.setAllConfig({ ...all, 'signet:nodeCount': '3' });
      expect(loadStackConfig().nodeCount).to.equal(3);
      expect(loadStackConfig().zones).to.deep.equal(['1', '2', '3']);
      // a misspelt key is refused, not left out for the default to take its place; other namespaces are not ours
      pulumi.runtime.setAllConfig({ ...all, 'signet:nodeCount': '3', 'signet:nodecount': '4', 'other:nodecount': '4' });
      expect(failureOf(() => loadStackConfig()).message).to.match(/^ {2}signet: unknown key "nodecount" \(misspelt/m);
    } finally {
      pulumi.runtime.setAllConfig({});
    }
  });

  it('runs the Pulumi entry point (infra/index.ts) from the stack\'s config and returns the outputs', async function () {
    const all: Record<string, string> = {};
    for (const [k, v] of Object.entries(fabrikam(artifact.path))) all[`signet:${k}`] = typeof v === 'string' ? v : JSON.stringify(v);
    pulumi.runtime.setAllConfig(all);
    try {
      // Loaded here, not at import time: the module's export is the program function Pulumi calls.
      const program = require('../../infra/index') as () => Promise<Record<string, unknown>>;
      const run = await runUnderMocks('entry', () => program());
      expect(run.outputs.smartHostFqdn).to.equal('smtp.fabrikam.relay.signet-msp.example');
      expect(run.ofType('azure-native:compute:VirtualMachine')).to.have.length(3);
    } finally {
      pulumi.runtime.setAllConfig({});
    }
  });

  it('fails the program before declaring any resource when the config is bad', async function () {
    let thrown: Error | undefined;
    const run = await runUnderMocks('broken', () => {
      try {
        return createTenantStack(parseStackConfig(fabrikam(artifact.path, { nodeCount: 0 })), { baseDir: REPO_ROOT });
      } catch (error) {
        thrown = error as Error;
        return {};
      }
    });
    expect(thrown?.message).to.match(/signet:nodeCount/);
    expect(run.resources).to.deep.equal([]);
  });

  it('names the artifact key when the packaged appliance is missing', async function () {
    let thrown: Error | undefined;
    await runUnderMocks('noartifact', () => {
      try {
        return createTenantStack(parseStackConfig(fabrikam('/nonexistent/signet.tar.gz')), { baseDir: REPO_ROOT });
      } catch (error) {
        thrown = error as Error;
        return {};
      }
    });
    expect(thrown?.message).to.match(/^signet:applianceArtifactPath: cannot read \/nonexistent\/signet\.tar\.gz/);
  });

  it('keeps the example stack file free of secrets and complete', function () {
    const values = exampleStackValues();
    expect(Object.keys(values)).to.include.members(['tenantId', 'tenantName', 'orgId', 'acceptedDomains', 'location', 'zones', 'nodeCount', 'nodeSize', 'certificateDomain', 'downstreamSmartHost', 'exchangeOnlineRanges', 'operatorRanges', 'privateOperatorRanges', 'applianceVersion', 'sshPublicKey']);
    expect(JSON.stringify(values)).to.not.match(/PRIVATE KEY|password/i);
  });
});
