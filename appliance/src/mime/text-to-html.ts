// Converts a decoded text/plain body into an HTML fragment that shows it as a
// plain-text reader would, so that text-only mail can carry the full HTML
// signature. The caller converts up to three slices of one body and joins them
// with its own HTML, so a slice may start or end in the middle of a line.
// Everything is done a line at a time with arrays joined once: mail is
// untrusted and may be megabytes long, so no step may be worse than linear.

export interface TextToHtmlOptions {
  /** RFC 3676 format=flowed text */
  flowed: boolean;
  /** RFC 3676 DelSp=yes (only meaningful with flowed) */
  delSp: boolean;
  /** line ending to put between output lines ('\r\n' or '\n') */
  eol: string;
  /** The text begins in the middle of a line (a slice after a placeholder): its first characters are no quote markers. */
  midLine?: boolean;
}

// A neutral sans-serif at the size Outlook uses for mail: without it the
// reader's own default would show the text in a serif such as Times.
const DOCUMENT_FONT_STYLE = 'font-family: Calibri, Arial, Helvetica, sans-serif; font-size: 11pt;';

// Quoted lines (leading ">") become nested blockquotes with a bar, as mail
// clients show a quoted reply; `type="cite"` is what Apple Mail writes, so a
// later reply to this message finds the thread.
const BLOCKQUOTE_OPEN = '<blockquote type="cite" style="margin: 0 0 0 0.8ex; border-left: 1px solid #ccc; padding-left: 1ex;">';
const BLOCKQUOTE_CLOSE = '</blockquote>';

const TAB_AS_SPACES = '    ';
const NBSP = '&nbsp;';
const SIGNATURE_SEPARATOR = '-- ';

// C0 controls except tab and line feed, and DEL. CRLF is turned into LF
// before, so the CRs this drops are lone ones, which are no line break.
const CONTROL_CHARS = /[\x00-\x08\x0B-\x1F\x7F]/g; // eslint-disable-line no-control-regex

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const HTML_SPECIAL = /[&<>"']/g;

// Links are explicit-scheme only: fuzzy linkers (bare www., bare addresses,
// linkify-it) backtrack on crafted input and mail is untrusted. This pattern
// has a single unbounded class with nothing after it, so it never backtracks;
// trimming of trailing punctuation is a separate linear pass (linkEnd).
// \b: a scheme inside a word ("xhttps://") starts no link.
const URL_PATTERN = /\b(https?:\/\/|mailto:)[^\s<>"]+/gi;
const URL_TRAILING_PUNCTUATION = ".,;:!?'";

/** `& < > " '` as character references: text that stays text in an element or a quoted attribute value. */
export function escapeHtml(text: string): string {
  // most text has nothing to escape: a test is cheaper than a replace with a callback
  HTML_SPECIAL.lastIndex = 0;
  return HTML_SPECIAL.test(text) ? text.replace(HTML_SPECIAL, (c) => HTML_ESCAPES[c]) : text;
}

/**
 * A run of `length` spaces that keeps its width in HTML and still lets the
 * line wrap: non-breaking and plain spaces alternate, a lone space between
 * words stays plain, and no plain space is left at the start or end of a line
 * (HTML would drop it).
 */
function spaceRun(length: number, atLineStart: boolean, atLineEnd: boolean): string {
  if (length === 1) return atLineStart || atLineEnd ? NBSP : ' ';
  const run = '&nbsp; '.repeat(length >> 1) + (length & 1 ? NBSP : '');
  return atLineEnd && run.endsWith(' ') ? run.slice(0, -1) + NBSP : run;
}

// The spaces HTML would collapse: runs of two or more, and a lone one at either
// end of a piece (at a line's start or end; next to a link it stays plain).
// Escaping adds no space, so offsets in the escaped piece serve as well.
const COLLAPSIBLE_SPACES = / {2,}|^ | $/g;

/** Escaped text with its space runs converted; the piece holds no tab or line break. */
function renderTextPiece(piece: string, atLineStart: boolean, atLineEnd: boolean): string {
  const escaped = escapeHtml(piece);
  if (!escaped.includes(' ')) return escaped;
  return escaped.replace(COLLAPSIBLE_SPACES, (run: string, at: number) => spaceRun(run.length, atLineStart && at === 0, atLineEnd && at + run.length === escaped.length));
}

/**
 * End of the link within a matched URL: trailing sentence punctuation is not
 * part of it, nor a closing bracket without its opener inside the URL (so
 * "(see https://x/a)" keeps the ")" out and ".../Foo_(bar)" keeps it in).
 * Trimming stops at the scheme (so "mailto:." cannot become a link to
 * "mailto"). Bracket counts are taken once and updated, so a URL ending in a
 * million ")" is still linear.
 */
function linkEnd(url: string, schemeLength: number): number {
  let openParens = 0;
  let closeParens = 0;
  let openBrackets = 0;
  let closeBrackets = 0;
  for (const c of url) {
    if (c === '(') openParens++;
    else if (c === ')') closeParens++;
    else if (c === '[') openBrackets++;
    else if (c === ']') closeBrackets++;
  }
  let end = url.length;
  while (end > schemeLength) {
    const c = url[end - 1];
    if (URL_TRAILING_PUNCTUATION.includes(c)) {
      end--;
    } else if (c === ')' && closeParens > openParens) {
      closeParens--;
      end--;
    } else if (c === ']' && closeBrackets > openBrackets) {
      closeBrackets--;
      end--;
    } else {
      break;
    }
  }
  return end;
}

/** One output line (tabs already expanded, no line break): escaped, spaces kept, URLs linked. */
function renderLine(line: string): string {
  const out: string[] = [];
  let from = 0;
  URL_PATTERN.lastIndex = 0;
  for (let m = URL_PATTERN.exec(line); m !== null; m = URL_PATTERN.exec(line)) {
    const schemeLength = m[1].length;
    const url = m[0].slice(0, linkEnd(m[0], schemeLength));
    if (url.length === schemeLength) continue; // a scheme with nothing after it
    // URLs hold no white space, so a space run never spans a link boundary.
    if (m.index > from) out.push(renderTextPiece(line.slice(from, m.index), from === 0, false));
    const escapedUrl = escapeHtml(url);
    out.push(`<a href="${escapedUrl}">${escapedUrl}</a>`);
    from = m.index + url.length;
  }
  if (from < line.length) out.push(renderTextPiece(line.slice(from), from === 0, true));
  return out.join('');
}

interface LogicalLine {
  /** Quote depth: the number of quote markers, shown as nested blockquotes. */
  depth: number;
  /** The line without its quote markers. */
  text: string;
  /** Whether the input had a line break after it (only the last line of a slice may lack one). */
  broken: boolean;
}

/**
 * The quote markers of a line that is not format=flowed, by the usual
 * convention: ">" each followed by at most one space (">> a", "> > a" are
 * depth 2, their text "a"); one space more stays in the text.
 */
function plainLine(line: string, broken: boolean): LogicalLine {
  let depth = 0;
  let i = 0;
  while (line.charCodeAt(i) === 0x3e /* > */) {
    depth++;
    i++;
    if (line.charCodeAt(i) === 0x20) i++;
  }
  return { depth, text: i === 0 ? line : line.slice(i), broken };
}

/** Physical lines as they are, quote markers apart, for text that is not format=flowed. */
function plainLines(lines: string[], lastBroken: boolean, midLine: boolean): LogicalLine[] {
  const result: LogicalLine[] = new Array(lines.length);
  for (let i = 0; i < lines.length; i++) {
    const broken = i < lines.length - 1 || lastBroken;
    result[i] = i === 0 && midLine ? { depth: 0, text: lines[i], broken } : plainLine(lines[i], broken);
  }
  return result;
}

interface FlowedLine {
  depth: number;
  /** The line without its quote markers and space-stuffing. */
  content: string;
  soft: boolean;
}

function parseFlowedLine(line: string): FlowedLine {
  let depth = 0;
  while (depth < line.length && line[depth] === '>') depth++;
  let content = line.slice(depth);
  if (content.startsWith(' ')) content = content.slice(1); // space-stuffing
  return { depth, content, soft: content.endsWith(' ') && content !== SIGNATURE_SEPARATOR };
}

/**
 * RFC 3676 logical lines: a soft-broken line (ending in a space) joins the
 * next line of the same quote depth. A soft line with nothing to join (the
 * end of the slice, a change of depth, or a signature separator next, which
 * must stay on its own line) ends there, its trailing flowed space dropped.
 */
function flowedLines(lines: string[], lastBroken: boolean, delSp: boolean, midLine: boolean): LogicalLine[] {
  const parsed = lines.map((line, i) => (i === 0 && midLine ? { depth: 0, content: line, soft: line.endsWith(' ') } : parseFlowedLine(line)));
  const result: LogicalLine[] = [];
  let parts: string[] = [];
  for (let i = 0; i < parsed.length; i++) {
    const line = parsed[i];
    const next = i + 1 < parsed.length ? parsed[i + 1] : undefined;
    const joinsNext = line.soft && next !== undefined && next.depth === line.depth && next.content !== SIGNATURE_SEPARATOR;
    if (joinsNext) {
      parts.push(delSp ? line.content.slice(0, -1) : line.content);
      continue;
    }
    parts.push(line.soft ? line.content.slice(0, -1) : line.content);
    result.push({ depth: line.depth, text: parts.join(''), broken: i < parsed.length - 1 || lastBroken });
    parts = [];
  }
  return result;
}

/**
 * An HTML fragment (no <html>/<body>) showing `text` as a plain-text reader
 * would: every character escaped, line breaks and runs of spaces kept,
 * http/https/mailto URLs as links, quoted lines in nested blockquotes (all
 * closed at the end, so a fragment is balanced).
 */
export function textToHtml(text: string, options: TextToHtmlOptions): string {
  const clean = text.replace(/\r\n/g, '\n').replace(CONTROL_CHARS, '');
  if (clean === '') return '';
  const lines = clean.split('\n');
  const lastBroken = lines[lines.length - 1] === '';
  if (lastBroken) lines.pop();
  const midLine = options.midLine === true;
  const logical = options.flowed ? flowedLines(lines, lastBroken, options.delSp, midLine) : plainLines(lines, lastBroken, midLine);
  const out: string[] = [];
  let depth = 0;
  for (const line of logical) {
    for (; depth < line.depth; depth++) out.push(BLOCKQUOTE_OPEN);
    for (; depth > line.depth; depth--) out.push(BLOCKQUOTE_CLOSE, options.eol);
    out.push(renderLine(line.text.replace(/\t/g, TAB_AS_SPACES)));
    if (line.broken) out.push('<br>', options.eol);
  }
  for (; depth > 0; depth--) out.push(BLOCKQUOTE_CLOSE, options.eol);
  return out.join('');
}

/**
 * The whole document around a converted body:
 * `<html><head><meta charset …></head><body><div style="…">` + inner +
 * `</div></body></html>`, lines joined with eol.
 */
export function htmlDocument(inner: string, eol: string): string {
  return [
    '<html>', eol,
    '<head>', eol,
    '<meta http-equiv="Content-Type" content="text/html; charset=utf-8">', eol,
    '</head>', eol,
    '<body>', eol,
    `<div style="${DOCUMENT_FONT_STYLE}">`, eol,
    inner, inner.endsWith(eol) ? '' : eol,
    '</div>', eol,
    '</body>', eol,
    '</html>', eol,
  ].join('');
}
