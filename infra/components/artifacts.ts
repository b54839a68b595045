// Per-tenant storage: the versioned appliance artifact the nodes install, the
// sealed organization config bundle they poll, and the monitoring files the
// monitoring VM loads. Nodes read with their managed identity (Storage Blob
// Data Reader on the two containers they need, nothing account-wide).
import * as pulumi from '@pulumi/pulumi';
import * as authorization from '@pulumi/azure-native/authorization';
import * as storage from '@pulumi/azure-native/storage';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { BUILTIN_ROLES, logicalName, roleDefinitionId, type TenantContext } from './naming';
import type { NodeIdentity } from './identities';

export const ARTIFACTS_CONTAINER = 'artifacts';
export const CONFIG_CONTAINER = 'config';
/** Blob name the operator CLI publishes the sealed org config bundle to, inside CONFIG_CONTAINER. */
export const CONFIG_BUNDLE_BLOB = 'org-config.sealed';

export function artifactBlobName(version: string): string {
  return `signet-appliance-${version}.tar.gz`;
}

/** Storage account names: 3-24 lowercase letters and digits, globally unique. */
export function storageAccountNameOf(tenantName: string, suffix: string): string {
  return `st${tenantName.replaceAll('-', '').slice(0, 16)}${suffix}`.slice(0, 24);
}

/**
 * The storage firewall's IP rules for the operators' ranges. Storage refuses /31 and /32 ranges
 * ("small address ranges ... are not supported"): it takes single addresses without a prefix instead.
 */
export function storageIpRules(ranges: string[]): string[] {
  const rules = ranges.flatMap((range) => {
    const [address = '', bits] = range.split('/');
    if (bits === '32') return [address];
    if (bits === '31') {
      const value = address.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
      const first = value - (value % 2);
      return [first, first + 1].map((v) => [24, 16, 8, 0].map((shift) => Math.floor(v / 2 ** shift) % 256).join('.'));
    }
    return [range];
  });
  return [...new Set(rules)];
}

export interface ArtifactStoreArgs {
  ctx: TenantContext;
  resourceGroupName: pulumi.Input<string>;
  suffix: pulumi.Input<string>;
  subscriptionId: pulumi.Input<string>;
  subnetIds: pulumi.Input<string>[];
  nodeIdentities: NodeIdentity[];
  monitoringIdentity?: NodeIdentity;
  /** Files installed on the monitoring VM: blob name → absolute path. */
  monitoringFiles: Record<string, string>;
  baseDir: string;
}

export class ArtifactStore extends pulumi.ComponentResource {
  readonly account: storage.StorageAccount;
  readonly artifactUrl: pulumi.Output<string>;
  readonly artifactSha256: string;
  readonly configBundleUrl: pulumi.Output<string>;
  readonly blobEndpoint: pulumi.Output<string>;
  /** ARM id of the config container (role assignments of other workloads, e.g. the Kubernetes target). */
  readonly configContainerId: pulumi.Output<string>;
  /** blob name → URL, for the monitoring VM. */
  readonly monitoringFileUrls: Record<string, pulumi.Output<string>> = {};
  readonly monitoringFileHashes: Record<string, string> = {};

  constructor(name: string, args: ArtifactStoreArgs, opts?: pulumi.ComponentResourceOptions) {
    super('signet:infra:ArtifactStore', name, {}, opts);
    const { ctx } = args;
    const c = ctx.config;
    const parent = { parent: this };

    const artifactFile = path.resolve(args.baseDir, c.applianceArtifactPath);
    let artifactBytes: Buffer;
    try {
      artifactBytes = readFileSync(artifactFile);
    } catch (error) {
      throw new pulumi.RunError(`signet:applianceArtifactPath: cannot read ${artifactFile} (run \`npm run package\` first): ${(error as Error).message}`);
    }
    this.artifactSha256 = createHash('sha256').update(artifactBytes).digest('hex');

    this.account = new storage.StorageAccount(logicalName(ctx, 'st'), {
      accountName: pulumi.output(args.suffix).apply((s) => storageAccountNameOf(c.tenantName, s)),
      resourceGroupName: args.resourceGroupName,
      location: c.location,
      tags: ctx.tags,
      kind: 'StorageV2',
      sku: { name: 'Standard_ZRS' },
      minimumTlsVersion: 'TLS1_2',
      enableHttpsTrafficOnly: true,
      allowBlobPublicAccess: false,
      allowCrossTenantReplication: false,
      // Kept on: the provider's Blob resource uploads with the account key (pulumi-azure-native#2015).
      // Nodes never use it: they read with their managed identity.
      allowSharedKeyAccess: true,
      defaultToOAuthAuthentication: true,
      publicNetworkAccess: 'Enabled',
      networkRuleSet: {
        defaultAction: 'Deny',
        bypass: 'None',
        ipRules: storageIpRules(c.operatorRanges).map((iPAddressOrRange) => ({ iPAddressOrRange, action: 'Allow' })),
        virtualNetworkRules: args.subnetIds.map((virtualNetworkResourceId) => ({ virtualNetworkResourceId, action: 'Allow' })),
      },
    }, parent);
    const accountName = this.account.name;
    this.blobEndpoint = pulumi.interpolate`https://${accountName}.blob.core.windows.net`;

    const container = (containerName: string) => new storage.BlobContainer(logicalName(ctx, `container-${containerName}`), {
      containerName, accountName, resourceGroupName: args.resourceGroupName, publicAccess: 'None',
    }, parent);
    const artifacts = container(ARTIFACTS_CONTAINER);
    const config = container(CONFIG_CONTAINER);
    this.configContainerId = config.id;

    const blobName = artifactBlobName(c.applianceVersion);
    // One blob per version. Changing the version deletes the old version's blob (its resource leaves the program):
    // nodes keep the versions they unpacked, and a rollback uploads the old archive again.
    new storage.Blob(logicalName(ctx, `artifact-${c.applianceVersion}`), {
      blobName, accountName, resourceGroupName: args.resourceGroupName, containerName: artifacts.name,
      contentType: 'application/gzip',
      metadata: { sha256: this.artifactSha256, version: c.applianceVersion },
      source: new pulumi.asset.FileAsset(artifactFile),
    }, parent);
    this.artifactUrl = pulumi.interpolate`${this.blobEndpoint}/${ARTIFACTS_CONTAINER}/${blobName}`;
    this.configBundleUrl = pulumi.interpolate`${this.blobEndpoint}/${CONFIG_CONTAINER}/${CONFIG_BUNDLE_BLOB}`;

    for (const [blob, file] of Object.entries(args.monitoringFiles)) {
      const bytes = readFileSync(file);
      this.monitoringFileHashes[blob] = createHash('sha256').update(bytes).digest('hex');
      new storage.Blob(logicalName(ctx, `monitoring-${blob.replaceAll(/[^a-z0-9]+/gi, '-')}`), {
        blobName: `monitoring/${blob}`, accountName, resourceGroupName: args.resourceGroupName, containerName: artifacts.name,
        source: new pulumi.asset.FileAsset(file),
      }, parent);
      this.monitoringFileUrls[blob] = pulumi.interpolate`${this.blobEndpoint}/${ARTIFACTS_CONTAINER}/monitoring/${blob}`;
    }

    const reader = pulumi.output(args.subscriptionId).apply((s) => roleDefinitionId(s, BUILTIN_ROLES.storageBlobDataReader));
    args.nodeIdentities.forEach((identity, i) => {
      for (const [label, scope] of [['artifacts', artifacts.id], ['config', config.id]] as const) {
        new authorization.RoleAssignment(logicalName(ctx, `ra-node${i}-blob-${label}`), {
          principalId: identity.principalId, principalType: 'ServicePrincipal', roleDefinitionId: reader, scope,
          description: `Signet node: read the ${label} container`,
        }, parent);
      }
    });
    if (args.monitoringIdentity) {
      new authorization.RoleAssignment(logicalName(ctx, 'ra-monitoring-blob-artifacts'), {
        principalId: args.monitoringIdentity.principalId, principalType: 'ServicePrincipal', roleDefinitionId: reader, scope: artifacts.id,
        description: 'Signet monitoring: read the dashboard and alert rules',
      }, parent);
    }

    const contributor = pulumi.output(args.subscriptionId).apply((s) => roleDefinitionId(s, BUILTIN_ROLES.storageBlobDataContributor));
    c.operatorPrincipals.forEach((operator, i) => {
      new authorization.RoleAssignment(logicalName(ctx, `ra-operator${i}-blob-config`), {
        principalId: operator.objectId, principalType: operator.type, roleDefinitionId: contributor, scope: config.id,
        description: 'Signet operator: publish the sealed org config bundle',
      }, parent);
    });

    this.registerOutputs({ artifactUrl: this.artifactUrl, configBundleUrl: this.configBundleUrl });
  }
}
