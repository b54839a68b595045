// Helpers templates call on untrusted directory values. They decide what may
// become a link; ejs's `<%=` escaping then keeps the value inside its
// attribute. Both layers are needed: escaping alone would let
// `javascript:alert(1)` through as a perfectly escaped href.

const ALLOWED_SCHEMES = new Set(['http', 'https', 'mailto', 'tel']);

// C0/C1 controls, every invisible format character (zero-width, soft hyphen,
// bidi marks, embeddings and isolates, tags), line/paragraph separators:
// browsers strip or ignore some of these inside a scheme (`java\tscript:`), the
// others reorder or hide what a reader sees, so a value holding any of them is
// refused rather than cleaned.
const SUSPICIOUS_CHARS = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

const SCHEME = /^([a-z][a-z0-9+.-]*):/i;

// A bare host name with an optional port and path (`www.contoso.com/jobs`), as
// people type a website into a directory field; it gets `https://`.
const BARE_HOST = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.[a-z]{2,63}(?::\d{1,5})?(?:[/?#][^\s"'<>\\`]*)?$/i;

/**
 * The value as a link target if it is an http, https, mailto or tel URL (after
 * trimming), `https://` + the value if it is a bare host name, else ''.
 * Entity tricks (`&#106;avascript:`) have no valid scheme and are refused;
 * control characters anywhere refuse the value.
 */
export function safeUrl(value: unknown): string {
  if (value === undefined || value === null) return '';
  const text = String(value).trim();
  if (!text || SUSPICIOUS_CHARS.test(text)) return '';
  const scheme = SCHEME.exec(text);
  if (scheme) {
    const name = scheme[1].toLowerCase();
    if (!ALLOWED_SCHEMES.has(name)) return '';
    if (name === 'http' || name === 'https') {
      // An authority is required (`https:foo` and `http:///x` are refused) and must parse. It may not
      // carry a user name: `https://www.contoso.com@evil.example/` reads as contoso and goes elsewhere.
      // No backslash either: browsers read it as `/`, other readers do not (`https://evil.example\@contoso.com`).
      if (!/^https?:\/\/[^/\\?#]/i.test(text) || text.includes('\\')) return '';
      if (text.slice(text.indexOf('//') + 2).split(/[/?#]/, 1)[0]!.includes('@')) return '';
      try {
        if (!new URL(text).hostname) return '';
      } catch {
        return '';
      }
    }
    return text;
  }
  return BARE_HOST.test(text) ? `https://${text}` : '';
}

/**
 * `tel:` + the digits of the value (a leading + kept), or '' when it has no
 * digits. Of several numbers (Graph's businessPhones arrive joined with ", ";
 * people write "… / +44 …" or "… or …") the first is dialled; a label in front
 * ("Tel +44 …", "Mobile: …") is left out, and an extension (`x23`, `ext. 23`,
 * `;ext=23`) becomes `;ext=23` (RFC 3966) instead of more digits of the number,
 * whatever follows it. A `(0)` after the country code (`+44 (0)20 …`) is not
 * dialled. A slash inside a national number (`0170 / 1234567`) stays part of it.
 */
export function telHref(value: unknown): string {
  if (value === undefined || value === null) return '';
  // a phone field is short: a long value is not read further than a number needs
  const text = String(value).slice(0, 200).replace(/;\s*ext\s*=\s*/gi, ' ext ');
  const first = text.split(NUMBER_SEPARATOR).map((s) => s.trim()).find((s) => /\d/.test(s)) ?? '';
  const from = first.search(/[+(\d]/);
  const number = from > 0 ? first.slice(from) : first;
  const firstDigit = number.search(/\d/);
  let written = number;
  let extension = '';
  for (const m of number.matchAll(EXTENSION)) {
    if (m.index <= firstDigit) continue;
    written = number.slice(0, m.index);
    extension = m[1]!;
    break;
  }
  // "+44 (0)20 …": the bracketed 0 is the trunk prefix, dialled only from inside the country, never after its code.
  const dialled = written.startsWith('+') ? written.replace(/\(\s*0\s*\)/, '') : written;
  const digits = dialled.replace(/\D/g, '');
  if (!digits) return '';
  return `tel:${dialled.startsWith('+') ? '+' : ''}${digits}${extension ? `;ext=${extension}` : ''}`;
}

/** Between two numbers in one field: a comma, semicolon or bar, a slash before another international number, "or" and its translations. */
const NUMBER_SEPARATOR = /[,;|]|\/(?=\s*\+)|\s(?:or|oder|ou|eller)\s/i;
const EXTENSION = /\s*(?:ext\.?|extension|(?<![a-z])x|#)\s*(\d+)/gi;

/** `<%=` in text forms: no HTML escaping (AT&T stays AT&T), null/undefined print nothing. */
export function textEscape(value: unknown): string {
  return value === undefined || value === null ? '' : String(value);
}
