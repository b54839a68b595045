// Where the signature goes inside one decoded body part (text/html or
// text/plain). Pure functions over strings: offsets only, the caller splices.
//
// Priority: (1) a placeholder the sender typed, if it appears before the
// quoted thread; (2) when the organization asks for it, a client's sign-off
// ("Sent from my iPhone") that ends the new text, replaced; (3) in a
// reply/forward, directly under the new text and above the quoted thread;
// (4) otherwise at the end of the body. A reply written below a
// blockquote-style quote (Thunderbird's default, interleaved replies) is
// signed at the end.
import { scanHtml, type HtmlDetail, type HtmlScan, type TagToken } from './html';
import { isBlank } from './patterns';
import { compileSeparators, type Separators } from './separators';
import { compileSignOffs, lastLineBefore, type SignOffs } from './sign-off';
import { aboveQuoteOffset, findTextQuote, type TextQuote } from './text';
import type { PlacementResult } from './result';

export type { PlacementResult } from './result';
export { scanHtml, type HtmlScan, findTextQuote, type TextQuote, compileSignOffs, type SignOffs, compileSeparators, type Separators };

/**
 * Placement in an HTML body.
 *
 * - `bodyStart`: right after the `<body …>` start tag; without a body tag,
 *   after `</head>`, else after the `<html …>` start tag, else after a
 *   leading doctype, else 0.
 * - 'placeholder': `at`/`removeLength` cover the placeholder's exact source
 *   range, including markup inside it (`{{<span>signature</span>}}`) and
 *   character references (`&#123;&#123;signature&#125;&#125;`), widened to
 *   whole elements when the placeholder starts or ends inside one
 *   (`<span>{{signature</span>}}`), so removing it never leaves a tag
 *   unbalanced. If that is impossible it is not used.
 * - 'above-quote': `at` = `quoteStart` = the start of the outermost element
 *   that begins the quoted thread (OWA: `div#appendonsend`, else the `<hr>`,
 *   else `div#divRplyFwdMsg`; Apple Mail: the "On … wrote:" attribution above
 *   the `blockquote type="cite"`; Outlook desktop: the `<div>` wrapping the
 *   bordered header block).
 * - 'sign-off': `at`/`removeLength` cover a client's sign-off ("Sent from
 *   my iPhone") that is the last line of the new text, matched in the text
 *   content and widened like a placeholder; only with `signOffs`, and not in
 *   a reply written below the quote.
 * - A placeholder or sign-off that is a link's whole text is widened to the
 *   link; `</a>` right after one inside a longer link is removed with it
 *   (the caller ends the link in front of the snippet, see `openLinks`); a
 *   link that goes on after it is opened again behind the snippet
 *   (`reopenLinks`), its start tag moved there when nothing came before.
 * - 'end': before the last `</body>`, else before the last `</html>`, else
 *   the end of the string.
 * - `openLinks`: links the sender left open at `at` / `bodyStart`, which the
 *   caller ends (`</a>`) in front of the snippet so it is not part of them.
 *   A placeholder typed in a link's text counts too: the signature goes
 *   there, the link ends in front of it.
 */
export function placeInHtml(html: string, placeholder: string, scan: HtmlScan = scanHtml(html), signOffs?: SignOffs): PlacementResult {
  const base = { bodyStart: scan.bodyStart, ...(scan.quoteStart !== undefined ? { quoteStart: scan.quoteStart } : {}) };
  const placed = (at: number, removeLength: number, placement: PlacementResult['placement']): PlacementResult => ({
    at,
    removeLength,
    placement,
    ...base,
    openLinks: links(scan, at),
  });
  const replaced = (range: SourceRange, placement: 'placeholder' | 'sign-off'): PlacementResult => {
    let { start, end } = outsideWholeLinks(html, scan, range);
    const open = scan.openLinksAt(start);
    // the link's own end tags that directly follow go too: the caller ends the link in front of the snippet
    const after = linkEndsAfter(html, scan, end, open, placement === 'sign-off');
    end = after.end;
    // a link that goes on after it (closed further on) is opened again after the snippet, so its text stays a link
    const link = open === 1 && after.removed === 0 ? linkGoingOnAfter(scan, start, end) : undefined;
    // directly after the link's start tag: the tag moves behind the snippet instead of leaving an empty link
    if (link && BLANK.test(html.slice(link.end, start))) start = link.start;
    const result = placed(start, end - start, placement);
    if (link) result.reopenLinks = html.slice(link.start, link.end);
    return result;
  };
  // A placeholder typed inside a link's text (editors extend a link over what is typed
  // right after it) is still where the sender wants the signature: the link ends there.
  const typed = findHtmlPlaceholder(scan, placeholder);
  if (typed) return replaced(typed, 'placeholder');
  const aboveQuote = scan.quoteStart !== undefined && !scan.bottomPosted;
  if (signOffs && (aboveQuote || scan.quoteStart === undefined)) {
    const signOff = findHtmlSignOff(scan, signOffs);
    if (signOff) return replaced(signOff, 'sign-off');
  }
  if (aboveQuote) return placed(scan.quoteStart!, 0, 'above-quote');
  return placed(scan.end, 0, 'end');
}

function links(scan: HtmlScan, at: number): NonNullable<PlacementResult['openLinks']> {
  const bodyStart = scan.openLinksAt(scan.bodyStart);
  const atEnd = scan.openLinksAt(at);
  // the same link still open at `at` was ended in front of the top snippet already
  const atAfterTop = bodyStart > 0 && at >= scan.bodyStart && !scan.linksChangeBetween(scan.bodyStart, at) ? 0 : atEnd;
  return { at: atEnd, bodyStart, atAfterTop };
}

/**
 * Placement in a text/plain body. Convention for the caller (applied by
 * {@link insertIntoText}):
 *
 * - 'placeholder': replace `removeLength` characters at `at` with the
 *   signature, adding no line breaks.
 * - 'above-quote': `at` is always the start of a line: the start of the run
 *   of blank lines directly above the quote's first line (i.e. right after the
 *   line break that ends the new text), or the quote's first line itself when
 *   no blank line precedes it, or 0 when there is no new text. The user's
 *   blank lines therefore stay between the signature and the quote; the caller
 *   adds one line break before the signature (a blank line after the new
 *   text) and ends the signature with a line break (plus a blank line when
 *   the line at `at` is not blank).
 * - 'sign-off': `at`/`removeLength` cover a client's sign-off line that ends
 *   the new text (only with `signOffs`, not below a quote), with its line
 *   break and the blank lines above it, from the end of the line before; the
 *   caller then inserts as for 'above-quote' / 'end'.
 * - 'end': `at` = `text.length`, after any final line break. If
 *   `text[at - 1]` is not a line break the caller first adds one, so the
 *   signature always starts on its own line.
 * - `bodyStart` is always 0.
 */
export function placeInText(
  text: string,
  placeholder: string,
  known: { quote: TextQuote | undefined } = { quote: findTextQuote(text) },
  signOffs?: SignOffs,
): PlacementResult {
  const { quote } = known;
  const base = { bodyStart: 0, ...(quote ? { quoteStart: quote.quoteStart } : {}) };
  if (placeholder.length > 0) {
    const at = text.indexOf(placeholder);
    if (at >= 0 && (!quote || at + placeholder.length <= quote.quoteStart)) {
      return { at, removeLength: placeholder.length, placement: 'placeholder', ...base };
    }
  }
  if (signOffs && !quote?.bottomPosted) {
    const line = lastLineBefore(text, quote ? quote.quoteStart : text.length);
    if (line && signOffs.matches(text.slice(line.start, line.end)) && !continuesLine(text, line.lineStart)) {
      // the blank lines above it go with it: the insertion sets the signature apart again
      const from = lastLineBefore(text, line.lineStart)?.lineEnd ?? 0;
      return { at: from, removeLength: line.lineEnd - from, placement: 'sign-off', ...base };
    }
  }
  if (quote && !quote.bottomPosted) {
    return { at: aboveQuoteOffset(text, quote), removeLength: 0, placement: 'above-quote', ...base };
  }
  return { at: text.length, removeLength: 0, placement: 'end', ...base };
}

/**
 * Whether the line starting at `lineStart` may continue the one above it: in
 * format=flowed text a line ending in a space goes on in the next, so the
 * next is part of a sentence, not a line of its own.
 */
function continuesLine(text: string, lineStart: number): boolean {
  let k = lineStart - 1;
  if (text[k] === '\n') k--;
  if (text[k] === '\r') k--;
  return k >= 0 && text[k] === ' ' && !isBlank(text.slice(text.lastIndexOf('\n', k) + 1, k + 1));
}

/** Offset where the quoted thread of an HTML reply/forward begins (start of its outermost element), if any. */
export function findQuoteStartHtml(html: string): number | undefined {
  return scanHtml(html).quoteStart;
}

/** Offset of the first line of the quoted thread of a text reply/forward, if any. */
export function findQuoteStartText(text: string): number | undefined {
  return findTextQuote(text)?.quoteStart;
}

/** Splices an HTML snippet in at a placement (replacing the placeholder when there is one), after `</a>` for each link left open there. */
export function insertIntoHtml(html: string, result: PlacementResult, snippet: string): string {
  return html.slice(0, result.at) + closeLinks(result.openLinks?.at ?? 0) + snippet + (result.reopenLinks ?? '') + html.slice(result.at + result.removeLength);
}

/** End tags for `count` links the sender left open, so that what follows is not part of them. */
export function closeLinks(count: number): string {
  return count > 0 ? '</a>'.repeat(count) : '';
}

/**
 * Splices a text signature in at a placement, following the line-break
 * convention documented on {@link placeInText}: the signature's line breaks
 * take the text's style (CRLF when the text uses CRLF), it starts on its own
 * line with one blank line above it (unless one is already there), and in a
 * reply one blank line separates it from the quote.
 */
export function insertIntoText(text: string, result: PlacementResult, signature: string): string {
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const sig = signature.replace(/\r?\n/g, eol).replace(/(?:\r?\n)+$/, '');
  const before = text.slice(0, result.at);
  const after = text.slice(result.at + result.removeLength);
  if (result.placement === 'placeholder') return before + sig + after;

  let lead = '';
  if (before.length > 0) {
    if (!/\r?\n$/.test(before)) lead = eol + eol;
    else if (!/(?:^|\n)[ \t]*\r?\n$/.test(before)) lead = eol;
  }
  let trail = eol;
  if (result.placement === 'above-quote' && !/^[ \t]*\r?\n/.test(after)) trail = eol + eol;
  return before + lead + sig + trail + after;
}

interface SourceRange {
  start: number;
  end: number;
}

function segmentAt(segs: HtmlDetail['segments'], textIndex: number): HtmlDetail['segments'][number] | undefined {
  let lo = 0;
  let hi = segs.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const seg = segs[mid]!;
    if (textIndex < seg.t) hi = mid - 1;
    else if (textIndex >= seg.t + seg.len) lo = mid + 1;
    else return seg;
  }
  return undefined;
}

function findHtmlPlaceholder(scan: HtmlScan, placeholder: string): SourceRange | undefined {
  if (placeholder.length === 0) return undefined;
  const index = scan.text.indexOf(placeholder);
  if (index < 0) return undefined;
  return sourceRangeOf(scan, index, index + placeholder.length);
}

/** The source range of [start, end) of the scan's text, made safe to remove; undefined when it reaches into the quote or cannot be. */
function sourceRangeOf(scan: HtmlScan, textStart: number, textEnd: number): SourceRange | undefined {
  const { segments, tags } = scan.detail();
  const first = segmentAt(segments, textStart);
  const last = segmentAt(segments, textEnd - 1);
  if (!first || !last) return undefined;
  const start = first.entity ? first.s : first.s + (textStart - first.t);
  const end = last.entity ? last.e : last.s + (textEnd - 1 - last.t) + 1;
  if (scan.quoteStart !== undefined && end > scan.quoteStart) return undefined;
  return balanceRange(tags, start, end);
}

/** Lines looked at from the end of the text before the quote: the sign-off, and a separator line ("On … wrote:") read before the quote was recognised. */
const SIGN_OFF_LINES = 3;

/**
 * A client's sign-off that is the last line of the new text. The text before
 * the quote may end with the separator's own line (an attribution is read
 * before it is recognised as one): lines after the sign-off must all belong
 * to the quote.
 */
function findHtmlSignOff(scan: HtmlScan, signOffs: SignOffs): SourceRange | undefined {
  const text = scan.text;
  let limit = text.length;
  let after: number | undefined;
  for (let k = 0; k < SIGN_OFF_LINES; k++) {
    const line = lastLineBefore(text, limit);
    if (!line) return undefined;
    if (signOffs.matches(text.slice(line.start, line.end))) {
      // the line the scan read after it must be the quote's (only the detail pass knows where it came from)
      if (after !== undefined && (scan.quoteStart === undefined || sourceStartOf(scan, after) < scan.quoteStart)) return undefined;
      return sourceRangeOf(scan, line.start, line.end);
    }
    after = line.start;
    limit = line.lineStart;
  }
  return undefined;
}

/** Where the character at `textIndex` of the scan's text came from. */
function sourceStartOf(scan: HtmlScan, textIndex: number): number {
  const seg = segmentAt(scan.detail().segments, textIndex);
  if (!seg) return -1;
  return seg.entity ? seg.s : seg.s + (textIndex - seg.t);
}

const BLANK = /^[ \t\r\n\f]*$/;

/**
 * A placeholder or sign-off that is the whole text of a link (Yahoo Mail's
 * "Sent from Yahoo Mail on Android" is one) goes with the link, and with any
 * element between them that holds nothing else: the signature takes their
 * place instead of sitting in an empty link. Elements around it that are not
 * inside such a link stay, with their styles.
 */
function outsideWholeLinks(html: string, scan: HtmlScan, range: SourceRange): SourceRange {
  const { tags } = scan.detail();
  let best = range;
  let { start, end } = range;
  for (let j = firstTagFrom(tags, start) - 1, k = firstTagFrom(tags, end); j >= 0 && k < tags.length; j--, k++) {
    const open = tags[j]!;
    const close = tags[k]!;
    if (open.kind !== 'open' || close.kind !== 'close' || open.name !== close.name) break;
    if (open.end > start || !BLANK.test(html.slice(open.end, start)) || !BLANK.test(html.slice(end, close.start))) break;
    if (scan.quoteStart !== undefined && close.end > scan.quoteStart) break;
    start = open.start;
    end = close.end;
    if (open.name === 'a') best = { start, end };
  }
  return best;
}

/**
 * Where the removal may end: after up to `openLinks` `</a>` that directly
 * follow `end` (blanks aside; for a sign-off also the line breaks that end
 * its line). They end links the caller ends in front of the snippet anyway;
 * left in place they would be stray end tags after it.
 */
function linkEndsAfter(html: string, scan: HtmlScan, end: number, openLinks: number, lineBreaks: boolean): { end: number; removed: number } {
  if (openLinks === 0) return { end, removed: 0 };
  const { tags } = scan.detail();
  let removeTo = end;
  let removed = 0;
  let from = end;
  for (let k = firstTagFrom(tags, end); k < tags.length && removed < openLinks; k++) {
    const tag = tags[k]!;
    if (!BLANK.test(html.slice(from, tag.start))) break;
    if (scan.quoteStart !== undefined && tag.end > scan.quoteStart) break;
    from = tag.end;
    if (lineBreaks && tag.kind === 'void' && tag.name === 'br') continue; // removed only with the </a> after it
    if (tag.kind !== 'close' || tag.name !== 'a') break;
    removeTo = tag.end;
    removed++;
  }
  return { end: removeTo, removed };
}

/**
 * The start tag of the one link open at `start` when the sender ends it with
 * its own `</a>` after `end` (before the quote, no other link in between):
 * what follows the replaced text is still part of that link.
 */
function linkGoingOnAfter(scan: HtmlScan, start: number, end: number): TagToken | undefined {
  const { tags } = scan.detail();
  let open: TagToken | undefined;
  for (let k = firstTagFrom(tags, start) - 1; k >= 0; k--) {
    const tag = tags[k]!;
    if (tag.name !== 'a') continue;
    if (tag.kind === 'open' && tag.end <= start) open = tag;
    break;
  }
  if (!open) return undefined;
  for (let k = firstTagFrom(tags, end); k < tags.length; k++) {
    const tag = tags[k]!;
    if (tag.name === 'a') return tag.kind === 'close' ? open : undefined;
  }
  return undefined;
}

/** Index of the first tag starting at or after `offset`. */
function firstTagFrom(tags: TagToken[], offset: number): number {
  let lo = 0;
  let hi = tags.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (tags[mid]!.start < offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Makes [start, end) safe to remove. A range whose tags are balanced, or that
 * closes elements and reopens the same ones, is kept; otherwise it is widened
 * to whole elements: a close tag inside whose start tag sits directly before
 * the range pulls the start back, a start tag inside whose close tag directly
 * follows pushes the end forward. Returns undefined when tags cross in a way
 * nothing fixes.
 */
export function balanceRange(tags: TagToken[], start: number, end: number): SourceRange | undefined {
  const from = firstTagFrom(tags, start);
  const open: string[] = [];
  const strayCloses: string[] = [];
  let k = from;
  for (; k < tags.length && tags[k]!.start < end; k++) {
    const tag = tags[k]!;
    if (tag.end > end) return undefined;
    if (tag.kind === 'open') open.push(tag.name);
    else if (tag.kind === 'close') {
      if (open.length > 0) {
        if (open[open.length - 1] !== tag.name) return undefined;
        open.pop();
      } else strayCloses.push(tag.name);
    }
  }
  // "…{{</span><span lang=DE>signature}}…": the range closes elements and
  // reopens the same ones; removing it leaves the outer tags balanced.
  if (strayCloses.length === open.length && strayCloses.every((name, i) => name === open[open.length - 1 - i])) {
    return { start, end };
  }
  let s = start;
  for (let i = 0, j = from - 1; i < strayCloses.length; i++, j--) {
    const tag = tags[j];
    if (!tag || tag.kind !== 'open' || tag.name !== strayCloses[i] || tag.end !== s) return undefined;
    s = tag.start;
  }
  let e = end;
  for (let i = open.length - 1, j = k; i >= 0; i--, j++) {
    const tag = tags[j];
    if (!tag || tag.kind !== 'close' || tag.name !== open[i] || tag.start !== e) return undefined;
    e = tag.end;
  }
  return { start: s, end: e };
}
