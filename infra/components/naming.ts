// Names and tags shared by the components: every physical name carries the
// tenant slug, so two tenants' stacks can never collide on (or share) a resource.
import type { StackConfig } from '../config';

export interface TenantContext {
  config: StackConfig;
  /** Tags on every taggable resource. */
  tags: Record<string, string>;
}

export function tenantContext(config: StackConfig): TenantContext {
  return {
    config,
    tags: { ...config.tags, 'signet:tenant': config.tenantName, 'signet:org': config.orgId, 'managed-by': 'pulumi' },
  };
}

/** `<kind>-signet-<tenant>[-<suffix>]`, Azure's usual abbreviation-first style. */
export function resourceName(ctx: TenantContext, kind: string, suffix?: string | number): string {
  return [kind, 'signet', ctx.config.tenantName, suffix].filter((p) => p !== undefined && p !== '').join('-');
}

/** Logical (Pulumi) name: tenant-prefixed so URNs differ between tenants too. */
export function logicalName(ctx: TenantContext, name: string): string {
  return `${ctx.config.tenantName}-${name}`;
}

/** Built-in Azure role definition GUIDs (Azure built-in roles reference). */
export const BUILTIN_ROLES = {
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6',
  keyVaultCryptoUser: '12338af0-0e69-4776-bea7-57ae8d297424',
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7',
  // Key Vault Reader: data actions Microsoft.KeyVault/vaults/*/read (keys/read: a key's properties and
  // public half) and secrets/readMetadata; no sign, wrap or decrypt, no secret values.
  keyVaultReader: '21090545-7ca7-4776-b22c-e363652d74d2',
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1',
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe',
} as const;

export function roleDefinitionId(subscriptionId: string, guid: string): string {
  return `/subscriptions/${subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${guid}`;
}

/** A public IP's DNS name: its DNS label in the region's cloudapp.azure.com zone (known before the IP exists). */
export function azurePublicDnsName(label: string, location: string): string {
  return `${label}.${location}.cloudapp.azure.com`;
}
