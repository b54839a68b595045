// The node's secrets other than the org key: its TLS certificate and key, the
// Graph app's client secret. On Azure they are Key Vault secrets read with the
// node's identity ("Key Vault Secrets User" on its own vault); locally, files.
import type { TokenCredential } from '@azure/identity';
import type { SecretClientOptions } from '@azure/keyvault-secrets';
import { asRestError } from './rest-error';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { SecretProvider } from './types';

export class SecretError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SecretError';
  }
}

const SECRET_NAME = /^[0-9A-Za-z-]{1,127}$/; // Key Vault's own rule for secret names; also keeps file names safe

export function createKeyVaultSecretProvider(vaultUrl: string, options: { credential: TokenCredential; clientOptions?: SecretClientOptions }): SecretProvider {
  // loaded on first use, as the other Azure SDKs
  const { SecretClient } = require('@azure/keyvault-secrets') as typeof import('@azure/keyvault-secrets');
  const client = new SecretClient(vaultUrl, options.credential, options.clientOptions);
  return {
    async get(name, version) {
      if (!SECRET_NAME.test(name)) throw new SecretError(`invalid secret name ${JSON.stringify(name)} (letters, digits and dashes)`);
      try {
        const secret = await client.getSecret(name, version ? { version } : {});
        if (secret.value === undefined) throw new SecretError(`secret ${name} in ${vaultUrl} has no value`);
        return secret.value;
      } catch (error) {
        if (error instanceof SecretError) throw error;
        const rest = asRestError(error);
        if (rest) {
          const hint = rest.statusCode === 403 || rest.statusCode === 401 ? ' (the identity needs "Key Vault Secrets User" on the vault)' : '';
          throw new SecretError(`cannot read secret ${name}${version ? `/${version}` : ''} from ${vaultUrl}: ${rest.statusCode ?? rest.code}${hint}`, { cause: error });
        }
        throw new SecretError(`cannot read secret ${name} from ${vaultUrl}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      }
    },
  };
}

/** Secrets as files in a directory: `<dir>/<name>`, or `<dir>/<name>.<version>` when a version is asked for. */
export function createFileSecretProvider(dir: string): SecretProvider {
  return {
    async get(name, version) {
      if (!SECRET_NAME.test(name) || (version !== undefined && !SECRET_NAME.test(version))) {
        throw new SecretError(`invalid secret name ${JSON.stringify(name)} (letters, digits and dashes)`);
      }
      const file = path.join(dir, version ? `${name}.${version}` : name);
      try {
        return await readFile(file, 'utf8');
      } catch (error) {
        throw new SecretError(`cannot read secret ${name} from ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
      }
    },
  };
}
