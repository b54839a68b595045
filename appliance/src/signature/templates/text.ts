// The plain-text rendering of an HTML snippet, for templates without a text
// form. html-to-text does the conversion; the converter is compiled once per
// process. Two formatters are ours because the library's anchor and image
// output fits web pages, not signatures: a link shows its target only when the
// text does not already say it (no "alice@contoso.com <mailto:alice@contoso.com>",
// no "+1 555 0100 <tel:+15550100>"), and an image shows its alt text, never a
// cid: or tracking URL.
import { compile, type FormatCallback } from 'html-to-text';

/** What a link looks like in text once scheme, `www.`, trailing slash, spaces and case are ignored. */
function comparable(s: string): string {
  return s
    .toLowerCase()
    .replace(/^(?:https?:\/\/|mailto:|tel:)/, '')
    .replace(/^www\./, '')
    .replace(/[\s/]+$/, '')
    .replace(/\s+/g, '');
}

/** The target to print after a link's text, or '' when the text already says it or the target is not worth printing. */
export function linkTarget(href: string, text: string): string {
  const target = href.trim();
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(target)?.[1]?.toLowerCase();
  if (scheme === 'mailto') {
    const address = target.slice('mailto:'.length).split('?')[0];
    return comparable(text).includes(comparable(address)) ? '' : address;
  }
  if (scheme === 'tel') {
    const digits = (s: string) => s.replace(/[^\d]/g, '');
    // the text may say more than the link dials (a second number, an extension)
    const dialled = digits(target);
    // "+44 (0)20 …" shows a trunk 0 the link does not dial
    const shown = [digits(text), digits(text.replace(/\(\s*0\s*\)/g, ''))];
    return dialled && shown.some((d) => d.includes(dialled)) ? '' : target.slice('tel:'.length);
  }
  if (scheme === 'http' || scheme === 'https') {
    return comparable(text) === comparable(target) ? '' : target;
  }
  // cid:, data:, javascript:, fragments and relative links mean nothing in a text part.
  return '';
}

const formatAnchor: FormatCallback = (elem, walk, builder) => {
  const href = typeof elem.attribs?.href === 'string' ? elem.attribs.href : '';
  let text = '';
  builder.pushWordTransform((word) => {
    text += word;
    return word;
  });
  walk(elem.children, builder);
  builder.popWordTransform();
  const target = linkTarget(href, text);
  if (target) builder.addInline(text ? ` <${target}>` : target, { noWordTransform: true });
};

const formatImage: FormatCallback = (elem, _walk, builder) => {
  const alt = typeof elem.attribs?.alt === 'string' ? elem.attribs.alt.trim() : '';
  if (alt) builder.addInline(alt);
};

const convert = compile({
  // Lines are not hard-wrapped: mail clients wrap text themselves, and the MIME
  // layer's transfer encoding keeps physical lines short.
  wordwrap: false,
  formatters: { signetAnchor: formatAnchor, signetImage: formatImage },
  selectors: [
    { selector: 'a', format: 'signetAnchor' },
    { selector: 'img', format: 'signetImage' },
    // Signatures use a paragraph per line; a blank line between each would double-space them.
    { selector: 'p', options: { leadingLineBreaks: 1, trailingLineBreaks: 1 } },
    { selector: 'h1', options: { uppercase: false } },
    { selector: 'h2', options: { uppercase: false } },
    { selector: 'h3', options: { uppercase: false } },
    { selector: 'h4', options: { uppercase: false } },
    // Signature tables are layout (logo cell beside a text cell), not data: one cell after the other, each on its own lines.
    { selector: 'table', format: 'block', options: { leadingLineBreaks: 1, trailingLineBreaks: 1 } },
    { selector: 'tr', format: 'block', options: { leadingLineBreaks: 1, trailingLineBreaks: 1 } },
    { selector: 'td', format: 'block', options: { leadingLineBreaks: 1, trailingLineBreaks: 1 } },
    { selector: 'th', format: 'block', options: { leadingLineBreaks: 1, trailingLineBreaks: 1 } },
    { selector: 'style', format: 'skip' },
    { selector: 'script', format: 'skip' },
    { selector: 'head', format: 'skip' },
    { selector: 'title', format: 'skip' },
  ],
});

/**
 * Line endings to \n, trailing spaces dropped (except the "-- " signature
 * delimiter), at most one blank line in a row, no blank lines at either end.
 */
export function tidyText(text: string): string {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const out: string[] = [];
  for (const raw of lines) {
    const line = raw.trimEnd();
    if (line === '' && (out.length === 0 || out[out.length - 1] === '')) continue;
    out.push(line === '--' && raw.startsWith('-- ') ? '-- ' : line);
  }
  while (out.length > 0 && out[out.length - 1] === '') out.pop();
  return out.join('\n');
}

/** Plain text of a rendered HTML snippet. */
export function htmlToText(html: string): string {
  // A no-break space (`&nbsp;` keeping "T +1 206…" on one line in HTML) means
  // nothing in plain text, and as a plain space it lets an ASCII text part keep
  // its charset instead of being re-encoded as UTF-8.
  return tidyText(convert(html).replace(/\u00a0/g, ' '));
}
