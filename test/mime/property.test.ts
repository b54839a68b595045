// Property: for random MIME trees (nested mixed/alternative/related, random
// text/html parts in random charsets and encodings, random binary attachments,
// CRLF or LF), the surgery changes nothing outside the edited parts and every
// attachment decodes to the same bytes.
import { expect } from 'chai';
import fc from 'fast-check';
import { buildMessage } from './support/build';
import type { Cte, LeafSpec, MultipartSpec, PartSpec } from './support/build';
import { attachmentSums, surgeryChecked } from './support/check';
import { MARK_HTML_START, markerEdit } from './support/run';

const ALPHABETS: Record<string, string> = {
  'utf-8': 'abc xyz.,é日ß€<>&\n',
  'us-ascii': 'abc xyz.,;:!?\n',
  'iso-8859-1': 'abc xyzéüß\n',
  'windows-1252': 'abc “quoted” €\n',
  'koi8-r': 'abc Привет\n',
  shift_jis: 'abc こんにちは\n',
};
const CHARSETS = Object.keys(ALPHABETS);

type GenLeaf = { t: 'leaf'; spec: LeafSpec };
type GenMulti = { t: 'multi'; kind: string; parts: GenNode[]; preamble: string | null; epilogue: string | null };
type GenNode = GenLeaf | GenMulti;

const textLeaf: fc.Arbitrary<GenLeaf> = fc
  .record({
    type: fc.constantFrom('text/plain', 'text/html'),
    charset: fc.constantFrom(...CHARSETS),
    cte: fc.constantFrom<Cte>('7bit', '8bit', 'quoted-printable', 'base64'),
    seed: fc.nat(),
    wrap: fc.boolean(),
    length: fc.integer({ min: 0, max: 300 }),
  })
  .map(({ type, charset, cte, seed, wrap, length }) => {
    const alphabet = [...ALPHABETS[charset]];
    let content = '';
    for (let i = 0, x = seed; i < length; i++, x = (x * 1103515245 + 12345) % 2147483648) content += alphabet[x % alphabet.length];
    if (type === 'text/html') content = wrap ? `<html><body><p>${content.replace(/[<>&]/g, '')}</p></body></html>` : content.replace(/[<>&]/g, '');
    const ascii = ![...content].some((c) => c.charCodeAt(0) > 127);
    return { t: 'leaf', spec: { type, charset, cte: cte === '7bit' && !ascii ? '8bit' : cte, content } } satisfies GenLeaf;
  });

const binaryLeaf: fc.Arbitrary<GenLeaf> = fc
  .record({
    type: fc.constantFrom('application/octet-stream', 'image/png', 'application/pdf', 'text/csv'),
    data: fc.uint8Array({ maxLength: 3000 }),
    inline: fc.boolean(),
    n: fc.nat({ max: 999 }),
  })
  .map(({ type, data, inline, n }) => ({
    t: 'leaf',
    spec: {
      type,
      content: Buffer.from(data),
      cte: 'base64',
      disposition: inline ? 'inline' : 'attachment',
      filename: `file${n}.bin`,
      contentId: inline ? `part${n}@example.com` : undefined,
    },
  }));

const tree = fc.letrec<{ node: GenNode; leaf: GenLeaf; multi: GenMulti }>((tie) => ({
  node: fc.oneof({ maxDepth: 3, depthIdentifier: 'mime' }, tie('leaf'), tie('multi')),
  leaf: fc.oneof(textLeaf, textLeaf, binaryLeaf),
  multi: fc.record({
    t: fc.constant('multi' as const),
    kind: fc.constantFrom('mixed', 'alternative', 'related'),
    parts: fc.array(tie('node'), { minLength: 1, maxLength: 3, depthIdentifier: 'mime' }),
    preamble: fc.option(fc.constantFrom('This is a multi-part message in MIME format.', ''), { nil: null }),
    epilogue: fc.option(fc.constantFrom('trailing words', ''), { nil: null }),
  }),
}));

function toSpec(node: GenNode, counter: { n: number }): PartSpec {
  if (node.t === 'leaf') return node.spec;
  const spec: MultipartSpec = {
    multipart: node.kind,
    boundary: `b${counter.n++}=_x`,
    parts: node.parts.map((p) => toSpec(p, counter)),
  };
  if (node.preamble !== null) spec.preamble = node.preamble;
  if (node.epilogue !== null) spec.epilogue = node.epilogue;
  return spec;
}

describe('mime surgery: property (random MIME trees)', () => {
  it('outside the edited parts the output equals the input, attachments decode identically', async () => {
    const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200', 'hex');
    let runs = 0;
    let editedRuns = 0;
    await fc.assert(
      fc.asyncProperty(
        tree.node,
        fc.constantFrom<'\r\n' | '\n'>('\r\n', '\n'),
        fc.boolean(),
        fc.constantFrom(7, 100, 65536),
        async (root, eol, withImage, chunkSize) => {
          const input = buildMessage({ body: toSpec(root, { n: 0 }), eol });
          const images = withImage ? [{ cid: 'logo@signet', contentType: 'image/png', filename: 'logo.png', data: PNG }] : [];
          const edit = markerEdit({ images, html: `${MARK_HTML_START}<img src="cid:logo@signet">SIGNET-HTML-END</div>` });
          const r = await surgeryChecked(input, edit, 1024 * 1024, chunkSize);
          expect(await attachmentSums(r.output, ['logo@signet'])).to.deep.equal(await attachmentSums(input));
          // each edited part is a main part: at most one html and one text
          const kinds = r.report.parts.map((p) => p.contentType);
          runs++;
          if (kinds.length) editedRuns++;
          expect(new Set(kinds).size).to.equal(kinds.length);
        },
      ),
      { numRuns: Number(process.env.SIGNET_PROPERTY_RUNS ?? 150) },
    );
    // the property is about edited messages: most generated trees must have had a part edited
    expect(editedRuns).to.be.greaterThan(runs / 3);
  });
});
