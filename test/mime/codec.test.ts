import { expect } from 'chai';
import fc from 'fast-check';
import libqp from 'libqp';
import { decodeQp, decodeQpByLines, decodeQpBytewise, encodeQp, spliceQp } from '../../appliance/src/mime/qp';
import { buildMessage, text } from './support/build';
import { surgeryChecked } from './support/check';
import { partOf } from './support/parts';
import { markerEdit } from './support/run';

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

  it('encodeQp decodes back to the same bytes, with lines of at most 76 octets and the text\'s own line breaks', () => {
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
          // hard line breaks pass through as they were
          const lineFeeds = (t: string) => t.split('\n').length - 1;
          expect(lineFeeds(encoded.toString('latin1').replace(/=\r?\n/g, ''))).to.equal(lineFeeds(bytes.toString('latin1')));
        },
      ),
      { numRuns: 300 },
    );
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
