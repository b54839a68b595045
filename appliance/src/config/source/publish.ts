// `signet config publish`: put a sealed bundle where the nodes poll for it, in
// one step, refusing to replace a newer version already there (or the same
// version with other content; the same content resealed is fine).
import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { inspect, type BundleHeader } from '../bundle';
import { fetchBlob, isBlobUrl, uploadBlob, type BlobOptions } from './blob';

export interface PublishResult {
  location: string;
  header: BundleHeader;
  /** Version that was there before, if any. */
  replaced?: number;
}

export async function publishBundle(
  bundle: Buffer,
  to: string,
  options: { blob?: () => BlobOptions; force?: boolean } = {},
): Promise<PublishResult> {
  const header = inspect(bundle); // refuses anything that is not a well-formed bundle
  const checkPrevious = (previous: Buffer | undefined): number | undefined => {
    if (!previous) return undefined;
    let before: BundleHeader;
    try {
      before = inspect(previous);
    } catch {
      return undefined; // whatever is there is not a bundle; replace it
    }
    if (!options.force) {
      if (before.orgId !== header.orgId) throw new Error(`${to} holds a bundle of organization ${before.orgId}, this one is for ${header.orgId}; refusing (use --force to replace)`);
      // The same version is accepted only as the same content (a resealed bundle, after a key rotation).
      if (before.version > header.version || (before.version === header.version && before.contentHash !== header.contentHash)) {
        throw new Error(`${to} already holds version ${before.version}; this bundle is version ${header.version}, nodes would refuse it as a rollback (seal a higher --version)`);
      }
    }
    return before.version;
  };

  if (isBlobUrl(to)) {
    // publishing signs in with Entra ID; a SAS token would only end up in shell history and in these messages
    if (/[?#]/.test(to)) throw new Error('the blob URL has a query string or fragment: give it without one (no SAS token: publish signs in with your Entra ID login)');
    if (!options.blob) throw new Error('publishing to a blob URL needs an Azure credential');
    const blob = options.blob();
    let previous: Buffer | undefined;
    let etag: string | undefined;
    try {
      const fetched = await fetchBlob(to, blob);
      if (fetched.status === 'fetched') ({ data: previous, etag } = fetched);
    } catch (error) {
      if (!/: 404\b/.test((error as Error).message)) throw error;
    }
    const replaced = checkPrevious(previous);
    await uploadBlob(to, bundle, { ...blob, ...(etag ? { ifMatch: etag } : { ifNoneMatch: '*' }) });
    return { location: to, header, replaced };
  }

  const target = path.resolve(to);
  const previous = await readFile(target).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  const replaced = checkPrevious(previous);
  await writeFileAtomic(target, bundle);
  return { location: target, header, replaced };
}

/** Writes beside the target, then renames: a reader (a polling node) sees the old file or the new one, never half of one. */
export async function writeFileAtomic(file: string, data: Buffer): Promise<void> {
  const folder = await stat(path.dirname(file)).catch(() => undefined);
  if (!folder?.isDirectory()) throw new Error(`${path.dirname(file)}: no such folder; create it first`);
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(temporary, data, { mode: 0o644 });
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}
