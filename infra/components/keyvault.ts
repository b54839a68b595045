// The tenant's Key Vault: RBAC authorization (no access policies), soft delete
// with purge protection, a deny-by-default firewall that admits only the
// node/monitoring subnets and the operators' ranges, the organization key
// (RSA-HSM on the premium SKU) and the config signing key beside it. Each node
// identity gets exactly three data-plane roles: Crypto User on the
// organization key, Reader on the signing key (its public half, to verify;
// never sign) and Secrets User on this vault. Every data-plane operation on
// the vault (who read which secret, used which key, from where, and what was
// refused) goes to the tenant's Log Analytics workspace as its audit log.
import * as pulumi from '@pulumi/pulumi';
import * as authorization from '@pulumi/azure-native/authorization';
import * as keyvault from '@pulumi/azure-native/keyvault';
import * as monitor from '@pulumi/azure-native/monitor';
import * as operationalinsights from '@pulumi/azure-native/operationalinsights';
import { BUILTIN_ROLES, logicalName, resourceName, roleDefinitionId, type TenantContext } from './naming';
import type { NodeIdentity } from './identities';

export const ORG_KEY_NAME = 'org-config-key';
/**
 * The config signing key: the org key's name + `-signing`, the name the relay
 * derives from the org key's URL (appliance/src/secrets/azure-key.ts,
 * signingKeyRefFor). Wrapping with the org key (RSA-OAEP) is a public-key
 * operation, so it proves nothing about who sealed a bundle; this key signs
 * them, and nodes accept no other signer.
 */
export const CONFIG_SIGNING_KEY_NAME = `${ORG_KEY_NAME}-signing`;

export interface TenantKeyVaultArgs {
  ctx: TenantContext;
  resourceGroupName: pulumi.Input<string>;
  /** Random suffix: purge protection keeps a deleted vault's name reserved for the retention period. */
  suffix: pulumi.Input<string>;
  azureTenantId: pulumi.Input<string>;
  subscriptionId: pulumi.Input<string>;
  subnetIds: pulumi.Input<string>[];
  nodeIdentities: NodeIdentity[];
}

/**
 * Vault names are 3-24 letters, digits and hyphens, globally unique, with no two hyphens in a row.
 * The slug may hold `--`, and cutting it to 13 characters may leave a trailing hyphen
 * (`fourthcoffee-uk` → `fourthcoffee-`): both are collapsed so the name stays valid.
 */
export function vaultNameOf(tenantName: string, suffix: string): string {
  const slug = tenantName.replaceAll(/-+/g, '-').slice(0, 13).replace(/-+$/, '');
  return `kv-${slug}-${suffix}`;
}

export class TenantKeyVault extends pulumi.ComponentResource {
  readonly vault: keyvault.Vault;
  readonly vaultName: pulumi.Output<string>;
  readonly vaultUri: pulumi.Output<string>;
  readonly orgKey: keyvault.Key;
  readonly orgKeyId: pulumi.Output<string>;
  readonly signingKey: keyvault.Key;
  /** Versionless URI of the config signing key (`<orgKeyId>-signing`). */
  readonly signingKeyId: pulumi.Output<string>;
  readonly roleAssignments: authorization.RoleAssignment[] = [];
  /** The tenant's Log Analytics workspace, holding the vault's audit log. */
  readonly auditWorkspace: operationalinsights.Workspace;
  readonly auditLog: monitor.DiagnosticSetting;

  constructor(name: string, args: TenantKeyVaultArgs, opts?: pulumi.ComponentResourceOptions) {
    super('signet:infra:TenantKeyVault', name, {}, opts);
    const { ctx } = args;
    const c = ctx.config;
    const parent = { parent: this };
    const premium = c.keyVaultSku === 'premium';

    this.vault = new keyvault.Vault(logicalName(ctx, 'kv'), {
      vaultName: pulumi.output(args.suffix).apply((s) => vaultNameOf(c.tenantName, s)),
      resourceGroupName: args.resourceGroupName,
      location: c.location,
      tags: ctx.tags,
      properties: {
        tenantId: args.azureTenantId,
        sku: { family: 'A', name: premium ? 'premium' : 'standard' },
        // Set explicitly: the default depends on the API version the provider uses.
        enableRbacAuthorization: true,
        enableSoftDelete: true,
        softDeleteRetentionInDays: 90,
        enablePurgeProtection: true,
        enabledForDeployment: false,
        enabledForDiskEncryption: false,
        enabledForTemplateDeployment: false,
        publicNetworkAccess: 'Enabled', // required for the VNet/IP rules below; defaultAction Deny closes the rest
        networkAcls: {
          defaultAction: 'Deny',
          bypass: 'None',
          ipRules: c.operatorRanges.map((value) => ({ value })),
          virtualNetworkRules: args.subnetIds.map((id) => ({ id, ignoreMissingVnetServiceEndpoint: false })),
        },
      },
    }, parent);
    this.vaultName = this.vault.name;
    this.vaultUri = pulumi.interpolate`https://${this.vault.name}.vault.azure.net/`;

    // RSA 3072, in the HSM on a premium vault, never exportable; each key does one job.
    const rsaKey = (logical: string, keyName: string, keyOps: string[]) => new keyvault.Key(logicalName(ctx, logical), {
      keyName,
      vaultName: this.vault.name,
      resourceGroupName: args.resourceGroupName,
      tags: ctx.tags,
      properties: { kty: premium ? 'RSA-HSM' : 'RSA', keySize: 3072, keyOps, attributes: { enabled: true, exportable: false } },
    }, parent);

    // The organization key seals the org config bundle: the relay unwraps the bundle's data key (RSA-OAEP-256).
    this.orgKey = rsaKey('org-key', ORG_KEY_NAME, ['wrapKey', 'unwrapKey']);
    this.orgKeyId = this.orgKey.keyUri;

    // Signs sealed config bundles (PS256 with the vault's `sign`): operators sign through the vault; nodes verify locally with the public half.
    this.signingKey = rsaKey('config-signing-key', CONFIG_SIGNING_KEY_NAME, ['sign', 'verify']);
    this.signingKeyId = this.signingKey.keyUri;

    args.nodeIdentities.forEach((identity, i) => {
      this.roleAssignments.push(
        new authorization.RoleAssignment(logicalName(ctx, `ra-node${i}-kv-crypto`), {
          principalId: identity.principalId,
          principalType: 'ServicePrincipal',
          roleDefinitionId: pulumi.output(args.subscriptionId).apply((s) => roleDefinitionId(s, BUILTIN_ROLES.keyVaultCryptoUser)),
          scope: this.orgKey.id,
          description: 'Signet node: unwrap the organization config key',
        }, parent),
        new authorization.RoleAssignment(logicalName(ctx, `ra-node${i}-kv-signing-read`), {
          principalId: identity.principalId,
          principalType: 'ServicePrincipal',
          roleDefinitionId: pulumi.output(args.subscriptionId).apply((s) => roleDefinitionId(s, BUILTIN_ROLES.keyVaultReader)),
          scope: this.signingKey.id,
          description: 'Signet node: read the config signing key\'s public half to verify bundles (no sign)',
        }, parent),
        new authorization.RoleAssignment(logicalName(ctx, `ra-node${i}-kv-secrets`), {
          principalId: identity.principalId,
          principalType: 'ServicePrincipal',
          roleDefinitionId: pulumi.output(args.subscriptionId).apply((s) => roleDefinitionId(s, BUILTIN_ROLES.keyVaultSecretsUser)),
          scope: this.vault.id,
          description: 'Signet node: read its TLS certificate secret',
        }, parent),
      );
    });

    // Operators wrap config data keys and sign bundles (seal) and import node certificates; nothing broader.
    c.operatorPrincipals.forEach((operator, i) => {
      const grant = (label: string, role: string, scope: pulumi.Input<string>, description: string) => this.roleAssignments.push(
        new authorization.RoleAssignment(logicalName(ctx, `ra-operator${i}-${label}`), {
          principalId: operator.objectId,
          principalType: operator.type,
          roleDefinitionId: pulumi.output(args.subscriptionId).apply((s) => roleDefinitionId(s, role)),
          scope,
          description,
        }, parent));
      grant('kv-crypto', BUILTIN_ROLES.keyVaultCryptoUser, this.orgKey.id, 'Signet operator: seal config with the organization key');
      grant('kv-signing', BUILTIN_ROLES.keyVaultCryptoUser, this.signingKey.id, 'Signet operator: sign sealed config bundles');
      grant('kv-secrets', BUILTIN_ROLES.keyVaultSecretsOfficer, this.vault.id, 'Signet operator: import and rotate node certificates');
    });

    // Pay-as-you-go by ingestion (a vault's audit events are a few MB a month); retention from config.
    this.auditWorkspace = new operationalinsights.Workspace(logicalName(ctx, 'log'), {
      workspaceName: resourceName(ctx, 'log'),
      resourceGroupName: args.resourceGroupName,
      location: c.location,
      tags: ctx.tags,
      sku: { name: 'PerGB2018' },
      retentionInDays: c.auditLogs.retentionDays,
      // Entra ID only: no workspace keys that could write forged entries or read the log.
      features: { disableLocalAuth: true, enableLogAccessUsingOnlyResourcePermissions: true },
    }, parent);
    // Category group `audit` is the vault's AuditEvent log: every secret, key and certificate operation, allowed or refused.
    this.auditLog = new monitor.DiagnosticSetting(logicalName(ctx, 'kv-audit-log'), {
      name: 'signet-keyvault-audit',
      resourceUri: this.vault.id,
      workspaceId: this.auditWorkspace.id,
      logs: [{ categoryGroup: 'audit', enabled: true }],
    }, parent);

    this.registerOutputs({ vaultUri: this.vaultUri, orgKeyId: this.orgKeyId, signingKeyId: this.signingKeyId });
  }
}
