// One tenant's deployment, composed from the components in dependency order.
// A function (not top-level code) so tests can run it under mocks with the
// config of their choosing; infra/index.ts calls it for `pulumi up`.
import * as pulumi from '@pulumi/pulumi';
import * as authorization from '@pulumi/azure-native/authorization';
import * as random from '@pulumi/random';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { grafanaFrontDoorWarning, smartHostOf, vmAvailabilityAlertsWarning, type StackConfig } from './config';
import { VmAvailabilityAlerts, type WatchedVm } from './components/alerts';
import { ArtifactStore } from './components/artifacts';
import { NodeCertificates } from './components/certificates';
import { TenantIdentities } from './components/identities';
import { TenantKeyVault } from './components/keyvault';
import { ALERTS_BLOB, DASHBOARD_BLOB, Monitoring } from './components/monitoring';
import { logicalName, tenantContext } from './components/naming';
import { TenantNetwork } from './components/network';
import { nodeFqdnOf, ProcessingNodes } from './components/nodes';
import { HealthRouting, TRAFFIC_MANAGER_TTL_SECONDS } from './components/routing';
import type { StackOutputs } from './outputs';

export type StackOutputValues = { [K in keyof StackOutputs]: pulumi.Input<StackOutputs[K]> };

export interface TenantStackOptions {
  /** Repository root: relative paths in config and the monitoring files resolve from here. */
  baseDir: string;
}

/** The repository's monitoring files, read at deploy time. */
export function monitoringFilePaths(baseDir: string): Record<string, string> {
  return {
    [DASHBOARD_BLOB]: path.join(baseDir, 'monitoring/grafana/signet-dashboard.json'),
    [ALERTS_BLOB]: path.join(baseDir, 'monitoring/prometheus/alerts.yaml'),
  };
}

function dashboardUid(file: string): string {
  let parsed: { uid?: unknown };
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as { uid?: unknown };
  } catch (error) {
    throw new pulumi.RunError(`monitoring: cannot read the Grafana dashboard ${file}: ${(error as Error).message}`);
  }
  return typeof parsed.uid === 'string' && parsed.uid ? parsed.uid : 'signet';
}

export function createTenantStack(config: StackConfig, options: TenantStackOptions): StackOutputValues {
  const ctx = tenantContext(config);
  // Front Door asked for but impossible (no origin certificate it accepts): said once, here; the components publish none.
  // (privateOperatorRanges while Grafana is published warns about nothing: they still admit the nodes' health port,
  // and operators reach a published Grafana at its Front Door address like anyone.)
  const frontDoorWarning = grafanaFrontDoorWarning(config);
  if (frontDoorWarning) void pulumi.log.warn(frontDoorWarning);
  // No address for Azure Monitor's VM alerts: every alert depends on the monitoring VM; said once, here.
  const vmAlertsWarning = vmAvailabilityAlertsWarning(config);
  if (vmAlertsWarning) void pulumi.log.warn(vmAlertsWarning);
  const client = authorization.getClientConfigOutput();

  // One random suffix for every globally unique name (vault, storage, DNS labels, Traffic Manager).
  const suffix = new random.RandomString(logicalName(ctx, 'suffix'), { length: 6, upper: false, special: false, lower: true, numeric: true }).result;

  const net = new TenantNetwork(logicalName(ctx, 'network'), { ctx });
  const rg = net.resourceGroupName;
  const identities = new TenantIdentities(logicalName(ctx, 'identities'), { ctx, resourceGroupName: rg });
  // what the Key Vault and storage firewalls admit: the stack's subnets and a relay cluster's (infra/k8s)
  const subnetIds = [net.nodeSubnetId, net.monitoringSubnetId, ...config.clusterSubnetIds];

  const vault = new TenantKeyVault(logicalName(ctx, 'keyvault'), {
    ctx, resourceGroupName: rg, suffix, azureTenantId: client.tenantId, subscriptionId: client.subscriptionId,
    subnetIds, nodeIdentities: identities.nodes,
  });

  const monitoringFiles = config.monitoring.enabled ? monitoringFilePaths(options.baseDir) : {};
  const uid = config.monitoring.enabled ? dashboardUid(monitoringFiles[DASHBOARD_BLOB] as string) : '';
  const store = new ArtifactStore(logicalName(ctx, 'artifacts'), {
    ctx, resourceGroupName: rg, suffix, subscriptionId: client.subscriptionId, subnetIds,
    nodeIdentities: identities.nodes, monitoringIdentity: identities.monitoring,
    monitoringFiles, baseDir: options.baseDir,
  });

  const nodeFqdns = Array.from({ length: config.nodeCount }, (_, i) => suffix.apply((s) => nodeFqdnOf(config.tenantName, i, s, config.location)));
  const certs = new NodeCertificates(logicalName(ctx, 'certificates'), {
    ctx, resourceGroupName: rg, vaultName: vault.vaultName, nodeFqdns, baseDir: options.baseDir,
  });

  const nodes = new ProcessingNodes(logicalName(ctx, 'nodes'), {
    ctx, resourceGroupName: rg, subnetId: net.nodeSubnetId, identities: identities.nodes, suffix,
    vaultUri: vault.vaultUri, orgKeyId: vault.orgKeyId,
    configBundleUrl: store.configBundleUrl, artifactUrl: store.artifactUrl, artifactSha256: store.artifactSha256,
    tlsSecretNames: certs.nodes.map((n) => n.secretName),
    tlsThumbprints: certs.nodes.map((n) => n.thumbprint),
    // Nodes fetch secrets and blobs with their identity at first boot: grants and content first.
    dependsOn: [vault, store, certs],
  });

  const routing = new HealthRouting(logicalName(ctx, 'routing'), {
    ctx, resourceGroupName: rg, suffix, nodes: nodes.nodes.map((n) => ({ name: n.name, publicIp: n.publicIp })),
  });

  let dashboardUrl: pulumi.Input<string> = '';
  let monitoringFqdn: pulumi.Input<string> = '';
  // Every VM Azure Monitor watches: a lost node pages harder than a lost monitoring VM (mail still flows).
  const watched: WatchedVm[] = nodes.nodes.map((n) => ({ role: n.name, vm: n.vm, size: config.nodeSize, severity: 1 }));
  if (config.monitoring.enabled && identities.monitoring) {
    const monitoring = new Monitoring(logicalName(ctx, 'monitoring'), {
      ctx, resourceGroupName: rg, subnetId: net.monitoringSubnetId, suffix, identity: identities.monitoring,
      subscriptionId: client.subscriptionId, vaultName: vault.vaultName, vaultId: vault.vault.id, vaultUri: vault.vaultUri,
      fileUrls: store.monitoringFileUrls, fileHashes: store.monitoringFileHashes,
      scrapeTargets: nodes.nodes.map((n) => `${n.privateIp}:${config.httpPort}`),
      ...(certs.monitoringOrigin ? { originCertificate: certs.monitoringOrigin } : {}),
      dependsOn: [store],
    });
    dashboardUrl = monitoring.dashboardUrl.apply((u) => u.replace(/\/d\/signet\b/, `/d/${uid}`));
    monitoringFqdn = monitoring.fqdn;
    watched.push({ role: 'monitoring', vm: monitoring.vm, size: config.monitoring.vmSize, severity: 2 });
  }

  // Out of band: evaluated by Azure, so it still fires when the monitoring VM is down.
  if (config.alertEmails.length > 0) {
    new VmAvailabilityAlerts(logicalName(ctx, 'vm-alerts'), { ctx, resourceGroupName: rg, emails: config.alertEmails, vms: watched });
  }

  const smartHost = smartHostOf(config);
  return {
    tenantName: config.tenantName,
    orgId: config.orgId,
    tenantId: config.tenantId,
    location: config.location,
    resourceGroupName: rg,
    smartHostFqdn: smartHost,
    trafficManagerFqdn: routing.fqdn,
    smartHostCname: routing.fqdn.apply((target) => ({ name: smartHost, type: 'CNAME' as const, target, ttl: TRAFFIC_MANAGER_TTL_SECONDS })),
    certificateDomain: config.certificateDomain,
    downstreamSmartHost: config.downstreamSmartHost,
    acceptedDomains: config.acceptedDomains,
    nodes: pulumi.all(nodes.nodes.map((n, i) => {
      const cert = certs.nodes[i];
      if (!cert) throw new pulumi.RunError(`no certificate for ${n.name}`);
      return pulumi.all([n.fqdn, n.publicIp, cert.thumbprint, cert.expiresAt]).apply(([fqdn, publicIp, thumbprint, expiresAt]) => ({
        name: n.name, zone: n.zone, fqdn, publicIp, privateIp: n.privateIp,
        certificateThumbprint: thumbprint, certificateExpiresAt: expiresAt, tlsSecretName: cert.secretName,
      }));
    })),
    vaultUri: vault.vaultUri,
    vaultName: vault.vaultName,
    orgKeyId: vault.orgKeyId,
    configSigningKeyId: vault.signingKeyId,
    vaultResourceId: vault.vault.id,
    orgKeyResourceId: vault.orgKey.id,
    configSigningKeyResourceId: vault.signingKey.id,
    configContainerResourceId: store.configContainerId,
    configBundleUrl: store.configBundleUrl,
    storageAccountName: store.account.name,
    applianceVersion: config.applianceVersion,
    artifactUrl: store.artifactUrl,
    artifactSha256: store.artifactSha256,
    httpPort: config.httpPort,
    dashboardUrl,
    monitoringFqdn,
    devCaCertificatePem: certs.caCertificatePem ?? '',
  };
}
