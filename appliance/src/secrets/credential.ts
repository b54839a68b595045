// Which Azure identity Signet authenticates as. A node uses its managed
// identity (a user-assigned one when a client id is given); an operator at a
// workstation uses DefaultAzureCredential (Azure CLI login, environment, ...).
import type { TokenCredential } from '@azure/identity';
import { DefaultAzureCredential, ManagedIdentityCredential, type TokenCredentialOptions } from '@azure/identity';

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
    return clientId ? new ManagedIdentityCredential({ clientId, ...options.clientOptions }) : new ManagedIdentityCredential({ ...options.clientOptions });
  }
  return new DefaultAzureCredential({ ...options.clientOptions, ...(clientId ? { managedIdentityClientId: clientId } : {}) });
}
