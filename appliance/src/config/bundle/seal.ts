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
// key wrapping and the signature (format, orgId, version, createdAt, author,
// contentHash, files, size, iv): a bundle cannot be relabelled as another
// organization or version. The key envelope (ref, alg, wrapped) is itself
// authenticated by `key.mac`, an HMAC-SHA256 under a key derived (HKDF) from
// the data key, so that no byte of the file can change unnoticed. A data key
// encrypts one bundle only: reseal (after a key rotation) encrypts the same
// content again under a fresh one.
//
// All of that rests on the data key, which is only as trustworthy as its
// wrapping. AES key wrap under a local key file (A256KW) is symmetric: only a
// holder of the key can produce it. RSA-OAEP under a Key Vault key is not:
// anyone who can read the public key can wrap a data key of their choosing
// and seal a bundle whose GCM tag and MAC are valid. So any bundle whose data
// key is not wrapped with A256KW carries `signature` {kid, alg, value}: PS256
// by the organization's signing key (azure-key.ts) over the SHA-256 of
//
//   "signet-config-bundle-signature/1" 0x00
//   u32 length, canonical JSON of the header without `signature` (so the key envelope too)
//   ciphertext, tag
//
// and unseal checks it before anything is unwrapped. The signature is the
// only field the signed bytes leave out.
// Versions are positive integers that only go up; by default the UTC time of
// sealing as YYYYMMDDhhmmss, so they sort and read as dates.
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { KeyProviderError, LOCAL_WRAP_ALG, type BundleSigner, type BundleVerifier, type OrgKeyProvider } from '../../secrets';
import { BundleError } from './errors';
import { hashPack, packFiles, unpackFiles } from './pack';

export const BUNDLE_FORMAT = 'signet-config-bundle/1';
const MAGIC = Buffer.from('SIGNETB\x01', 'latin1');
const TAG_BYTES = 16;
const IV_BYTES = 12;
const MAX_HEADER_BYTES = 64 * 1024;
const SIGNATURE_CONTEXT = Buffer.from('signet-config-bundle-signature/1\0', 'latin1');

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
  // Absent for bundles sealed under a local key file (A256KW authenticates them); required for any other wrapping.
  signature: z.strictObject({ kid: z.string().min(1), alg: z.string().min(1), value: base64 }).optional(),
});

/** What `signet config inspect` shows: everything in clear, nothing of the content. */
export type BundleHeader = z.infer<typeof headerSchema>;

export interface SealOptions {
  orgId: string;
  version: number;
  author: string;
  keyProvider: OrgKeyProvider;
  createdAt?: Date;
  /** Signs a bundle whose data key is wrapped with a public-key algorithm; default: the key provider's signer. */
  signer?: BundleSigner;
  /** Checks that signature before the bundle is returned; default: the key provider's verifier. */
  verifier?: BundleVerifier;
}

/** Default version for a bundle sealed at `date`: UTC YYYYMMDDhhmmss as an integer. */
export function defaultBundleVersion(date = new Date()): number {
  return Number(date.toISOString().replace(/[-:T]/g, '').slice(0, 14));
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined) // as JSON.stringify: an absent optional field is no field
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
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

/**
 * Only AES key wrap under a local key file authenticates the data key by
 * itself; any other wrapping (RSA-OAEP-256 with a Key Vault key) can be done
 * with the public key alone, so the bundle must be signed.
 */
function needsSignature(alg: string): boolean {
  return alg !== LOCAL_WRAP_ALG;
}

/** The bytes a signature covers: everything the node trusts but the signature itself (see the top of this file). */
function signedParts(header: BundleHeader, ciphertext: Buffer, tag: Buffer): Buffer[] {
  const unsigned: Partial<BundleHeader> = { ...header };
  delete unsigned.signature;
  const headerBytes = Buffer.from(canonicalJson(unsigned), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(headerBytes.length);
  return [SIGNATURE_CONTEXT, length, headerBytes, ciphertext, tag];
}

/** Sign `header` (which must not carry a signature yet) and check the signature as a node will; returns the signed header. */
async function signHeader(header: BundleHeader, ciphertext: Buffer, tag: Buffer, signer: BundleSigner | undefined, verifier: BundleVerifier | undefined): Promise<BundleHeader> {
  if (!signer) {
    throw new BundleError('invalid', `a bundle whose data key is wrapped with ${header.key.alg} (key ${header.key.ref}) must be signed, and no signing key was given`);
  }
  const parts = signedParts(header, ciphertext, tag);
  const digest = createHash('sha256');
  for (const part of parts) digest.update(part);
  let signed;
  try {
    signed = await signer.sign(digest.digest());
  } catch (error) {
    throw keyError(error, 'bundle not signed');
  }
  const signature = { kid: signed.kid, alg: signed.alg, value: signed.signature.toString('base64') };
  if (verifier) {
    // What a node will do: catches a signing key the nodes would not accept before the bundle is published.
    try {
      await verifier.verify(parts, { kid: signature.kid, alg: signature.alg, value: signed.signature });
    } catch (error) {
      throw keyError(error, 'bundle not sealed: its signature does not verify');
    }
  }
  return { ...header, signature };
}

/** Refuse a bundle that needs a signature and has no valid one; runs before any key is asked to unwrap. */
async function checkSignature(parsed: Parsed, keyProvider: OrgKeyProvider, verifier: BundleVerifier | undefined): Promise<void> {
  const { header, ciphertext, tag } = parsed;
  if (!needsSignature(header.key.alg)) {
    // Nothing authenticates a signature field here; a sealer never writes one, so it was added afterwards.
    if (header.signature) throw new BundleError('tampered', `bundle refused: tampered — a signature was added to a bundle wrapped with ${header.key.alg}, which carries none`);
    return;
  }
  try {
    keyProvider.checkKeyRef?.(header.key.ref, header.key.alg); // another organization's key says so plainly, before any signature talk
  } catch (error) {
    throw keyError(error);
  }
  if (!verifier) {
    throw new BundleError('wrong-key', `bundle refused: it was sealed under ${header.key.ref} (${header.key.alg}); the key given (${keyProvider.keyRef}) can neither check its signature nor open it`);
  }
  if (!header.signature) {
    throw new BundleError('unsigned', `bundle refused: unsigned — its data key is wrapped with ${header.key.alg}, which anyone with the public key can do, so it must be signed by ${verifier.keyRef}, and it carries no signature`);
  }
  try {
    await verifier.verify(signedParts(header, ciphertext, tag), { kid: header.signature.kid, alg: header.signature.alg, value: Buffer.from(header.signature.value, 'base64') });
  } catch (error) {
    throw keyError(error);
  }
}

function assemble(header: BundleHeader, ciphertext: Buffer, tag: Buffer): Buffer {
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(headerBytes.length);
  return Buffer.concat([MAGIC, length, headerBytes, ciphertext, tag]);
}

function keyError(error: unknown, failed?: string): BundleError {
  if (error instanceof BundleError) return error;
  if (error instanceof KeyProviderError) {
    switch (error.code) {
      case 'wrong-key':
        return new BundleError('wrong-key', `${failed ?? 'bundle refused'}: ${error.message}`, { cause: error });
      case 'tampered':
        return new BundleError('tampered', `${failed ?? 'bundle refused'}: tampered — ${error.message}`, { cause: error });
      case 'bad-signature':
        return new BundleError('bad-signature', `${failed ?? 'bundle refused'}: bad signature — ${error.message}`, { cause: error });
      default:
        return new BundleError('key-unavailable', `${failed ?? 'bundle not opened'}: ${error.message}`, { cause: error });
    }
  }
  return new BundleError('key-unavailable', `${failed ?? 'bundle not opened'}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}

type Labels = Pick<BundleHeader, 'orgId' | 'version' | 'createdAt' | 'author' | 'contentHash' | 'files' | 'size'>;

/** Encrypt a pack under a fresh data key and IV (never reused: see reseal), wrap and, when the wrapping needs it, sign. */
async function encrypt(pack: Buffer, labels: Labels, keyProvider: OrgKeyProvider, signer: BundleSigner | undefined, verifier: BundleVerifier | undefined, failed: string): Promise<Buffer> {
  const dataKey = randomBytes(32);
  const iv = randomBytes(IV_BYTES);
  try {
    let wrapping;
    try {
      wrapping = await keyProvider.wrap(dataKey);
    } catch (error) {
      throw keyError(error, failed);
    }
    const header: BundleHeader = {
      format: BUNDLE_FORMAT,
      ...labels,
      cipher: { alg: 'A256GCM', iv: iv.toString('base64') },
      key: envelope(dataKey, wrapping),
    };
    const cipher = createCipheriv('aes-256-gcm', dataKey, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(associatedData(header));
    const ciphertext = Buffer.concat([cipher.update(pack), cipher.final()]);
    const tag = cipher.getAuthTag();
    const signed = needsSignature(header.key.alg) ? await signHeader(header, ciphertext, tag, signer, verifier) : header;
    return assemble(signed, ciphertext, tag);
  } finally {
    dataKey.fill(0);
  }
}

export async function seal(files: Map<string, Buffer>, options: SealOptions): Promise<Buffer> {
  if (!Number.isSafeInteger(options.version) || options.version <= 0) throw new BundleError('invalid', `bundle version must be a positive integer, got ${options.version}`);
  if (!options.orgId) throw new BundleError('invalid', 'bundle needs an organization id');
  const pack = packFiles(files);
  const labels: Labels = {
    orgId: options.orgId,
    version: options.version,
    createdAt: (options.createdAt ?? new Date()).toISOString(),
    author: options.author,
    contentHash: hashPack(pack),
    files: files.size,
    size: pack.length,
  };
  return encrypt(pack, labels, options.keyProvider, options.signer ?? options.keyProvider.signer, options.verifier ?? options.keyProvider.verifier, 'bundle not sealed');
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
  /** Checks the signature of a bundle that needs one; default: the key provider's verifier. */
  verifier?: BundleVerifier;
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
  await checkSignature(parsed, keyProvider, options.verifier ?? keyProvider.verifier); // before the key is asked for anything
  const pack = await openParsed(parsed, keyProvider);
  return { header, files: unpackFiles(pack) };
}

/**
 * Move a bundle to `keyProvider`'s current key version (after a rotation).
 * The content is authenticated first (its signature too, when its wrapping
 * needs one: an unsigned or forged bundle is never signed anew), then
 * encrypted again under a fresh data key and IV, with the same organization,
 * version, creation time, author and content hash. Not merely re-wrapped: the
 * old data key is known to whoever held the old key, and under AES key wrap
 * the envelope is the only thing that authenticates a bundle, so a re-wrapped
 * old data key would let them seal any content under the new key. `from`
 * opens the old wrapping when it was another key (a different key file); by
 * default the same provider does both.
 */
export async function reseal(bundle: Buffer, keyProvider: OrgKeyProvider, options: { from?: OrgKeyProvider; signer?: BundleSigner; verifier?: BundleVerifier } = {}): Promise<Buffer> {
  const parsed = parse(bundle);
  const from = options.from ?? keyProvider;
  await checkSignature(parsed, from, from.verifier);
  let pack: Buffer;
  try {
    pack = await openParsed(parsed, from);
  } catch (error) {
    if (error instanceof BundleError && error.code === 'tampered') throw new BundleError('tampered', `${error.message}; not resealed`, { cause: error });
    throw error;
  }
  const { orgId, version, createdAt, author, contentHash, files, size } = parsed.header;
  return encrypt(pack, { orgId, version, createdAt, author, contentHash, files, size }, keyProvider, options.signer ?? keyProvider.signer, options.verifier ?? keyProvider.verifier, 'bundle not resealed');
}
