// Charset and transfer-encoding codecs for the edited body parts.
// iconv-lite covers every charset we keep except ISO-2022-JP, which it lacks;
// encoding-japanese (what libmime itself uses to decode it) covers that one.
import { isAscii, isUtf8 } from 'node:buffer';
import iconv from 'iconv-lite';
import Encoding from 'encoding-japanese';
import libbase64 from 'libbase64';
import { QpSizeCounter, decodeQp, encodeQp } from './qp';

export interface Charset {
  /** Label written in Content-Type when we keep the charset (the part's own label). */
  label: string;
  /**
   * ASCII-compatible and stateless: every 0x0A byte is a line feed and a line can be
   * re-encoded on its own, so an edit may keep the other lines' bytes as they are.
   */
  lineSafe: boolean;
  /** Set when decoding these bytes is known to be lossless (pure ASCII under an ASCII-compatible label). */
  exact?: boolean;
  decode(buf: Buffer): string;
  encode(text: string): Buffer;
  /**
   * Whether new text may be written in this charset under the part's label. Absent:
   * whatever encodes and decodes back unchanged. Set when the codec reads more than
   * the label promises (ISO-8859-1 read as windows-1252): added text keeps to the label.
   */
  carries?(text: string): boolean;
}

/** Every UTF-16 unit below 0x80: exactly when the UTF-8 length equals the string length (a native count). */
function isAsciiText(text: string): boolean {
  return Buffer.byteLength(text, 'utf8') === text.length;
}

const utf8: Charset = {
  label: 'utf-8',
  lineSafe: true,
  decode: (b) => b.toString('utf8'),
  encode: (t) => Buffer.from(t, 'utf8'),
};

function asciiCharset(label: string): Charset {
  return {
    label,
    lineSafe: true,
    exact: true,
    decode: (b) => b.toString('latin1'),
    encode: (t) => {
      if (!isAsciiText(t)) throw new Error('not representable in US-ASCII');
      return Buffer.from(t, 'latin1');
    },
  };
}

// Windows-1252's characters for the bytes 0x80-0x9F. The five bytes it leaves
// undefined map to the C1 control of the same value, as in the WHATWG table.
const CP1252_HIGH = '\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178';
const CP1252_BYTE = new Map<string, number>([...CP1252_HIGH].map((ch, i) => [ch, 0x80 + i]));
// eslint-disable-next-line no-control-regex
const LATIN1_ONLY = /^[\x00-\x7f\xa0-\xff]*$/;

/**
 * Labels the WHATWG encoding standard reads as windows-1252 (browsers and mail
 * clients all do): ISO-8859-1 text written on Windows holds its smart quotes,
 * dashes and euro sign in 0x80-0x9F, where ISO-8859-1 proper has C1 controls.
 */
const LATIN1_LABEL = /^(?:iso[-_]?8859[-_]?1(?::1987)?|latin-?1|l1|iso-ir-100|cp819|ibm819|csisolatin1)$/i;

/**
 * ISO-8859-1 read as windows-1252. Every byte maps to one character and back,
 * so the part's bytes survive an edit that keeps the label; text re-encoded as
 * UTF-8 gets the characters readers showed. Added text keeps to ISO-8859-1
 * proper (`carries`), so nothing new relies on the windows-1252 reading.
 */
function latin1AsCp1252(label: string): Charset {
  return {
    label,
    lineSafe: true,
    exact: true,
    decode: (b) => {
      const text = b.toString('latin1');
      return /[\x80-\x9f]/.test(text) ? text.replace(/[\x80-\x9f]/g, (c) => CP1252_HIGH[c.charCodeAt(0) - 0x80]) : text;
    },
    encode: (t) => {
      if (LATIN1_ONLY.test(t)) return Buffer.from(t, 'latin1');
      const out = Buffer.allocUnsafe(t.length);
      for (let i = 0; i < t.length; i++) {
        const code = t.charCodeAt(i);
        const byte = code < 0x80 || (code >= 0xa0 && code <= 0xff) ? code : CP1252_BYTE.get(t[i]);
        if (byte === undefined) throw new Error('not representable in windows-1252');
        out[i] = byte;
      }
      return out;
    },
    carries: (t) => LATIN1_ONLY.test(t),
  };
}

const LINE_SAFE = /^(?:iso[-_]?8859[-_]?\d+|latin-?\d|(?:windows|cp)[-_]?(?!120)\d+|koi8[-_]?[a-z]+|shift[-_]?jis|sjis|gb2312|gbk|gb18030|big5|euc[-_]?(?:jp|kr|cn))$/i;
const JIS = /^(?:iso-?2022-?jp|csiso2022jp|jis)$/i;
// ISO-2022-JP proper (RFC 1468) designates ASCII, JIS-Roman and JIS X 0208 only. encoding-japanese
// also writes JIS X 0212 (ESC $ ( D) and half-width katakana (ESC ( I), which readers of the label
// do not decode: added text that needs them is not written under this label.
// eslint-disable-next-line no-control-regex
const JIS_FOREIGN_ESCAPE = /\x1b(?!\(B|\(J|\$@|\$B)/;
// Codecs iconv-lite has that are not charsets a message may be written in (UTF-7 smuggles markup).
const REFUSED = /^(?:utf-?7|unicode-1-1-utf-7|utf7-?imap|base64|hex|binary)$/i;
// 7-bit charsets that shift in and out of other character sets (ISO-2022-KR/-CN/-JP-2, HZ): their
// bytes are ASCII but their text is not, so they are never read as ASCII.
const SHIFTING = /^(?:(?:cs|x-)?iso-?2022|hz)/i;

/** ESC, SO or SI: ISO 2022 shifts, which mean the bytes are not ASCII text whatever their label says. */
function hasShifts(bytes: Buffer): boolean {
  return bytes.includes(0x1b) || bytes.includes(0x0e) || bytes.includes(0x0f);
}

export function utf8Charset(): Charset {
  return utf8;
}

/**
 * The codec for a part, or undefined when its bytes cannot be decoded safely.
 * `bytes` decides the fallbacks: a missing or US-ASCII label on 8-bit bytes is
 * read as UTF-8 only if the bytes are valid UTF-8; an unknown label only when
 * the bytes are pure ASCII. ASCII bytes holding ISO 2022 shifts (ESC, SO, SI)
 * are never read as ASCII. An ISO-8859-1 label reads as windows-1252; a
 * refused label (UTF-7 and the like) never gives a codec.
 */
export function charsetFor(declared: string | false | undefined, bytes: Buffer): Charset | undefined {
  const label = (declared || '').trim().toLowerCase().replace(/^"|"$/g, '');
  const ascii = isAscii(bytes);
  if (!label || label === 'us-ascii' || label === 'ascii' || label === 'ansi_x3.4-1968') {
    // ISO-2022-JP without its label, say: relabelled UTF-8 its escapes would show as text
    if (ascii) return hasShifts(bytes) ? undefined : asciiCharset(label || 'us-ascii');
    // 8-bit bytes under an ASCII label: only safe when they are valid UTF-8 (they get relabelled)
    return utf8.encode(utf8.decode(bytes)).equals(bytes) ? { ...utf8, label: '' } : undefined;
  }
  if (label === 'utf-8' || label === 'utf8') return { ...utf8, label };
  if (LATIN1_LABEL.test(label)) return latin1AsCp1252(label);
  // a codec that is no charset a message may be written in: the part is not edited, whatever its bytes
  if (REFUSED.test(label)) return undefined;
  if (JIS.test(label)) {
    const decode = (b: Buffer): string => Encoding.convert(b, { to: 'UNICODE', from: 'JIS', type: 'string' });
    const encode = (t: string): Buffer => Buffer.from(Encoding.convert(Encoding.stringToCode(t), { to: 'JIS', from: 'UNICODE' }));
    return {
      label,
      // escape sequences carry state from line to line: always re-encoded as a whole
      lineSafe: false,
      decode,
      encode,
      carries: (t) => {
        const b = encode(t);
        return !JIS_FOREIGN_ESCAPE.test(b.toString('latin1')) && decode(b) === t;
      },
    };
  }
  if (iconv.encodingExists(label)) {
    return {
      label,
      lineSafe: LINE_SAFE.test(label),
      decode: (b) => iconv.decode(b, label, { stripBOM: false }),
      encode: (t) => iconv.encode(t, label, { addBOM: false }),
    };
  }
  // an unknown label is read as ASCII only when nothing in the bytes says otherwise (a NUL: UTF-16 under a name iconv-lite lacks)
  return ascii && !SHIFTING.test(label) && !hasShifts(bytes) && !bytes.includes(0x00) ? asciiCharset(label) : undefined;
}

/** Whether decoding then encoding gives back the very same bytes (otherwise editing would corrupt the part). */
export function roundTrips(cs: Charset, bytes: Buffer, text: string): boolean {
  // UTF-8 round-trips exactly when it is valid UTF-8 (a native check, no re-encoding)
  if (cs.exact) return true;
  if (cs.decode === utf8.decode) return isUtf8(bytes);
  try {
    return cs.encode(text).equals(bytes);
  } catch {
    return false;
  }
}

/** Whether `text` survives the charset unchanged. */
export function canCarry(cs: Charset, text: string): boolean {
  if (!text) return true;
  if (cs.carries) return cs.carries(text);
  try {
    return cs.decode(cs.encode(text)) === text;
  } catch {
    return false;
  }
}

/**
 * HTML: characters the charset lacks become numeric character references, so
 * the part keeps its charset (and label) whatever the signature contains.
 */
export function htmlForCharset(cs: Charset, html: string): string {
  if (canCarry(cs, html)) return html;
  let out = '';
  for (const ch of html) out += canCarry(cs, ch) ? ch : `&#x${ch.codePointAt(0)!.toString(16).toUpperCase()};`;
  return out;
}

export type TransferEncoding = '7bit' | '8bit' | 'binary' | 'quoted-printable' | 'base64';

export function transferEncodingOf(value: string | false | undefined): TransferEncoding | undefined {
  const v = (value || '7bit').trim().toLowerCase();
  if (v === '7bit' || v === '8bit' || v === 'binary' || v === 'quoted-printable' || v === 'base64') return v;
  return undefined;
}

export function decodeTransfer(cte: TransferEncoding, raw: Buffer): Buffer {
  // libbase64.decode treats a Buffer as already-decoded bytes; it must get the text
  if (cte === 'base64') return libbase64.decode(raw.toString('latin1'));
  if (cte === 'quoted-printable') return decodeQp(raw).bytes;
  return raw;
}

/**
 * The most an encoded body may take per decoded byte: quoted-printable with every
 * byte escaped takes 3.12 (soft breaks included), base64 under 1.4. A body
 * larger than this many times the cap cannot decode to within it (short of
 * padding no encoder writes), so it is not held further.
 */
export const MAX_ENCODED_RATIO = 4;

/** Streaming count of the bytes a body decodes to, so the size cap applies to the decoded size while the part is buffered. */
export interface DecodedSize {
  size: number;
  add(chunk: Buffer): void;
}

export function decodedSizeCounter(cte: TransferEncoding | undefined): DecodedSize {
  if (cte === 'quoted-printable') return new QpSizeCounter();
  if (cte === 'base64') {
    let chars = 0;
    return {
      get size() {
        return Math.floor((chars * 3) / 4);
      },
      add(chunk) {
        // line breaks, whitespace and padding decode to nothing
        for (let i = 0; i < chunk.length; i++) {
          const c = chunk[i]!;
          if (c > 0x20 && c !== 0x3d) chars++;
        }
      },
    };
  }
  let raw = 0;
  return {
    get size() {
      return raw;
    },
    add(chunk) {
      raw += chunk.length;
    },
  };
}

/** Longest line in octets, line endings excluded. */
export function longestLine(buf: Buffer): number {
  let max = 0;
  let start = 0;
  for (;;) {
    const lf = buf.indexOf(0x0a, start);
    const end = lf < 0 ? buf.length : lf;
    let len = end - start;
    if (lf >= 0 && len > 0 && buf[end - 1] === 0x0d) len--;
    if (len > max) max = len;
    if (lf < 0) return max;
    start = lf + 1;
  }
}

export function hasEightBit(buf: Buffer): boolean {
  return !isAscii(buf);
}

/** Quoted-printable with soft line breaks at 76 columns using `eol`; the text's own line breaks stay. */
export function encodeQuotedPrintable(bytes: Buffer, eol: string): Buffer {
  return encodeQp(bytes, eol);
}

export function encodeBase64(bytes: Buffer, eol: string, lineLength: number): Buffer {
  return Buffer.from(libbase64.wrap(libbase64.encode(bytes), lineLength).replace(/\r?\n/g, eol), 'latin1');
}

/** Line length used by an existing base64 body (so re-encoding looks like the original), capped at 76. */
export function base64LineLength(raw: Buffer): number {
  const lf = raw.indexOf(0x0a);
  if (lf < 0) return 76;
  const len = lf > 0 && raw[lf - 1] === 0x0d ? lf - 1 : lf;
  return len >= 4 && len <= 76 && len % 4 === 0 ? len : 76;
}
