// A main body part whose header block names its Content-Type,
// Content-Transfer-Encoding or Content-Disposition twice, with different
// values, is read by mailsplit from the first field and by some readers from
// the last: decoded and re-encoded one way, it may be garbage the other way.
// Such a part is never edited (nor one inside a multipart whose own
// Content-Type is given twice): it passes through byte for byte.
import { expect } from 'chai';
import fc from 'fast-check';
import type { Edit } from '../../appliance/src/mime';
import { buildMessage, html, multipart, text } from './support/build';
import type { LeafSpec, PartSpec } from './support/build';
import { surgeryChecked } from './support/check';
import { partOf } from './support/parts';
import { markerBody, markerEdit, runSurgery } from './support/run';

const CRLF = '\r\n';
const HTML_BODY = '<html><body><p>Hello Bob,</p><p>see the report.</p></body></html>';
const TEXT_BODY = 'Hello Bob,\n\nsee the report.\n';
const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');

/** A body edit and nothing else: a part left alone means output === input. */
const BODY_ONLY: Edit = { addHeaders: [], removeHeaders: [], body: markerBody() };

function raw(lines: string[], eol = CRLF): Buffer {
  return Buffer.from(lines.join(eol), 'latin1');
}

const TOP = ['From: Jane <jane@example.com>', 'To: bob@example.net', 'Subject: Report', 'MIME-Version: 1.0'];

describe('mime surgery: ambiguous part headers', () => {
  describe('single-part message (the fields are in the message header)', () => {
    const cases: Array<[string, string[]]> = [
      ['two Content-Types (text/plain, then text/html)', ['Content-Type: text/plain; charset=utf-8', 'Content-Type: text/html; charset=utf-8']],
      ['two Content-Types (html, then another charset)', ['Content-Type: text/html; charset=utf-8', 'Content-Type: text/html; charset=iso-8859-1']],
      ['two Content-Transfer-Encodings (7bit, then base64)', ['Content-Type: text/html; charset=utf-8', 'Content-Transfer-Encoding: 7bit', 'Content-Transfer-Encoding: base64']],
      ['two Content-Transfer-Encodings apart (quoted-printable … 8bit)', ['Content-Transfer-Encoding: quoted-printable', 'Content-Type: text/plain; charset=utf-8', 'X-Mailer: x', 'Content-Transfer-Encoding: 8bit']],
      ['two Content-Dispositions (inline, then attachment)', ['Content-Type: text/html; charset=utf-8', 'Content-Disposition: inline', 'Content-Disposition: attachment; filename="page.html"']],
    ];
    for (const [name, fields] of cases) {
      for (const eol of [CRLF, '\n']) {
        it(`${name}, ${eol === CRLF ? 'CRLF' : 'LF'}: not edited, output equals input byte for byte`, async () => {
          const input = raw([...TOP, ...fields, '', '<p>Hello Bob,</p>', 'see you.', ''], eol);
          const r = await runSurgery(input, BODY_ONLY);
          expect(r.output.equals(input), r.output.toString('latin1')).to.equal(true);
          expect(r.report.parts).to.deep.equal([]);
          expect(r.facts?.structure.noBody).to.equal(true);
          expect(r.facts?.structure.ambiguous).to.equal(true);
          expect(r.report.ambiguousParts).to.have.length(1);
        });
      }
    }

    it('a stamp and a removed DKIM-Signature still apply to the header block (only the body is left alone)', async () => {
      const input = raw(['DKIM-Signature: v=1; b=x', ...TOP, 'Content-Type: text/html', 'Content-Type: text/plain', '', '<p>Hi</p>', '']);
      const r = await surgeryChecked(input, markerEdit());
      expect(r.report.parts).to.deep.equal([]);
      const out = r.output.toString('latin1');
      expect(out.startsWith('X-Signet-Processed: ')).to.equal(true);
      expect(out).to.not.include('DKIM-Signature');
      expect(out.endsWith(`Content-Type: text/html${CRLF}Content-Type: text/plain${CRLF}${CRLF}<p>Hi</p>${CRLF}`)).to.equal(true);
    });
  });

  describe('identical duplicates are not ambiguous', () => {
    it('the same Content-Transfer-Encoding twice: edited, and a re-encoding rewrites both fields', async () => {
      // us-ascii 7bit cannot carry "é": the part becomes UTF-8 quoted-printable
      const input = raw([...TOP, 'Content-Type: text/plain; charset=us-ascii', 'Content-Transfer-Encoding: 7bit', 'Content-Transfer-Encoding: 7BIT', '', 'Hello Bob,', '']);
      const r = await surgeryChecked(input, markerEdit({ text: 'SIGNET-TEXT-START\nRené\nSIGNET-TEXT-END' }));
      expect(r.report.parts.map((p) => p.transferEncoding)).to.deep.equal(['quoted-printable']);
      const head = r.output.toString('latin1').split(`${CRLF}${CRLF}`)[0]!;
      expect(head.match(/^Content-Transfer-Encoding: .*$/gim)).to.deep.equal(['Content-Transfer-Encoding: quoted-printable', 'Content-Transfer-Encoding: quoted-printable']);
      expect(head.match(/^Content-Type: .*$/gim)).to.deep.equal(['Content-Type: text/plain; charset=utf-8']);
    });

    it('the same Content-Type written two ways (quotes, case of the charset): edited, a relabel rewrites both', async () => {
      const input = raw([...TOP, 'Content-Type: text/plain; charset="US-ASCII"', 'Content-Type: TEXT/PLAIN; charset=us-ascii', '', 'Hello Bob,', '']);
      const r = await surgeryChecked(input, markerEdit({ text: 'SIGNET-TEXT-START\nRené\nSIGNET-TEXT-END' }));
      expect(r.report.parts).to.have.length(1);
      expect(r.report.ambiguousParts).to.deep.equal([]);
      const head = r.output.toString('latin1').split(`${CRLF}${CRLF}`)[0]!;
      expect(head.match(/^Content-Type: .*$/gim)).to.deep.equal(['Content-Type: text/plain; charset=utf-8', 'Content-Type: text/plain; charset=utf-8']);
    });

    it('a relabel changes only the charset parameter: the others stay as written, unreadable ones included', async () => {
      const cases: Array<[string, string]> = [
        ['text/plain; format=flowed; CHARSET = "us-ascii"; delsp=yes', 'text/plain; format=flowed; delsp=yes; charset=utf-8'],
        // a quoted value holding "; charset=" is not a parameter; a second charset (RFC 2231 form) goes too
        ['text/plain; x-note="a; charset=koi8-r"; charset*=us-ascii\'\'us-ascii; charset=us-ascii', 'text/plain; x-note="a; charset=koi8-r"; charset=utf-8'],
        // what a parser cannot read (a bare word, a comment) is not the engine's to drop
        ['text/plain; charset=us-ascii; garbage (Outlook; 16.0)', 'text/plain; garbage (Outlook; 16.0); charset=utf-8'],
        ['text/plain', 'text/plain; charset=utf-8'],
      ];
      for (const [before, after] of cases) {
        const input = raw([...TOP, `Content-Type: ${before}`, '', 'Hello Bob,', '']);
        const r = await surgeryChecked(input, markerEdit({ text: 'SIGNET-TEXT-START\nRené ✓\nSIGNET-TEXT-END' }));
        expect(r.report.parts.map((p) => p.charset), before).to.deep.equal(['utf-8']);
        const head = r.output.toString('latin1').split(`${CRLF}${CRLF}`)[0]!.replace(/\r\n[ \t]+/g, ' ');
        expect(head.match(/^Content-Type: .*$/gim), before).to.deep.equal([`Content-Type: ${after}`]);
      }
    });

    it('two identical Content-Types in an HTML part that gets images: both move down with the HTML', async () => {
      const input = raw([...TOP, 'Content-Type: text/html; charset=utf-8', 'Content-Type: text/html; charset=utf-8', '', '<p>Hi</p>', '']);
      const images = [{ cid: 'logo@signet', contentType: 'image/png', filename: 'logo.png', data: Buffer.from('89504e47', 'hex') }];
      const r = await surgeryChecked(input, markerEdit({ images }));
      expect(r.report.parts).to.have.length(1);
      const out = r.output.toString('latin1');
      const [outer] = out.split(`${CRLF}${CRLF}`);
      expect(outer!.match(/^Content-Type: .*$/gim)).to.have.length(1);
      expect(out.match(/^Content-Type: text\/html; charset=utf-8$/gim)).to.have.length(2);
    });
  });

  describe('in a multipart message', () => {

    it('alternative(text, html with two CTEs): the text is signed, the HTML part passes byte for byte', async () => {
      const htmlPart = html(HTML_BODY, { extraHeaders: ['Content-Transfer-Encoding: base64'] });
      const input = buildMessage({ body: multipart('alternative', 'alt-1', [text(TEXT_BODY), htmlPart]) });
      const r = await surgeryChecked(input, markerEdit());
      expect(r.report.parts.map((p) => p.contentType)).to.deep.equal(['text/plain']);
      expect(r.report.ambiguousParts).to.deep.equal(['text/html']);
      expect(r.facts?.structure).to.include({ noBody: false, ambiguous: true });
      expect(r.facts?.structure.editable).to.deep.equal({ html: false, text: true });
      const before = await partOf(input, 'text/html');
      const after = await partOf(r.output, 'text/html');
      expect(after.header).to.equal(before.header);
      expect(after.body.equals(before.body)).to.equal(true);
    });

    it('alternative(text, html) both ambiguous: nothing edited, output equals input', async () => {
      const input = buildMessage({
        body: multipart('alternative', 'alt-1', [
          text(TEXT_BODY, { extraHeaders: ['Content-Type: text/html; charset=utf-8'] }),
          html(HTML_BODY, { extraHeaders: ['Content-Transfer-Encoding: 8bit'] }),
        ]),
      });
      const r = await runSurgery(input, BODY_ONLY);
      expect(r.output.equals(input)).to.equal(true);
      expect(r.facts?.structure).to.include({ noBody: true, ambiguous: true });
      expect(r.report.ambiguousParts).to.deep.equal(['text/plain', 'text/html']);
    });

    it('an ambiguous first html part is still the body: a second text/html is not signed instead', async () => {
      const input = buildMessage({
        body: multipart('mixed', 'mix-1', [
          html(HTML_BODY, { extraHeaders: ['Content-Type: text/plain; charset=utf-8'] }),
          { type: 'image/png', content: PNG, cte: 'base64', disposition: 'attachment', filename: 'a.png' },
          html('<p>second</p>'),
        ]),
      });
      const r = await runSurgery(input, BODY_ONLY);
      expect(r.output.equals(input)).to.equal(true);
      expect(r.report.parts).to.deep.equal([]);
    });

    it('a multipart whose own Content-Type is given twice (two boundaries): nothing inside is edited', async () => {
      const input = raw([
        ...TOP,
        'Content-Type: multipart/alternative; boundary="one"',
        'Content-Type: multipart/alternative; boundary="two"',
        '',
        '--one',
        'Content-Type: text/plain; charset=utf-8',
        '',
        'Hello',
        '--two',
        'Content-Type: text/html; charset=utf-8',
        '',
        '<p>Hello</p>',
        '--one',
        'Content-Type: text/html; charset=utf-8',
        '',
        '<p>Hello</p>',
        '--one--',
        '--two--',
        '',
      ]);
      const r = await runSurgery(input, BODY_ONLY);
      expect(r.output.equals(input)).to.equal(true);
      expect(r.facts?.structure).to.include({ noBody: true, ambiguous: true });
    });

    it('the same boundary given twice in the same words is no ambiguity', async () => {
      const input = raw([
        ...TOP,
        'Content-Type: multipart/alternative; boundary="one"',
        'Content-Type: multipart/alternative; boundary=one',
        '',
        '--one',
        'Content-Type: text/plain; charset=utf-8',
        '',
        'Hello',
        '--one--',
        '',
      ]);
      const r = await surgeryChecked(input, markerEdit());
      expect(r.report.parts).to.have.length(1);
    });

    it('duplicate fields on an attachment do not concern the body', async () => {
      const input = buildMessage({
        body: multipart('mixed', 'mix-1', [
          html(HTML_BODY),
          { type: 'application/pdf', content: PNG, cte: 'base64', disposition: 'attachment', filename: 'a.pdf', extraHeaders: ['Content-Type: application/octet-stream'] },
        ]),
      });
      const r = await surgeryChecked(input, markerEdit());
      expect(r.report.parts.map((p) => p.contentType)).to.deep.equal(['text/html']);
      expect(r.report.ambiguousParts).to.deep.equal([]);
    });
  });

  it('property: a main part with a conflicting second field passes byte for byte, whatever the tree around it', async () => {
    // a second field that says something else than the part's own
    const conflicting = (type: 'text/plain' | 'text/html', cte: LeafSpec['cte']): string[] => [
      type === 'text/html' ? 'Content-Type: text/plain; charset=utf-8' : 'Content-Type: text/html; charset=utf-8',
      `Content-Transfer-Encoding: ${cte === 'base64' ? 'quoted-printable' : 'base64'}`,
      `Content-Disposition: attachment; filename="a.${type === 'text/html' ? 'html' : 'txt'}"`,
    ];
    const leaf = (type: 'text/plain' | 'text/html', cte: LeafSpec['cte'], conflict: number): LeafSpec => {
      const spec = type === 'text/html' ? html(HTML_BODY, { cte }) : text(TEXT_BODY, { cte });
      return { ...spec, extraHeaders: [conflicting(type, cte)[conflict]!] };
    };
    // moves each conflicting field (written last) in front of its part's Content-Type: either field may be mailsplit's
    const conflictFirst = (message: Buffer): Buffer =>
      Buffer.from(
        message
          .toString('latin1')
          .replace(/(Content-Type: text\/(?:html|plain)[^\r\n]*\r?\nContent-Transfer-Encoding: [^\r\n]*\r?\n)(Content-[A-Za-z-]+: [^\r\n]*\r?\n)(?=\r?\n)/g, '$2$1'),
        'latin1',
      );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('single', 'alternative', 'mixed', 'related-in-alternative'),
        fc.constantFrom<'\r\n' | '\n'>('\r\n', '\n'),
        fc.constantFrom<NonNullable<LeafSpec['cte']>>('quoted-printable', 'base64', '8bit'),
        fc.nat({ max: 2 }),
        fc.nat({ max: 2 }),
        fc.boolean(),
        fc.constantFrom(7, 100, 65536),
        async (shape, eol, cte, htmlConflict, textConflict, before, chunkSize) => {
          const h = leaf('text/html', cte, htmlConflict);
          const t = leaf('text/plain', cte, textConflict);
          const png: PartSpec = { type: 'image/png', content: PNG, cte: 'base64', disposition: 'inline', contentId: 'i@x' };
          const body: PartSpec =
            shape === 'single'
              ? h
              : shape === 'alternative'
                ? multipart('alternative', 'a=_1', [t, h])
                : shape === 'mixed'
                  ? multipart('mixed', 'm=_1', [multipart('alternative', 'a=_1', [t, h]), { type: 'application/pdf', content: PNG, cte: 'base64', disposition: 'attachment', filename: 'x.pdf' }])
                  : multipart('alternative', 'a=_1', [t, multipart('related', 'r=_1', [h, png])]);
          const built = buildMessage({ body, eol });
          const input = before ? conflictFirst(built) : built;
          if (before) expect(input.equals(built)).to.equal(false);
          const r = await runSurgery(input, BODY_ONLY, 1024 * 1024, chunkSize);
          expect(r.output.equals(input)).to.equal(true);
          expect(r.report.parts).to.deep.equal([]);
        },
      ),
      { numRuns: Number(process.env.SIGNET_PROPERTY_RUNS ?? 100) },
    );
  });
});
