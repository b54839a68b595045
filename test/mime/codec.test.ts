import { expect } from 'chai';
import fc from 'fast-check';
import libqp from 'libqp';
import { canCarry, charsetFor, decodedSizeCounter, roundTrips } from '../../appliance/src/mime/codec';
import { decodeQp, decodeQpByLines, decodeQpBytewise, encodeQp, spliceQp } from '../../appliance/src/mime/qp';
import { buildMessage, html, multipart, text } from './support/build';
import { surgeryChecked } from './support/check';
import { partOf } from './support/parts';
import { MARK_HTML_END, MARK_HTML_START, MARK_TEXT_END, MARK_TEXT_START, markerEdit } from './support/run';

describe('mime codec: quoted-printable', () => {
  it('decodeQp gives the same bytes as libqp.decode on arbitrary input', () => {
    const qpish = fc.string({ unit: fc.constantFrom('=', 'A', 'f', '3', 'D', ' ', '\t', '\r', '\n', '=\r\n', '=\n', '=3D', '=C3=A9', 'x', '\u00e9'), maxLength: 200 });
    fc.assert(
      fc.property(qpish, (s) => {
        const raw = Buffer.from(s, 'latin1');
        expect(decodeQp(raw).bytes.equals(libqp.decode(raw.toString('latin1')))).to.equal(true);
      }),
      { numRuns: 5000 },
    );
  });

  it('decodes a line at a time to the same bytes and the same line map as byte by byte', () => {
    const qpish = fc.string({ unit: fc.constantFrom('=', 'A', 'f', '3', 'D', ' ', '\t', '\r', '\n', '\r\n', '=\r\n', '=\n', '= \r\n', '=3D', '=C3=A9', '=\r', 'x', 'abc def', '\u00e9'), maxLength: 300 });
    fc.assert(
      fc.property(qpish, (s) => {
        const raw = Buffer.from(s, 'latin1');
        const fast = decodeQpByLines(raw);
        const slow = decodeQpBytewise(raw);
        // only a CR that is not part of a CRLF sends the part to the byte-wise decoder
        if (/\r(?!\n)/.test(s)) return;
        expect(fast, 'decoded a line at a time').to.not.equal(undefined);
        expect(fast!.bytes.equals(slow.bytes)).to.equal(true);
        expect(fast!.lines).to.deep.equal(slow.lines);
        expect(decodeQp(raw).bytes.equals(slow.bytes)).to.equal(true);
      }),
      { numRuns: 5000 },
    );
  });

  it('encodeQp decodes back to the same bytes, with lines of at most 76 octets and only the message\'s line ending on the wire', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.constantFrom('\n', '\r\n', ' \n', '\t\r\n', '=', ' ', 'é', '.'.repeat(80))), { maxLength: 40 }),
        fc.constantFrom('\r\n', '\n'),
        (pieces, eol) => {
          const bytes = Buffer.concat(pieces.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));
          const encoded = encodeQp(bytes, eol);
          expect(libqp.decode(encoded.toString('latin1')).equals(bytes)).to.equal(true);
          expect(decodeQp(encoded).bytes.equals(bytes)).to.equal(true);
          for (const line of encoded.toString('latin1').split(/\r?\n/)) expect(line.length).to.be.at.most(76);
          // only printable ASCII, tab and line breaks on the wire
          expect(/^[\t\r\n\x20-\x7e]*$/.test(encoded.toString('latin1'))).to.equal(true);
          // the text's line breaks that are `eol` are the hard line breaks; no other CR or LF reaches the wire
          const wire = encoded.toString('latin1');
          expect((eol === '\r\n' ? /\r(?!\n)|(?<!\r)\n/ : /\r/).test(wire)).to.equal(false);
          const breaks = (t: string) => t.split(eol === '\r\n' ? '\r\n' : /(?<!\r)\n/).length - 1;
          expect(breaks(wire.replace(/=\r?\n/g, ''))).to.equal(breaks(bytes.toString('latin1')));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('counts the decoded size of a body as it streams, in any chunking, as decodeQp would decode it', () => {
    const qpish = fc.string({ unit: fc.constantFrom('=', 'A', 'f', '3', 'D', ' ', '\t', '\r', '\n', '\r\n', '=\r\n', '=\n', '= \r\n', '=3D', '=C3=A9', '=\r', 'x', 'abc def', '\u00e9'), maxLength: 300 });
    fc.assert(
      fc.property(qpish, fc.array(fc.nat(), { maxLength: 8 }), (s, cuts) => {
        // a final line break settles what a trailing `=` or `=X` decodes to
        const raw = Buffer.from(`${s}\n`, 'latin1');
        const counter = decodedSizeCounter('quoted-printable');
        let from = 0;
        for (const cut of [...cuts.map((c) => c % (raw.length + 1))].sort((a, b) => a - b)) {
          counter.add(raw.subarray(from, Math.max(from, cut)));
          from = Math.max(from, cut);
        }
        counter.add(raw.subarray(from));
        const exact = decodeQp(raw).bytes.length;
        // only an escape a soft break splits (=A=\nB) is counted as its characters
        if (/=[0-9A-Fa-f]?=/.test(s)) expect(counter.size).to.be.at.least(exact);
        else expect(counter.size).to.equal(exact);
      }),
      { numRuns: 5000 },
    );
    const b64 = decodedSizeCounter('base64');
    b64.add(Buffer.from('aGVsbG8gd29y\r\nbGQ=\r\n'));
    expect(b64.size).to.equal('hello world'.length);
  });

  it('a splice inside one long soft-wrapped line re-encodes only the soft lines it touches', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom('a', 'b', ' ', '=', 'é', '\t', '.', '<p>', '\n'), minLength: 1, maxLength: 600 }),
        fc.string({ unit: fc.constantFrom('x', ' ', '=', 'ü', '\n', '-- '), maxLength: 120 }),
        fc.nat(),
        fc.nat(),
        fc.constantFrom('\r\n', '\n'),
        (body, insert, p, q, eol) => {
          const original = Buffer.from(body, 'utf8');
          const raw = encodeQp(original, eol);
          const decoded = decodeQp(raw);
          expect(decoded.bytes.equals(original)).to.equal(true);
          const from = p % (original.length + 1);
          const to = from + (q % (original.length - from + 1));
          const replacement = Buffer.concat([original.subarray(0, from), Buffer.from(insert, 'utf8'), original.subarray(to)]);
          const spliced = spliceQp(raw, decoded, { from, to, delta: replacement.length - original.length }, replacement, eol);
          expect(libqp.decode(spliced.toString('latin1')).equals(replacement)).to.equal(true);
          for (const line of spliced.toString('latin1').split(/\r?\n/)) expect(line.length).to.be.at.most(76);
          // every encoded soft line that ends before the edit is copied as it was
          const firstSoftLines = raw.toString('latin1').split(/(?<==\r?\n)/);
          let kept = 0;
          let decodedSoFar = 0;
          for (const soft of firstSoftLines) {
            const len = libqp.decode(soft).length;
            if (!/=\r?\n$/.test(soft) || decodedSoFar + len > from || /=[0-9A-F]?=\r?\n$/.test(soft)) break;
            kept += soft.length;
            decodedSoFar += len;
          }
          expect(spliced.subarray(0, kept).equals(raw.subarray(0, kept))).to.equal(true);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('maps hard lines so a splice re-encodes only the touched lines', () => {
    const raw = Buffer.from('First line with a soft=\r\n break.\r\nSecond =3D line\r\nThird line\r\n', 'latin1');
    const decoded = decodeQp(raw);
    expect(decoded.bytes.toString('latin1')).to.equal('First line with a soft break.\r\nSecond = line\r\nThird line\r\n');
    expect(decoded.lines.map((l) => raw.subarray(l.encStart, l.encEnd).toString('latin1'))).to.deep.equal([
      'First line with a soft=\r\n break.\r\n',
      'Second =3D line\r\n',
      'Third line\r\n',
    ]);
    const edited = Buffer.from('First line with a soft break.\r\nSecond = line, edited\r\nThird line\r\n', 'latin1');
    const from = decoded.bytes.indexOf('Second');
    const out = spliceQp(raw, decoded, { from, to: from + 'Second = line\r\n'.length, delta: edited.length - decoded.bytes.length }, edited, '\r\n');
    expect(out.toString('latin1')).to.equal('First line with a soft=\r\n break.\r\nSecond =3D line, edited\r\nThird line\r\n');
  });

  it('a signature above the quote keeps the encoded bytes of the quoted thread', async () => {
    const thread = 'Sure.\n\nOn Mon, 23 Nov 2026, Bob <bob@example.net> wrote:\n> ' + 'quoted words '.repeat(20) + '\n> caf\u00e9\n';
    const input = buildMessage({ body: text(thread, { charset: 'utf-8', cte: 'quoted-printable' }) });
    const r = await surgeryChecked(input, markerEdit());
    const before = (await partOf(input, 'text/plain')).body.toString('latin1');
    const after = (await partOf(r.output, 'text/plain')).body.toString('latin1');
    const quoted = before.slice(before.indexOf('On Mon'));
    expect(after.endsWith(quoted)).to.equal(true);
    expect(after.startsWith('Sure.\r\n')).to.equal(true);
  });
});

describe('mime codec: charsets', () => {
  it('reads ISO-8859-1 as windows-1252, byte for byte both ways; added text keeps to ISO-8859-1', () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    for (const label of ['iso-8859-1', 'ISO_8859-1', 'latin1', 'l1', 'cp819']) {
      const cs = charsetFor(label, all)!;
      const text = cs.decode(all);
      expect(roundTrips(cs, all, text), label).to.equal(true);
      expect(cs.encode(text).equals(all)).to.equal(true);
      expect(cs.decode(Buffer.from([0x80, 0x93, 0x94, 0x96, 0x81, 0xe9]))).to.equal('\u20ac\u201c\u201d\u2013\u0081\u00e9');
      expect(canCarry(cs, 'Gr\u00fc\u00dfe')).to.equal(true);
      expect(canCarry(cs, '\u20ac')).to.equal(false);
    }
    // ISO-8859-15 is another charset, with the euro at 0xA4
    expect(charsetFor('iso-8859-15', Buffer.from([0xa4]))!.decode(Buffer.from([0xa4]))).to.equal('\u20ac');
  });

  it('refuses UTF-7 and other codecs that are no message charset, even on ASCII bytes', () => {
    for (const label of ['utf-7', 'UTF7', 'unicode-1-1-utf-7', 'base64', 'hex']) {
      expect(charsetFor(label, Buffer.from('+ADw-p+AD4-hi')), label).to.equal(undefined);
    }
    // an unknown label on ASCII bytes is still read as ASCII
    expect(charsetFor('x-mac-unknown', Buffer.from('hi'))?.label).to.equal('x-mac-unknown');
  });

  it('ISO-2022-JP: added text keeps to ISO-2022-JP proper (no JIS X 0212, no half-width katakana)', async () => {
    const cs = charsetFor('iso-2022-jp', Buffer.from('hi'))!;
    expect(canCarry(cs, '\u5c71\u7530\u592a\u90ce \u3053\u3093\u306b\u3061\u306f')).to.equal(true);
    // encoding-japanese writes these with ESC $ ( D and ESC ( I, which readers of ISO-2022-JP show as garbage
    expect(canCarry(cs, 'Zo\u00eb M\u00fcller')).to.equal(false);
    expect(canCarry(cs, '\uff71\uff72')).to.equal(false);
    const signature = { html: `${MARK_HTML_START} Zo\u00eb \u5c71\u7530 ${MARK_HTML_END}`, text: `${MARK_TEXT_START}\nZo\u00eb \u5c71\u7530\n${MARK_TEXT_END}` };
    const input = buildMessage({
      body: multipart('alternative', 'jp', [
        text('\u3053\u3093\u306b\u3061\u306f\n', { charset: 'iso-2022-jp', cte: '7bit' }),
        html('<p>\u3053\u3093\u306b\u3061\u306f</p>\n', { charset: 'iso-2022-jp', cte: '7bit' }),
      ]),
    });
    const r = await surgeryChecked(input, markerEdit(signature));
    const htmlPart = await partOf(r.output, 'text/html');
    expect(htmlPart.charset).to.equal('iso-2022-jp');
    const wire = htmlPart.body.toString('latin1');
    expect(wire.includes('\x1b$(D') || wire.includes('\x1b(I')).to.equal(false);
    expect(htmlPart.decoded).to.contain('Zo&#xEB; \u5c71\u7530');
    // the text part cannot spell the name in ISO-2022-JP: it is re-encoded as UTF-8, its Japanese intact
    const textPart = await partOf(r.output, 'text/plain');
    expect(textPart.charset).to.equal('utf-8');
    expect(textPart.decoded).to.contain('\u3053\u3093\u306b\u3061\u306f');
    expect(textPart.decoded).to.contain('Zo\u00eb \u5c71\u7530');
  });

  it('bytes that shift into other character sets (ISO-2022-KR, HZ, unlabelled ISO-2022-JP) or hold NULs are not read as ASCII', async () => {
    const kr = Buffer.from('\x1b$)C\x0e>H3gGO<<?d\x0f\r\n', 'latin1');
    expect(charsetFor('iso-2022-kr', kr)).to.equal(undefined);
    expect(charsetFor('hz-gb-2312', Buffer.from('~{<:Ky2;S{#,NpJ)l6HK!#~}'))).to.equal(undefined);
    const jis = Buffer.from('\x1b$B$3$s$K$A$O\x1b(B\r\n', 'latin1');
    for (const label of [undefined, 'us-ascii', 'x-unknown']) expect(charsetFor(label, jis), String(label)).to.equal(undefined);
    // UTF-16 under a name iconv-lite does not know
    expect(charsetFor('unicode', Buffer.from('hi\r\n', 'utf16le'))).to.equal(undefined);
    // relabelled UTF-8 the Korean text would turn into escape codes: the part passes unchanged
    const input = buildMessage({ body: { type: 'text/plain', charset: 'iso-2022-kr', cte: '7bit', content: kr } });
    const r = await surgeryChecked(input, markerEdit({ text: `${MARK_TEXT_START}\nZo\u00eb\n${MARK_TEXT_END}` }));
    expect(r.report.parts).to.deep.equal([]);
    expect(r.facts!.structure.noBody).to.equal(true);
  });
});
