// The tenant's network: its own resource group, a VNet with a node subnet and
// a monitoring subnet, and NSGs that admit SMTP only from Exchange Online and
// the health/metrics port only from the health probers, the monitoring subnet
// and the operators' own ranges (`signet status`: public `operatorRanges` for
// `--via fqdn`, `privateOperatorRanges` of a VPN, Bastion or jump host for
// `--via private`); Grafana's port only from Front Door when it is published,
// or from the operators' private ranges while it is private. Nothing from the
// internet reaches SSH or RDP: operators use Run Command or Bastion.
import * as pulumi from '@pulumi/pulumi';
import * as network from '@pulumi/azure-native/network';
import * as resources from '@pulumi/azure-native/resources';
import type * as inputs from '@pulumi/azure-native/types/input';
import { logicalName, resourceName, type TenantContext } from './naming';
import { grafanaFrontDoorOrigin, grafanaPrivateOperatorRanges } from '../config';
import { GRAFANA_ORIGIN_PORT } from '../cloud-init';

export interface TenantNetworkArgs {
  ctx: TenantContext;
}

type Rule = inputs.network.SecurityRuleArgs;

/**
 * Builds the node subnet's inbound rules; exported so tests and the policy pack can reason about them. The
 * operators' ranges, public (`operatorRanges`) and private (`privateOperatorRanges`: a VPN, a Bastion or a jump
 * host subnet), reach the health/metrics port alone: read-only, no SMTP, no SSH.
 */
export function nodeSecurityRules(args: { exchangeOnlineRanges: string[]; httpPort: number; monitoringSubnetCidr: string; operatorRanges?: string[]; privateOperatorRanges?: string[] }): Rule[] {
  const ipv4 = args.exchangeOnlineRanges.filter((r) => !r.includes(':'));
  const ipv6 = args.exchangeOnlineRanges.filter((r) => r.includes(':'));
  const rules: Rule[] = [];
  // NSG rules do not mix address families, so IPv4 and IPv6 ranges get a rule each.
  if (ipv4.length) rules.push(allow('allow-smtp-exchange-online-v4', 100, ipv4, '25', 'SMTP from Exchange Online (IPv4)'));
  if (ipv6.length) rules.push(allow('allow-smtp-exchange-online-v6', 101, ipv6, '25', 'SMTP from Exchange Online (IPv6)'));
  const port = String(args.httpPort);
  rules.push(
    allow('allow-health-traffic-manager', 110, ['AzureTrafficManager'], port, 'Traffic Manager probes /readyz'),
    allow('allow-health-azure-lb', 111, ['AzureLoadBalancer'], port, 'Platform health probes'),
    allow('allow-metrics-monitoring', 112, [args.monitoringSubnetCidr], port, 'Prometheus scrapes /metrics'),
    // read-only (readiness, metrics; no message data, no secrets): what `signet status` reads from an operator's machine
    ...(args.operatorRanges?.length ? [allow('allow-health-operators', 113, args.operatorRanges, port, 'Operators read /readyz and /metrics (signet status)')] : []),
    // the same, on the nodes' private addresses, from a VPN, Bastion or jump host in a network peered with the VNet (signet status --via private)
    ...(args.privateOperatorRanges?.length ? [allow('allow-health-private-operators', 114, args.privateOperatorRanges, port, 'Operators\' VPN, Bastion or jump host read /readyz and /metrics (signet status --via private)')] : []),
    ...denyRemoteAdmin(),
    denyAllInbound(),
  );
  return rules;
}

/**
 * The monitoring subnet's inbound rules. Grafana's port is open either to Front Door (published: the
 * VM's proxy then admits only this stack's profile) or, while Grafana is private, to the operators'
 * private ranges (`privateOperatorRanges`, empty unless configured); never both, never another port.
 */
export function monitoringSecurityRules(args: { frontDoor: boolean; privateOperatorRanges?: string[] }): Rule[] {
  const port = String(GRAFANA_ORIGIN_PORT);
  const ranges = args.privateOperatorRanges ?? [];
  if (args.frontDoor && ranges.length) throw new Error('monitoring NSG: Grafana published through Front Door admits no private ranges (its proxy answers only Front Door)');
  const rules: Rule[] = [];
  if (args.frontDoor) rules.push(allow('allow-grafana-front-door', 100, ['AzureFrontDoor.Backend'], port, 'Grafana only through Front Door'));
  if (ranges.length) rules.push(allow('allow-grafana-private', 110, ranges, port, 'Grafana (private, HTTP) from the operators\' VPN or Bastion ranges'));
  rules.push(...denyRemoteAdmin(), denyAllInbound());
  return rules;
}

function allow(name: string, priority: number, sources: string[], port: string, description: string): Rule {
  return {
    name, priority, description,
    direction: 'Inbound', access: 'Allow', protocol: 'Tcp',
    ...(sources.length === 1 ? { sourceAddressPrefix: sources[0] } : { sourceAddressPrefixes: sources }),
    sourcePortRange: '*',
    destinationAddressPrefix: '*',
    destinationPortRange: port,
  };
}

/** Explicit, so a later broad allow rule cannot quietly open them. */
function denyRemoteAdmin(): Rule[] {
  return [{
    name: 'deny-ssh-rdp-internet', priority: 4000, description: 'No SSH or RDP from the internet (use Run Command or Bastion)',
    direction: 'Inbound', access: 'Deny', protocol: 'Tcp',
    sourceAddressPrefix: 'Internet', sourcePortRange: '*', destinationAddressPrefix: '*', destinationPortRanges: ['22', '3389'],
  }];
}

/** Azure's default rules would admit anything from inside the VNet; this one closes that. */
function denyAllInbound(): Rule {
  return {
    name: 'deny-all-other-inbound', priority: 4096, description: 'Everything not allowed above',
    direction: 'Inbound', access: 'Deny', protocol: '*',
    sourceAddressPrefix: '*', sourcePortRange: '*', destinationAddressPrefix: '*', destinationPortRange: '*',
  };
}

export class TenantNetwork extends pulumi.ComponentResource {
  readonly resourceGroup: resources.ResourceGroup;
  readonly resourceGroupName: pulumi.Output<string>;
  readonly vnet: network.VirtualNetwork;
  readonly nodeNsg: network.NetworkSecurityGroup;
  readonly monitoringNsg: network.NetworkSecurityGroup;
  readonly nodeSubnetId: pulumi.Output<string>;
  readonly monitoringSubnetId: pulumi.Output<string>;

  constructor(name: string, args: TenantNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super('signet:infra:TenantNetwork', name, {}, opts);
    const { ctx } = args;
    const c = ctx.config;
    const parent = { parent: this };

    this.resourceGroup = new resources.ResourceGroup(logicalName(ctx, 'rg'), {
      resourceGroupName: resourceName(ctx, 'rg'),
      location: c.location,
      tags: ctx.tags,
    }, parent);
    this.resourceGroupName = this.resourceGroup.name;
    const rg = this.resourceGroupName;

    this.nodeNsg = new network.NetworkSecurityGroup(logicalName(ctx, 'nsg-nodes'), {
      networkSecurityGroupName: resourceName(ctx, 'nsg', 'nodes'),
      resourceGroupName: rg, location: c.location, tags: ctx.tags,
      // The operators' private ranges whatever Grafana does: the nodes have no other private way in.
      securityRules: nodeSecurityRules({
        exchangeOnlineRanges: c.exchangeOnlineRanges, httpPort: c.httpPort, monitoringSubnetCidr: c.monitoringSubnetCidr,
        operatorRanges: c.operatorRanges, privateOperatorRanges: c.privateOperatorRanges,
      }),
    }, parent);

    this.monitoringNsg = new network.NetworkSecurityGroup(logicalName(ctx, 'nsg-monitoring'), {
      networkSecurityGroupName: resourceName(ctx, 'nsg', 'monitoring'),
      resourceGroupName: rg, location: c.location, tags: ctx.tags,
      // Front Door's rule only when the stack publishes Grafana through it (an origin certificate it accepts);
      // the operators' private ranges only while it does not.
      securityRules: monitoringSecurityRules({ frontDoor: grafanaFrontDoorOrigin(c) !== undefined, privateOperatorRanges: grafanaPrivateOperatorRanges(c) }),
    }, parent);

    const vnetName = resourceName(ctx, 'vnet');
    // Service endpoints let the vault and storage firewalls admit these subnets by VNet rule.
    const serviceEndpoints = [{ service: 'Microsoft.KeyVault' }, { service: 'Microsoft.Storage' }];
    this.vnet = new network.VirtualNetwork(logicalName(ctx, 'vnet'), {
      virtualNetworkName: vnetName,
      resourceGroupName: rg, location: c.location, tags: ctx.tags,
      addressSpace: { addressPrefixes: [c.vnetCidr] },
      // Subnets inline (never mixed with standalone Subnet resources, which would fight over them).
      subnets: [
        {
          name: 'nodes', addressPrefix: c.nodeSubnetCidr,
          networkSecurityGroup: { id: this.nodeNsg.id },
          // Private by default: egress only through the nodes' own Standard public IPs.
          defaultOutboundAccess: false,
          serviceEndpoints,
        },
        {
          name: 'monitoring', addressPrefix: c.monitoringSubnetCidr,
          networkSecurityGroup: { id: this.monitoringNsg.id },
          defaultOutboundAccess: false,
          serviceEndpoints,
        },
      ],
    }, parent);
    this.nodeSubnetId = pulumi.interpolate`${this.vnet.id}/subnets/nodes`;
    this.monitoringSubnetId = pulumi.interpolate`${this.vnet.id}/subnets/monitoring`;

    this.registerOutputs({ resourceGroupName: this.resourceGroupName, nodeSubnetId: this.nodeSubnetId, monitoringSubnetId: this.monitoringSubnetId });
  }
}
