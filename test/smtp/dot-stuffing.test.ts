// DotStuffer writes the same DATA bytes as nodemailer's DataStream, which it
// replaces on the way to the downstream: checked against it on random bytes
// rich in CR, LF and dots, cut into random chunks, and on the cases that
// matter by hand.
import { expect } from 'chai';
import fc from 'fast-check';
import type { Transform } from 'node:stream';
import DataStream from 'nodemailer/lib/smtp-connection/data-stream';
import { DotStuffer } from '../../appliance/src/smtp/dot-stuffing';

async function encode(stream: Transform, chunks: Buffer[]): Promise<{ bytes: Buffer; pieces: Buffer[] }> {
  const pieces: Buffer[] = [];
  stream.on('data', (piece: Buffer) => pieces.push(piece));
  const ended = new Promise((resolve) => stream.once('end', resolve));
  for (const chunk of chunks) stream.write(chunk);
  stream.end();
  await ended;
  return { bytes: Buffer.concat(pieces), pieces };
}

const stuffed = async (...chunks: string[]) => (await encode(new DotStuffer(), chunks.map((c) => Buffer.from(c, 'latin1')))).bytes.toString('latin1');

/** The input cut at the given offsets (sorted, deduplicated, inside it). */
function cut(data: Buffer, offsets: number[]): Buffer[] {
  const at = [...new Set(offsets.map((o) => o % (data.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const o of [...at, data.length]) {
    chunks.push(data.subarray(from, o));
    from = o;
  }
  return chunks;
}

describe('DATA dot-stuffing toward the downstream', () => {
  it('writes exactly what nodemailer\'s DataStream writes, however the input is cut into chunks', async () => {
    const byte = fc.constantFrom(0x0d, 0x0a, 0x2e, 0x2e, 0x41, 0x20, 0xe9, 0x00);
    await fc.assert(
      fc.asyncProperty(fc.array(byte, { maxLength: 120 }), fc.array(fc.nat(), { maxLength: 12 }), async (bytes, offsets) => {
        const chunks = cut(Buffer.from(bytes), offsets);
        const ours = await encode(new DotStuffer(), chunks);
        const theirs = await encode(new DataStream(), chunks);
        expect(ours.bytes.toString('latin1')).to.equal(theirs.bytes.toString('latin1'));
      }),
      { numRuns: 3000 },
    );
  });

  it('doubles a dot that begins a line, including the first line and a line cut across chunks', async () => {
    expect(await stuffed('.hidden\r\n')).to.equal('..hidden\r\n.\r\n');
    expect(await stuffed('a\r\n.\r\nb\r\n')).to.equal('a\r\n..\r\nb\r\n.\r\n');
    expect(await stuffed('a\r\n', '.b\r\n')).to.equal('a\r\n..b\r\n.\r\n');
    expect(await stuffed('a\r', '\n', '.b\r\n')).to.equal('a\r\n..b\r\n.\r\n');
    expect(await stuffed('a.b\r\n. \r\n')).to.equal('a.b\r\n.. \r\n.\r\n');
  });

  it('turns bare LF and bare CR into CRLF, a dot after either counting as a line start', async () => {
    expect(await stuffed('a\nb\n')).to.equal('a\r\nb\r\n.\r\n');
    expect(await stuffed('a\rb')).to.equal('a\r\nb\r\n.\r\n');
    expect(await stuffed('a\r', '.b')).to.equal('a\r\n..b\r\n.\r\n');
    expect(await stuffed('a\n.\n')).to.equal('a\r\n..\r\n.\r\n');
    expect(await stuffed('a', '\n', '.')).to.equal('a\r\n..\r\n.\r\n');
  });

  it('ends the data with the terminating line, after a line end of its own when the message lacks one', async () => {
    expect(await stuffed('a\r\n')).to.equal('a\r\n.\r\n');
    expect(await stuffed('a')).to.equal('a\r\n.\r\n');
    expect(await stuffed('a\r')).to.equal('a\r\n.\r\n');
    expect(await stuffed()).to.equal('\r\n.\r\n');
  });

  it('passes a chunk that needs nothing as it is, without copying it', async () => {
    const chunk = Buffer.from('From: a@contoso.com\r\nSubject: x\r\n\r\nbody.\r\n', 'latin1');
    const { pieces } = await encode(new DotStuffer(), [chunk]);
    expect(pieces[0]).to.equal(chunk);
  });
});
