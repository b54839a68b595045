// The organization key as a local file: 32 random bytes, for development,
// tests and air-gapped operators. Data keys are wrapped with AES-256 Key Wrap
// (RFC 3394, Node's `id-aes256-wrap`), whose built-in integrity check tells a
// wrong or altered wrapped key apart from a good one.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { open, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { KeyProviderError, type OrgKeyProvider } from './types';

export const LOCAL_WRAP_ALG = 'A256KW';
const KW_IV = Buffer.from('A6A6A6A6A6A6A6A6', 'hex'); // RFC 3394 default initial value
const KEY_BYTES = 32;

/** Key version of a local key: the first 16 hex characters of its SHA-256. */
export function localKeyVersion(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/** Parse a key file: exactly 32 raw bytes, or base64 text of 32 bytes (what `signet keys create-local` writes). */
export function parseLocalKey(content: Buffer, file: string): Buffer {
  if (content.length === KEY_BYTES) return Buffer.from(content);
  const text = content.toString('utf8').trim();
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(text)) {
    const decoded = Buffer.from(text, 'base64');
    if (decoded.length === KEY_BYTES) return decoded;
  }
  throw new KeyProviderError('invalid', `${file}: not a Signet key file (expected 32 bytes, raw or base64)`);
}

/** Create a new key file (mode 0600, refuses to overwrite). Returns its version. */
export async function createLocalKeyFile(file: string): Promise<{ version: string }> {
  const key = randomBytes(KEY_BYTES);
  // 'wx': fail if it exists, so an org key is never silently replaced.
  const handle = await open(file, 'wx', 0o600);
  try {
    await handle.writeFile(`${key.toString('base64')}\n`);
    await handle.chmod(0o600); // umask cannot widen it, but a pre-set ACL default could; be explicit
    await handle.sync();
  } catch (error) {
    // A partial file would block the next attempt ('wx') and read as no key at all.
    await handle.close().catch(() => undefined);
    await unlink(file).catch(() => undefined);
    throw error;
  }
  await handle.close();
  return { version: localKeyVersion(key) };
}

/** `file:<name>#<version>` → version, or undefined when the ref carries none. */
function versionOf(keyRef: string): string | undefined {
  const hash = keyRef.lastIndexOf('#');
  return hash >= 0 ? keyRef.slice(hash + 1) : undefined;
}

export function createLocalKeyProvider(file: string, options: { key?: Buffer } = {}): OrgKeyProvider {
  let loaded: Promise<Buffer> | undefined = options.key ? Promise.resolve(parseLocalKey(options.key, file)) : undefined;
  const key = () => (loaded ??= readFile(file).then(
    (content) => parseLocalKey(content, file),
    (error: NodeJS.ErrnoException) => {
      loaded = undefined;
      throw new KeyProviderError('unavailable', `cannot read key file ${file}: ${error.code ?? error.message}`, { cause: error });
    },
  ));
  // The recorded ref names the file only by its base name: the header is in clear and a path says nothing useful elsewhere.
  const keyRef = `file:${path.basename(file)}`;
  return {
    keyRef: `file:${file}`,
    async wrap(dataKey) {
      const k = await key();
      const cipher = createCipheriv('id-aes256-wrap', k, KW_IV);
      const wrapped = Buffer.concat([cipher.update(dataKey), cipher.final()]);
      return { wrapped, keyRef: `${keyRef}#${localKeyVersion(k)}`, alg: LOCAL_WRAP_ALG };
    },
    async unwrap(wrapped, wrappedRef, alg) {
      if (alg !== LOCAL_WRAP_ALG) throw new KeyProviderError('wrong-key', `the data key is wrapped with ${alg} (key ${wrappedRef}); a local key file unwraps ${LOCAL_WRAP_ALG} only`);
      const k = await key();
      const have = localKeyVersion(k);
      const want = versionOf(wrappedRef);
      if (!wrappedRef.startsWith('file:') || (want !== undefined && want !== have)) {
        throw new KeyProviderError('wrong-key', `wrong key: the bundle was sealed under ${wrappedRef}, the key file ${file} is version ${have}`);
      }
      try {
        const decipher = createDecipheriv('id-aes256-wrap', k, KW_IV);
        return Buffer.concat([decipher.update(wrapped), decipher.final()]);
      } catch (error) {
        // Same key version, yet the RFC 3394 integrity check fails: the wrapped key was altered.
        throw new KeyProviderError('tampered', 'the wrapped data key fails its integrity check under the right key version', { cause: error });
      }
    },
  };
}
