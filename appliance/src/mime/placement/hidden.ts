// What hides the content of an element whatever that content's own style is:
// the checks the HTML scan makes so that a signature never lands inside
// something a mail client does not show (see html.ts). Only rules that hide
// every descendant count; tricks that a descendant's own style undoes
// (font-size:0, text colour equal to the background, off-screen positioning)
// are not detected.

/** Every style that hides matches HIDING_HINT, and first this cheaper test (almost no value does). */
const HIDING_QUICK = /hid|opac|isib|isplay\s*:\s*none|clip/i;
const HIDING_HINT =
  /display\s*:\s*none|visibility\s*:\s*(?:hidden|collapse)|opacity\s*:\s*[+-]?[.0]|mso-hide\s*:\s*all|content-visibility\s*:\s*hidden|overflow(?:-[xy])?\s*:[^;]*(?:hidden|clip)/i;
const ZERO_LENGTH = /^[+-]?(?:0+\.?0*|\.0+)(?:[a-z]{1,4}|%)?$/;
const ZERO_NUMBER = /^[+-]?(?:0+\.?0*|\.0+)%?$/;
const IMPORTANT = /\s*!\s*important$/;

/** Reads CSS comments and escapes (`d\isplay`, `\6e one`) the way a browser does before matching. */
function normaliseCss(style: string): string {
  let s = style;
  if (s.includes('/*')) s = s.replace(/\/\*[\s\S]*?(?:\*\/|$)/g, ' ');
  if (s.includes('\\')) {
    s = s.replace(/\\(?:([0-9a-f]{1,6})[ \t\n\r\f]?|([^\n\r\f0-9a-f]))/gi, (_m, hex: string | undefined, ch: string | undefined) => {
      if (ch !== undefined) return ch;
      const cp = Number.parseInt(hex!, 16);
      return cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? '\ufffd' : String.fromCodePoint(cp);
    });
  }
  return s;
}

/**
 * Whether an inline `style` hides the element and everything in it:
 * `display:none`, `visibility:hidden|collapse`, `opacity:0`, Outlook's
 * `mso-hide:all`, `content-visibility:hidden`, or a zero (max-)height or
 * (max-)width with `overflow:hidden|clip`. Declarations are read in order,
 * the last one of a property winning unless an earlier one is `!important`.
 */
export function styleHides(style: string | undefined): boolean {
  if (style === undefined || style.length < 9) return false;
  const source = style.includes('/*') || style.includes('\\') ? normaliseCss(style) : style;
  if (!HIDING_QUICK.test(source) || !HIDING_HINT.test(source)) return false;
  let display = '';
  let visibility = '';
  let opacity = '';
  let msoHide = '';
  let contentVisibility = '';
  let clips = false;
  const size = ['', '', '', ''];
  const important = new Set<string>();
  for (const decl of source.split(';')) {
    const colon = decl.indexOf(':');
    if (colon < 0) continue;
    const prop = decl.slice(0, colon).trim().toLowerCase();
    let value = decl.slice(colon + 1).trim().toLowerCase();
    const bang = IMPORTANT.exec(value);
    if (bang) value = value.slice(0, bang.index);
    else if (important.has(prop)) continue;
    if (bang) important.add(prop);
    switch (prop) {
      case 'display': display = value; break;
      case 'visibility': visibility = value; break;
      case 'opacity': opacity = value; break;
      case 'mso-hide': msoHide = value; break;
      case 'content-visibility': contentVisibility = value; break;
      case 'overflow':
      case 'overflow-x':
      case 'overflow-y': clips = /\b(?:hidden|clip)\b/.test(value); break;
      case 'height': size[0] = value; break;
      case 'max-height': size[1] = value; break;
      case 'width': size[2] = value; break;
      case 'max-width': size[3] = value; break;
      default:
    }
  }
  return (
    display === 'none' ||
    visibility === 'hidden' ||
    visibility === 'collapse' ||
    (opacity !== '' && ZERO_NUMBER.test(opacity)) ||
    msoHide === 'all' ||
    contentVisibility === 'hidden' ||
    (clips && size.some((v) => ZERO_LENGTH.test(v)))
  );
}

// Outlook desktop (Word) reads conditional comments: what sits between
// `<!--[if !mso]><!-->` and `<!--<![endif]-->` (or Word's own `<![if
// !supportLists]>` … `<![endif]>`) is shown by every other reader and hidden
// by Outlook. The condition is evaluated as Word does: it is mso (version 16),
// supports VML and its own features (supportLists…), and is not IE.

const CONDITION_OPEN = /^\s*\[if\s+([^\]]*)\](?:\s*>\s*<!(?:--)?)?\s*$/i;
const CONDITION_END = /^\s*(?:<!)?\[endif\]\s*$/i;

/** For a comment's text: 'hidden' opens a region Outlook hides, 'end' closes one, undefined otherwise. */
export function msoConditional(comment: string): 'hidden' | 'end' | undefined {
  const first = comment.charCodeAt(comment.search(/\S/));
  if (first !== 0x5b && first !== 0x3c) return undefined; // '[' or '<'
  if (CONDITION_END.test(comment)) return 'end';
  const open = CONDITION_OPEN.exec(comment);
  if (!open) return undefined;
  return evaluateCondition(open[1]!) === false ? 'hidden' : undefined;
}

const FEATURE_VERSION: Record<string, number> = { mso: 16, vml: 1 };

/** Evaluates a conditional-comment expression as Outlook desktop would; undefined when it cannot be read. */
export function evaluateCondition(expression: string): boolean | undefined {
  const tokens = expression.toLowerCase().match(/[!()&|]|[a-z][\w.]*|\d+(?:\.\d+)?/g);
  if (!tokens) return undefined;
  let i = 0;
  const term = (): boolean | undefined => {
    const t = tokens[i++];
    if (t === undefined) return undefined;
    if (t === '!') {
      const v = term();
      return v === undefined ? undefined : !v;
    }
    if (t === '(') {
      const v = or();
      if (tokens[i++] !== ')') return undefined;
      return v;
    }
    let op: string | undefined;
    let feature = t;
    if (/^(?:lt|lte|gt|gte)$/.test(t) && tokens[i] !== undefined && /^[a-z]/.test(tokens[i]!)) {
      op = t;
      feature = tokens[i++]!;
    }
    if (!/^[a-z]/.test(feature)) return undefined;
    const supported = feature !== 'ie';
    const version = /^\d/.test(tokens[i] ?? '') ? Number(tokens[i++]) : undefined;
    if (version === undefined) return op === undefined ? supported : undefined;
    if (!supported) return false;
    const mine = FEATURE_VERSION[feature];
    if (mine === undefined) return true;
    switch (op) {
      case 'lt': return mine < version;
      case 'lte': return mine <= version;
      case 'gt': return mine > version;
      case 'gte': return mine >= version;
      default: return Math.trunc(mine) === Math.trunc(version);
    }
  };
  const and = (): boolean | undefined => {
    let v = term();
    while (tokens[i] === '&') {
      i++;
      const w = term();
      v = v === undefined || w === undefined ? undefined : v && w;
    }
    return v;
  };
  const or = (): boolean | undefined => {
    let v = and();
    while (tokens[i] === '|') {
      i++;
      const w = and();
      v = v === undefined || w === undefined ? undefined : v || w;
    }
    return v;
  };
  const value = or();
  return i === tokens.length ? value : undefined;
}

/**
 * Whether a script element's text, up to a `</script>` the tokenizer took as
 * its end, leaves the HTML tokenizer in the "script data double escaped"
 * state (`<!--<script>` … without `-->`), where that `</script>` does not end
 * the element: a browser reads on, as script, past it.
 */
export function scriptEndIgnored(script: string): boolean {
  if (!script.includes('<!--')) return false;
  const lower = script.toLowerCase();
  let state: 'data' | 'escaped' | 'double' = 'data';
  const endsName = (at: number): boolean => {
    const c = lower.charCodeAt(at);
    return Number.isNaN(c) || c === 0x2f || c === 0x3e || c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d;
  };
  for (let k = 0; k < lower.length; k++) {
    if (state === 'data') {
      if (lower.startsWith('<!--', k)) {
        state = 'escaped';
        k += 1; // the dashes also count towards a following "-->" ("<!-->")
      }
    } else if (lower.startsWith('-->', k)) {
      state = 'data';
      k += 2;
    } else if (state === 'escaped' && lower.startsWith('<script', k) && endsName(k + 7)) {
      state = 'double';
      k += 6;
    } else if (state === 'double' && lower.startsWith('</script', k) && endsName(k + 8)) {
      state = 'escaped';
      k += 7;
    }
  }
  return state === 'double';
}
