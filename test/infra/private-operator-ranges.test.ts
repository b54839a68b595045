// Operators coming in privately (a VPN, a Bastion, a jump host in a network
// peered with the tenant's VNet): both NSGs end with a deny-all that also
// blocks the VNet, so the ranges in signet:privateOperatorRanges get allow
// rules of their own, each to one read-only HTTP port: the nodes' health port
// always (what `signet status --via private` reads), Grafana's port only while
// Grafana is private (published, its proxy answers only Front Door).
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import { nodeHealthUrl, parseStackOutputs } from '../../appliance/src/fleet';
import { GRAFANA_ORIGIN_PORT } from '../../infra/cloud-init';
import { grafanaPrivateOperatorRanges, parseStackConfig, type StackConfig } from '../../infra/config';
import { storageIpRules } from '../../infra/components/artifacts';
import { monitoringSecurityRules, nodeSecurityRules } from '../../infra/components/network';
import type { StackOutputs } from '../../infra/outputs';
import { createTenantStack } from '../../infra/stack';
import { REPO_ROOT, runUnderMocks, type StackRun } from './support/harness';
import { EXAMPLE_ORIGIN_HOST, exampleStackValues, fabrikam, placeholderArtifact, publishedMonitoring, type ArtifactFixture } from './support/fixtures';

type Rule = { name: string; priority: number; direction: string; access: string; protocol: string; sourceAddressPrefix?: string; sourceAddressPrefixes?: string[]; destinationAddressPrefix?: string; destinationPortRange?: string; destinationPortRanges?: string[] };
const sourcesOf = (r: Rule) => r.sourceAddressPrefixes ?? (r.sourceAddressPrefix ? [r.sourceAddressPrefix] : []);
const portsOf = (r: Rule) => r.destinationPortRanges ?? (r.destinationPortRange ? [r.destinationPortRange] : []);

/** A VPN's point-to-site client pool and a hub's AzureBastionSubnet, both private. */
const VPN_POOL = '172.16.201.0/24';
const BASTION_SUBNET = '10.0.1.0/26';
/** Machines in them: an operator's laptop on the VPN, and the Bastion's address its tunnels come from. */
const ON_VPN = '172.16.201.37';
const FROM_BASTION = '10.0.1.5';
/** Private, but listed nowhere: the next VPN pool over. */
const UNLISTED = '172.16.202.37';

const ipv4 = (a: string) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
/** Whether an IPv4 address is inside a CIDR (or is the address); service tags and '*' are handled by the caller. */
function inCidr(address: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  const size = 2 ** (32 - Number(bits ?? 32));
  const first = ipv4(base!) - (ipv4(base!) % size);
  return ipv4(address) >= first && ipv4(address) < first + size;
}

/**
 * What an NSG does with an inbound TCP connection from a private address, as Azure evaluates it: the rule
 * with the lowest priority number that matches decides. Sources: '*' and CIDRs match; the service tags these
 * NSGs use (AzureTrafficManager, AzureLoadBalancer, AzureFrontDoor.Backend, Internet) never stand for an
 * operator's private address.
 */
function verdict(rules: Rule[], from: string, port: number): { access: string; rule: string } {
  const matches = (r: Rule) => r.direction === 'Inbound'
    && (r.protocol === '*' || r.protocol === 'Tcp')
    && sourcesOf(r).some((s) => s === '*' || (/^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(s) && inCidr(from, s)))
    && portsOf(r).some((p) => p === '*' || p === String(port) || (p.includes('-') && Number(p.split('-')[0]) <= port && port <= Number(p.split('-')[1])));
  const rule = [...rules].sort((a, b) => a.priority - b.priority).find(matches);
  // Azure's default rules come after 4096; the explicit deny-all there always matches first.
  if (!rule) throw new Error(`no rule decides ${from} → ${port}`);
  return { access: rule.access, rule: rule.name };
}

const monitoringWith = (extra: Record<string, unknown>) => ({ monitoring: { ...(exampleStackValues().monitoring as Record<string, unknown>), ...extra } });
const nsgRules = (run: StackRun<StackOutputs>, which: 'nodes' | 'monitoring') => run.one('azure-native:network:NetworkSecurityGroup', `nsg-${which}`).inputs.securityRules as Rule[];
const allows = (rules: Rule[]) => rules.filter((r) => r.access === 'Allow');

describe('infra: the operators\' private ranges on a development stack, Grafana private (mocked Azure)', function () {
  let artifact: ArtifactFixture;
  let config: StackConfig;
  let run: StackRun<StackOutputs>;

  before(async function () {
    artifact = placeholderArtifact();
    // the example (Front Door asked for, no origin certificate: Grafana private) with two private ranges
    config = parseStackConfig(fabrikam(artifact.path, { privateOperatorRanges: [VPN_POOL, BASTION_SUBNET] }));
    run = await runUnderMocks('fabrikam', () => createTenantStack(config, { baseDir: REPO_ROOT })) as StackRun<StackOutputs>;
  });
  after(() => artifact.cleanup());

  it('admits them to the nodes\' health/metrics port in one rule, after the public operators\' and ahead of the denies', function () {
    const rules = nsgRules(run, 'nodes');
    const mine = allows(rules).filter((r) => sourcesOf(r).some((s) => [VPN_POOL, BASTION_SUBNET].includes(s)));
    expect(mine.map((r) => [r.name, r.direction, r.protocol, sourcesOf(r), portsOf(r)])).to.deep.equal([
      ['allow-health-private-operators', 'Inbound', 'Tcp', [VPN_POOL, BASTION_SUBNET], [String(config.httpPort)]],
    ]);
    const rule = mine[0]!;
    const priority = (name: string) => (rules.find((r) => r.name === name) as Rule).priority;
    expect(rule.priority).to.be.above(priority('allow-health-operators'))
      .and.below(priority('deny-ssh-rdp-internet')).and.below(priority('deny-all-other-inbound'));
    expect(new Set(rules.map((r) => r.priority)).size).to.equal(rules.length);
    // the rules that were there stay as they were
    expect(rules.filter((r) => r !== rule).map((r) => r.name)).to.deep.equal([
      'allow-smtp-exchange-online-v4', 'allow-smtp-exchange-online-v6', 'allow-health-traffic-manager', 'allow-health-azure-lb',
      'allow-metrics-monitoring', 'allow-health-operators', 'deny-ssh-rdp-internet', 'deny-all-other-inbound',
    ]);
  });

  it('lets a VPN or Bastion address read the nodes\' health port and nothing else there: no SMTP, no SSH, no Grafana', function () {
    const rules = nsgRules(run, 'nodes');
    for (const from of [ON_VPN, FROM_BASTION]) {
      expect(verdict(rules, from, config.httpPort), from).to.deep.equal({ access: 'Allow', rule: 'allow-health-private-operators' });
      for (const port of [25, 22, 3389, GRAFANA_ORIGIN_PORT, 443]) expect(verdict(rules, from, port).access, `${from} → ${port}`).to.equal('Deny');
    }
    // a private address nobody listed stays out
    expect(verdict(rules, UNLISTED, config.httpPort)).to.deep.equal({ access: 'Deny', rule: 'deny-all-other-inbound' });
  });

  it('is what `signet status --via private` reads: each node\'s private address, in the node subnet, on the port the rule opens', function () {
    const outputs = parseStackOutputs(JSON.parse(JSON.stringify(run.outputs)), 'pulumi stack output --json');
    const rules = nsgRules(run, 'nodes');
    const nics = run.ofType('azure-native:network:NetworkInterface').filter((n) => !n.name.includes('monitoring'));
    expect(outputs.nodes).to.have.length(config.nodeCount);
    for (const node of outputs.nodes) {
      const url = new URL(nodeHealthUrl(outputs, node, 'private'));
      expect(url.protocol, node.name).to.equal('http:');
      expect(url.hostname, node.name).to.equal(node.privateIp);
      // the NIC carries that address, in the subnet the node NSG guards
      const nic = nics.find((n) => (n.inputs.ipConfigurations as { privateIPAddress: string }[])[0]?.privateIPAddress === url.hostname);
      expect(nic, `${node.name}: a NIC with ${url.hostname}`).to.not.equal(undefined);
      expect(inCidr(url.hostname, config.nodeSubnetCidr), node.name).to.equal(true);
      expect(verdict(rules, ON_VPN, Number(url.port)).access, `${node.name}: ${url.href} from the VPN`).to.equal('Allow');
      expect(verdict(rules, UNLISTED, Number(url.port)).access, `${node.name}: ${url.href} from an unlisted range`).to.equal('Deny');
    }
    const subnets = run.one('azure-native:network:VirtualNetwork', 'vnet').inputs.subnets as { name: string; addressPrefix: string; networkSecurityGroup: { id: string } }[];
    const nodeSubnet = subnets.find((s) => s.name === 'nodes')!;
    expect(nodeSubnet.addressPrefix).to.equal(config.nodeSubnetCidr);
    expect(nodeSubnet.networkSecurityGroup.id).to.equal(run.one('azure-native:network:NetworkSecurityGroup', 'nsg-nodes').id);
  });

  it('admits them to Grafana\'s port alone on the monitoring NSG, ahead of the deny rules', function () {
    const rules = nsgRules(run, 'monitoring');
    const open = allows(rules);
    expect(open.map((r) => [r.name, r.direction, r.protocol, sourcesOf(r), portsOf(r)])).to.deep.equal([
      ['allow-grafana-private', 'Inbound', 'Tcp', [VPN_POOL, BASTION_SUBNET], [String(GRAFANA_ORIGIN_PORT)]],
    ]);
    const rule = open[0] as Rule;
    const denyAll = rules.find((r) => r.name === 'deny-all-other-inbound') as Rule;
    const denyAdmin = rules.find((r) => r.name === 'deny-ssh-rdp-internet') as Rule;
    expect(rule.priority).to.be.below(denyAdmin.priority).and.below(denyAll.priority);
    expect(denyAll).to.include({ access: 'Deny', sourceAddressPrefix: '*', destinationPortRange: '*', priority: 4096 });
    expect(new Set(rules.map((r) => r.priority)).size).to.equal(rules.length);
    expect(rules.flatMap(sourcesOf)).to.not.include('AzureFrontDoor.Backend');
    expect(verdict(rules, ON_VPN, GRAFANA_ORIGIN_PORT).access).to.equal('Allow');
    for (const port of [config.httpPort, 22, 25]) expect(verdict(rules, ON_VPN, port).access, String(port)).to.equal('Deny');
    expect(verdict(rules, UNLISTED, GRAFANA_ORIGIN_PORT).access).to.equal('Deny');
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

  it('opens no Key Vault or storage firewall to them (those take public operatorRanges only)', function () {
    const vault = run.one('azure-native:keyvault:Vault', 'kv').inputs.properties as { networkAcls: { ipRules: { value: string }[] } };
    expect(vault.networkAcls.ipRules.map((r) => r.value)).to.deep.equal(config.operatorRanges);
    const storage = run.one('azure-native:storage:StorageAccount', 'st').inputs.networkRuleSet as { ipRules: { iPAddressOrRange: string }[] };
    expect(storage.ipRules.map((r) => r.iPAddressOrRange)).to.deep.equal(storageIpRules(config.operatorRanges));
  });

  it('warns once that Front Door is not published, naming the ranges that reach Grafana meanwhile', function () {
    expect(run.warnings).to.have.length(1);
    const warning = run.warnings[0] ?? '';
    expect(warning).to.match(/not published through Front Door/);
    expect(warning).to.include(`${VPN_POOL}, ${BASTION_SUBNET}`).and.include('signet:privateOperatorRanges');
    expect(warning).to.not.match(/nothing reaches Grafana/).and.not.include('privateAccessRanges');
  });
});

describe('infra: Grafana kept private on purpose (frontDoor: false) with one VPN range (mocked Azure)', function () {
  let artifact: ArtifactFixture;
  let run: StackRun<StackOutputs>;

  before(async function () {
    artifact = placeholderArtifact();
    const config = parseStackConfig(fabrikam(artifact.path, { ...monitoringWith({ frontDoor: false }), privateOperatorRanges: ['192.168.50.0/24'] }));
    run = await runUnderMocks('fabrikam', () => createTenantStack(config, { baseDir: REPO_ROOT })) as StackRun<StackOutputs>;
  });
  after(() => artifact.cleanup());

  it('admits the one range to Grafana\'s port and to the nodes\' health port, declares no Front Door, and warns about nothing', function () {
    const open = allows(nsgRules(run, 'monitoring'));
    expect(open).to.have.length(1);
    expect(open[0]).to.include({ name: 'allow-grafana-private', sourceAddressPrefix: '192.168.50.0/24', destinationPortRange: '3000', protocol: 'Tcp', direction: 'Inbound' });
    expect(open[0]?.sourceAddressPrefixes).to.equal(undefined);
    const node = allows(nsgRules(run, 'nodes')).find((r) => r.name === 'allow-health-private-operators');
    expect(node).to.include({ sourceAddressPrefix: '192.168.50.0/24', destinationPortRange: '9025', protocol: 'Tcp' });
    expect(run.resources.filter((r) => r.type.startsWith('azure-native:cdn:')).map((r) => r.name)).to.deep.equal([]);
    expect(run.warnings).to.deep.equal([]);
    // the monitoring VM keeps its DNS name (the CNAME target, should Grafana be published later)
    expect(run.outputs.monitoringFqdn).to.match(/^signet-fabrikam-mon-[a-z0-9]{6}\.westeurope\.cloudapp\.azure\.com$/);
  });
});

describe('infra: the operators\' private ranges while Grafana is published through Front Door (mocked Azure)', function () {
  let artifact: ArtifactFixture;
  let dir: string;
  let config: StackConfig;
  let run: StackRun<StackOutputs>;

  before(async function () {
    artifact = placeholderArtifact();
    dir = mkdtempSync(path.join(tmpdir(), 'signet-private-operators-'));
    const { monitoring } = await publishedMonitoring(dir);
    config = parseStackConfig(fabrikam(artifact.path, { monitoring, privateOperatorRanges: [VPN_POOL] }));
    run = await runUnderMocks('fabrikam', () => createTenantStack(config, { baseDir: REPO_ROOT })) as StackRun<StackOutputs>;
  });
  after(() => {
    artifact.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('admits Front Door alone to Grafana\'s origin port (its proxy would answer the ranges 403)', function () {
    const rules = nsgRules(run, 'monitoring');
    expect(allows(rules).map((r) => [r.name, sourcesOf(r), portsOf(r)])).to.deep.equal([['allow-grafana-front-door', ['AzureFrontDoor.Backend'], ['3000']]]);
    expect(verdict(rules, ON_VPN, GRAFANA_ORIGIN_PORT).access).to.equal('Deny');
    expect(run.outputs.dashboardUrl).to.match(/^https:\/\/.*\.azurefd\.net\//);
  });

  it('still admits them to the nodes\' health port, and warns about nothing (the setting is in use)', function () {
    const rules = nsgRules(run, 'nodes');
    expect(verdict(rules, ON_VPN, config.httpPort)).to.deep.equal({ access: 'Allow', rule: 'allow-health-private-operators' });
    expect(verdict(rules, ON_VPN, 25).access).to.equal('Deny');
    expect(run.warnings).to.deep.equal([]);
  });
});

describe('infra: the operators\' private ranges with monitoring off (mocked Azure)', function () {
  let artifact: ArtifactFixture;
  let config: StackConfig;
  let run: StackRun<StackOutputs>;

  before(async function () {
    artifact = placeholderArtifact();
    config = parseStackConfig(fabrikam(artifact.path, { ...monitoringWith({ enabled: false }), privateOperatorRanges: [VPN_POOL] }));
    run = await runUnderMocks('fabrikam', () => createTenantStack(config, { baseDir: REPO_ROOT })) as StackRun<StackOutputs>;
  });
  after(() => artifact.cleanup());

  it('opens nothing on the monitoring subnet (there is no Grafana), still the nodes\' health port, and exports empty monitoring outputs', function () {
    expect(allows(nsgRules(run, 'monitoring'))).to.deep.equal([]);
    expect(verdict(nsgRules(run, 'nodes'), ON_VPN, config.httpPort).access).to.equal('Allow');
    expect(run.ofType('azure-native:network:PublicIPAddress').map((p) => p.name)).to.not.include('fabrikam-pip-monitoring');
    expect(run.outputs.monitoringFqdn).to.equal('');
    expect(run.outputs.dashboardUrl).to.equal('');
    expect(run.warnings).to.deep.equal([]);
  });
});

describe('infra: the NSG rules for the operators\' private ranges (unit)', function () {
  const base = { exchangeOnlineRanges: ['40.92.0.0/15', '2a01:111:f400::/48'], httpPort: 9025, monitoringSubnetCidr: '10.40.0.64/27', operatorRanges: ['203.0.113.0/28'] };

  it('adds the nodes\' rule only with ranges (never an empty source list), for the health port alone', function () {
    for (const without of [nodeSecurityRules(base), nodeSecurityRules({ ...base, privateOperatorRanges: [] })] as Rule[][]) {
      expect(without.map((r) => r.name)).to.not.include('allow-health-private-operators');
      expect(verdict(without, ON_VPN, 9025).access).to.equal('Deny');
    }
    const rules = nodeSecurityRules({ ...base, privateOperatorRanges: [VPN_POOL, BASTION_SUBNET] }) as Rule[];
    const rule = rules.find((r) => r.name === 'allow-health-private-operators')!;
    expect([sourcesOf(rule), portsOf(rule), rule.protocol, rule.access]).to.deep.equal([[VPN_POOL, BASTION_SUBNET], ['9025'], 'Tcp', 'Allow']);
    // works without public operator ranges too
    const alone = nodeSecurityRules({ ...base, operatorRanges: [], privateOperatorRanges: [VPN_POOL] }) as Rule[];
    expect(verdict(alone, ON_VPN, 9025)).to.deep.equal({ access: 'Allow', rule: 'allow-health-private-operators' });
    expect(verdict(alone, '203.0.113.5', 9025).access).to.equal('Deny');
  });

  it('opens Grafana\'s port to Front Door or to private ranges, never both, and to nothing without either', function () {
    expect(allows(monitoringSecurityRules({ frontDoor: false }) as Rule[])).to.deep.equal([]);
    expect(allows(monitoringSecurityRules({ frontDoor: false, privateOperatorRanges: [] }) as Rule[])).to.deep.equal([]);
    expect(() => monitoringSecurityRules({ frontDoor: true, privateOperatorRanges: [VPN_POOL] })).to.throw(/admits no private ranges/);
    const both = monitoringSecurityRules({ frontDoor: false, privateOperatorRanges: [VPN_POOL, BASTION_SUBNET] }) as Rule[];
    expect(allows(both).map((r) => r.sourceAddressPrefixes)).to.deep.equal([[VPN_POOL, BASTION_SUBNET]]);
  });

  it('gives Grafana the ranges only while it is private (grafanaPrivateOperatorRanges)', function () {
    const artifact = placeholderArtifact();
    try {
      const ranges = { privateOperatorRanges: [VPN_POOL] };
      const ofStack = (overrides: Record<string, unknown>) => grafanaPrivateOperatorRanges(parseStackConfig(fabrikam(artifact.path, overrides)));
      expect(ofStack(ranges)).to.deep.equal([VPN_POOL]);
      expect(ofStack({ ...ranges, ...monitoringWith({ frontDoor: false }) })).to.deep.equal([VPN_POOL]);
      expect(ofStack({ ...ranges, ...monitoringWith({ enabled: false }) })).to.deep.equal([]);
      expect(ofStack({ ...ranges, ...monitoringWith({ originHostName: EXAMPLE_ORIGIN_HOST, originCertificate: { certificateFile: 'certs/fabrikam/grafana-origin.pem' } }) })).to.deep.equal([]);
      expect(ofStack({})).to.deep.equal([]);
    } finally {
      artifact.cleanup();
    }
  });
});
