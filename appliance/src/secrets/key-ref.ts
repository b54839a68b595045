// One syntax for "which organization key": `file:PATH` for a local key file,
// or a Key Vault key URL `https://<vault>.vault.azure.net/keys/<name>[/<version>]`
// (whose bundles are also signed: see azure-key.ts).
import type { TokenCredential } from '@azure/identity';
import type { CryptographyClientOptions } from '@azure/keyvault-keys';
import { createAzureKeyProvider, isAzureKeyRef } from './azure-key';
import { createLocalKeyProvider } from './local-key';
import { KeyProviderError, type OrgKeyProvider } from './types';

export interface KeyRefOptions {
  /** Needed for Key Vault refs; asked for lazily so `file:` refs never touch Azure. */
  credential?: () => TokenCredential;
  clientOptions?: CryptographyClientOptions;
  /** Key Vault refs only: another signing key than `<name>-signing` (operators sealing; nodes never set it). */
  signingKeyRef?: string;
}

export function keyProviderFromRef(ref: string, options: KeyRefOptions = {}): OrgKeyProvider {
  if (ref.startsWith('file:')) {
    const file = ref.slice('file:'.length);
    if (!file) throw new KeyProviderError('invalid', `key reference ${ref}: missing path after file:`);
    if (options.signingKeyRef) throw new KeyProviderError('invalid', `a local key file (${ref}) authenticates its bundles itself (AES key wrap); a signing key goes with a Key Vault key only`);
    return createLocalKeyProvider(file);
  }
  if (isAzureKeyRef(ref)) {
    if (!options.credential) throw new KeyProviderError('invalid', `key reference ${ref} needs an Azure credential`);
    if (options.signingKeyRef !== undefined && !isAzureKeyRef(options.signingKeyRef)) {
      throw new KeyProviderError('invalid', `signing key ${JSON.stringify(options.signingKeyRef)}: expected https://<vault>.vault.azure.net/keys/<name>`);
    }
    return createAzureKeyProvider(ref, { credential: options.credential(), clientOptions: options.clientOptions, signingKeyRef: options.signingKeyRef });
  }
  throw new KeyProviderError('invalid', `unknown key reference ${JSON.stringify(ref)}: use file:PATH or https://<vault>.vault.azure.net/keys/<name>[/<version>]`);
}
