// Every real-world message of the shared corpus whose body is plain text alone,
// given an HTML alternative: the text part reads as it does without the
// conversion, attachments decode to the same bytes, the HTML holds the snippet
// once and every character the sender wrote, and nothing else qualifies.
import { expect } from 'chai';
import { simpleParser } from 'mailparser';
import { attachmentSums } from './support/check';
import { leafParts, type LeafPart } from './support/parts';
import { itForEachCorpusMessage } from './support/corpus';
import { MARK_HTML_END, MARK_HTML_START, markerEdit, runSurgery } from './support/run';

/**
 * Quote markers at a line's start: the HTML shows quote depth as blockquotes,
 * not as ">" (and a slice after a placeholder keeps its "> " as text), so both
 * sides drop them before they are compared.
 */
const QUOTE_MARKERS = /^[>\s]+/gm;

/** What a reader of the HTML sees, a line at a time, without the inserted snippet, blanks and quote markers. */
function visibleText(html: string): string {
  const body = html.slice(html.indexOf('<body>'));
  const start = body.indexOf(MARK_HTML_START);
  const withoutSnippet = start < 0 ? body : body.slice(0, start) + body.slice(body.indexOf(MARK_HTML_END) + MARK_HTML_END.length);
  return withoutSnippet
    .replace(/[\r\n]/g, '')
    .replace(/<br>|<\/?blockquote[^>]*>/g, '\n')
    .replace(/<[^>]*>/g, '')
    .replace(/&(lt|gt|quot|#39|nbsp|amp);/g, (_m, e: string) => ({ lt: '<', gt: '>', quot: '"', '#39': "'", nbsp: ' ', amp: '&' })[e]!)
    .replace(QUOTE_MARKERS, '')
    .replace(/\s+/g, '');
}

/** The same for the text part: every character but blanks, control characters (the HTML drops those) and quote markers. */
function writtenText(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '').replace(QUOTE_MARKERS, '').replace(/\s+/g, '');
}

describe('mime surgery: corpus, plain text given an HTML alternative', function () {
  let converted = 0;
  const files = itForEachCorpusMessage(async (input) => {
    const plain = await runSurgery(input, markerEdit());
    const r = await runSurgery(input, markerEdit({ textToHtml: true }));
    const htmlParts = r.report.parts.filter((p) => p.converted);
    if (!r.facts?.structure.plainTextOnly || !plain.report.parts.length) {
      // nothing to convert: the output is the edit's own (boundaries aside, there are none)
      expect(htmlParts).to.deep.equal([]);
      expect(r.output.equals(plain.output)).to.equal(true);
      return;
    }
    converted++;
    expect(htmlParts).to.have.length(1);
    // every leaf the edit alone writes is there with the same body, in the same order, plus the new HTML
    const leaves = await leafParts(r.output);
    const generated = leaves.filter((p) => p.contentType === 'text/html' && p.decoded.includes(MARK_HTML_START));
    expect(generated).to.have.length(1);
    const shape = (p: LeafPart): [string, string, string, string] => [p.contentType, p.charset, p.encoding, p.body.toString('latin1')];
    expect(leaves.filter((p) => p !== generated[0]).map(shape)).to.deep.equal((await leafParts(plain.output)).map(shape));
    expect(await attachmentSums(r.output)).to.deep.equal(await attachmentSums(input));
    const html = generated[0].decoded;
    expect(html.split(MARK_HTML_START)).to.have.length(2);
    expect(visibleText(html)).to.equal(writtenText(r.facts.text ?? ''));
    // and an independent reader takes it for the message's HTML body
    expect((await simpleParser(r.output)).html || '').to.include(MARK_HTML_START);
  });
  if (!files) return;

  it('converted some messages', () => {
    expect(converted).to.be.greaterThan(100);
  });
});
