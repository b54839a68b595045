// The Kubernetes target under Pulumi mocks: the workload's security posture,
// availability settings, the Key Vault CSI wiring and the monitoring objects.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse, stringify } from 'yaml';
import { EXCHANGE_ONLINE_RANGES, parseStackConfig } from '../../infra/config';
import { createTenantStack } from '../../infra/stack';
import { SignetKubernetes, SignetWorkloadIdentity, SMTP_CONTAINER_PORT, type SignetKubernetesArgs } from '../../infra/k8s';
import { parseRelayConfig } from '../../appliance/src/smtp';
import { REPO_ROOT, runUnderMocks, SUBSCRIPTION_ID, type StackRun } from './support/harness';
import { fabrikam, placeholderArtifact } from './support/fixtures';

const CLIENT_ID = '7c1e2d3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f';

function k8sArgs(overrides: Partial<SignetKubernetesArgs> = {}): SignetKubernetesArgs {
  return {
    tenantName: 'fabrikam',
    image: 'signet/appliance:0.1.0',
    httpPort: 9025,
    relay: {
      certificateDomain: 'fabrikam.relay.signet-msp.example', httpPort: 9025, downstreamHost: 'fabrikam-com.mail.protection.outlook.com',
      configBundleUrl: 'https://stfabrikamabc123.blob.core.windows.net/config/org-config.sealed',
      orgKeyId: 'https://kv-fabrikam-abc123.vault.azure.net/keys/org-config-key',
      azureTenantId: '4a1c6f43-2b7e-4d59-9f0e-8c3d2a7b5e10', exchangeOnlineRanges: [...EXCHANGE_ONLINE_RANGES], directoryRefreshMinutes: 15,
    },
    workloadIdentityClientId: CLIENT_ID,
    keyVaultTenantId: '99999999-8888-7777-6666-555555555555',
    keyVaultName: 'kv-fabrikam-abc123',
    tlsSecretName: 'node0-tls',
    exchangeOnlineRanges: [...EXCHANGE_ONLINE_RANGES],
    alertRulesFile: path.join(REPO_ROOT, 'monitoring/prometheus/alerts.yaml'),
    ...overrides,
  };
}

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('infra: Kubernetes target (mocked cluster)', function () {
  let run: StackRun<unknown>;
  const one = (type: string): Obj => run.one(type, '').inputs as Obj;

  before(async function () {
    run = await runUnderMocks('k8s', () => { new SignetKubernetes('fabrikam', k8sArgs()); return {}; });
  });

  it('runs ≥3 replicas spread across zones as a non-root, read-only, capability-free container', function () {
    const spec = one('kubernetes:apps/v1:Deployment').spec as Obj;
    expect(spec.replicas).to.be.at.least(3);
    const pod = spec.template.spec as Obj;
    const zoneSpread = (pod.topologySpreadConstraints as Obj[]).find((c) => c.topologyKey === 'topology.kubernetes.io/zone');
    expect(zoneSpread).to.deep.include({ maxSkew: 1, whenUnsatisfiable: 'DoNotSchedule' });
    expect(pod.securityContext).to.deep.include({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    const container = pod.containers[0] as Obj;
    expect(container.securityContext).to.deep.equal({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
    expect(container.resources.limits).to.have.keys('cpu', 'memory');
    expect(container.resources.requests).to.have.keys('cpu', 'memory');
    expect(container.ports.find((p: Obj) => p.name === 'smtp').containerPort).to.equal(SMTP_CONTAINER_PORT);
  });

  it('probes /readyz and /healthz and drains within the termination grace period', function () {
    const pod = (one('kubernetes:apps/v1:Deployment').spec as Obj).template.spec as Obj;
    const container = pod.containers[0] as Obj;
    expect(container.readinessProbe.httpGet).to.deep.equal({ path: '/readyz', port: 'http' });
    expect(container.livenessProbe.httpGet).to.deep.equal({ path: '/healthz', port: 'http' });
    const preStop = container.lifecycle.preStop.sleep.seconds as number;
    const relay = parse((one('kubernetes:core/v1:ConfigMap').data as Obj)['relay.yaml']) as Obj;
    expect(pod.terminationGracePeriodSeconds).to.be.greaterThan(preStop + relay.limits.drainSeconds);
  });

  it('mounts a relay config the relay accepts, listening on 2525 with the Key Vault certificate files', function () {
    const text = (one('kubernetes:core/v1:ConfigMap').data as Obj)['relay.yaml'] as string;
    const relay = parseRelayConfig(parse(text), '/etc/signet/relay.yaml', '/etc/signet');
    expect(relay.listen).to.deep.equal([{ host: '0.0.0.0', port: SMTP_CONTAINER_PORT }]);
    expect(relay.tls.cert).to.equal('/etc/signet/tls/tls.crt');
    // rollback protection survives a container restart: the state directory is a volume, not the read-only root
    const pod = (one('kubernetes:apps/v1:Deployment').spec as Obj).template.spec as Obj;
    const mount = (pod.containers[0].volumeMounts as Obj[]).find((m) => m.mountPath === relay.stateDir) as Obj;
    expect(mount, `a volume at ${relay.stateDir}`).to.not.equal(undefined);
    expect((pod.volumes as Obj[]).find((v) => v.name === mount.name)).to.deep.include({ emptyDir: { sizeLimit: '1Mi' } });
    expect(relay.downstream.tls.key).to.equal('/etc/signet/tls/tls.key');
    expect(relay.directory.graph?.clientId).to.equal(CLIENT_ID);
  });

  it('exposes SMTP on a LoadBalancer port 25 → 2525 with externalTrafficPolicy Local and Exchange Online source ranges', function () {
    const services = run.ofType('kubernetes:core/v1:Service').map((s) => s.inputs as Obj);
    const smtp = services.find((s) => s.spec.type === 'LoadBalancer') as Obj;
    expect(smtp.spec.externalTrafficPolicy).to.equal('Local');
    expect(smtp.spec.ports).to.deep.equal([{ name: 'smtp', port: 25, targetPort: 'smtp', protocol: 'TCP' }]);
    expect(smtp.spec.loadBalancerSourceRanges).to.deep.equal(EXCHANGE_ONLINE_RANGES.filter((r) => !r.includes(':')));
    expect(services.filter((s) => s.spec.type === 'LoadBalancer')).to.have.length(1);
  });

  it('keeps a PodDisruptionBudget and an autoscaling/v2 HPA that never goes below the replica floor', function () {
    expect(one('kubernetes:policy/v1:PodDisruptionBudget').spec).to.deep.include({ maxUnavailable: 1 });
    const hpa = one('kubernetes:autoscaling/v2:HorizontalPodAutoscaler').spec as Obj;
    expect(hpa.minReplicas).to.be.at.least(3);
    expect(hpa.maxReplicas).to.be.greaterThan(hpa.minReplicas);
    expect(hpa.scaleTargetRef).to.deep.include({ kind: 'Deployment', apiVersion: 'apps/v1' });
    // once the HPA has scaled, the stack must not re-apply its initial replica count (SSA conflict or a scale-in)
    expect(run.one('kubernetes:apps/v1:Deployment', '').ignoreChanges).to.include('spec.replicas');
  });

  it('admits SMTP only from Exchange Online and metrics only from the Prometheus namespace', function () {
    const policy = one('kubernetes:networking.k8s.io/v1:NetworkPolicy').spec as Obj;
    expect(policy.policyTypes).to.deep.equal(['Ingress', 'Egress']);
    const [smtp, metrics] = policy.ingress as Obj[];
    expect((smtp?.from as Obj[]).map((f) => f.ipBlock.cidr)).to.deep.equal([...EXCHANGE_ONLINE_RANGES]);
    expect(smtp?.ports).to.deep.equal([{ protocol: 'TCP', port: SMTP_CONTAINER_PORT }]);
    expect(metrics?.from).to.deep.equal([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
    expect(policy.ingress).to.have.length(2);
  });

  it('reads the certificate from Key Vault with workload identity through a SecretProviderClass', function () {
    const spc = one('kubernetes:secrets-store.csi.x-k8s.io/v1:SecretProviderClass') as Obj;
    expect(spc.spec.provider).to.equal('azure');
    expect(spc.spec.parameters).to.deep.include({ usePodIdentity: 'false', clientID: CLIENT_ID, keyvaultName: 'kv-fabrikam-abc123' });
    const objects = (parse(spc.spec.parameters.objects) as { array: string[] }).array.map((o) => parse(o) as Obj);
    expect(objects).to.deep.equal([{ objectName: 'node0-tls', objectType: 'secret', objectAlias: 'node.pem' }]);
    expect(spc.spec.secretObjects[0].type).to.equal('kubernetes.io/tls');
    const sa = one('kubernetes:core/v1:ServiceAccount') as Obj;
    expect(sa.metadata.annotations['azure.workload.identity/client-id']).to.equal(CLIENT_ID);
    const pod = (one('kubernetes:apps/v1:Deployment').spec as Obj).template as Obj;
    expect(pod.metadata.labels['azure.workload.identity/use']).to.equal('true');
    const csi = (pod.spec.volumes as Obj[]).find((v) => v.csi);
    expect(csi?.csi).to.deep.include({ driver: 'secrets-store.csi.k8s.io', readOnly: true });
  });

  it('labels the ServiceMonitor and the PrometheusRule for the Prometheus operator\'s selector when asked (kube-prometheus-stack: release)', async function () {
    const labelled = await runUnderMocks('k8s-labelled', () => { new SignetKubernetes('fabrikam', k8sArgs({ prometheusSelectorLabels: { release: 'kube-prometheus-stack' } })); return {}; });
    for (const kind of ['ServiceMonitor', 'PrometheusRule']) {
      const resource = labelled.ofType(`kubernetes:monitoring.coreos.com/v1:${kind}`)[0]?.inputs as Obj;
      expect(resource.metadata.labels, kind).to.include({ release: 'kube-prometheus-stack', 'app.kubernetes.io/name': 'signet' });
    }
    expect((one('kubernetes:monitoring.coreos.com/v1:ServiceMonitor') as Obj).metadata.labels).to.not.have.property('release');
  });

  it('installs a ServiceMonitor and the repository\'s alert rules as a PrometheusRule that promtool accepts', function () {
    const monitor = one('kubernetes:monitoring.coreos.com/v1:ServiceMonitor') as Obj;
    expect(monitor.spec.endpoints).to.deep.equal([{ port: 'http', path: '/metrics', interval: '30s' }]);
    const metricsService = run.ofType('kubernetes:core/v1:Service').map((s) => s.inputs as Obj).find((s) => s.spec.type === 'ClusterIP') as Obj;
    for (const [k, v] of Object.entries(monitor.spec.selector.matchLabels as Record<string, string>)) expect(metricsService.metadata.labels[k], k).to.equal(v);
    // the job label the alert rules query (up{job="signet"}) comes from the Service label jobLabel names
    const jobs = [...readFileSync(path.join(REPO_ROOT, 'monitoring/prometheus/alerts.yaml'), 'utf8').matchAll(/job="([^"]+)"/g)].map((m) => m[1]);
    expect(jobs).to.include('signet');
    expect(metricsService.metadata.labels[monitor.spec.jobLabel as string]).to.equal('signet');
    const rule = one('kubernetes:monitoring.coreos.com/v1:PrometheusRule') as Obj;
    const groups = rule.spec.groups as Obj[];
    const expected = parse(readFileSync(path.join(REPO_ROOT, 'monitoring/prometheus/alerts.yaml'), 'utf8')) as { groups: Obj[] };
    expect(groups).to.deep.equal(expected.groups);
    if (spawnSync('sh', ['-c', 'command -v promtool']).status !== 0) this.skip(); // .ci/run installs prometheus (promtool)
    const dir = mkdtempSync(path.join(tmpdir(), 'signet-k8s-'));
    try {
      const file = path.join(dir, 'rules.yaml');
      writeFileSync(file, stringify({ groups }));
      const result = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
      expect(result.status, result.stdout + result.stderr).to.equal(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('federates a tenant identity with only the relay service account, holding exactly a node\'s roles', async function () {
    const rg = `/subscriptions/${SUBSCRIPTION_ID}/resourceGroups/rg-signet-fabrikam`;
    const vaultId = `${rg}/providers/Microsoft.KeyVault/vaults/kv-fabrikam-abc123`;
    const identity = await runUnderMocks('k8s-identity', () => {
      new SignetWorkloadIdentity('fabrikam-k8s', {
        tenantName: 'fabrikam', location: 'westeurope', resourceGroupName: 'rg-signet-fabrikam', subscriptionId: SUBSCRIPTION_ID,
        oidcIssuerUrl: 'https://westeurope.oic.prod-aks.azure.com/tenant/cluster/', namespace: 'signet-fabrikam',
        vaultId, orgKeyResourceId: `${vaultId}/keys/org-config-key`, configSigningKeyResourceId: `${vaultId}/keys/org-config-key-signing`,
        configContainerId: `${rg}/providers/Microsoft.Storage/storageAccounts/stfabrikamabc123/blobServices/default/containers/config`,
      });
      return {};
    });
    const federation = identity.one('azure-native:managedidentity:FederatedIdentityCredential', '').inputs as Obj;
    expect(federation).to.deep.include({ subject: 'system:serviceaccount:signet-fabrikam:signet', audiences: ['api://AzureADTokenExchange'], resourceGroupName: 'rg-signet-fabrikam' });
    const grants = identity.ofType('azure-native:authorization:RoleAssignment').map((r) => [String(r.inputs.roleDefinitionId).split('/').pop(), r.inputs.scope]);
    expect(grants).to.have.deep.members([
      ['12338af0-0e69-4776-bea7-57ae8d297424', `${vaultId}/keys/org-config-key`],
      ['21090545-7ca7-4776-b22c-e363652d74d2', `${vaultId}/keys/org-config-key-signing`],
      ['4633458b-17de-408a-b874-0445c86b69e6', vaultId],
      ['2a2b9908-6ea1-4ae2-8e65-a410df84e7d1', `${rg}/providers/Microsoft.Storage/storageAccounts/stfabrikamabc123/blobServices/default/containers/config`],
    ]);
  });

  it('gives the SMTP load balancer an Azure DNS label when asked, and reports its address and name for the smart-host record', async function () {
    const plain = await runUnderMocks('k8s-plain', () => {
      const k = new SignetKubernetes('plain', k8sArgs());
      return { address: k.loadBalancerAddress, fqdn: k.smtpFqdn };
    });
    const plainSmtp = plain.ofType('kubernetes:core/v1:Service').map((s) => s.inputs as Obj).find((s) => s.spec.type === 'LoadBalancer') as Obj;
    expect(plainSmtp.metadata.annotations).to.equal(undefined);
    expect(plain.outputs).to.deep.equal({ address: '20.60.0.10', fqdn: undefined });

    const named = await runUnderMocks('k8s-dns', () => {
      const k = new SignetKubernetes('named', k8sArgs({ publicDns: { label: 'signet-fabrikam-x1y2', location: 'westeurope' } }));
      return { address: k.loadBalancerAddress, fqdn: k.smtpFqdn };
    });
    const services = named.ofType('kubernetes:core/v1:Service').map((s) => s.inputs as Obj);
    const smtp = services.find((s) => s.spec.type === 'LoadBalancer') as Obj;
    expect(smtp.metadata.annotations).to.deep.equal({ 'service.beta.kubernetes.io/azure-dns-label-name': 'signet-fabrikam-x1y2' });
    expect(services.find((s) => s.spec.type === 'ClusterIP')!.metadata.annotations).to.equal(undefined);
    expect(named.outputs).to.deep.equal({ address: '20.60.0.10', fqdn: 'signet-fabrikam-x1y2.westeurope.cloudapp.azure.com' });

    for (const [publicDns, problem] of [
      [{ label: 'Signet_Fabrikam', location: 'westeurope' }, /publicDns.label "Signet_Fabrikam" is not an Azure DNS label/],
      [{ label: 'signet-', location: 'westeurope' }, /publicDns.label "signet-"/],
      [{ label: 'signet-fabrikam', location: 'West Europe' }, /publicDns.location "West Europe" is not an Azure region name/],
    ] as const) {
      let thrown: Error | undefined;
      await runUnderMocks('k8s-bad-dns', () => {
        try { new SignetKubernetes('bad', k8sArgs({ publicDns })); } catch (error) { thrown = error as Error; }
        return {};
      });
      expect(thrown?.message).to.match(problem);
    }
  });

  it('lets the cluster\'s subnets (signet:clusterSubnetIds) through the tenant\'s Key Vault and storage firewalls, beside the stack\'s own', async function () {
    const artifact = placeholderArtifact();
    try {
      const aks = `/subscriptions/${SUBSCRIPTION_ID}/resourceGroups/rg-aks/providers/Microsoft.Network/virtualNetworks/vnet-aks/subnets/aks-nodes`;
      const stack = await runUnderMocks('fabrikam', () => createTenantStack(parseStackConfig(fabrikam(artifact.path, { clusterSubnetIds: [aks] })), { baseDir: REPO_ROOT }));
      const vault = stack.one('azure-native:keyvault:Vault', 'kv').inputs.properties as Obj;
      expect(vault.networkAcls).to.deep.include({ defaultAction: 'Deny', bypass: 'None' });
      const vaultSubnets = (vault.networkAcls.virtualNetworkRules as Obj[]).map((r) => r.id as string);
      expect(vaultSubnets.map((id) => id.split('/').pop())).to.deep.equal(['nodes', 'monitoring', 'aks-nodes']);
      expect(vaultSubnets[2]).to.equal(aks);
      // a subnet without the Key Vault service endpoint fails the deployment instead of being skipped
      expect((vault.networkAcls.virtualNetworkRules as Obj[]).every((r) => r.ignoreMissingVnetServiceEndpoint === false)).to.equal(true);
      const storage = stack.one('azure-native:storage:StorageAccount', 'st').inputs.networkRuleSet as Obj;
      expect(storage).to.deep.include({ defaultAction: 'Deny', bypass: 'None' });
      expect((storage.virtualNetworkRules as Obj[]).map((r) => [r.virtualNetworkResourceId.split('/').pop(), r.action])).to.deep.equal([['nodes', 'Allow'], ['monitoring', 'Allow'], ['aks-nodes', 'Allow']]);
      expect((storage.virtualNetworkRules as Obj[])[2]!.virtualNetworkResourceId).to.equal(aks);
    } finally {
      artifact.cleanup();
    }
  });

  it('refuses fewer than three replicas', async function () {
    let thrown: Error | undefined;
    await runUnderMocks('k8s-small', () => {
      try { new SignetKubernetes('small', k8sArgs({ replicas: 2 })); } catch (error) { thrown = error as Error; }
      return {};
    });
    expect(thrown?.message).to.match(/replicas must be at least 3/);
  });
});
