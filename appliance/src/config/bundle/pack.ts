// The packed files map inside a bundle: deterministic, so the same folder
// always packs to the same bytes and its SHA-256 is the content hash.
//
//   u32 count
//   count × ( u32 nameLength, name (UTF-8), u32 dataLength, data )
//
// Big-endian lengths; entries sorted by the UTF-8 bytes of their names. A
// hand-written format rather than tar: tar headers carry mtimes, owners and
// modes that would make the hash depend on the machine that sealed it.
import { createHash } from 'node:crypto';
import { BundleError } from './errors';

const MAX_NAME_BYTES = 1024;

/** A relative, forward-slash path with no `.`/`..` segments, no NUL, no backslash. */
export function checkFileName(name: string): string | undefined {
  if (name.length === 0) return 'empty name';
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) return 'name too long';
  if (name.includes('\0') || name.includes('\\')) return 'NUL or backslash in name';
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return 'absolute path';
  if (name.split('/').some((segment) => segment === '' || segment === '.' || segment === '..')) return 'empty, . or .. path segment';
  return undefined;
}

function sortedNames(files: Map<string, Buffer>): string[] {
  return [...files.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

export function packFiles(files: Map<string, Buffer>): Buffer {
  const parts: Buffer[] = [];
  const count = Buffer.alloc(4);
  count.writeUInt32BE(files.size);
  parts.push(count);
  for (const name of sortedNames(files)) {
    const problem = checkFileName(name);
    if (problem) throw new BundleError('invalid', `cannot pack ${JSON.stringify(name)}: ${problem}`);
    const nameBytes = Buffer.from(name, 'utf8');
    const data = files.get(name)!;
    const lengths = Buffer.alloc(4);
    lengths.writeUInt32BE(nameBytes.length);
    const dataLength = Buffer.alloc(4);
    dataLength.writeUInt32BE(data.length);
    parts.push(lengths, nameBytes, dataLength, data);
  }
  return Buffer.concat(parts);
}

export function unpackFiles(pack: Buffer): Map<string, Buffer> {
  const bad = (why: string) => new BundleError('garbled', `the packed configuration is malformed: ${why}`);
  if (pack.length < 4) throw bad('no file count');
  const count = pack.readUInt32BE(0);
  const files = new Map<string, Buffer>();
  let at = 4;
  for (let i = 0; i < count; i++) {
    if (at + 4 > pack.length) throw bad(`entry ${i} cut short`);
    const nameLength = pack.readUInt32BE(at);
    at += 4;
    if (nameLength > MAX_NAME_BYTES || at + nameLength + 4 > pack.length) throw bad(`entry ${i} name cut short`);
    const name = pack.subarray(at, at + nameLength).toString('utf8');
    at += nameLength;
    const dataLength = pack.readUInt32BE(at);
    at += 4;
    if (at + dataLength > pack.length) throw bad(`${name} cut short`);
    const problem = checkFileName(name);
    if (problem) throw bad(`${JSON.stringify(name)}: ${problem}`);
    if (files.has(name)) throw bad(`${name} appears twice`);
    files.set(name, Buffer.from(pack.subarray(at, at + dataLength)));
    at += dataLength;
  }
  if (at !== pack.length) throw bad('trailing bytes');
  return files;
}

/** SHA-256 of the canonical pack of a files map, as `sha256:<hex>`. */
export function contentHash(files: Map<string, Buffer>): string {
  return hashPack(packFiles(files));
}

export function hashPack(pack: Buffer): string {
  return `sha256:${createHash('sha256').update(pack).digest('hex')}`;
}
