// A plain-text-only body given an HTML alternative (BodyInsertion.textToHtml):
// which bodies qualify, the structure written around the text part, and that
// everything outside it stays byte for byte.
import { expect } from 'chai';
import { simpleParser } from 'mailparser';
import type { InlineImage } from '../../appliance/src/mime';
import { attachment, buildMessage, html, multipart, text } from './support/build';
import type { MessageSpec } from './support/build';
import { attachmentSums } from './support/check';
import { MARK_HTML_START, MARK_TEXT_START, markerEdit, runSurgery } from './support/run';

const PDF = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 31 + 7) % 256));
const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex');
const TEXT_BODY = 'Hello Bob,\n\nsee the report <attached> & the "figures".\n';
const LOGO: InlineImage = { cid: 'logo.1234@signet', contentType: 'image/png', filename: 'logo.png', data: PNG };
const converting = markerEdit({ textToHtml: true });

function msg(body: MessageSpec['body'], eol: '\r\n' | '\n' = '\r\n', extra: Partial<MessageSpec> = {}): Buffer {
  return buildMessage({ body, eol, ...extra });
}

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

/** Every line ending in `out` is `eol` (no bare LF in a CRLF message, no CR in an LF one). */
function expectLineEndings(out: Buffer, eol: '\r\n' | '\n'): void {
  const s = out.toString('latin1');
  if (eol === '\r\n') expect(s.replace(/\r\n/g, '')).not.to.match(/[\r\n]/);
  else expect(s).not.to.include('\r');
}

describe('mime surgery: plain text given an HTML alternative', () => {
  for (const eol of ['\r\n', '\n'] as const) {
    const name = eol === '\r\n' ? 'CRLF' : 'LF';

    it(`text/plain message (${name}): multipart/alternative(text as before, HTML with the same text and the HTML snippet)`, async () => {
      const input = msg(text(TEXT_BODY), eol);
      const plain = await runSurgery(input, markerEdit());
      const r = await runSurgery(input, converting);
      expect(r.facts?.structure.plainTextOnly).to.equal(true);
      expect(r.report.parts).to.deep.equal([
        plain.report.parts[0],
        { contentType: 'text/html', placement: 'end', reencoded: false, converted: true, charset: 'utf-8', transferEncoding: 'quoted-printable' },
      ]);
      const out = r.output.toString('latin1');
      // the message headers keep their bytes and order; the Content-* fields moved into the text part
      // unfolded: the new Content-Type may be folded
      const head = out.slice(0, out.indexOf(eol + eol)).replace(/\r?\n[ \t]+/g, ' ');
      const originalHead = input.toString('latin1').slice(0, input.indexOf(eol + eol));
      const withoutContent = originalHead.split(eol).filter((l) => !/^Content-/i.test(l));
      expect(head.split(eol).filter((l) => !/^(X-Signet-Processed|Content-Type):/.test(l))).to.deep.equal(withoutContent.filter((l) => !/^(DKIM-Signature:|\t)/.test(l)));
      expect(head).to.match(new RegExp(`^X-Signet-Processed: [^\\r\\n]*${eol}`));
      expect(head).to.match(/Content-Type: multipart\/alternative;\s+boundary="----=_Signet_[0-9a-f]{32}"/);
      // the text part is the one the edit alone would have written, byte for byte
      const plainOut = plain.output.toString('latin1');
      const plainBody = plainOut.slice(plainOut.indexOf(eol + eol) + 2 * eol.length);
      expect(out).to.include(`Content-Type: text/plain; charset=utf-8${eol}Content-Transfer-Encoding: quoted-printable${eol}${eol}${plainBody}`);
      expectLineEndings(r.output, eol);
      for (const line of out.split(eol)) expect(line.length).to.be.at.most(998);

      const parsed = await simpleParser(r.output);
      const plainParsed = await simpleParser(plain.output);
      expect(parsed.text).to.equal(plainParsed.text);
      const htmlPart = String(parsed.html);
      expect(count(htmlPart, MARK_HTML_START)).to.equal(1);
      expect(count(htmlPart, MARK_TEXT_START)).to.equal(0);
      expect(htmlPart).to.include('Hello Bob,<br>');
      expect(htmlPart).to.include('see the report &lt;attached&gt; &amp; the &quot;figures&quot;.<br>');
      expect(htmlPart.indexOf(MARK_HTML_START)).to.be.above(htmlPart.indexOf('figures'));
      expect(htmlPart).to.match(/<meta http-equiv="Content-Type" content="text\/html; charset=utf-8">/);
    });

    it(`mixed(text, pdf) (${name}): the text part becomes the alternative, every other byte stays`, async () => {
      const input = msg(multipart('mixed', 'mix-1', [text(TEXT_BODY), attachment('report.pdf', PDF)], { preamble: 'This is a multi-part message in MIME format.', epilogue: 'epilogue' + eol }), eol);
      const r = await runSurgery(input, converting);
      expect(r.facts?.structure.plainTextOnly).to.equal(true);
      const inStr = input.toString('latin1');
      const out = r.output.toString('latin1');
      const textStart = inStr.indexOf('--mix-1' + eol) + ('--mix-1' + eol).length;
      const textEnd = inStr.indexOf(eol + '--mix-1' + eol, textStart);
      const stamp = out.slice(0, out.indexOf(eol) + eol.length);
      // before the text part: the input minus the DKIM-Signature the edit removes, after the stamp
      expect(out.slice(stamp.length, out.indexOf('--mix-1' + eol) + ('--mix-1' + eol).length)).to.equal(inStr.slice(0, textStart).replace(/DKIM-Signature:[^]*?\r?\n(?=[^\t])/, ''));
      expect(out.endsWith(inStr.slice(textEnd))).to.equal(true);
      const replaced = out.slice(out.indexOf('--mix-1' + eol) + ('--mix-1' + eol).length, out.length - (inStr.length - textEnd));
      expect(replaced).to.match(new RegExp(`^Content-Type: multipart/alternative;\\s+boundary="(----=_Signet_[0-9a-f]{32})"${eol}${eol}--\\1${eol}Content-Type: text/plain; charset=utf-8${eol}`));
      expect(replaced).to.match(new RegExp(`${eol}------=_Signet_[0-9a-f]{32}${eol}Content-Type: text/html; charset=utf-8${eol}Content-Transfer-Encoding: quoted-printable${eol}${eol}`));
      // the text part's last line break stays its own: the closing delimiter ends a line of its own
      expect(replaced).to.match(new RegExp(`${eol}------=_Signet_[0-9a-f]{32}--${eol}$`));
      expect(await attachmentSums(r.output)).to.deep.equal(await attachmentSums(input));
      expectLineEndings(r.output, eol);
      const parsed = await simpleParser(r.output);
      expect(count(String(parsed.html), MARK_HTML_START)).to.equal(1);
      expect(count(parsed.text ?? '', MARK_TEXT_START)).to.equal(1);
    });
  }

  it('embedded images: alternative(text, related(html, images)), the HTML showing them by cid', async () => {
    const input = msg(multipart('mixed', 'mix-1', [text(TEXT_BODY), attachment('report.pdf', PDF)]));
    const r = await runSurgery(input, markerEdit({ textToHtml: true, images: [LOGO] }));
    const parsed = await simpleParser(r.output);
    const logo = parsed.attachments.find((a) => a.contentId === '<logo.1234@signet>');
    expect(logo?.content.equals(PNG)).to.equal(true);
    expect(logo?.related).to.equal(true);
    expect(await attachmentSums(r.output, [LOGO.cid])).to.deep.equal(await attachmentSums(input));
    const out = r.output.toString('latin1');
    expect(out).to.match(/Content-Type: multipart\/alternative;\s+boundary="(----=_Signet_[0-9a-f]{32})"\r\n\r\n--\1\r\nContent-Type: text\/plain/);
    expect(out).to.match(/\r\n--(----=_Signet_[0-9a-f]{32})\r\nContent-Type: multipart\/related;\s+boundary="(----=_Signet_[0-9a-f]{32})";\s+type="text\/html"\r\n\r\n--\2\r\nContent-Type: text\/html; charset=utf-8\r\n/);
    // without textToHtml a text part gets no image: nothing would show it
    const plain = await runSurgery(input, markerEdit({ images: [LOGO] }));
    expect(plain.output.toString('latin1')).not.to.include('logo.1234@signet');
  });

  it('a message without any Content-* field (RFC 2045 defaults) gets MIME-Version and the multipart Content-Type; its text part none', async () => {
    const input = Buffer.from(['From: jane@example.com', 'To: bob@example.net', 'Subject: hi', '', 'Hello Bob,', '', 'Jane', ''].join('\r\n'), 'latin1');
    const r = await runSurgery(input, converting);
    const out = r.output.toString('latin1');
    expect(out).to.match(/^X-Signet-Processed: [^\r\n]+\r\nFrom: jane@example.com\r\nTo: bob@example.net\r\nSubject: hi\r\nMIME-Version: 1\.0\r\nContent-Type: multipart\/alternative;\s+boundary="(----=_Signet_[0-9a-f]{32})"\r\n\r\n--\1\r\n\r\nHello Bob,\r\n\r\nJane\r\n/);
    const parsed = await simpleParser(r.output);
    expect(parsed.text).to.match(/^Hello Bob,\n\nJane\nSIGNET-TEXT-START/);
    expect(String(parsed.html)).to.include('Hello Bob,<br>');
  });

  it('the HTML snippet goes where the text one goes: above the quoted thread, at the placeholder, the top banner first', async () => {
    const reply = 'Sure, see you then.\n\nOn Mon, 23 Nov 2026 at 10:00, Bob <bob@example.net> wrote:\n> Lunch on Friday?\n';
    const r = await runSurgery(msg(text(reply)), markerEdit({ textToHtml: true, topHtml: '<p>TOP-HTML</p>', topText: 'TOP-TEXT\n\n' }));
    expect(r.report.parts.map((p) => [p.contentType, p.placement])).to.deep.equal([['text/plain', 'above-quote'], ['text/html', 'above-quote']]);
    const htmlPart = String((await simpleParser(r.output)).html);
    const order = ['TOP-HTML', 'Sure, see you then.', MARK_HTML_START, 'On Mon, 23 Nov 2026 at 10:00, Bob &lt;bob@example.net&gt; wrote:', '<blockquote type="cite"', 'Lunch on Friday?<br>'].map((s) => htmlPart.indexOf(s));
    expect(order.every((at) => at >= 0)).to.equal(true);
    expect([...order].sort((a, b) => a - b)).to.deep.equal(order);

    // the quoted line in the HTML is a blockquote (Apple Mail's type="cite", which a later reply finds), its ">" not repeated
    expect(htmlPart).to.match(/<blockquote type="cite" style="[^"]*">Lunch on Friday\?<br>\r?\n<\/blockquote>/).and.not.include('&gt; Lunch');

    const typed = await runSurgery(msg(text('Thanks!\n{{signature}}\nPS: bring the slides\n')), converting);
    const typedHtml = String((await simpleParser(typed.output)).html);
    expect(typedHtml).not.to.include('{{signature}}');
    // as in the text part: a blank line above the signature, and the line break after the placeholder stays
    expect(typedHtml).to.match(/Thanks!<br>\r?\n<br>\r?\n<div class="sig-mark">SIGNET-HTML-START.*SIGNET-HTML-END<\/div><br>\r?\nPS: bring the slides<br>/s);

    // what follows a placeholder on its own line is that line's rest, not a quote
    const inline = await runSurgery(msg(text('Thanks! {{signature}}> not a quote\n> quoted\n')), converting);
    const inlineHtml = String((await simpleParser(inline.output)).html);
    expect(inlineHtml).to.match(/SIGNET-HTML-END<\/div>&gt; not a quote<br>\r?\n<blockquote type="cite" style="[^"]*">quoted<br>/);
  });

  it('one blank line between the last written line and the signature, as in the text part; none added under a blank line', async () => {
    for (const body of ['Hello Bob\n', 'Hello Bob', 'Hello Bob\n\n']) {
      const r = await runSurgery(msg(text(body)), converting);
      const htmlPart = String((await simpleParser(r.output)).html);
      expect(htmlPart, JSON.stringify(body)).to.match(/>\r?\nHello Bob(<br>)?\r?\n<br>\r?\n<div class="sig-mark">/);
    }
  });

  it('format=flowed: the HTML joins what the sender wrote as one paragraph; the text part stays flowed', async () => {
    const flowed = 'This line goes on \nin the next one.\n\nBye\n';
    const r = await runSurgery(msg(text(flowed, { params: 'format=flowed', cte: '7bit' })), converting);
    const parsed = await simpleParser(r.output);
    expect(String(parsed.html)).to.include('This line goes on in the next one.<br>');
    expect(r.output.toString('latin1')).to.include('Content-Type: text/plain; charset=utf-8; format=flowed\r\nContent-Transfer-Encoding: 7bit\r\n\r\nThis line goes on \r\nin the next one.');
  });

  it('a legacy charset: the text part keeps it, the HTML is UTF-8', async () => {
    const r = await runSurgery(msg(text('Grüße aus Köln\n', { charset: 'iso-8859-1' })), converting);
    expect(r.report.parts.map((p) => p.charset)).to.deep.equal(['iso-8859-1', 'utf-8']);
    const parsed = await simpleParser(r.output);
    expect(parsed.text).to.match(/^Grüße aus Köln/);
    expect(String(parsed.html)).to.include('Grüße aus Köln<br>');
  });

  it("the sender's text can never become markup in the HTML", async () => {
    const hostile = '<script>alert(1)</script>\n"><img src=x onerror=alert(1)>\njavascript:alert(1)\n';
    const r = await runSurgery(msg(text(hostile)), converting);
    const htmlPart = String((await simpleParser(r.output)).html);
    expect(htmlPart).not.to.match(/<(script|img)\b|href="javascript/i);
    expect(htmlPart).to.include('&lt;script&gt;alert(1)&lt;/script&gt;');
  });

  describe('only a body that is plain text alone', () => {
    const cases: Array<[string, MessageSpec['body']]> = [
      ['alternative(text, html)', multipart('alternative', 'alt-1', [text(TEXT_BODY), html('<p>Hello</p>')])],
      ['html only', html('<p>Hello</p>')],
      ['alternative(text) without its HTML', multipart('alternative', 'alt-1', [text(TEXT_BODY)])],
      ['related(text, png)', multipart('related', 'rel-1', [text(TEXT_BODY), { type: 'image/png', content: PNG, cte: 'base64', disposition: 'inline', contentId: 'i@x' }])],
      ['mixed(alternative(text, html), pdf)', multipart('mixed', 'mix-1', [multipart('alternative', 'alt-1', [text(TEXT_BODY), html('<p>Hello</p>')]), attachment('a.pdf', PDF)])],
    ];
    for (const [name, body] of cases) {
      it(`${name}: left as the edit alone would leave it`, async () => {
        const input = msg(body);
        const r = await runSurgery(input, converting);
        expect(r.facts?.structure.plainTextOnly).to.equal(false);
        expect(r.report.parts.some((p) => p.converted)).to.equal(false);
        expect(r.output.toString('latin1')).not.to.include('boundary="----=_Signet_');
      });
    }

    it('mixed(text, html attachment): the attached HTML is no body, the text is converted', async () => {
      const input = msg(multipart('mixed', 'mix-1', [text(TEXT_BODY), html('<p>page</p>', { disposition: 'attachment', filename: 'page.html' })]));
      const r = await runSurgery(input, converting);
      expect(r.facts?.structure.plainTextOnly).to.equal(true);
      expect(r.report.parts.map((p) => p.contentType)).to.deep.equal(['text/plain', 'text/html']);
      expect(await attachmentSums(r.output)).to.deep.equal(await attachmentSums(input));
    });

    it('a text part over the size cap: nothing converted, the message as it came', async () => {
      const input = msg(text('x'.repeat(3000) + '\n'));
      const r = await runSurgery(input, converting, 1024);
      expect(r.report.parts).to.deep.equal([]);
      const out = r.output.toString('latin1');
      const inStr = input.toString('latin1');
      expect(out.slice(out.indexOf('\r\n\r\n'))).to.equal(inStr.slice(inStr.indexOf('\r\n\r\n')));
    });
  });
});
