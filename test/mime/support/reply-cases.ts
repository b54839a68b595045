// Plain-text reply cases shared by the placement tests: a reply built from new
// text and a quoted part, and the check that the signature goes between them.
import { expect } from 'chai';
import { findQuoteStartText, placeInText } from '../../../appliance/src/mime/placement';

export const PH = '{{signature}}';

export interface LocalCase {
  lang: string;
  quote: string;
}

/** A reply: new text, one blank line, then the quoted part. `at` must be right after the new text's line break. */
export function reply(newText: string, quote: string, eol = '\n'): { text: string; at: number; quoteStart: number } {
  const head = newText.split('\n').join(eol) + eol;
  const text = head + eol + quote.split('\n').join(eol);
  return { text, at: head.length, quoteStart: head.length + eol.length };
}

/** One test per case and line ending: the quote is found where it starts, the signature goes right above it. */
export function itPlacesAboveQuote(groups: Array<[string, LocalCase[]]>, title: (kind: string, c: LocalCase, eol: string) => string): void {
  for (const [kind, cases] of groups) {
    for (const c of cases) {
      for (const eol of ['\n', '\r\n']) {
        it(title(kind, c, eol === '\n' ? 'LF' : 'CRLF'), () => {
          const { text, at, quoteStart } = reply('Thanks!\n\nKim', c.quote, eol);
          const r = placeInText(text, PH);
          expect(r.placement).to.equal('above-quote');
          expect(r.at).to.equal(at);
          expect(r.quoteStart).to.equal(quoteStart);
          expect(findQuoteStartText(text)).to.equal(quoteStart);
        });
      }
    }
  }
}
