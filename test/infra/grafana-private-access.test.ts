// Reaching Grafana while it is private (no Front Door): the monitoring NSG
// ends with a deny-all that also blocks the VNet, so operators' VPN or Bastion
// ranges get an allow rule of their own, to Grafana's port only, when the
// stack lists them in signet:monitoring.privateAccessRanges — and none while
// Grafana is published through Front Door (its proxy answers only Front Door).
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import { GRAFANA_ORIGIN_PORT } from '../../infra/cloud-init';
import { grafanaPrivateAccessRanges, parseStackConfig, type StackConfig } from '../../infra/config';
import { monitoringSecurityRules } from '../../infra/components/network';
import type { StackOutputs } from '../../infra/outputs';
import { createTenantStack } from '../../infra/stack';
import { REPO_ROOT, runUnderMocks, type StackRun } from './support/harness';
import { EXAMPLE_ORIGIN_HOST, exampleStackValues, fabrikam, placeholderArtifact, writeOriginCertificate, type ArtifactFixture } from './support/fixtures';
import { createCertificateAuthority } from '../support/certs';

type Rule = { name: string; priority: number; direction: string; access: string; protocol: string; sourceAddressPrefix?: string; sourceAddressPrefixes?: string[]; destinationAddressPrefix?: string; destinationPortRange?: string; destinationPortRanges?: string[] };
const sourcesOf = (r: Rule) => r.sourceAddressPrefixes ?? (r.sourceAddressPrefix ? [r.sourceAddressPrefix] : []);
const portsOf = (r: Rule) => r.destinationPortRanges ?? (r.destinationPortRange ? [r.destinationPortRange] : []);

/** A VPN's point-to-site client pool and a hub's AzureBastionSubnet, both private. */
const VPN_POOL = '172.16.201.0/24';
const BASTION_SUBNET = '10.0.1.0/26';

const monitoringWith = (extra: Record<string, unknown>) => ({ monitoring: { ...(exampleStackValues().monitoring as Record<string, unknown>), ...extra } });
const monitoringRules = (run: StackRun<StackOutputs>) => run.one('azure-native:network:NetworkSecurityGroup', 'nsg-monitoring').inputs.securityRules as Rule[];
const allows = (rules: Rule[]) => rules.filter((r) => r.access === 'Allow');

describe('infra: a private Grafana, reached from the operators\' VPN or Bastion ranges (development stack, mocked Azure)', function () {
  let artifact: ArtifactFixture;
  let config: StackConfig;
  let run: StackRun<StackOutputs>;

  before(async function () {
    artifact = placeholderArtifact();
    // the example (Front Door asked for, no origin certificate: Grafana private) with two private ranges
    config = parseStackConfig(fabrikam(artifact.path, monitoringWith({ privateAccessRanges: [VPN_POOL, BASTION_SUBNET] })));
    run = await runUnderMocks('fabrikam', () => createTenantStack(config, { baseDir: REPO_ROOT })) as StackRun<StackOutputs>;
  });
  after(() => artifact.cleanup());

  it('admits exactly those ranges, over TCP, to Grafana\'s port alone, ahead of the deny rules', function () {
    const rules = monitoringRules(run);
    const open = allows(rules);
    expect(open.map((r) => [r.name, r.direction, r.protocol, sourcesOf(r), portsOf(r)])).to.deep.equal([
      ['allow-grafana-private', 'Inbound', 'Tcp', [VPN_POOL, BASTION_SUBNET], [String(GRAFANA_ORIGIN_PORT)]],
    ]);
    const rule = open[0] as Rule;
    // evaluated before the explicit denies (a lower number wins), which stay in place
    const denyAll = rules.find((r) => r.name === 'deny-all-other-inbound') as Rule;
    const denyAdmin = rules.find((r) => r.name === 'deny-ssh-rdp-internet') as Rule;
    expect(rule.priority).to.be.below(denyAdmin.priority).and.below(denyAll.priority);
    expect(denyAll).to.include({ access: 'Deny', sourceAddressPrefix: '*', destinationPortRange: '*', priority: 4096 });
    expect(new Set(rules.map((r) => r.priority)).size).to.equal(rules.length);
    // no Front Door tag, no admin ports, no other port
    expect(rules.flatMap(sourcesOf)).to.not.include('AzureFrontDoor.Backend');
    expect(open.flatMap(portsOf)).to.deep.equal(['3000']);
  });

  it('opens the port Grafana itself answers on at dashboardUrl (no proxy in front of it)', function () {
    const url = new URL(run.outputs.dashboardUrl);
    expect(url.protocol).to.equal('http:');
    expect(url.port).to.equal(String(GRAFANA_ORIGIN_PORT));
    expect(url.hostname).to.equal('10.40.0.68');
    const vm = run.one('azure-native:compute:VirtualMachine', 'vm-monitoring');
    const doc = parse(Buffer.from((vm.inputs.osProfile as { customData: string }).customData, 'base64').toString('utf8')) as { packages: string[] };
    expect(doc.packages).to.not.include('nginx');
  });

  it('changes nothing on the nodes\' NSG: the ranges reach Grafana only', function () {
    const rules = run.one('azure-native:network:NetworkSecurityGroup', 'nsg-nodes').inputs.securityRules as Rule[];
    expect(rules.flatMap(sourcesOf)).to.not.include(VPN_POOL);
    expect(rules.flatMap(sourcesOf)).to.not.include(BASTION_SUBNET);
    expect(rules.flatMap(portsOf)).to.not.include(String(GRAFANA_ORIGIN_PORT));
  });

  it('warns once that Front Door is not published, naming the ranges that reach Grafana meanwhile', function () {
    expect(run.warnings).to.have.length(1);
    const warning = run.warnings[0] ?? '';
    expect(warning).to.match(/not published through Front Door/);
    expect(warning).to.include(`${VPN_POOL}, ${BASTION_SUBNET}`).and.include('signet:monitoring.privateAccessRanges');
    expect(warning).to.not.match(/nothing reaches Grafana/);
  });
});

describe('infra: Grafana kept private on purpose (frontDoor: false) with one VPN range (mocked Azure)', function () {
  let artifact: ArtifactFixture;
  let run: StackRun<StackOutputs>;

  before(async function () {
    artifact = placeholderArtifact();
    const config = parseStackConfig(fabrikam(artifact.path, monitoringWith({ frontDoor: false, privateAccessRanges: ['192.168.50.0/24'] })));
    run = await runUnderMocks('fabrikam', () => createTenantStack(config, { baseDir: REPO_ROOT })) as StackRun<StackOutputs>;
  });
  after(() => artifact.cleanup());

  it('admits the one range to Grafana\'s port, declares no Front Door, and warns about nothing', function () {
    const open = allows(monitoringRules(run));
    expect(open).to.have.length(1);
    expect(open[0]).to.include({ name: 'allow-grafana-private', sourceAddressPrefix: '192.168.50.0/24', destinationPortRange: '3000', protocol: 'Tcp', direction: 'Inbound' });
    expect(open[0]?.sourceAddressPrefixes).to.equal(undefined);
    expect(run.resources.filter((r) => r.type.startsWith('azure-native:cdn:')).map((r) => r.name)).to.deep.equal([]);
    expect(run.warnings).to.deep.equal([]);
    // the monitoring VM keeps its DNS name (the CNAME target, should Grafana be published later)
    expect(run.outputs.monitoringFqdn).to.match(/^signet-fabrikam-mon-[a-z0-9]{6}\.westeurope\.cloudapp\.azure\.com$/);
  });
});

describe('infra: private ranges while Grafana is published through Front Door (mocked Azure)', function () {
  let artifact: ArtifactFixture;
  let dir: string;
  let run: StackRun<StackOutputs>;

  before(async function () {
    artifact = placeholderArtifact();
    dir = mkdtempSync(path.join(tmpdir(), 'signet-private-access-'));
    const certificateFile = await writeOriginCertificate(await createCertificateAuthority('Signet Test Public CA'), dir);
    const config = parseStackConfig(fabrikam(artifact.path, monitoringWith({ originHostName: EXAMPLE_ORIGIN_HOST, originCertificate: { certificateFile }, privateAccessRanges: [VPN_POOL] })));
    run = await runUnderMocks('fabrikam', () => createTenantStack(config, { baseDir: REPO_ROOT })) as StackRun<StackOutputs>;
  });
  after(() => {
    artifact.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('admits Front Door alone to the origin port (its proxy would answer the ranges 403), and warns that the setting has no effect', function () {
    expect(allows(monitoringRules(run)).map((r) => [r.name, sourcesOf(r), portsOf(r)])).to.deep.equal([['allow-grafana-front-door', ['AzureFrontDoor.Backend'], ['3000']]]);
    expect(run.warnings).to.have.length(1);
    expect(run.warnings[0]).to.match(/signet:monitoring\.privateAccessRanges has no effect/).and.match(/frontDoor: false/);
    expect(run.outputs.dashboardUrl).to.match(/^https:\/\/.*\.azurefd\.net\//);
  });
});

describe('infra: private ranges with monitoring off (mocked Azure)', function () {
  let artifact: ArtifactFixture;
  let run: StackRun<StackOutputs>;

  before(async function () {
    artifact = placeholderArtifact();
    const config = parseStackConfig(fabrikam(artifact.path, monitoringWith({ enabled: false, privateAccessRanges: [VPN_POOL] })));
    run = await runUnderMocks('fabrikam', () => createTenantStack(config, { baseDir: REPO_ROOT })) as StackRun<StackOutputs>;
  });
  after(() => artifact.cleanup());

  it('opens nothing (there is no Grafana), and exports empty monitoring outputs', function () {
    expect(allows(monitoringRules(run))).to.deep.equal([]);
    expect(run.ofType('azure-native:network:PublicIPAddress').map((p) => p.name)).to.not.include('fabrikam-pip-monitoring');
    expect(run.outputs.monitoringFqdn).to.equal('');
    expect(run.outputs.dashboardUrl).to.equal('');
    expect(run.warnings).to.deep.equal([]);
  });
});

describe('infra: the monitoring NSG rules (unit)', function () {
  it('opens Grafana\'s port to Front Door or to private ranges, never both, and to nothing without either', function () {
    expect(allows(monitoringSecurityRules({ frontDoor: false }) as Rule[])).to.deep.equal([]);
    expect(allows(monitoringSecurityRules({ frontDoor: false, privateAccessRanges: [] }) as Rule[])).to.deep.equal([]);
    expect(() => monitoringSecurityRules({ frontDoor: true, privateAccessRanges: [VPN_POOL] })).to.throw(/admits no private ranges/);
    const both = monitoringSecurityRules({ frontDoor: false, privateAccessRanges: [VPN_POOL, BASTION_SUBNET] }) as Rule[];
    expect(allows(both).map((r) => r.sourceAddressPrefixes)).to.deep.equal([[VPN_POOL, BASTION_SUBNET]]);
  });

  it('takes the ranges only while Grafana is private (grafanaPrivateAccessRanges)', function () {
    const artifact = placeholderArtifact();
    try {
      const ranges = { privateAccessRanges: [VPN_POOL] };
      expect(grafanaPrivateAccessRanges(parseStackConfig(fabrikam(artifact.path, monitoringWith(ranges))))).to.deep.equal([VPN_POOL]);
      expect(grafanaPrivateAccessRanges(parseStackConfig(fabrikam(artifact.path, monitoringWith({ ...ranges, frontDoor: false }))))).to.deep.equal([VPN_POOL]);
      expect(grafanaPrivateAccessRanges(parseStackConfig(fabrikam(artifact.path, monitoringWith({ ...ranges, enabled: false }))))).to.deep.equal([]);
      const published = monitoringWith({ ...ranges, originHostName: EXAMPLE_ORIGIN_HOST, originCertificate: { certificateFile: 'certs/fabrikam/grafana-origin.pem' } });
      expect(grafanaPrivateAccessRanges(parseStackConfig(fabrikam(artifact.path, published)))).to.deep.equal([]);
      expect(grafanaPrivateAccessRanges(parseStackConfig(fabrikam(artifact.path)))).to.deep.equal([]);
    } finally {
      artifact.cleanup();
    }
  });
});
