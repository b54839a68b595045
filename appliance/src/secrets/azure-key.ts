// The organization key in Azure Key Vault. The key is an RSA key that never
// leaves the vault: the data key is wrapped and unwrapped by the vault itself
// (RSA-OAEP-256 `wrapkey` / `unwrapkey`), the node's identity needs only
// "Key Vault Crypto User" on that key. The wrapped data key records the full
// versioned key id, so bundles sealed before a rotation still open while the
// old version stays enabled.
import type { TokenCredential } from '@azure/identity';
import type { CryptographyClient, CryptographyClientOptions } from '@azure/keyvault-keys';
import { asRestError } from './rest-error';
import { KeyProviderError, type OrgKeyProvider } from './types';

// Loaded on first use: a node whose config comes from files never pays for the Azure SDKs' memory.
const keyvaultKeys = () => require('@azure/keyvault-keys') as typeof import('@azure/keyvault-keys');

export const AZURE_WRAP_ALG = 'RSA-OAEP-256';

export interface AzureKeyProviderOptions {
  credential: TokenCredential;
  /** Passed to the SDK clients (retry, TLS, challenge verification). */
  clientOptions?: CryptographyClientOptions;
}

interface KeyId { vaultUrl: string; name: string; version?: string }

function parseKeyId(ref: string): KeyId {
  let parsed;
  try {
    parsed = keyvaultKeys().parseKeyVaultKeyIdentifier(ref);
  } catch (error) {
    throw new KeyProviderError('invalid', `not a Key Vault key URL: ${ref} (expected https://<vault>.vault.azure.net/keys/<name>[/<version>])`, { cause: error });
  }
  return { vaultUrl: parsed.vaultUrl.replace(/\/+$/, '').toLowerCase(), name: parsed.name.toLowerCase(), version: parsed.version || undefined };
}

export function isAzureKeyRef(ref: string): boolean {
  return /^https:\/\/[^/]+\/keys\/[^/]+(\/[^/]*)?\/?$/i.test(ref);
}

function describe(error: unknown, keyRef: string, operation: string): KeyProviderError {
  if (error instanceof KeyProviderError) return error;
  const rest = asRestError(error);
  if (rest) {
    const status = rest.statusCode;
    if (status === 401 || status === 403) {
      return new KeyProviderError('denied', `Key Vault refused ${operation} with ${keyRef} (${status}): the identity needs "Key Vault Crypto User" on the key, and the key version must be enabled — ${rest.message}`, { cause: error });
    }
    if (status === 404) return new KeyProviderError('wrong-key', `key ${keyRef} does not exist in its vault (deleted, or another vault) — ${rest.message}`, { cause: error });
    if (status === 400 && operation === 'unwrap') {
      return new KeyProviderError('tampered', `Key Vault could not unwrap the data key with ${keyRef}: the wrapped data key was altered — ${rest.message}`, { cause: error });
    }
    return new KeyProviderError('unavailable', `Key Vault ${operation} with ${keyRef} failed (${status ?? rest.code ?? 'network'}): ${rest.message}`, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new KeyProviderError('unavailable', `Key Vault ${operation} with ${keyRef} failed: ${message}`, { cause: error });
}

export function createAzureKeyProvider(keyRef: string, options: AzureKeyProviderOptions): OrgKeyProvider {
  const own = parseKeyId(keyRef);
  const clients = new Map<string, CryptographyClient>();
  const client = (id: string) => {
    let c = clients.get(id);
    if (!c) clients.set(id, (c = new (keyvaultKeys().CryptographyClient)(id, options.credential, options.clientOptions)));
    return c;
  };
  return {
    keyRef,
    async wrap(dataKey) {
      try {
        // A versionless ref wraps under the key's current version; the vault answers with the versioned kid.
        // A fresh client each time: a CryptographyClient pins the version it first fetched, and wrap
        // must follow rotations (it is rare: seal and reseal only).
        const wrapper = own.version ? client(keyRef) : new (keyvaultKeys().CryptographyClient)(keyRef, options.credential, options.clientOptions);
        const result = await wrapper.wrapKey(AZURE_WRAP_ALG, dataKey);
        if (!result.keyID || !parseKeyId(result.keyID).version) throw new Error('the vault did not name the key version it used');
        return { wrapped: Buffer.from(result.result), keyRef: result.keyID, alg: AZURE_WRAP_ALG };
      } catch (error) {
        throw describe(error, keyRef, 'wrap');
      }
    },
    async unwrap(wrapped, wrappedRef, alg) {
      if (alg !== AZURE_WRAP_ALG) throw new KeyProviderError('wrong-key', `the data key is wrapped with ${alg} (key ${wrappedRef}); a Key Vault key unwraps ${AZURE_WRAP_ALG}`);
      if (!isAzureKeyRef(wrappedRef)) throw new KeyProviderError('wrong-key', `wrong key: the bundle was sealed under ${wrappedRef}, not a Key Vault key (given ${keyRef})`);
      const theirs = parseKeyId(wrappedRef);
      if (theirs.vaultUrl !== own.vaultUrl || theirs.name !== own.name || (own.version && theirs.version && own.version !== theirs.version)) {
        throw new KeyProviderError('wrong-key', `wrong key: the bundle was sealed under ${wrappedRef}, the key given is ${keyRef}`);
      }
      try {
        // Unwrap with the exact version that wrapped it, not the current one: rotation keeps old bundles readable.
        const result = await client(wrappedRef).unwrapKey(AZURE_WRAP_ALG, wrapped);
        return Buffer.from(result.result);
      } catch (error) {
        throw describe(error, wrappedRef, 'unwrap');
      }
    },
  };
}
