// Quoted-printable decoding with a map of the encoded hard lines, so that an
// edit re-encodes only the lines it touches and every other encoded line is
// copied byte for byte. libqp.decode gives the same bytes (tested) but no such
// map, and its regex passes cost more than the split itself on small parts.
// Encoding is done here too, in one pass (see encodeQp).

export interface QpLine {
  /** Encoded byte range of the hard line, its line break included. */
  encStart: number;
  encEnd: number;
  /** Decoded byte range it decodes to, its line break included. */
  decStart: number;
  decEnd: number;
}

export interface QpDecoded {
  bytes: Buffer;
  lines: QpLine[];
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * Same result as libqp.decode: trailing whitespace is dropped, `=` + line
 * break is a soft break, then `=XX` escapes are decoded (also an escape that a
 * soft break had split, as libqp joins first). Hard line breaks are literal
 * line feeds; no escape spans one, so each hard line maps to a decoded range.
 */
export function decodeQp(raw: Buffer): QpDecoded {
  return decodeQpByLines(raw) ?? decodeQpBytewise(raw);
}

/**
 * The same decoding a line at a time, with native searches and copies: a line
 * keeps its bytes up to its trailing whitespace, then ends in a soft break
 * (`=`), a CRLF or an LF. A CR anywhere else (a bare CR, whitespace between CR
 * and LF, a final CR) gives up with undefined, and the byte-wise decoder,
 * which knows those cases, does the part.
 */
export function decodeQpByLines(raw: Buffer): QpDecoded | undefined {
  const n = raw.length;
  const joined = Buffer.allocUnsafe(n);
  const hardEnds: number[] = [];
  let j = 0;
  let i = 0;
  let cr = raw.indexOf(0x0d);
  while (i < n) {
    let lf = raw.indexOf(0x0a, i);
    const hasLf = lf >= 0;
    if (!hasLf) lf = n;
    let e = lf;
    if (cr >= 0 && cr < lf) {
      if (!hasLf || cr !== lf - 1) return undefined;
      e = lf - 1;
    }
    let t = e;
    while (t > i && (raw[t - 1] === 0x20 || raw[t - 1] === 0x09)) t--;
    if (t > i && raw[t - 1] === 0x3d) {
      // soft line break: the line continues on the next one
      j += raw.copy(joined, j, i, t - 1);
    } else {
      j += raw.copy(joined, j, i, t);
      if (e < lf) joined[j++] = 0x0d;
      if (hasLf) {
        joined[j++] = 0x0a;
        hardEnds.push(lf + 1, j);
      }
    }
    i = lf + 1;
    if (cr >= 0 && cr < i) cr = raw.indexOf(0x0d, i);
  }
  // escapes, in place (decoding never writes ahead of where it reads), a hard line at a time
  const view = joined.subarray(0, j);
  const lines: QpLine[] = [];
  let o = 0;
  let p = 0;
  let h = 0;
  let encStart = 0;
  let decStart = 0;
  let eq = view.indexOf(0x3d);
  while (p < j) {
    const lineEnd = h < hardEnds.length ? hardEnds[h + 1] : j;
    while (eq >= 0 && eq < lineEnd) {
      if (o !== p) joined.copyWithin(o, p, eq);
      o += eq - p;
      p = eq;
      const hi = p < j - 2 ? hexValue(joined[p + 1]) : -1;
      const lo = hi >= 0 ? hexValue(joined[p + 2]) : -1;
      if (lo >= 0) {
        joined[o++] = hi * 16 + lo;
        p += 3;
      } else {
        joined[o++] = 0x3d;
        p++;
      }
      eq = view.indexOf(0x3d, p);
    }
    if (o !== p) joined.copyWithin(o, p, lineEnd);
    o += lineEnd - p;
    p = lineEnd;
    if (h < hardEnds.length) {
      lines.push({ encStart, encEnd: hardEnds[h], decStart, decEnd: o });
      encStart = hardEnds[h];
      decStart = o;
      h += 2;
    }
  }
  if (encStart < n || !lines.length) lines.push({ encStart, encEnd: n, decStart, decEnd: o });
  return { bytes: joined.subarray(0, o), lines };
}

/** Byte by byte: every case, including bare CRs and whitespace around them. */
export function decodeQpBytewise(raw: Buffer): QpDecoded {
  const n = raw.length;
  // pass 1: drop whitespace that ends a line (before CR, LF or the end) and soft breaks
  // (`=` + LF / CRLF / the end, once that whitespace is gone); the LFs left are hard line ends
  const joined = Buffer.allocUnsafe(n);
  const hardEnds: number[] = [];
  let j = 0;
  let i = 0;
  while (i < n) {
    const c = raw[i];
    if (c === 0x20 || c === 0x09) {
      let k = i + 1;
      while (k < n && (raw[k] === 0x20 || raw[k] === 0x09)) k++;
      if (k === n || raw[k] === 0x0a || raw[k] === 0x0d) i = k;
      else while (i < k) joined[j++] = raw[i++];
      continue;
    }
    if (c === 0x3d) {
      let k = i + 1;
      while (k < n && (raw[k] === 0x20 || raw[k] === 0x09)) k++;
      if (k === n) break;
      if (k > i + 1 && raw[k] !== 0x0a && raw[k] !== 0x0d) k = i + 1; // that whitespace stays
      if (raw[k] === 0x0a) {
        i = k + 1;
        continue;
      }
      if (raw[k] === 0x0d) {
        let m = k + 1;
        while (m < n && (raw[m] === 0x20 || raw[m] === 0x09)) m++;
        if (m < n && raw[m] === 0x0a) {
          i = m + 1;
          continue;
        }
      }
      joined[j++] = c;
      i++;
      continue;
    }
    joined[j++] = c;
    i++;
    if (c === 0x0a) hardEnds.push(i, j);
  }
  // pass 2: decode escapes, mapping each hard line end to its decoded offset
  // decoding never writes ahead of where it reads, so it can work in place
  const out = joined;
  const lines: QpLine[] = [];
  let o = 0;
  let next = 0;
  let encStart = 0;
  let decStart = 0;
  for (let p = 0; p < j; ) {
    const c = joined[p];
    if (c === 0x3d && p < j - 2) {
      const hi = hexValue(joined[p + 1]);
      const lo = hexValue(joined[p + 2]);
      if (hi >= 0 && lo >= 0) {
        out[o++] = hi * 16 + lo;
        p += 3;
        continue;
      }
    }
    out[o++] = c;
    p++;
    if (next < hardEnds.length && p === hardEnds[next + 1]) {
      const encEnd = hardEnds[next];
      next += 2;
      lines.push({ encStart, encEnd, decStart, decEnd: o });
      encStart = encEnd;
      decStart = o;
    }
  }
  if (encStart < n || !lines.length) lines.push({ encStart, encEnd: n, decStart, decEnd: o });
  return { bytes: out.subarray(0, o), lines };
}

// States of QpSizeCounter
/** In text. */
const TEXT = 0;
/** After `=`. */
const EQ = 1;
/** After `=` and one hex digit. */
const EQ_HEX = 2;
/** After `=` and whitespace (a soft break if a line ending follows). */
const EQ_SPACE = 3;
/** After `=`, maybe whitespace, a CR, maybe whitespace. */
const EQ_CR = 4;

/**
 * Counts the bytes a quoted-printable body decodes to while it streams in
 * chunks, by decodeQp's rules: escapes are one byte, soft breaks and the
 * whitespace that ends a line none. (An escape split by a soft break counts
 * as its three characters, which only ever overstates.)
 */
export class QpSizeCounter {
  size = 0;
  private state: number = TEXT;
  /** Whitespace not yet counted: dropped if the line ends, counted if text follows. */
  private space = 0;

  add(chunk: Buffer): void {
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      switch (this.state) {
        case TEXT:
          break;
        case EQ:
          if (hexValue(c) >= 0) {
            this.state = EQ_HEX;
            continue;
          }
          if (c === 0x20 || c === 0x09) {
            this.state = EQ_SPACE;
            this.space = 1;
            continue;
          }
          if (c === 0x0a) {
            this.state = TEXT;
            continue;
          }
          if (c === 0x0d) {
            this.state = EQ_CR;
            continue;
          }
          this.size++; // a literal `=`; `c` is text
          this.state = TEXT;
          break;
        case EQ_HEX:
          this.state = TEXT;
          if (hexValue(c) >= 0) {
            this.size++;
            continue;
          }
          this.size += 2; // `=` and the digit were literal; `c` is text
          break;
        case EQ_SPACE:
          if (c === 0x20 || c === 0x09) {
            this.space++;
            continue;
          }
          if (c === 0x0a) {
            this.state = TEXT;
            this.space = 0;
            continue;
          }
          if (c === 0x0d) {
            this.state = EQ_CR;
            this.space = 0;
            continue;
          }
          this.size += 1 + this.space; // a literal `=` and its whitespace
          this.space = 0;
          this.state = TEXT;
          break;
        case EQ_CR:
          // whitespace may stand between the CR and the LF of a soft break
          if (c === 0x20 || c === 0x09) {
            this.space++;
            continue;
          }
          this.state = TEXT;
          if (c === 0x0a) {
            this.space = 0;
            continue;
          }
          this.size += 2; // a literal `=` and a bare CR; the whitespace after it is text's
          break;
      }
      // plain text
      if (c === 0x20 || c === 0x09) this.space++;
      else if (c === 0x0a || c === 0x0d) {
        this.space = 0;
        this.size++;
      } else if (c === 0x3d) {
        this.size += this.space;
        this.space = 0;
        this.state = EQ;
      } else {
        this.size += this.space + 1;
        this.space = 0;
      }
    }
  }
}

const HEX = Buffer.from('0123456789ABCDEF', 'latin1');

/**
 * Encodes with soft line breaks (`=` + `eol`) so that no line exceeds 76
 * octets. A line break of the text that is `eol` (an LF, or a CRLF) is a hard
 * line break; any other CR or LF (a CRLF in an LF-only message, which an
 * encoded `=0D=0A` decodes to, or a bare one) is escaped, so the part's line
 * endings on the wire stay the message's own. The same
 * rules as libqp.encode + libqp.wrap (printable ASCII but `=` literal, space
 * and tab literal except before a line break or at the end, everything else
 * `=XX`), in one pass over a buffer: libqp's string and regex passes were the
 * largest cost of signing a small message. Soft breaks fall where the line is
 * full rather than after a word, which decodes the same.
 */
export function encodeQp(bytes: Buffer, eol: string): Buffer {
  const n = bytes.length;
  const eolBytes = Buffer.from(eol, 'latin1');
  // worst case: every byte escaped, plus a soft break every 25 escapes
  const out = Buffer.allocUnsafe(n * 3 + Math.ceil(n / 25) * (eolBytes.length + 1) + 8);
  const crlf = eol === '\r\n';
  // length of the hard line break at `i`: the text's line break there if it is `eol`, else 0
  const hardBreak = (i: number): number => {
    if (crlf) return bytes[i] === 0x0d && bytes[i + 1] === 0x0a ? 2 : 0;
    return bytes[i] === 0x0a && (i === 0 || bytes[i - 1] !== 0x0d) ? 1 : 0;
  };
  let o = 0;
  let col = 0;
  for (let i = 0; i < n; i++) {
    const c = bytes[i]!;
    const br = c === 0x0a || c === 0x0d ? hardBreak(i) : 0;
    if (br) {
      o += eolBytes.copy(out, o);
      i += br - 1;
      col = 0;
      continue;
    }
    let literal: boolean;
    if (c === 0x20 || c === 0x09) {
      literal = !(i + 1 === n || hardBreak(i + 1));
    } else {
      literal = c >= 0x21 && c <= 0x7e && c !== 0x3d;
    }
    const width = literal ? 1 : 3;
    if (col + width > 75) {
      out[o++] = 0x3d;
      o += eolBytes.copy(out, o);
      col = 0;
    }
    if (literal) {
      out[o++] = c;
    } else {
      out[o++] = 0x3d;
      out[o++] = HEX[c >> 4]!;
      out[o++] = HEX[c & 0x0f]!;
    }
    col += width;
  }
  return out.subarray(0, o);
}

interface SoftBoundary {
  /** Encoded offset right after a soft line break. */
  enc: number;
  /** Decoded offset it corresponds to. */
  dec: number;
}

/**
 * The soft line breaks inside one hard line, with their decoded offsets, in
 * order, as long as they can be trusted: scanning stops at a physical line
 * whose end splits an escape (`=A` + soft break + `B`, which the decoder joins)
 * or holds a bare CR.
 */
function softBoundaries(raw: Buffer, line: QpLine): SoftBoundary[] {
  const found: SoftBoundary[] = [];
  let dec = line.decStart;
  let i = line.encStart;
  const end = line.encEnd;
  while (i < end) {
    const c = raw[i]!;
    if (c === 0x3d) {
      let k = i + 1;
      while (k < end && (raw[k] === 0x20 || raw[k] === 0x09)) k++;
      const softLf = k < end && raw[k] === 0x0a;
      const softCrLf = k + 1 < end && raw[k] === 0x0d && raw[k + 1] === 0x0a;
      if (softLf || softCrLf) {
        i = k + (softLf ? 1 : 2);
        found.push({ enc: i, dec });
        continue;
      }
      // an escape, or a literal `=`; one that runs into a soft break is split: stop trusting offsets
      if (hexValue(raw[i + 1] ?? -1) >= 0 && hexValue(raw[i + 2] ?? -1) >= 0) {
        dec++;
        i += 3;
        continue;
      }
      if (i + 2 >= end || raw[i + 1] === 0x0d || raw[i + 1] === 0x0a || raw[i + 2] === 0x0d || raw[i + 2] === 0x0a || raw[i + 2] === 0x3d) return found;
      dec++;
      i++;
      continue;
    }
    if (c === 0x0d || c === 0x0a) return found; // the hard line's own end (or a bare CR)
    if (c === 0x20 || c === 0x09) {
      // whitespace is dropped only before a hard line end, which ends the scan anyway
      let k = i + 1;
      while (k < end && (raw[k] === 0x20 || raw[k] === 0x09)) k++;
      if (k >= end || raw[k] === 0x0d || raw[k] === 0x0a) return found;
      dec += k - i;
      i = k;
      continue;
    }
    dec++;
    i++;
  }
  return found;
}

/** One edited range of the decoded body: bytes [from, to) of the original became `to - from + delta` bytes. */
export interface QpEditWindow {
  from: number;
  to: number;
  delta: number;
}

/**
 * Re-encodes only what an edit touches: for each window, from the last soft
 * line break before decoded offset `from` to the first one after `to` inside
 * the hard lines that hold them (the whole hard lines where no soft break can
 * be trusted), and copies every other encoded byte as it was, also between
 * windows (a top banner and a signature at the end re-encode two short runs,
 * not the whole body). `newBytes` is the whole decoded body after the edit;
 * windows are in order and do not overlap.
 */
export function spliceQp(raw: Buffer, decoded: QpDecoded, windows: QpEditWindow | QpEditWindow[], newBytes: Buffer, eol: string): Buffer {
  const { lines } = decoded;
  const lineOf = (offset: number, fromLine: number): number => {
    let k = fromLine;
    while (k < lines.length - 1 && !(offset < lines[k].decEnd)) k++;
    return k;
  };
  // windows as hard-line ranges; windows that share a hard line are one run
  const runs: { first: number; last: number; from: number; to: number; delta: number }[] = [];
  let scanFrom = 0;
  for (const w of Array.isArray(windows) ? windows : [windows]) {
    const first = lineOf(w.from, scanFrom);
    let last = first;
    while (last < lines.length - 1 && lines[last].decEnd < w.to) last++;
    scanFrom = last;
    const prev = runs[runs.length - 1];
    if (prev && first <= prev.last) {
      prev.last = Math.max(prev.last, last);
      prev.to = Math.max(prev.to, w.to);
      prev.delta += w.delta;
    } else runs.push({ first, last, from: w.from, to: w.to, delta: w.delta });
  }
  const pieces: Buffer[] = [];
  let copiedTo = 0;
  let shift = 0;
  for (const run of runs) {
    const a = lines[run.first];
    const b = lines[run.last];
    let start: SoftBoundary = { enc: a.encStart, dec: a.decStart };
    for (const boundary of softBoundaries(raw, a)) {
      if (boundary.dec > run.from) break;
      start = boundary;
    }
    const end = softBoundaries(raw, b).find((boundary) => boundary.dec >= run.to && boundary.enc > start.enc);
    const stop: SoftBoundary = end ?? { enc: b.encEnd, dec: b.decEnd };
    const middle = newBytes.subarray(start.dec + shift, stop.dec + shift + run.delta);
    pieces.push(raw.subarray(copiedTo, start.enc), encodeQp(middle, eol));
    // ending inside a hard line: the re-encoded run ends with a soft break of its own
    // (encodeQp's lines hold at most 75 octets, so the `=` still fits in 76)
    if (end && middle.length > 0) pieces.push(Buffer.from(`=${eol}`, 'latin1'));
    copiedTo = stop.enc;
    shift += run.delta;
  }
  pieces.push(raw.subarray(copiedTo));
  return Buffer.concat(pieces);
}
