import { expect } from 'chai';
import { simpleParser } from 'mailparser';
import { Readable } from 'node:stream';
import { transformMessage } from '../../appliance/src/mime';
import { findDelimiter } from '../../appliance/src/mime/images';
import type { Edit } from '../../appliance/src/mime';
import { attachment, buildMessage, html, multipart, text } from './support/build';
import type { MessageSpec } from './support/build';
import { attachmentSums, surgeryChecked } from './support/check';
import { leafParts, partOf } from './support/parts';
import { MARK_HTML_END, MARK_HTML_START, MARK_TEXT_END, MARK_TEXT_START, markerEdit, runSurgery } from './support/run';

const PDF = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 31 + 7) % 256));
const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex');
const HTML_BODY = '<html><head><title>t</title></head><body><p>Hello Bob,</p><p>see the report.</p></body></html>';
const TEXT_BODY = 'Hello Bob,\n\nsee the report.\n';

function msg(body: MessageSpec['body'], eol: '\r\n' | '\n' = '\r\n', extra: Partial<MessageSpec> = {}): Buffer {
  return buildMessage({ body, eol, ...extra });
}

const PASS: Edit = { addHeaders: [], removeHeaders: [] };

describe('mime surgery: which parts are edited', () => {
  for (const eol of ['\r\n', '\n'] as const) {
    const name = eol === '\r\n' ? 'CRLF' : 'LF';

    it(`text-only message (${name}): only the text part`, async () => {
      const r = await surgeryChecked(msg(text(TEXT_BODY), eol), markerEdit());
      expect(r.report.parts.map((p) => p.contentType)).to.deep.equal(['text/plain']);
      expect(r.report.parts[0].placement).to.equal('end');
      expect(r.facts?.text).to.equal(TEXT_BODY.replace(/\n/g, eol));
      expect(r.facts?.html).to.equal(undefined);
    });

    it(`html-only message (${name}): only the html part, before </body>`, async () => {
      const r = await surgeryChecked(msg(html(HTML_BODY), eol), markerEdit());
      expect(r.report.parts.map((p) => p.contentType)).to.deep.equal(['text/html']);
      const part = await partOf(r.output, 'text/html');
      expect(part.decoded).to.match(/report\.<\/p><div class="sig-mark">SIGNET-HTML-START.*SIGNET-HTML-END<\/div><\/body>/);
    });

    it(`alternative(text, html) (${name})`, async () => {
      const r = await surgeryChecked(msg(multipart('alternative', 'alt-1', [text(TEXT_BODY), html(HTML_BODY)]), eol), markerEdit());
      expect(r.report.parts.map((p) => p.contentType)).to.deep.equal(['text/plain', 'text/html']);
    });

    it(`mixed(alternative(text, related(html, png)), pdf) (${name})`, async () => {
      const input = msg(
        multipart('mixed', 'mix-1', [
          multipart('alternative', 'alt-1', [text(TEXT_BODY), multipart('related', 'rel-1', [html(HTML_BODY), { type: 'image/png', content: PNG, cte: 'base64', disposition: 'inline', contentId: 'img1@x' }])]),
          attachment('report.pdf', PDF),
        ], { preamble: 'This is a multi-part message in MIME format.', epilogue: 'epilogue text' + eol }),
        eol,
      );
      const r = await surgeryChecked(input, markerEdit());
      expect(r.report.parts.map((p) => p.contentType)).to.deep.equal(['text/plain', 'text/html']);
      expect(await attachmentSums(r.output)).to.deep.equal(await attachmentSums(input));
    });
  }

  it('related(alternative(text, html), png) as Outlook sends it', async () => {
    const input = msg(multipart('related', 'rel-o', [multipart('alternative', 'alt-o', [text(TEXT_BODY), html(HTML_BODY)]), { type: 'image/png', content: PNG, cte: 'base64', contentId: 'image001.png@01D' }]));
    const r = await surgeryChecked(input, markerEdit());
    expect(r.report.parts).to.have.length(2);
  });

  it('deeply nested mixed(mixed(alternative(text, html)), pdf)', async () => {
    const input = msg(multipart('mixed', 'm1', [multipart('mixed', 'm2', [multipart('alternative', 'a1', [text(TEXT_BODY), html(HTML_BODY)])]), attachment('a.pdf', PDF)]));
    const r = await surgeryChecked(input, markerEdit());
    expect(r.report.parts).to.have.length(2);
  });

  it('only the first text/plain and text/html are edited', async () => {
    const input = msg(multipart('mixed', 'm1', [multipart('alternative', 'a1', [text('first\n'), html('<p>one</p>')]), attachment('a.pdf', PDF), text('second\n'), html('<p>two</p>')]));
    const r = await surgeryChecked(input, markerEdit());
    const texts = (await leafParts(r.output)).filter((p) => p.contentType.startsWith('text/'));
    expect(texts.map((p) => p.decoded.includes('SIGNET-'))).to.deep.equal([true, true, false, false]);
  });

  it('text and html that are not alternatives of each other: only the first is the body', async () => {
    // a reader shows every inline part of multipart/mixed in turn; signing both would show two signatures
    for (const [parts, edited] of [
      [[text('the body\n'), html('<p>an inline html part</p>')], ['text/plain']],
      [[html('<p>the body</p>'), attachment('a.pdf', PDF), text('inline text\n')], ['text/html']],
    ] as const) {
      const r = await surgeryChecked(msg(multipart('mixed', 'm', [...parts])), markerEdit());
      expect(r.report.parts.map((p) => p.contentType)).to.deep.equal(edited);
    }
  });

  it('never edits attachments, named text parts, or parts of an attached message/rfc822', async () => {
    const inner = buildMessage({ body: multipart('alternative', 'inner-alt', [text('forwarded text\n'), html('<p>forwarded</p>')]) }).toString('latin1');
    const input = msg(
      multipart('mixed', 'm1', [
        { type: 'text/html', content: '<p>an html file</p>', charset: 'utf-8', cte: '7bit', disposition: 'attachment', filename: 'page.html' },
        { type: 'text/plain', content: 'named text', charset: 'utf-8', cte: '7bit', filename: 'notes.txt', disposition: 'inline' },
        { type: 'message/rfc822', content: Buffer.from(inner, 'latin1'), cte: '7bit', disposition: 'inline' },
        { type: 'message/rfc822', content: Buffer.from(inner, 'latin1'), cte: '7bit', disposition: 'attachment', filename: 'fwd.eml' },
      ]),
    );
    const r = await surgeryChecked(input, markerEdit());
    expect(r.report.parts).to.deep.equal([]);
    expect(r.facts?.structure.noBody).to.equal(true);
  });

  it('edits the message text but not the text of an attached message that follows it', async () => {
    const inner = buildMessage({ body: text('inner text\n') }).toString('latin1');
    const input = msg(multipart('mixed', 'm1', [text('outer text\n'), { type: 'message/rfc822', content: Buffer.from(inner, 'latin1'), cte: '7bit', disposition: 'inline' }]));
    const r = await surgeryChecked(input, markerEdit());
    expect(r.report.parts).to.have.length(1);
    expect(r.output.toString('latin1')).to.include('inner text');
    expect(r.output.toString('latin1').split('SIGNET-TEXT-START')).to.have.length(2);
  });

  it('keeps an mbox "From " line first, before the added header', async () => {
    const input = msg(text(TEXT_BODY), '\n', { mbox: 'From jane@example.com Mon Nov 23 10:00:00 2026' });
    const r = await surgeryChecked(input, markerEdit());
    expect(r.output.toString('latin1')).to.match(/^From jane@example\.com Mon Nov 23 10:00:00 2026\nX-Signet-Processed: /);
  });

  it('a message that is only an mbox "From " line without a line ending gets the header on a line of its own', async () => {
    const input = Buffer.from('From jane@example.com Mon Nov 23 10:00:00 2026', 'latin1');
    const output = (await surgeryChecked(input, markerEdit())).output.toString('latin1');
    expect(output).to.match(/^From jane@example\.com Mon Nov 23 10:00:00 2026\r\nX-Signet-Processed: [^\r\n]*\r\n$/);
  });

  it('htmlOnly: a calendar invitation gets the signature in its html part only', async () => {
    const ics = 'BEGIN:VCALENDAR\nMETHOD:REQUEST\nBEGIN:VEVENT\nSUMMARY:Sync\nEND:VEVENT\nEND:VCALENDAR\n';
    const input = msg(multipart('alternative', 'cal', [text(TEXT_BODY), html(HTML_BODY), { type: 'text/calendar', content: ics, charset: 'utf-8', cte: '7bit', params: 'method=REQUEST' }]));
    const r = await surgeryChecked(input, (f) => {
      expect(f.structure.calendar).to.deep.equal({ method: 'REQUEST' });
      return markerEdit({ htmlOnly: true });
    });
    expect(r.report.parts.map((p) => p.contentType)).to.deep.equal(['text/html']);
    expect((await partOf(r.output, 'text/calendar')).decoded).to.equal(ics.replace(/\n/g, '\r\n'));
  });

  it('a reply gets the signature above the quoted thread; a typed placeholder is replaced', async () => {
    const reply = 'Sounds good.\n\nOn Mon, 23 Nov 2026 at 09:00, Bob <bob@example.net> wrote:\n> Can we meet?\n';
    const r1 = await surgeryChecked(msg(text(reply)), markerEdit());
    expect(r1.report.parts[0].placement).to.equal('above-quote');
    const out = (await partOf(r1.output, 'text/plain')).decoded;
    expect(out.indexOf(MARK_TEXT_START)).to.be.lessThan(out.indexOf('wrote:'));
    expect(out.indexOf(MARK_TEXT_START)).to.be.greaterThan(out.indexOf('Sounds good.'));

    const r2 = await surgeryChecked(msg(multipart('alternative', 'a', [text('Hi\n{{signature}}\nPS\n'), html('<html><body><p>Hi</p><p>{{signature}}</p><p>PS</p></body></html>')])), markerEdit());
    expect(r2.report.parts.map((p) => p.placement)).to.deep.equal(['placeholder', 'placeholder']);
    for (const p of await leafParts(r2.output)) expect(p.decoded).not.to.include('{{signature}}');
  });

  it('top banners go at the start of the body', async () => {
    const edit = markerEdit({ topHtml: '<div>BANNER-HTML</div>', topText: 'BANNER-TEXT' });
    const r = await runSurgery(msg(multipart('alternative', 'a', [text(TEXT_BODY), html(HTML_BODY)])), edit);
    const t = (await partOf(r.output, 'text/plain')).decoded;
    const h = (await partOf(r.output, 'text/html')).decoded;
    expect(t.startsWith('BANNER-TEXT\r\nHello Bob,')).to.equal(true);
    expect(h).to.include('<body><div>BANNER-HTML</div><p>Hello Bob,</p>');
  });
});

describe('mime surgery: headers', () => {
  it('adds fields at the very top, folded with the message line ending, and removes every DKIM-Signature with its continuation lines', async () => {
    for (const eol of ['\r\n', '\n'] as const) {
      const input = msg(multipart('mixed', 'm', [text(TEXT_BODY), { type: 'text/plain', content: 'x', extraHeaders: ['DKIM-Signature: part-level stays'] }]), eol, {
        headers: ['DKIM-Signature: v=1; a=rsa-sha256;', ' b=first', 'From: a@example.com', 'dkim-signature: second', '\tcontinued', 'Subject: s', 'MIME-Version: 1.0'],
      });
      const long = 'org=acme; rule=' + 'r'.repeat(60) + '; template=' + 't'.repeat(40) + '; engine=1.0.0';
      const r = await surgeryChecked(input, { addHeaders: [['X-Signet-Processed', long], ['X-Second', 'two']], removeHeaders: ['DKIM-Signature'] });
      const out = r.output.toString('latin1');
      const head = out.slice(0, out.indexOf(eol + eol) + eol.length);
      expect(head.startsWith('X-Signet-Processed: ')).to.equal(true);
      expect(head).to.include(`${eol}X-Second: two${eol}From: a@example.com${eol}Subject: s${eol}MIME-Version: 1.0${eol}`);
      expect(head.toLowerCase()).not.to.include('dkim-signature');
      for (const line of head.split(eol)) expect(line.length).to.be.at.most(78);
      if (eol === '\n') expect(head).not.to.include('\r');
      expect(out).to.include('DKIM-Signature: part-level stays');
      expect(out.slice(out.indexOf(eol + eol))).to.equal(input.toString('latin1').slice(input.toString('latin1').indexOf(eol + eol)));
    }
  });

  it('header values cannot inject fields', async () => {
    const r = await runSurgery(msg(text('x')), { addHeaders: [['X-Signet-Processed', 'a\r\nBcc: evil@example.com']], removeHeaders: [] });
    const out = r.output.toString('latin1');
    expect(out).not.to.match(/^Bcc:/m);
    expect(out.startsWith('X-Signet-Processed: a Bcc: evil@example.com\r\n')).to.equal(true);
  });

  it('an empty edit returns the input byte for byte', async () => {
    const input = msg(multipart('mixed', 'm', [multipart('alternative', 'a', [text(TEXT_BODY), html(HTML_BODY)]), attachment('a.pdf', PDF)]), '\n');
    const r = await runSurgery(input, PASS);
    expect(r.output.equals(input)).to.equal(true);
    expect(r.report.bytesIn).to.equal(input.length);
    expect(r.report.bytesOut).to.equal(input.length);
  });

  it('output is held until decide, and decide comes before a big attachment is read', async () => {
    const big = Buffer.alloc(4 * 1024 * 1024, 0x41);
    const input = msg(multipart('mixed', 'm', [text(TEXT_BODY), attachment('big.bin', big, 'application/octet-stream')]));
    let fed = 0;
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < input.length; i += 16384) {
          fed = i;
          yield input.subarray(i, i + 16384);
        }
      })(),
    );
    let emitted = 0;
    let fedAtDecide = -1;
    let emittedAtDecide = -1;
    const handle = transformMessage(
      source,
      () => {
        fedAtDecide = fed;
        emittedAtDecide = emitted;
        return markerEdit();
      },
      { maxEditablePartBytes: 1024 * 1024 },
    );
    handle.output.on('data', (c: Buffer) => (emitted += c.length));
    await handle.report;
    expect(emittedAtDecide).to.equal(0);
    expect(fedAtDecide).to.be.greaterThan(0);
    expect(fedAtDecide).to.be.lessThan(input.length / 2);
  });
});

describe('mime surgery: streaming', () => {
  it('an attachment before the body is held, and the body parts after it are edited', async () => {
    const input = msg(multipart('mixed', 'm', [attachment('first.pdf', PDF), multipart('alternative', 'a', [text(TEXT_BODY), html(HTML_BODY)])]));
    const r = await surgeryChecked(input, markerEdit());
    expect(r.facts?.html).to.equal(HTML_BODY);
    expect(r.report.parts).to.have.length(2);
  });

  it('past maxHeldBytes the decision is asked for early; body parts that follow are still edited as they stream', async () => {
    const input = msg(multipart('mixed', 'm', [attachment('big.bin', Buffer.alloc(300 * 1024, 7), 'application/octet-stream'), multipart('alternative', 'a', [text(TEXT_BODY), html(HTML_BODY)])]));
    const chunks: Buffer[] = [];
    for (let i = 0; i < input.length; i += 8192) chunks.push(input.subarray(i, i + 8192));
    let seen: { tooLarge: boolean; text?: string } | undefined;
    const handle = transformMessage(Readable.from(chunks), (f) => {
      seen = { tooLarge: f.structure.tooLarge, text: f.text };
      return markerEdit();
    }, { maxEditablePartBytes: 1024 * 1024, maxHeldBytes: 64 * 1024 });
    const out: Buffer[] = [];
    for await (const c of handle.output) out.push(c as Buffer);
    const report = await handle.report;
    expect(seen).to.deep.equal({ tooLarge: true, text: undefined });
    expect(report.parts.map((p) => p.contentType)).to.deep.equal(['text/plain', 'text/html']);
    expect(await attachmentSums(Buffer.concat(out))).to.deep.equal(await attachmentSums(input));
  });

  describe('once no part an edit could touch can follow, the rest is copied without being split', () => {
    const BIG = Buffer.alloc(200 * 1024, 9);
    // chunks smaller than the attachment, so most of it arrives after the switch
    const run = (body: MessageSpec['body']) => surgeryChecked(msg(body), markerEdit(), undefined, 4096);

    it('mixed(text, attachment): after the text part', async () => {
      const r = await run(multipart('mixed', 'm', [text(TEXT_BODY), attachment('big.bin', BIG, 'application/octet-stream')]));
      expect(r.report.parts.map((p) => p.contentType)).to.deep.equal(['text/plain']);
      expect(r.report.unsplitBytes).to.be.greaterThan(BIG.length);
    });

    it('mixed(html, attachment): after the html part', async () => {
      const r = await run(multipart('mixed', 'm', [html(HTML_BODY), attachment('big.bin', BIG, 'application/octet-stream')]));
      expect(r.report.parts.map((p) => p.contentType)).to.deep.equal(['text/html']);
      expect(r.report.unsplitBytes).to.be.greaterThan(BIG.length);
    });

    it('mixed(alternative(text, html), attachment): after both parts', async () => {
      const r = await run(multipart('mixed', 'm', [multipart('alternative', 'a', [text(TEXT_BODY), html(HTML_BODY)]), attachment('big.bin', BIG, 'application/octet-stream')]));
      expect(r.report.parts.map((p) => p.contentType)).to.deep.equal(['text/plain', 'text/html']);
      expect(r.report.unsplitBytes).to.be.greaterThan(BIG.length);
    });

    // the message up to the middle of its attachment, then the input fails in the given way
    const cutShort = (how: 'error' | 'destroy') => {
      const input = msg(multipart('mixed', 'm', [text(TEXT_BODY), attachment('big.bin', BIG, 'application/octet-stream')]));
      const half = input.subarray(0, input.length - BIG.length / 2);
      const source = new Readable({ read() {} });
      let i = 0;
      const feed = (): void => {
        if (i < half.length) {
          source.push(half.subarray(i, (i += 4096)));
          setImmediate(feed);
        } else if (how === 'error') source.destroy(new Error('connection reset'));
        else source.destroy();
      };
      feed();
      return source;
    };

    for (const how of ['error', 'destroy'] as const) {
      it(`an input that fails (${how}) while the rest is copied rejects the report and errors the output`, async () => {
        const handle = transformMessage(cutShort(how), () => markerEdit(), { maxEditablePartBytes: 1024 * 1024 });
        const outcome = new Promise<string>((resolve) => {
          handle.output.on('error', () => resolve('output error'));
          handle.output.on('end', () => resolve('output end'));
          handle.output.resume();
        });
        let rejected = false;
        await handle.report.catch(() => (rejected = true));
        expect(rejected).to.equal(true);
        expect(await outcome).to.equal('output error');
      });
    }

    it('an output destroyed by its reader while the rest is copied: the report rejects, nothing hangs', async () => {
      const input = msg(multipart('mixed', 'm', [text(TEXT_BODY), attachment('big.bin', Buffer.alloc(2 * 1024 * 1024, 5), 'application/octet-stream')]));
      const chunks: Buffer[] = [];
      for (let i = 0; i < input.length; i += 4096) chunks.push(input.subarray(i, i + 4096));
      const handle = transformMessage(Readable.from(chunks), () => markerEdit(), { maxEditablePartBytes: 1024 * 1024 });
      let read = 0;
      handle.output.on('data', (c: Buffer) => {
        read += c.length;
        if (read > 256 * 1024) handle.output.destroy();
      });
      let rejected = false;
      await handle.report.catch(() => (rejected = true));
      expect(rejected).to.equal(true);
    });

    it('alternative(text, attachment-sized part, html): still split inside the alternative, the html is signed', async () => {
      const r = await run(multipart('alternative', 'a', [text(TEXT_BODY), attachment('big.bin', BIG, 'application/octet-stream'), html(HTML_BODY)]));
      expect(r.report.parts.map((p) => p.contentType)).to.deep.equal(['text/plain', 'text/html']);
      expect(r.report.unsplitBytes).to.be.lessThan(BIG.length);
    });

    it('mixed(alternative(text, html-attachment), alternative(x, html)): an html outside the text\'s alternative is not the body', async () => {
      const r = await run(
        multipart('mixed', 'm', [
          multipart('alternative', 'a1', [text(TEXT_BODY), attachment('big.bin', BIG, 'application/octet-stream')]),
          multipart('alternative', 'a2', [text('other'), html(HTML_BODY)]),
        ]),
      );
      expect(r.report.parts.map((p) => p.contentType)).to.deep.equal(['text/plain']);
      expect(r.report.unsplitBytes).to.be.greaterThan(0);
    });
  });

  it('backpressure: a slow reader keeps the input from being read far ahead', async () => {
    const attachmentLines = 200_000; // ~15 MB of base64
    const line = Buffer.from(`${'QUJD'.repeat(19)}\r\n`);
    const head = msg(multipart('mixed', 'm', [text(TEXT_BODY)])).toString('latin1').replace(/--m--\r\n$/, '');
    let pulled = 0;
    const source = Readable.from(
      (function* () {
        const first = Buffer.from(`${head}--m\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="big.bin"\r\n\r\n`, 'latin1');
        pulled += first.length;
        yield first;
        for (let i = 0; i < attachmentLines; i += 500) {
          const block = Buffer.concat(Array.from({ length: 500 }, () => line));
          pulled += block.length;
          yield block;
        }
        pulled += 9;
        yield Buffer.from('--m--\r\n');
      })(),
    );
    const handle = transformMessage(source, () => markerEdit(), { maxEditablePartBytes: 1024 * 1024 });
    let read = 0;
    let maxAhead = 0;
    for await (const c of handle.output) {
      read += (c as Buffer).length;
      maxAhead = Math.max(maxAhead, pulled - read);
      // a slow consumer: let the producer run for a while after every chunk
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await handle.report;
    expect(read).to.be.greaterThan(attachmentLines * line.length);
    expect(maxAhead).to.be.lessThan(4 * 1024 * 1024);
  });
  it('an empty body part is edited the same however the input is cut into chunks (the line ending before its delimiter)', async () => {
    // mailsplit keeps the line ending in front of the next delimiter at the end of an empty body,
    // or gives it with the delimiter, as the chunks fall; found by the property test (chunks of 7)
    const images = [{ cid: 'logo@signet', contentType: 'image/png', filename: 'logo.png', data: PNG }];
    for (const eol of ['\r\n', '\n'] as const) {
      for (const withImage of [false, true]) {
        const input = msg(multipart('mixed', 'b0=_x', [html(''), attachment('a.bin', Buffer.alloc(0), 'application/octet-stream')]), eol);
        const edit = markerEdit({ images: withImage ? images : [] });
        const outputs = new Set<string>();
        for (const chunkSize of [1, 2, 3, 5, 7, 11, 100, 65536]) {
          const r = await surgeryChecked(input, edit, 1024 * 1024, chunkSize);
          outputs.add(r.output.toString('latin1').replace(/=_Signet_[0-9a-f]+/g, '=_Signet_*'));
        }
        expect(outputs.size, `${JSON.stringify(eol)}${withImage ? ', with an image' : ''}`).to.equal(1);
      }
    }
  });
});

describe('mime surgery: structure facts (leave-alone detection)', () => {
  async function factsOf(input: Buffer) {
    const r = await runSurgery(input, PASS);
    expect(r.output.equals(input)).to.equal(true);
    return r.facts!.structure;
  }

  it('S/MIME signed, encrypted (pkcs7-mime and x-pkcs7-mime)', async () => {
    const signed = msg({ ...multipart('signed', 's', [text('signed text\n'), { type: 'application/pkcs7-signature', content: PDF, cte: 'base64', filename: 'smime.p7s', disposition: 'attachment' }]), params: 'protocol="application/pkcs7-signature"; micalg=sha-256' });
    expect((await factsOf(signed)).signedOrEncrypted).to.equal('smime');
    const enc = msg({ type: 'application/pkcs7-mime', params: 'smime-type=enveloped-data', content: PDF, cte: 'base64', filename: 'smime.p7m', disposition: 'attachment' });
    const f = await factsOf(enc);
    expect(f.signedOrEncrypted).to.equal('smime');
    expect(f.noBody).to.equal(true);
    const xenc = msg({ type: 'application/x-pkcs7-mime', params: 'smime-type=signed-data', content: PDF, cte: 'base64' });
    expect((await factsOf(xenc)).signedOrEncrypted).to.equal('smime');
  });

  it('PGP/MIME signed and encrypted, and inline PGP armour', async () => {
    const signed = msg({ ...multipart('signed', 's', [text('t\n'), { type: 'application/pgp-signature', content: '-----BEGIN PGP SIGNATURE-----\nx\n-----END PGP SIGNATURE-----\n', cte: '7bit' }]), params: 'protocol="application/pgp-signature"; micalg=pgp-sha256' });
    expect((await factsOf(signed)).signedOrEncrypted).to.equal('pgp');
    const enc = msg({ ...multipart('encrypted', 'e', [{ type: 'application/pgp-encrypted', content: 'Version: 1\n', cte: '7bit' }, { type: 'application/octet-stream', content: '-----BEGIN PGP MESSAGE-----\nx\n-----END PGP MESSAGE-----\n', cte: '7bit' }]), params: 'protocol="application/pgp-encrypted"' });
    expect((await factsOf(enc)).signedOrEncrypted).to.equal('pgp');
    const inline = msg(text('-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nhello\n-----BEGIN PGP SIGNATURE-----\nx\n-----END PGP SIGNATURE-----\n'));
    expect((await factsOf(inline)).signedOrEncrypted).to.equal('pgp');
    const inlineEnc = msg(html('<pre>-----BEGIN PGP MESSAGE-----\nabc\n-----END PGP MESSAGE-----</pre>'));
    expect((await factsOf(inlineEnc)).signedOrEncrypted).to.equal('pgp');
  });

  it('delivery reports and read receipts', async () => {
    const mdn = msg({ ...multipart('report', 'r', [text('Your message was read.\n'), { type: 'message/disposition-notification', content: 'Final-Recipient: rfc822;bob@example.net\nDisposition: manual-action/MDN-sent-manually; displayed\n', cte: '7bit' }]), params: 'report-type=disposition-notification' });
    expect((await factsOf(mdn)).report).to.equal(true);
    const dsn = msg({ ...multipart('report', 'r', [text('Delivery failed.\n'), { type: 'message/delivery-status', content: 'Reporting-MTA: dns; mx.example.net\n', cte: '7bit' }]), params: 'report-type=delivery-status' });
    expect((await factsOf(dsn)).report).to.equal(true);
    expect((await factsOf(msg(text('plain')))).report).to.equal(false);
  });

  it('calendar METHOD from the Content-Type parameter or from the body', async () => {
    const reply = msg(multipart('alternative', 'c', [text('Accepted\n'), { type: 'text/calendar', content: 'BEGIN:VCALENDAR\nMETHOD:REPLY\nEND:VCALENDAR\n', charset: 'utf-8', cte: 'base64' }]));
    expect((await factsOf(reply)).calendar).to.deep.equal({ method: 'REPLY' });
    const cancel = msg(multipart('mixed', 'c', [text('Cancelled\n'), { type: 'text/calendar', content: 'BEGIN:VCALENDAR\n', charset: 'utf-8', cte: '7bit', params: 'method=CANCEL' }]));
    expect((await factsOf(cancel)).calendar).to.deep.equal({ method: 'CANCEL' });
    expect((await factsOf(msg(text('x')))).calendar).to.equal(undefined);
  });

  it('TNEF-only (winmail.dat) messages', async () => {
    const tnef = { type: 'application/ms-tnef', content: PDF, cte: 'base64' as const, filename: 'winmail.dat', disposition: 'attachment' as const };
    expect((await factsOf(msg(multipart('mixed', 't', [text(''), tnef])))).tnefOnly).to.equal(true);
    expect((await factsOf(msg(tnef))).tnefOnly).to.equal(true);
    expect((await factsOf(msg(multipart('mixed', 't', [text('real text\n'), tnef])))).tnefOnly).to.equal(false);
  });

  it('a main part whose header block has no ending empty line is not editable, so the decision cannot count on it', async () => {
    const cases = [
      'DKIM-Signature: v=1; b=abc\nFrom: a@example.com\nSubject: s\nContent-Type: text/plain\n',
      'From: a@example.com\r\nContent-Type: text/html',
      // a whitespace-only line continues the header block; it does not end it
      'From: a@example.com\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="b"\n\n--b\nContent-Type: text/plain\n \n--b--\n',
    ];
    for (const raw of cases) {
      const r = await surgeryChecked(Buffer.from(raw, 'latin1'), markerEdit());
      expect(r.facts?.structure.noBody, raw).to.equal(true);
      expect(r.facts?.structure.editable).to.deep.equal({ html: false, text: false });
      expect(r.report.parts).to.deep.equal([]);
    }
  });

  it('an attached .ics file does not make a calendar message; a calendar body part does, even with a name', async () => {
    const ics = 'BEGIN:VCALENDAR\nMETHOD:PUBLISH\nEND:VCALENDAR\n';
    const attached = msg(multipart('mixed', 'm', [text('Dates attached.\n'), { type: 'text/calendar', content: ics, charset: 'utf-8', cte: '7bit', disposition: 'attachment', filename: 'conference.ics' }]));
    expect((await factsOf(attached)).calendar).to.equal(undefined);
    // a file name (Content-Type name=) without an iTIP method: a file, not an invitation
    const named = msg(multipart('mixed', 'm', [text('Dates attached.\n'), { type: 'text/calendar', content: ics, charset: 'utf-8', cte: '7bit', filename: 'conference.ics' }]));
    expect((await factsOf(named)).calendar).to.equal(undefined);
    const invitation = msg(multipart('alternative', 'a', [text('Let us meet.\n'), { type: 'text/calendar', content: 'BEGIN:VCALENDAR\nMETHOD:REQUEST\nEND:VCALENDAR\n', charset: 'utf-8', cte: '7bit', params: 'method=REQUEST', filename: 'invite.ics' }]));
    expect((await factsOf(invitation)).calendar).to.deep.equal({ method: 'REQUEST' });
    // the message with an attached .ics is signed like any other
    const r = await surgeryChecked(attached, markerEdit());
    expect(r.report.parts.map((p) => p.contentType)).to.deep.equal(['text/plain']);
  });

  it('the size cap is on the decoded size: a quoted-printable part three times larger on the wire is still edited', async () => {
    const cap = 4096;
    // 2000 bytes of UTF-8, over 6000 on the wire
    const small = msg(text('\u00e9'.repeat(1000), { charset: 'utf-8', cte: 'quoted-printable' }));
    expect(small.length).to.be.greaterThan(3 * cap / 2);
    const r = await surgeryChecked(small, markerEdit(), cap);
    expect(r.facts?.structure.tooLarge).to.equal(false);
    expect(r.report.parts.map((p) => p.contentType)).to.deep.equal(['text/plain']);
    // base64 line breaks are no content either: 4000 bytes take 5476 on the wire (3/4 of that is 4107)
    const b64 = msg(text('x'.repeat(4000), { charset: 'utf-8', cte: 'base64' }));
    expect((await surgeryChecked(b64, markerEdit(), 4050)).report.parts).to.have.length(1);
    // over the cap once decoded: passes unchanged, in one chunk or in many
    const large = msg(text('\u00e9'.repeat(2100), { charset: 'utf-8', cte: 'quoted-printable' }));
    for (const chunkSize of [65536, 100]) {
      const big = await surgeryChecked(large, markerEdit(), cap, chunkSize);
      expect(big.facts?.structure.tooLarge).to.equal(true);
      expect(big.report.parts).to.deep.equal([]);
    }
    // what is held stays in proportion to the cap: soft breaks that decode to nothing are not held past four times it
    const padded = Buffer.from(`From: a@example.com\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${'=\r\n'.repeat(6000)}hello\r\n`, 'latin1');
    const p = await surgeryChecked(padded, markerEdit(), cap, 1000);
    expect(p.facts?.structure.tooLarge).to.equal(true);
    expect(p.report.parts).to.deep.equal([]);
  });

  it('noBody and tooLarge', async () => {
    expect((await factsOf(msg(attachment('only.pdf', PDF)))).noBody).to.equal(true);
    const input = msg(multipart('alternative', 'a', [text('x'.repeat(5000)), html(HTML_BODY)]));
    const r = await runSurgery(input, (f) => {
      expect(f.structure.tooLarge).to.equal(true);
      expect(f.text).to.equal(undefined);
      return markerEdit();
    }, 4096);
    // the oversize text part passes unchanged, the html part is still edited
    expect(r.report.parts.map((p) => p.contentType)).to.deep.equal(['text/html']);
    expect((await partOf(r.output, 'text/plain')).decoded).to.equal('x'.repeat(5000));
  });
});

describe('mime surgery: charsets and transfer encodings', () => {
  const samples: Array<{ charset: string; sample: string; foreign: string }> = [
    { charset: 'utf-8', sample: 'Grüße, Ζεύς, 日本', foreign: '' },
    { charset: 'us-ascii', sample: 'plain ascii', foreign: 'é' },
    { charset: 'iso-8859-1', sample: 'Grüße aus Köln', foreign: '€' },
    { charset: 'iso-8859-2', sample: 'Zażółć gęślą', foreign: '€' },
    { charset: 'iso-8859-15', sample: 'Prix: 5 € net', foreign: 'ł' },
    { charset: 'windows-1250', sample: 'Příliš žluťoučký', foreign: '日' },
    { charset: 'windows-1252', sample: 'Smart “quotes” – €', foreign: 'ł' },
    { charset: 'iso-2022-jp', sample: 'こんにちは、世界', foreign: 'ก' },
    { charset: 'shift_jis', sample: 'こんにちは、世界', foreign: 'ก' },
    { charset: 'gb2312', sample: '你好，世界', foreign: 'ก' },
    { charset: 'gbk', sample: '你好，世界', foreign: 'ก' },
    { charset: 'koi8-r', sample: 'Привет, мир', foreign: '€' },
  ];
  const ctes = ['7bit', '8bit', 'quoted-printable', 'base64'] as const;

  for (const { charset, sample, foreign } of samples) {
    for (const cte of ctes) {
      const eightBit = charset !== 'us-ascii' && charset !== 'iso-2022-jp';
      if (cte === '7bit' && eightBit) continue;
      it(`${charset} / ${cte}: keeps charset and encoding for a signature it can carry`, async () => {
        const input = msg(multipart('alternative', 'a', [text(`${sample}\nline two\n`, { charset, cte }), html(`<html><body><p>${sample}</p></body></html>`, { charset, cte })]), '\n');
        const r = await surgeryChecked(input, markerEdit());
        expect(r.facts?.text).to.equal(`${sample}\nline two\n`);
        for (const p of r.report.parts) {
          expect(p.reencoded).to.equal(false);
          expect(p.charset).to.equal(charset);
          expect(p.transferEncoding).to.equal(cte);
        }
        for (const part of await leafParts(r.output)) expect(part.decoded).to.include(sample);
      });
    }
    if (foreign) {
      it(`${charset}: a signature with "${foreign}" re-encodes text as UTF-8, html keeps ${charset} with a character reference`, async () => {
        const cte = charset === 'us-ascii' || charset === 'iso-2022-jp' ? '7bit' : '8bit';
        const input = msg(multipart('alternative', 'a', [text(`${sample}\n`, { charset, cte }), html(`<p>${sample}</p>`, { charset, cte })]));
        const edit = markerEdit({ text: `${MARK_TEXT_START} ${foreign}\nSIGNET-TEXT-END`, html: `${MARK_HTML_START} ${foreign} SIGNET-HTML-END</div>` });
        const r = await surgeryChecked(input, edit);
        const [tp, hp] = r.report.parts;
        expect(tp).to.deep.include({ reencoded: true, charset: 'utf-8', transferEncoding: 'quoted-printable' });
        expect(hp).to.deep.include({ reencoded: false, charset });
        const t = await partOf(r.output, 'text/plain');
        expect(t.charset.toLowerCase()).to.equal('utf-8');
        expect(t.encoding).to.equal('quoted-printable');
        expect(t.decoded).to.include(sample).and.include(foreign);
        const h = await partOf(r.output, 'text/html');
        expect(h.charset).to.equal(charset);
        expect(h.decoded).to.include(sample).and.include(`&#x${foreign.codePointAt(0)!.toString(16).toUpperCase()};`);
        for (const line of t.body.toString('latin1').split(/\r?\n/)) expect(line.length).to.be.at.most(76);
      });
    }
  }

  it('a 7bit part that receives non-ASCII becomes quoted-printable (charset kept when it can carry it)', async () => {
    const input = msg(text('plain ascii only\n', { charset: 'iso-8859-1', cte: '7bit' }));
    const r = await surgeryChecked(input, markerEdit({ text: `${MARK_TEXT_START} Grüße\nSIGNET-TEXT-END` }));
    expect(r.report.parts[0]).to.deep.include({ reencoded: false, charset: 'iso-8859-1', transferEncoding: 'quoted-printable' });
    const head = r.output.toString('latin1');
    expect(head).to.include('Content-Transfer-Encoding: quoted-printable');
    expect(head).not.to.include('Content-Transfer-Encoding: 7bit');
    expect((await partOf(r.output, 'text/plain')).decoded).to.include('Grüße');
  });

  it('a part without Content-Transfer-Encoding gets one when it must change', async () => {
    const input = msg(text('ascii\n', { charset: 'us-ascii', cte: 'none' }));
    const r = await surgeryChecked(input, markerEdit({ text: `${MARK_TEXT_START} ✓\nSIGNET-TEXT-END` }));
    expect(r.report.parts[0]).to.deep.include({ reencoded: true, charset: 'utf-8', transferEncoding: 'quoted-printable' });
    expect(r.output.toString('latin1')).to.match(/Content-Type: text\/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n/);
  });

  it('base64 parts stay base64 with the original line length; re-encoded base64 lines stay within 76', async () => {
    const body = 'Привет, мир. '.repeat(40);
    const input = msg(text(body, { charset: 'koi8-r', cte: 'base64' }), '\n');
    const r = await surgeryChecked(input, markerEdit({ text: `${MARK_TEXT_START} 日本\nSIGNET-TEXT-END` }));
    expect(r.report.parts[0]).to.deep.include({ reencoded: true, charset: 'utf-8', transferEncoding: 'base64' });
    const t = await partOf(r.output, 'text/plain');
    for (const line of t.body.toString('latin1').split('\n')) expect(line.length).to.be.at.most(76);
    expect(t.body.toString('latin1')).not.to.include('\r');
  });

  it('no output line exceeds 998 octets: a long 8bit html line is re-encoded as quoted-printable', async () => {
    const longLine = `<html><body><p>${'word '.repeat(150)}</p></body></html>`;
    expect(longLine.length).to.be.lessThan(998);
    const input = msg(html(longLine, { cte: '8bit' }));
    const r = await surgeryChecked(input, markerEdit({ html: `${MARK_HTML_START}${'<span>x</span>'.repeat(20)}SIGNET-HTML-END</div>` }));
    expect(r.report.parts[0].transferEncoding).to.equal('quoted-printable');
    for (const line of r.output.toString('latin1').split(/\r\n/)) expect(line.length).to.be.at.most(998);
    for (const line of (await partOf(r.output, 'text/html')).body.toString('latin1').split(/\r\n/)) expect(line.length).to.be.at.most(76);
  });

  it('keeps each part\'s line endings (CRLF message with an LF-only part body)', async () => {
    const input = Buffer.from(
      'From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nline one\nline two\n\r\n--b--\r\n',
      'latin1',
    );
    const r = await surgeryChecked(input, markerEdit());
    const t = await partOf(r.output, 'text/plain');
    expect(t.decoded).to.equal('line one\nline two\nSIGNET-TEXT-START\nJane Doe | Acme Ltd\nSIGNET-TEXT-END\n');
  });

  it('format=flowed: inserted lines are fixed lines, stuffed where needed; a soft-broken paragraph is closed first', async () => {
    const body = 'This paragraph is soft \nbroken here.\n';
    const input = msg(text(body, { charset: 'utf-8', cte: '7bit', params: 'format=flowed; delsp=yes' }), '\n');
    const sig = `${MARK_TEXT_START}   \n-- \n>not a quote\nFrom here on\nSIGNET-TEXT-END`;
    const r = await surgeryChecked(input, markerEdit({ text: sig }));
    const out = (await partOf(r.output, 'text/plain')).decoded;
    expect(out).to.equal(`${body}${MARK_TEXT_START}\n-- \n >not a quote\n From here on\nSIGNET-TEXT-END\n`);
    // placed in the middle of a flowed paragraph: an empty line ends the paragraph first
    const mid = msg(text('Hello \n{{signature}}\n', { charset: 'utf-8', cte: '7bit', params: 'format=flowed' }), '\n');
    const r2 = await surgeryChecked(mid, markerEdit());
    expect((await partOf(r2.output, 'text/plain')).decoded).to.match(/^Hello \n\nSIGNET-TEXT-START/);
    expect(r2.output.toString('latin1')).to.include('format=flowed');
  });

  it('iso-8859-1 text holding windows-1252 bytes: re-encoded as UTF-8 with the characters readers showed, kept byte for byte otherwise', async () => {
    const textBytes = Buffer.from('smart \x93quotes\x94 \x96 \x80 caf\xe9\n', 'latin1');
    const htmlBytes = Buffer.from('<p>smart \x93quotes\x94 \x80</p>', 'latin1');
    const input = msg(multipart('alternative', 'a', [
      { type: 'text/plain', charset: 'iso-8859-1', cte: '8bit', content: textBytes },
      { type: 'text/html', charset: 'iso-8859-1', cte: '8bit', content: htmlBytes },
    ]));
    // the euro sign is not ISO-8859-1: the text part becomes UTF-8, the HTML gets a character reference
    const r = await surgeryChecked(input, markerEdit({ text: `${MARK_TEXT_START} \u20ac\nSIGNET-TEXT-END`, html: `${MARK_HTML_START} \u20ac SIGNET-HTML-END</div>` }));
    expect(r.report.parts.map((p) => [p.charset, p.reencoded])).to.deep.equal([['utf-8', true], ['iso-8859-1', false]]);
    const t = await partOf(r.output, 'text/plain');
    expect(t.decoded).to.include('smart \u201cquotes\u201d \u2013 \u20ac caf\u00e9').and.include(`${MARK_TEXT_START} \u20ac`);
    expect(t.decoded).not.to.match(/[\x80-\x9f]/);
    const h = await partOf(r.output, 'text/html');
    expect(h.body.includes(htmlBytes)).to.equal(true);
    expect(h.body.toString('latin1')).to.include(' &#x20AC; SIGNET-HTML-END');
    // a signature ISO-8859-1 can carry: the part keeps its label and its bytes
    const kept = await surgeryChecked(input, markerEdit({ text: `${MARK_TEXT_START} Gr\u00fc\u00dfe\nSIGNET-TEXT-END` }));
    expect(kept.report.parts[0]).to.deep.include({ charset: 'iso-8859-1', reencoded: false, transferEncoding: '8bit' });
    expect((await partOf(kept.output, 'text/plain')).body.subarray(0, textBytes.length).equals(textBytes)).to.equal(true);
  });

  it('quoted-printable line breaks that are not the message\'s own (=0D=0A in LF mail, =0A in CRLF mail) stay encoded', async () => {
    const lf = Buffer.from('From: a@example.com\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nHello=0D=0Aworld=0D=0A\n', 'latin1');
    const r = await surgeryChecked(lf, markerEdit());
    expect(r.output.includes(0x0d)).to.equal(false);
    expect((await partOf(r.output, 'text/plain')).decoded).to.include('Hello\r\nworld\r\n').and.include(`${MARK_TEXT_START}\r\nJane Doe`);
    const crlf = Buffer.from('From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nHello=0Aworld=0A\r\n', 'latin1');
    const r2 = await surgeryChecked(crlf, markerEdit());
    expect(/\r(?!\n)|(?<!\r)\n/.test(r2.output.toString('latin1'))).to.equal(false);
    expect((await partOf(r2.output, 'text/plain')).decoded).to.include(`Hello\nworld\n`).and.include(`${MARK_TEXT_START}\nJane Doe`);
  });

  it('a message without MIME-Version gets one when the surgery writes its Content-* fields, and only then', async () => {
    const plain = Buffer.from('From: a@example.com\nSubject: s\n\nHello plain old message\n', 'latin1');
    const r = await surgeryChecked(plain, markerEdit({ text: `${MARK_TEXT_START} \u20ac\nSIGNET-TEXT-END` }));
    expect(r.output.toString('latin1')).to.include('Subject: s\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n');
    // nothing to declare: the header block stays as it came
    const same = await surgeryChecked(plain, markerEdit());
    expect(same.output.toString('latin1')).not.to.include('MIME-Version');
    // Content-Type without MIME-Version: it goes in front of the Content-* fields
    const typed = Buffer.from('From: a@example.com\r\nContent-Type: text/plain; charset=us-ascii\r\nSubject: s\r\n\r\nHi\r\n', 'latin1');
    const r3 = await surgeryChecked(typed, markerEdit({ text: `${MARK_TEXT_START} \u2713\nSIGNET-TEXT-END` }));
    expect(r3.output.toString('latin1')).to.match(/\r\nFrom: a@example\.com\r\nMIME-Version: 1\.0\r\nContent-Type: text\/plain; charset=utf-8\r\nSubject: s\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n/);
    // a MIME message keeps its one MIME-Version
    const mime = await surgeryChecked(msg(text('Hi\n', { charset: 'us-ascii', cte: '7bit' })), markerEdit({ text: `${MARK_TEXT_START} \u2713\nSIGNET-TEXT-END` }));
    expect(mime.output.toString('latin1').split('MIME-Version').length).to.equal(2);
  });

  it('parts that cannot be decoded safely pass unchanged (bogus charset, bogus encoding, invalid bytes)', async () => {
    const cases = [
      msg({ type: 'text/plain', charset: 'x-unknown-charset', cte: '8bit', content: Buffer.from('caf\u00e9 bytes\n', 'latin1') }),
      msg(text('hello', { charset: 'utf-8', cte: 'x-uuencode' as never })),
      msg({ type: 'text/plain', charset: 'utf-8', cte: '8bit', content: Buffer.from([0x48, 0x69, 0xff, 0xfe, 0x0a]) }),
      msg({ type: 'text/plain', charset: 'us-ascii', cte: '8bit', content: Buffer.from([0x48, 0x69, 0xe9, 0x0a]) }),
      // a refused label is never read as ASCII, though its bytes are: UTF-7 hides markup in them
      msg({ type: 'text/html', charset: 'utf-7', cte: '7bit', content: Buffer.from('+ADw-p+AD4-hi+ADw-/p+AD4-\n') }),
    ];
    for (const input of cases) {
      const r = await surgeryChecked(input, markerEdit());
      expect(r.report.parts).to.deep.equal([]);
      // a main part that cannot be edited counts as no editable body
      expect(r.facts?.structure.noBody).to.equal(true);
      expect(r.output.subarray(r.output.indexOf('\r\n\r\n')).equals(input.subarray(input.indexOf('\r\n\r\n')))).to.equal(true);
    }
  });

  it('valid UTF-8 under a us-ascii label or none is read as UTF-8: edited, the part relabelled, its text as the sender wrote it', async () => {
    const content = Buffer.from('Grüße aus Köln, Привет\n', 'utf8');
    for (const charset of ['us-ascii', undefined]) {
      const r = await surgeryChecked(msg({ type: 'text/plain', charset, cte: '8bit', content }), markerEdit());
      expect(r.report.parts[0], String(charset)).to.deep.include({ reencoded: true, charset: 'utf-8' });
      const part = await partOf(r.output, 'text/plain');
      expect(part.decoded, String(charset)).to.include('Grüße aus Köln, Привет');
    }
  });

  it('an unknown charset label on pure ASCII bytes is edited, re-labelled UTF-8 only if the signature needs it', async () => {
    const r = await surgeryChecked(msg({ type: 'text/plain', charset: 'x-mac-unknown', cte: '7bit', content: Buffer.from('ascii text\n') }), markerEdit());
    expect(r.report.parts[0]).to.deep.include({ reencoded: false, charset: 'x-mac-unknown', transferEncoding: '7bit' });
  });
});

describe('mime surgery: CID images', () => {
  const images = [{ cid: 'logo@signet', contentType: 'image/png', filename: 'logo.png', data: PNG }];
  const withImage = markerEdit({ images, html: `${MARK_HTML_START}<img src="cid:logo@signet" alt="Acme">SIGNET-HTML-END</div>` });

  async function relatedImage(out: Buffer) {
    const parsed = await simpleParser(out, { keepCidLinks: true });
    const img = parsed.attachments.find((a) => a.contentId === '<logo@signet>');
    expect(img, 'image part').to.not.equal(undefined);
    expect(img!.related).to.equal(true);
    expect(img!.contentDisposition).to.equal('inline');
    expect(img!.content.equals(PNG)).to.equal(true);
    expect(String(parsed.html)).to.include('cid:logo@signet');
    return parsed;
  }

  it('alternative(text, html) becomes alternative(text, related(html, image))', async () => {
    for (const eol of ['\r\n', '\n'] as const) {
      const input = msg(multipart('alternative', 'alt', [text(TEXT_BODY), html(HTML_BODY)]), eol);
      const r = await surgeryChecked(input, withImage);
      await relatedImage(r.output);
      const out = r.output.toString('latin1');
      expect(out).to.match(/--alt\r?\nContent-Type: multipart\/related;\r?\n boundary="----=_Signet_[0-9a-f]+"; type="text\/html"/);
      expect((await leafParts(r.output)).map((p) => p.contentType)).to.deep.equal(['text/plain', 'text/html', 'image/png']);
      if (eol === '\n') expect(out).not.to.include('\r');
      // the text part gets no image
      expect((await partOf(r.output, 'text/plain')).decoded).not.to.include('cid:');
    }
  });

  it('an html that already sits in multipart/related gets the image added to it', async () => {
    const input = msg(multipart('mixed', 'mix', [multipart('related', 'rel', [html(HTML_BODY), { type: 'image/gif', content: PNG, cte: 'base64', contentId: 'old@x' }]), attachment('a.pdf', PDF)]));
    const r = await surgeryChecked(input, withImage);
    const parsed = await relatedImage(r.output);
    expect(parsed.attachments.filter((a) => a.related)).to.have.length(2);
    expect(r.output.toString('latin1')).not.to.include('_Signet_');
    expect(await attachmentSums(r.output, ['logo@signet'])).to.deep.equal(await attachmentSums(input));
  });

  it('an html-only message is wrapped in multipart/related, message headers stay on top', async () => {
    const input = msg(html(HTML_BODY));
    const r = await surgeryChecked(input, withImage);
    await relatedImage(r.output);
    const out = r.output.toString('latin1');
    expect(out).to.match(/^X-Signet-Processed: [^\r]*\r\nFrom: Jane Doe/);
    const top = out.slice(0, out.indexOf('\r\n\r\n'));
    expect(top).to.include('Content-Type: multipart/related;');
    expect(top).not.to.include('Content-Transfer-Encoding');
  });

  it('an html-only message keeps its own Content-Class and Content-Language on top when the body moves into multipart/related', async () => {
    const input = msg({ ...html(HTML_BODY), extraHeaders: ['Content-Class: urn:content-classes:message', 'Content-Language: de-DE', 'Content-Description: body'] });
    const r = await surgeryChecked(input, withImage);
    await relatedImage(r.output);
    const out = r.output.toString('latin1');
    const top = out.slice(0, out.indexOf('\r\n\r\n'));
    expect(top).to.include('Content-Type: multipart/related;').and.include('Content-Class: urn:content-classes:message').and.include('Content-Language: de-DE');
    expect(top).not.to.include('Content-Description').and.not.include('Content-Transfer-Encoding');
    const inner = out.slice(out.indexOf('------=_Signet_'));
    expect(inner.slice(0, inner.indexOf('\r\n\r\n'))).to.include('Content-Type: text/html').and.include('Content-Description: body').and.not.include('Content-Class');
  });

  it('related "b" around alternative "b-alt": the image goes into the related part, not into the alternative', async () => {
    const input = msg(multipart('related', 'b', [multipart('alternative', 'b-alt', [text(TEXT_BODY), html(HTML_BODY)]), { type: 'image/png', content: PNG, cte: 'base64', contentId: 'x1' }]), '\n');
    const r = await surgeryChecked(input, withImage);
    await relatedImage(r.output);
    const out = r.output.toString('latin1');
    expect(out.indexOf('Content-ID: <logo@signet>')).to.be.greaterThan(out.indexOf('--b-alt--'));
    expect((await leafParts(r.output)).map((p) => p.contentType)).to.deep.equal(['text/plain', 'text/html', 'image/png', 'image/png']);
  });

  it('findDelimiter: the boundary, an optional "--", whitespace, then the line ending', () => {
    const find = (s: string, atLineStart = true) => findDelimiter(Buffer.from(s, 'latin1'), 'b', atLineStart);
    expect(find('--b-alt--\n\n--b\n')).to.equal(11);
    expect(find('--b-alt\n')).to.equal(-1);
    expect(find('--bb\n--b-\n')).to.equal(-1);
    expect(find('--b-- \t\r\n')).to.equal(0);
    expect(find('--b \n')).to.equal(0);
    expect(find('x--b\n')).to.equal(-1);
    expect(find('--b\n', false)).to.equal(-1);
  });

  it('a message without MIME-Version wrapped in multipart/related gets one', async () => {
    const input = Buffer.from('From: a@example.com\r\nSubject: s\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>hi</p>\r\n', 'latin1');
    const r = await surgeryChecked(input, withImage);
    await relatedImage(r.output);
    expect(r.output.toString('latin1')).to.match(/\r\nSubject: s\r\nMIME-Version: 1\.0\r\nContent-Type: multipart\/related;/);
  });

  it('a text-only message gets no image parts', async () => {
    const r = await surgeryChecked(msg(text(TEXT_BODY)), withImage);
    expect((await leafParts(r.output)).map((p) => p.contentType)).to.deep.equal(['text/plain']);
  });
});

describe('mime surgery: malformed input never throws and never loses bytes', () => {
  const cases: Record<string, string> = {
    'missing closing boundary': 'From: a@example.com\r\nContent-Type: multipart/alternative; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n',
    'missing start boundary': 'From: a@example.com\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\nno boundary ever appears\r\n',
    'no header/body separator': 'From: a@example.com\r\nSubject: x\r\nContent-Type: text/plain',
    'multipart without boundary parameter': 'From: a@example.com\r\nContent-Type: multipart/mixed\r\n\r\nbody\r\n',
    '8-bit header bytes': 'From: J\xfcrgen <j@example.com>\r\nSubject: Gr\xc3\xbc\xc3\x9fe\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhi\r\n',
    'very long line': `From: a@example.com\r\nContent-Type: text/plain\r\n\r\n${'x'.repeat(5000)}\r\n`,
    'mixed line endings': 'From: a@example.com\nSubject: s\r\nContent-Type: multipart/alternative; boundary=b\n\n--b\r\nContent-Type: text/plain\n\nhello\r\n--b\nContent-Type: text/html\r\n\r\n<p>x</p>\n--b--\r\n',
    'empty message': '',
    'indented first header line': ' From: a@example.com\r\nSubject: s\r\n\r\nbody\r\n',
    // cut off inside the indented lines: the stamp follows them, on a line of its own
    'only indented lines, the last unterminated': '   Content-Transfer-Encoding: base64\r\n    p',
    'only an mbox line and an indented one, unterminated': 'From a@example.com Mon Nov 23 10:00:00 2026\n From: a@example.com',
    // a damaged header: the boundary's quote never closes, and its value runs across a fold
    'a nested boundary folded inside an unclosed quote':
      'From: a@example.com\r\nContent-Type: multipart/alternative; boundary="alt"\r\n\r\n--alt\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nhello\r\n--alt\r\nContent-Type: multipart/related;\r\n\tboundary="rel--Type: text/html;\r\n\tcharset=us-ascii\r\n\r\n<p>hi</p>\r\n--rel--\r\n--alt--\r\n',
  };
  for (const [name, raw] of Object.entries(cases)) {
    it(name, async () => {
      const input = Buffer.from(raw, 'latin1');
      const r = await surgeryChecked(input, markerEdit());
      expect(r.report.bytesIn).to.equal(input.length);
      for (const l of (await leafParts(r.output)).filter((p) => p.contentType.startsWith('text/'))) {
        expect(l.decoded.split('SIGNET-').length).to.be.at.most(3);
      }
    });
  }

  it('a message cut off before its closing delimiters still gets its image: the new related part is closed after it', async () => {
    const images = [{ cid: 'logo@signet', contentType: 'image/png', filename: 'logo.png', data: PNG }];
    const withImage = markerEdit({ images, html: `${MARK_HTML_START}<img src="cid:logo@signet" alt="Acme">SIGNET-HTML-END</div>` });
    for (const eol of ['\r\n', '\n'] as const) {
      const raw = ['From: a@example.com', 'Content-Type: multipart/alternative; boundary="b"', '', '--b', 'Content-Type: text/plain', '', 'hello', '--b', 'Content-Type: text/html', '', '<p>hi</p>', ''].join(eol);
      const input = Buffer.from(raw, 'latin1');
      const r = await runSurgery(input, withImage);
      expect(r.report.parts.map((p) => p.contentType)).to.deep.equal(['text/plain', 'text/html']);
      const out = r.output.toString('latin1');
      // everything before the HTML part's body is as it was (after the stamp), the text part's edit aside
      expect(out.slice(out.indexOf(`--b${eol}`), out.indexOf('hello'))).to.equal(raw.slice(raw.indexOf(`--b${eol}`), raw.indexOf('hello')));
      // the related part the edit opened ends with its own closing delimiter, after the image; the cut-off alternative stays open
      const boundary = /boundary="(----=_Signet_[0-9a-f]+)"/.exec(out)![1]!;
      expect(out.endsWith(`--${boundary}--${eol}`)).to.equal(true);
      expect(out.indexOf('Content-ID: <logo@signet>')).to.be.lessThan(out.lastIndexOf(`--${boundary}--`));
      expect(out).not.to.include('--b--');
      const parsed = await simpleParser(r.output, { keepCidLinks: true });
      expect(String(parsed.html)).to.include('cid:logo@signet');
      expect(parsed.attachments.find((a) => a.contentId === '<logo@signet>')?.content.equals(PNG)).to.equal(true);
    }
  });

  it('an existing related part left unclosed gets its image and closing delimiter in front of the enclosing multipart\'s next delimiter, never in a sibling part', async () => {
    const images = [{ cid: 'logo@signet', contentType: 'image/png', filename: 'logo.png', data: PNG }];
    const withImage = markerEdit({ images, html: `${MARK_HTML_START}<img src="cid:logo@signet" alt="Acme">SIGNET-HTML-END</div>` });
    const pdf = ['Content-Type: application/pdf; name=a.pdf', 'Content-Disposition: attachment; filename=a.pdf', 'Content-Transfer-Encoding: base64', '', PDF.toString('base64')];
    for (const closed of [true, false]) {
      // mixed(related(html) with no "--r--", pdf), the outer part closed or cut off too
      const raw = ['From: a@example.com', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="m"', '', '--m', 'Content-Type: multipart/related; boundary="r"', '', '--r', 'Content-Type: text/html', '', '<html><body><p>hi</p></body></html>', '--m', ...pdf, ...(closed ? ['--m--', ''] : [''])].join('\r\n');
      const input = Buffer.from(raw, 'latin1');
      const r = await runSurgery(input, withImage);
      const out = r.output.toString('latin1');
      // the image and the related part's end come right before "--m", and what follows it is as it was
      const tail = raw.slice(raw.lastIndexOf('\r\n--m\r\n'));
      expect(out.endsWith(tail), `closed: ${closed}`).to.equal(true);
      const before = out.slice(0, out.length - tail.length);
      expect(before).to.match(/--r\r\nContent-Type: image\/png; name=logo\.png\r\n[^]*\r\n--r--$/);
      const parsed = await simpleParser(r.output, { keepCidLinks: true });
      expect(parsed.attachments.find((a) => a.contentId === '<logo@signet>')?.content.equals(PNG), `closed: ${closed}`).to.equal(true);
      expect(parsed.attachments.find((a) => a.filename === 'a.pdf')?.content.equals(PDF), `closed: ${closed}`).to.equal(true);
      expect(await attachmentSums(r.output, ['logo@signet'])).to.deep.equal(await attachmentSums(input));
    }
  });

  it('a preamble larger than the cap on held bytes passes the message through unchanged (too large), without holding it', async () => {
    const preamble = 'This is a multi-part message in MIME format.\r\n'.repeat(100);
    const input = msg(multipart('alternative', 'alt', [text(TEXT_BODY), html(HTML_BODY)], { preamble }));
    let seen: { tooLarge: boolean; text?: string } | undefined;
    // decided as soon as the held bytes pass the cap, before any body part was seen; the engine passes such a message
    const r = await runSurgery(input, (f) => ((seen = { tooLarge: f.structure.tooLarge, text: f.text }), f.structure.tooLarge ? PASS : markerEdit()), 1000);
    expect(seen).to.deep.equal({ tooLarge: true, text: undefined });
    expect(r.report.parts).to.deep.equal([]);
    expect(r.output.equals(input)).to.equal(true);
  });

  it('a text part in a charset nothing here can decode is left as it is; the HTML part is still edited', async () => {
    // 8-bit bytes under a label no codec here knows: read as ASCII, they would be mangled (ASCII bytes alone are read as ASCII)
    const input = msg(multipart('alternative', 'alt', [{ type: 'text/plain', charset: 'x-klingon', content: Buffer.from('Hello Bob \xe9\xa0\r\n', 'latin1'), cte: '8bit' }, html(HTML_BODY)]));
    const r = await surgeryChecked(input, markerEdit());
    expect(r.report.parts.map((p) => p.contentType)).to.deep.equal(['text/html']);
    expect(r.facts?.text).to.include('Hello Bob');
    expect(r.output.toString('latin1')).to.include('Content-Type: text/plain; charset=x-klingon\r\nContent-Transfer-Encoding: 8bit\r\n\r\nHello Bob \xe9\xa0\r\n');
  });

  it('a delimiter after a lone CR leaves the part unedited however the input is chunked: the message keeps its parts', async () => {
    // mailsplit takes "\r--outer" for a delimiter only when no chunk ends right before it; read as
    // content, the edit would have re-encoded it (and the attachment after it) inside the HTML part
    const raw = 'From: a@example.com\r\nContent-Type: multipart/mixed; boundary="outer"\r\n\r\n--outer\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Hello</p></body></html>\r\n\r--outer\r\nContent-Type: application/pdf; name="a.pdf"\r\nContent-Disposition: attachment; filename="a.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--outer--\r\n';
    const input = Buffer.from(raw, 'latin1');
    const split = raw.indexOf('\r--outer\r\nContent-Type: application/pdf');
    for (const chunkSize of [7, split, 65536]) {
      const r = await surgeryChecked(input, markerEdit(), 1024 * 1024, chunkSize);
      expect(await attachmentSums(r.output), `chunks of ${chunkSize}`).to.deep.equal(await attachmentSums(input));
      if (r.report.parts.length) continue; // read as a delimiter: the HTML part ends before it and is edited
      const out = r.output.toString('latin1');
      expect(out.slice(out.indexOf('\n') + 1), `chunks of ${chunkSize}`).to.equal(raw);
    }
  });

  it('a message mailsplit mis-splits is copied unchanged after the top header', async () => {
    // a nested part whose header block is cut by its parent's delimiter makes the splitter repeat bytes
    const raw = 'From: a@example.com\nContent-Type: multipart/mixed; boundary="f4"\n\nDoesnt matter\n\n--f4\nContent-Type: multipart/alternative; boundary=alt-f4\n--f4\nContent-Type: image/gif; name="a.gif"\nContent-Disposition: attachment; filename="a.gif"\nContent-Transfer-Encoding: base64\nR0lGODlhAQABAAAAACw=\n--f4--\n';
    const input = Buffer.from(raw, 'latin1');
    const r = await runSurgery(input, markerEdit());
    const out = r.output.toString('latin1');
    expect(out.slice(out.indexOf('\n') + 1)).to.equal(raw);
    expect(r.report.parts).to.deep.equal([]);
  });

  it('a message the splitter gives up on (over 1000 parts, huge header block) is copied unchanged', async () => {
    const many = msg(multipart('mixed', 'many', [text('hello\n'), ...Array.from({ length: 1005 }, (_, i) => attachment(`f${i}.bin`, Buffer.from([i % 256])))]));
    const huge = Buffer.concat([Buffer.from('From: a@example.com\r\n'), Buffer.from(Array.from({ length: 20000 }, (_, i) => `X-Filler-${i}: ${'y'.repeat(60)}\r\n`).join('')), Buffer.from('\r\nbody\r\n')]);
    for (const [input, from] of [[many, many.indexOf('--many\r\nContent-Type: application/pdf')], [huge, huge.indexOf('\r\n\r\n')]] as const) {
      const r = await runSurgery(input, markerEdit());
      expect(r.report.bytesIn).to.equal(input.length);
      const out = r.output.toString('latin1');
      // the stamp is there even when the header block could not be read; what follows is untouched
      expect(out.startsWith('X-Signet-Processed: org=acme')).to.equal(true);
      expect(out.endsWith(input.toString('latin1').slice(from))).to.equal(true);
    }
    const huge2 = Buffer.from(`From: a@example.com\r\n${'X-Filler: y\r\n'.repeat(30000)}\r\nbody\r\n`, 'latin1');
    const r2 = await runSurgery(huge2, markerEdit());
    expect(r2.output.toString('latin1')).to.equal(`X-Signet-Processed: org=acme; rule=default; template=std; engine=test\r\n${huge2.toString('latin1')}`);
  });

  it('chunking does not change the result', async () => {
    const input = msg(multipart('mixed', 'm', [multipart('alternative', 'a', [text(TEXT_BODY), html(HTML_BODY)]), attachment('a.pdf', PDF)]), '\n');
    const whole = await runSurgery(input, markerEdit());
    for (const size of [1, 7, 64, 1000]) {
      const chunked = await runSurgery(input, markerEdit(), undefined, size);
      expect(chunked.output.equals(whole.output), `chunk size ${size}`).to.equal(true);
    }
  });

  it('an error in decide rejects the report and errors the output', async () => {
    const handle = transformMessage(Readable.from([msg(text('x'))]), () => {
      throw new Error('rules exploded');
    }, { maxEditablePartBytes: 1e6 });
    const outputError = new Promise<Error>((resolve) => handle.output.on('error', resolve));
    handle.output.resume();
    let caught: unknown;
    try {
      await handle.report;
    } catch (err) {
      caught = err;
    }
    expect(String(caught)).to.include('rules exploded');
    expect(String(await outputError)).to.include('rules exploded');
  });
});

describe('mime surgery: CID images next to an empty HTML part', () => {
  // Found by the property test: mailsplit gives an empty body the line ending
  // that precedes the next delimiter, so the new multipart/related's closing
  // delimiter must end its own line, or the next delimiter is glued to it.
  for (const eol of ['\r\n', '\n'] as const) {
    it(`keeps the next delimiter on its own line (${JSON.stringify(eol)})`, async () => {
      const PNG_BYTES = Buffer.from('89504e470d0a1a0a0000000d4948445200', 'hex');
      const input = buildMessage({
        body: multipart('mixed', 'outer', [
          multipart('mixed', 'inner', [html('', { cte: '7bit' }), text('', { cte: '7bit' })]),
          text('', { cte: '7bit' }),
        ]),
        eol,
      });
      const images = [{ cid: 'logo@signet', contentType: 'image/png', filename: 'logo.png', data: PNG_BYTES }];
      const r = await surgeryChecked(input, markerEdit({ images, html: `${MARK_HTML_START}<img src="cid:logo@signet">SIGNET-HTML-END</div>` }));
      expect(r.report.parts.map((p) => p.contentType)).to.deep.equal(['text/html']);
      expect(r.output.toString('latin1')).to.match(new RegExp(`--${eol}--inner`.replace(/\r/g, '\\r').replace(/\n/g, '\\n')));
      const parsed = await simpleParser(r.output);
      expect(parsed.attachments.map((a) => a.contentId)).to.deep.equal(['<logo@signet>']);
    });
  }
});


describe('mime surgery: inserted text cannot end the part', () => {
  // A directory value is escaped for HTML, but a line break and `--<boundary>` are plain text:
  // written as they are, they would close the part and let what follows pose as a part of its own.
  const hostile = '\n--alt-1\nContent-Type: text/html\n\n<script>x</script>\n--mix-1\n';
  for (const cte of ['quoted-printable', '8bit', '7bit'] as const) {
    it(`re-encodes a ${cte} body as base64 when an inserted line starts with an enclosing delimiter`, async () => {
      const input = msg(multipart('mixed', 'mix-1', [
        multipart('alternative', 'alt-1', [text(TEXT_BODY, { cte }), html(HTML_BODY, { cte })]),
        attachment('report.pdf', PDF),
      ]));
      const edit = markerEdit({ text: `${MARK_TEXT_START}\nJane Doe${hostile}${MARK_TEXT_END}`, html: `${MARK_HTML_START}<p>Jane Doe${hostile}</p>${MARK_HTML_END}` });
      const r = await surgeryChecked(input, edit);
      const leaves = await leafParts(r.output);
      expect(leaves.map((p) => p.contentType)).to.deep.equal(['text/plain', 'text/html', 'application/pdf']);
      expect(r.report.parts.map((p) => p.transferEncoding)).to.deep.equal(['base64', 'base64']);
      expect(leaves[0]!.decoded).to.contain('Jane Doe\r\n--alt-1\r\nContent-Type: text/html');
      expect(leaves[1]!.decoded).to.contain('<script>x</script>');
      expect(await attachmentSums(r.output)).to.deep.equal(await attachmentSums(input));
    });
  }

  it('keeps the encoding when the delimiter text is inside a line, not at its start', async () => {
    const input = msg(multipart('alternative', 'alt-1', [text(TEXT_BODY), html(HTML_BODY)]));
    const r = await surgeryChecked(input, markerEdit({ text: `${MARK_TEXT_START}\nJane Doe --alt-1\n${MARK_TEXT_END}`, html: `${MARK_HTML_START}<p>Jane Doe --alt-1</p>${MARK_HTML_END}` }));
    expect(r.report.parts.map((p) => p.transferEncoding)).to.deep.equal(['quoted-printable', 'quoted-printable']);
  });
});
