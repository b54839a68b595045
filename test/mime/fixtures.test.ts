// Hand-made messages in the shapes real clients send (test/fixtures/mime/).
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { attachmentSums, surgeryChecked } from './support/check';
import { partOf } from './support/parts';
import { MARK_HTML_START, MARK_TEXT_START, markerEdit, runSurgery } from './support/run';

const fixture = (name: string): Buffer => readFileSync(path.resolve(__dirname, '../fixtures/mime', name));

describe('mime surgery: client fixtures', () => {
  it('Outlook desktop reply, related(alternative(text, html), image), windows-1252 quoted-printable', async () => {
    const input = fixture('outlook-reply-related.eml');
    const images = [{ cid: 'logo.1@signet', contentType: 'image/png', filename: 'logo.png', data: Buffer.from('89504e47', 'hex') }];
    const r = await surgeryChecked(input, markerEdit({ images, html: `${MARK_HTML_START}<img src="cid:logo.1@signet"> Jane \u2013 Contoso SIGNET-HTML-END</div>` }));
    expect(r.report.parts.map((p) => [p.contentType, p.placement, p.charset, p.transferEncoding, p.reencoded])).to.deep.equal([
      ['text/plain', 'above-quote', 'windows-1252', 'quoted-printable', false],
      ['text/html', 'above-quote', 'windows-1252', 'quoted-printable', false],
    ]);
    const html = (await partOf(r.output, 'text/html')).decoded;
    expect(html.indexOf(MARK_HTML_START)).to.be.lessThan(html.indexOf('border-top:solid #E1E1E1'));
    expect(html.indexOf(MARK_HTML_START)).to.be.greaterThan(html.indexOf('that works.'));
    // the new image joins the existing related part, next to Outlook's own image
    const parsed = await simpleParser(r.output, { keepCidLinks: true });
    expect(parsed.attachments.filter((a) => a.related).map((a) => a.contentId).sort()).to.deep.equal(['<image001.png@01DB0000.00000000>', '<logo.1@signet>']);
    const text = (await partOf(r.output, 'text/plain')).decoded;
    expect(text.indexOf(MARK_TEXT_START)).to.be.lessThan(text.indexOf('From: Bob Smith'));
    expect(await attachmentSums(r.output, ['logo.1@signet'])).to.deep.equal(await attachmentSums(input));
  });

  it('Apple Mail reply with format=flowed; delsp=yes text and a blockquote type=cite', async () => {
    const input = fixture('apple-mail-reply-flowed.eml');
    const r = await surgeryChecked(input, markerEdit({ text: `${MARK_TEXT_START} \n> looks like a quote\nSIGNET-TEXT-END` }));
    expect(r.report.parts.map((p) => [p.contentType, p.placement])).to.deep.equal([
      ['text/plain', 'above-quote'],
      ['text/html', 'above-quote'],
    ]);
    const text = (await partOf(r.output, 'text/plain')).decoded;
    expect(text).to.include(`${MARK_TEXT_START}\n > looks like a quote\nSIGNET-TEXT-END`);
    // the soft-broken first paragraph is untouched
    expect(text.startsWith('Sounds good to me, see you then. This line is long enough that Apple Mail \nwraps it')).to.equal(true);
    expect(r.output.toString('latin1')).not.to.include('\r');
  });

  it('iPhone HTML-only message in base64', async () => {
    const input = fixture('iphone-html-only.eml');
    const r = await surgeryChecked(input, markerEdit());
    expect(r.report.parts).to.deep.equal([{ contentType: 'text/html', placement: 'end', reencoded: false, charset: 'utf-8', transferEncoding: 'base64' }]);
    const html = (await partOf(r.output, 'text/html')).decoded;
    expect(html).to.match(/Sent from my iPhone<\/div><\/div><div class="sig-mark">SIGNET-HTML-START.*<\/div><\/body><\/html>$/);
  });

  it('S/MIME signed: detected, and an empty edit leaves it byte-identical', async () => {
    const input = fixture('smime-signed.eml');
    const r = await runSurgery(input, (facts) => {
      expect(facts.structure).to.deep.include({ contentType: 'multipart/signed', signedOrEncrypted: 'smime', noBody: false });
      expect(facts.text).to.equal('Signed text.\n');
      return { addHeaders: [], removeHeaders: [] };
    });
    expect(r.output.equals(input)).to.equal(true);
  });
});
