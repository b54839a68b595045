// One syntax for "which organization key": `file:PATH` for a local key file,
// or a Key Vault key URL `https://<vault>.vault.azure.net/keys/<name>[/<version>]`.
import type { TokenCredential } from '@azure/identity';
import type { CryptographyClientOptions } from '@azure/keyvault-keys';
import { createAzureKeyProvider, isAzureKeyRef } from './azure-key';
import { createLocalKeyProvider } from './local-key';
import { KeyProviderError, type OrgKeyProvider } from './types';

export interface KeyRefOptions {
  /** Needed for Key Vault refs; asked for lazily so `file:` refs never touch Azure. */
  credential?: () => TokenCredential;
  clientOptions?: CryptographyClientOptions;
}

export function keyProviderFromRef(ref: string, options: KeyRefOptions = {}): OrgKeyProvider {
  if (ref.startsWith('file:')) {
    const file = ref.slice('file:'.length);
    if (!file) throw new KeyProviderError('invalid', `key reference ${ref}: missing path after file:`);
    return createLocalKeyProvider(file);
  }
  if (isAzureKeyRef(ref)) {
    if (!options.credential) throw new KeyProviderError('invalid', `key reference ${ref} needs an Azure credential`);
    return createAzureKeyProvider(ref, { credential: options.credential(), clientOptions: options.clientOptions });
  }
  throw new KeyProviderError('invalid', `unknown key reference ${JSON.stringify(ref)}: use file:PATH or https://<vault>.vault.azure.net/keys/<name>[/<version>]`);
}
