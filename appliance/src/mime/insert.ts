// Puts the rendered snippets into a decoded body at the offsets the placement
// module computes. Works on strings only; encoding is the caller's job.
import { closeLinks, placeInHtml, placeInText, type HtmlScan, type TextQuote } from './placement';
import { htmlDocument, textToHtml } from './text-to-html';
import type { BodyInsertion, Placement } from './types';

export interface Inserted {
  text: string;
  placement: Placement;
  /**
   * What changed, in the original text's offsets, in order: `removeLength`
   * characters at `at` became `insert`. Everything between changes is the
   * original text, so an encoder may keep its bytes.
   */
  changes: TextChange[];
  /** Where the snippets went, in the original text: top at `bodyStart`, the signature replacing [at, at + removeLength). */
  offsets: { bodyStart: number; at: number; removeLength: number };
}

export interface TextChange {
  at: number;
  removeLength: number;
  insert: string;
}

/** The changes of a top snippet at `bodyStart` and a bottom one replacing [at, at + removeLength); empty ones left out. */
function changesOf(bodyStart: number, top: string, at: number, removeLength: number, sig: string): TextChange[] {
  if (bodyStart === at) return top || sig || removeLength ? [{ at, removeLength, insert: top + sig }] : [];
  const changes: TextChange[] = [];
  if (top) changes.push({ at: bodyStart, removeLength: 0, insert: top });
  if (sig || removeLength) changes.push({ at, removeLength, insert: sig });
  return changes;
}

export interface FlowedInfo {
  flowed: boolean;
  delSp: boolean;
}

// The same rendered snippets go into message after message (renders are
// reused): their line endings are converted once per line-ending style.
const SNIPPETS_KEPT = 64;
const converted = { '\n': new Map<string, string>(), '\r\n': new Map<string, string>() };

function withEol(snippet: string, eol: string): string {
  const memo = eol === '\n' || eol === '\r\n' ? converted[eol] : undefined;
  let out = memo?.get(snippet);
  if (out === undefined) {
    out = snippet.replace(/\r\n?/g, '\n').replace(/\n/g, eol);
    if (memo) {
      if (memo.size >= SNIPPETS_KEPT) memo.clear();
      memo.set(snippet, out);
    }
  }
  return out;
}

/** First line ending used by `text`, else `fallback`. */
export function textEol(text: string, fallback: string): string {
  const lf = text.indexOf('\n');
  if (lf < 0) return fallback;
  return lf > 0 && text[lf - 1] === '\r' ? '\r\n' : '\n';
}

function clampOffsets(length: number, at: number, removeLength: number, bodyStart: number): [number, number, number] {
  const a = Math.max(0, Math.min(length, Math.trunc(at) || 0));
  const r = Math.max(0, Math.min(length - a, Math.trunc(removeLength) || 0));
  const b = Math.max(0, Math.min(a, Math.trunc(bodyStart) || 0));
  return [a, r, b];
}

/** `html` and the snippets share one line ending; `prepare` adapts a snippet to the part (e.g. character references). */
/** `scan`: the part's scan when the caller already made it (it did, to tell the engine where the quote starts). */
export function insertIntoHtml(html: string, body: BodyInsertion, eol: string, prepare: (s: string) => string, scan?: HtmlScan): Inserted {
  const placed = placeInHtml(html, body.placeholder, scan, body.signOffs);
  const [at, removeLength, bodyStart] = clampOffsets(html.length, placed.at, placed.removeLength, placed.bodyStart);
  // a snippet inserted where the sender left a link open would be part of it: the link ends in front of it
  const links = placed.openLinks ?? { at: 0, bodyStart: 0, atAfterTop: 0 };
  const top = body.topHtml ? closeLinks(links.bodyStart) + prepare(withEol(body.topHtml, eol)) : '';
  // a link the replaced text sat in that goes on after it starts again behind the snippet
  const sig = (body.html ? closeLinks(top ? links.atAfterTop : links.at) + prepare(withEol(body.html, eol)) : '') + (placed.reopenLinks ?? '');
  return {
    text: html.slice(0, bodyStart) + top + html.slice(bodyStart, at) + sig + html.slice(at + removeLength),
    placement: placed.placement,
    changes: changesOf(bodyStart, top, at, removeLength, sig),
    offsets: { bodyStart, at, removeLength },
  };
}

/**
 * RFC 3676: in format=flowed text a line ending in a space continues on the
 * next line, and lines starting with a space, `>` or `From ` are
 * space-stuffed. Inserted lines must be fixed lines (no trailing space, except
 * the `-- ` signature separator, which the RFC exempts) and stuffed when needed.
 */
function flowedLines(snippet: string, eol: string): string {
  return snippet
    .split(eol)
    .map((line) => {
      const fixed = line === '-- ' ? line : line.replace(/[ \t]+$/, '');
      return /^(?: |>|From )/.test(fixed) ? ` ${fixed}` : fixed;
    })
    .join(eol);
}

/** Whether the line that ends right before `offset` is a flowed (soft-broken) line. */
function endsSoftLine(text: string, offset: number, eol: string): boolean {
  if (offset < eol.length || text.slice(offset - eol.length, offset) !== eol) return false;
  const lineEnd = offset - eol.length;
  const line = text.slice(text.lastIndexOf('\n', lineEnd - 1) + 1, lineEnd);
  return line.endsWith(' ') && line !== '-- ';
}

export function insertIntoText(text: string, body: BodyInsertion, eol: string, flowed: FlowedInfo, known?: { quote: TextQuote | undefined }): Inserted {
  const placed = placeInText(text, body.placeholder, known, body.signOffs);
  const [at, removeLength, bodyStart] = clampOffsets(text.length, placed.at, placed.removeLength, placed.bodyStart);
  const shape = (s: string): string => (flowed.flowed ? flowedLines(withEol(s, eol), eol) : withEol(s, eol));
  let top = body.topText ? shape(body.topText) : '';
  let sig = body.text ? shape(body.text) : '';

  const before = text.slice(0, at);
  const after = text.slice(at + removeLength);
  if (sig) {
    // the signature starts on a line of its own
    if (before.length && !before.endsWith('\n')) sig = eol + sig;
    // an empty line ends the flowed paragraph before it, so it is not joined with the signature
    else if (flowed.flowed && endsSoftLine(text, at, eol)) sig = eol + sig;
    if (after.length && !sig.endsWith('\n')) sig += eol;
    // a sign-off's line ended with a line break: so does the signature in its place
    else if (!after.length && placed.placement === 'sign-off' && text.endsWith('\n') && !sig.endsWith('\n')) sig += eol;
  }
  if (top) {
    if (bodyStart > 0 && !text.slice(0, bodyStart).endsWith('\n')) top = eol + top;
    if (!top.endsWith('\n') && (bodyStart < text.length || sig)) top += eol;
  }
  return {
    text: text.slice(0, bodyStart) + top + before.slice(bodyStart) + sig + after,
    placement: placed.placement,
    changes: changesOf(bodyStart, top, at, removeLength, sig),
    offsets: { bodyStart, at, removeLength },
  };
}

/**
 * The HTML alternative of a plain-text-only body (BodyInsertion.textToHtml):
 * the original text converted, with the HTML snippets where `insertIntoText`
 * put the text ones (`offsets` of its result), as a whole document.
 */
export function htmlFromText(text: string, body: BodyInsertion, offsets: Inserted['offsets'], flowed: FlowedInfo, eol: string): string {
  const { bodyStart, at, removeLength } = offsets;
  // a slice that begins after a cut inside a line (a placeholder) begins with no quote markers
  const convert = (from: number, to = text.length): string =>
    textToHtml(text.slice(from, to), { flowed: flowed.flowed, delSp: flowed.delSp, eol, midLine: from > 0 && text[from - 1] !== '\n' });
  const top = body.topHtml ? withEol(body.topHtml, eol) : '';
  // one blank line between the sender's last line and the signature, as in a text part
  // (a line still open needs its own break first; a block after one break shows no empty line)
  const lastLine = lastLineState(text, at);
  const spacer = lastLine === 'open' ? `<br>${eol}<br>${eol}` : lastLine === 'written' ? `<br>${eol}` : '';
  const sig = body.html ? spacer + withEol(body.html, eol) : '';
  // cut the text only where a snippet goes: a cut ends a flowed paragraph
  const head = top ? convert(0, bodyStart) + top + convert(bodyStart, at) : convert(0, at);
  return htmlDocument(head + sig + convert(at + removeLength), eol);
}

/** The line in front of `offset`: written and still open (no line break), written and ended, or blank (or none). */
function lastLineState(text: string, offset: number): 'open' | 'written' | 'blank' {
  let i = offset;
  const ended = text[i - 1] === '\n';
  if (ended) i--;
  if (text[i - 1] === '\r') i--;
  while (i > 0 && (text[i - 1] === ' ' || text[i - 1] === '\t')) i--;
  if (i === 0 || text[i - 1] === '\n') return 'blank';
  return ended ? 'written' : 'open';
}
