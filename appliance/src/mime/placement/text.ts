// Quote detection in text/plain bodies: a single forward pass over the lines
// with a bounded look-ahead, so it is linear in the size of the text.
import {
  attributionLooksGenerated,
  endsWithAttributionVerb,
  endsWithColon,
  forgetLastLine,
  headerKeyOf,
  isAttribution,
  isBannerLine,
  isBlank,
  isQuotedLine,
  isUnderscoreRuler,
  isWeakAttribution,
  startsAttribution,
  stripQuoteMarkers,
  type HeaderKey,
} from './patterns';
import type { Separators } from './separators';

interface Line {
  /** Offset of the first character of the line. */
  start: number;
  /** The line without its line break. */
  text: string;
}

/** How many lines after a "From:" line the rest of the header block may appear. */
const HEADER_LOOKAHEAD = 8;

function splitLines(text: string): Line[] {
  const lines: Line[] = [];
  let start = 0;
  while (start <= text.length) {
    const nl = text.indexOf('\n', start);
    if (nl === -1) {
      if (start < text.length) lines.push({ start, text: text.slice(start) });
      break;
    }
    const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
    lines.push({ start, text: text.slice(start, end) });
    start = nl + 1;
  }
  return lines;
}

export interface TextQuote {
  /** Index of the line where the quoted thread begins. */
  line: number;
  /** Offset of that line. */
  quoteStart: number;
  /** The reply was written below the quote (bottom-posting or interleaved): the signature goes at the end. */
  bottomPosted: boolean;
}

/**
 * Whether a contiguous block of header lines ("From:", "Sent:", "To:",
 * "Subject:" in any supported language, quoted with `>` or not) starts at line
 * i and holds From and at least one of Sent/Date/To. Lines indented with
 * whitespace continue the previous header (wrapped recipient lists); a blank
 * line or any other line ends the block.
 */
function headerBlockAt(lines: Line[], i: number): boolean {
  const keys = new Set<HeaderKey>();
  for (let j = i; j < lines.length && j <= i + HEADER_LOOKAHEAD; j++) {
    const t = lines[j]!.text;
    if (isBlank(t)) break;
    const key = headerKeyOf(t);
    if (key) keys.add(key);
    else if (!(j > i && /^[ \t]/.test(stripQuoteMarkersKeepIndent(t)))) break;
    if (keys.has('from') && (keys.has('sent') || keys.has('to'))) return true;
  }
  return false;
}

function stripQuoteMarkersKeepIndent(t: string): string {
  return t.replace(/^(?:>[ \t]?)+/, '');
}

/** Index of the next non-blank line at or after i, or -1. */
function nextNonBlank(lines: Line[], i: number): number {
  for (let j = i; j < lines.length; j++) if (!isBlank(lines[j]!.text)) return j;
  return -1;
}

/** After an attribution + `>` block, does unquoted text follow (the reply was written below the quote)? */
function textAfterQuotedBlock(lines: Line[], from: number): boolean {
  for (let j = from; j < lines.length; j++) {
    const t = lines[j]!.text;
    if (isBlank(t) || isQuotedLine(t)) continue;
    return true;
  }
  return false;
}

/** `separators`: the organization's own separator lines (options.separators), if any. */
export function findTextQuote(text: string, separators?: Separators): TextQuote | undefined {
  try {
    return findTextQuoteIn(text, separators);
  } finally {
    forgetLastLine();
  }
}

function findTextQuoteIn(text: string, separators: Separators | undefined): TextQuote | undefined {
  const lines = splitLines(text);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.text;
    if (isBlank(raw)) continue;
    const quoted = isQuotedLine(raw);
    const content = quoted ? stripQuoteMarkers(raw) : raw;

    if (!quoted && (isBannerLine(content) || separators?.matches(content))) return found(lines, i, false);

    if (headerKeyOf(raw) && headerBlockAt(lines, i)) {
      // Outlook puts a ruler of underscores right above the block.
      const start = i > 0 && isUnderscoreRuler(lines[i - 1]!.text) ? i - 1 : i;
      return found(lines, start, false);
    }

    if (quoted) {
      // A quoted block that opens with its own attribution (Apple Mail quotes the "On … wrote:" line too).
      if (isAttribution(content)) return found(lines, i, textAfterQuotedBlock(lines, i + 1));
      continue;
    }

    // "On …, … wrote:" on one line, or wrapped over two (the two lines are
    // joined only when the second ends with a colon, as an attribution does).
    let attributionEnd = -1;
    if (isAttribution(raw)) attributionEnd = i;
    else if (
      startsAttribution(raw) &&
      i + 1 < lines.length &&
      endsWithColon(lines[i + 1]!.text) &&
      isAttribution(`${raw.trim()} ${lines[i + 1]!.text.trim()}`)
    ) {
      attributionEnd = i + 1;
    }
    if (attributionEnd >= 0) {
      const next = nextNonBlank(lines, attributionEnd + 1);
      const followedByQuote = next >= 0 && isQuotedLine(lines[next]!.text);
      const attribution = lines.slice(i, attributionEnd + 1).map((l) => l.text).join(' ');
      if (followedByQuote || attributionLooksGenerated(attribution)) {
        return found(lines, i, followedByQuote && textAfterQuotedBlock(lines, next));
      }
    }

    // Attributions without a known leading word ("02.04.2012 14:20 пользователь … написал:")
    // or with the verb before the date ("Bob <bob@…> schrieb am Mo., 2. März 2026, 09:14:"),
    // trusted only when a quoted block follows; the client may have wrapped the
    // line, so a preceding unfinished line with a date or address belongs to it.
    // (Cheap checks first: the colon, then the quoted block.)
    if (endsWithColon(raw)) {
      const next = nextNonBlank(lines, i + 1);
      if (next >= 0 && isQuotedLine(lines[next]!.text)) {
        const prev = i > 0 ? lines[i - 1]!.text : '';
        const prevJoins = !isBlank(prev) && /\d|@/.test(prev) && !/[.!?)]\s*$/.test(prev) && prev.length <= 300;
        let start = -1;
        if (isWeakAttribution(raw)) start = i;
        else if (endsWithAttributionVerb(raw)) start = prevJoins ? i - 1 : i;
        else if (prevJoins && isWeakAttribution(`${prev.trim()} ${raw.trim()}`)) start = i - 1;
        if (start >= 0) return found(lines, start, textAfterQuotedBlock(lines, next));
      }
    }
  }
  return undefined;
}

function found(lines: Line[], line: number, bottomPosted: boolean): TextQuote {
  return { line, quoteStart: lines[line]!.start, bottomPosted };
}

/**
 * Where the signature goes above a quote found at `quote`: the start of the
 * run of blank lines that directly precedes the quote's first line (that is,
 * right after the line break ending the last line of new text), or the quote's
 * first line itself when no blank line precedes it. Always a line start.
 */
export function aboveQuoteOffset(text: string, quote: TextQuote): number {
  const lines = splitLines(text.slice(0, quote.quoteStart));
  let k = lines.length;
  while (k > 0 && isBlank(lines[k - 1]!.text)) k--;
  return k < lines.length ? lines[k]!.start : quote.quoteStart;
}
