// A sealed configuration bundle: one file holding an organization's config
// folder, encrypted with AES-256-GCM under a fresh data key that the
// organization's key wraps. Layout:
//
//   "SIGNETB" 0x01          8 bytes: magic + layout version
//   u32 headerLength        big-endian
//   header                  JSON, UTF-8, in clear (see BundleHeader)
//   ciphertext              AES-256-GCM of the packed files (pack.ts)
//   tag                     16 bytes, GCM authentication tag
//
// The associated data is the canonical JSON of every header field except the
// key wrapping (format, orgId, version, createdAt, author, contentHash, files,
// size, iv): a bundle cannot be relabelled as another organization or version,
// and re-wrapping the data key after a key rotation (reseal) leaves it intact.
// The key envelope (ref, alg, wrapped) is itself authenticated by `key.mac`,
// an HMAC-SHA256 under a key derived (HKDF) from the data key, so that no byte
// of the file can change unnoticed, and reseal can still replace the envelope.
// Versions are positive integers that only go up; by default the UTC time of
// sealing as YYYYMMDDhhmmss, so they sort and read as dates.
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { KeyProviderError, type OrgKeyProvider } from '../../secrets';
import { BundleError } from './errors';
import { hashPack, packFiles, unpackFiles } from './pack';

export const BUNDLE_FORMAT = 'signet-config-bundle/1';
const MAGIC = Buffer.from('SIGNETB\x01', 'latin1');
const TAG_BYTES = 16;
const IV_BYTES = 12;
const MAX_HEADER_BYTES = 64 * 1024;

const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64');
const headerSchema = z.strictObject({
  format: z.literal(BUNDLE_FORMAT),
  orgId: z.string().min(1),
  version: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  createdAt: z.string().min(1),
  author: z.string(),
  contentHash: z.string().regex(/^sha256:[0-9a-f]{64}$/),
  files: z.number().int().nonnegative(),
  size: z.number().int().nonnegative(),
  cipher: z.strictObject({ alg: z.literal('A256GCM'), iv: base64 }),
  key: z.strictObject({ ref: z.string().min(1), alg: z.string().min(1), wrapped: base64, mac: base64 }),
});

/** What `signet config inspect` shows: everything in clear, nothing of the content. */
export type BundleHeader = z.infer<typeof headerSchema>;

export interface SealOptions {
  orgId: string;
  version: number;
  author: string;
  keyProvider: OrgKeyProvider;
  createdAt?: Date;
}

/** Default version for a bundle sealed at `date`: UTC YYYYMMDDhhmmss as an integer. */
export function defaultBundleVersion(date = new Date()): number {
  return Number(date.toISOString().replace(/[-:T]/g, '').slice(0, 14));
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function associatedData(header: BundleHeader): Buffer {
  const { format, orgId, version, createdAt, author, contentHash, files, size, cipher } = header;
  return Buffer.from(canonicalJson({ format, orgId, version, createdAt, author, contentHash, files, size, iv: cipher.iv }), 'utf8');
}

type Wrapping = { keyRef: string; alg: string; wrapped: Buffer };

function envelopeMac(dataKey: Buffer, ref: string, alg: string, wrapped: string): string {
  const macKey = Buffer.from(hkdfSync('sha256', dataKey, Buffer.alloc(0), 'signet bundle key envelope', 32));
  return createHmac('sha256', macKey).update(canonicalJson({ ref, alg, wrapped })).digest('base64');
}

function envelope(dataKey: Buffer, wrapping: Wrapping): BundleHeader['key'] {
  const wrapped = wrapping.wrapped.toString('base64');
  return { ref: wrapping.keyRef, alg: wrapping.alg, wrapped, mac: envelopeMac(dataKey, wrapping.keyRef, wrapping.alg, wrapped) };
}

function checkEnvelope(dataKey: Buffer, key: BundleHeader['key']): void {
  const expected = Buffer.from(envelopeMac(dataKey, key.ref, key.alg, key.wrapped), 'base64');
  const given = Buffer.from(key.mac, 'base64');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new BundleError('tampered', 'bundle refused: tampered — the key envelope (key.ref, key.alg, key.wrapped) was altered');
  }
}

function assemble(header: BundleHeader, ciphertext: Buffer, tag: Buffer): Buffer {
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(headerBytes.length);
  return Buffer.concat([MAGIC, length, headerBytes, ciphertext, tag]);
}

function keyError(error: unknown): BundleError {
  if (error instanceof KeyProviderError) {
    switch (error.code) {
      case 'wrong-key':
        return new BundleError('wrong-key', `bundle refused: ${error.message}`, { cause: error });
      case 'tampered':
        return new BundleError('tampered', `bundle refused: tampered — ${error.message}`, { cause: error });
      default:
        return new BundleError('key-unavailable', `bundle not opened: ${error.message}`, { cause: error });
    }
  }
  return new BundleError('key-unavailable', `bundle not opened: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}

export async function seal(files: Map<string, Buffer>, options: SealOptions): Promise<Buffer> {
  if (!Number.isSafeInteger(options.version) || options.version <= 0) throw new BundleError('invalid', `bundle version must be a positive integer, got ${options.version}`);
  if (!options.orgId) throw new BundleError('invalid', 'bundle needs an organization id');
  const pack = packFiles(files);
  const dataKey = randomBytes(32);
  const iv = randomBytes(IV_BYTES);
  try {
    let wrapping;
    try {
      wrapping = await options.keyProvider.wrap(dataKey);
    } catch (error) {
      throw keyError(error);
    }
    const header: BundleHeader = {
      format: BUNDLE_FORMAT,
      orgId: options.orgId,
      version: options.version,
      createdAt: (options.createdAt ?? new Date()).toISOString(),
      author: options.author,
      contentHash: hashPack(pack),
      files: files.size,
      size: pack.length,
      cipher: { alg: 'A256GCM', iv: iv.toString('base64') },
      key: envelope(dataKey, wrapping),
    };
    const cipher = createCipheriv('aes-256-gcm', dataKey, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(associatedData(header));
    const ciphertext = Buffer.concat([cipher.update(pack), cipher.final()]);
    return assemble(header, ciphertext, cipher.getAuthTag());
  } finally {
    dataKey.fill(0);
  }
}

interface Parsed {
  header: BundleHeader;
  ciphertext: Buffer;
  tag: Buffer;
}

function parse(bundle: Buffer): Parsed {
  if (bundle.length < MAGIC.length) {
    throw bundle.length > 0 && MAGIC.subarray(0, bundle.length).equals(bundle)
      ? new BundleError('truncated', `bundle refused: truncated (${bundle.length} bytes)`)
      : new BundleError('not-a-bundle', 'not a Signet config bundle (no SIGNETB signature)');
  }
  if (!bundle.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new BundleError('not-a-bundle', 'not a Signet config bundle (no SIGNETB signature, or a newer layout)');
  }
  if (bundle.length < MAGIC.length + 4) throw new BundleError('truncated', `bundle refused: truncated (${bundle.length} bytes)`);
  const headerLength = bundle.readUInt32BE(MAGIC.length);
  if (headerLength > MAX_HEADER_BYTES) throw new BundleError('garbled', `bundle refused: garbled header length ${headerLength}`);
  const headerEnd = MAGIC.length + 4 + headerLength;
  if (bundle.length < headerEnd) throw new BundleError('truncated', `bundle refused: truncated (${bundle.length} bytes, the header alone needs ${headerEnd})`);
  let json: unknown;
  try {
    json = JSON.parse(bundle.subarray(MAGIC.length + 4, headerEnd).toString('utf8'));
  } catch {
    throw new BundleError('garbled', 'bundle refused: garbled header (not JSON)');
  }
  const result = headerSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new BundleError('garbled', `bundle refused: garbled header (${issue.path.join('.') || 'header'}: ${issue.message})`);
  }
  const header = result.data;
  const expected = headerEnd + header.size + TAG_BYTES;
  if (bundle.length < expected) throw new BundleError('truncated', `bundle refused: truncated (${bundle.length} bytes, the header announces ${expected})`);
  if (bundle.length > expected) throw new BundleError('garbled', `bundle refused: ${bundle.length - expected} unexpected bytes after the content`);
  if (Buffer.from(header.cipher.iv, 'base64').length !== IV_BYTES) throw new BundleError('garbled', 'bundle refused: garbled header (cipher.iv)');
  return { header, ciphertext: bundle.subarray(headerEnd, headerEnd + header.size), tag: bundle.subarray(headerEnd + header.size) };
}

/** The clear header, without decrypting or touching any key. */
export function inspect(bundle: Buffer): BundleHeader {
  return parse(bundle).header;
}

export interface UnsealOptions {
  /** Refuse a bundle of another organization (checked before unwrapping, and authenticated by the AAD). */
  expectOrgId?: string;
  /** Refuse a bundle older than this version (rollback). */
  minVersion?: number;
}

async function openParsed(parsed: Parsed, keyProvider: OrgKeyProvider): Promise<Buffer> {
  const { header, ciphertext, tag } = parsed;
  let dataKey: Buffer;
  try {
    dataKey = await keyProvider.unwrap(Buffer.from(header.key.wrapped, 'base64'), header.key.ref, header.key.alg);
  } catch (error) {
    throw keyError(error);
  }
  try {
    if (dataKey.length !== 32) throw new BundleError('tampered', 'bundle refused: tampered — the unwrapped data key has the wrong length');
    checkEnvelope(dataKey, header.key);
    const decipher = createDecipheriv('aes-256-gcm', dataKey, Buffer.from(header.cipher.iv, 'base64'), { authTagLength: TAG_BYTES });
    decipher.setAAD(associatedData(header));
    decipher.setAuthTag(tag);
    let pack: Buffer;
    try {
      pack = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
    } catch (error) {
      throw new BundleError('tampered', `bundle refused: tampered — the content or its header (org ${header.orgId}, version ${header.version}) fails authentication`, { cause: error });
    }
    // Authenticated already; the hash check catches a sealing bug, not an attacker.
    if (hashPack(pack) !== header.contentHash) throw new BundleError('tampered', 'bundle refused: tampered — content hash does not match the header');
    return pack;
  } finally {
    dataKey.fill(0);
  }
}

export async function unseal(bundle: Buffer, keyProvider: OrgKeyProvider, options: UnsealOptions = {}): Promise<{ header: BundleHeader; files: Map<string, Buffer> }> {
  const parsed = parse(bundle);
  const { header } = parsed;
  if (options.expectOrgId !== undefined && header.orgId !== options.expectOrgId) {
    throw new BundleError('wrong-org', `bundle refused: wrong organization — it was sealed for ${JSON.stringify(header.orgId)}, this node serves ${JSON.stringify(options.expectOrgId)}`);
  }
  if (options.minVersion !== undefined && header.version < options.minVersion) {
    throw new BundleError('rollback', `bundle refused: version ${header.version} is older than version ${options.minVersion} already loaded (rollback refused)`);
  }
  const pack = await openParsed(parsed, keyProvider);
  return { header, files: unpackFiles(pack) };
}

/**
 * Re-wrap the data key under `keyProvider`'s current key version (after a
 * rotation). The content is authenticated first, then left byte for byte as it
 * was: same ciphertext, same AAD. `from` opens the old wrapping when it was
 * another key (a different key file); by default the same provider does both.
 */
export async function reseal(bundle: Buffer, keyProvider: OrgKeyProvider, options: { from?: OrgKeyProvider } = {}): Promise<Buffer> {
  const parsed = parse(bundle);
  const from = options.from ?? keyProvider;
  let dataKey: Buffer;
  try {
    dataKey = await from.unwrap(Buffer.from(parsed.header.key.wrapped, 'base64'), parsed.header.key.ref, parsed.header.key.alg);
  } catch (error) {
    throw keyError(error);
  }
  try {
    if (dataKey.length !== 32) throw new BundleError('tampered', 'bundle refused: tampered — the unwrapped data key has the wrong length');
    checkEnvelope(dataKey, parsed.header.key);
    // Prove the data key opens this content before vouching for it under the new key.
    const decipher = createDecipheriv('aes-256-gcm', dataKey, Buffer.from(parsed.header.cipher.iv, 'base64'), { authTagLength: TAG_BYTES });
    decipher.setAAD(associatedData(parsed.header));
    decipher.setAuthTag(parsed.tag);
    try {
      decipher.update(parsed.ciphertext);
      decipher.final();
    } catch (error) {
      throw new BundleError('tampered', 'bundle refused: tampered — the content fails authentication; not resealed', { cause: error });
    }
    let wrapping;
    try {
      wrapping = await keyProvider.wrap(dataKey);
    } catch (error) {
      throw keyError(error);
    }
    const header: BundleHeader = { ...parsed.header, key: envelope(dataKey, wrapping) };
    return assemble(header, parsed.ciphertext, parsed.tag);
  } finally {
    dataKey.fill(0);
  }
}
