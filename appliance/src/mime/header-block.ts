// Byte-exact view of one raw header block. mailsplit's Headers.build()
// rebuilds every line with one line ending as soon as anything changes, which
// would rewrite folding, mixed line endings and 8-bit bytes of fields we never
// touched; so field boundaries are found here on the raw bytes and untouched
// fields are copied as they came.
import libmime from 'libmime';
import type { HeaderView } from './types';

export interface RawField {
  /** Lower-case field name ('' for a line without a colon). */
  name: string;
  /** The field's bytes including its continuation lines and their line endings. */
  raw: Buffer;
}

export interface HeaderBlock {
  /** mbox `From ` envelope line (with its line ending), kept first. */
  mbox?: Buffer;
  fields: RawField[];
  /** The empty line that ends the block (may be empty when the block ran to the end of input). */
  terminator: Buffer;
  /** Line ending of the block's first line, used for lines we add. */
  eol: string;
}

/** Splits a buffer into physical lines, each keeping its own `\n` / `\r\n` (a lone CR is not a line end, as in mailsplit). */
export function splitLines(buf: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  for (;;) {
    const lf = buf.indexOf(0x0a, start);
    if (lf < 0) break;
    lines.push(buf.subarray(start, lf + 1));
    start = lf + 1;
  }
  if (start < buf.length) lines.push(buf.subarray(start));
  return lines;
}

function isBlankLine(line: Buffer): boolean {
  return (line.length === 1 && line[0] === 0x0a) || (line.length === 2 && line[0] === 0x0d && line[1] === 0x0a);
}

/** First line ending found in `buf`, else `fallback`. */
/**
 * Index just past the empty line that ends the top header block of a message's first bytes (a message
 * that starts with one has no header fields), or -1 when none has come yet. The earliest empty line
 * counts, however its line endings are mixed (CRLF CRLF, LF LF, LF CRLF), as the splitter reads it.
 * The relay's loop and origin checks and the pass-through engine read the same block.
 */
export function topHeaderEnd(buf: Buffer): number {
  if (buf[0] === 0x0a) return 1;
  if (buf[0] === 0x0d && buf[1] === 0x0a) return 2;
  let end = -1;
  for (const [emptyLine, length] of [['\r\n\r\n', 4], ['\n\n', 2], ['\n\r\n', 3]] as const) {
    const at = buf.indexOf(emptyLine);
    if (at >= 0 && (end < 0 || at + length < end)) end = at + length;
  }
  return end;
}

export function detectEol(buf: Buffer, fallback = '\r\n'): string {
  const lf = buf.indexOf(0x0a);
  if (lf < 0) return fallback;
  return lf > 0 && buf[lf - 1] === 0x0d ? '\r\n' : '\n';
}

export function parseHeaderBlock(raw: Buffer, allowMbox: boolean): HeaderBlock {
  const lines = splitLines(raw);
  const block: HeaderBlock = { fields: [], terminator: Buffer.alloc(0), eol: detectEol(raw) };
  let i = 0;
  if (allowMbox && lines.length && lines[0].subarray(0, 5).toString('latin1') === 'From ') {
    block.mbox = lines[0];
    i = 1;
  }
  let current: Buffer[] | undefined;
  let currentName = '';
  const flush = (): void => {
    if (current) block.fields.push({ name: currentName, raw: Buffer.concat(current) });
    current = undefined;
  };
  for (; i < lines.length; i++) {
    const line = lines[i];
    if (isBlankLine(line)) {
      flush();
      block.terminator = Buffer.concat(lines.slice(i));
      return block;
    }
    if ((line[0] === 0x20 || line[0] === 0x09) && current) {
      current.push(line);
      continue;
    }
    flush();
    current = [line];
    const text = line.toString('latin1');
    const colon = text.indexOf(':');
    currentName = colon < 0 ? '' : text.slice(0, colon).trim().toLowerCase();
  }
  flush();
  return block;
}

export function buildHeaderBlock(block: HeaderBlock): Buffer {
  const parts: Buffer[] = [];
  if (block.mbox) parts.push(block.mbox);
  for (const f of block.fields) parts.push(f.raw);
  parts.push(block.terminator);
  return Buffer.concat(parts);
}

/** A field value unfolded (continuation line breaks removed) and trimmed; 8-bit bytes read as UTF-8 when valid. */
export function fieldValue(field: RawField): string {
  const text = decodeHeaderBytes(field.raw);
  const colon = text.indexOf(':');
  return text
    .slice(colon + 1)
    .replace(/\r?\n(?=[ \t])/g, '')
    .replace(/\r?\n$/, '')
    .trim();
}

function decodeHeaderBytes(raw: Buffer): string {
  const utf8 = raw.toString('utf8');
  return utf8.includes('\uFFFD') ? raw.toString('latin1') : utf8;
}

export function headerView(block: HeaderBlock): HeaderView {
  const get = (name: string): string[] => {
    const key = name.toLowerCase();
    return block.fields.filter((f) => f.name === key).map(fieldValue);
  };
  return {
    get,
    first: (name) => get(name)[0],
    has: (name) => get(name).length > 0,
  };
}

/** Builds one new field folded at 76 columns with `eol`; CR/LF in the value are dropped so a value can never add a field. */
export function formatField(name: string, value: string, eol: string): Buffer {
  const cleanName = name.replace(/[^\x21-\x39\x3b-\x7e]/g, '');
  let cleanValue = value.replace(/[\r\n]+/g, ' ').trim();
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(cleanValue)) cleanValue = libmime.encodeWords(cleanValue, 'Q', 52);
  const folded = libmime.foldLines(`${cleanName}: ${cleanValue}`, 76, false);
  return Buffer.from(folded.replace(/\r?\n/g, eol) + eol, 'latin1');
}

/**
 * Replaces every `name` field in place (or appends one at the end of the block
 * when absent). Every occurrence: a duplicate left with the old value would
 * tell a reader that takes the last field the old charset or encoding.
 */
export function setField(block: HeaderBlock, name: string, value: string): void {
  const key = name.toLowerCase();
  const raw = formatField(name, value, block.eol);
  let found = false;
  block.fields.forEach((f, i) => {
    if (f.name !== key) return;
    block.fields[i] = { name: key, raw };
    found = true;
  });
  if (!found) {
    ensureLastFieldEnds(block);
    block.fields.push({ name: key, raw });
  }
}

/** The fields that say how a part's body is read: each must mean one thing to every reader. */
export const PART_READING_FIELDS: readonly string[] = ['content-type', 'content-transfer-encoding', 'content-disposition'];

/**
 * The fields of `names` that occur more than once with values a reader could
 * read differently. mailsplit reads the first occurrence, other readers the
 * last, so such a part is not read the same way everywhere. The same value
 * written twice does not count, nor one written with other quoting, case of
 * the type or charset, or spacing: every reader reads those alike.
 */
export function conflictingFields(block: HeaderBlock, names: readonly string[]): string[] {
  const conflicts: string[] = [];
  for (const name of names) {
    // nearly every part has each field once: no value is read then
    let count = 0;
    for (const f of block.fields) if (f.name === name) count++;
    if (count < 2) continue;
    let first: string | undefined;
    for (const f of block.fields) {
      if (f.name !== name) continue;
      const key = readingOf(name, fieldValue(f));
      if (first === undefined) first = key;
      else if (key !== first) {
        conflicts.push(name);
        break;
      }
    }
  }
  return conflicts;
}

/** What a reader takes from a field's value, written one way (anything unsure keeps its exact text, so it differs). */
function readingOf(name: string, value: string): string {
  if (name === 'content-transfer-encoding') return value.toLowerCase().replace(/\s+/g, ' ');
  const parsed = libmime.parseHeaderValue(value);
  // parameter values are compared as written (a boundary or file name is case-sensitive), but for the charset
  const params = Object.entries(parsed.params)
    .map(([k, v]) => [k.toLowerCase(), k.toLowerCase() === 'charset' ? String(v).toLowerCase() : String(v)])
    .sort(([a], [b]) => (a! < b! ? -1 : a! > b! ? 1 : 0));
  return JSON.stringify([parsed.value.trim().toLowerCase(), params]);
}

/**
 * A message without MIME-Version is not MIME (RFC 2045 4): Content-Type and
 * Content-Transfer-Encoding fields the surgery writes count only with it. Adds
 * `MIME-Version: 1.0` in front of the first Content-* field (else at the end)
 * when the block has none.
 */
export function ensureMimeVersion(block: HeaderBlock): void {
  if (block.fields.some((f) => f.name === 'mime-version')) return;
  const field = { name: 'mime-version', raw: formatField('MIME-Version', '1.0', block.eol) };
  const index = block.fields.findIndex((f) => f.name.startsWith('content-'));
  if (index >= 0) block.fields.splice(index, 0, field);
  else {
    ensureLastFieldEnds(block);
    block.fields.push(field);
  }
}

/** A block that ran to the end of input may end without a line ending; a field appended after it needs one. */
function ensureLastFieldEnds(block: HeaderBlock): void {
  const last = block.fields[block.fields.length - 1];
  if (last) ensureEnds(last, block.eol);
}

/** Removes every occurrence of the named fields, continuation lines included. */
export function removeFields(block: HeaderBlock, names: string[]): void {
  const keys = new Set(names.map((n) => n.toLowerCase().trim()));
  block.fields = block.fields.filter((f) => !keys.has(f.name));
}

/** Adds fields at the very top (after an mbox envelope line, which is not a header). */
export function prependFields(block: HeaderBlock, fields: Array<[string, string]>): void {
  const added = fields.map(([n, v]) => ({ name: n.toLowerCase(), raw: formatField(n, v, block.eol) }));
  // A malformed block may start with indented lines; put in front of them they would become
  // continuations of our field (and a leading " From: …" line would vanish into it).
  let skip = 0;
  while (skip < block.fields.length && (block.fields[skip].raw[0] === 0x20 || block.fields[skip].raw[0] === 0x09)) skip++;
  if (skip) ensureEnds(block.fields[skip - 1], block.eol);
  // a message cut short after its mbox line: the stamp must not run on into it
  if (block.mbox && block.mbox[block.mbox.length - 1] !== 0x0a) block.mbox = Buffer.concat([block.mbox, Buffer.from(block.eol, 'latin1')]);
  block.fields = [...block.fields.slice(0, skip), ...added, ...block.fields.slice(skip)];
}

function ensureEnds(field: RawField, eol: string): void {
  if (field.raw[field.raw.length - 1] !== 0x0a) field.raw = Buffer.concat([field.raw, Buffer.from(eol, 'latin1')]);
}

/**
 * The block's Content-Type value with its charset parameter (every form of it, RFC 2231
 * ones included) replaced by `charset`, and every other parameter exactly as written:
 * re-serializing a parsed value would drop what the parser could not read and rewrite
 * what it could.
 */
export function contentTypeWithCharset(block: HeaderBlock, charset: string): string {
  // absent, the type is text/plain, as RFC 2045 says
  const field = block.fields.find((f) => f.name === 'content-type');
  const segments = splitParameters(field ? fieldValue(field) : 'text/plain');
  const kept = segments.slice(1).filter((p) => !/^\s*charset(?:\*\d*)?\*?\s*=/i.test(p));
  return [segments[0]!.trim() || 'text/plain', ...kept.map((p) => p.trim()).filter(Boolean), `charset=${charset}`].join('; ');
}

/** Splits a structured field value at the semicolons outside quoted strings and comments. */
function splitParameters(value: string): string[] {
  const segments: string[] = [];
  let start = 0;
  let quoted = false;
  let comment = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '\\') i++;
    else if (quoted) quoted = c !== '"';
    else if (c === '"' && comment === 0) quoted = true;
    else if (c === '(') comment++;
    else if (c === ')' && comment > 0) comment--;
    else if (c === ';' && comment === 0) {
      segments.push(value.slice(start, i));
      start = i + 1;
    }
  }
  segments.push(value.slice(start));
  return segments;
}
