// The example tenant's stack under Pulumi mocks: every security property of
// the resources it declares, read from their inputs.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import { EXCHANGE_ONLINE_RANGES, parseStackConfig, type StackConfig } from '../../infra/config';
import { STACK_OUTPUT_NAMES, type StackOutputs } from '../../infra/outputs';
import { createTenantStack } from '../../infra/stack';
import { nodeSecurityRules } from '../../infra/components/network';
import { parseRelayConfig } from '../../appliance/src/smtp';
import { parseStackOutputs } from '../../appliance/src/fleet';
import { signingKeyRefFor } from '../../appliance/src/secrets';
import { AZURE_TENANT_ID, REPO_ROOT, runUnderMocks, SUBSCRIPTION_ID, type RecordedResource, type StackRun } from './support/harness';
import { EXAMPLE_ORIGIN_HOST, fabrikam, placeholderArtifact, publishedMonitoring, type ArtifactFixture } from './support/fixtures';

const ROLE = {
  secretsUser: `/subscriptions/${SUBSCRIPTION_ID}/providers/Microsoft.Authorization/roleDefinitions/4633458b-17de-408a-b874-0445c86b69e6`,
  cryptoUser: `/subscriptions/${SUBSCRIPTION_ID}/providers/Microsoft.Authorization/roleDefinitions/12338af0-0e69-4776-bea7-57ae8d297424`,
  blobReader: `/subscriptions/${SUBSCRIPTION_ID}/providers/Microsoft.Authorization/roleDefinitions/2a2b9908-6ea1-4ae2-8e65-a410df84e7d1`,
  // Key Vault Reader: keys/read (a key's public half), no sign
  keyVaultReader: `/subscriptions/${SUBSCRIPTION_ID}/providers/Microsoft.Authorization/roleDefinitions/21090545-7ca7-4776-b22c-e363652d74d2`,
};

type Rule = { name: string; priority: number; direction: string; access: string; protocol: string; sourceAddressPrefix?: string; sourceAddressPrefixes?: string[]; destinationPortRange?: string; destinationPortRanges?: string[] };
const sourcesOf = (r: Rule) => r.sourceAddressPrefixes ?? (r.sourceAddressPrefix ? [r.sourceAddressPrefix] : []);
const portsOf = (r: Rule) => r.destinationPortRanges ?? (r.destinationPortRange ? [r.destinationPortRange] : []);

interface CloudConfig { write_files: { path: string; content: string; permissions: string; owner: string }[]; runcmd: string[][]; packages: string[]; ssh_pwauth: boolean }
function cloudConfigOf(vm: RecordedResource): { text: string; doc: CloudConfig } {
  const osProfile = vm.inputs.osProfile as { customData: string };
  const text = Buffer.from(osProfile.customData, 'base64').toString('utf8');
  return { text, doc: parse(text) as CloudConfig };
}
function fileIn(doc: CloudConfig, file: string): string {
  const entry = doc.write_files.find((f) => f.path === file);
  if (!entry) throw new Error(`cloud-init writes no ${file}`);
  return entry.content;
}

describe('infra: tenant stack (example tenant, mocked Azure)', function () {
  let artifact: ArtifactFixture;
  let config: StackConfig;
  let run: StackRun<StackOutputs>;

  before(async function () {
    artifact = placeholderArtifact();
    config = parseStackConfig(fabrikam(artifact.path));
    run = await runUnderMocks('fabrikam', () => createTenantStack(config, { baseDir: REPO_ROOT })) as StackRun<StackOutputs>;
  });
  after(() => artifact.cleanup());

  const vms = () => run.ofType('azure-native:compute:VirtualMachine').filter((r) => r.name.includes('vm-node'));
  const identities = () => run.ofType('azure-native:managedidentity:UserAssignedIdentity');
  const principalOf = (logical: string) => run.one('azure-native:managedidentity:UserAssignedIdentity', logical).state.principalId as string;

  it('puts every resource inside a component, with the component types registered', function () {
    const components = run.resources.filter((r) => r.type.startsWith('signet:infra:')).map((r) => r.type);
    expect(components).to.include.members(['signet:infra:TenantNetwork', 'signet:infra:TenantIdentities', 'signet:infra:TenantKeyVault', 'signet:infra:ArtifactStore', 'signet:infra:NodeCertificates', 'signet:infra:ProcessingNodes', 'signet:infra:HealthRouting', 'signet:infra:Monitoring']);
    const orphans = run.resources.filter((r) => !r.type.startsWith('signet:infra:') && !r.urn.includes('signet:infra:') && r.name !== 'fabrikam-suffix');
    expect(orphans.map((r) => r.name)).to.deep.equal([]);
  });

  it('creates one resource group for the tenant and every resource lives in it', function () {
    const groups = run.ofType('azure-native:resources:ResourceGroup');
    expect(groups.map((g) => g.inputs.resourceGroupName)).to.deep.equal(['rg-signet-fabrikam']);
    const elsewhere = run.resources.filter((r) => 'resourceGroupName' in r.inputs && r.inputs.resourceGroupName !== 'rg-signet-fabrikam');
    expect(elsewhere.map((r) => r.name)).to.deep.equal([]);
  });

  it('admits TCP 25 only from the Exchange Online ranges and never SSH/RDP from the internet', function () {
    const nsg = run.one('azure-native:network:NetworkSecurityGroup', 'nsg-nodes');
    const rules = nsg.inputs.securityRules as Rule[];
    const allows = rules.filter((r) => r.direction === 'Inbound' && r.access === 'Allow');
    const smtp = allows.filter((r) => portsOf(r).includes('25'));
    expect(smtp.flatMap(sourcesOf).sort()).to.deep.equal([...EXCHANGE_ONLINE_RANGES].sort());
    expect(smtp.every((r) => r.protocol === 'Tcp')).to.equal(true);
    for (const rule of allows) {
      expect(sourcesOf(rule).filter((s) => ['*', 'Internet', '0.0.0.0/0', '::/0'].includes(s)), rule.name).to.deep.equal([]);
      expect(portsOf(rule).filter((p) => ['22', '3389', '*'].includes(p)), rule.name).to.deep.equal([]);
    }
    const deny = rules.find((r) => r.name === 'deny-ssh-rdp-internet') as Rule;
    expect(deny).to.include({ access: 'Deny', direction: 'Inbound', sourceAddressPrefix: 'Internet' });
    expect(portsOf(deny)).to.have.members(['22', '3389']);
    const last = rules.reduce((a, b) => (a.priority > b.priority ? a : b));
    expect(last).to.include({ access: 'Deny', sourceAddressPrefix: '*', destinationPortRange: '*' });
  });

  it('admits the health/metrics port only from Traffic Manager, the load balancer probe, the monitoring subnet and the operators', function () {
    const rules = run.one('azure-native:network:NetworkSecurityGroup', 'nsg-nodes').inputs.securityRules as Rule[];
    const health = rules.filter((r) => r.access === 'Allow' && portsOf(r).includes(String(config.httpPort)));
    expect(config.operatorRanges).to.have.length.above(0);
    // the example lists no private operator ranges: no rule for them (private-operator-ranges.test.ts has them)
    expect(config.privateOperatorRanges).to.deep.equal([]);
    expect(health.flatMap(sourcesOf).sort()).to.deep.equal(['AzureLoadBalancer', 'AzureTrafficManager', config.monitoringSubnetCidr, ...config.operatorRanges, ...config.privateOperatorRanges].sort());
    expect(health.every((r) => r.protocol === 'Tcp' && portsOf(r).length === 1)).to.equal(true);
    expect(rules.map((r) => r.name)).to.not.include('allow-health-private-operators');
    // without operator ranges, no rule for them (and never an empty source list)
    const without = nodeSecurityRules({ exchangeOnlineRanges: config.exchangeOnlineRanges, httpPort: config.httpPort, monitoringSubnetCidr: config.monitoringSubnetCidr, operatorRanges: [] });
    expect(without.map((r) => r.name)).to.not.include('allow-health-operators');
  });

  it('keeps subnets private by default (explicit egress only) with their NSGs attached', function () {
    const vnet = run.one('azure-native:network:VirtualNetwork', 'vnet');
    const subnets = vnet.inputs.subnets as { name: string; defaultOutboundAccess: boolean; networkSecurityGroup: { id: string } }[];
    expect(subnets.map((s) => s.name)).to.deep.equal(['nodes', 'monitoring']);
    for (const subnet of subnets) {
      expect(subnet.defaultOutboundAccess, subnet.name).to.equal(false);
      expect(subnet.networkSecurityGroup.id, subnet.name).to.match(/networkSecurityGroups\/nsg-signet-fabrikam-/);
    }
  });

  it('configures the vault with RBAC, soft delete, purge protection and a deny-by-default firewall', function () {
    const vault = run.one('azure-native:keyvault:Vault', 'kv');
    const props = vault.inputs.properties as Record<string, unknown> & { networkAcls: { defaultAction: string; bypass: string; ipRules: { value: string }[]; virtualNetworkRules: { id: string }[] }; sku: { name: string } };
    expect(props).to.include({ enableRbacAuthorization: true, enableSoftDelete: true, enablePurgeProtection: true, tenantId: AZURE_TENANT_ID });
    expect(props.sku.name).to.equal('premium');
    expect(props.accessPolicies).to.equal(undefined);
    expect(props.networkAcls.defaultAction).to.equal('Deny');
    expect(props.networkAcls.ipRules.map((r) => r.value)).to.deep.equal(config.operatorRanges);
    expect(props.networkAcls.virtualNetworkRules.map((r) => r.id.split('/').pop())).to.deep.equal(['nodes', 'monitoring']);
    const name = vault.inputs.vaultName as string;
    expect(name).to.match(/^kv-fabrikam-[a-z0-9]{6}$/);
    expect(name.length).to.be.at.most(24);
  });

  it('creates the organization key in the HSM, usable only to wrap and unwrap', function () {
    const key = run.one('azure-native:keyvault:Key', 'org-key');
    expect(key.inputs.properties).to.deep.include({ kty: 'RSA-HSM', keySize: 3072 });
    expect((key.inputs.properties as { keyOps: string[] }).keyOps).to.have.members(['wrapKey', 'unwrapKey']);
    expect(run.outputs.orgKeyId).to.match(/^https:\/\/kv-fabrikam-[a-z0-9]{6}\.vault\.azure\.net\/keys\/org-config-key$/);
  });

  it('creates a separate config signing key in the HSM, usable only to sign and verify, named as the relay derives it', function () {
    const key = run.one('azure-native:keyvault:Key', 'config-signing-key');
    expect(key.inputs.keyName).to.equal('org-config-key-signing');
    expect(key.inputs.vaultName).to.equal(run.one('azure-native:keyvault:Vault', 'kv').inputs.vaultName);
    expect(key.inputs.properties).to.deep.include({ kty: 'RSA-HSM', keySize: 3072 });
    expect((key.inputs.properties as { keyOps: string[] }).keyOps).to.have.members(['sign', 'verify']);
    expect((key.inputs.properties as { attributes: { exportable: boolean } }).attributes.exportable).to.equal(false);
    // Nodes accept only signatures by the key they derive from the org key they are configured with.
    expect(run.outputs.configSigningKeyId).to.equal(signingKeyRefFor(run.outputs.orgKeyId));
    expect(run.outputs.configSigningKeyResourceId).to.equal(key.id);
  });

  it('grants each node identity only Crypto User on the org key, Reader on the signing key, Secrets User on the vault and Blob Data Reader on two containers', function () {
    const assignments = run.ofType('azure-native:authorization:RoleAssignment');
    const operator = config.operatorPrincipals[0] as { objectId: string; type: string };
    const vaultId = run.one('azure-native:keyvault:Vault', 'kv').id;
    const keyId = run.one('azure-native:keyvault:Key', 'org-key').id;
    const signingKeyId = run.one('azure-native:keyvault:Key', 'config-signing-key').id;
    const containers = run.ofType('azure-native:storage:BlobContainer');
    const containerId = (name: string) => (containers.find((c) => c.inputs.containerName === name) as RecordedResource).id;
    for (let i = 0; i < config.nodeCount; i++) {
      const principal = principalOf(`id-node${i}`);
      const mine = assignments.filter((a) => a.inputs.principalId === principal).map((a) => [a.inputs.roleDefinitionId, a.inputs.scope]);
      expect(mine, `node${i}`).to.have.deep.members([
        [ROLE.cryptoUser, keyId],
        [ROLE.keyVaultReader, signingKeyId], // verify bundle signatures; never Crypto User here, which could sign
        [ROLE.secretsUser, vaultId],
        [ROLE.blobReader, containerId('artifacts')],
        [ROLE.blobReader, containerId('config')],
      ]);
    }
    for (const a of assignments.filter((x) => x.inputs.principalId !== operator.objectId)) {
      expect(a.inputs.principalType).to.equal('ServicePrincipal');
    }
    for (const a of assignments) {
      // Nothing subscription- or resource-group-wide.
      expect(a.inputs.scope as string, a.name).to.match(/\/providers\/Microsoft\.(KeyVault\/vaults|Storage\/storageAccounts)\/[^/]+\/.+|\/providers\/Microsoft\.KeyVault\/vaults\/[^/]+$/);
    }
    const operatorGrants = assignments.filter((a) => a.inputs.principalId === operator.objectId);
    expect(operatorGrants.every((a) => a.inputs.principalType === operator.type)).to.equal(true);
    expect(operatorGrants.map((a) => [a.inputs.roleDefinitionId, a.inputs.scope])).to.have.deep.members([
      [ROLE.cryptoUser, keyId],
      [ROLE.cryptoUser, signingKeyId],
      [`/subscriptions/${SUBSCRIPTION_ID}/providers/Microsoft.Authorization/roleDefinitions/b86a8fe4-44ce-4948-aee5-eccb2c155cd7`, vaultId],
      [`/subscriptions/${SUBSCRIPTION_ID}/providers/Microsoft.Authorization/roleDefinitions/ba92f5b4-2d11-453d-a403-e96b0029c9fe`, containerId('config')],
    ]);
    const monitoring = assignments.filter((a) => a.inputs.principalId === principalOf('id-monitoring')).map((a) => [a.inputs.roleDefinitionId, a.inputs.scope]);
    // one secret by name (Grafana's password; no origin certificate without Front Door); no vault-wide read
    expect(monitoring).to.have.deep.members([[ROLE.secretsUser, `${vaultId}/secrets/grafana-admin-password`], [ROLE.blobReader, containerId('artifacts')]]);
  });

  it('spreads the nodes across zones, each with its own user-assigned identity and no password login', function () {
    const nodes = vms();
    expect(nodes).to.have.length(config.nodeCount);
    expect(new Set(nodes.map((vm) => (vm.inputs.zones as string[]).join(','))).size).to.equal(config.nodeCount);
    const identityIds = identities().map((i) => i.id);
    const used = new Set<string>();
    for (const vm of nodes) {
      const identity = vm.inputs.identity as { type: string; userAssignedIdentities: string[] };
      expect(identity.type).to.equal('UserAssigned');
      expect(identity.userAssignedIdentities).to.have.length(1);
      expect(identityIds).to.include(identity.userAssignedIdentities[0]);
      used.add(identity.userAssignedIdentities[0] as string);
      const os = vm.inputs.osProfile as { adminPassword?: string; linuxConfiguration: { disablePasswordAuthentication: boolean; ssh: { publicKeys: { keyData: string }[] } } };
      expect(os.adminPassword).to.equal(undefined);
      expect(os.linuxConfiguration.disablePasswordAuthentication).to.equal(true);
      expect(os.linuxConfiguration.ssh.publicKeys[0]?.keyData).to.equal(config.sshPublicKey);
      expect(vm.inputs.securityProfile).to.deep.include({ securityType: 'TrustedLaunch' });
      expect((vm.inputs.storageProfile as { imageReference: { publisher: string } }).imageReference.publisher).to.equal('Canonical');
    }
    expect(used.size).to.equal(config.nodeCount);
  });

  it('rebuilds a VM by deleting it before creating its replacement, and keeps its NIC (fixed names; a NIC serves one VM)', function () {
    const all = run.ofType('azure-native:compute:VirtualMachine');
    expect(all).to.have.length(config.nodeCount + 1);
    const nicIds = run.ofType('azure-native:network:NetworkInterface').map((n) => n.id);
    for (const vm of all) {
      // create-before-delete would PUT a second VM under the same name onto a NIC the old one still holds
      expect(vm.deleteBeforeReplace, vm.name).to.equal(true);
      const nics = (vm.inputs.networkProfile as { networkInterfaces: { id: string; deleteOption?: string }[] }).networkInterfaces;
      for (const nic of nics) {
        expect(nicIds, vm.name).to.include(nic.id);
        // Delete would take the stack's own NIC (fixed address, public IP) down with the VM, and the rebuilt VM would find none
        expect(nic.deleteOption, vm.name).to.not.equal('Delete');
      }
    }
  });

  it('boots each node only after its role assignments, its certificate secret and the artifact exist', function () {
    const assignments = run.ofType('azure-native:authorization:RoleAssignment');
    const artifactBlob = run.ofType('azure-native:storage:Blob').find((b) => b.inputs.blobName === 'signet-appliance-0.1.0.tar.gz') as RecordedResource;
    vms().forEach((vm, i) => {
      const mine = assignments.filter((a) => a.inputs.principalId === principalOf(`id-node${i}`));
      expect(mine).to.have.length(5);
      const needed = [...mine.map((a) => a.urn), run.one('azure-native:keyvault:Secret', `node${i}-tls-secret`).urn, artifactBlob.urn];
      expect(vm.dependsOn, vm.name).to.include.members(needed);
    });
    const monitoring = run.one('azure-native:compute:VirtualMachine', 'vm-monitoring');
    const monitoringGrants = assignments.filter((a) => a.inputs.principalId === principalOf('id-monitoring')).map((a) => a.urn);
    expect(monitoringGrants).to.have.length(2);
    expect(monitoring.dependsOn).to.include.members(monitoringGrants);
  });

  it('gives each node a zonal Standard static public IP with a DNS label (its SMTP endpoint and port-25 egress)', function () {
    const ips = run.ofType('azure-native:network:PublicIPAddress').filter((r) => r.name.includes('pip-node'));
    expect(ips).to.have.length(config.nodeCount);
    for (const ip of ips) {
      expect(ip.inputs).to.deep.include({ sku: { name: 'Standard', tier: 'Regional' }, publicIPAllocationMethod: 'Static' });
      expect(ip.inputs.zones).to.have.length(1);
      expect((ip.inputs.dnsSettings as { domainNameLabel: string }).domainNameLabel).to.match(/^signet-fabrikam-n\d-[a-z0-9]{6}$/);
    }
  });

  it('renders cloud-init that installs the verified artifact with the node identity and writes a relay config the relay accepts', function () {
    const sha256 = createHash('sha256').update(readFileSync(artifact.path)).digest('hex');
    const install = readFileSync(path.join(REPO_ROOT, 'infra/cloud-init/signet-install.sh'), 'utf8');
    vms().forEach((vm, i) => {
      const { text, doc } = cloudConfigOf(vm);
      expect(text.startsWith('#cloud-config\n')).to.equal(true);
      expect(doc.ssh_pwauth).to.equal(false);
      expect(doc.runcmd).to.deep.equal([['/usr/local/sbin/signet-install']]);
      expect(fileIn(doc, '/usr/local/sbin/signet-install')).to.equal(install);
      const env = fileIn(doc, '/etc/signet/node.env');
      const clientId = run.one('azure-native:managedidentity:UserAssignedIdentity', `id-node${i}`).state.clientId as string;
      expect(env).to.include(`SIGNET_ARTIFACT_SHA256='${sha256}'`);
      expect(env).to.include(`SIGNET_IDENTITY_CLIENT_ID='${clientId}'`);
      expect(env).to.include(`SIGNET_VERSION='0.1.0'`);
      expect(env).to.match(/SIGNET_ARTIFACT_URL='https:\/\/stfabrikam[a-z0-9]{6}\.blob\.core\.windows\.net\/artifacts\/signet-appliance-0\.1\.0\.tar\.gz'/);
      expect(env).to.include(`SIGNET_TLS_SECRET='node${i}-tls'`);
      expect(env).to.include(`SIGNET_TLS_THUMBPRINT='${run.outputs.nodes[i]?.certificateThumbprint}'`);
      const dropIn = fileIn(doc, '/etc/systemd/system/signet.service.d/10-signet-stack.conf');
      expect(dropIn).to.include(`SIGNET_MANAGED_IDENTITY_CLIENT_ID=${clientId}`);
      expect(dropIn).to.include('ExecStart=/opt/signet/current/bin/signet serve --config /etc/signet/relay.yaml');
      // The relay's own validator (strict schema) accepts what the stack writes.
      const relay = parseRelayConfig(parse(fileIn(doc, '/etc/signet/relay.yaml')), '/etc/signet/relay.yaml', '/etc/signet');
      expect(relay.downstream.host).to.equal(config.downstreamSmartHost);
      expect(relay.downstream.port).to.equal(25);
      expect(relay.downstream.tls.cert).to.equal('/etc/signet/tls/node.crt');
      expect(relay.tls.acceptedClientNames).to.deep.equal(['mail.protection.outlook.com']);
      expect(relay.allowNetworks).to.deep.equal(config.exchangeOnlineRanges);
      expect(relay.tenantId).to.equal(config.tenantId); // only the customer's tenant's mail, whatever certificate it came with
      expect(relay.http.port).to.equal(config.httpPort);
      expect(relay.org.source).to.equal(run.outputs.configBundleUrl);
      expect(relay.org.keyRef).to.equal(run.outputs.orgKeyId);
      expect(relay.directory.graph).to.deep.include({ tenantId: config.tenantId, clientId });
      expect(relay.hostname).to.equal(config.certificateDomain);
    });
  });

  it('rolls upgrades one node at a time: each node\'s converge command waits for the previous one', function () {
    const commands = run.ofType('azure-native:compute:VirtualMachineRunCommandByVirtualMachine').filter((r) => r.name.includes('converge-node'));
    expect(commands).to.have.length(config.nodeCount);
    commands.forEach((command, i) => {
      expect(command.inputs).to.include({ treatFailureAsDeploymentFailure: true, asyncExecution: false });
      const script = (command.inputs.source as { script: string }).script;
      expect(script).to.include('cloud-init status --wait');
      expect(script).to.match(/^\/usr\/local\/sbin\/signet-install \|\| status=\$\?$/m);
      if (i > 0) expect(command.dependsOn.some((urn) => urn.endsWith(`::fabrikam-converge-node${i - 1}`)), `node${i}`).to.equal(true);
    });
    expect(commands[0]?.dependsOn.some((urn) => urn.includes('converge-node'))).to.equal(false);
  });

  it('rolls changes Azure applies by restarting VMs (a resize) one node at a time: each VM waits for the previous node\'s converge', function () {
    const nodes = vms();
    expect(nodes).to.have.length(config.nodeCount);
    nodes.forEach((vm, i) => {
      const afterPrevious = vm.dependsOn.some((urn) => urn.endsWith(`::fabrikam-converge-node${i - 1}`));
      expect(afterPrevious, vm.name).to.equal(i > 0);
    });
  });

  it('converges a rebuilt VM again: every converge script names its VM instance, which a rebuild changes', function () {
    const pairs: [string, string][] = [...vms().map((vm) => [vm.name, vm.name.replace('-vm-', '-converge-')] as [string, string]), ['fabrikam-vm-monitoring', 'fabrikam-converge-monitoring']];
    for (const [vmName, commandName] of pairs) {
      const vm = run.one('azure-native:compute:VirtualMachine', vmName);
      const command = run.one('azure-native:compute:VirtualMachineRunCommandByVirtualMachine', commandName);
      const vmId = vm.state.vmId as string;
      expect(vmId, vmName).to.match(/^[0-9a-f-]{36}$/);
      expect((command.inputs.source as { script: string }).script, commandName).to.include(vmId);
    }
  });

  it('routes SMTP with a MultiValue Traffic Manager profile probing /readyz on every node\'s public IP', function () {
    const tm = run.one('azure-native:trafficmanager:Profile', 'tm');
    expect(tm.inputs).to.include({ trafficRoutingMethod: 'MultiValue', location: 'global' });
    expect(tm.inputs.monitorConfig).to.deep.include({ protocol: 'HTTP', port: config.httpPort, path: '/readyz' });
    expect((tm.inputs.dnsConfig as { ttl: number }).ttl).to.be.at.most(60);
    const endpoints = tm.inputs.endpoints as { target: string; type: string }[];
    expect(endpoints.map((e) => e.target)).to.deep.equal(run.outputs.nodes.map((n) => n.publicIp));
    expect(endpoints.every((e) => e.type.endsWith('/externalEndpoints'))).to.equal(true);
    expect(run.outputs.trafficManagerFqdn).to.match(/^signet-fabrikam-[a-z0-9]{6}\.trafficmanager\.net$/);
    expect(run.outputs.smartHostCname).to.deep.equal({ name: `smtp.${config.certificateDomain}`, type: 'CNAME', target: run.outputs.trafficManagerFqdn, ttl: 30 });
  });

  it('issues development node certificates for the certificate domain and publishes their SHA-1 thumbprints and expiries', function () {
    const certs = run.ofType('tls:index/locallySignedCert:LocallySignedCert');
    expect(certs).to.have.length(config.nodeCount);
    run.outputs.nodes.forEach((node, i) => {
      const pem = (certs.find((c) => c.name === `fabrikam-node${i}-cert`) as RecordedResource).state.certPem as string;
      // Independent reading of the same certificate: OpenSSL's SHA-1 fingerprint.
      const openssl = execFileSync('openssl', ['x509', '-noout', '-fingerprint', '-sha1'], { input: pem }).toString();
      expect(node.certificateThumbprint).to.equal(openssl.split('=')[1]?.trim().replaceAll(':', ''));
      expect(node.certificateExpiresAt).to.equal(new Date(new X509Certificate(pem).validTo).toISOString());
      const signed = certs.find((c) => c.name === `fabrikam-node${i}-cert`) as RecordedResource;
      expect(signed.inputs.earlyRenewalHours).to.be.greaterThan(0).and.lessThan(Number(signed.inputs.validityPeriodHours));
      const csr = run.one('tls:index/certRequest:CertRequest', `node${i}-csr`);
      expect(csr.inputs.dnsNames).to.include.members([config.certificateDomain, node.fqdn]);
      expect(csr.inputs.subject).to.deep.equal({ commonName: config.certificateDomain });
    });
    const secrets = run.ofType('azure-native:keyvault:Secret').filter((s) => s.name.includes('tls-secret'));
    expect(secrets.map((s) => s.inputs.secretName)).to.deep.equal(run.outputs.nodes.map((n) => n.tlsSecretName));
  });

  it('stores the artifact in a TLS 1.2, private, firewalled storage account', function () {
    const account = run.one('azure-native:storage:StorageAccount', 'st');
    expect(account.inputs).to.include({ minimumTlsVersion: 'TLS1_2', allowBlobPublicAccess: false, enableHttpsTrafficOnly: true });
    expect((account.inputs.networkRuleSet as { defaultAction: string }).defaultAction).to.equal('Deny');
    const blobs = run.ofType('azure-native:storage:Blob');
    expect(blobs.map((b) => b.inputs.blobName)).to.include.members(['signet-appliance-0.1.0.tar.gz', 'monitoring/signet-dashboard.json', 'monitoring/alerts.yaml']);
    for (const container of run.ofType('azure-native:storage:BlobContainer')) expect(container.inputs.publicAccess).to.equal('None');
  });

  it('monitors the nodes privately: Prometheus scrapes their private addresses and loads the repository\'s rules', function () {
    const vm = run.one('azure-native:compute:VirtualMachine', 'vm-monitoring');
    const { doc } = cloudConfigOf(vm);
    const prometheus = parse(fileIn(doc, '/etc/prometheus/prometheus.yml')) as { scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[]; rule_files: string[] };
    expect(prometheus.scrape_configs[0]?.job_name).to.equal('signet');
    expect(prometheus.scrape_configs[0]?.static_configs[0]?.targets).to.deep.equal(run.outputs.nodes.map((n) => `${n.privateIp}:${config.httpPort}`));
    const setup = fileIn(doc, '/usr/local/sbin/signet-monitoring-setup');
    const alertsHash = createHash('sha256').update(readFileSync(path.join(REPO_ROOT, 'monitoring/prometheus/alerts.yaml'))).digest('hex');
    expect(setup).to.include(alertsHash);
    expect(setup).to.include('/etc/prometheus/rules/signet.yaml');
    // no Front Door in the example (see below): Grafana's own URL is its private address
    expect(setup).to.match(/GF_SERVER_ROOT_URL=%s.*'http:\/\/10\.40\.0\.68:3000\/'/s);
    // Later changes reach the running VM through its converge command (its custom data runs once).
    const converge = run.one('azure-native:compute:VirtualMachineRunCommandByVirtualMachine', 'converge-monitoring');
    expect((converge.inputs.source as { script: string }).script).to.include(Buffer.from(setup, 'utf8').toString('base64'));
    expect((converge.inputs.source as { script: string }).script).to.match(/exec \/usr\/local\/sbin\/signet-monitoring-setup\n$/);
    const uid = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'monitoring/grafana/signet-dashboard.json'), 'utf8')) as { uid: string }).uid;
    expect(run.outputs.dashboardUrl).to.equal(`http://10.40.0.68:3000/d/${uid}`);
  });

  it('publishes no Front Door without an origin certificate Front Door accepts: Grafana stays private, and the stack warns once why and what to do', function () {
    // a development stack: Front Door asked for (the default), no public origin certificate
    expect(config.certificates.mode).to.equal('selfSigned');
    expect(config.monitoring.frontDoor).to.equal(true);
    expect(config.monitoring.originCertificate).to.equal(undefined);
    expect(run.resources.filter((r) => r.type.startsWith('azure-native:cdn:')).map((r) => r.name)).to.deep.equal([]);
    const rules = run.one('azure-native:network:NetworkSecurityGroup', 'nsg-monitoring').inputs.securityRules as Rule[];
    expect(rules.flatMap(sourcesOf)).to.not.include('AzureFrontDoor.Backend');
    expect(rules.filter((r) => r.access === 'Allow')).to.deep.equal([]);
    // no proxy on the VM: Grafana keeps its port on the private network
    const { doc } = cloudConfigOf(run.one('azure-native:compute:VirtualMachine', 'vm-monitoring'));
    expect(doc.packages).to.not.include('nginx');
    expect(doc.write_files.map((f) => f.path)).to.not.include('/etc/signet-monitoring/nginx/signet-grafana.conf');
    const setup = fileIn(doc, '/usr/local/sbin/signet-monitoring-setup');
    expect(setup).to.not.match(/GF_SERVER_HTTP_ADDR|ssl_certificate|\/secrets\/monitoring-tls/);
    const converge = (run.one('azure-native:compute:VirtualMachineRunCommandByVirtualMachine', 'converge-monitoring').inputs.source as { script: string }).script;
    expect(converge).to.not.include('/etc/signet-monitoring/nginx/signet-grafana.conf.new');
    expect(run.outputs.dashboardUrl).to.match(/^http:\/\/10\.40\.0\.68:3000\/d\//);
    // no origin certificate issued, stored, or readable by the VM
    expect(run.resources.filter((r) => r.name.includes('monitoring-origin')).map((r) => r.name)).to.deep.equal([]);
    expect(run.ofType('azure-native:keyvault:Secret').map((s) => s.inputs.secretName)).to.not.include('monitoring-tls');
    const grants = run.ofType('azure-native:authorization:RoleAssignment');
    expect(grants.filter((a) => String(a.inputs.scope).endsWith('/secrets/monitoring-tls')).map((a) => a.name)).to.deep.equal([]);
    // said once, naming the way to a working dashboard and the private way meanwhile
    expect(run.warnings).to.have.length(1);
    const warning = run.warnings[0] ?? '';
    expect(warning).to.match(/not published through Front Door/).and.match(/public CA/);
    expect(warning).to.include('signet:monitoring.originCertificate').and.include('signet:monitoring.originHostName').and.include('runbooks/onboard-tenant.md');
    // the example sets no private ranges: the warning says nothing reaches Grafana yet, and how to change that
    expect(config.privateOperatorRanges).to.deep.equal([]);
    expect(warning).to.match(/nothing reaches Grafana/).and.include('signet:privateOperatorRanges').and.match(/VPN/).and.match(/Bastion/);
    expect(warning).to.include('monitoringFqdn');
  });

  it('gives the monitoring VM\'s public IP a DNS label and exports its name as monitoringFqdn (the origin host\'s CNAME target)', function () {
    const pip = run.one('azure-native:network:PublicIPAddress', 'pip-monitoring');
    expect(pip.inputs.publicIpAddressName).to.equal('pip-signet-fabrikam-monitoring');
    const label = (pip.inputs.dnsSettings as { domainNameLabel: string }).domainNameLabel;
    expect(label).to.match(/^signet-fabrikam-mon-[a-z0-9]{6}$/);
    // the same random suffix as every other globally unique name of the tenant
    expect(label.slice(-6)).to.equal(run.outputs.vaultName.slice(-6));
    expect(run.outputs.monitoringFqdn).to.equal(`${label}.${config.location}.cloudapp.azure.com`);
    // its own name: never a node's
    expect(run.outputs.nodes.map((n) => n.fqdn)).to.not.include(run.outputs.monitoringFqdn);
    // the NIC that carries the public IP is the monitoring VM's
    const nic = run.one('azure-native:network:NetworkInterface', 'nic-monitoring');
    expect((nic.inputs.ipConfigurations as { publicIPAddress: { id: string } }[])[0]?.publicIPAddress.id).to.equal(pip.id);
  });

  it('sends the vault\'s audit log (AuditEvent) to the tenant\'s Log Analytics workspace, kept 90 days by default', function () {
    const workspace = run.one('azure-native:operationalinsights:Workspace', 'log');
    expect(workspace.inputs).to.deep.include({ workspaceName: 'log-signet-fabrikam', location: 'westeurope', retentionInDays: 90 });
    expect(workspace.inputs.sku).to.deep.equal({ name: 'PerGB2018' });
    expect(workspace.inputs.features).to.deep.include({ disableLocalAuth: true });
    expect(workspace.inputs.tags).to.include({ 'signet:tenant': 'fabrikam' });
    const settings = run.ofType('azure-native:monitor:DiagnosticSetting');
    expect(settings).to.have.length(1);
    const audit = settings[0] as RecordedResource;
    expect(audit.inputs.resourceUri).to.equal(run.one('azure-native:keyvault:Vault', 'kv').id);
    expect(audit.inputs.workspaceId).to.equal(workspace.id);
    expect(audit.inputs.logs).to.deep.equal([{ categoryGroup: 'audit', enabled: true }]);
  });

  it('exports every documented output', function () {
    expect(Object.keys(run.outputs).sort()).to.deep.equal([...STACK_OUTPUT_NAMES].sort());
    expect(run.outputs.smartHostFqdn).to.equal(`smtp.${config.certificateDomain}`);
    expect(run.outputs.vaultUri).to.match(/^https:\/\/kv-fabrikam-[a-z0-9]{6}\.vault\.azure\.net\/$/);
    expect(run.outputs.configBundleUrl).to.match(/^https:\/\/stfabrikam[a-z0-9]{6}\.blob\.core\.windows\.net\/config\/org-config\.sealed$/);
    expect(run.outputs.nodes.map((n) => n.fqdn)).to.deep.equal(vms().map((_, i) => `signet-fabrikam-n${i}-${run.outputs.vaultName.slice(-6)}.westeurope.cloudapp.azure.com`));
    expect(run.outputs.devCaCertificatePem).to.match(/^-----BEGIN CERTIFICATE-----/);
    // the sample outputs the CLI and runbook tests read are the same set
    const sample = JSON.parse(readFileSync(path.join(REPO_ROOT, 'test/fixtures/stack-outputs.json'), 'utf8')) as Record<string, unknown>;
    expect(Object.keys(sample).sort()).to.deep.equal([...STACK_OUTPUT_NAMES].sort());
  });

  it('produces outputs the operator CLI reads (`signet connectors`, `signet status`)', function () {
    const parsed = parseStackOutputs(JSON.parse(JSON.stringify(run.outputs)), 'pulumi stack output --json');
    expect(parsed.smartHostFqdn).to.equal(`smtp.${config.certificateDomain}`);
    expect(parsed.nodes.map((n) => n.certificateThumbprint)).to.deep.equal(run.outputs.nodes.map((n) => n.certificateThumbprint));
    expect(parsed.httpPort).to.equal(config.httpPort);
  });
});

describe('infra: Grafana through Front Door with an imported origin certificate (development stack, mocked Azure)', function () {
  let artifact: ArtifactFixture;
  let dir: string;
  let originFile: string;
  let config: StackConfig;
  let run: StackRun<StackOutputs>;

  before(async function () {
    artifact = placeholderArtifact();
    dir = mkdtempSync(path.join(tmpdir(), 'signet-origin-cert-'));
    // the example's selfSigned node certificates, plus a public certificate for the origin host
    const published = await publishedMonitoring(dir);
    originFile = published.certificateFile;
    config = parseStackConfig(fabrikam(artifact.path, { monitoring: published.monitoring }));
    run = await runUnderMocks('fabrikam', () => createTenantStack(config, { baseDir: REPO_ROOT })) as StackRun<StackOutputs>;
  });
  after(() => {
    artifact.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('publishes the dashboard through Front Door, Grafana\'s root URL the endpoint\'s, with no warning', function () {
    expect(run.warnings).to.deep.equal([]);
    const setup = fileIn(cloudConfigOf(run.one('azure-native:compute:VirtualMachine', 'vm-monitoring')).doc, '/usr/local/sbin/signet-monitoring-setup');
    expect(setup).to.match(/GF_SERVER_ROOT_URL=%s.*'https:\/\/signet-fabrikam-[a-z0-9]{6}-abcdef\.z01\.azurefd\.net\/'/s);
    const route = run.one('azure-native:cdn:Route', 'afd-route');
    const uid = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'monitoring/grafana/signet-dashboard.json'), 'utf8')) as { uid: string }).uid;
    expect(run.outputs.dashboardUrl).to.equal(`https://${route.inputs.endpointName}-abcdef.z01.azurefd.net/d/${uid}`);
  });

  it('connects Front Door to the origin host name, whose CNAME targets the monitoringFqdn output (the VM\'s public IP)', function () {
    const origin = run.one('azure-native:cdn:AFDOrigin', 'afd-grafana-origin');
    // Front Door connects to (and checks the certificate against) the operator's name, never Azure's: no public CA certifies cloudapp.azure.com
    expect(origin.inputs.hostName).to.equal(EXAMPLE_ORIGIN_HOST);
    expect(origin.inputs.hostName).to.not.equal(run.outputs.monitoringFqdn);
    const pip = run.one('azure-native:network:PublicIPAddress', 'pip-monitoring');
    expect(run.outputs.monitoringFqdn).to.equal(`${(pip.inputs.dnsSettings as { domainNameLabel: string }).domainNameLabel}.westeurope.cloudapp.azure.com`);
  });

  it('lets only this stack\'s Front Door profile reach Grafana: nginx on the origin port checks X-Azure-FDID, Grafana on loopback', function () {
    const frontDoorId = run.one('azure-native:cdn:Profile', 'afd').state.frontDoorId as string;
    expect(frontDoorId).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const origin = run.one('azure-native:cdn:AFDOrigin', 'afd-grafana-origin');
    const originPort = String(origin.inputs.httpsPort);
    // The NSG still admits the origin port from the AzureFrontDoor.Backend tag only (every customer's Front Door) ...
    const monitoringRules = run.one('azure-native:network:NetworkSecurityGroup', 'nsg-monitoring').inputs.securityRules as Rule[];
    expect(monitoringRules.filter((r) => r.access === 'Allow').map((r) => [sourcesOf(r), portsOf(r)])).to.deep.equal([[['AzureFrontDoor.Backend'], [originPort]]]);
    // ... so the VM's proxy on that port refuses every request without our profile's id.
    const { doc } = cloudConfigOf(run.one('azure-native:compute:VirtualMachine', 'vm-monitoring'));
    expect(doc.packages).to.include('nginx');
    const proxy = fileIn(doc, '/etc/signet-monitoring/nginx/signet-grafana.conf');
    expect(proxy).to.match(new RegExp(`^\\s*listen ${originPort} ssl default_server;$`, 'm'));
    expect(proxy).to.include(`if ($http_x_azure_fdid != "${frontDoorId}") {\n        return 403;\n    }`);
    expect(proxy).to.match(/^\s*proxy_pass http:\/\/127\.0\.0\.1:3001;$/m);
    // the check sits in the server block, ahead of every location (the health probe's /api/health included)
    expect(proxy.indexOf('$http_x_azure_fdid')).to.be.lessThan(proxy.indexOf('location'));
    expect(proxy.match(/location/g)).to.have.length(1);
    const setup = fileIn(doc, '/usr/local/sbin/signet-monitoring-setup');
    expect(setup).to.match(/GF_SERVER_HTTP_ADDR=127\.0\.0\.1\\nGF_SERVER_HTTP_PORT=3001\\n/);
    expect(setup).to.match(/nginx -t -q; then\n[^]*?\nsystemctl enable nginx\nsystemctl reload-or-restart nginx\n/);
    // An existing VM (custom data runs once) gets the proxy and the id through its converge command.
    const converge = (run.one('azure-native:compute:VirtualMachineRunCommandByVirtualMachine', 'converge-monitoring').inputs.source as { script: string }).script;
    expect(converge).to.include(Buffer.from(proxy, 'utf8').toString('base64'));
    expect(converge).to.include(Buffer.from(setup, 'utf8').toString('base64'));
    expect(converge).to.include('> /etc/signet-monitoring/nginx/signet-grafana.conf.new');
  });

  it('reaches Grafana\'s origin over HTTPS only, checking the certificate name, with a probe over HTTPS', function () {
    const route = run.one('azure-native:cdn:Route', 'afd-route');
    expect(route.inputs).to.deep.include({ forwardingProtocol: 'HttpsOnly', httpsRedirect: 'Disabled' });
    expect(route.inputs.supportedProtocols).to.deep.equal(['Https']);
    const group = run.one('azure-native:cdn:AFDOriginGroup', 'afd-grafana');
    expect(group.inputs.healthProbeSettings).to.deep.include({ probePath: '/api/health', probeProtocol: 'Https' });
    const origin = run.one('azure-native:cdn:AFDOrigin', 'afd-grafana-origin');
    // one name for the connection, the TLS server name and Host, and the name the certificate must carry
    expect(origin.inputs).to.deep.include({ hostName: EXAMPLE_ORIGIN_HOST, originHostHeader: EXAMPLE_ORIGIN_HOST, httpsPort: 3000, enforceCertificateNameCheck: true });
    // Front Door switches to HTTPS only after the VM's proxy serves it
    expect(origin.dependsOn).to.include(run.one('azure-native:compute:VirtualMachineRunCommandByVirtualMachine', 'converge-monitoring').urn);
  });

  it('uses the imported origin certificate beside development node certificates: nothing issued for it, the VM reads its one secret by thumbprint', function () {
    expect(config.certificates.mode).to.equal('selfSigned');
    // the development CA issues the node certificates only
    expect(run.ofType('tls:index/locallySignedCert:LocallySignedCert').map((c) => c.name)).to.have.members(Array.from({ length: config.nodeCount }, (_, i) => `fabrikam-node${i}-cert`));
    expect(run.resources.filter((r) => r.type.startsWith('tls:') && r.name.includes('monitoring-origin')).map((r) => r.name)).to.deep.equal([]);
    // the operator imported it: the stack declares no secret for it, only the VM's right to read that one secret
    expect(run.ofType('azure-native:keyvault:Secret').map((s) => s.inputs.secretName)).to.not.include('monitoring-tls');
    const vaultId = run.one('azure-native:keyvault:Vault', 'kv').id;
    const principal = run.one('azure-native:managedidentity:UserAssignedIdentity', 'id-monitoring').state.principalId;
    const grants = run.ofType('azure-native:authorization:RoleAssignment').filter((a) => a.inputs.principalId === principal);
    expect(grants.map((a) => [a.inputs.roleDefinitionId, a.inputs.scope])).to.have.deep.members([
      [ROLE.secretsUser, `${vaultId}/secrets/grafana-admin-password`], [ROLE.secretsUser, `${vaultId}/secrets/monitoring-tls`], [ROLE.blobReader, `${run.ofType('azure-native:storage:BlobContainer').find((c) => c.inputs.containerName === 'artifacts')?.id}`],
    ]);
    // granted before the VM's first boot fetches it
    expect(run.one('azure-native:compute:VirtualMachine', 'vm-monitoring').dependsOn).to.include.members(grants.map((a) => a.urn));
    const thumbprint = new X509Certificate(readFileSync(originFile, 'utf8')).fingerprint.replaceAll(':', '');
    const setup = fileIn(cloudConfigOf(run.one('azure-native:compute:VirtualMachine', 'vm-monitoring')).doc, '/usr/local/sbin/signet-monitoring-setup');
    expect(setup).to.include(`if [ "$thumbprint" != '${thumbprint}' ]; then`);
    expect(setup).to.include(`${run.outputs.vaultUri}secrets/monitoring-tls?api-version=7.4`);
  });
});

describe('infra: names and firewall rules Azure accepts, for an awkward tenant', function () {
  let artifact: ArtifactFixture;
  let run: StackRun<StackOutputs>;

  before(async function () {
    artifact = placeholderArtifact();
    // 15 characters with a hyphen where the vault name cuts the slug; a single operator address written as /32 and a /31.
    const config = parseStackConfig(fabrikam(artifact.path, { tenantName: 'fourthcoffee-uk', orgId: 'fourthcoffee', operatorRanges: ['198.51.100.7/32', '203.0.113.0/28', '192.0.2.10/31'] }));
    run = await runUnderMocks('fourthcoffee-uk', () => createTenantStack(config, { baseDir: REPO_ROOT })) as StackRun<StackOutputs>;
  });
  after(() => artifact.cleanup());

  it('names the vault within Key Vault\'s rules: 3-24 characters, a letter first, no double or trailing hyphen', function () {
    const name = run.one('azure-native:keyvault:Vault', 'kv').inputs.vaultName as string;
    expect(name).to.match(/^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$/);
    expect(name).to.not.include('--');
    expect(name).to.match(/^kv-fourthcoffee-[a-z0-9]{6}$/);
  });

  it('names the storage account and DNS labels within their rules', function () {
    expect(run.one('azure-native:storage:StorageAccount', 'st').inputs.accountName).to.match(/^[a-z0-9]{3,24}$/);
    for (const ip of run.ofType('azure-native:network:PublicIPAddress')) {
      expect((ip.inputs.dnsSettings as { domainNameLabel: string }).domainNameLabel, ip.name).to.match(/^[a-z][a-z0-9-]{1,61}[a-z0-9]$/);
    }
    expect((run.one('azure-native:trafficmanager:Profile', 'tm').inputs.dnsConfig as { relativeName: string }).relativeName).to.match(/^[a-z0-9][a-z0-9-]{0,61}[a-z0-9]$/);
  });

  it('gives the storage firewall single addresses for /32 and /31 ranges (it refuses those prefixes), the vault the ranges as written', function () {
    const account = run.one('azure-native:storage:StorageAccount', 'st');
    const rules = (account.inputs.networkRuleSet as { ipRules: { iPAddressOrRange: string; action: string }[] }).ipRules;
    expect(rules.map((r) => r.iPAddressOrRange)).to.deep.equal(['198.51.100.7', '203.0.113.0/28', '192.0.2.10', '192.0.2.11']);
    expect(rules.every((r) => r.action === 'Allow')).to.equal(true);
    const vault = run.one('azure-native:keyvault:Vault', 'kv').inputs.properties as { networkAcls: { ipRules: { value: string }[] } };
    expect(vault.networkAcls.ipRules.map((r) => r.value)).to.deep.equal(['198.51.100.7/32', '203.0.113.0/28', '192.0.2.10/31']);
  });
});
