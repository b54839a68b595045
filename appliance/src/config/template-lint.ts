// Refuses the few HTML template constructs where escaping cannot protect a
// directory value: HTML escaping keeps a value inside a quoted attribute or
// text, but not inside a script, an event handler (the browser decodes
// entities before running it), an unquoted attribute, a style attribute (CSS
// has its own syntax: url(), expressions), a URL attribute whose scheme the
// value itself chooses (`javascript:`), or raw output (<%-), which an alias
// of a directory value would get past any name check.
// A tokenizer would be exact; these regular expressions look only at open tags
// of trusted admin templates, where a false alarm is a clear error at load time.
// The configuration loader runs them, so `signet config validate` and `seal`
// refuse what a node would refuse.

export interface LintProblem {
  line: number;
  message: string;
}

const URL_ATTRIBUTES = new Set([
  'href', 'src', 'background', 'action', 'formaction', 'poster', 'cite', 'xlink:href', 'srcset', 'lowsrc', 'dynsrc',
  // object/applet/embed, a link's ping, and older or rarer URL attributes
  'data', 'codebase', 'archive', 'classid', 'ping', 'longdesc', 'usemap', 'manifest', 'icon', 'profile',
]);
/** URL attributes that hold a list (space- or comma-separated). */
const URL_LIST_ATTRIBUTES = new Set(['srcset', 'ping', 'archive']);
// SVG animation (<set>, <animate>) writes these into another attribute, which may be an href.
const ANIMATION_VALUE_ATTRIBUTES = new Set(['to', 'from', 'by', 'values']);
/** Expressions that are, as a whole, one vetted URL: url(…), tel(…), image('id'), photo(), images.id, images['id']. */
const SAFE_URL_EXPRESSION = /^\s*(?:(?:url|tel|image|photo)\s*\((?:[^()]|\([^()]*\))*\)|images\s*(?:\.\s*[A-Za-z0-9_]+|\[\s*(['"])[^'"]*\1\s*\]))\s*;?\s*$/;

function lineAt(source: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (source.charCodeAt(i) === 10) line++;
  return line;
}

export function lintHtmlTemplate(source: string): LintProblem | undefined {
  const script = /<script\b/i.exec(source);
  if (script) return { line: lineAt(source, script.index), message: 'script elements are not allowed in signatures (mail clients do not run them, and a value written into one is not protected by escaping)' };
  const raw = /<%-(?!\s*include\s*\()/.exec(source); // include() gets its own, clearer refusal
  if (raw) return { line: lineAt(source, raw.index), message: 'raw output <%- is not allowed in HTML templates: write values with <%= (escaped)' };

  const codeName = /<<%(?!%)/.exec(source);
  if (codeName) return { line: lineAt(source, codeName.index), message: 'a tag whose name is written by <% %> code is not allowed: its attributes could not be checked; write the tag name as text' };
  // EJS compiles `<% … %>` code into calls of its output function: calling it directly writes a value unescaped, as <%- does
  const append = /<%(?:[^%]|%(?!>))*?\b__(?:append|output)\b/.exec(source);
  if (append) return { line: lineAt(source, append.index), message: 'EJS\'s output function (__append, __output) is not allowed in templates: write values with <%= (escaped)' };

  // A style element is CSS like a style attribute: a value there could hide the
  // disclaimer or fetch url(…)s, and escaping does not stop either.
  for (const style of source.matchAll(STYLE_ELEMENT)) {
    const value = /<%[=-]/.exec(style[1]);
    if (value) return { line: lineAt(source, style.index + style[0].length - style[1].length + value.index), message: 'a style element takes a value from <%= %>: CSS is not protected by HTML escaping; use fixed styles and put the value in the text' };
  }

  // Open tags, with EJS tags and quoted attribute values inside them kept whole
  // (`<%` … `%>` and `title="a > b"` may contain `>`).
  let coveredTo = 0;
  for (const start of source.matchAll(TAG_START)) {
    if (start.index < coveredTo) continue;
    OPEN_TAG.lastIndex = start.index;
    const tag = OPEN_TAG.exec(source);
    if (!tag) {
      // a quote opened in the tag that never closes: the browser would read the rest of the template as its value
      const quoteAt = unclosedQuoteAt(source, start.index);
      if (quoteAt >= 0) return { line: lineAt(source, quoteAt), message: `an attribute value's ${source[quoteAt] === '"' ? 'double' : 'single'} quote is never closed: the rest of the template would be read as its value` };
      continue;
    }
    coveredTo = start.index + tag[0].length;
    const problem = lintOpenTag(tag[0]);
    if (problem) return { line: lineAt(source, tag.index + problem.offset), message: problem.message };
  }
  return undefined;
}

// Each alternative starts differently and an EJS tag ends at its first `%>`, so these
// match in one pass: no input makes them try the same text two ways (an unclosed quote
// used to cost exponential time in the number of EJS tags after it).
const EJS_TAG = '<%(?:[^%]|%(?!>))*%>';
const DOUBLE_QUOTED = `"(?:${EJS_TAG}|[^"<]|<(?!%))*"`;
const SINGLE_QUOTED = `'(?:${EJS_TAG}|[^'<]|<(?!%))*'`;
const TAG_START = /<[a-zA-Z]/g;
const TAG_BODY = `<[a-zA-Z][a-zA-Z0-9-]*(?:${EJS_TAG}|${DOUBLE_QUOTED}|${SINGLE_QUOTED}|[^<>"'])*`;
const OPEN_TAG = new RegExp(`${TAG_BODY}>`, 'y');
const STYLE_ELEMENT = new RegExp(`<style\\b(?:${EJS_TAG}|[^<>])*>((?:(?!<\\/style\\s*>)[\\s\\S])*)`, 'gi');

/** Where a tag starting at `from` opens a quote that is never closed, or -1 (the tag ends, or stops at a stray `<`). */
function unclosedQuoteAt(source: string, from: number): number {
  const skipEjs = (i: number): number => {
    const close = source.indexOf('%>', i + 2);
    return close < 0 ? source.length : close + 2;
  };
  for (let i = from + 1; i < source.length; ) {
    const c = source[i];
    if (c === '<') {
      if (source[i + 1] !== '%') return -1;
      i = skipEjs(i);
    } else if (c === '>') return -1;
    else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < source.length && source[j] !== c) j = source.startsWith('<%', j) ? skipEjs(j) : j + 1;
      if (j >= source.length) return i;
      i = j + 1;
    } else i++;
  }
  return -1;
}

/** A piece of an attribute value: literal template text, or an EJS tag (`output` for `<%=`/`<%-`). */
type ValuePiece = { literal: string } | { code: string; output: boolean };

/**
 * Walks one open tag attribute by attribute, as a browser would read the
 * rendered tag, with every EJS tag as one opaque piece. A value from `<%=`
 * is safe only inside a quoted attribute value (escaping keeps it there);
 * anywhere else in the tag (unquoted value, attribute name, between
 * attributes) a space or `=` in the value makes new attributes. Code tags
 * (`<% if (…) { %>`) may sit anywhere: they output nothing themselves.
 */
function lintOpenTag(tag: string): { offset: number; message: string } | undefined {
  const nameEnd = /^<[a-zA-Z][a-zA-Z0-9-]*/.exec(tag)![0].length;
  const element = tag.slice(1, nameEnd).toLowerCase();
  type State = 'between' | 'name' | 'afterName' | 'beforeValue' | 'quoted' | 'unquoted';
  let state: State = 'between';
  let name = '';
  let nameAt = 0;
  let quote = '';
  // blocks opened by code tags in this tag (`<% if (…) { %>`): a quote must close at the depth it opened
  let depth = 0;
  let quoteDepth = 0;
  let pieces: ValuePiece[] = [];
  const finish = (): { offset: number; message: string } | undefined => {
    const problem = lintAttribute(element, name, pieces);
    pieces = [];
    return problem ? { offset: nameAt, message: problem } : undefined;
  };
  for (let i = nameEnd; i < tag.length; ) {
    if (tag.startsWith('<%', i) && !tag.startsWith('<%%', i)) {
      const close = tag.indexOf('%>', i + 2);
      const end = close < 0 ? tag.length : close + 2;
      const flag = tag[i + 2];
      const output = flag === '=' || flag === '-';
      const code = tag.slice(i + (output || flag === '_' || flag === '#' ? 3 : 2), close < 0 ? tag.length : close).replace(/[-_]$/, '');
      if (!output) depth += (code.match(/\{/g)?.length ?? 0) - (code.match(/\}/g)?.length ?? 0);
      if (state === 'quoted') {
        pieces.push({ code, output });
      } else if (output) {
        if (state === 'beforeValue' || state === 'unquoted') {
          return { offset: nameAt, message: `attribute ${name} takes a value from <%= %> without quotes; write ${name}="<%= … %>"` };
        }
        return { offset: i, message: 'a value from <%= %> stands in a tag outside a quoted attribute value, where it could add attributes; write name="<%= … %>"' };
      }
      i = end;
      continue;
    }
    const c = tag[i];
    const space = /[\s]/.test(c);
    switch (state) {
      case 'between':
        if (!space && c !== '/' && c !== '>') {
          state = 'name';
          name = c;
          nameAt = i;
        }
        break;
      case 'name':
        if (c === '=') state = 'beforeValue';
        else if (space) state = 'afterName';
        else if (c === '/' || c === '>') {
          const problem = finish();
          if (problem) return problem;
          state = 'between';
        } else name += c;
        break;
      case 'afterName':
        if (c === '=') state = 'beforeValue';
        else if (!space) {
          const problem = finish();
          if (problem) return problem;
          state = c === '/' || c === '>' ? 'between' : 'name';
          name = c;
          nameAt = i;
        }
        break;
      case 'beforeValue':
        if (c === '"' || c === "'") {
          state = 'quoted';
          quote = c;
          quoteDepth = depth;
        } else if (c === '>') {
          const problem = finish();
          if (problem) return problem;
          state = 'between';
        } else if (!space) {
          state = 'unquoted';
          pieces.push({ literal: c });
        }
        break;
      case 'quoted':
        if (c === quote) {
          if (depth !== quoteDepth) return { offset: i, message: `a quote of attribute ${name} is written inside a condition (<% if … { %>) that the other is not: when it is false, the value stands unquoted; put the whole attribute inside the condition` };
          const problem = finish();
          if (problem) return problem;
          state = 'between';
        } else pieces.push({ literal: c });
        break;
      case 'unquoted':
        if (space || c === '>') {
          const problem = finish();
          if (problem) return problem;
          state = 'between';
        } else pieces.push({ literal: c });
        break;
    }
    i++;
  }
  if (state !== 'between') return finish();
  return undefined;
}

/** The problem with one attribute and its value, or undefined. */
function lintAttribute(element: string, rawName: string, pieces: readonly ValuePiece[]): string | undefined {
  const name = rawName.toLowerCase();
  if (/^on[a-z]+$/.test(name)) return `event handler attribute ${rawName} is not allowed in signatures`;
  const outputs = pieces.filter((p): p is { code: string; output: boolean } => 'code' in p && p.output);
  if (outputs.length === 0) return undefined;
  if (name === 'style') return 'a style attribute takes a value from <%= %>: CSS is not protected by HTML escaping; use a fixed style and put the value in the text';
  // the browser decodes the escaping first, then reads the value as markup or as a redirect
  if (name === 'srcdoc') return 'attribute srcdoc takes a value from <%= %>: its value is a whole HTML document, which escaping does not protect';
  if (element === 'meta' && name === 'content') return 'a meta element takes its content from <%= %>: it can redirect the reader (http-equiv="refresh"); use fixed content';
  if (ANIMATION_VALUE_ATTRIBUTES.has(name)) return `attribute ${rawName} takes a value from <%= %>: SVG animation writes it into another attribute, such as a link's href; use a fixed value`;
  // a space or comma in the value starts another URL of the list, whatever fixed the first one's scheme
  if (URL_LIST_ATTRIBUTES.has(name)) return `attribute ${rawName} takes a value from <%= %>: it holds a list of URLs, which a value could extend with one of its own; use a fixed value`;
  if (!URL_ATTRIBUTES.has(name)) return undefined;
  // The scheme is fixed by literal text: at the start of the value (before any
  // EJS tag), or right before the value (since the previous EJS tag, so not
  // left behind by a condition): `https://…<%= %>`, `mailto:<%= %>`, `/path?<%= %>`.
  const fixes = (text: string) => /:|^\s*[/?#.]/.test(text);
  const firstTag = pieces.findIndex((p) => 'code' in p);
  const leading = pieces.slice(0, firstTag < 0 ? pieces.length : firstTag).map((p) => ('literal' in p ? p.literal : '')).join('');
  if (fixes(leading)) return undefined;
  let since = '';
  for (const piece of pieces) {
    if ('literal' in piece) {
      since += piece.literal;
      continue;
    }
    if (piece.output && !fixes(since) && !SAFE_URL_EXPRESSION.test(piece.code)) {
      return `attribute ${rawName} starts with a value from <%= %>; wrap it in url(…), tel(…), image(…) or photo() so a directory value cannot choose a javascript: URL`;
    }
    since = '';
  }
  return undefined;
}
