// The policy pack's rules run against the resources the example stack
// declares (their mocked inputs): the real stack passes every rule, and a
// deliberately bad variant of each resource is caught by the matching rule.
// Pulumi has no official policy test harness (pulumi-policy#445), so this
// builds the validation arguments the analyzer would pass.
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { PolicyResource, ResourceValidationArgs, ResourceValidationPolicy, StackValidationPolicy } from '@pulumi/policy';
import { parseStackConfig } from '../../infra/config';
import { frontDoorHttpsOnly, keyVaultProtected, noInternetSshRdp, portRangeCovers, signetPolicies, smtpNotFromInternet, tenantResourceGroupOnly, tls12Minimum, vmIdentityNoPassword } from '../../infra/policy/policies';
import { createTenantStack } from '../../infra/stack';
import { REPO_ROOT, runUnderMocks, type RecordedResource, type StackRun } from './support/harness';
import { fabrikam, placeholderArtifact, publishedMonitoring, type ArtifactFixture } from './support/fixtures';

/** Plain-data copy (the recorded inputs are JSON-shaped). */
function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function resourceArgs(r: { type: string; name: string; urn: string; inputs: Record<string, unknown> }): ResourceValidationArgs & PolicyResource {
  const notApplicable = (reason?: string): never => { throw new Error(`not applicable: ${reason ?? ''}`); };
  return {
    type: r.type, name: r.name, urn: r.urn, props: r.inputs,
    opts: { protect: false, ignoreChanges: [], aliases: [], customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 }, additionalSecretOutputs: [] } as unknown as ResourceValidationArgs['opts'],
    stackTags: new Map(), dependencies: [], propertyDependencies: {},
    isType: () => false, asType: () => undefined, getConfig: <T>() => ({}) as T, notApplicable,
  } as unknown as ResourceValidationArgs & PolicyResource;
}

async function violationsOf(policy: ResourceValidationPolicy, r: { type: string; name: string; urn: string; inputs: Record<string, unknown> }): Promise<string[]> {
  const found: string[] = [];
  const validations = Array.isArray(policy.validateResource) ? policy.validateResource : [policy.validateResource];
  for (const validate of validations) await validate?.(resourceArgs(r), (message) => found.push(message));
  return found;
}

async function stackViolations(policy: StackValidationPolicy, resources: RecordedResource[]): Promise<string[]> {
  const found: string[] = [];
  await policy.validateStack({
    resources: resources.map(resourceArgs), stackTags: new Map(), getConfig: <T>() => ({}) as T,
    notApplicable: (reason?: string): never => { throw new Error(reason); },
  }, (message) => found.push(message));
  return found;
}

/** Every rule of the pack over a stack's resources. */
async function allViolations(resources: RecordedResource[]): Promise<string[]> {
  const all: string[] = [];
  for (const policy of signetPolicies) {
    if ('validateStack' in policy) all.push(...await stackViolations(policy, resources));
    else for (const r of resources) all.push(...(await violationsOf(policy, r)).map((m) => `${r.name}: ${m}`));
  }
  return all;
}

describe('infra: policy pack', function () {
  let artifact: ArtifactFixture;
  let run: StackRun<unknown>;

  before(async function () {
    artifact = placeholderArtifact();
    run = await runUnderMocks('policy', () => createTenantStack(parseStackConfig(fabrikam(artifact.path)), { baseDir: REPO_ROOT }));
  });
  after(() => artifact.cleanup());

  it('passes every rule for the real stack', async function () {
    expect(await allViolations(run.resources)).to.deep.equal([]);
  });

  it('catches an NSG rule that opens SSH or RDP to the internet (also through port ranges and *)', async function () {
    const nsg = clone(run.one('azure-native:network:NetworkSecurityGroup', 'nsg-nodes'));
    const base = { direction: 'Inbound', access: 'Allow', protocol: 'Tcp', sourcePortRange: '*', destinationAddressPrefix: '*', priority: 200 };
    for (const bad of [
      { name: 'ssh', sourceAddressPrefix: 'Internet', destinationPortRange: '22' },
      { name: 'rdp-range', sourceAddressPrefix: '*', destinationPortRange: '3000-4000' },
      { name: 'any-port', sourceAddressPrefixes: ['0.0.0.0/0'], destinationPortRange: '*' },
    ]) {
      const variant = clone(nsg);
      (variant.inputs.securityRules as unknown[]).push({ ...base, ...bad });
      expect(await violationsOf(noInternetSshRdp, variant), bad.name).to.have.length(1);
    }
    const standalone = { type: 'azure-native:network:SecurityRule', name: 'r', urn: 'urn:r', inputs: { ...base, name: 'r', sourceAddressPrefix: 'Internet', destinationPortRanges: ['22'] } };
    expect(await violationsOf(noInternetSshRdp, standalone)).to.have.length(1);
    // SSH from an operator range is not "from the internet".
    const fromOperators = clone(nsg);
    (fromOperators.inputs.securityRules as unknown[]).push({ ...base, name: 'ops', sourceAddressPrefix: '203.0.113.0/28', destinationPortRange: '22' });
    expect(await violationsOf(noInternetSshRdp, fromOperators)).to.deep.equal([]);
  });

  it('catches an NSG rule that admits SMTP from the internet instead of the Exchange Online ranges', async function () {
    const nsg = clone(run.one('azure-native:network:NetworkSecurityGroup', 'nsg-nodes'));
    expect(await violationsOf(smtpNotFromInternet, nsg)).to.deep.equal([]);
    const base = { direction: 'Inbound', access: 'Allow', protocol: 'Tcp', sourcePortRange: '*', destinationAddressPrefix: '*', priority: 200 };
    for (const bad of [
      { name: 'smtp-any', sourceAddressPrefix: '*', destinationPortRange: '25' },
      { name: 'smtp-internet-range', sourceAddressPrefixes: ['Internet'], destinationPortRanges: ['20-30'] },
      { name: 'all-ports', sourceAddressPrefix: '0.0.0.0/0', destinationPortRange: '*' },
    ]) {
      const variant = clone(nsg);
      (variant.inputs.securityRules as unknown[]).push({ ...base, ...bad });
      expect(await violationsOf(smtpNotFromInternet, variant), bad.name).to.have.length(1);
    }
    // a deny rule, or SMTP from a named range, is not an exposure
    const fine = clone(nsg);
    (fine.inputs.securityRules as unknown[]).push({ ...base, name: 'deny', access: 'Deny', sourceAddressPrefix: '*', destinationPortRange: '25' }, { ...base, name: 'partner', sourceAddressPrefix: '198.51.100.0/24', destinationPortRange: '25' });
    expect(await violationsOf(smtpNotFromInternet, fine)).to.deep.equal([]);
  });

  it('catches a Key Vault without purge protection, without RBAC, or open by default', async function () {
    const vault = run.one('azure-native:keyvault:Vault', 'kv');
    const mutate = async (change: (p: Record<string, unknown>) => void) => {
      const variant = clone(vault);
      change(variant.inputs.properties as Record<string, unknown>);
      return violationsOf(keyVaultProtected, variant);
    };
    expect(await mutate((p) => { p.enablePurgeProtection = false; })).to.have.length(1);
    expect(await mutate((p) => { delete p.enableRbacAuthorization; })).to.have.length(1);
    expect(await mutate((p) => { (p.networkAcls as Record<string, unknown>).defaultAction = 'Allow'; })).to.have.length(1);
    expect(await mutate((p) => { p.accessPolicies = [{ objectId: 'x' }]; })).to.have.length(1);
    expect(await mutate((p) => { p.enableSoftDelete = false; })).to.have.length(1);
  });

  it('catches storage below TLS 1.2 or with the setting left to the default', async function () {
    const account = run.one('azure-native:storage:StorageAccount', 'st');
    for (const bad of ['TLS1_0', 'TLS1_1', undefined]) {
      const variant = clone(account);
      if (bad === undefined) delete variant.inputs.minimumTlsVersion; else variant.inputs.minimumTlsVersion = bad;
      expect(await violationsOf(tls12Minimum, variant), String(bad)).to.have.length(1);
    }
    const web = { type: 'azure-native:web:WebApp', name: 'w', urn: 'urn:w', inputs: { siteConfig: { minTlsVersion: '1.0' } } };
    expect(await violationsOf(tls12Minimum, web)).to.have.length(1);
    // plain HTTP to the storage account, whatever its TLS version
    const http = clone(account);
    http.inputs.enableHttpsTrafficOnly = false;
    expect(await violationsOf(tls12Minimum, http)).to.deep.equal(['enableHttpsTrafficOnly must not be false']);
  });

  it('catches VMs without a managed identity or with password login', async function () {
    const vm = run.one('azure-native:compute:VirtualMachine', 'vm-node0');
    const mutate = async (change: (p: Record<string, unknown>) => void) => {
      const variant = clone(vm);
      change(variant.inputs);
      return violationsOf(vmIdentityNoPassword, variant);
    };
    expect(await mutate((p) => { delete p.identity; })).to.have.length(1);
    expect(await mutate((p) => { ((p.osProfile as Record<string, unknown>).linuxConfiguration as Record<string, unknown>).disablePasswordAuthentication = false; })).to.have.length(1);
    expect(await mutate((p) => { (p.osProfile as Record<string, unknown>).adminPassword = 'Passw0rd!'; })).to.have.length(1);
    // a Windows VM (its configuration instead of Linux's), and a VM whose login cannot be checked
    const windows = await mutate((p) => {
      const os = p.osProfile as Record<string, unknown>;
      delete os.linuxConfiguration;
      os.windowsConfiguration = { provisionVMAgent: true };
    });
    expect(windows).to.include('VM is a Windows VM (password login); Signet nodes are Linux');
    expect(await mutate((p) => { delete p.osProfile; })).to.deep.equal(['VM has no osProfile to check (password login cannot be ruled out)']);
    // a scale set is held to the same rules through its profile
    const scaleSet = { type: 'azure-native:compute:VirtualMachineScaleSet', name: 'vmss', urn: 'urn:vmss', inputs: { identity: { type: 'None' }, virtualMachineProfile: { osProfile: { adminPassword: 'x', linuxConfiguration: { disablePasswordAuthentication: false } } } } };
    expect(await violationsOf(vmIdentityNoPassword, scaleSet)).to.have.members(['scale set has no managed identity', 'scale set sets an admin password', 'scale set must set linuxConfiguration.disablePasswordAuthentication: true']);
  });

  it('catches a resource or role assignment outside the tenant\'s resource group, and a second group', async function () {
    const resources = clone(run.resources);
    const vm = resources.find((r) => r.name === 'fabrikam-vm-node0') as RecordedResource;
    vm.inputs.resourceGroupName = 'rg-shared';
    expect(await stackViolations(tenantResourceGroupOnly, resources)).to.have.length(1);

    const wide = clone(run.resources);
    const ra = wide.find((r) => r.type === 'azure-native:authorization:RoleAssignment') as RecordedResource;
    ra.inputs.scope = '/subscriptions/11111111-2222-3333-4444-555555555555';
    expect(await stackViolations(tenantResourceGroupOnly, wide)).to.have.length(1);

    // a group of the tenant's name in another subscription is not the tenant's group
    const otherSubscription = clone(run.resources);
    const moved = otherSubscription.find((r) => r.type === 'azure-native:authorization:RoleAssignment') as RecordedResource;
    moved.inputs.scope = String(moved.inputs.scope).replace(/^\/subscriptions\/[^/]+/, '/subscriptions/99999999-8888-7777-6666-555555555555');
    const found = await stackViolations(tenantResourceGroupOnly, otherSubscription);
    expect(found).to.have.length(1);
    expect(found[0]).to.match(/is scoped outside rg-signet-fabrikam: \/subscriptions\/99999999/);

    const twoGroups = clone(run.resources);
    twoGroups.push({ ...clone(run.one('azure-native:resources:ResourceGroup', 'rg')), name: 'extra' });
    expect(await stackViolations(tenantResourceGroupOnly, twoGroups)).to.have.length.greaterThan(0);
  });

  it('passes the stack with its Azure Monitor alerts, and catches a metric alert that watches or notifies outside the tenant\'s group', async function () {
    // the example stack lists signet:alertEmails: the pack above ran over its action group and alerts
    expect(run.ofType('azure-native:monitor:ActionGroup')).to.have.length(1);
    expect(run.ofType('azure-native:monitor:MetricAlert')).to.have.length.greaterThan(1);
    expect(await stackViolations(tenantResourceGroupOnly, run.resources)).to.deep.equal([]);

    const foreign = '/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg-other/providers/Microsoft.Compute/virtualMachines/vm-other';
    const watching = clone(run.resources);
    (watching.find((r) => r.type === 'azure-native:monitor:MetricAlert') as RecordedResource).inputs.scopes = [foreign];
    const found = await stackViolations(tenantResourceGroupOnly, watching);
    expect(found).to.have.length(1);
    expect(found[0]).to.include('rg-other');

    const notifying = clone(run.resources);
    (notifying.find((r) => r.type === 'azure-native:monitor:MetricAlert') as RecordedResource).inputs.actions = [{ actionGroupId: '/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg-shared/providers/Microsoft.Insights/actionGroups/ag-everyone' }];
    expect(await stackViolations(tenantResourceGroupOnly, notifying)).to.have.length(1);

    const elsewhere = clone(run.resources);
    (elsewhere.find((r) => r.type === 'azure-native:monitor:ActionGroup') as RecordedResource).inputs.resourceGroupName = 'rg-shared';
    expect(await stackViolations(tenantResourceGroupOnly, elsewhere)).to.have.length(1);
  });

  it('passes the stack\'s activity log alert, and catches one that watches or notifies outside the tenant\'s group', async function () {
    const ACTIVITY_LOG_ALERT = 'azure-native:monitor:ActivityLogAlert';
    // the example stack's alert on a VM stopped or deleted through Azure: the pack above passed it
    expect(run.ofType(ACTIVITY_LOG_ALERT)).to.have.length(1);
    expect(await stackViolations(tenantResourceGroupOnly, run.resources)).to.deep.equal([]);
    const variant = (change: (p: Record<string, unknown>) => void) => {
      const resources = clone(run.resources);
      change((resources.find((r) => r.type === ACTIVITY_LOG_ALERT) as RecordedResource).inputs);
      return stackViolations(tenantResourceGroupOnly, resources);
    };
    const subscription = '/subscriptions/11111111-2222-3333-4444-555555555555';

    // the tenant's whole group is a scope Azure accepts and stays inside the tenant
    expect(await variant((p) => { p.scopes = [`${subscription}/resourceGroups/rg-signet-fabrikam`]; })).to.deep.equal([]);

    for (const [label, scope] of [
      ['the subscription', subscription],
      ['another group', `${subscription}/resourceGroups/rg-other`],
      ['a VM in another group', `${subscription}/resourceGroups/rg-other/providers/Microsoft.Compute/virtualMachines/vm-other`],
      ['a group whose name only starts like the tenant\'s', `${subscription}/resourceGroups/rg-signet-fabrikam-old`],
      ['a group of the same name in another subscription', '/subscriptions/99999999-8888-7777-6666-555555555555/resourceGroups/rg-signet-fabrikam/providers/Microsoft.Compute/virtualMachines/vm-signet-fabrikam-node0'],
    ]) {
      const found = await variant((p) => { (p.scopes as string[]).push(scope as string); });
      expect(found, label).to.have.length(1);
      expect(found[0], label).to.match(/^activity log alert fabrikam-alert-vm-stopped-or-deleted watches /).and.include(scope);
    }

    const shared = `${subscription}/resourceGroups/rg-shared/providers/Microsoft.Insights/actionGroups/ag-everyone`;
    const notifying = await variant((p) => { (p.actions as { actionGroups: { actionGroupId: string }[] }).actionGroups.push({ actionGroupId: shared }); });
    expect(notifying).to.have.length(1);
    expect(notifying[0]).to.match(/ notifies .*rg-shared/);
    // an action group of the same name and group, in another subscription
    const elsewhereSubscription = '/subscriptions/99999999-8888-7777-6666-555555555555/resourceGroups/rg-signet-fabrikam/providers/Microsoft.Insights/actionGroups/ag-signet-fabrikam';
    const crossSubscription = await variant((p) => { (p.actions as { actionGroups: { actionGroupId: string }[] }).actionGroups.push({ actionGroupId: elsewhereSubscription }); });
    expect(crossSubscription).to.have.length(1);
    expect(crossSubscription[0]).to.match(/ notifies .*99999999/);
    // the group itself is not an action group's id
    expect(await variant((p) => { p.actions = { actionGroups: [{ actionGroupId: `${subscription}/resourceGroups/rg-signet-fabrikam` }] }; })).to.have.length(1);

    const elsewhere = await variant((p) => { p.resourceGroupName = 'rg-shared'; });
    expect(elsewhere).to.have.length(1);
  });

  it('reads NSG port expressions correctly', function () {
    expect(portRangeCovers('22', 22)).to.equal(true);
    expect(portRangeCovers('20-30', 22)).to.equal(true);
    expect(portRangeCovers('*', 3389)).to.equal(true);
    expect(portRangeCovers('25', 22)).to.equal(false);
    expect(portRangeCovers('3390-4000', 3389)).to.equal(false);
  });
});

describe('infra: policy pack, Front Door to Grafana over HTTPS only (published stack)', function () {
  let artifact: ArtifactFixture;
  let dir: string;
  let run: StackRun<unknown>;

  before(async function () {
    artifact = placeholderArtifact();
    dir = mkdtempSync(path.join(tmpdir(), 'signet-policy-origin-'));
    const { monitoring } = await publishedMonitoring(dir);
    run = await runUnderMocks('policy-front-door', () => createTenantStack(parseStackConfig(fabrikam(artifact.path, { monitoring })), { baseDir: REPO_ROOT }));
  });
  after(() => {
    artifact.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const route = () => run.one('azure-native:cdn:Route', 'afd-route');
  const variant = async (change: (p: Record<string, unknown>) => void, of = route()) => {
    const copy = clone(of);
    change(copy.inputs);
    return violationsOf(frontDoorHttpsOnly, copy);
  };

  it('passes every rule, the stack\'s route and origin included', async function () {
    expect(await allViolations(run.resources)).to.deep.equal([]);
    // the rule has something to judge here: one route, one origin (not vacuously true)
    expect(run.ofType('azure-native:cdn:Route')).to.have.length(1);
    expect(run.ofType('azure-native:cdn:AFDOrigin')).to.have.length(1);
    expect(signetPolicies).to.include(frontDoorHttpsOnly);
    expect(await violationsOf(frontDoorHttpsOnly, route())).to.deep.equal([]);
  });

  it('catches a route that forwards to the origin over anything but HTTPS only', async function () {
    for (const bad of ['MatchRequest', 'HttpOnly']) {
      const found = await variant((p) => { p.forwardingProtocol = bad; });
      expect(found, bad).to.have.length(1);
      expect(found[0]).to.match(/forwardingProtocol is "\w+"; set HttpsOnly/);
    }
    // unset: the provider fills in MatchRequest, which the rule must not take for HTTPS
    expect(await variant((p) => { delete p.forwardingProtocol; })).to.have.length(1);
    // the value's case is Azure's business, not a way round the rule
    expect(await variant((p) => { p.forwardingProtocol = 'httpsonly'; })).to.deep.equal([]);
  });

  it('catches a route that serves plain HTTP without redirecting it, and one that serves no HTTPS', async function () {
    const plain = await variant((p) => { p.supportedProtocols = ['Http', 'Https']; });
    expect(plain).to.have.length(1);
    expect(plain[0]).to.match(/serves plain HTTP without redirecting it/);
    // unset: Azure serves Http and Https
    expect(await variant((p) => { delete p.supportedProtocols; })).to.have.length(1);
    expect(await variant((p) => { p.supportedProtocols = ['Http', 'Https']; p.httpsRedirect = 'Disabled'; })).to.have.length(1);
    // HTTP accepted only to redirect it to HTTPS is fine
    expect(await variant((p) => { p.supportedProtocols = ['Http', 'Https']; p.httpsRedirect = 'Enabled'; })).to.deep.equal([]);
    // HTTP alone: no HTTPS to redirect to, and plain HTTP served
    expect(await variant((p) => { p.supportedProtocols = ['Http']; })).to.have.length(2);
    expect(await variant((p) => { p.supportedProtocols = ['Http']; p.httpsRedirect = 'Enabled'; })).to.deep.equal(['supportedProtocols must include Https']);
    // both faults at once are both reported
    expect(await variant((p) => { p.supportedProtocols = ['Http', 'Https']; p.forwardingProtocol = 'MatchRequest'; })).to.have.length(2);
  });

  it('catches an origin reached without its certificate name checked', async function () {
    const origin = run.one('azure-native:cdn:AFDOrigin', 'afd-grafana-origin');
    expect(await variant((p) => { p.enforceCertificateNameCheck = false; }, origin)).to.have.length(1);
    // unset is the provider's (and Azure's) default: checked
    expect(await variant((p) => { delete p.enforceCertificateNameCheck; }, origin)).to.deep.equal([]);
  });

  it('leaves other resource types alone', async function () {
    const endpoint = run.one('azure-native:cdn:AFDEndpoint', 'afd-endpoint');
    expect(await violationsOf(frontDoorHttpsOnly, endpoint)).to.deep.equal([]);
    expect(await violationsOf(frontDoorHttpsOnly, { type: 'azure-native:network:NetworkSecurityGroup', name: 'n', urn: 'urn:n', inputs: { forwardingProtocol: 'HttpOnly' } })).to.deep.equal([]);
  });
});
