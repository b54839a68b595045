// The processing nodes: one VM per node, spread round-robin across the
// configured availability zones, each with its own user-assigned identity, a
// zonal Standard static public IP with a DNS label (its SMTP endpoint and its
// explicit egress for outbound TCP 25), no password login, and cloud-init that
// installs the packaged appliance.
//
// Rolling upgrades: a VM's custom data only runs at first boot (and changing
// it would replace the VM), so it is ignored after creation. Every change of
// version or node config goes through a Run Command per node instead, and
// node i's Run Command depends on node i-1's: Pulumi converges one node at a
// time, and the install script fails (stopping the roll) if a node that was
// ready does not become ready again.
import * as pulumi from '@pulumi/pulumi';
import * as compute from '@pulumi/azure-native/compute';
import * as network from '@pulumi/azure-native/network';
import { renderConvergeScript, renderNodeCloudInit, type NodeValues } from '../cloud-init';
import { renderRelayConfig } from '../cloud-init/relay-config';
import { azurePublicDnsName, logicalName, resourceName, type TenantContext } from './naming';
import type { NodeIdentity } from './identities';

export interface ProcessingNodesArgs {
  ctx: TenantContext;
  resourceGroupName: pulumi.Input<string>;
  subnetId: pulumi.Input<string>;
  identities: NodeIdentity[];
  suffix: pulumi.Input<string>;
  vaultUri: pulumi.Input<string>;
  orgKeyId: pulumi.Input<string>;
  configBundleUrl: pulumi.Input<string>;
  artifactUrl: pulumi.Input<string>;
  artifactSha256: string;
  tlsSecretNames: string[];
  /** Each node certificate's thumbprint: a new certificate re-runs that node's converge (one node at a time). */
  tlsThumbprints: pulumi.Input<string>[];
  /** Resources that must exist before a node boots (role assignments, secrets, the artifact blob). */
  dependsOn: pulumi.Input<pulumi.Resource>[];
}

export interface ProcessingNode {
  name: string;
  zone: string;
  fqdn: pulumi.Output<string>;
  publicIp: pulumi.Output<string>;
  privateIp: string;
  vm: compute.VirtualMachine;
  upgrade: compute.VirtualMachineRunCommandByVirtualMachine;
}

/** The DNS label of node i; also known before the public IP exists, so certificates can name it. */
export function nodeDnsLabel(tenantName: string, index: number, suffix: string): string {
  return `signet-${tenantName}-n${index}-${suffix}`;
}

export function nodeFqdnOf(tenantName: string, index: number, suffix: string, location: string): string {
  return azurePublicDnsName(nodeDnsLabel(tenantName, index, suffix), location);
}

/** Host address `offset` inside an IPv4 CIDR (Azure reserves the first four addresses of a subnet). */
export function hostAddress(cidr: string, offset: number, key = 'nodeSubnetCidr'): string {
  const [base, bits] = cidr.split('/');
  const value = (base ?? '').split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0) + offset;
  const size = 2 ** (32 - Number(bits));
  if (offset >= size - 1) throw new pulumi.RunError(`signet:${key}: ${cidr} has no room for address #${offset}`);
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

export const UBUNTU_IMAGE = { publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server', version: 'latest' } as const;

export class ProcessingNodes extends pulumi.ComponentResource {
  readonly nodes: ProcessingNode[] = [];

  constructor(name: string, args: ProcessingNodesArgs, opts?: pulumi.ComponentResourceOptions) {
    super('signet:infra:ProcessingNodes', name, {}, opts);
    const { ctx } = args;
    const c = ctx.config;
    const parent = { parent: this };
    let previousUpgrade: pulumi.Resource | undefined;

    for (let i = 0; i < c.nodeCount; i++) {
      const nodeName = `node${i}`;
      const zone = c.zones[i % c.zones.length] as string;
      const identity = args.identities[i] as NodeIdentity;
      const tlsSecretName = args.tlsSecretNames[i] as string;
      const privateIp = hostAddress(c.nodeSubnetCidr, 4 + i);

      const pip = new network.PublicIPAddress(logicalName(ctx, `pip-${nodeName}`), {
        publicIpAddressName: resourceName(ctx, 'pip', nodeName),
        resourceGroupName: args.resourceGroupName, location: c.location, tags: ctx.tags,
        sku: { name: 'Standard', tier: 'Regional' },
        publicIPAllocationMethod: 'Static',
        publicIPAddressVersion: 'IPv4',
        zones: [zone],
        dnsSettings: { domainNameLabel: pulumi.output(args.suffix).apply((s) => nodeDnsLabel(c.tenantName, i, s)) },
      }, parent);
      const fqdn = pulumi.output(args.suffix).apply((s) => nodeFqdnOf(c.tenantName, i, s, c.location));

      const nic = new network.NetworkInterface(logicalName(ctx, `nic-${nodeName}`), {
        networkInterfaceName: resourceName(ctx, 'nic', nodeName),
        resourceGroupName: args.resourceGroupName, location: c.location, tags: ctx.tags,
        ipConfigurations: [{
          name: 'primary',
          primary: true,
          subnet: { id: args.subnetId },
          // Fixed so the monitoring VM's Prometheus can scrape a static target list.
          privateIPAllocationMethod: 'Static',
          privateIPAddress: privateIp,
          publicIPAddress: { id: pip.id },
        }],
      }, parent);

      const values = pulumi.all([fqdn, identity.clientId, args.vaultUri, args.orgKeyId, args.configBundleUrl, args.artifactUrl, args.tlsThumbprints[i] ?? ''])
        .apply(([nodeFqdn, clientId, vaultUri, orgKeyId, configBundleUrl, artifactUrl, tlsThumbprint]): NodeValues => ({
          nodeName, nodeFqdn,
          version: c.applianceVersion,
          artifactUrl,
          artifactSha256: args.artifactSha256,
          identityClientId: clientId,
          vaultUri,
          tlsSecretName,
          tlsThumbprint,
          httpPort: c.httpPort,
          relayConfigYaml: renderRelayConfig({
            certificateDomain: c.certificateDomain, httpPort: c.httpPort, downstreamHost: c.downstreamSmartHost,
            configBundleUrl, orgKeyId, identityClientId: clientId, azureTenantId: c.tenantId,
            exchangeOnlineRanges: c.exchangeOnlineRanges,
            tenantCheck: c.tenantCheck,
            directoryRefreshMinutes: c.directory.refreshMinutes,
            graphApp: c.directory.graphAppClientId
              ? { clientId: c.directory.graphAppClientId, secretUrl: `${vaultUri.replace(/\/$/, '')}/secrets/${c.directory.graphAppSecretName}` }
              : undefined,
          }),
        }));

      const vmName = resourceName(ctx, 'vm', nodeName);
      const vm = new compute.VirtualMachine(logicalName(ctx, `vm-${nodeName}`), {
        vmName,
        resourceGroupName: args.resourceGroupName, location: c.location, tags: { ...ctx.tags, 'signet:node': nodeName },
        zones: [zone],
        hardwareProfile: { vmSize: c.nodeSize },
        identity: { type: 'UserAssigned', userAssignedIdentities: [identity.id] },
        storageProfile: {
          imageReference: { ...UBUNTU_IMAGE },
          osDisk: { createOption: 'FromImage', deleteOption: 'Delete', caching: 'ReadWrite', managedDisk: { storageAccountType: 'StandardSSD_ZRS' } },
        },
        securityProfile: { securityType: 'TrustedLaunch', uefiSettings: { secureBootEnabled: true, vTpmEnabled: true } },
        osProfile: {
          computerName: `signet-${c.tenantName}-${nodeName}`.slice(0, 63),
          adminUsername: c.adminUsername,
          customData: values.apply((v) => Buffer.from(renderNodeCloudInit(v), 'utf8').toString('base64')),
          linuxConfiguration: {
            disablePasswordAuthentication: true,
            provisionVMAgent: true, // Run Command needs the agent; it replaces SSH for operators
            ssh: { publicKeys: [{ path: `/home/${c.adminUsername}/.ssh/authorized_keys`, keyData: c.sshPublicKey }] },
            patchSettings: { patchMode: 'ImageDefault', assessmentMode: 'ImageDefault' },
          },
        },
        // Detach, not Delete: the NIC (and its fixed address and public IP) is a resource of this stack that
        // outlives the VM, so a rebuilt VM attaches to the same one.
        networkProfile: { networkInterfaces: [{ id: nic.id, primary: true, deleteOption: 'Detach' }] },
        diagnosticsProfile: { bootDiagnostics: { enabled: true } },
        // The VM's name is fixed and its NIC can serve one VM at a time, so a rebuild (`pulumi up --replace`,
        // or a change Azure cannot apply in place) deletes the old VM before creating the new one.
        // A change Azure applies by restarting the VM (a resize) reaches node i only after node i-1 has
        // converged: without this, every node would restart at once.
      }, { parent: this, dependsOn: previousUpgrade ? [...args.dependsOn, previousUpgrade] : args.dependsOn, ignoreChanges: ['osProfile.customData'], deleteBeforeReplace: true });

      const upgrade = new compute.VirtualMachineRunCommandByVirtualMachine(logicalName(ctx, `converge-${nodeName}`), {
        runCommandName: 'signet-converge',
        vmName: vm.name,
        resourceGroupName: args.resourceGroupName,
        location: c.location,
        // Names the VM instance: a rebuilt VM (new vmId) is converged to the current values again.
        source: { script: pulumi.all([values, vm.vmId]).apply(([v, vmId]) => renderConvergeScript(v, vmId)) },
        asyncExecution: false,
        treatFailureAsDeploymentFailure: true,
        timeoutInSeconds: 1800,
      }, { parent: this, dependsOn: previousUpgrade ? [vm, previousUpgrade] : [vm] });
      previousUpgrade = upgrade;

      this.nodes.push({ name: nodeName, zone, fqdn, publicIp: pip.ipAddress.apply((ip) => ip ?? ''), privateIp, vm, upgrade });
    }

    this.registerOutputs({ fqdns: this.nodes.map((n) => n.fqdn) });
  }
}
