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
import { Tokenizer, type TokenizerCallbacks } from 'htmlparser2';
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

const P_CLOSERS = [
  'address', 'article', 'aside', 'blockquote', 'center', 'details', 'dir', 'div', 'dl', 'fieldset', 'figcaption',
  'figure', 'footer', 'form', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'header', 'hr', 'main', 'menu', 'nav', 'ol', 'p',
  'pre', 'section', 'table', 'ul',
];
/** Start tags that implicitly close the open element on top of the stack (the HTML parsing rules email actually needs). */
const OPEN_IMPLIES_CLOSE = new Map<string, Set<string>>();
for (const n of P_CLOSERS) OPEN_IMPLIES_CLOSE.set(n, new Set(['p']));
for (const n of ['h1', 'h2', 'h3', 'h4', 'h5', 'h6']) OPEN_IMPLIES_CLOSE.set(n, new Set(['p', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6']));
OPEN_IMPLIES_CLOSE.set('li', new Set(['li', 'p']));
OPEN_IMPLIES_CLOSE.set('dt', new Set(['dt', 'dd', 'p']));
OPEN_IMPLIES_CLOSE.set('dd', new Set(['dt', 'dd', 'p']));
OPEN_IMPLIES_CLOSE.set('td', new Set(['td', 'th']));
OPEN_IMPLIES_CLOSE.set('th', new Set(['td', 'th']));
OPEN_IMPLIES_CLOSE.set('tr', new Set(['tr', 'td', 'th']));
OPEN_IMPLIES_CLOSE.set('tbody', new Set(['tbody', 'thead', 'tfoot', 'tr', 'td', 'th']));
OPEN_IMPLIES_CLOSE.set('tfoot', new Set(['tbody', 'thead', 'tr', 'td', 'th']));
OPEN_IMPLIES_CLOSE.set('option', new Set(['option']));
OPEN_IMPLIES_CLOSE.set('body', new Set(['head']));

/** The attributes separator detection reads (`style` only on the elements whose style it checks). */
const WANTED_ATTRS = new Set(['id', 'name', 'class', 'tabindex', 'style', 'type']);
const MAX_WANTED_ATTR = 8;
const STYLED = new Set(['div', 'p', 'span']);
/** The attributes of a tag that has none of the wanted ones (never written to). */
const NO_ATTRS: Readonly<Record<string, string>> = Object.freeze({});

/** Longest line (in characters) that is classified; separators are short lines. */
const MAX_LINE = 1000;

interface OpenElement {
  name: string;
  /** Offset of the element's `<`. */
  start: number;
  /** Offset of the first content (non-blank text, image…) inside the element, -1 while none. */
  firstContentAt: number;
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
  /** Where the signature goes in a new message: before the last `</body>`, else the last `</html>`, else the end. */
  end: number;
  quoteStart?: number;
  /** Unquoted text follows a blockquote-style quote: the reply was written below it. */
  bottomPosted: boolean;
  /** Decoded text content before the quote (block boundaries as "\n"). */
  text: string;
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
  /** End offset of the last event (text, tag, comment). */
  private pos = 0;

  // Tag being read.
  private tagName = '';
  private tagStart = 0;
  private attrs: Record<string, string> = NO_ATTRS;
  private attrName = '';
  private attrValue = '';

  private rawText: string | undefined;
  private inHead = false;

  bodyStart: number | undefined;
  private headEnd: number | undefined;
  private htmlOpenEnd: number | undefined;
  private lastBodyClose = -1;
  private lastHtmlClose = -1;

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

  constructor(
    private readonly html: string,
    private readonly tokenizer: { pause(): void },
    /** Record text segments and tags (for a placeholder's source range). */
    private readonly recording: boolean,
  ) {}

  // ---- tokenizer callbacks ------------------------------------------------

  onopentagname(start: number, endIndex: number): void {
    this.tagStart = start - 1;
    this.tagName = this.html.slice(start, endIndex).toLowerCase();
    this.attrs = NO_ATTRS;
  }
  onattribname(start: number, endIndex: number): void {
    this.attrValue = '';
    // Only the attributes separator detection reads are kept (long style values are
    // most of a tag). Not `searching`: an unclosed head ends at this very tag, in openTag.
    const name = endIndex - start <= MAX_WANTED_ATTR && this.quoteStart === undefined ? this.html.slice(start, endIndex).toLowerCase() : '';
    this.attrName = WANTED_ATTRS.has(name) && (name !== 'style' || STYLED.has(this.tagName)) ? name : '';
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
  }
  onselfclosingtag(endIndex: number): void {
    this.openTag(this.tagName, this.tagStart, endIndex + 1, this.attrs, true);
  }
  onclosetag(start: number, endIndex: number): void {
    const name = this.html.slice(start, endIndex).toLowerCase();
    const gt = this.html.indexOf('>', endIndex);
    this.closeTag(name, start - 2, gt === -1 ? this.html.length : gt + 1);
  }
  ontext(start: number, endIndex: number): void {
    this.text(start, endIndex, false, undefined);
  }
  ontextentity(codepoint: number, endIndex: number): void {
    const amp = this.html.lastIndexOf('&', endIndex - 1);
    this.text(amp >= this.pos ? amp : this.pos, endIndex, true, String.fromCodePoint(codepoint));
  }
  oncomment(_start: number, endIndex: number): void {
    this.pos = endIndex + 1;
  }
  oncdata(_start: number, endIndex: number): void {
    this.pos = endIndex + 1;
  }
  ondeclaration(_start: number, endIndex: number): void {
    this.pos = endIndex + 1;
  }
  onprocessinginstruction(_start: number, endIndex: number): void {
    this.pos = endIndex + 1;
  }
  onend(): void {
    this.endLine();
  }

  // ---- structure ------------------------------------------------------------

  private get searching(): boolean {
    return this.quoteStart === undefined && !this.inHead && this.rawText === undefined;
  }

  private push(name: string, start: number): void {
    this.stack.push({ name, start, firstContentAt: -1 });
    this.openCounts.set(name, (this.openCounts.get(name) ?? 0) + 1);
  }

  private pop(): OpenElement {
    const el = this.stack.pop()!;
    this.openCounts.set(el.name, this.openCounts.get(el.name)! - 1);
    if (el.name === 'blockquote' && this.quoteKind === 'cite' && !this.openCounts.get('blockquote')) {
      this.quoteBlockquoteClosed = true;
    }
    return el;
  }

  private openTag(name: string, start: number, end: number, attrs: Record<string, string>, selfClosing: boolean): void {
    this.pos = end;
    // Inside <template> (which the tokenizer does not treat as raw text) markup is inert.
    if (this.rawText !== undefined) return;
    const isVoid = VOID.has(name) || selfClosing;
    if (this.inHead && name !== 'head' && !HEAD_CONTENT.has(name)) this.leaveHead();
    if (this.recording && this.collecting) this.tags.push({ name, start, end, kind: isVoid ? 'void' : 'open' });

    const closes = OPEN_IMPLIES_CLOSE.get(name);
    if (closes) while (this.stack.length > 0 && closes.has(this.stack[this.stack.length - 1]!.name)) this.pop();

    if (name === 'body') {
      this.bodyStart ??= end;
      this.inHead = false;
    } else if (name === 'html') {
      this.htmlOpenEnd ??= end;
    } else if (name === 'head') {
      this.inHead = !selfClosing;
    }
    if (BLOCK.has(name) || name === 'br') this.lineBreak();

    if (this.searching) this.detectAtOpenTag(name, start, attrs);

    if (!isVoid) {
      this.push(name, start);
      if (RAW_TEXT.has(name)) this.rawText = name;
    }
    if (CONTENT_ELEMENTS.has(name) && !this.inHead) this.markContent(start);
  }

  private closeTag(name: string, start: number, end: number): void {
    this.pos = end;
    if (this.rawText !== undefined) {
      if (name !== this.rawText) return;
      this.rawText = undefined;
    }
    if (this.recording && this.collecting) this.tags.push({ name, start, end, kind: 'close' });
    if (name === 'body') this.lastBodyClose = start;
    else if (name === 'html') this.lastHtmlClose = start;
    else if (name === 'head') {
      this.headEnd ??= end;
      this.inHead = false;
    }
    if (name === 'br') {
      this.lineBreak();
      return;
    }
    if ((this.openCounts.get(name) ?? 0) > 0) {
      // Pops are amortised: each element is pushed and popped once.
      while (this.pop().name !== name) {
        /* implied close of the elements left open inside */
      }
    }
    if (BLOCK.has(name)) this.lineBreak();
  }

  private text(start: number, end: number, entity: boolean, decoded: string | undefined): void {
    this.pos = end;
    if (this.rawText !== undefined) return;
    const value = decoded ?? this.html.slice(start, end);
    if (this.inHead) {
      if (isBlank(value)) return;
      this.leaveHead();
    }
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
      if (WALK_STOP.has(el.name)) break;
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
    if (isBannerLine(text)) {
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
    const bodyStart = this.bodyStart ?? this.headEnd ?? this.htmlOpenEnd ?? 0;
    const end = this.lastBodyClose >= 0 ? this.lastBodyClose : this.lastHtmlClose >= 0 ? this.lastHtmlClose : this.html.length;
    const html = this.html;
    let detail: HtmlDetail | undefined = this.recording ? { segments: this.segments, tags: this.tags } : undefined;
    return {
      bodyStart,
      end,
      quoteStart: this.quoteStart,
      bottomPosted: this.bottomPosted,
      text: this.textParts.join(''),
      // the same pass over the same string, recording: the text and the quote come out the same
      detail: () => (detail ??= runScanner(html, true).detail()),
    };
  }
}

function runScanner(html: string, recording: boolean): HtmlScan {
  // The scanner pauses the tokenizer once the quote is found; the two refer to each other.
  const pauser: { target?: Tokenizer; pause(): void } = { pause: () => pauser.target?.pause() };
  const scanner = new Scanner(html, pauser, recording);
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

export function scanHtml(html: string): HtmlScan {
  return runScanner(html, false);
}
