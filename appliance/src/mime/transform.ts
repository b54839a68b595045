// Streaming MIME surgery: split with mailsplit, hold the output until the
// caller has decided (the stamp header goes at the very top), rewrite only the
// main body parts and stream every other byte through as it came.
import { PassThrough, Transform } from 'node:stream';
import type { Readable, TransformCallback } from 'node:stream';
import { Splitter } from '@zone-eu/mailsplit';
import type { MimeNode } from '@zone-eu/mailsplit';
import libmime from 'libmime';
import { decode as decodeCharset } from 'libmime/lib/charset';
import {
  base64LineLength,
  canCarry,
  charsetFor,
  decodedSizeCounter,
  decodeTransfer,
  encodeBase64,
  encodeQuotedPrintable,
  hasEightBit,
  htmlForCharset,
  longestLine,
  MAX_ENCODED_RATIO,
  roundTrips,
  transferEncodingOf,
  utf8Charset,
} from './codec';
import type { Charset, DecodedSize, TransferEncoding } from './codec';
import {
  buildHeaderBlock,
  conflictingFields,
  contentTypeWithCharset,
  detectEol,
  ensureMimeVersion,
  formatField,
  headerView,
  parseHeaderBlock,
  PART_READING_FIELDS,
  prependFields,
  removeFields,
  setField,
} from './header-block';
import type { HeaderBlock } from './header-block';
import { findDelimiter, freshBoundary, imagePartsAfterBody, imagePartsBeforeDelimiter } from './images';
import { htmlFromText, insertIntoHtml, insertIntoText, textEol } from './insert';
import { findTextQuote, scanHtml, type HtmlScan, type Separators, type TextQuote } from './placement';
import { decodeQp, spliceQp } from './qp';
import type { QpDecoded } from './qp';
import type {
  Decide,
  Edit,
  InlineImage,
  MessageFacts,
  PartReport,
  Placement,
  StructureFacts,
  TransformHandle,
  TransformOptions,
  TransformReport,
} from './types';

/** RFC 5322 2.1.1: no line may exceed 998 octets. */
const MAX_LINE = 998;
/** Header fields that describe a body part (RFC 2045, 2183, 2557), not the message: they move with the body when it is wrapped. */
const BODY_PART_FIELDS = new Set(['content-type', 'content-transfer-encoding', 'content-id', 'content-description', 'content-disposition', 'content-location', 'content-base', 'content-md5']);
/** How much of a text/calendar body is read to find its METHOD. */
const CALENDAR_SCAN_BYTES = 64 * 1024;

type MainKind = 'html' | 'text';

interface NodeInfo {
  node: MimeNode;
  parent?: NodeInfo;
  root: boolean;
  /** Inside an attached message/rfc822: never edited, not part of the message's own structure. */
  embedded: boolean;
  contentType: string;
  headerRaw: Buffer;
}

interface Decoded {
  text: string;
  charset: Charset;
  cte: TransferEncoding;
  /** The part's bytes after transfer decoding. */
  bytes: Buffer;
  /** Line map of a quoted-printable body, to re-encode only the edited lines. */
  qp?: QpDecoded;
}

interface Capture {
  info: NodeInfo;
  kind: MainKind;
  chunks: Buffer[];
  rawSize: number;
  /** The size the body decodes to so far, counted once the raw size passes the cap. */
  decodedSize?: DecodedSize;
  overCap: boolean;
  done: boolean;
  /** Its last line ending belongs to the delimiter that follows (an empty body), not to the text. */
  eolIsDelimiters?: boolean;
  /** Set once done: null when the part cannot be decoded losslessly (it then passes unchanged). */
  decoded?: Decoded | null;
  /** Its header fields (or an enclosing multipart's Content-Type) can be read two ways: it passes unchanged. */
  ambiguous?: boolean;
  /** Text for `decide`, possibly lossy when the part is not editable. */
  factsText?: string;
  /** The placement scan of the decoded text, made once (for the decision and for the insertion). */
  htmlScan?: { text: string; scan: HtmlScan };
  textQuote?: { text: string; quote: TextQuote | undefined };
}

type Held = { kind: 'root'; info: NodeInfo } | { kind: 'bytes'; buf: Buffer; data: boolean } | { kind: 'capture'; cap: Capture };

interface PendingImages {
  boundary: string;
  /** Boundaries of the multiparts around the related part: one of their delimiters also ends it. */
  enclosing: string[];
  eol: string;
  parts: Buffer;
}

/**
 * Passes the input to the splitter and keeps each byte until the splitter's
 * output has accounted for it. The splitter's chunks must be the input bytes
 * in order; if a malformed message makes it emit anything else, the surgery
 * falls back to copying the input unchanged from that point (never lose bytes).
 */
class InputTap extends Transform {
  bytes = 0;
  private queue: Buffer[] = [];

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    this.queue.push(chunk);
    cb(null, chunk);
  }

  /** Consumes `bytes` if they are exactly the next unconfirmed input bytes. */
  confirm(bytes: Buffer): boolean {
    let off = 0;
    let q = 0;
    let headOff = 0;
    while (off < bytes.length) {
      const head = this.queue[q];
      if (!head) return false;
      const n = Math.min(head.length - headOff, bytes.length - off);
      if (head.compare(bytes, off, off + n, headOff, headOff + n) !== 0) return false;
      off += n;
      headOff += n;
      if (headOff === head.length) {
        q++;
        headOff = 0;
      }
    }
    this.queue.splice(0, q);
    if (headOff) this.queue[0] = this.queue[0].subarray(headOff);
    return true;
  }

  /** Input bytes given to the splitter but not (correctly) accounted for by it. */
  takeUnconfirmed(): Buffer[] {
    const q = this.queue;
    this.queue = [];
    return q;
  }
}

function protocolOf(node: MimeNode): string {
  const headers = node.headers;
  if (!headers) return '';
  return (libmime.parseHeaderValue(headers.getFirst('content-type')).params.protocol || '').toLowerCase();
}

class Surgery {
  readonly output = new PassThrough({ highWaterMark: 64 * 1024 });
  private readonly tap = new InputTap();
  private readonly splitter = new Splitter();
  private decided = false;
  /** Set when the splitter lost track of the input: no body edits, raw copy from then on. */
  private safe = false;
  private fallbackBytes = 0;
  /** Input bytes copied as they came, without going through the splitter. */
  private unsplitBytes = 0;
  private edit: Edit = { addHeaders: [], removeHeaders: [] };
  private held: Held[] = [];
  private heldBytes = 0;
  private current?: Capture;
  private readonly main: { html?: Capture; text?: Capture } = {};
  /** The node the splitter announced last. */
  private lastNode?: NodeInfo;
  private readonly infos = new WeakMap<MimeNode, NodeInfo>();
  private readonly structure: StructureFacts = { contentType: '', report: false, tnefOnly: false, noBody: false, editable: { html: false, text: false }, plainTextOnly: false, tooLarge: false, ambiguous: false };
  private hasTnef = false;
  private calendarScan?: { info: NodeInfo; chunks: Buffer[]; size: number };
  private pendingImages?: PendingImages;
  private readonly parts: PartReport[] = [];
  private bytesOut = 0;
  private lastByte = 0x0a;

  constructor(
    private readonly input: Readable,
    private readonly decide: Decide,
    private readonly options: TransformOptions,
  ) {}

  private get maxPart(): number {
    return this.options.maxEditablePartBytes;
  }

  private get maxHeld(): number {
    return this.options.maxHeldBytes ?? this.options.maxEditablePartBytes;
  }

  async run(): Promise<TransformReport> {
    let inputError: Error | undefined;
    this.input.on('error', (err) => {
      inputError = err;
      this.splitter.destroy(err);
    });
    this.input.pipe(this.tap).pipe(this.splitter);
    try {
      let consistent = true;
      const chunks = (this.splitter as AsyncIterable<MimeNode | { type: 'data' | 'body'; node: MimeNode; value: Buffer }>)[Symbol.asyncIterator]();
      for (;;) {
        let next;
        try {
          next = await chunks.next();
        } catch (err) {
          // the splitter gave up (a header block over 1 MiB, too many parts): copy the rest as it is
          if (inputError) throw err;
          consistent = false;
          break;
        }
        if (next.done) break;
        const chunk = next.value;
        if (!this.tap.confirm(chunk.type === 'node' ? chunk.getHeaders() : chunk.value)) {
          consistent = false;
          break;
        }
        if (chunk.type === 'node') await this.onNode(chunk);
        else if (chunk.type === 'body') await this.onBody(chunk.node, chunk.value);
        else await this.onData(chunk.value);
        if (this.nothingLeftToEdit()) {
          // every edit is written: the rest (attachments, mostly) is copied as
          // it comes instead of being split and joined again
          consistent = false;
          break;
        }
      }
      const leftover = this.tap.takeUnconfirmed();
      if (!consistent || leftover.length) await this.copyRestUnchanged(leftover);
      else {
        await this.finishCurrent();
        await this.finishCalendar();
        if (!this.decided) await this.decideNow();
        if (this.pendingImages) {
          const p = this.pendingImages;
          this.pendingImages = undefined;
          // the related part was never closed: close it after the images
          const lead = this.lastByte === 0x0a ? '' : p.eol;
          await this.write(Buffer.concat([Buffer.from(lead, 'latin1'), p.parts, Buffer.from(`--${p.boundary}--${p.eol}`, 'latin1')]));
        }
      }
      this.output.end();
    } catch (err) {
      this.input.unpipe(this.tap);
      this.tap.destroy();
      this.splitter.destroy();
      this.output.destroy(err as Error);
      throw err;
    }
    const ambiguousParts = [this.main.text, this.main.html].filter((cap) => cap?.ambiguous).map((cap) => contentTypeOfKind(cap!.kind));
    return { bytesIn: this.tap.bytes + this.fallbackBytes, bytesOut: this.bytesOut, unsplitBytes: this.unsplitBytes, parts: this.parts, ambiguousParts, edit: this.edit };
  }

  /**
   * The splitter's chunks stopped matching the input (a message malformed in a
   * way it mis-splits): everything from the last byte it got right is copied
   * unchanged. The top header edit still applies when it was already read.
   */
  private async copyRestUnchanged(leftover: Buffer[]): Promise<void> {
    this.safe = true;
    this.input.unpipe(this.tap);
    this.tap.unpipe(this.splitter);
    this.splitter.destroy();
    // let the tap take in what was already written to it, so its queue holds every byte
    const unconfirmed = [...leftover];
    if (!this.tap.writableFinished) {
      // unpipe paused it; flow and drop its output (the queue keeps the bytes)
      this.tap.on('data', () => undefined);
      this.tap.resume();
      const finished = new Promise<void>((resolve) => this.tap.once('finish', () => resolve()));
      this.tap.end();
      await finished;
      unconfirmed.push(...this.tap.takeUnconfirmed());
    }
    if (!this.decided) await this.decideNow();
    else if (this.current) {
      const cap = this.current;
      this.current = undefined;
      await this.write(cap.info.root ? this.topHeader(parseHeaderBlock(cap.info.headerRaw, true)) : cap.info.headerRaw);
      for (const c of cap.chunks) await this.write(c);
    }
    this.current = undefined;
    this.pendingImages = undefined;
    if (this.bytesOut === 0 && this.edit.addHeaders.length) {
      // the top header was never read: the stamp still goes first (fields cannot be removed here)
      const head = Buffer.concat(unconfirmed.slice(0, 4)).subarray(0, 4096);
      const eol = detectEol(head);
      const lf = head.indexOf(0x0a);
      const mbox = head.subarray(0, 5).toString('latin1') === 'From ' && lf >= 0 ? lf + 1 : 0;
      const rest = Buffer.concat(unconfirmed);
      await this.write(rest.subarray(0, mbox));
      for (const [name, value] of this.edit.addHeaders) await this.write(formatField(name, value, eol));
      unconfirmed.splice(0, unconfirmed.length, rest.subarray(mbox));
    }
    for (const b of unconfirmed) {
      this.unsplitBytes += b.length;
      await this.write(b);
    }
    if (this.input.readableEnded) return;
    await this.pipeRest();
  }

  /** The rest of the input straight to the output, with the output's backpressure (no per-chunk promise). */
  private pipeRest(): Promise<void> {
    const input = this.input;
    const output = this.output;
    return new Promise<void>((resolve, reject) => {
      if (input.destroyed) {
        reject(input.errored ?? new Error('input closed before its end'));
        return;
      }
      const count = (chunk: Buffer | string): void => {
        const n = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
        this.fallbackBytes += n;
        this.unsplitBytes += n;
        this.bytesOut += n;
      };
      const done = (err?: Error): void => {
        input.off('data', count);
        input.off('end', onEnd);
        input.off('error', done);
        input.off('close', onInputClose);
        output.off('close', onClose);
        input.unpipe(output);
        if (err) reject(err);
        else resolve();
      };
      const onEnd = (): void => done();
      const onClose = (): void => done(new Error('output stream closed before the message was written'));
      // destroyed without an error (a dropped connection): never an end
      const onInputClose = (): void => done(input.readableEnded ? undefined : (input.errored ?? new Error('input closed before its end')));
      input.on('data', count);
      input.once('end', onEnd);
      input.once('error', done);
      input.once('close', onInputClose);
      output.once('close', onClose);
      input.pipe(output, { end: false });
    });
  }

  // ---- output ----

  private async write(buf: Buffer): Promise<void> {
    if (!buf.length) return;
    this.bytesOut += buf.length;
    this.lastByte = buf[buf.length - 1];
    if (this.output.write(buf)) return;
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        this.output.off('drain', onDrain);
        this.output.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = (): void => done();
      const onClose = (): void => done(new Error('output stream closed before the message was written'));
      this.output.on('drain', onDrain);
      this.output.on('close', onClose);
    });
  }

  private async writeData(buf: Buffer): Promise<void> {
    const p = this.pendingImages;
    if (p) {
      const atLineStart = this.lastByte === 0x0a || this.lastByte === 0x0d;
      const own = findDelimiter(buf, p.boundary, atLineStart);
      let outer = -1;
      for (const boundary of p.enclosing) {
        const idx = findDelimiter(buf, boundary, atLineStart);
        if (idx >= 0 && (outer < 0 || idx < outer)) outer = idx;
      }
      const ownFirst = own >= 0 && (outer < 0 || own <= outer);
      const at = ownFirst ? own : outer;
      if (at >= 0) {
        this.pendingImages = undefined;
        await this.write(buf.subarray(0, at));
        // the related part never closed, and an enclosing multipart's delimiter ends it here: its closing
        // delimiter goes in front with the images, never after that delimiter (into a sibling part)
        await this.write(ownFirst ? p.parts : Buffer.concat([p.parts, Buffer.from(`--${p.boundary}--${p.eol}`, 'latin1')]));
        await this.write(buf.subarray(at));
        return;
      }
    }
    await this.write(buf);
  }

  // ---- splitter events ----

  private infoFor(node: MimeNode): NodeInfo {
    const parent = node.parentNode ? this.infos.get(node.parentNode) : undefined;
    const info: NodeInfo = {
      node,
      parent,
      root: !node.parentNode,
      embedded: !!parent && (parent.embedded || parent.contentType === 'message/rfc822' || !!parent.node.messageNode),
      contentType: (node.contentType || 'text/plain').toLowerCase(),
      headerRaw: node.getHeaders(),
    };
    this.infos.set(node, info);
    return info;
  }

  private mainKindOf(info: NodeInfo): MainKind | undefined {
    const node = info.node;
    if (info.embedded || node.multipart || node.messageNode) return undefined;
    if (info.contentType !== 'text/html' && info.contentType !== 'text/plain') return undefined;
    if (node.disposition === 'attachment' || node.filename) return undefined;
    for (let p = info.parent; p; p = p.parent) {
      if (!p.node.multipart || p.node.multipart === 'digest' || p.node.multipart === 'encrypted') return undefined;
    }
    const kind: MainKind = info.contentType === 'text/html' ? 'html' : 'text';
    if (this.main[kind]) return undefined;
    // The second kind is another rendering of the same body only when the two are
    // alternatives; in mixed(text, html) a reader shows both, one after the other, and
    // the body is the first of them (signing both would show two signatures).
    const other = this.main[kind === 'html' ? 'text' : 'html'];
    if (other && lowestCommonAncestor(other.info, info)?.node.multipart !== 'alternative') return undefined;
    return kind;
  }

  private noteStructure(info: NodeInfo): void {
    const s = this.structure;
    if (info.root) s.contentType = info.contentType;
    if (info.embedded) return;
    const ct = info.contentType;
    const node = info.node;
    if (!s.signedOrEncrypted) {
      if (ct === 'multipart/signed') s.signedOrEncrypted = protocolOf(node).includes('pgp') ? 'pgp' : 'smime';
      else if (ct === 'multipart/encrypted') s.signedOrEncrypted = protocolOf(node).includes('pkcs7') ? 'smime' : 'pgp';
      else if ((ct === 'application/pkcs7-mime' || ct === 'application/x-pkcs7-mime') && (info.root || node.disposition !== 'attachment')) {
        s.signedOrEncrypted = 'smime';
      }
    }
    if (ct === 'multipart/report' || ct === 'message/disposition-notification' || ct === 'message/delivery-status') s.report = true;
    if (ct === 'application/ms-tnef' || ct === 'application/vnd.ms-tnef' || /^winmail\.dat$/i.test(String(node.filename || ''))) {
      this.hasTnef = true;
    }
    if (isCalendarBody(info)) {
      const method = calendarMethodParam(node);
      if (!s.calendar) s.calendar = {};
      if (method && !s.calendar.method) s.calendar.method = method.toUpperCase();
      if (!s.calendar.method && !this.decided) this.calendarScan = { info, chunks: [], size: 0 };
    }
  }

  private async onNode(node: MimeNode): Promise<void> {
    await this.finishCurrent();
    await this.finishCalendar();
    const info = this.infoFor(node);
    this.lastNode = info;
    if (!this.decided) this.noteStructure(info);
    const kind = this.mainKindOf(info);

    if (!this.decided) {
      const leaf = !node.multipart;
      const certainNoBody = info.root && leaf && !kind;
      const bodySeen = !!(this.main.html || this.main.text);
      const bothSeen = !!(this.main.html && this.main.text);
      const nonBodyLeaf = leaf && !kind && !isCalendarBody(info);
      if (bothSeen || (bodySeen && nonBodyLeaf)) {
        await this.decideNow();
      } else {
        if (kind) {
          const cap = this.newCapture(info, kind);
          this.held.push({ kind: 'capture', cap });
          return;
        }
        this.held.push(info.root ? { kind: 'root', info } : { kind: 'bytes', buf: info.headerRaw, data: false });
        this.heldBytes += info.headerRaw.length;
        if (certainNoBody) await this.decideNow();
        return;
      }
    }

    // decided: stream
    if (kind && this.wantsEdit(kind)) {
      this.newCapture(info, kind);
      return;
    }
    if (kind) this.main[kind] = this.main[kind] ?? this.newCaptureStub(info, kind);
    await this.write(info.root ? this.topHeader(parseHeaderBlock(info.headerRaw, true)) : info.headerRaw);
  }

  private newCapture(info: NodeInfo, kind: MainKind): Capture {
    const cap: Capture = { info, kind, chunks: [], rawSize: 0, overCap: false, done: false };
    this.main[kind] = cap;
    this.current = cap;
    return cap;
  }

  /** Marks a main part as seen without buffering it (it streams through unedited). */
  private newCaptureStub(info: NodeInfo, kind: MainKind): Capture {
    return { info, kind, chunks: [], rawSize: 0, overCap: false, done: true, decoded: null };
  }

  /**
   * Decided, and every part the edit can touch has been written: no edit, or
   * both main parts (or the HTML one of an html-only edit) are done, or one is
   * done and the other can no longer come.
   */
  private nothingLeftToEdit(): boolean {
    if (!this.decided || this.current || this.pendingImages || this.calendarScan) return false;
    const body = this.edit.body;
    if (!body || this.safe) return true;
    if (this.main.html && (this.main.text || body.htmlOnly)) return true;
    const seen = this.main.html ?? this.main.text;
    return !!seen && !this.alternativeMayFollow(seen.info);
  }

  /**
   * Whether a part of the other kind may still come as the alternative of the
   * main part `seen` (mainKindOf takes it only then): some multipart/alternative
   * around `seen` has not ended yet. Nodes arrive in document order, so once the
   * splitter has announced a node outside all of them, none is left to come.
   */
  private alternativeMayFollow(seen: NodeInfo): boolean {
    const last = this.lastNode;
    for (let p = seen.parent; p; p = p.parent) {
      if (p.node.multipart !== 'alternative') continue;
      if (last === seen) return true;
      for (let q = last?.parent; q; q = q.parent) if (q === p) return true;
    }
    return false;
  }

  private wantsEdit(kind: MainKind): boolean {
    const body = this.edit.body;
    return !this.safe && !!body && !(kind === 'text' && body.htmlOnly);
  }

  private async onBody(node: MimeNode, value: Buffer): Promise<void> {
    const cap = this.current;
    if (cap && cap.info.node === node) {
      cap.chunks.push(value);
      cap.rawSize += value.length;
      // The cap is on the decoded size (a quoted-printable part may take three times as
      // many bytes on the wire). Decoding never makes a body larger, so it is counted only
      // once the raw size passes the cap; the raw bound keeps what is held in proportion.
      if (cap.rawSize > this.maxPart) {
        if (cap.decodedSize) cap.decodedSize.add(value);
        else {
          cap.decodedSize = decodedSizeCounter(transferEncodingOf(cap.info.node.encoding));
          for (const c of cap.chunks) cap.decodedSize.add(c);
        }
        if (cap.decodedSize.size > this.maxPart || cap.rawSize > this.maxPart * MAX_ENCODED_RATIO) await this.overCap(cap);
      }
      return;
    }
    if (this.calendarScan && this.calendarScan.info.node === node && this.calendarScan.size < CALENDAR_SCAN_BYTES) {
      this.calendarScan.chunks.push(value);
      this.calendarScan.size += value.length;
    }
    if (!this.decided) {
      this.held.push({ kind: 'bytes', buf: value, data: false });
      this.heldBytes += value.length;
      if (this.heldBytes > this.maxHeld) {
        this.structure.tooLarge = true;
        await this.decideNow();
      }
      return;
    }
    await this.write(value);
  }

  private async onData(value: Buffer): Promise<void> {
    value = value.subarray(await this.finishCurrent(value));
    await this.finishCalendar();
    if (!this.decided) {
      this.held.push({ kind: 'bytes', buf: value, data: true });
      this.heldBytes += value.length;
      if (this.heldBytes > this.maxHeld) {
        this.structure.tooLarge = true;
        await this.decideNow();
      }
      return;
    }
    await this.writeData(value);
  }

  /** A main part grew past the cap: it passes through unchanged, the rest of it streams. */
  private async overCap(cap: Capture): Promise<void> {
    cap.overCap = true;
    cap.done = true;
    cap.decoded = null;
    this.current = undefined;
    this.structure.tooLarge = true;
    if (!this.decided) {
      await this.decideNow();
      return;
    }
    await this.write(cap.info.root ? this.topHeader(parseHeaderBlock(cap.info.headerRaw, true)) : cap.info.headerRaw);
    for (const c of cap.chunks) await this.write(c);
    cap.chunks = [];
  }

  /**
   * Ends the part being captured. `next`, the data the splitter gave after it (the delimiter
   * line): mailsplit keeps the line ending in front of a delimiter at the end of an empty body,
   * or gives it with the delimiter, as the input's chunks happen to fall; an empty body takes it,
   * so the edit is the same however the message arrives. Returns how many bytes of `next` it took.
   */
  private async finishCurrent(next?: Buffer): Promise<number> {
    const cap = this.current;
    if (!cap) return 0;
    this.current = undefined;
    cap.done = true;
    const taken = cap.rawSize === 0 && next ? leadingLineEnd(next) : 0;
    if (taken) {
      cap.chunks.push(next!.subarray(0, taken));
      cap.rawSize += taken;
    }
    // RFC 2046 5.1.1: the line ending in front of a delimiter is the delimiter's; the body ends
    // with it when the data after the body starts with the delimiter itself
    cap.eolIsDelimiters = next !== undefined && (next.length === taken || (next[taken] !== 0x0a && next[taken] !== 0x0d));
    this.decodeCapture(cap);
    if (this.decided) await this.writeCapture(cap);
    return taken;
  }

  private async finishCalendar(): Promise<void> {
    const scan = this.calendarScan;
    if (!scan) return;
    this.calendarScan = undefined;
    const cte = transferEncodingOf(scan.info.node.encoding);
    if (!cte || !this.structure.calendar) return;
    const text = decodeTransfer(cte, Buffer.concat(scan.chunks)).toString('utf8');
    const m = /^METHOD:[ \t]*([A-Za-z-]+)/m.exec(text);
    if (m) this.structure.calendar.method = m[1].toUpperCase();
  }

  private decodeCapture(cap: Capture): void {
    if (cap.decoded !== undefined) return;
    cap.decoded = null;
    if (readAmbiguously(cap.info)) {
      // neither decoded for the decision nor edited: whichever reading is wrong, the part stays as it came
      cap.ambiguous = true;
      this.structure.ambiguous = true;
      return;
    }
    const node = cap.info.node;
    const cte = transferEncodingOf(node.encoding);
    if (!cte) return;
    try {
      const raw = cap.chunks.length === 1 ? cap.chunks[0] : Buffer.concat(cap.chunks);
      cap.chunks = [raw];
      // A line the splitter kept as content that other readers take for a delimiter of an enclosing
      // multipart (mailsplit reads `--<boundary>` after a lone CR as one only when no input chunk
      // ends just before it): where this part ends is in doubt, so it is not edited, and the
      // message keeps its structure whichever way its reader splits it.
      if (startsEnclosingDelimiter(raw, cap.info)) return;
      const qp = cte === 'quoted-printable' ? decodeQp(raw) : undefined;
      const bytes = qp ? qp.bytes : decodeTransfer(cte, raw);
      if (bytes.length > this.maxPart) {
        cap.overCap = true;
        this.structure.tooLarge = true;
        return;
      }
      const cs = charsetFor(node.charset, bytes);
      if (!cs) {
        cap.factsText = decodeCharset(bytes, String(node.charset || 'utf-8'));
        return;
      }
      const text = cs.decode(bytes);
      cap.factsText = text;
      // without the empty line that ends its header block, anything added would be read as
      // header: renderEdited leaves such a part alone, so the decision must not count on it
      if (!parseHeaderBlock(cap.info.headerRaw, cap.info.root).terminator.length) return;
      if (roundTrips(cs, bytes, text)) cap.decoded = { text, charset: cs, cte, bytes, qp };
    } catch {
      cap.decoded = null;
    }
  }

  // ---- decision ----

  private facts(): MessageFacts {
    const s = this.structure;
    const html = this.main.html && !this.main.html.overCap ? this.main.html.factsText : undefined;
    const text = this.main.text && !this.main.text.overCap ? this.main.text.factsText : undefined;
    if (!s.signedOrEncrypted) {
      const armour = /-----BEGIN PGP (?:SIGNED )?MESSAGE-----/;
      if ((text && armour.test(text)) || (html && armour.test(html))) s.signedOrEncrypted = 'pgp';
    }
    // editable = decoded without loss and within the cap; a part that cannot be edited counts as none
    const editable = (cap?: Capture): boolean => !!cap && !cap.overCap && !!cap.decoded;
    s.editable = { html: editable(this.main.html), text: editable(this.main.text) };
    s.noBody = !s.editable.html && !s.editable.text;
    // mainKindOf takes a text/html part after the text one only in a common multipart/alternative
    s.plainTextOnly = !!this.main.text && !this.main.html && onlyInsideMixed(this.main.text.info);
    s.tnefOnly = this.hasTnef && html === undefined && (text === undefined || text.trim() === '');
    const rootItem = this.held.find((h) => h.kind === 'root' || (h.kind === 'capture' && h.cap.info.root));
    const rootRaw = rootItem ? (rootItem.kind === 'root' ? rootItem.info.headerRaw : rootItem.kind === 'capture' ? rootItem.cap.info.headerRaw : Buffer.alloc(0)) : Buffer.alloc(0);
    const quoteStart = (part: 'html' | 'text'): number | undefined => {
      if (part === 'html') return html !== undefined && this.main.html ? htmlScanOf(this.main.html, html, this.options.separators).quoteStart : undefined;
      return text !== undefined && this.main.text ? textQuoteOf(this.main.text, text, this.options.separators).quote?.quoteStart : undefined;
    };
    return { headers: headerView(parseHeaderBlock(rootRaw, true)), structure: { ...s }, html, text, quoteStart };
  }

  private async decideNow(): Promise<void> {
    if (this.decided) return;
    const facts = this.facts();
    const edit = await this.decide(facts);
    this.edit = { addHeaders: edit?.addHeaders ?? [], removeHeaders: edit?.removeHeaders ?? [], body: edit?.body };
    this.decided = true;
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    for (const item of held) {
      if (item.kind === 'root') await this.write(this.topHeader(parseHeaderBlock(item.info.headerRaw, true)));
      else if (item.kind === 'bytes') await (item.data ? this.writeData(item.buf) : this.write(item.buf));
      else if (item.cap.done && !item.cap.overCap) await this.writeCapture(item.cap);
      else {
        // too large (or still arriving when the cap was hit): what we have goes out unchanged
        const cap = item.cap;
        await this.write(cap.info.root ? this.topHeader(parseHeaderBlock(cap.info.headerRaw, true)) : cap.info.headerRaw);
        for (const c of cap.chunks) await this.write(c);
        cap.chunks = [];
        // the rest of a part still arriving streams through as plain body chunks
        if (this.current === cap) this.current = undefined;
      }
    }
  }

  // ---- rendering ----

  private topHeader(block: HeaderBlock): Buffer {
    if (this.edit.removeHeaders.length) removeFields(block, this.edit.removeHeaders);
    if (this.edit.addHeaders.length) prependFields(block, this.edit.addHeaders);
    return buildHeaderBlock(block);
  }

  private async writeCapture(cap: Capture): Promise<void> {
    const info = cap.info;
    const raw = cap.chunks.length === 1 ? cap.chunks[0] : Buffer.concat(cap.chunks);
    cap.chunks = [];
    const block = parseHeaderBlock(info.headerRaw, info.root);
    const rendered = this.wantsEdit(cap.kind) && cap.decoded ? this.renderEdited(cap, cap.decoded, block, raw) : undefined;
    if (!rendered) {
      await this.write(info.root ? this.topHeader(block) : info.headerRaw);
      await this.write(raw);
      return;
    }
    for (const buf of rendered) await this.write(buf);
  }

  private renderEdited(cap: Capture, decoded: Decoded, block: HeaderBlock, raw: Buffer): Buffer[] | undefined {
    const body = this.edit.body!;
    // no empty line after the header: anything we add would be read as header
    if (!block.terminator.length) return undefined;
    const transportEol = detectEol(raw, block.eol);
    const eol = textEol(decoded.text, transportEol);
    let cs = decoded.charset;
    // an ASCII label on UTF-8 bytes: the part gets the label it should have had
    let relabel = cs.label === '';
    if (relabel) cs = utf8Charset();

    let inserted;
    const flowed = { flowed: !!cap.info.node.flowed, delSp: !!cap.info.node.delSp };
    try {
      if (cap.kind === 'html') {
        inserted = insertIntoHtml(decoded.text, body, eol, (s) => htmlForCharset(cs, s), htmlScanOf(cap, decoded.text, this.options.separators));
      } else {
        if (!canCarry(cs, body.text + body.topText)) {
          cs = utf8Charset();
          relabel = true;
        }
        inserted = insertIntoText(decoded.text, body, eol, flowed, textQuoteOf(cap, decoded.text, this.options.separators));
      }
    } catch {
      return undefined;
    }
    let bytes: Buffer;
    try {
      bytes = cs.encode(inserted.text);
    } catch {
      cs = utf8Charset();
      relabel = true;
      bytes = cs.encode(inserted.text);
    }

    let cte: TransferEncoding = decoded.cte;
    if (relabel && cte !== 'base64') cte = 'quoted-printable';
    else if ((cte === '7bit' && hasEightBit(bytes)) || ((cte === '7bit' || cte === '8bit' || cte === 'binary') && longestLine(bytes) > MAX_LINE)) {
      cte = 'quoted-printable';
    }
    let encoded: Buffer;
    if (cte === 'quoted-printable' && decoded.qp && !relabel && cs.lineSafe) {
      // only the lines the edit touched are re-encoded; the others keep their bytes
      const windows = inserted.changes.map((c) => ({
        from: lineStartByte(decoded.text, decoded.bytes, c.at),
        to: lineEndByte(decoded.text, decoded.bytes, c.at + c.removeLength),
        // a line-safe charset is stateless: the pieces' byte lengths add up
        delta: byteLength(cs, c.insert) - byteLength(cs, decoded.text.slice(c.at, c.at + c.removeLength)),
      }));
      const consistent = windows.reduce((sum, w) => sum + w.delta, 0) === bytes.length - decoded.bytes.length;
      encoded = consistent ? spliceQp(raw, decoded.qp, windows, bytes, transportEol) : encodeQuotedPrintable(bytes, transportEol);
    } else if (cte === 'quoted-printable') encoded = encodeQuotedPrintable(bytes, transportEol);
    else if (cte === 'base64') {
      encoded = encodeBase64(bytes, transportEol, base64LineLength(raw));
    } else encoded = bytes;
    // A line that starts like a delimiter of an enclosing multipart would end this part there and
    // let what follows pose as parts of its own (a directory value with a line break and
    // `--<boundary>`, or a long line re-wrapped by the encoder): base64 has no '-'.
    if (cte !== 'base64' && startsEnclosingDelimiter(encoded, cap.info)) {
      cte = 'base64';
      encoded = encodeBase64(bytes, transportEol, 76);
    }
    // The body's last line ended: so does the edited one, or the delimiter that follows would
    // no longer start a line. When that line ending is the delimiter's own (an empty body), a
    // new multipart around the part does not need it: it writes its own delimiter line.
    const lastEol = (!raw.length || raw[raw.length - 1] === 0x0a) && encoded.length && encoded[encoded.length - 1] !== 0x0a ? [Buffer.from(transportEol, 'latin1')] : [];
    const wrapped = lastEol.length && !cap.eolIsDelimiters ? Buffer.concat([encoded, ...lastEol]) : encoded;

    if (relabel) setField(block, 'Content-Type', contentTypeWithCharset(block, 'utf-8'));
    const originalCte = transferEncodingOf(cap.info.node.encoding);
    if (cte !== originalCte) setField(block, 'Content-Transfer-Encoding', cte);
    const convert = cap.kind === 'text' && !!body.textToHtml && this.structure.plainTextOnly;
    const images = cap.kind === 'html' || convert ? body.images : [];
    // the Content-* fields written for a message that had no MIME-Version need it (an image or an HTML alternative wraps the root)
    if (cap.info.root && (relabel || cte !== originalCte || images.length || convert)) ensureMimeVersion(block);

    this.parts.push({
      contentType: contentTypeOfKind(cap.kind),
      placement: inserted.placement,
      reencoded: relabel,
      charset: relabel ? 'utf-8' : cs.label,
      transferEncoding: cte,
    });
    if (convert) {
      const html = htmlFromText(decoded.text, body, inserted.offsets, flowed, block.eol);
      return this.withHtmlAlternative(cap, block, wrapped, raw, html, images, inserted.placement);
    }

    if (!images.length) return [cap.info.root ? this.topHeader(block) : buildHeaderBlock(block), encoded, ...lastEol];

    let related: NodeInfo | undefined;
    for (let p = cap.info.parent; p; p = p.parent) {
      if (p.node.multipart === 'related' && p.node._boundary) {
        related = p;
        break;
      }
    }
    if (related && related.node._boundary) {
      const boundary = related.node._boundary.toString('latin1');
      const relEol = detectEol(related.headerRaw, transportEol);
      const enclosing: string[] = [];
      for (let p = related.parent; p; p = p.parent) if (p.node.multipart && p.node._boundary) enclosing.push(p.node._boundary.toString('latin1'));
      this.pendingImages = { boundary, enclosing, eol: relEol, parts: imagePartsBeforeDelimiter(boundary, images, relEol) };
      return [cap.info.root ? this.topHeader(block) : buildHeaderBlock(block), encoded, ...lastEol];
    }
    return this.wrapInRelated(cap, block, wrapped, raw, images);
  }

  /** Turns the HTML leaf into multipart/related(html, images); the leaf itself keeps its own header fields. */
  private wrapInRelated(cap: Capture, block: HeaderBlock, encoded: Buffer, raw: Buffer, images: InlineImage[]): Buffer[] {
    const eol = block.eol;
    const boundary = freshBoundary();
    return this.wrapLeaf(cap, block, encoded, raw, `multipart/related; boundary="${boundary}"; type="text/html"`, boundary, [imagePartsAfterBody(boundary, images, eol)]);
  }

  /**
   * Turns the text leaf into multipart/alternative(text, html): the text part
   * keeps its own header fields and its edit, the HTML part made from it
   * follows (in multipart/related with the images it shows).
   */
  private withHtmlAlternative(cap: Capture, block: HeaderBlock, encoded: Buffer, raw: Buffer, html: string, images: InlineImage[], placement: Placement): Buffer[] {
    const eol = block.eol;
    const bytes = Buffer.from(html, 'utf8');
    let cte: TransferEncoding = 'quoted-printable';
    let body = encodeQuotedPrintable(bytes, eol);
    // as for an edited part: no line may pass for a delimiter of an enclosing multipart
    if (startsEnclosingDelimiter(body, cap.info)) {
      cte = 'base64';
      body = encodeBase64(bytes, eol, 76);
    }
    const htmlPart = Buffer.concat([
      formatField('Content-Type', 'text/html; charset=utf-8', eol),
      formatField('Content-Transfer-Encoding', cte, eol),
      Buffer.from(eol, 'latin1'),
      body,
    ]);
    this.parts.push({ contentType: 'text/html', placement, reencoded: false, converted: true, charset: 'utf-8', transferEncoding: cte });
    let alternative: Buffer[];
    if (images.length) {
      const related = freshBoundary();
      alternative = [
        formatField('Content-Type', `multipart/related; boundary="${related}"; type="text/html"`, eol),
        Buffer.from(`${eol}--${related}${eol}`, 'latin1'),
        htmlPart,
        imagePartsAfterBody(related, images, eol),
        Buffer.from(`${eol}--${related}--`, 'latin1'),
      ];
    } else alternative = [htmlPart];
    const boundary = freshBoundary();
    return this.wrapLeaf(cap, block, encoded, raw, `multipart/alternative; boundary="${boundary}"`, boundary, [
      Buffer.from(`${eol}--${boundary}${eol}`, 'latin1'),
      ...alternative,
    ]);
  }

  /**
   * Puts the edited leaf first in a new multipart `contentType` (delimited by
   * `boundary`), followed by `after` (its other parts, each opening with its
   * own delimiter line) and the closing delimiter. At the top of the message,
   * the message headers stay on the message and the Content-* fields move
   * with the leaf.
   */
  private wrapLeaf(cap: Capture, block: HeaderBlock, encoded: Buffer, raw: Buffer, contentType: string, boundary: string, after: Buffer[]): Buffer[] {
    const eol = block.eol;
    let outerHeader: Buffer;
    let innerBlock: HeaderBlock;
    if (cap.info.root) {
      // the fields that describe the body move down with it; the message's own (Exchange's
      // Content-Class, Content-Language) stay on the message
      const content = block.fields.filter((f) => BODY_PART_FIELDS.has(f.name));
      const outer: HeaderBlock = { ...block, fields: [] };
      let placed = false;
      for (const f of block.fields) {
        if (!BODY_PART_FIELDS.has(f.name)) outer.fields.push(f);
        else if (!placed) {
          outer.fields.push({ name: 'content-type', raw: formatField('Content-Type', contentType, eol) });
          placed = true;
        }
      }
      // a header block without its blank line (a message of header fields only) ends without a line ending
      const unended = outer.fields.find((f) => f.raw[f.raw.length - 1] !== 0x0a);
      if (unended) unended.raw = Buffer.concat([unended.raw, Buffer.from(eol, 'latin1')]);
      // a text/plain message may have no Content-* field at all (RFC 2045 defaults)
      if (!placed) outer.fields.push({ name: 'content-type', raw: formatField('Content-Type', contentType, eol) });
      innerBlock = { fields: content, terminator: Buffer.from(eol, 'latin1'), eol };
      const last = content[content.length - 1];
      if (last && last.raw[last.raw.length - 1] !== 0x0a) last.raw = Buffer.concat([last.raw, Buffer.from(eol, 'latin1')]);
      if (!outer.terminator.length) outer.terminator = Buffer.from(eol, 'latin1');
      outerHeader = this.topHeader(outer);
    } else {
      innerBlock = block;
      outerHeader = Buffer.concat([formatField('Content-Type', contentType, eol), Buffer.from(eol, 'latin1')]);
    }
    // mailsplit leaves the line ending before the next delimiter in an empty (or
    // blank) body; the new closing delimiter must end its line itself then
    const endsWithEol = raw.length === 0 || raw[raw.length - 1] === 0x0a;
    return [
      outerHeader,
      Buffer.from(`--${boundary}${eol}`, 'latin1'),
      buildHeaderBlock(innerBlock),
      encoded,
      ...after,
      Buffer.from(`${eol}--${boundary}--${endsWithEol ? eol : ''}`, 'latin1'),
    ];
  }
}

/** The length of the line ending `buf` starts with (CRLF, LF or none). */
function leadingLineEnd(buf: Buffer): number {
  if (buf[0] === 0x0a) return 1;
  return buf[0] === 0x0d && buf[1] === 0x0a ? 2 : 0;
}

/** Whether every multipart around `info` is multipart/mixed (none at the top counts too). */
function onlyInsideMixed(info: NodeInfo): boolean {
  for (let p = info.parent; p; p = p.parent) if (p.node.multipart !== 'mixed') return false;
  return true;
}

/** Whether a line of `body` starts with `--` and the boundary of a multipart around `info`. */
function startsEnclosingDelimiter(body: Buffer, info: NodeInfo): boolean {
  for (let p = info.parent; p; p = p.parent) {
    const boundary = p.node._boundary;
    if (!boundary) continue;
    const delimiter = Buffer.concat([Buffer.from('--', 'latin1'), Buffer.isBuffer(boundary) ? boundary : Buffer.from(String(boundary), 'latin1')]);
    for (let at = body.indexOf(delimiter); at >= 0; at = body.indexOf(delimiter, at + 1)) {
      // a bare CR ends a line for some readers too
      if (at === 0 || body[at - 1] === 0x0a || body[at - 1] === 0x0d) return true;
    }
  }
  return false;
}

function calendarMethodParam(node: MimeNode): string | undefined {
  return node.headers ? libmime.parseHeaderValue(node.headers.getFirst('content-type')).params.method : undefined;
}

/**
 * A text/calendar part that makes the message a calendar message. An attached
 * .ics file does not; an iMIP body part (RFC 6047) is no attachment and names
 * its method, even when it also carries a file name.
 */
function isCalendarBody(info: NodeInfo): boolean {
  if (info.contentType !== 'text/calendar') return false;
  const node = info.node;
  return node.disposition !== 'attachment' && (!node.filename || !!calendarMethodParam(node));
}

function contentTypeOfKind(kind: MainKind): 'text/html' | 'text/plain' {
  return kind === 'html' ? 'text/html' : 'text/plain';
}

/**
 * Whether a reader that takes the last of repeated fields may read the part
 * otherwise than mailsplit, which takes the first: its own Content-Type,
 * Content-Transfer-Encoding or Content-Disposition, or the Content-Type (type
 * and boundary) of a multipart around it, given twice with different values.
 */
function readAmbiguously(info: NodeInfo): boolean {
  if (conflictingFields(parseHeaderBlock(info.headerRaw, info.root), PART_READING_FIELDS).length) return true;
  for (let p = info.parent; p; p = p.parent) {
    if (conflictingFields(parseHeaderBlock(p.headerRaw, p.root), ['content-type']).length) return true;
  }
  return false;
}

function htmlScanOf(cap: Capture, text: string, separators: Separators | undefined): HtmlScan {
  if (cap.htmlScan?.text !== text) cap.htmlScan = { text, scan: scanHtml(text, separators) };
  return cap.htmlScan.scan;
}

function textQuoteOf(cap: Capture, text: string, separators: Separators | undefined): { quote: TextQuote | undefined } {
  if (cap.textQuote?.text !== text) cap.textQuote = { text, quote: findTextQuote(text, separators) };
  return cap.textQuote;
}

function lowestCommonAncestor(a: NodeInfo, b: NodeInfo): NodeInfo | undefined {
  const seen = new Set<NodeInfo>();
  for (let p = a.parent; p; p = p.parent) seen.add(p);
  for (let p = b.parent; p; p = p.parent) if (seen.has(p)) return p;
  return undefined;
}

function byteLength(cs: Charset, text: string): number {
  if (!text) return 0;
  return cs.label === 'utf-8' ? Buffer.byteLength(text, 'utf8') : cs.encode(text).length;
}

/** Byte offset of the start of the line that holds character `offset` (line feeds map 1:1 in a line-safe charset). */
function lineStartByte(text: string, bytes: Buffer, offset: number): number {
  let lines = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) lines++;
  let pos = 0;
  for (let k = 0; k < lines; k++) pos = bytes.indexOf(0x0a, pos) + 1;
  return pos;
}

/** Byte offset just past the line that holds character `offset` (its line feed included). */
function lineEndByte(text: string, bytes: Buffer, offset: number): number {
  let lines = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) lines++;
  let pos = 0;
  for (let k = 0; k <= lines; k++) {
    const lf = bytes.indexOf(0x0a, pos);
    if (lf < 0) return bytes.length;
    pos = lf + 1;
  }
  return pos;
}

/**
 * Streams `input` to `output`, calling `decide` once the main body parts have
 * been read and applying the returned edit. Never throws synchronously; the
 * report rejects (and the output errors) only when the input cannot be split
 * or `decide` fails.
 */
export function transformMessage(input: Readable, decide: Decide, options: TransformOptions): TransformHandle {
  const surgery = new Surgery(input, decide, options);
  const report = surgery.run();
  // the caller may only look at the output; an unobserved rejection must not crash the process
  report.catch(() => undefined);
  return { output: surgery.output, report };
}
