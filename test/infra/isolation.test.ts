// Two tenants' stacks, run one after the other: nothing is shared. Every ARM
// id, globally unique name and DNS label differs, every resource sits in its
// own tenant's resource group, and role assignments name only the tenant's
// own identities and resources.
import { expect } from 'chai';
import { parseStackConfig } from '../../infra/config';
import type { StackOutputs } from '../../infra/outputs';
import { createTenantStack } from '../../infra/stack';
import { REPO_ROOT, runUnderMocks, type StackRun } from './support/harness';
import { fabrikam, northwind, placeholderArtifact, type ArtifactFixture } from './support/fixtures';

function armIds(run: StackRun<StackOutputs>): string[] {
  return run.resources.filter((r) => r.id.startsWith('/subscriptions/')).map((r) => r.id.toLowerCase());
}

/** Names that are global in Azure (vault, storage, DNS labels, Traffic Manager, Front Door endpoint). */
function globalNames(run: StackRun<StackOutputs>): string[] {
  const names: string[] = [];
  for (const r of run.resources) {
    const i = r.inputs as Record<string, unknown>;
    if (r.type === 'azure-native:keyvault:Vault') names.push(String(i.vaultName));
    if (r.type === 'azure-native:storage:StorageAccount') names.push(String(i.accountName));
    if (r.type === 'azure-native:network:PublicIPAddress') names.push(String((i.dnsSettings as { domainNameLabel: string }).domainNameLabel));
    if (r.type === 'azure-native:trafficmanager:Profile') names.push(String((i.dnsConfig as { relativeName: string }).relativeName));
    if (r.type === 'azure-native:cdn:AFDEndpoint') names.push(String(i.endpointName));
  }
  return names;
}

describe('infra: two tenants share nothing', function () {
  let artifact: ArtifactFixture;
  let a: StackRun<StackOutputs>;
  let b: StackRun<StackOutputs>;

  before(async function () {
    artifact = placeholderArtifact();
    a = await runUnderMocks('fabrikam', () => createTenantStack(parseStackConfig(fabrikam(artifact.path)), { baseDir: REPO_ROOT })) as StackRun<StackOutputs>;
    b = await runUnderMocks('northwind', () => createTenantStack(parseStackConfig(northwind(artifact.path)), { baseDir: REPO_ROOT })) as StackRun<StackOutputs>;
  });
  after(() => artifact.cleanup());

  it('declares the same kinds of resources for both', function () {
    const kinds = (run: StackRun<StackOutputs>) => [...new Set(run.resources.map((r) => r.type))].sort();
    expect(kinds(a)).to.deep.equal(kinds(b));
    expect(a.ofType('azure-native:compute:VirtualMachine')).to.have.length(3); // 2 nodes + monitoring
    expect(b.ofType('azure-native:compute:VirtualMachine')).to.have.length(4); // 3 nodes + monitoring
  });

  it('has no ARM id in common', function () {
    const shared = armIds(a).filter((id) => armIds(b).includes(id));
    expect(shared).to.deep.equal([]);
  });

  it('has no globally unique name or DNS label in common', function () {
    const shared = globalNames(a).filter((n) => globalNames(b).includes(n));
    expect(globalNames(a)).to.have.length.greaterThan(4);
    expect(shared).to.deep.equal([]);
  });

  it('has no logical name in common (URNs differ even within one project)', function () {
    const names = (run: StackRun<StackOutputs>) => run.resources.map((r) => r.name);
    expect(names(a).filter((n) => names(b).includes(n))).to.deep.equal([]);
  });

  it('keeps every resource and role assignment inside its own tenant', function () {
    for (const [run, rg] of [[a, 'rg-signet-fabrikam'], [b, 'rg-signet-northwind']] as const) {
      // The tenant's own identities, plus the MSP operators named in its stack config (same people may run several tenants).
      const ids = [...run.ofType('azure-native:managedidentity:UserAssignedIdentity').map((i) => i.state.principalId), '6d2f4b1a-3c5e-4f70-8a9b-0c1d2e3f4a5b'];
      for (const r of run.resources) {
        if ('resourceGroupName' in r.inputs) expect(r.inputs.resourceGroupName, r.name).to.equal(rg);
      }
      for (const ra of run.ofType('azure-native:authorization:RoleAssignment')) {
        expect(ids, ra.name).to.include(ra.inputs.principalId);
        if (ra.inputs.principalType === 'ServicePrincipal') {
          expect(ids.slice(0, -1), `${ra.name}: a workload identity of this tenant`).to.include(ra.inputs.principalId);
        }
        expect(ra.inputs.scope as string, ra.name).to.include(`/resourceGroups/${rg}/`);
      }
    }
  });

  it('gives each tenant its own outputs: smart host, vault, key, bundle and node certificates', function () {
    for (const key of ['smartHostFqdn', 'trafficManagerFqdn', 'certificateDomain', 'vaultUri', 'orgKeyId', 'configBundleUrl', 'artifactUrl'] as const) {
      expect(a.outputs[key], key).to.not.equal(b.outputs[key]);
    }
    const thumbprints = (run: StackRun<StackOutputs>) => run.outputs.nodes.map((n) => n.certificateThumbprint);
    expect(thumbprints(a).filter((t) => thumbprints(b).includes(t))).to.deep.equal([]);
    expect(b.outputs.nodes.map((n) => n.zone)).to.deep.equal(['1', '2', '3']);
  });
});
