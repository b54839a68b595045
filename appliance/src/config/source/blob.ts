// Bundle distribution through Azure Blob Storage: nodes download with their
// managed identity ("Storage Blob Data Reader" on the container), skipping
// unchanged blobs by ETag; operators upload ("Storage Blob Data Contributor").
import type { StoragePipelineOptions } from '@azure/storage-blob';
import type { TokenCredential } from '@azure/identity';
import { asRestError } from '../../secrets/rest-error';

// Loaded on first use: a node whose config comes from files never pays for the Azure SDKs' memory.
const storageBlob = () => require('@azure/storage-blob') as typeof import('@azure/storage-blob');

/** A bundle is small; anything bigger than this is not one of ours. */
export const MAX_BUNDLE_BYTES = 64 * 1024 * 1024;

export function isBlobUrl(location: string): boolean {
  return /^https:\/\//i.test(location);
}

export interface BlobOptions {
  credential: TokenCredential;
  clientOptions?: StoragePipelineOptions;
}

export type BlobFetch = { status: 'unchanged' } | { status: 'fetched'; data: Buffer; etag?: string };

async function collect(stream: NodeJS.ReadableStream, limit: number, url: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += buffer.length;
    if (size > limit) throw new Error(`${url}: larger than ${limit} bytes, not a config bundle`);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

export async function fetchBlob(url: string, options: BlobOptions & { etag?: string }): Promise<BlobFetch> {
  const client = new (storageBlob().BlobClient)(url, options.credential, options.clientOptions);
  try {
    const response = await client.download(0, undefined, options.etag ? { conditions: { ifNoneMatch: options.etag } } : {});
    if (!response.readableStreamBody) throw new Error(`${url}: empty download`);
    if ((response.contentLength ?? 0) > MAX_BUNDLE_BYTES) {
      // Unread, the response would hold its socket open until the server gives up.
      (response.readableStreamBody as NodeJS.ReadableStream & { destroy?(): void }).destroy?.();
      throw new Error(`${url}: ${response.contentLength} bytes, not a config bundle`);
    }
    return { status: 'fetched', data: await collect(response.readableStreamBody, MAX_BUNDLE_BYTES, url), etag: response.etag };
  } catch (error) {
    const rest = asRestError(error);
    if (rest?.statusCode === 304) return { status: 'unchanged' };
    if (rest) {
      const hint = rest.statusCode === 403 ? ' (the identity needs "Storage Blob Data Reader" on the container)' : rest.statusCode === 404 ? ' (no bundle published there yet)' : '';
      throw new Error(`cannot download ${url}: ${rest.statusCode ?? rest.code}${hint}`, { cause: error });
    }
    throw error;
  }
}

/** Upload a bundle; `ifMatch` makes it fail if someone else published in between. */
export async function uploadBlob(url: string, data: Buffer, options: BlobOptions & { ifMatch?: string; ifNoneMatch?: string }): Promise<{ etag?: string }> {
  const client = new (storageBlob().BlockBlobClient)(url, options.credential, options.clientOptions);
  try {
    const response = await client.upload(data, data.length, {
      blobHTTPHeaders: { blobContentType: 'application/vnd.signet.config-bundle' },
      conditions: { ...(options.ifMatch ? { ifMatch: options.ifMatch } : {}), ...(options.ifNoneMatch ? { ifNoneMatch: options.ifNoneMatch } : {}) },
    });
    return { etag: response.etag };
  } catch (error) {
    const rest = asRestError(error);
    if (rest) {
      const hint = rest.statusCode === 403 ? ' (the identity needs "Storage Blob Data Contributor" on the container)'
        : rest.statusCode === 412 || rest.statusCode === 409 ? ' (another bundle was published meanwhile; inspect it and retry)' : '';
      throw new Error(`cannot upload to ${url}: ${rest.statusCode ?? rest.code}${hint}`, { cause: error });
    }
    throw error;
  }
}
