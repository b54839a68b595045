// Loop and origin guard on the wire: holds back the top header block of a
// message (and nothing more) until it has been seen whole, counts
// X-Signet-Processed headers in it, and fails the stream when the message has
// passed through Signet too many times or (when configured) did not leave
// this organization's Microsoft 365 tenant. The body is never buffered: once the header block is
// complete everything streams through unchanged.
//
// Hand-written rather than mailsplit: only the end of the top header block and
// one header name are needed, and parsing the whole MIME tree here would cost
// a second full parse of every message for one count.
import { isAscii } from 'node:buffer';
import { Transform, type TransformCallback } from 'node:stream';
import { topHeaderEnd } from '../mime/header-block';

export const STAMP_HEADER_NAME = 'X-Signet-Processed';

/** The header Exchange Online stamps with the id of the tenant a message left. */
export const TENANT_HEADER_NAME = 'X-MS-Exchange-CrossTenant-Id';

/**
 * Every Microsoft 365 tenant presents the same client certificate, so the
 * certificate does not say whose mail this is; the tenant id Exchange Online
 * stamps does. `found` is empty when the message carries none.
 */
export class TenantMismatchError extends Error {
  /** other: only other tenants' ids; none: no id at all; mixed: ours beside another. */
  readonly kind: 'other' | 'none' | 'mixed';
  constructor(found: string[], expected: string) {
    const kind = found.length === 0 ? 'none' : found.includes(expected) ? 'mixed' : 'other';
    super(kind === 'none' ? `message carries no ${TENANT_HEADER_NAME} header` : kind === 'other' ? 'message is from another Microsoft 365 tenant' : `message carries another tenant's ${TENANT_HEADER_NAME} beside this one's`);
    this.name = 'TenantMismatchError';
    this.kind = kind;
  }
}

/** Values of the top-level X-MS-Exchange-CrossTenant-Id fields of a header block (unfolded, trimmed, lower case). */
export function findTenantIds(headerBlock: string): string[] {
  const out: string[] = [];
  for (const m of headerBlock.replace(/\r?\n[ \t]+/g, ' ').matchAll(/^x-ms-exchange-crosstenant-id[ \t]*:[ \t]*(.*)$/gim)) out.push(m[1]!.trim().toLowerCase());
  return out;
}

/**
 * RFC 6531 3.4: a message whose header fields hold UTF-8 needs SMTPUTF8 at every hop. The
 * transaction asked for it and the downstream does not offer it, so it cannot go on as it is.
 */
export class Utf8HeadersError extends Error {
  constructor() {
    super('message has UTF-8 header fields and the downstream does not offer SMTPUTF8');
    this.name = 'Utf8HeadersError';
  }
}

export class HopLimitError extends Error {
  constructor(readonly hops: number, readonly max: number) {
    super(`message has passed through Signet ${hops} times (limit ${max})`);
    this.name = 'HopLimitError';
  }
}

/** Counts top-level X-Signet-Processed header fields in a header block. */
export function countStamps(headerBlock: string): number {
  let count = 0;
  for (const line of headerBlock.split(/\r?\n/)) {
    if (/^x-signet-processed[ \t]*:/i.test(line)) count++;
  }
  return count;
}

/** The Message-ID header value of a header block (unfolded, trimmed). */
export function findMessageId(headerBlock: string): string | undefined {
  const m = /^message-id[ \t]*:[ \t]*(.*)$/im.exec(headerBlock.replace(/\r?\n[ \t]+/g, ' '));
  return m?.[1]?.trim() || undefined;
}

export class HopGate extends Transform {
  private held: Buffer[] = [];
  private heldBytes = 0;
  private open = false;
  /** Stamps seen in the header block (after it passed). */
  stamps = 0;
  /** Message-ID of the message, when it has one (for the keyed hash in logs; never logged as is). */
  messageId?: string;

  /** Bytes that came in. */
  bytes = 0;

  constructor(
    private readonly maxHops: number,
    /** Called for every chunk that comes in (byte counting, size checks) without reading the stream twice. */
    private readonly onChunk?: (chunk: Buffer) => void,
    /** Header blocks larger than this are passed on after checking what was seen. */
    private readonly maxHeaderBytes = 1024 * 1024,
    /** When set, the message must carry this tenant id in every X-MS-Exchange-CrossTenant-Id field, and at least one. */
    private readonly expectTenantId?: string,
    /** When set, a top header block with any non-ASCII byte fails the stream (Utf8HeadersError). */
    private readonly asciiHeadersOnly = false,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.onChunk?.(chunk);
    if (this.destroyed) return callback();
    if (this.open) return callback(null, chunk);
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    const buffered = this.held.length === 1 ? chunk : Buffer.concat(this.held);
    this.held = [buffered];
    // end of headers: the first empty line, found as the engine finds it (a lax client's bare LF included)
    const end = topHeaderEnd(buffered);
    if (end < 0 && this.heldBytes < this.maxHeaderBytes) return callback();
    const headerEnd = end < 0 ? buffered.length : end;
    this.release(buffered, headerEnd, callback);
  }

  override _flush(callback: TransformCallback): void {
    if (this.open) return callback();
    // a message that is all headers
    const buffered = Buffer.concat(this.held);
    this.release(buffered, buffered.length, callback);
  }

  private release(buffered: Buffer, headerEnd: number, callback: TransformCallback): void {
    const headerBlock = buffered.subarray(0, headerEnd).toString('latin1');
    this.stamps = countStamps(headerBlock);
    this.messageId = findMessageId(headerBlock);
    this.held = [];
    if (this.stamps > this.maxHops) return callback(new HopLimitError(this.stamps, this.maxHops));
    if (this.expectTenantId) {
      const tenants = findTenantIds(headerBlock);
      const expected = this.expectTenantId.toLowerCase();
      if (tenants.length === 0 || tenants.some((t) => t !== expected)) return callback(new TenantMismatchError(tenants, expected));
    }
    if (this.asciiHeadersOnly && !isAscii(buffered.subarray(0, headerEnd))) return callback(new Utf8HeadersError());
    this.open = true;
    callback(null, buffered);
  }
}
