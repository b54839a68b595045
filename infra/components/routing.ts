// Health-aware routing for SMTP. Front Door carries only HTTP(S), so SMTP on
// port 25 is routed at the DNS level: a Traffic Manager profile with the
// MultiValue method answers with the IP of every node whose /readyz returns
// 200 (External endpoints by IPv4 address, as MultiValue requires), so the
// smart-host name resolves to every healthy node and Exchange Online can try
// the next address on a connect failure. A short TTL bounds how long a
// drained node stays in answers. The smart host Exchange Online's outbound
// connector names is a CNAME in the tenant's certificate domain pointing at
// the profile's trafficmanager.net name.
import * as pulumi from '@pulumi/pulumi';
import * as trafficmanager from '@pulumi/azure-native/trafficmanager';
import { logicalName, resourceName, type TenantContext } from './naming';

export interface HealthRoutingArgs {
  ctx: TenantContext;
  resourceGroupName: pulumi.Input<string>;
  suffix: pulumi.Input<string>;
  nodes: { name: string; publicIp: pulumi.Input<string> }[];
}

export const TRAFFIC_MANAGER_TTL_SECONDS = 30;

export class HealthRouting extends pulumi.ComponentResource {
  readonly profile: trafficmanager.Profile;
  readonly fqdn: pulumi.Output<string>;

  constructor(name: string, args: HealthRoutingArgs, opts?: pulumi.ComponentResourceOptions) {
    super('signet:infra:HealthRouting', name, {}, opts);
    const { ctx } = args;
    const c = ctx.config;
    const relativeName = pulumi.output(args.suffix).apply((s) => `signet-${c.tenantName}-${s}`);

    this.profile = new trafficmanager.Profile(logicalName(ctx, 'tm'), {
      profileName: resourceName(ctx, 'tm'),
      resourceGroupName: args.resourceGroupName,
      location: 'global',
      tags: ctx.tags,
      profileStatus: 'Enabled',
      trafficRoutingMethod: 'MultiValue',
      maxReturn: Math.min(c.nodeCount, 8),
      allowedEndpointRecordTypes: ['IPv4Address'],
      dnsConfig: { relativeName, ttl: TRAFFIC_MANAGER_TTL_SECONDS },
      monitorConfig: {
        protocol: 'HTTP',
        port: c.httpPort,
        path: '/readyz',
        intervalInSeconds: 30,
        timeoutInSeconds: 10,
        toleratedNumberOfFailures: 2,
        expectedStatusCodeRanges: [{ min: 200, max: 200 }],
      },
      // Inline endpoints only (never mixed with standalone Endpoint resources).
      endpoints: args.nodes.map((node) => ({
        name: node.name,
        type: 'Microsoft.Network/trafficManagerProfiles/externalEndpoints',
        target: node.publicIp,
        endpointStatus: 'Enabled',
        alwaysServe: 'Disabled',
      })),
    }, { parent: this });
    this.fqdn = pulumi.interpolate`${relativeName}.trafficmanager.net`;
    this.registerOutputs({ fqdn: this.fqdn });
  }
}
