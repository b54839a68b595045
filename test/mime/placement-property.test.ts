import { expect } from 'chai';
import fc from 'fast-check';
import { compileSignOffs, placeInHtml, placeInText } from '../../appliance/src/mime/placement';

const PH = '{{signature}}';

// Text without ':' or '-' runs or '>' cannot form a header line, an
// attribution, a dash banner or a quoted line: the generated bodies hold no
// separators by construction.
const word = fc.constantFrom('hello', 'budget', 'Friday', 'meeting', 'On', 'From', 'wrote', 'Sent', 'To', 'é', '42', '&amp;', '&lt;', '&nbsp;', '&#233;', ',', '.');
const textRun = fc.array(word, { minLength: 1, maxLength: 6 }).map((w) => w.join(' '));
const tagName = fc.constantFrom('div', 'p', 'span', 'b', 'i', 'font', 'a', 'table', 'tr', 'td', 'ul', 'li', 'o:p', 'center', 'blockquote', 'h1');
const attr = fc.constantFrom('', ' class=MsoNormal', ' class="elementToProof"', " style='color:red'", ' id="main"', ' dir=ltr', ' align=center', ' STYLE="MARGIN: 0"');
const upper = fc.boolean();

const token: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: textRun },
  { weight: 3, arbitrary: fc.tuple(tagName, attr, upper).map(([n, a, u]) => `<${u ? n.toUpperCase() : n}${a}>`) },
  { weight: 3, arbitrary: fc.tuple(tagName, upper).map(([n, u]) => `</${u ? n.toUpperCase() : n}>`) },
  { weight: 1, arbitrary: fc.constantFrom('<br>', '<BR>', '<br/>', '<img src="cid:logo" width=10>', '<hr>', '<wbr>') },
  { weight: 1, arbitrary: fc.constantFrom('<!-- note -->', '<!--[if mso]><div id="divRplyFwdMsg">x</div><![endif]-->', '<!--[if !mso]><!-->y<!--<![endif]-->') },
  { weight: 1, arbitrary: fc.constantFrom('<style>div.gmail_quote{color:red}</style>', '<script>var s="<blockquote type=cite>";</script>') },
);
const content = fc.array(token, { maxLength: 40 }).map((t) => t.join(''));

type Wrapper = 'none' | 'html-body' | 'html-head-body' | 'body' | 'html';
const wrapper = fc.constantFrom<Wrapper>('none', 'html-body', 'html-head-body', 'body', 'html');

function wrap(kind: Wrapper, inner: string): { html: string; bodyStart: number; end: number } {
  switch (kind) {
    case 'none':
      return { html: inner, bodyStart: 0, end: inner.length };
    case 'html-body': {
      const head = '<html><body>';
      return { html: `${head}${inner}</body></html>`, bodyStart: head.length, end: head.length + inner.length };
    }
    case 'html-head-body': {
      const head = '<HTML><HEAD><TITLE>t</TITLE><style>p{}</style></HEAD><BODY lang=EN-US style="word-wrap:break-word">';
      return { html: `${head}${inner}</BODY></HTML>`, bodyStart: head.length, end: head.length + inner.length };
    }
    case 'body': {
      const head = '<body class=x>';
      return { html: `${head}${inner}</body>`, bodyStart: head.length, end: head.length + inner.length };
    }
    case 'html': {
      const head = '<html lang="de">';
      return { html: `${head}${inner}</html>`, bodyStart: head.length, end: head.length + inner.length };
    }
  }
}

describe('mime/placement: properties', () => {
  it('HTML without separators: placement is "end", at the expected tag boundary, offsets in bounds', () => {
    fc.assert(
      fc.property(wrapper, content, (kind, inner) => {
        const { html, bodyStart, end } = wrap(kind, inner);
        const r = placeInHtml(html, PH);
        expect(r.placement).to.equal('end');
        expect(r.removeLength).to.equal(0);
        expect(r.quoteStart).to.equal(undefined);
        expect(r.at).to.equal(end);
        expect(r.at === html.length || /^<\/(?:body|html)>/i.test(html.slice(r.at))).to.equal(true);
        expect(r.bodyStart).to.equal(bodyStart);
        expect(r.bodyStart === 0 || html[r.bodyStart - 1] === '>').to.equal(true);
      }),
      { numRuns: 400 },
    );
  });

  it('HTML with a typed placeholder among random content: the placeholder is found exactly (with the link it is the whole text of)', () => {
    fc.assert(
      fc.property(wrapper, fc.array(token, { maxLength: 20 }), fc.array(token, { maxLength: 20 }), (kind, a, b) => {
        const inner = `${a.join('')}<p>${PH}</p>${b.join('')}`;
        const { html } = wrap(kind, inner);
        const r = placeInHtml(html, PH);
        expect(r.placement).to.equal('placeholder');
        const removed = html.slice(r.at, r.at + r.removeLength);
        if (removed !== PH) {
          // "<a><p>{{signature}}</p></a>": the placeholder is the link's whole text, and the link goes with it
          expect(removed, html).to.match(/^<a[\s>]/i);
          expect(removed, html).to.match(/<\/a>$/i);
          expect(removed.replace(PH, ''), html).to.match(/^(?:<[^<>]*>|\s)*$/);
        }
        expect(r.at + removed.indexOf(PH)).to.equal(html.indexOf(`<p>${PH}`) + 3);
      }),
      { numRuns: 300 },
    );
  });

  it('arbitrary markup soup never throws and every offset stays in bounds', () => {
    const soup = fc.string({ unit: fc.constantFrom(...'<>/="\' abdivpqrlbockquteype&;#123{}-:\n!'.split('')), maxLength: 300 });
    fc.assert(
      fc.property(soup, (html) => {
        const r = placeInHtml(html, PH);
        expect(r.at).to.be.within(0, html.length);
        expect(r.at + r.removeLength).to.be.at.most(html.length);
        expect(r.bodyStart).to.be.within(0, html.length);
        if (r.quoteStart !== undefined) expect(r.quoteStart).to.be.within(0, html.length);
      }),
      { numRuns: 500 },
    );
  });

  it('text without separators: placement is "end" at the end of the text', () => {
    const line = fc.array(word, { maxLength: 8 }).map((w) => w.join(' '));
    fc.assert(
      fc.property(fc.array(line, { maxLength: 30 }), fc.constantFrom('\n', '\r\n'), fc.boolean(), (lines, eol, trailing) => {
        const text = lines.join(eol) + (trailing ? eol : '');
        const r = placeInText(text, PH);
        expect(r).to.deep.equal({ at: text.length, removeLength: 0, placement: 'end', bodyStart: 0 });
      }),
      { numRuns: 300 },
    );
  });

  it('text reply: whatever the new text, the signature goes right after it and the quote is untouched', () => {
    const line = fc.array(word, { minLength: 1, maxLength: 8 }).map((w) => w.join(' '));
    fc.assert(
      fc.property(fc.array(line, { minLength: 1, maxLength: 10 }), fc.nat(3), (lines, blanks) => {
        const newText = `${lines.join('\n')}\n`;
        const text = `${newText}${'\n'.repeat(blanks)}-----Original Message-----\nFrom: A\n\nold\n`;
        const r = placeInText(text, PH);
        expect(r.placement).to.equal('above-quote');
        expect(r.at).to.equal(newText.length);
        expect(text.slice(r.quoteStart!)).to.match(/^-----Original Message-----/);
      }),
      { numRuns: 200 },
    );
  });
});

describe('mime/placement: large bodies (linear time; completes within the test timeout)', () => {
  const paragraph = '<p class=MsoNormal>Lorem ipsum dolor sit amet, <b>consectetur</b> adipiscing elit &amp; more.<o:p></o:p></p>\n';

  it('5 MB HTML reply whose separator is at the very end', () => {
    const typed = paragraph.repeat(Math.ceil((5 * 1024 * 1024) / paragraph.length));
    const html = `<html><body><div class=WordSection1>${typed}<div><div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in'><p><b>From:</b> A</p></div></div></div></body></html>`;
    const r = placeInHtml(html, PH);
    expect(html.length).to.be.greaterThan(5 * 1024 * 1024);
    expect(r.placement).to.equal('above-quote');
    expect(html.slice(r.at)).to.match(/^<div><div style='border:none;border-top/);
  });

  it('5 MB HTML new message (the whole document is read)', () => {
    const html = `<html><body>${paragraph.repeat(Math.ceil((5 * 1024 * 1024) / paragraph.length))}</body></html>`;
    const r = placeInHtml(html, PH);
    expect(r.placement).to.equal('end');
    expect(r.at).to.equal(html.length - '</body></html>'.length);
  });

  it('hostile nesting: 300 000 unclosed elements and stray close tags', () => {
    const html = `<body>${'<span><div>x'.repeat(150_000)}${'</i>'.repeat(150_000)}</body>`;
    const r = placeInHtml(html, PH);
    expect(r.placement).to.equal('end');
    expect(r.at).to.equal(html.length - '</body>'.length);
  });

  it('5 MB plain text with a quote at the end', () => {
    const typed = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n'.repeat(Math.ceil((5 * 1024 * 1024) / 58));
    const text = `${typed}\r\nOn Mon, 2 Mar 2026 at 09:14, Bob <bob@example.com> wrote:\r\n> old\r\n`;
    const r = placeInText(text, PH);
    expect(r.placement).to.equal('above-quote');
    expect(r.at).to.equal(typed.length);
  });
  describe("a mail app's sign-off (replaceSignOffs)", () => {
    const SIGN_OFFS = compileSignOffs([]);
    const SIGN_OFF = 'Sent from my iPhone';

    it('HTML: a sign-off ending random content is found exactly; without it, nothing random is taken for one', () => {
      fc.assert(
        fc.property(wrapper, fc.array(token, { maxLength: 25 }), fc.boolean(), (kind, a, withSignOff) => {
          const inner = `${a.join('')}${withSignOff ? `<p>${SIGN_OFF}</p>` : ''}`;
          const { html } = wrap(kind, inner);
          const r = placeInHtml(html, PH, undefined, SIGN_OFFS);
          if (!withSignOff) {
            expect(r.placement).to.equal('end');
            return;
          }
          expect(r.placement).to.equal('sign-off');
          expect(html.slice(r.at, r.at + r.removeLength)).to.equal(SIGN_OFF);
          expect(r.at).to.equal(html.lastIndexOf(`<p>${SIGN_OFF}`) + 3);
        }),
        { numRuns: 300 },
      );
    });

    it('HTML: a sign-off that is the whole text of a link is removed with the link and the elements between, nothing around it', () => {
      const inline = fc.constantFrom('span', 'b', 'font', 'i', 'div');
      const blank = fc.constantFrom('', ' ', '\n');
      fc.assert(
        fc.property(wrapper, fc.array(token, { maxLength: 25 }), fc.array(inline, { maxLength: 3 }), fc.array(inline, { maxLength: 3 }), blank, (kind, a, inside, outside, gap) => {
          const linked =
            inside.reduceRight((acc, n) => `<${n}>${gap}${acc}${gap}</${n}>`, SIGN_OFF);
          const link = `<a href="https://x.example/">${gap}${linked}${gap}</a>`;
          const around = outside.reduceRight((acc, n) => `<${n}>${acc}</${n}>`, link);
          // a paragraph of its own, so that what the random tokens leave open cannot reach into it
          const inner = `${a.join('')}<p>${around}</p>`;
          const { html } = wrap(kind, inner);
          const r = placeInHtml(html, PH, undefined, SIGN_OFFS);
          expect(r.placement).to.equal('sign-off');
          expect(html.slice(r.at, r.at + r.removeLength)).to.equal(link);
          expect(r.at).to.equal(html.lastIndexOf(link));
        }),
        { numRuns: 300 },
      );
    });

    // lines of words that are no separator and no sign-off (see `word`), blank lines among them
    const line = fc.oneof({ weight: 4, arbitrary: textRun }, { weight: 1, arbitrary: fc.constantFrom('', ' ', '\u00a0') });
    const eol = fc.constantFrom('\n', '\r\n');

    it('text: only the sign-off line and the blank lines right above it go; every other character stays where it was', () => {
      fc.assert(
        fc.property(fc.array(line, { maxLength: 8 }), fc.integer({ min: 0, max: 2 }), fc.boolean(), fc.boolean(), eol, (lines, blanks, withSignOff, finalEol, nl) => {
          const body = lines.join(nl);
          const tail = [...Array<string>(blanks).fill(''), ...(withSignOff ? [SIGN_OFF] : [])];
          const text = [body, ...tail].join(nl) + (finalEol ? nl : '');
          const r = placeInText(text, PH, undefined, SIGN_OFFS);
          if (!withSignOff) {
            expect(r.placement).to.not.equal('sign-off');
            return;
          }
          expect(r.placement).to.equal('sign-off');
          const kept = text.slice(0, r.at);
          const removed = text.slice(r.at, r.at + r.removeLength);
          expect(text.slice(r.at + r.removeLength)).to.equal('');
          expect(removed.trim()).to.equal(SIGN_OFF);
          // what stays is the text up to the end of its last line with anything in it, line break included
          const lastFilled = lines.map((l) => l.trim().replace(/\u00a0/g, '')).findLastIndex((l) => l.length > 0);
          expect(kept).to.equal(lastFilled < 0 ? '' : lines.slice(0, lastFilled + 1).join(nl) + nl);
        }),
        { numRuns: 400 },
      );
    });
  });
});
