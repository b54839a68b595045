// Which Azure identity Signet authenticates as. A node uses its managed
// identity (a user-assigned one when a client id is given); an operator at a
// workstation uses DefaultAzureCredential (Azure CLI login, environment, ...).
import type { TokenCredential } from '@azure/identity';
import type { TokenCredentialOptions } from '@azure/identity';
import type { SecretProvider } from './types';

// Loaded on first use: a node whose config comes from files never pays for the Azure SDKs' memory.
const identity = () => require('@azure/identity') as typeof import('@azure/identity');

export type { TokenCredential };

export interface CredentialOptions {
  /** `node`: managed identity only; `operator`: the default chain. */
  kind: 'node' | 'operator';
  /** Client id of a user-assigned managed identity (nodes). Default: env SIGNET_MANAGED_IDENTITY_CLIENT_ID, else system-assigned. */
  managedIdentityClientId?: string;
  /** Passed to the identity clients (retry, TLS). */
  clientOptions?: TokenCredentialOptions;
}

export function createAzureCredential(options: CredentialOptions): TokenCredential {
  const clientId = options.managedIdentityClientId ?? process.env.SIGNET_MANAGED_IDENTITY_CLIENT_ID ?? undefined;
  if (options.kind === 'node') {
    return clientId ? new (identity().ManagedIdentityCredential)({ clientId, ...options.clientOptions }) : new (identity().ManagedIdentityCredential)({ ...options.clientOptions });
  }
  return new (identity().DefaultAzureCredential)({ ...options.clientOptions, ...(clientId ? { managedIdentityClientId: clientId } : {}) });
}

export interface AppCredentialOptions {
  tenantId: string;
  clientId: string;
  /** Where the app's client secret is kept (a Key Vault secret on Azure), and its name. */
  secrets: SecretProvider;
  secretName: string;
  /** Default https://login.microsoftonline.com (a national cloud or a stand-in otherwise). */
  authorityHost?: string;
  clientOptions?: TokenCredentialOptions;
}

/**
 * The Graph app's own identity (an app registration with a client secret),
 * for tenants where Graph permissions are granted to an app rather than to
 * the node's managed identity. The secret is read from the secret store.
 */
export async function createAppCredential(options: AppCredentialOptions): Promise<TokenCredential> {
  const secret = (await options.secrets.get(options.secretName)).trim();
  return new (identity().ClientSecretCredential)(options.tenantId, options.clientId, secret, {
    ...options.clientOptions,
    ...(options.authorityHost ? { authorityHost: options.authorityHost, disableInstanceDiscovery: true } : {}),
  });
}
