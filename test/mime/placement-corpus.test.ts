// Real client output from the shared corpus: talon's standard replies (one per
// client) decoded with mailparser as an independent reader, then placed.
import { expect } from 'chai';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { placeInHtml, placeInText } from '../../appliance/src/mime/placement';
import type { Placement } from '../../appliance/src/mime/types';

const CORPUS = process.env.SIGNET_CORPUS ?? path.resolve(__dirname, '../../../shared/corpus');
const PH = '{{signature}}';

interface Expectation {
  file: string;
  text?: Placement;
  html?: Placement;
  /** Text of the reply that must stay above the signature. */
  typed: string;
  /** Same, for the HTML part when it differs from the text part. */
  typedHtml?: string;
}

// The talon fixtures reply "Hello" (Sparrow: "Hello" + its own "-- " signature) to "Hi".
const TALON: Expectation[] = [
  { file: 'standard_replies__android.eml', text: 'above-quote', html: 'above-quote', typed: 'Hello' },
  { file: 'standard_replies__aol.eml', text: 'above-quote', html: 'above-quote', typed: 'Hello' },
  { file: 'standard_replies__apple_mail.eml', text: 'above-quote', typed: 'Hello' },
  { file: 'standard_replies__apple_mail_2.eml', text: 'above-quote', typed: 'Hello' },
  { file: 'standard_replies__comcast.eml', text: 'above-quote', html: 'above-quote', typed: 'Hello' },
  { file: 'standard_replies__gmail.eml', text: 'above-quote', html: 'above-quote', typed: 'Hello' },
  { file: 'standard_replies__hotmail.eml', text: 'above-quote', html: 'above-quote', typed: 'Hello' },
  { file: 'standard_replies__iphone.eml', text: 'above-quote', typed: 'Sent from my iPhone' },
  { file: 'standard_replies__outlook.eml', text: 'above-quote', html: 'above-quote', typed: 'Hello', typedHtml: 'Follow up MIME!' },
  { file: 'standard_replies__sparrow.eml', text: 'above-quote', html: 'above-quote', typed: 'Sent with' },
  // Bottom-posted: "Hello" is below the quote.
  { file: 'standard_replies__thunderbird.eml', text: 'end', typed: 'Hello' },
  { file: 'standard_replies__yahoo.eml', text: 'above-quote', typed: 'Hello' },
];

describe('mime/placement: real client replies from the corpus', function () {
  before(function () {
    if (!existsSync(path.join(CORPUS, 'mailgun-talon'))) this.skip();
  });

  for (const c of TALON) {
    it(`${c.file}: text ${c.text ?? '-'}, html ${c.html ?? '-'}`, async () => {
      const parsed = await simpleParser(readFileSync(path.join(CORPUS, 'mailgun-talon', c.file)));
      if (c.text) {
        const text = parsed.text ?? '';
        const r = placeInText(text, PH);
        expect(r.placement, `text placement in ${JSON.stringify(text)}`).to.equal(c.text);
        if (c.text === 'above-quote') {
          expect(text.slice(0, r.at)).to.contain(c.typed === 'Sent with' ? 'Sparrow' : c.typed);
          expect(text.slice(r.at)).to.contain('Hi');
          expect(r.quoteStart).to.be.at.least(r.at);
          expect(text.slice(r.quoteStart!).trimStart()).to.match(/^(?:On |>|-----|From:|.*написал|\d)/);
        }
      }
      if (c.html) {
        const html = typeof parsed.html === 'string' ? parsed.html : '';
        const r = placeInHtml(html, PH);
        expect(r.placement, 'html placement').to.equal(c.html);
        expect(html.slice(0, r.at)).to.contain(c.typedHtml ?? (c.typed === 'Sent with' ? 'Sparrow' : c.typed));
        expect(html.slice(r.at)).to.match(/Hi/);
      }
    });
  }

  it('every corpus message body: placement never throws and stays within bounds', async function () {
    const files: string[] = [];
    for (const dir of readdirSync(CORPUS, { withFileTypes: true })) {
      if (!dir.isDirectory()) continue;
      for (const f of readdirSync(path.join(CORPUS, dir.name))) if (f.endsWith('.eml')) files.push(path.join(CORPUS, dir.name, f));
    }
    expect(files.length).to.be.greaterThan(100);
    let checked = 0;
    for (const file of files) {
      let parsed;
      try {
        parsed = await simpleParser(readFileSync(file));
      } catch {
        continue; // mailparser's own limits; the MIME engine's corpus test covers these files
      }
      const html = typeof parsed.html === 'string' ? parsed.html : undefined;
      const text = parsed.text;
      if (html !== undefined) {
        const r = placeInHtml(html, PH);
        expect(r.at + r.removeLength, file).to.be.at.most(html.length);
        expect(r.bodyStart, file).to.be.within(0, html.length);
        // before </body> or </html>, at the end, or in front of what would hide the signature there (always a tag)
        if (r.placement === 'end') expect(r.at === html.length || html[r.at] === '<', file).to.equal(true);
        checked++;
      }
      if (text !== undefined) {
        const r = placeInText(text, PH);
        expect(r.at + r.removeLength, file).to.be.at.most(text.length);
        if (r.placement === 'above-quote') expect(r.at === 0 || text[r.at - 1] === '\n', file).to.equal(true);
        checked++;
      }
    }
    expect(checked).to.be.greaterThan(100);
  });
});
