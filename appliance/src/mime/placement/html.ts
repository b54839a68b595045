// Finds offsets in an HTML body with htmlparser2's tokenizer: where <body>
// starts, where the quoted thread of a reply/forward begins, where the body
// ends, and where a typed placeholder sits. Nothing is ever re-serialised: the
// caller splices its snippet into the original string at these offsets.
//
// The tokenizer (not htmlparser2's Parser) is used because the Parser keeps
// its open-element stack with Array#unshift/indexOf, which is quadratic on
// deeply nested or unclosed markup; here the element stack is our own, with a
// per-name count so closing an unknown tag never scans the stack. One pass,
// linear in the size of the document; the pass stops at the quoted thread
// unless the reply might have been written below the quote.
//
// Every offset handed out is one where a browser's HTML parser is in its
// normal "in body" state: never inside a comment, raw text (`<style>`,
// `<script>`, `<title>`, `<textarea>`…), `<template>`, SVG/MathML, a tag cut
// off at the end of the document, or an element that hides its content
// (`display:none`, `hidden`, a closed `<details>`, `<noscript>`, `<select>`…).
// To know which elements are open the scan follows the parts of the HTML
// tree-building rules that decide it (end tags that cannot close an element
// across a table cell or a block, formatting elements reopened after a block
// ends, foreign content); where it cannot follow the browser it errs towards
// "hidden", which only moves the signature up, never out of sight.
import { Tokenizer, type TokenizerCallbacks } from 'htmlparser2';
import { msoConditional, scriptEndIgnored, styleHides } from './hidden';
import {
  attributionLooksGenerated,
  endsWithAttributionVerb,
  forgetLastLine,
  headerKeyOf,
  isAttribution,
  isBannerLine,
  isBlank,
  isUnderscoreRuler,
  isWeakAttribution,
  startsAttribution,
  type HeaderKey,
} from './patterns';
import type { Separators } from './separators';

const VOID = new Set([
  'area', 'base', 'basefont', 'bgsound', 'br', 'col', 'command', 'embed', 'frame', 'hr', 'image', 'img', 'input',
  'isindex', 'keygen', 'link', 'meta', 'param', 'source', 'track', 'wbr',
]);
/** Elements whose content the tokenizer reads as raw text: never searched for separators or placeholders. */
const RAW_TEXT = new Set(['script', 'style', 'title', 'textarea', 'xmp', 'iframe', 'noembed', 'noframes', 'plaintext', 'template']);
/** Elements that may appear in <head>; any other element (or text) ends an unclosed head, as in browsers. */
const HEAD_CONTENT = new Set(['meta', 'link', 'style', 'script', 'title', 'base', 'noscript', 'template', 'object', 'basefont', 'bgsound']);
/** Elements that start a new line of text (used to cut the text content into lines). */
const BLOCK = new Set([
  'address', 'article', 'aside', 'blockquote', 'body', 'caption', 'center', 'dd', 'details', 'dir', 'div', 'dl', 'dt',
  'fieldset', 'figcaption', 'figure', 'footer', 'form', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'head', 'header', 'hr',
  'html', 'li', 'main', 'menu', 'nav', 'ol', 'p', 'pre', 'section', 'summary', 'table', 'tbody', 'td', 'tfoot', 'th',
  'thead', 'tr', 'ul',
]);
/** Elements that are content by themselves (an image is typed content even without text). */
const CONTENT_ELEMENTS = new Set(['img', 'image', 'video', 'audio', 'object', 'embed', 'svg', 'canvas', 'input', 'iframe']);
/**
 * Containers the insertion point must never be moved out of: leaving a table
 * cell or list item would put the signature where browsers re-parent it.
 */
const WALK_STOP = new Set([
  'html', 'head', 'body', 'td', 'th', 'tr', 'tbody', 'thead', 'tfoot', 'table', 'caption', 'colgroup', 'li', 'ul',
  'ol', 'dl', 'dd', 'dt', 'select', 'option', 'optgroup', 'svg', 'math',
]);

/** Elements whose content is not shown (or not as HTML): the signature never goes inside one. */
const HIDING = new Set([
  'noscript', 'select', 'datalist', 'object', 'applet', 'video', 'audio', 'canvas', 'rp',
  'frameset', 'script', 'style', 'title', 'textarea', 'xmp', 'iframe', 'noembed', 'noframes', 'plaintext', 'template',
]);
/** Parts of a table: a hidden one is left by inserting before its table (text cannot sit between rows). */
const TABLE_INTERNAL = new Set(['caption', 'colgroup', 'col', 'tbody', 'thead', 'tfoot', 'tr', 'td', 'th']);
/** The HTML parser's "special" elements: an end tag of another name cannot close an element across one. */
const SPECIAL = new Set([
  'address', 'applet', 'area', 'article', 'aside', 'base', 'basefont', 'bgsound', 'blockquote', 'body', 'br',
  'button', 'caption', 'center', 'col', 'colgroup', 'dd', 'details', 'dir', 'div', 'dl', 'dt', 'embed', 'fieldset',
  'figcaption', 'figure', 'footer', 'form', 'frame', 'frameset', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'head', 'header',
  'hgroup', 'hr', 'html', 'iframe', 'img', 'input', 'keygen', 'li', 'link', 'listing', 'main', 'marquee', 'menu',
  'meta', 'nav', 'noembed', 'noframes', 'noscript', 'object', 'ol', 'p', 'param', 'plaintext', 'pre', 'script',
  'search', 'section', 'select', 'source', 'style', 'summary', 'table', 'tbody', 'td', 'template', 'textarea',
  'tfoot', 'th', 'thead', 'title', 'tr', 'track', 'ul', 'wbr', 'xmp',
]);
/** Special elements of SVG and MathML (their integration points). */
const FOREIGN_SPECIAL = new Set(['mi', 'mo', 'mn', 'ms', 'mtext', 'annotation-xml', 'foreignobject', 'desc', 'title']);
/** Where an element "in scope" stops being searched for (HTML names; plus FOREIGN_SPECIAL in SVG/MathML). */
const SCOPE_BOUNDARY = new Set(['applet', 'caption', 'html', 'table', 'td', 'th', 'marquee', 'object', 'template']);
const TABLE_SCOPE_BOUNDARY = new Set(['html', 'table', 'template']);
const HEADINGS = new Set(['h1', 'h2', 'h3', 'h4', 'h5', 'h6']);
/** Formatting elements: reopened by the browser after a block that closed them ends, until their own end tag. */
const FORMATTING = new Set(['a', 'b', 'big', 'code', 'em', 'font', 'i', 'nobr', 's', 'small', 'strike', 'strong', 'tt', 'u']);
/** Elements that start a new list of formatting elements to reopen (a table cell starts afresh). */
const MARKERS = new Set(['applet', 'object', 'marquee', 'template', 'td', 'th', 'caption']);
/** HTML start tags that end SVG/MathML content (and `font` with color/face/size). */
const FOREIGN_BREAKOUT = new Set([
  'b', 'big', 'blockquote', 'body', 'br', 'center', 'code', 'dd', 'div', 'dl', 'dt', 'em', 'embed', 'h1', 'h2', 'h3',
  'h4', 'h5', 'h6', 'head', 'hr', 'i', 'img', 'li', 'listing', 'menu', 'meta', 'nobr', 'ol', 'p', 'pre', 'ruby', 's',
  'small', 'span', 'strong', 'strike', 'sub', 'sup', 'table', 'tt', 'u', 'ul', 'var',
]);
/** Where SVG/MathML content is read as HTML again. */
const INTEGRATION_POINTS = new Set(['foreignobject', 'desc', 'title', 'mi', 'mo', 'mn', 'ms', 'mtext']);
/** How far an end tag looks down the open elements; past it the tag is ignored (keeps pathological nesting linear). */
const MAX_END_TAG_SEARCH = 128;

/** Start tags that close an open `<p>` (in button scope), as in the browser; `<table>` too unless in quirks mode. */
const P_CLOSERS = new Set([
  'address', 'article', 'aside', 'blockquote', 'center', 'details', 'dialog', 'dir', 'div', 'dl', 'fieldset',
  'figcaption', 'figure', 'footer', 'form', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'header', 'hgroup', 'hr', 'li', 'dd',
  'dt', 'listing', 'main', 'menu', 'nav', 'ol', 'p', 'plaintext', 'pre', 'search', 'section', 'summary', 'ul', 'xmp',
]);
const CELLS = new Set(['td', 'th']);
/** In a `<select>` in a table, these tags close the select. */
const SELECT_IN_TABLE_CLOSERS = new Set(['caption', 'table', 'tbody', 'tfoot', 'thead', 'tr', 'td', 'th']);
/** The elements of a table that hold rows, columns or cells (not their content). */
const TABLE_STRUCTURE = new Set(['table', 'caption', 'colgroup', 'tbody', 'thead', 'tfoot', 'tr']);
const ROWS = new Set(['tr']);
const ROW_GROUPS = new Set(['tbody', 'thead', 'tfoot']);
const LIST_ITEMS = new Set(['li']);
const DEFINITIONS = new Set(['dd', 'dt']);
/** Special elements a new `<li>`/`<dd>` looks through for the item it closes. */
const ITEM_TRANSPARENT = new Set(['address', 'div', 'p']);
/** Where popTo stops: at a special element other than those (for list items), at a table (for cells and rows). */
const STOP_ITEM = 0;
const STOP_TABLE = 1;

// What the scan needs to know about a tag name, looked up once per tag.
const F_VOID = 1;
const F_HIDING = 2;
const F_TABLE_INTERNAL = 4;
/** Its start tag may close open elements other than a `<p>` (see impliedCloses). */
const F_CLOSES = 8;
const F_BLOCK = 16;
const F_FORMATTING = 32;
const F_RAW_TEXT = 64;
const F_CONTENT = 128;
const F_SPECIAL = 256;
const F_BREAKOUT = 512;
const F_MARKER = 1024;
const F_HEAD_CONTENT = 2048;
const F_SCOPE = 4096;
const F_TABLE_SCOPE = 8192;
const F_INTEGRATION = 16384;
const F_FOREIGN_SPECIAL = 32768;
/** Its start tag closes an open `<p>` (`<table>` only outside quirks mode). */
const F_CLOSES_P = 65536;
const F_HEADING = 131072;
const FLAGS = new Map<string, number>();
function flag(names: Iterable<string>, bit: number): void {
  for (const n of names) FLAGS.set(n, (FLAGS.get(n) ?? 0) | bit);
}
flag(VOID, F_VOID);
flag(HIDING, F_HIDING);
flag(TABLE_INTERNAL, F_TABLE_INTERNAL);
flag(['li', 'dd', 'dt', ...CELLS, ...ROWS, ...ROW_GROUPS, 'caption', 'colgroup', 'option', 'optgroup', 'body', 'button', 'a'], F_CLOSES);
flag([...P_CLOSERS, 'table'], F_CLOSES_P);
flag(HEADINGS, F_HEADING);
flag(BLOCK, F_BLOCK);
flag(['br'], F_BLOCK);
flag(FORMATTING, F_FORMATTING);
flag(RAW_TEXT, F_RAW_TEXT);
flag(CONTENT_ELEMENTS, F_CONTENT);
flag(SPECIAL, F_SPECIAL);
flag(FOREIGN_BREAKOUT, F_BREAKOUT);
flag(MARKERS, F_MARKER);
flag(HEAD_CONTENT, F_HEAD_CONTENT);
flag(SCOPE_BOUNDARY, F_SCOPE);
flag(TABLE_SCOPE_BOUNDARY, F_TABLE_SCOPE);
flag(INTEGRATION_POINTS, F_INTEGRATION);
flag(FOREIGN_SPECIAL, F_FOREIGN_SPECIAL);

/** The flags of an HTML element; an SVG/MathML element only keeps those that apply to it. */
function flagsOf(name: string, foreign: boolean): number {
  const f = FLAGS.get(name) ?? 0;
  return foreign ? f & (F_INTEGRATION | F_FOREIGN_SPECIAL | F_CONTENT | F_BREAKOUT) : f;
}

/** The attributes separator detection reads, then those that can hide an element (read on every element). */
const WANTED_ATTRS = new Set(['id', 'name', 'class', 'tabindex', 'style', 'type', 'hidden', 'open']);
const HIDING_ATTRS = new Set(['style', 'hidden', 'open']);
/** A `<font>` with one of these ends SVG/MathML content. */
const FONT_BREAKOUT_ATTRS = new Set(['color', 'face', 'size']);
const MAX_WANTED_ATTR = 8;
/** The attributes of a tag that has none of the wanted ones (never written to). */
const NO_ATTRS: Readonly<Record<string, string>> = Object.freeze({});

/** Longest line (in characters) that is classified; separators are short lines. */
const MAX_LINE = 1000;

interface OpenElement {
  name: string;
  /** flagsOf(name, foreign). */
  flags: number;
  /** Offset of the element's `<`. */
  start: number;
  /** Offset of the first content (non-blank text, image…) inside the element, -1 while none. */
  firstContentAt: number;
  /** An SVG or MathML element. */
  foreign: boolean;
  /** An SVG or MathML element whose content is read as HTML (`<foreignObject>`, `<mi>`…). */
  integration: boolean;
  /** Where the element hides its own content (its start, or its table's for a table part), -1 if it does not. */
  ownHiddenFrom: number;
  /** Where hiding content began when the element opened, apart from its ancestors (reopened formatting, Outlook conditionals). */
  outerHiddenFrom: number;
  /**
   * Where the outermost element that hides this one's content starts (this
   * one, an ancestor, or the other causes above), -1 when it is shown. A
   * signature put in front of that offset is outside all of them.
   */
  hiddenFrom: number;
  /** Where a signature goes to be in front of the nearest open table (this one or an ancestor), -1 if none. */
  tableStart: number;
  /** In a table but not in a cell or caption: the browser's "in table" insertion mode. */
  tableMode: boolean;
  /**
   * Whether content put right in front of the element's start tag is shown:
   * not when the tag itself closed a hidden element (`<p hidden>…<div>`) or
   * SVG (`<svg>…<p>`). Anchors never move out in front of such an element.
   */
  startShown: boolean;
}

/** A formatting element the browser reopens after a block closed it (the "list of active formatting elements"). */
interface FormattingEntry {
  name: string;
  /** Where a signature goes to be in front of it when it hides its content, else -1. */
  hiddenAt: number;
}

/** The formatting elements opened since the last table cell (or other marker) began. */
interface FormattingFrame {
  entries: FormattingEntry[];
  /** How many of them hide their content, and the earliest `hiddenAt` among them (recomputed when stale). */
  hiding: number;
  hiddenFrom: number;
  stale: boolean;
  /** How many of them are `<a>` (a link the sender left open: one `</a>` ends it here). */
  links: number;
}

function newFrame(): FormattingFrame {
  return { entries: [], hiding: 0, hiddenFrom: -1, stale: false, links: 0 };
}

/** The smaller of two offsets where -1 means none. */
function earliest(a: number, b: number): number {
  if (a === -1) return b;
  if (b === -1) return a;
  return a < b ? a : b;
}

function isTagLead(c: number): boolean {
  return c === 0x2f || c === 0x21 || c === 0x3f || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a); // / ! ? letter
}

interface TextSegment {
  /** Index in the collected text content. */
  t: number;
  /** Length in the collected text content. */
  len: number;
  /** Source range [s, e). */
  s: number;
  e: number;
  /** Decoded from a character reference: the whole source range stands for the decoded text. */
  entity: boolean;
}

export interface TagToken {
  name: string;
  start: number;
  end: number;
  kind: 'open' | 'close' | 'void';
}

interface LineState {
  text: string;
  /** Insertion point in front of the line (start of the outermost element that begins with it). */
  anchor: number;
  /** Content counter when the line got its first non-blank text. */
  contentAtStart: number;
  long: boolean;
}

interface FinishedLine {
  text: string;
  anchor: number;
  /** Content counter when the line ended: content after it changes the counter. */
  contentAtEnd: number;
}

/** How the quoted thread was recognised: 'cite' separators (blockquote quoting) allow text below the quote. */
type QuoteKind = 'block' | 'cite';

export interface HtmlScan {
  bodyStart: number;
  /**
   * Where the signature goes in a new message: before the last `</body>`,
   * else the last `</html>`, else the end; moved up in front of any element
   * that would hide it there, and in front of a comment, raw-text element or
   * tag left open at the end of the document.
   */
  end: number;
  quoteStart?: number;
  /** Unquoted text follows a blockquote-style quote: the reply was written below it. */
  bottomPosted: boolean;
  /** Decoded text content before the quote (block boundaries as "\n"). */
  text: string;
  /**
   * How many `<a>` elements are open at `offset` (an offset of this scan:
   * `end`, `bodyStart`, `quoteStart`, a placeholder's start) such that a
   * browser would put content inserted there inside the link: still open, or
   * closed by a block end and reopened by the browser. Each one `</a>` closes.
   * One opened outside the table cell the offset is in is not counted (no end
   * tag reaches it from inside the cell).
   */
  openLinksAt(offset: number): number;
  /** Whether the open links changed (one closed, another opened…) after `from`, up to `to`. */
  linksChangeBetween(from: number, to: number): boolean;
  /**
   * The text's map to the source and the tags seen while it was collected, in
   * document order. Only a placeholder needs them: they come from a second,
   * recording pass made on the first call.
   */
  detail(): HtmlDetail;
}

export interface HtmlDetail {
  segments: TextSegment[];
  tags: TagToken[];
}

/** An attribute value that needs none of cleanAttr's repairs (checked first: it is almost every value). */
const CLEAN_VALUE = /^[^\s"'3][^"']*(?<![\s"'])$/;

function cleanAttr(value: string | undefined): string {
  if (value === undefined) return '';
  if (CLEAN_VALUE.test(value)) return value;
  // Quoted-printable damage leaves `3D"value"` when an `=3D` was not decoded.
  return value.trim().replace(/^3D/i, '').replace(/^["']+|["']+$/g, '').trim();
}

/** Removes the prefixes clients add when re-quoting: OWA's `x_` (repeated per level), Gmail's `m_<digits>`. */
function unprefix(token: string): string {
  const first = token.charCodeAt(0) | 0x20;
  if (first !== 0x78 && first !== 0x6d) return token.toLowerCase(); // neither x_ nor m_
  return token.replace(/^(?:x_)+/i, '').replace(/^m_-?\d+_?/i, '').toLowerCase();
}

const NO_CLASSES: readonly string[] = [];

function classesOf(value: string | undefined): readonly string[] {
  const cleaned = cleanAttr(value);
  if (!cleaned) return NO_CLASSES;
  if (!/\s/.test(cleaned)) return [unprefix(cleaned)];
  return cleaned.split(/\s+/).filter(Boolean).map(unprefix);
}

const STRONG_IDS = new Set(['divrplyfwdmsg', 'mail-editor-reference-message-container', 'olk_src_body_section']);
const STRONG_CLASSES = new Set([
  'gmail_quote', 'gmail_quote_container', 'ms-outlook-mobile-reference-message', 'moz-cite-prefix',
  'moz-forward-container', 'yahoo_quoted', 'zmail_extra', 'protonmail_quote',
]);
/** Thunderbird's quote prefix: text below its quote means the reply was written below it. */
const CITE_CLASSES = new Set(['moz-cite-prefix']);

/** Outlook desktop (Word) header block: `border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in` and its older/locale forms. */
function isOutlookHeaderStyle(style: string): boolean {
  if (style.length === 0 || style.length > 2000) return false;
  const s = style.toLowerCase();
  const borderTop = /border-top\s*:[^;]*#(?:e1e1e1|b5c4df)/.test(s) && /border-top\s*:[^;]*solid/.test(s);
  if (borderTop && /padding(?:-top)?\s*:\s*3(?:\.0)?pt/.test(s)) return true;
  // Windows Mail / Mail for Windows 10.
  if (/border-top(?:-color)?\s*:[^;]*rgb\(\s*229\s*,\s*229\s*,\s*229\s*\)/.test(s) && /padding-top\s*:\s*5px/.test(s)) return true;
  return false;
}

class Scanner implements TokenizerCallbacks {
  private readonly stack: OpenElement[] = [];
  private readonly openCounts = new Map<string, number>();
  /** Incremented on every piece of content; lets a remembered position know whether content followed it. */
  private contentCounter = 0;
  /** End offset of the last complete event (text, tag, comment). */
  private pos = 0;

  // Tag being read.
  private tagName = '';
  private tagStart = 0;
  private attrs: Record<string, string> = NO_ATTRS;
  private attrName = '';
  private attrValue = '';

  private rawText: string | undefined;
  /** Where the raw text of the open raw-text element begins. */
  private rawTextStart = 0;
  /** `<template>`s open inside the outermost one (its content is inert; the tokenizer still reads tags there). */
  private templateDepth = 0;
  private inHead = false;
  /** A `<!DOCTYPE html>` was seen: not quirks mode, so `<table>` closes an open `<p>`. */
  private standards = false;
  /** A `<form>` was opened and no `</form>` seen since: a browser ignores another `<form>` tag. */
  private formOpen = false;
  /** A `<head>` start tag was taken. */
  private headSeen = false;

  /** Formatting elements to reopen, one frame per open table cell (or other marker); `frame` is the last. */
  private readonly frames: FormattingFrame[] = [newFrame()];
  private frame = this.frames[0]!;
  /** SVG/MathML elements on the stack. */
  private foreignOpen = 0;
  /** Start of an open `<!--[if !mso]><!-->` region (hidden by Outlook desktop), -1 if none. */
  private msoHiddenFrom = -1;
  /**
   * An open `<noscript>`: where it starts and where a browser running scripts
   * ends it (the first `</noscript`, its content being raw text there), -1 if
   * none. Mail readers run no scripts and parse its content as HTML: it is
   * treated as hidden as long as either reading has it open.
   */
  private noscriptFrom = -1;
  private noscriptUntil = -1;
  /** The `<noscript>` element while a script-running browser still has it open. */
  private noscriptElement: OpenElement | undefined;
  /** A hiding formatting element was seen in the open `<template>` (its markup is otherwise not followed). */
  private templateHidesFormatting = false;
  /** The tokenizer stopped following the browser (see diverge): offset to use for the end, -1 while it follows. */
  private divergedAt = -1;
  /** Start of a construct left open at the end of the document (comment, tag…), -1 if none. */
  private trailingAt = -1;

  bodyStart: number | undefined;
  private headEnd: number | undefined;
  private htmlOpenEnd: number | undefined;
  /** The end of a doctype before any content: a document without <html>, <head> or <body> starts after it. */
  private doctypeEnd: number | undefined;
  /** Safe insertion offsets for the last `</body>` and `</html>` (see safePoint), -1 when none was seen. */
  private lastBodyClose = -1;
  private lastHtmlClose = -1;
  /** Safe insertion offset at the end of the document. */
  private eofPoint: number | undefined;

  // Text content before the quote, for the placeholder.
  private collecting = true;
  private readonly textParts: string[] = [];
  private textLength = 0;
  readonly segments: TextSegment[] = [];
  readonly tags: TagToken[] = [];

  // Lines for the text-pattern fallbacks.
  private line: LineState | undefined;
  private lastLine: FinishedLine | undefined;
  private lineBeforeLast: FinishedLine | undefined;
  private headerRun: { anchor: number; keys: Set<HeaderKey> } | undefined;
  private underscoreAnchor: { anchor: number; contentAtEnd: number } | undefined;

  /** OWA's `div#appendonsend` / an `<hr>` right before the reply header belong to the quote. */
  private prefix: { anchor: number; contentCounter: number } | undefined;

  quoteStart: number | undefined;
  private quoteKind: QuoteKind | undefined;
  private quoteBlockquoteClosed = false;
  bottomPosted = false;

  /**
   * The number of links open (this.frame.links) after each tag that changed
   * it or opened a link: from `linkChangeAt[i]` on it is `linkCounts[i]`.
   * Any offset the scan hands out can be looked up afterwards.
   */
  private readonly linkChangeAt: number[] = [];
  private readonly linkCounts: number[] = [];
  /** `<a>` elements opened so far, and as of the last recorded change: a new link is a change even when the count stays. */
  private linksOpened = 0;
  private linksOpenedNoted = 0;

  constructor(
    private readonly html: string,
    private readonly tokenizer: { pause(): void },
    /** Record text segments and tags (for a placeholder's source range). */
    private readonly recording: boolean,
    /** The organization's own separator lines, besides the built-in ones. */
    private readonly separators: Separators | undefined,
  ) {}

  // ---- tokenizer callbacks ------------------------------------------------

  onopentagname(start: number, endIndex: number): void {
    this.tagStart = start - 1;
    this.tagName = this.html.slice(start, endIndex).toLowerCase();
    this.attrs = NO_ATTRS;
  }
  onattribname(start: number, endIndex: number): void {
    this.attrValue = '';
    // Only the attributes separator detection reads (until the quote is found) and
    // those that hide an element are kept. Not `searching`: an unclosed head ends at
    // this very tag, in openTag.
    const name = endIndex - start <= MAX_WANTED_ATTR ? this.html.slice(start, endIndex).toLowerCase() : '';
    this.attrName =
      (WANTED_ATTRS.has(name) && (this.quoteStart === undefined || HIDING_ATTRS.has(name))) ||
      (this.tagName === 'font' && FONT_BREAKOUT_ATTRS.has(name)) ||
      (this.tagName === 'annotation-xml' && name === 'encoding')
        ? name
        : '';
  }
  onattribdata(start: number, endIndex: number): void {
    if (this.attrName) this.attrValue += this.html.slice(start, endIndex);
  }
  onattribentity(codepoint: number): void {
    if (this.attrName) this.attrValue += String.fromCodePoint(codepoint);
  }
  onattribend(): void {
    if (this.attrName && !Object.hasOwn(this.attrs, this.attrName)) {
      if (this.attrs === NO_ATTRS) this.attrs = {};
      this.attrs[this.attrName] = this.attrValue;
    }
    this.attrValue = '';
  }
  onopentagend(endIndex: number): void {
    this.openTag(this.tagName, this.tagStart, endIndex + 1, this.attrs, false);
    this.noteLinks();
  }
  onselfclosingtag(endIndex: number): void {
    this.openTag(this.tagName, this.tagStart, endIndex + 1, this.attrs, true);
    this.noteLinks();
  }
  onclosetag(start: number, endIndex: number): void {
    const name = this.html.slice(start, endIndex).toLowerCase();
    const gt = this.html.indexOf('>', endIndex);
    // cut off by the end of the document: the browser drops it
    if (gt === -1) {
      if (this.trailingAt === -1) this.trailingAt = start - 2;
      return;
    }
    this.closeTag(name, start - 2, gt + 1);
    this.noteLinks();
  }
  ontext(start: number, endIndex: number): void {
    // "<", "</", "<!", "<scr" left at the end of the document: a tag or comment cut off (the tokenizer gives it as text)
    if (endIndex === this.html.length && this.cutOffAt(start) !== -1) {
      if (this.trailingAt === -1) this.trailingAt = this.cutOffAt(start);
      return;
    }
    this.text(start, endIndex, false, undefined);
  }
  /** Where a final text event that is really a cut-off tag starts (its `<`), -1 if it is text. */
  private cutOffAt(start: number): number {
    const html = this.html;
    if (html.charCodeAt(start) === 0x3c) return start + 1 === html.length || isTagLead(html.charCodeAt(start + 1)) ? start : -1;
    // "<scr…": the tokenizer leaves out the "<" while it checks for a raw-text element's name
    return start > this.pos && html.charCodeAt(start - 1) === 0x3c ? start - 1 : -1;
  }
  ontextentity(codepoint: number, endIndex: number): void {
    const amp = this.html.lastIndexOf('&', endIndex - 1);
    this.text(amp >= this.pos ? amp : this.pos, endIndex, true, String.fromCodePoint(codepoint));
  }
  oncomment(start: number, endIndex: number, endOffset: number): void {
    // not closed before the end of the document: it swallows everything after its start
    if (endIndex >= this.html.length) {
      if (this.trailingAt === -1) this.trailingAt = this.pos;
      return;
    }
    const commentStart = this.pos;
    this.pos = endIndex + 1;
    this.checkNoscriptEnd(commentStart, this.pos);
    if (this.rawText !== undefined || this.divergedAt !== -1) return;
    const conditional = msoConditional(this.html.slice(start, endIndex - endOffset));
    if (conditional === 'hidden') {
      if (this.msoHiddenFrom === -1) this.msoHiddenFrom = earliest(this.hiddenNow(), commentStart);
    } else if (conditional === 'end') this.msoHiddenFrom = -1;
  }
  oncdata(_start: number, endIndex: number): void {
    const cdataStart = this.pos;
    this.pos = endIndex + 1;
    this.checkNoscriptEnd(cdataStart, this.pos);
    // Outside SVG/MathML a browser reads `<![CDATA[` as a comment that ends at the first `>`.
    if (!this.isInForeignContext() && this.html.indexOf('>', cdataStart) < endIndex) this.diverge(cdataStart);
  }
  ondeclaration(start: number, endIndex: number): void {
    this.pos = endIndex + 1;
    if (this.stack.length === 0 && this.contentCounter === 0) {
      // only a doctype before everything else sets the document's mode
      if (/^doctype\s+html\s*$/i.test(this.html.slice(start, endIndex))) this.standards = true;
      this.doctypeEnd = this.pos;
    }
  }
  onprocessinginstruction(_start: number, endIndex: number): void {
    this.pos = endIndex + 1;
  }
  onend(): void {
    this.endLine();
    if (this.divergedAt !== -1) return;
    const at = this.trailingAt !== -1 ? Math.min(this.trailingAt, this.pos) : Math.min(this.pos, this.html.length);
    this.eofPoint = this.safePoint(at);
  }
  /** Asked by the tokenizer at each `<`: in SVG/MathML, `<style>`, `<title>`… are no raw-text elements. */
  isInForeignContext(): boolean {
    if (this.foreignOpen === 0) return false;
    const top = this.stack[this.stack.length - 1]!;
    return top.foreign && !top.integration;
  }

  // ---- structure ------------------------------------------------------------

  private get searching(): boolean {
    return this.quoteStart === undefined && !this.inHead && this.rawText === undefined && this.hiddenNow() === -1;
  }

  /**
   * Where the content being read now stops being shown, -1 while it is shown:
   * the outermost hiding open element, a hiding formatting element the
   * browser would reopen here, an open Outlook-hidden region or `<noscript>`.
   */
  private hiddenNow(): number {
    const depth = this.stack.length;
    const from = depth === 0 ? -1 : this.stack[depth - 1]!.hiddenFrom;
    if (this.frame.hiding === 0 && this.msoHiddenFrom === -1 && this.noscriptUntil === -1) return from;
    return earliest(earliest(from, this.formattingHiddenFrom()), this.outsideHiddenFrom());
  }

  /** Where an open Outlook-hidden region or `<noscript>` began, -1 if none. */
  private outsideHiddenFrom(): number {
    if (this.noscriptUntil !== -1 && this.pos > this.noscriptUntil) {
      this.noscriptFrom = -1;
      this.noscriptUntil = -1;
      this.noscriptElement = undefined;
    }
    return earliest(this.msoHiddenFrom, this.noscriptFrom);
  }

  private openNoscript(contentStart: number, from: number): void {
    const close = /<\/noscript[\t\n\f\r />]/gi;
    close.lastIndex = contentStart;
    this.noscriptUntil = close.exec(this.html)?.index ?? this.html.length;
    this.noscriptFrom = from;
  }

  /**
   * A token that spans the end a script-running browser gives an open
   * `<noscript>` (a comment, attribute or raw text holding `</noscript>`):
   * there the two readings part, and the scan stops following either.
   */
  private checkNoscriptEnd(start: number, end: number): void {
    if (this.noscriptUntil !== -1 && start < this.noscriptUntil && end > this.noscriptUntil) this.diverge(this.noscriptFrom);
  }

  /** An insertion offset at or before `at` where a signature is shown (in front of everything that would hide it). */
  private safePoint(at: number): number {
    const hidden = this.hiddenNow();
    return hidden !== -1 && hidden < at ? hidden : at;
  }

  /**
   * The tokenizer read something differently from a browser (a `</script>`
   * that does not end the script, CDATA outside SVG/MathML): nothing after
   * `at` can be trusted. The end goes in front of it and the scan stops.
   */
  private diverge(at: number): void {
    if (this.divergedAt !== -1) return;
    this.divergedAt = this.safePoint(at);
    this.collecting = false;
    this.line = undefined;
    this.tokenizer.pause();
  }

  /**
   * `shownAt`: where a signature goes to be in front of the element and shown
   * (its start, or earlier when its tag closed something hidden); `hiddenAt`:
   * the same when the element hides its content, else -1.
   */
  private push(name: string, flags: number, start: number, foreign: boolean, hiddenAt: number, shownAt: number, integration: boolean): void {
    const parent = this.stack[this.stack.length - 1];
    const tableStart = name === 'table' && !foreign ? shownAt : parent === undefined ? -1 : parent.tableStart;
    const ownHiddenFrom = hiddenAt !== -1 && flags & F_TABLE_INTERNAL && parent !== undefined ? earliest(parent.tableStart, hiddenAt) : hiddenAt;
    const parentHiddenFrom = parent === undefined ? -1 : parent.hiddenFrom;
    let outerHiddenFrom = -1;
    if (this.frame.hiding !== 0 || this.msoHiddenFrom !== -1 || this.noscriptUntil !== -1) {
      // a hiding formatting element still open is an ancestor (in parentHiddenFrom), not an outer cause
      const formatting = this.formattingHiddenFrom();
      outerHiddenFrom = earliest(parentHiddenFrom === -1 || formatting < parentHiddenFrom ? formatting : -1, this.outsideHiddenFrom());
    }
    const hiddenFrom = earliest(earliest(parentHiddenFrom, outerHiddenFrom), ownHiddenFrom);
    const tableMode = foreign
      ? false
      : name === 'table' || name === 'tr' || ROW_GROUPS.has(name)
        ? true
        : flags & F_TABLE_INTERNAL
          ? false
          : parent !== undefined && parent.tableMode;
    this.stack.push({
      name, flags, start, firstContentAt: -1, foreign, integration, ownHiddenFrom, outerHiddenFrom, hiddenFrom, tableStart, tableMode,
      startShown: shownAt === start,
    });
    this.openCounts.set(name, (this.openCounts.get(name) ?? 0) + 1);
    if (flags & F_MARKER) this.frames.push((this.frame = newFrame()));
    if (foreign) this.foreignOpen++;
  }

  private pop(): OpenElement {
    const el = this.stack.pop()!;
    this.openCounts.set(el.name, this.openCounts.get(el.name)! - 1);
    // a table cell or caption ends its formatting elements however it closes; <object>,
    // <applet> and <marquee> only by their own end tag (see closeElement)
    if (el.flags & F_MARKER && (el.name === 'td' || el.name === 'th' || el.name === 'caption')) this.clearFormatting();
    if (el.foreign) this.foreignOpen--;
    // closed by markup that a script-running browser reads as the <noscript>'s text: the readings part
    if (el === this.noscriptElement && this.pos <= this.noscriptUntil) this.diverge(this.noscriptFrom);
    if (el.name === 'blockquote' && this.quoteKind === 'cite' && !this.openCounts.get('blockquote')) {
      this.quoteBlockquoteClosed = true;
    }
    return el;
  }

  /** The current element is a `<select>` (or an option in one): the browser's "in select" insertion mode. */
  private inSelect(): boolean {
    for (let k = this.stack.length - 1; k >= 0; k--) {
      const el = this.stack[k]!;
      if (el.foreign) return false;
      if (el.name === 'select') return true;
      if (el.name !== 'option' && el.name !== 'optgroup') return false;
    }
    return false;
  }

  /** Drops the formatting elements opened since the last marker, and the marker. */
  private clearFormatting(): void {
    if (this.frames.length === 1) return;
    this.frames.pop();
    this.frame = this.frames[this.frames.length - 1]!;
  }

  private isSpecial(el: OpenElement): boolean {
    return (el.flags & (el.foreign ? F_FOREIGN_SPECIAL : F_SPECIAL)) !== 0;
  }

  private openTag(name: string, start: number, end: number, attrs: Record<string, string>, selfClosing: boolean): void {
    this.pos = end;
    this.checkNoscriptEnd(start, end);
    if (this.divergedAt !== -1) return;
    // Inside <template> (which the tokenizer does not treat as raw text) markup is inert.
    if (this.rawText !== undefined) {
      if (this.rawText === 'template') {
        if (name === 'template') this.templateDepth++;
        // a <noscript> in it may hide the </template> from a script-running browser
        else if (name === 'noscript' && this.noscriptUntil === -1) this.openNoscript(end, this.hiddenNow());
        // may be reopened after the template (its end only clears formatting back to the last cell or <object> in it)
        else if ((FLAGS.get(name) ?? 0) & F_FORMATTING && attrs !== NO_ATTRS && (attrs.hidden !== undefined || styleHides(attrs.style))) {
          this.templateHidesFormatting = true;
        }
      }
      return;
    }
    // Whether the tag's own offset is shown: the elements it closes (a <p> before a <div>, SVG before
    // a <p>) are still open there, so a hidden one makes the tag's offset hidden too.
    const before = this.hiddenNow();
    let flags = FLAGS.get(name) ?? 0;
    let inForeign = this.isInForeignContext();
    // SVG/MathML content ends at an HTML element such as <div> or <p>.
    if (inForeign && (flags & F_BREAKOUT || (name === 'font' && (attrs.color ?? attrs.face ?? attrs.size) !== undefined))) {
      while (this.isInForeignContext()) this.pop();
      inForeign = false;
    }
    const foreign = inForeign || name === 'svg' || name === 'math';
    if (foreign) flags = flagsOf(name, true);
    // A "/>" makes an element empty only in SVG/MathML: <div/> opens a div.
    const isVoid = (flags & F_VOID) !== 0 || (selfClosing && foreign);
    if (this.inHead && name !== 'head' && !(flags & F_HEAD_CONTENT)) this.leaveHead();
    if (this.recording && this.collecting) this.tags.push({ name, start, end, kind: isVoid ? 'void' : 'open' });

    if (!inForeign && this.inSelect()) {
      // in a <select>: <input>, <textarea>, another <select> (and table parts, in a table) close it; other tags
      // than options are dropped
      const tablePart = SELECT_IN_TABLE_CLOSERS.has(name);
      if (name === 'input' || name === 'keygen' || name === 'textarea' || name === 'select' || (tablePart && this.stack[this.stack.length - 1]!.tableStart !== -1)) {
        this.closeElement('select');
        if (name === 'select') return;
      } else if (flags & F_RAW_TEXT && name !== 'script' && name !== 'template') {
        // dropped there, so a browser reads on as markup where the tokenizer takes raw text
        this.diverge(start);
        return;
      } else if (name !== 'option' && name !== 'optgroup' && name !== 'hr' && !(flags & F_RAW_TEXT)) return;
    }
    let top = this.stack[this.stack.length - 1];
    if (flags & F_TABLE_INTERNAL) {
      // outside a table, a browser ignores table cells and rows
      if (top === undefined || top.tableStart === -1) return;
      // in a table, they close what was put in front of it ("foster parented")
      while (top?.tableMode && !TABLE_STRUCTURE.has(top.name)) {
        this.pop();
        top = this.stack[this.stack.length - 1];
      }
    }
    if (name === 'form' && !foreign) {
      if (this.formOpen) return;
      this.formOpen = true;
      // in a table (not a cell) a <form> closes nothing and holds nothing: it is closed at once
      if (top?.tableMode) return;
    }
    if (flags & F_CLOSES) this.impliedCloses(name);
    if (flags & F_CLOSES_P && (name !== 'table' || this.standards) && this.openCounts.get('p')) this.closeElement('p');
    if (flags & F_HEADING && this.stack.length > 0 && this.stack[this.stack.length - 1]!.flags & F_HEADING) this.pop();

    // (a hidden <body> or <html> hides everything: no place is better than another)
    const hides =
      foreign ||
      (flags & F_HIDING) !== 0 ||
      (!isVoid && attrs !== NO_ATTRS && name !== 'body' && name !== 'html' && (attrs.hidden !== undefined || styleHides(attrs.style))) ||
      ((name === 'details' || name === 'dialog') && attrs.open === undefined);
    /** Where a signature goes to be in front of this element and shown. */
    const shownBefore = before === -1 ? start : before;

    if (!foreign) {
      if (name === 'body') {
        // A late <body> (after content) only adds its attributes to the body already there.
        if (this.bodyStart !== undefined) return;
        this.bodyStart = before === -1 ? end : before;
        this.inHead = false;
      } else if (name === 'html') {
        this.htmlOpenEnd ??= end;
      } else if (name === 'head') {
        // a <head> after the document's start (or a second one) is dropped by the browser
        const late = this.headSeen || this.bodyStart !== undefined || this.stack.some((el) => el.name !== 'html');
        this.headSeen = true;
        if (late) return;
        this.inHead = true;
      } else if (name === 'noscript' && this.noscriptUntil === -1) {
        this.openNoscript(end, shownBefore);
      }
    }
    if (flags & F_BLOCK) this.lineBreak();

    if (!hides && before === -1 && this.quoteStart === undefined && !this.inHead) this.detectAtOpenTag(name, start, attrs);

    if (!isVoid) {
      const integration =
        foreign &&
        ((flags & F_INTEGRATION) !== 0 || (name === 'annotation-xml' && /^(?:text\/html|application\/xhtml\+xml)$/i.test(attrs.encoding ?? '')));
      this.push(name, flags, start, foreign, hides ? shownBefore : -1, shownBefore, integration);
      if (name === 'noscript' && !foreign && this.noscriptFrom === shownBefore && this.noscriptElement === undefined) {
        this.noscriptElement = this.stack[this.stack.length - 1];
      }
      if (flags & F_FORMATTING) this.addFormatting(name, hides ? shownBefore : -1);
      if (flags & F_RAW_TEXT) {
        this.rawText = name;
        this.rawTextStart = end;
        this.templateDepth = 0;
        this.templateHidesFormatting = false;
      }
    }
    if (flags & F_CONTENT && !hides && !this.inHead && this.hiddenNow() === -1) this.markContent(start);
  }

  private closeTag(name: string, start: number, end: number): void {
    this.pos = end;
    if (this.rawText !== undefined) {
      // a </noscript> in raw text (or in a template's markup) that a script-running browser would see
      if (this.rawText === 'template') this.checkNoscriptEnd(start, end);
      else this.checkNoscriptEnd(this.rawTextStart, start);
      if (this.divergedAt !== -1 || name !== this.rawText) return;
      if (name === 'template' && this.noscriptUntil !== -1) {
        if (start < this.noscriptUntil) return;
        this.outsideHiddenFrom();
      }
      if (name === 'template' && this.templateDepth > 0) {
        this.templateDepth--;
        return;
      }
      if (name === 'template' && this.templateHidesFormatting) {
        const template = this.pop();
        this.rawText = undefined;
        this.diverge(template.start);
        return;
      }
      // "<script><!--<script></script>": a browser reads on
      if (name === 'script' && scriptEndIgnored(this.html.slice(this.rawTextStart, start))) {
        const script = this.pop();
        this.rawText = undefined;
        this.diverge(script.start);
        return;
      }
      this.rawText = undefined;
    }
    this.checkNoscriptEnd(start, end);
    if (this.divergedAt !== -1) return;
    if (this.recording && this.collecting) this.tags.push({ name, start, end, kind: 'close' });
    // </p> and </br> end SVG/MathML content, as HTML start tags do
    if ((name === 'p' || name === 'br') && this.isInForeignContext()) while (this.isInForeignContext()) this.pop();
    // </body> and </html> close nothing: what follows still goes into the open elements.
    if (name === 'body') {
      this.lastBodyClose = this.safePoint(start);
      this.lineBreak();
      return;
    }
    if (name === 'html') {
      this.lastHtmlClose = this.safePoint(start);
      this.lineBreak();
      return;
    }
    if (name === 'head') {
      if (!this.openCounts.get('head')) return;
      this.headEnd ??= end;
      this.inHead = false;
    }
    if (name === 'br') {
      this.lineBreak();
      return;
    }
    if (name === 'form') this.formOpen = false;
    // in a <select> in a table, the table's end tags close the select first
    if (SELECT_IN_TABLE_CLOSERS.has(name) && this.openCounts.get(name) && this.inSelect() && this.stack[this.stack.length - 1]!.tableStart !== -1) {
      this.closeElement('select');
    }
    this.closeElement(name);
    if ((FLAGS.get(name) ?? 0) & F_BLOCK) this.lineBreak();
  }

  /** The elements a start tag closes before it opens, as the browser's tree builder does (besides a `<p>` or heading, see openTag). */
  private impliedCloses(name: string): void {
    switch (name) {
      case 'li':
        this.popTo(LIST_ITEMS, STOP_ITEM);
        break;
      case 'dd':
      case 'dt':
        this.popTo(DEFINITIONS, STOP_ITEM);
        break;
      case 'td':
      case 'th':
        this.popTo(CELLS, STOP_TABLE);
        return;
      case 'tr':
      case 'tbody':
      case 'thead':
      case 'tfoot':
      case 'caption':
      case 'colgroup':
        this.popTo(CELLS, STOP_TABLE);
        this.popTo(ROWS, STOP_TABLE);
        if (name !== 'tr') this.popTo(ROW_GROUPS, STOP_TABLE);
        return;
      case 'option':
      case 'optgroup':
        if (this.stack[this.stack.length - 1]?.name === 'option') this.pop();
        return;
      case 'body':
        if (this.stack[this.stack.length - 1]?.name === 'head') this.pop();
        return;
      case 'button':
        if (this.openCounts.get('button')) this.closeElement('button');
        return;
      case 'a':
        // a second <a> closes the first, as its end tag would
        if (this.findFormatting('a') !== -1) this.closeElement('a');
        return;
      default:
    }
  }

  /** Closes the nearest open element named in `names` unless an element that `stop` names comes first. */
  private popTo(names: ReadonlySet<string>, stop: typeof STOP_ITEM | typeof STOP_TABLE): void {
    const limit = Math.max(0, this.stack.length - MAX_END_TAG_SEARCH);
    for (let k = this.stack.length - 1; k >= limit; k--) {
      const el = this.stack[k]!;
      if (!el.foreign && names.has(el.name)) {
        while (this.stack.length > k) this.pop();
        return;
      }
      if (stop === STOP_TABLE ? el.flags & F_TABLE_SCOPE : this.isSpecial(el) && !ITEM_TRANSPARENT.has(el.name)) return;
    }
  }

  /**
   * An end tag, as a browser applies it: it closes the nearest open element
   * of its name only if no element in between stops it (a table cell, a
   * table, or for most names a block such as `<div>`); otherwise it is
   * ignored. A formatting end tag (`</b>`, `</font>`…) with blocks opened
   * inside the element leaves those blocks open, as the browser's "adoption
   * agency" does.
   */
  private closeElement(name: string): void {
    const flags = FLAGS.get(name) ?? 0;
    const formatting = (flags & F_FORMATTING) !== 0;
    // the usual case: it closes the current element
    if (this.stack.length > 0 && this.stack[this.stack.length - 1]!.name === name) {
      if (formatting) this.removeFormatting(name);
      if (this.pop().flags & F_MARKER && !(flags & F_TABLE_INTERNAL)) this.clearFormatting();
      return;
    }
    const heading = HEADINGS.has(name);
    if (!(this.openCounts.get(name) ?? 0) && !heading) {
      // a formatting element closed earlier by a block: not reopened any more
      if (formatting) this.removeFormatting(name);
      return;
    }
    const tableScope = (flags & F_TABLE_INTERNAL) !== 0 || name === 'table';
    const scoped = (flags & (F_SPECIAL | F_FORMATTING)) !== 0;
    const limit = Math.max(0, this.stack.length - MAX_END_TAG_SEARCH);
    let specialsAbove = 0;
    for (let k = this.stack.length - 1; k >= limit; k--) {
      const el = this.stack[k]!;
      if (el.name === name || (heading && !el.foreign && HEADINGS.has(el.name))) {
        if (formatting) this.removeFormatting(name);
        if (formatting && specialsAbove > 0) this.adopt(k, specialsAbove);
        else if (name === 'form' && k < this.stack.length - 1) {
          // </form> takes only the form off the stack: what was opened inside stays open, inside it
          this.stack.splice(k, 1);
          this.openCounts.set(name, this.openCounts.get(name)! - 1);
        } else {
          while (this.stack.length > k) this.pop();
          if (el.flags & F_MARKER && !(flags & F_TABLE_INTERNAL)) this.clearFormatting();
        }
        return;
      }
      if (this.stopsEndTag(el, name, tableScope, scoped)) return;
      if (this.isSpecial(el)) specialsAbove++;
    }
  }

  /** Whether open element `el` keeps an end tag `name` from closing anything below it. */
  private stopsEndTag(el: OpenElement, name: string, tableScope: boolean, scoped: boolean): boolean {
    if (el.foreign) return !tableScope && (el.flags & F_FOREIGN_SPECIAL) !== 0;
    // in a <select>, only its own end tags apply (</option> and </optgroup> to options in it)
    if (el.name === 'select') return name !== 'select';
    if (tableScope) return (el.flags & F_TABLE_SCOPE) !== 0;
    if (el.flags & F_SCOPE) return true;
    if (name === 'li') return el.name === 'ol' || el.name === 'ul';
    if (name === 'p') return el.name === 'button';
    // any other name (span, label…) cannot close across a block
    return !scoped && (el.flags & F_SPECIAL) !== 0;
  }

  /**
   * `</b>` with blocks opened inside the `<b>`: the browser closes the `<b>`
   * but keeps the blocks (and the formatting elements between) open, moved
   * out of it; other elements above it close. With many blocks it gives up
   * part way and leaves a copy of the `<b>` open: then nothing is closed here.
   */
  private adopt(k: number, specialsAbove: number): void {
    if (specialsAbove >= 8) return;
    const above = this.stack.splice(k);
    for (const el of above) {
      this.openCounts.set(el.name, this.openCounts.get(el.name)! - 1);
      if (el.foreign) this.foreignOpen--;
    }
    for (let j = 1; j < above.length; j++) {
      const el = above[j]!;
      if (!this.isSpecial(el) && !(el.flags & F_FORMATTING)) continue;
      const parent = this.stack[this.stack.length - 1];
      el.tableStart = el.name === 'table' && !el.foreign ? el.start : parent === undefined ? -1 : parent.tableStart;
      el.hiddenFrom = earliest(earliest(parent === undefined ? -1 : parent.hiddenFrom, el.outerHiddenFrom), el.ownHiddenFrom);
      this.stack.push(el);
      this.openCounts.set(el.name, (this.openCounts.get(el.name) ?? 0) + 1);
      if (el.foreign) this.foreignOpen++;
    }
  }

  // ---- formatting elements the browser reopens --------------------------------

  /** Records the number of open links after a tag, when the tag changed it. */
  private noteLinks(): void {
    const links = this.frame.links;
    const last = this.linkCounts.length === 0 ? 0 : this.linkCounts[this.linkCounts.length - 1]!;
    if (links === last && this.linksOpened === this.linksOpenedNoted) return;
    this.linksOpenedNoted = this.linksOpened;
    this.linkChangeAt.push(this.pos);
    this.linkCounts.push(links);
  }

  openLinksAt(offset: number): number {
    const changes = this.changesUpTo(offset);
    return changes === 0 ? 0 : this.linkCounts[changes - 1]!;
  }

  linksChangeBetween(from: number, to: number): boolean {
    return this.changesUpTo(to) > this.changesUpTo(from);
  }

  /** How many link changes were recorded at or before `offset`. */
  private changesUpTo(offset: number): number {
    const at = this.linkChangeAt;
    let lo = 0;
    let hi = at.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (at[mid]! <= offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** `hiddenAt`: where a signature goes to be in front of the element when it hides its content, else -1. */
  private addFormatting(name: string, hiddenAt: number): void {
    const frame = this.frame;
    frame.entries.push({ name, hiddenAt });
    if (name === 'a') {
      frame.links++;
      this.linksOpened++;
    }
    if (hiddenAt !== -1) {
      frame.hiding++;
      if (!frame.stale && (frame.hiddenFrom === -1 || hiddenAt < frame.hiddenFrom)) frame.hiddenFrom = hiddenAt;
    }
  }

  /** Index of the last `name` entry in the current frame (searched a bounded distance back), -1 if none. */
  private findFormatting(name: string): number {
    const entries = this.frame.entries;
    const limit = Math.max(0, entries.length - MAX_END_TAG_SEARCH);
    for (let k = entries.length - 1; k >= limit; k--) if (entries[k]!.name === name) return k;
    return -1;
  }

  private removeFormatting(name: string): void {
    const k = this.findFormatting(name);
    if (k === -1) return;
    const frame = this.frame;
    const [entry] = frame.entries.splice(k, 1);
    if (entry!.name === 'a') frame.links--;
    if (entry!.hiddenAt !== -1) {
      frame.hiding--;
      if (entry!.hiddenAt === frame.hiddenFrom) frame.stale = true;
    }
  }

  /** Where the first hiding formatting element that text here would be put into again starts, -1 if none. */
  private formattingHiddenFrom(): number {
    const frame = this.frame;
    if (frame.hiding === 0) return -1;
    if (frame.stale) {
      frame.stale = false;
      frame.hiddenFrom = -1;
      for (const e of frame.entries) frame.hiddenFrom = earliest(frame.hiddenFrom, e.hiddenAt);
    }
    return frame.hiddenFrom;
  }

  // ---- text -----------------------------------------------------------------

  private text(start: number, end: number, entity: boolean, decoded: string | undefined): void {
    this.pos = end;
    if (this.rawText !== undefined) return;
    const value = decoded ?? this.html.slice(start, end);
    if (this.inHead) {
      if (isBlank(value)) return;
      this.leaveHead();
    }
    // hidden text is neither typed text nor a separator
    if (this.hiddenNow() !== -1) return;
    if (this.collecting) {
      if (this.recording) this.segments.push({ t: this.textLength, len: value.length, s: start, e: end, entity });
      this.textParts.push(value);
      this.textLength += value.length;
    }
    if (isBlank(value)) {
      if (this.line && !this.line.long) this.line.text += value;
      return;
    }
    if (!this.line) {
      const anchor = this.walkOut(start);
      this.line = { text: '', anchor, contentAtStart: this.contentCounter, long: false };
    }
    if (!this.line.long) {
      this.line.text += value;
      if (this.line.text.length > MAX_LINE) this.line.long = true;
    }
    this.markContent(start);
    // Keep reading to the end: a new message's end offset is needed if the reply sits below the quote.
    if (this.quoteKind === 'cite' && this.quoteBlockquoteClosed && !this.openCounts.get('blockquote')) {
      this.bottomPosted = true;
    }
  }

  /** An unclosed <head> ends where body content starts. */
  private leaveHead(): void {
    this.inHead = false;
    const top = this.stack[this.stack.length - 1];
    if (top?.name === 'head') this.pop();
  }

  private markContent(at: number): void {
    this.contentCounter++;
    for (let k = this.stack.length - 1; k >= 0; k--) {
      const el = this.stack[k]!;
      if (el.firstContentAt !== -1) break;
      el.firstContentAt = at;
    }
  }

  /**
   * Moves an insertion point out of the elements that contain nothing before
   * it, so the signature lands in front of the outermost element that begins
   * with the quote (e.g. before the `<div>` wrapping Outlook's header block),
   * but never out of a table cell, list item or the body.
   */
  private walkOut(at: number): number {
    let anchor = at;
    for (let k = this.stack.length - 1; k >= 0; k--) {
      const el = this.stack[k]!;
      if (WALK_STOP.has(el.name) || !el.startShown) break;
      if (el.firstContentAt !== -1 && el.firstContentAt < at) break;
      anchor = el.start;
    }
    return anchor;
  }

  // ---- separators -----------------------------------------------------------

  private detectAtOpenTag(name: string, start: number, attrs: Record<string, string>): void {
    // Some clients write the reply header's marker as a name instead of an id.
    const rawId = attrs.id ?? attrs.name;
    const id = rawId === undefined ? '' : unprefix(cleanAttr(rawId));
    const classes = classesOf(attrs.class);

    const tabindex = cleanAttr(attrs.tabindex);
    if (id === 'appendonsend' || (name === 'hr' && tabindex !== '-1' && id !== 'zwchr')) {
      // Belongs to the quote if the quote follows with no content in between.
      if (!this.prefix || this.prefix.contentCounter !== this.contentCounter) {
        this.prefix = { anchor: this.walkOut(start), contentCounter: this.contentCounter };
      }
      return;
    }

    const strong =
      STRONG_IDS.has(id) ||
      id.startsWith('yahoo_quoted') ||
      classes.some((c) => STRONG_CLASSES.has(c) || c.startsWith('yahoo_quoted') || c.includes('yahoo_quoted')) ||
      (name === 'hr' && (tabindex === '-1' || id === 'zwchr')) ||
      ((name === 'div' || name === 'p' || name === 'span') && isOutlookHeaderStyle(cleanAttr(attrs.style)));
    if (strong) {
      const kind: QuoteKind = classes.some((c) => CITE_CLASSES.has(c)) ? 'cite' : 'block';
      this.foundQuote(this.withPrefix(this.walkOut(start)), kind);
      return;
    }

    if (name === 'blockquote') {
      const isCite = cleanAttr(attrs.type).toLowerCase() === 'cite';
      const attribution = this.precedingAttribution(isCite);
      // A plain <blockquote> without an attribution is the sender's own indentation, not a quote.
      if (attribution !== undefined) this.foundQuote(Math.min(attribution, this.walkOut(start)), 'cite');
      else if (isCite) this.foundQuote(this.walkOut(start), 'cite');
    }
  }

  private withPrefix(anchor: number): number {
    if (this.prefix && this.prefix.contentCounter === this.contentCounter) return Math.min(this.prefix.anchor, anchor);
    return anchor;
  }

  /**
   * The anchor of an attribution line ("On … wrote:") directly above, with no
   * content since. Above a `blockquote type="cite"` (a quote in any case) an
   * attribution without a known leading word ("3 sty 2022 o 10:00 X
   * napisał(a):") or with the verb before the date ("X schrieb am …:") counts
   * too, if it names a date or an address: the signature then goes above it.
   */
  private precedingAttribution(cite: boolean): number | undefined {
    const last = this.lastLine;
    if (!last || last.contentAtEnd !== this.contentCounter) return undefined;
    // No date/address test here (unlike text): a following blockquote already rules out prose.
    if (isAttribution(last.text)) return last.anchor;
    if (cite && (endsWithAttributionVerb(last.text) || isWeakAttribution(last.text)) && attributionLooksGenerated(last.text)) {
      return last.anchor;
    }
    const before = this.lineBeforeLast;
    if (before && startsAttribution(before.text)) {
      const joined = `${before.text.trim()} ${last.text.trim()}`;
      if (isAttribution(joined)) return before.anchor;
    }
    return undefined;
  }

  private foundQuote(anchor: number, kind: QuoteKind): void {
    this.quoteStart = anchor;
    this.quoteKind = kind;
    this.collecting = false;
    this.line = undefined;
    // Outlook/Gmail-style quotes hold the whole rest of the thread: stop here.
    // A blockquote-style quote may be followed by the reply (bottom-posting).
    if (kind === 'block') this.tokenizer.pause();
  }

  // ---- lines ----------------------------------------------------------------

  private lineBreak(): void {
    if (this.collecting) {
      this.textParts.push('\n');
      this.textLength += 1;
    }
    this.endLine();
  }

  private endLine(): void {
    const line = this.line;
    this.line = undefined;
    if (!this.searching) return;
    // Nothing typed since the last boundary. Not treated as a blank line: a
    // close tag followed by an open tag (</p><p>) produces these too.
    if (!line) return;
    const finished: FinishedLine = { text: line.text, anchor: line.anchor, contentAtEnd: this.contentCounter };
    this.lineBeforeLast = this.lastLine;
    this.lastLine = finished;
    if (line.long) {
      this.headerRun = undefined;
      return;
    }
    const text = line.text;
    if (isBannerLine(text) || this.separators?.matches(text)) {
      this.foundQuote(this.withPrefix(line.anchor), 'block');
      return;
    }
    if (isUnderscoreRuler(text)) {
      this.underscoreAnchor = { anchor: line.anchor, contentAtEnd: this.contentCounter };
      this.headerRun = undefined;
      return;
    }
    const key = headerKeyOf(text);
    if (!key) {
      this.headerRun = undefined;
      return;
    }
    if (!this.headerRun) {
      const ruler = this.underscoreAnchor;
      const anchor = ruler && ruler.contentAtEnd === line.contentAtStart ? ruler.anchor : this.withPrefix(line.anchor);
      this.headerRun = { anchor, keys: new Set() };
    }
    this.headerRun.keys.add(key);
    const keys = this.headerRun.keys;
    if (keys.has('from') && (keys.has('sent') || keys.has('to'))) this.foundQuote(this.headerRun.anchor, 'block');
  }

  // ---- results --------------------------------------------------------------

  result(): HtmlScan {
    // a top banner in front of the doctype would put the reader's browser in quirks mode
    const bodyStart = this.bodyStart ?? this.headEnd ?? this.htmlOpenEnd ?? this.doctypeEnd ?? 0;
    const eof = this.divergedAt !== -1 ? this.divergedAt : (this.eofPoint ?? this.html.length);
    const end = this.lastBodyClose >= 0 ? this.lastBodyClose : this.lastHtmlClose >= 0 ? this.lastHtmlClose : eof;
    const html = this.html;
    let detail: HtmlDetail | undefined = this.recording ? { segments: this.segments, tags: this.tags } : undefined;
    return {
      bodyStart,
      end,
      quoteStart: this.quoteStart,
      bottomPosted: this.bottomPosted,
      text: this.textParts.join(''),
      openLinksAt: (offset) => this.openLinksAt(offset),
      linksChangeBetween: (from, to) => this.linksChangeBetween(from, to),
      // the same pass over the same string, recording: the text and the quote come out the same
      detail: () => (detail ??= runScanner(html, true, this.separators).detail()),
    };
  }
}

function runScanner(html: string, recording: boolean, separators: Separators | undefined): HtmlScan {
  // The scanner pauses the tokenizer once the quote is found; the two refer to each other.
  const pauser: { target?: Tokenizer; pause(): void } = { pause: () => pauser.target?.pause() };
  const scanner = new Scanner(html, pauser, recording, separators);
  const tokenizer = new Tokenizer({ decodeEntities: true }, scanner);
  pauser.target = tokenizer;
  try {
    tokenizer.write(html);
    if (tokenizer.running) tokenizer.end();
    return scanner.result();
  } finally {
    forgetLastLine();
  }
}

/** `separators`: the organization's own separator lines (options.separators), if any. */
export function scanHtml(html: string, separators?: Separators): HtmlScan {
  return runScanner(html, false, separators);
}
