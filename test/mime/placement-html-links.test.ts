// A link (`<a href>`) the sender left open where the signature goes would
// make the whole signature part of it (clickable, to the sender's target, in
// every renderer): the insertion ends such a link right in front of the
// snippet, and changes nothing else. Checked on the string and, where
// htmlparser2's DOM builds the tree as browsers do (it has no adoption agency
// and does not reopen formatting elements), on the parsed document.
import { expect } from 'chai';
import fc from 'fast-check';
import { DomUtils, parseDocument } from 'htmlparser2';
import type { Element } from 'domhandler';
import { insertIntoHtml } from '../../appliance/src/mime/insert';
import { placeInHtml } from '../../appliance/src/mime/placement';
import type { BodyInsertion } from '../../appliance/src/mime';
import { surgeryChecked } from './support/check';
import { buildMessage, html as htmlPart, multipart, text as textPart } from './support/build';
import { MARK_HTML_START, markerEdit } from './support/run';
import { partOf } from './support/parts';

const PH = '{{signature}}';
const SIG = '<div id="sig"><a href="https://contoso.example/">Contoso</a> | +1 555 0100</div>';
const TOP = '<div id="banner">Banner</div>';

function body(extra: Partial<BodyInsertion> = {}): BodyInsertion {
  return { html: SIG, text: '', topHtml: '', topText: '', placeholder: PH, images: [], ...extra };
}

/** The HTML as the surgery writes it (same insertion code), with the test signature. */
function signed(html: string, extra: Partial<BodyInsertion> = {}): string {
  return insertIntoHtml(html, body(extra), '\n', (s) => s).text;
}

/** The href of the nearest `<a>` around the element with this id, in htmlparser2's tree; undefined when none. */
function linkAround(html: string, id: string): string | undefined {
  const doc = parseDocument(html);
  const el = DomUtils.getElementById(id, doc.children);
  expect(el, `#${id} in the document`).to.not.equal(null);
  for (let p = el!.parent; p; p = p.parent) {
    if ((p as Element).name === 'a') return (p as Element).attribs.href ?? '';
  }
  return undefined;
}

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

describe('mime/placement: a link left open where the signature goes', () => {
  describe('is ended in front of the signature', () => {
    it('at the end of a fragment (no </body>)', () => {
      const html = '<p>See <a href="https://fabrikam.example/offer">our offer';
      expect(linkAround(html + SIG, 'sig'), 'without the fix').to.equal('https://fabrikam.example/offer');
      const out = signed(html);
      expect(out).to.equal(`${html}</a>${SIG}`);
      expect(linkAround(out, 'sig')).to.equal(undefined);
    });

    it('before </body>', () => {
      const html = '<html><body><div>Details: <a href="https://fabrikam.example/">fabrikam.example\n</div>\n</body></html>';
      const out = signed(html);
      expect(out).to.equal(html.replace('</body>', `</a>${SIG}</body>`));
      expect(placeInHtml(html, PH).placement).to.equal('end');
    });

    it('before </body>, when a block end closed it (the browser reopens it for what follows)', () => {
      // `</p>` pops the <a>, but it stays in the list of formatting elements the browser reopens
      const html = '<html><body><p>Visit <a href="https://fabrikam.example/">our site</p>\n</body></html>';
      expect(signed(html)).to.equal(html.replace('</body>', `</a>${SIG}</body>`));
    });

    it('above an Outlook desktop quote', () => {
      const html =
        "<html><body><div class=WordSection1><p class=MsoNormal>Thanks, see <a href=\"https://fabrikam.example/\">the plan<o:p></o:p></p>" +
        "<div><div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in'><p class=MsoNormal><b>From:</b> Sam<br><b>Sent:</b> Monday<br><b>To:</b> Ada<br><b>Subject:</b> plan</p></div></div>" +
        '<p class=MsoNormal>Earlier text</p></div></body></html>';
      const r = placeInHtml(html, PH);
      expect(r.placement).to.equal('above-quote');
      expect(r.openLinks).to.deep.equal({ at: 1, bodyStart: 0, atAfterTop: 1 });
      const out = signed(html);
      expect(out).to.equal(`${html.slice(0, r.at)}</a>${SIG}${html.slice(r.at)}`);
    });

    it('above a Gmail quote, the link still open in the typed text', () => {
      const html =
        '<div dir="ltr">Here is <a href="https://fabrikam.example/doc">the doc<br></div><br>' +
        '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, Sam wrote:<br></div><blockquote class="gmail_quote">Where is it?</blockquote></div>';
      const r = placeInHtml(html, PH);
      expect(r.placement).to.equal('above-quote');
      const out = signed(html);
      expect(out).to.equal(`${html.slice(0, r.at)}</a>${SIG}${html.slice(r.at)}`);
    });

    it('nested in other elements, and in uppercase', () => {
      const html = '<div><span style="color:navy"><b><A HREF="https://fabrikam.example/">bold link text</b></span>';
      const out = signed(html);
      expect(out).to.equal(`${html}</a>${SIG}`);
      expect(linkAround(out, 'sig')).to.equal(undefined);
      const open = '<div><span><i><a href="https://fabrikam.example/">text';
      expect(linkAround(signed(open), 'sig')).to.equal(undefined);
      expect(signed(open)).to.equal(`${open}</a>${SIG}`);
    });

    it('a second <a> left open after a closed one: one </a>', () => {
      const html = '<p><a href="https://one.example/">one</a> and <a href="https://two.example/">two';
      expect(signed(html)).to.equal(`${html}</a>${SIG}`);
      expect(linkAround(signed(html), 'sig')).to.equal(undefined);
    });

    it('the link before a placeholder typed inside its text: the signature takes the placeholder, after the link', () => {
      // editors extend a link over what is typed right after it; the sender still wants the signature there
      const html = '<p>Best, <a href="https://contoso.example/">contoso.example{{signature}}</a></p>';
      const r = placeInHtml(html, PH);
      expect(r.placement).to.equal('placeholder');
      const out = signed(html);
      // the link's own </a> goes with the placeholder: no stray end tag after the signature
      expect(out).to.equal(`<p>Best, <a href="https://contoso.example/">contoso.example</a>${SIG}</p>`);
      expect(linkAround(out, 'sig')).to.equal(undefined);
      const spaced = '<p>Best, <a href="https://contoso.example/">contoso.example {{signature}} </a> </p>';
      expect(signed(spaced)).to.equal(`<p>Best, <a href="https://contoso.example/">contoso.example </a>${SIG} </p>`);
    });

    it('a placeholder that is the whole text of a link: the link goes with it', () => {
      const html = '<p>Best,</p><p><span style="color:navy"><a href="https://contoso.example/"><b>{{signature}}</b></a></span></p>';
      expect(signed(html)).to.equal(`<p>Best,</p><p><span style="color:navy">${SIG}</span></p>`);
    });

    it('a placeholder with more of the link after it: the link starts again after the signature, so that text stays linked', () => {
      const link = '<a href="https://contoso.example/" class="x">';
      // at the link's start: its start tag moves behind the signature (no empty link in front)
      expect(signed(`<p>${link}{{signature}} more</a></p>`)).to.equal(`<p>${SIG}${link} more</a></p>`);
      // in the middle: ended in front, started again behind
      const mid = `<p>${link}see <b>{{signature}}</b> more</a> end</p>`;
      const out = signed(mid);
      expect(out).to.equal(`<p>${link}see <b></a>${SIG}${link}</b> more</a> end</p>`);
      expect(linkAround(out, 'sig')).to.equal(undefined);
      // with a top banner too
      expect(signed(`<body><p>${link}see {{signature}} more</a></p></body>`, { topHtml: TOP })).to.equal(`<body>${TOP}<p>${link}see </a>${SIG}${link} more</a></p></body>`);
      // a link the sender never closed is not started again: what follows stays outside it, as before
      expect(signed(`<p>${link}see {{signature}} more</p>`)).to.equal(`<p>${link}see </a>${SIG} more</p>`);
    });

    it('a link open where the top banner goes (an <a> before <body>)', () => {
      const html = '<html><a href="https://fabrikam.example/"><body><p>Hi</p></body></html>';
      const out = signed(html, { topHtml: TOP });
      expect(out.startsWith(`<html><a href="https://fabrikam.example/"><body></a>${TOP}<p>Hi</p>`)).to.equal(true);
      // the link ended in front of the banner: none is open at the end any more
      expect(count(out, '</a>')).to.equal(2);
    });

    it('top banner and signature at the same offset: one </a> for both', () => {
      const html = '<a href="https://fabrikam.example/"><body>';
      expect(signed(html, { topHtml: TOP })).to.equal(`${html}</a>${TOP}${SIG}`);
    });

    it('a new link opened after the one the top banner ended (the count stays one): ended before the signature too', () => {
      const html = '<a href="https://one.example/"><body><p><a href="https://two.example/">two</body>';
      expect(signed(html, { topHtml: TOP })).to.equal(`<a href="https://one.example/"><body></a>${TOP}<p><a href="https://two.example/">two</a>${SIG}</body>`);
    });

    it('a link opened after the top banner is ended before the signature', () => {
      const html = '<html><body><p>See <a href="https://fabrikam.example/">this</body></html>';
      expect(signed(html, { topHtml: TOP })).to.equal(`<html><body>${TOP}<p>See <a href="https://fabrikam.example/">this</a>${SIG}</body></html>`);
    });
  });

  it('property: a placeholder anywhere in a link\'s text: the signature is in no link, the text around it stays linked, every </a> ends a link', () => {
    const words = fc.constantFrom('', 'see', 'the plan', 'x', ' ', '&amp; more');
    const wrap = fc.constantFrom('', 'b', 'span');
    fc.assert(
      fc.property(words, words, wrap, fc.boolean(), (before, after, inner, closed) => {
        const ph = inner ? `<${inner}>${PH}</${inner}>` : PH;
        const html = `<p>x <a href="https://contoso.example/">${before}${ph}${after}${closed ? '</a>' : ''} end</p>`;
        const out = signed(html);
        expect(linkAround(out, 'sig'), out).to.equal(undefined);
        const doc = parseDocument(out);
        const links = DomUtils.getElementsByTagName('a', doc.children).filter((a) => a.attribs.href === 'https://contoso.example/');
        const linked = links.map((a) => DomUtils.textContent(a)).join('|');
        if (before.trim()) expect(linked, out).to.include(before.replace('&amp;', '&').trim());
        if (after.trim() && closed) expect(linked, out).to.include(after.replace('&amp;', '&').trim());
        // no end tag left over: as many </a> as links opened (the signature's own included)
        expect(count(out, '</a>'), out).to.be.at.most(count(out, '<a '));
      }),
      { numRuns: 200 },
    );
  });

  describe('adds nothing when no link is open there', () => {
    const cases: Array<[string, string]> = [
      ['a link closed properly', '<p>See <a href="https://fabrikam.example/">our site</a>.</p>'],
      ['a link closed in uppercase', '<P>See <A HREF="https://fabrikam.example/">our site</A>.</P>'],
      ['a link closed implicitly by the next <a>, which is closed', '<p><a href="https://one.example/">one <a href="https://two.example/">two</a></p>'],
      ['an <a> in a comment', '<p>Hi</p><!-- <a href="https://fabrikam.example/"> -->'],
      ['an <a> in a script', '<p>Hi</p><script>document.write("<a href=\'https://fabrikam.example/\'>")</script>'],
      ['an <a> in a style', '<style>/* <a href="x"> */ p { color: red }</style><p>Hi</p>'],
      ['an <a> in a title and a textarea', '<title><a href="x"></title><p>Hi</p><textarea><a href="y"></textarea>'],
      ['an <a> in a template', '<template><a href="https://fabrikam.example/"></template><p>Hi</p>'],
      ['an SVG <a> (not an HTML link)', '<p>Hi <svg><a href="https://fabrikam.example/"><text>x</text></svg></p>'],
      ['a link left open inside a table cell that ended', '<table><tr><td><a href="https://fabrikam.example/">cell</td></tr></table><p>after</p>'],
      ['a link closed by </a> across a block (the browser splits it)', '<a href="https://fabrikam.example/"><div>block</a>more</div>'],
    ];
    for (const [name, html] of cases) {
      it(name, () => {
        const r = placeInHtml(html, PH);
        expect(r.openLinks).to.deep.equal({ at: 0, bodyStart: 0, atAfterTop: 0 });
        expect(signed(html)).to.equal(html.slice(0, r.at) + SIG + html.slice(r.at));
      });
    }

    it('a link left open inside a hidden element: the end point moves in front of it, where no link is open', () => {
      const html = '<p>Hi</p><div style="display:none"><a href="https://fabrikam.example/">tracking';
      const r = placeInHtml(html, PH);
      expect(r.at).to.equal(html.indexOf('<div style'));
      expect(signed(html)).to.equal(`<p>Hi</p>${SIG}<div style="display:none"><a href="https://fabrikam.example/">tracking`);
    });

    it('a link opened outside a table whose cell is still open: no </a> (none would reach it from inside the cell)', () => {
      const html = '<a href="https://fabrikam.example/"><table><tr><td>cell text';
      expect(placeInHtml(html, PH).openLinks).to.deep.equal({ at: 0, bodyStart: 0, atAfterTop: 0 });
    });
  });

  describe('through the MIME surgery', () => {
    it('a quoted-printable HTML part with a link left open: the decoded part ends the link before the signature', async () => {
      const body = '<html><body><p>Please see <a href="https://fabrikam.example/very/long/path/to/the/offer/page">the offer</p>\n</body></html>\n';
      const input = buildMessage({ body: multipart('alternative', 'alt-1', [textPart('Please see the offer.\n'), htmlPart(body)]) });
      const r = await surgeryChecked(input, markerEdit());
      expect(r.report.parts.map((p) => p.contentType)).to.deep.equal(['text/plain', 'text/html']);
      const part = await partOf(r.output, 'text/html');
      expect(part.decoded).to.include(`the offer</p>\r\n</a>${MARK_HTML_START}`);
      expect(count(part.decoded, '</a>')).to.equal(1);
    });
  });
});
