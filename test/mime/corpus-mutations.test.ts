// Damaged real-world messages: a corpus message with a few random mutations
// (cut off, a byte changed, a span dropped or repeated, a MIME token inserted,
// a delimiter line damaged), split into random chunks, goes through the
// surgery. Whatever the damage, nothing throws and the byte invariant holds:
// what the edit did not touch comes out as it went in. fast-check drives the
// mutations with a fixed seed, so a failure names a case that replays.
import fc from 'fast-check';
import { existsSync, readFileSync } from 'node:fs';
import { surgeryChecked } from './support/check';
import { corpusDir, emlFiles } from './support/corpus';
import { markerEdit } from './support/run';

/** Larger messages add time, not other shapes of damage. */
const MAX_BYTES = 400_000;

/** What a careless gateway, a cut connection or a broken client does to a message. */
const INSERTS = ['\r\n', '\n', '\r', '--', '=\r\n', '=', '<', '</body>', '\r\n\r\n', '<!--', '<script>', '\x00', '=?utf-8?b?', 'begin 644 x\r\n', 'Content-Type: multipart/mixed; boundary=x\r\n', 'Content-Transfer-Encoding: base64\r\n'];

interface Mutation {
  kind: 'cut' | 'byte' | 'drop' | 'insert' | 'repeat' | 'delimiter';
  /** Where, as a fraction of the message. */
  at: number;
  /** A length, a byte value or a choice, as the kind needs. */
  n: number;
}

function mutate(input: Buffer, m: Mutation): Buffer {
  const pos = Math.floor(m.at * input.length);
  switch (m.kind) {
    case 'cut':
      return input.subarray(0, pos);
    case 'byte': {
      const out = Buffer.from(input);
      if (pos < out.length) out[pos] = m.n % 256;
      return out;
    }
    case 'drop':
      return Buffer.concat([input.subarray(0, pos), input.subarray(Math.min(input.length, pos + 1 + (m.n % 200)))]);
    case 'insert':
      return Buffer.concat([input.subarray(0, pos), Buffer.from(INSERTS[m.n % INSERTS.length]!, 'latin1'), input.subarray(pos)]);
    case 'repeat':
      return Buffer.concat([input.subarray(0, pos), input.subarray(pos, pos + (m.n % 500)), input.subarray(pos)]);
    case 'delimiter': {
      // a delimiter line loses its dashes, gains a character, or disappears
      const text = input.toString('latin1');
      const starts = [...text.matchAll(/\n--/g)].map((x) => x.index + 1);
      if (!starts.length) return input;
      const i = starts[Math.floor(m.at * starts.length)]!;
      const eol = text.indexOf('\n', i);
      const damaged = [text.slice(0, i) + text.slice(i + 2), text.slice(0, i + 3) + 'X' + text.slice(i + 3), eol < 0 ? text.slice(0, i) : text.slice(0, i) + text.slice(eol + 1)][m.n % 3]!;
      return Buffer.from(damaged, 'latin1');
    }
  }
}

describe('mime surgery: damaged corpus messages', function () {
  if (!existsSync(corpusDir)) {
    it('corpus present', function () {
      this.skip();
    });
    return;
  }
  const files = emlFiles(corpusDir, MAX_BYTES);
  const mutation = fc.record<Mutation>({
    kind: fc.constantFrom('cut', 'byte', 'drop', 'insert', 'repeat', 'delimiter'),
    at: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
    n: fc.nat(),
  });

  it('nothing throws and the byte invariant holds, whatever the damage and however the message arrives', async function () {
    this.timeout(300_000);
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: files.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 3 }), fc.integer({ min: 1, max: 4096 }), async (index, mutations, chunkSize) => {
        const input = mutations.reduce(mutate, readFileSync(files[index]!));
        await surgeryChecked(input, markerEdit(), undefined, chunkSize);
      }),
      { numRuns: Number(process.env.SIGNET_PROPERTY_RUNS ?? 150) * 4, seed: 20261124 },
    );
  });
});
