// One user-assigned managed identity per processing node (and one for the
// monitoring VM). They exist before the vault and storage so that role
// assignments can name them, and survive VM replacement.
import * as pulumi from '@pulumi/pulumi';
import * as managedidentity from '@pulumi/azure-native/managedidentity';
import { logicalName, resourceName, type TenantContext } from './naming';

export interface NodeIdentity {
  id: pulumi.Output<string>;
  principalId: pulumi.Output<string>;
  clientId: pulumi.Output<string>;
}

export interface TenantIdentitiesArgs {
  ctx: TenantContext;
  resourceGroupName: pulumi.Input<string>;
}

export class TenantIdentities extends pulumi.ComponentResource {
  readonly nodes: NodeIdentity[];
  readonly monitoring: NodeIdentity | undefined;

  constructor(name: string, args: TenantIdentitiesArgs, opts?: pulumi.ComponentResourceOptions) {
    super('signet:infra:TenantIdentities', name, {}, opts);
    const { ctx } = args;
    const make = (suffix: string): NodeIdentity => {
      const identity = new managedidentity.UserAssignedIdentity(logicalName(ctx, `id-${suffix}`), {
        resourceName: resourceName(ctx, 'id', suffix),
        resourceGroupName: args.resourceGroupName,
        location: ctx.config.location,
        tags: ctx.tags,
      }, { parent: this });
      return { id: identity.id, principalId: identity.principalId, clientId: identity.clientId };
    };
    this.nodes = Array.from({ length: ctx.config.nodeCount }, (_, i) => make(`node${i}`));
    this.monitoring = ctx.config.monitoring.enabled ? make('monitoring') : undefined;
    this.registerOutputs({ nodePrincipalIds: this.nodes.map((n) => n.principalId) });
  }
}
