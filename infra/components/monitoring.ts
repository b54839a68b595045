// Monitoring: one small VM in the monitoring subnet runs Prometheus (Ubuntu's
// package) scraping every node's /metrics over the private network and
// evaluating the repository's alert rules, and Grafana (a pinned container
// image) provisioned with the repository's dashboard. Chosen over Azure
// Monitor workspace + Managed Grafana because the repository's files load
// as they are (a Prometheus rule file, a Grafana dashboard JSON) with no
// translation into Azure rule groups and no Grafana API calls at deploy
// time, and the metrics never leave the tenant's network. Grafana is
// published only through Front Door (HTTPS), its origin port open only to
// the AzureFrontDoor.Backend service tag and held by a reverse proxy that
// admits only this stack's Front Door profile (its X-Azure-FDID); Grafana
// itself listens on loopback. Front Door reaches the proxy over HTTPS too,
// checking the origin certificate's name: the leg from Front Door's edge to
// the VM's public address crosses the internet with Grafana's logins on it.
// Front Door accepts only a public CA's certificate there, so a stack without
// the operator's (a development one) keeps Grafana on the private network,
// as with frontDoor off; operators then reach it from the private ranges the
// stack admits (`privateOperatorRanges`: a VPN, a Bastion or jump host subnet).
// The VM's public IP carries a DNS label (the `monitoringFqdn` output): the
// target of the CNAME at `originHostName`, the name Front Door connects to.
import * as pulumi from '@pulumi/pulumi';
import * as authorization from '@pulumi/azure-native/authorization';
import * as cdn from '@pulumi/azure-native/cdn';
import * as compute from '@pulumi/azure-native/compute';
import * as keyvault from '@pulumi/azure-native/keyvault';
import * as network from '@pulumi/azure-native/network';
import * as random from '@pulumi/random';
import { GRAFANA_ORIGIN_PORT, renderMonitoringCloudInit, renderMonitoringConvergeScript, type MonitoringValues } from '../cloud-init';
import { azurePublicDnsName, BUILTIN_ROLES, logicalName, resourceName, roleDefinitionId, type TenantContext } from './naming';
import { hostAddress, UBUNTU_IMAGE } from './nodes';
import type { NodeIdentity } from './identities';
import type { NodeCertificate } from './certificates';
import { grafanaFrontDoorOrigin } from '../config';

export const GRAFANA_PASSWORD_SECRET = 'grafana-admin-password';
export const DASHBOARD_BLOB = 'signet-dashboard.json';
export const ALERTS_BLOB = 'alerts.yaml';

/** The DNS label of the monitoring VM's public IP; known before the IP exists (as the nodes' are). */
export function monitoringDnsLabel(tenantName: string, suffix: string): string {
  return `signet-${tenantName}-mon-${suffix}`;
}

/** The monitoring VM's public DNS name: what the CNAME at `monitoring.originHostName` points at. */
export function monitoringFqdnOf(tenantName: string, suffix: string, location: string): string {
  return azurePublicDnsName(monitoringDnsLabel(tenantName, suffix), location);
}

export interface MonitoringArgs {
  ctx: TenantContext;
  resourceGroupName: pulumi.Input<string>;
  subnetId: pulumi.Input<string>;
  suffix: pulumi.Input<string>;
  identity: NodeIdentity;
  subscriptionId: pulumi.Input<string>;
  vaultName: pulumi.Input<string>;
  vaultId: pulumi.Input<string>;
  vaultUri: pulumi.Input<string>;
  fileUrls: Record<string, pulumi.Input<string>>;
  fileHashes: Record<string, string>;
  scrapeTargets: string[];
  /** Grafana's origin certificate (imported), required when the stack publishes Grafana through Front Door. */
  originCertificate?: NodeCertificate;
  dependsOn: pulumi.Input<pulumi.Resource>[];
}

export class Monitoring extends pulumi.ComponentResource {
  readonly dashboardUrl: pulumi.Output<string>;
  /** The public IP's DNS name (its label in the region's cloudapp.azure.com zone). */
  readonly fqdn: pulumi.Output<string>;
  readonly vm: compute.VirtualMachine;
  readonly converge: compute.VirtualMachineRunCommandByVirtualMachine;

  constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super('signet:infra:Monitoring', name, {}, opts);
    const { ctx } = args;
    const c = ctx.config;
    const parent = { parent: this };
    const zone = c.zones[0] as string;

    const password = new random.RandomPassword(logicalName(ctx, 'grafana-password'), { length: 32, special: false }, parent);
    const secret = new keyvault.Secret(logicalName(ctx, 'grafana-password-secret'), {
      secretName: GRAFANA_PASSWORD_SECRET,
      vaultName: args.vaultName,
      resourceGroupName: args.resourceGroupName,
      tags: ctx.tags,
      properties: { value: password.result, contentType: 'text/plain' },
    }, parent);
    // Scoped to this one secret: the monitoring VM cannot read node keys.
    const secretReader = new authorization.RoleAssignment(logicalName(ctx, 'ra-monitoring-grafana-secret'), {
      principalId: args.identity.principalId,
      principalType: 'ServicePrincipal',
      roleDefinitionId: pulumi.output(args.subscriptionId).apply((s) => roleDefinitionId(s, BUILTIN_ROLES.keyVaultSecretsUser)),
      scope: pulumi.interpolate`${args.vaultId}/secrets/${GRAFANA_PASSWORD_SECRET}`,
      description: 'Signet monitoring: read the Grafana admin password',
    }, { parent: this, dependsOn: [secret] });

    // Egress (packages, container image), and Front Door's way in: the NSG admits Front Door alone on the origin
    // port, and only when Grafana is published. Its DNS name is the CNAME target of the origin host name.
    const pip = new network.PublicIPAddress(logicalName(ctx, 'pip-monitoring'), {
      publicIpAddressName: resourceName(ctx, 'pip', 'monitoring'),
      resourceGroupName: args.resourceGroupName, location: c.location, tags: ctx.tags,
      sku: { name: 'Standard', tier: 'Regional' },
      publicIPAllocationMethod: 'Static',
      zones: [zone],
      dnsSettings: { domainNameLabel: pulumi.output(args.suffix).apply((s) => monitoringDnsLabel(c.tenantName, s)) },
    }, parent);
    this.fqdn = pulumi.output(args.suffix).apply((s) => monitoringFqdnOf(c.tenantName, s, c.location));
    const privateIp = hostAddress(c.monitoringSubnetCidr, 4, 'monitoringSubnetCidr');
    const nic = new network.NetworkInterface(logicalName(ctx, 'nic-monitoring'), {
      networkInterfaceName: resourceName(ctx, 'nic', 'monitoring'),
      resourceGroupName: args.resourceGroupName, location: c.location, tags: ctx.tags,
      ipConfigurations: [{ name: 'primary', primary: true, subnet: { id: args.subnetId }, privateIPAllocationMethod: 'Static', privateIPAddress: privateIp, publicIPAddress: { id: pip.id } }],
    }, parent);

    // Front Door first: Grafana needs its public URL (root_url) for redirects and links.
    let profile: cdn.Profile | undefined;
    let endpoint: cdn.AFDEndpoint | undefined;
    // Only with an origin certificate Front Door accepts (see grafanaFrontDoorOrigin).
    const frontDoor = grafanaFrontDoorOrigin(c);
    if (frontDoor) {
      profile = new cdn.Profile(logicalName(ctx, 'afd'), {
        profileName: resourceName(ctx, 'afd'),
        resourceGroupName: args.resourceGroupName, location: 'global', tags: ctx.tags,
        sku: { name: 'Standard_AzureFrontDoor' },
      }, parent);
      endpoint = new cdn.AFDEndpoint(logicalName(ctx, 'afd-endpoint'), {
        endpointName: pulumi.output(args.suffix).apply((s) => `signet-${c.tenantName}-${s}`),
        profileName: profile.name, resourceGroupName: args.resourceGroupName, location: 'global', tags: ctx.tags,
        enabledState: 'Enabled',
      }, parent);
    }
    const grafanaRootUrl = endpoint ? pulumi.interpolate`https://${endpoint.hostName}/` : pulumi.output(`http://${privateIp}:${GRAFANA_ORIGIN_PORT}/`);
    // The service tag admits every customer's Front Door: the VM's proxy checks requests carry this profile's id.
    const frontDoorId = profile ? profile.frontDoorId : pulumi.output(undefined);

    const dashboard = args.fileUrls[DASHBOARD_BLOB];
    const alerts = args.fileUrls[ALERTS_BLOB];
    if (!dashboard || !alerts) throw new pulumi.RunError('monitoring needs the dashboard and alert rule files');
    const origin = frontDoor ? args.originCertificate : undefined;
    if (frontDoor && !origin) throw new pulumi.RunError('monitoring: Grafana\'s Front Door origin needs its certificate');
    const originTls = origin ? origin.thumbprint.apply((thumbprint) => ({ secretName: origin.secretName, thumbprint })) : pulumi.output(undefined);
    // Scoped to this one secret, like the password's.
    const originSecretReader = origin ? new authorization.RoleAssignment(logicalName(ctx, 'ra-monitoring-origin-tls'), {
      principalId: args.identity.principalId,
      principalType: 'ServicePrincipal',
      roleDefinitionId: pulumi.output(args.subscriptionId).apply((s) => roleDefinitionId(s, BUILTIN_ROLES.keyVaultSecretsUser)),
      scope: pulumi.interpolate`${args.vaultId}/secrets/${origin.secretName}`,
      description: 'Signet monitoring: read Grafana\'s origin certificate',
    }, parent) : undefined;
    const values = pulumi.all([args.identity.clientId, args.vaultUri, dashboard, alerts, grafanaRootUrl, frontDoorId, originTls]).apply(([clientId, vaultUri, dashboardUrl, alertsUrl, rootUrl, fdid, tls]): MonitoringValues => ({
      grafanaRootUrl: rootUrl,
      identityClientId: clientId,
      vaultUri,
      grafanaPasswordSecret: GRAFANA_PASSWORD_SECRET,
      grafanaImage: c.monitoring.grafanaImage,
      files: {
        dashboard: { url: dashboardUrl, sha256: args.fileHashes[DASHBOARD_BLOB] ?? '' },
        alerts: { url: alertsUrl, sha256: args.fileHashes[ALERTS_BLOB] ?? '' },
      },
      scrapeTargets: args.scrapeTargets,
      httpPort: c.httpPort,
      tenantName: c.tenantName,
      // Never silently without the check: a profile whose id is missing fails the render.
      ...(profile ? { frontDoorId: fdid ?? '' } : {}),
      ...(tls ? { originTls: tls } : {}),
    }));

    this.vm = new compute.VirtualMachine(logicalName(ctx, 'vm-monitoring'), {
      vmName: resourceName(ctx, 'vm', 'monitoring'),
      resourceGroupName: args.resourceGroupName, location: c.location, tags: ctx.tags,
      zones: [zone],
      hardwareProfile: { vmSize: c.monitoring.vmSize },
      identity: { type: 'UserAssigned', userAssignedIdentities: [args.identity.id] },
      storageProfile: {
        imageReference: { ...UBUNTU_IMAGE },
        osDisk: { createOption: 'FromImage', deleteOption: 'Delete', caching: 'ReadWrite', managedDisk: { storageAccountType: 'StandardSSD_LRS' } },
      },
      securityProfile: { securityType: 'TrustedLaunch', uefiSettings: { secureBootEnabled: true, vTpmEnabled: true } },
      osProfile: {
        computerName: `signet-${c.tenantName}-monitoring`.slice(0, 63),
        adminUsername: c.adminUsername,
        customData: values.apply((v) => Buffer.from(renderMonitoringCloudInit(v), 'utf8').toString('base64')),
        linuxConfiguration: {
          disablePasswordAuthentication: true,
          provisionVMAgent: true,
          ssh: { publicKeys: [{ path: `/home/${c.adminUsername}/.ssh/authorized_keys`, keyData: c.sshPublicKey }] },
        },
      },
      // Detach: the NIC is this stack's own resource and outlives the VM (see nodes.ts).
      networkProfile: { networkInterfaces: [{ id: nic.id, primary: true, deleteOption: 'Detach' }] },
      diagnosticsProfile: { bootDiagnostics: { enabled: true } },
      // Custom data runs once; later changes (dashboard, rules, targets, the Front Door proxy) go through the Run Command below.
      // Fixed name and a NIC that serves one VM at a time: a rebuild deletes the old VM first.
    }, { parent: this, dependsOn: [secretReader, ...(originSecretReader ? [originSecretReader] : []), ...args.dependsOn], ignoreChanges: ['osProfile.customData'], deleteBeforeReplace: true });

    this.converge = new compute.VirtualMachineRunCommandByVirtualMachine(logicalName(ctx, 'converge-monitoring'), {
      runCommandName: 'signet-monitoring-converge',
      vmName: this.vm.name,
      resourceGroupName: args.resourceGroupName,
      location: c.location,
      // Names the VM instance: a rebuilt VM (new vmId) is converged to the current values again.
      source: { script: pulumi.all([values, this.vm.vmId]).apply(([v, vmId]) => renderMonitoringConvergeScript(v, vmId)) },
      asyncExecution: false,
      treatFailureAsDeploymentFailure: true,
      timeoutInSeconds: 1800,
    }, { parent: this, dependsOn: [this.vm] });

    if (frontDoor && profile && endpoint) {
      const group = new cdn.AFDOriginGroup(logicalName(ctx, 'afd-grafana'), {
        originGroupName: 'grafana',
        profileName: profile.name, resourceGroupName: args.resourceGroupName,
        healthProbeSettings: { probePath: '/api/health', probeProtocol: 'Https', probeRequestType: 'GET', probeIntervalInSeconds: 60 },
        loadBalancingSettings: { sampleSize: 4, successfulSamplesRequired: 3, additionalLatencyInMilliseconds: 50 },
      }, parent);
      // One name for the connection, the TLS server name, the Host header and the certificate check: the
      // operator's origin host name (its certificate is for that name), a CNAME to this VM's DNS name (`fqdn`).
      const afdOrigin = new cdn.AFDOrigin(logicalName(ctx, 'afd-grafana-origin'), {
        originName: 'grafana-vm',
        originGroupName: group.name, profileName: profile.name, resourceGroupName: args.resourceGroupName,
        hostName: frontDoor.hostName, originHostHeader: frontDoor.hostName,
        // Front Door speaks only HTTPS to it (the route below); the HTTP port is unused and nothing listens there.
        httpPort: 80, httpsPort: GRAFANA_ORIGIN_PORT,
        enforceCertificateNameCheck: true,
        priority: 1, weight: 1000, enabledState: 'Enabled',
      }, { parent: this, dependsOn: [this.converge] });
      new cdn.Route(logicalName(ctx, 'afd-route'), {
        routeName: 'grafana',
        endpointName: endpoint.name, profileName: profile.name, resourceGroupName: args.resourceGroupName,
        originGroup: { id: group.id },
        supportedProtocols: ['Https'],
        httpsRedirect: 'Disabled',
        forwardingProtocol: 'HttpsOnly',
        linkToDefaultDomain: 'Enabled',
        patternsToMatch: ['/*'],
      }, { parent: this, dependsOn: [afdOrigin] });
      this.dashboardUrl = pulumi.interpolate`https://${endpoint.hostName}/d/signet`;
    } else {
      // No public listener: the URL is private, reached from the ranges the NSG admits (privateOperatorRanges: a VPN, a Bastion subnet).
      this.dashboardUrl = pulumi.output(`http://${privateIp}:${GRAFANA_ORIGIN_PORT}/d/signet`);
    }
    this.registerOutputs({ dashboardUrl: this.dashboardUrl, fqdn: this.fqdn });
  }
}
