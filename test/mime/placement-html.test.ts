import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { findQuoteStartHtml, insertIntoHtml, placeInHtml, type PlacementResult } from '../../appliance/src/mime/placement';

const FIXTURES = path.resolve(__dirname, '../fixtures/placement/html');
const PH = '{{signature}}';

function fixture(name: string): string {
  return readFileSync(path.join(FIXTURES, name), 'utf8');
}

/** The new text is exactly what precedes `at`, the quote exactly what follows. */
function expectSplit(html: string, r: PlacementResult, newTextEndsWith: string, quoteStartsWith: string): void {
  const before = html.slice(0, r.at);
  const after = html.slice(r.at + r.removeLength);
  expect(before.endsWith(newTextEndsWith), `text before the signature ends with ${JSON.stringify(newTextEndsWith)}; got …${JSON.stringify(before.slice(-80))}`).to.equal(true);
  expect(after.startsWith(quoteStartsWith), `text after the signature starts with ${JSON.stringify(quoteStartsWith)}; got ${JSON.stringify(after.slice(0, 80))}…`).to.equal(true);
}

interface ReplyCase {
  file: string;
  client: string;
  newTextEndsWith: string;
  quoteStartsWith: string;
  /** Text that belongs to the new message and must stay above the signature. */
  typed: string;
  /** Text of the quoted thread that must stay below. */
  quoted: string;
}

const REPLIES: ReplyCase[] = [
  {
    file: 'outlook-desktop-en.html', client: 'Outlook desktop (2013+, #E1E1E1, in)',
    newTextEndsWith: '<p class=MsoNormal>Sam<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p>',
    quoteStartsWith: "<div><div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in'>",
    typed: 'Thursday at 10 works for me.', quoted: 'when would suit you',
  },
  {
    file: 'outlook-desktop-de-2010.html', client: 'Outlook 2010 German (#B5C4DF, cm)',
    newTextEndsWith: '<o:p>&nbsp;</o:p></span></a></p>',
    quoteStartsWith: "<div><div style='border:none;border-top:solid #B5C4DF 1.0pt;padding:3.0pt 0cm 0cm 0cm'>",
    typed: 'anbei die Unterlagen.', quoted: 'Guten Morgen',
  },
  {
    file: 'outlook-2003.html', client: 'Outlook 2003 (uppercase, unquoted, <HR tabIndex=-1>)',
    newTextEndsWith: '<o:p>&nbsp;</o:p></SPAN></FONT></P>\n',
    quoteStartsWith: '<DIV>\n<DIV class=MsoNormal style="TEXT-ALIGN: center" align=center>',
    typed: 'Got it, thanks.', quoted: 'Here is the budget.',
  },
  {
    file: 'outlook-mac.html', client: 'Outlook for Mac (OLK_SRC_BODY_SECTION)',
    newTextEndsWith: '<div>Sounds good, see you Monday.</div><div><br></div>',
    quoteStartsWith: '<span id="OLK_SRC_BODY_SECTION">',
    typed: 'see you Monday', quoted: 'still on for Monday',
  },
  {
    file: 'owa-reply.html', client: 'Outlook on the web (appendonsend + hr + divRplyFwdMsg)',
    newTextEndsWith: 'Jordan</div>\n</div>\n',
    quoteStartsWith: '<div id="appendonsend"></div>',
    typed: 'go ahead with the order', quoted: 'Shall I place the order?',
  },
  {
    file: 'owa-new-outlook-container.html', client: 'new Outlook (reference-message container), French',
    newTextEndsWith: "Merci, c'est noté.</div>\n",
    quoteStartsWith: '<div id="mail-editor-reference-message-container">',
    typed: "c'est noté", quoted: 'la réunion est déplacée',
  },
  {
    file: 'outlook-ios.html', client: 'Outlook for iOS (mobile footer stays with the typed text)',
    newTextEndsWith: 'Get <a href="https://aka.ms/o0ukef">Outlook for iOS</a></div>\n',
    quoteStartsWith: '<div id="mail-editor-reference-message-container" class="ms-outlook-mobile-reference-message skipProofing">',
    typed: 'On my way', quoted: 'Are you coming?',
  },
  {
    file: 'outlook-android-requoted.html', client: 'Outlook mobile, re-quoted (x_ prefixes)',
    newTextEndsWith: '<a href="https://aka.ms/ghei36">Outlook for Android</a></div>\n',
    quoteStartsWith: '<div id="x_id-d2ed923a-74ce-4157-8a68-f15a06251364" class="x_ms-outlook-mobile-reference-message">',
    typed: 'Forwarding as discussed.', quoted: 'The results are attached.',
  },
  {
    file: 'owa-qp-damaged.html', client: 'OWA with quoted-printable damage (=3D left in)',
    newTextEndsWith: 'Received, thank you.</div>\n',
    quoteStartsWith: '<div id=3D"appendonsend"></div>',
    typed: 'Received, thank you.', quoted: 'Your ticket was received.',
  },
  {
    file: 'gmail-reply.html', client: 'Gmail (gmail_quote container, gmail_attr inside)',
    newTextEndsWith: '<div>Ana</div></div><br>',
    quoteStartsWith: '<div class="gmail_quote gmail_quote_container">',
    typed: 'Thanks, that works.', quoted: 'Does Friday work?',
  },
  {
    file: 'gmail-extra-old.html', client: 'Gmail, older (gmail_extra holding only the quote)',
    newTextEndsWith: '<div dir="ltr">Hello</div>',
    quoteStartsWith: '<div class="gmail_extra"><br><div class="gmail_quote">',
    typed: 'Hello', quoted: 'Hi<br>',
  },
  {
    file: 'gmail-extra-signature.html', client: 'Gmail, older (gmail_extra holding the sender’s Gmail signature)',
    newTextEndsWith: 'Ana Lima<br>Sales</div></div></div>\n<br>',
    quoteStartsWith: '<div class="gmail_quote">On Mon, Apr 2, 2012',
    typed: 'Ana Lima', quoted: 'Hi<br>',
  },
  {
    file: 'gmail-forward-de.html', client: 'Gmail forward, German',
    newTextEndsWith: 'Zur Info.<br><br>',
    quoteStartsWith: '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">---------- Weitergeleitete Nachricht',
    typed: 'Zur Info.', quoted: 'Das Angebot im Anhang.',
  },
  {
    file: 'apple-mail-macos.html', client: 'Apple Mail macOS (attribution inside blockquote type=cite)',
    newTextEndsWith: 'Sounds good.<div><br></div>',
    quoteStartsWith: '<div><br><div><blockquote type="cite"><div>On 22. Aug 2015',
    typed: 'Sounds good.', quoted: 'Hi there!',
  },
  {
    file: 'apple-mail-ios.html', client: 'Apple Mail iOS (attribution in its own blockquote)',
    newTextEndsWith: '<div dir="ltr">Sent from my iPhone</div>',
    quoteStartsWith: '<div dir="ltr"><br><blockquote type="cite">On 3 Apr 2026, at 16:19',
    typed: 'Sent from my iPhone', quoted: 'Lunch tomorrow?',
  },
  {
    file: 'apple-attribution-sibling.html', client: 'Sparrow / Apple-style attribution paragraph above blockquote type=cite',
    newTextEndsWith: '<div>Sam</div></div>\n',
    quoteStartsWith: '<p style="color: #A0A0A8;">On Tuesday, April 3, 2012 at 4:55 PM, xxx wrote:</p>',
    typed: 'Sam', quoted: '<span><div><div>Hello',
  },
  {
    file: 'thunderbird-top.html', client: 'Thunderbird top-posted reply, Polish (moz-cite-prefix)',
    newTextEndsWith: '<p>Dzięki, wyślę jutro.</p>\n    ',
    quoteStartsWith: '<div class="moz-cite-prefix">W dniu 2.03.2026 o 14:20, Anna Nowak pisze:',
    typed: 'Dzięki', quoted: 'Czy możesz wysłać raport?',
  },
  {
    file: 'thunderbird-forward.html', client: 'Thunderbird forward (moz-forward-container)',
    newTextEndsWith: '<p>See below.</p>\n    ',
    quoteStartsWith: '<div class="moz-forward-container">',
    typed: 'See below.', quoted: 'Invoice attached.',
  },
  {
    file: 'yahoo.html', client: 'Yahoo Mail (yahoo_quoted)',
    newTextEndsWith: '<div dir="ltr" data-setdir="false"><br></div></div>',
    quoteStartsWith: '<div id="yahoo_quoted_8137465390" class="yahoo_quoted">',
    typed: 'Hello', quoted: '<div dir="ltr">Hi</div>',
  },
  {
    file: 'aol-original-message.html', client: 'AOL ("-----Original Message-----" inside a div, inside <font>)',
    newTextEndsWith: 'Hello<br>\n\n<br>\n<br>\n\n',
    quoteStartsWith: '<div style="font-family:arial,helvetica;font-size:10pt;color:black">-----Original Message-----',
    typed: 'Hello', quoted: '<tt>Hi',
  },
  {
    file: 'zimbra.html', client: 'Zimbra / Comcast (hr#zwchr)',
    newTextEndsWith: 'Hello<br><br>',
    quoteStartsWith: '<hr id="zwchr">',
    typed: 'Hello', quoted: '<br>Hi<br>',
  },
  {
    file: 'hotmail-quoted-header.html', client: 'Hotmail (quoted "> Subject/From/To/Date" header block)',
    newTextEndsWith: 'Hello<br><br>',
    quoteStartsWith: '<div><div id="SkyDrivePlaceholder"></div>&gt; Subject: Test',
    typed: 'Hello', quoted: '&gt; Hi',
  },
  {
    file: 'samsung-de.html', client: 'Samsung Email, German ("-------- Ursprüngliche Nachricht --------")',
    newTextEndsWith: 'Von meinem Samsung Galaxy Smartphone gesendet.</div></div><div dir="auto"><br></div>',
    quoteStartsWith: '<div align="left" dir="auto" style="font-size:100%;color:#000000"><div>-------- Ursprüngliche Nachricht',
    typed: 'prompte Erledigung', quoted: 'Ihr Termin ist bestätigt.',
  },
  {
    file: 'generic-from-block-es.html', client: 'generic header block, Spanish (De/Enviado/Para/Asunto)',
    newTextEndsWith: '<p>Perfecto, gracias.</p><p><br></p>',
    quoteStartsWith: '<p><b>De:</b> Lucía Gómez',
    typed: 'Perfecto, gracias.', quoted: 'Os paso el calendario.',
  },
  {
    file: 'windows-mail.html', client: 'Mail for Windows 10 (rgb(229,229,229) top border)',
    newTextEndsWith: 'for Windows 10</div><div><br></div></div>',
    quoteStartsWith: '<div style="padding-top: 5px; border-top-color: rgb(229, 229, 229);',
    typed: 'Noted, thanks.', quoted: 'Here are the notes.',
  },
];

describe('mime/placement: HTML replies and forwards', () => {
  for (const c of REPLIES) {
    it(`${c.client}: signature goes directly above the quoted thread (${c.file})`, () => {
      const html = fixture(c.file);
      const r = placeInHtml(html, PH);
      expect(r.placement).to.equal('above-quote');
      expect(r.removeLength).to.equal(0);
      expect(r.quoteStart).to.equal(r.at);
      expect(findQuoteStartHtml(html)).to.equal(r.at);
      expectSplit(html, r, c.newTextEndsWith, c.quoteStartsWith);
      expect(html.slice(0, r.at)).to.contain(c.typed);
      expect(html.slice(0, r.at)).not.to.contain(c.quoted);
      expect(html.slice(r.at)).to.contain(c.quoted);
      expect(r.bodyStart).to.be.at.most(r.at);
    });
  }

  it('Thunderbird bottom-posted reply (text below the quote): signature at the end, quote still reported', () => {
    const html = fixture('thunderbird-bottom.html');
    const r = placeInHtml(html, PH);
    expect(r.placement).to.equal('end');
    expect(html.slice(r.at)).to.equal('</body>\n</html>\n');
    expect(html.slice(r.quoteStart!)).to.match(/^<div class="moz-cite-prefix">On 02\/04\/2026/);
  });

  it('bodyStart is right after the <body …> start tag', () => {
    const html = fixture('outlook-desktop-en.html');
    const r = placeInHtml(html, PH);
    expect(html.slice(0, r.bodyStart)).to.match(/<body lang=EN-US link="#0563C1" vlink="#954F72" style='word-wrap:break-word'>$/);
  });

  it('inserting at the placement keeps every other byte', () => {
    const html = fixture('owa-reply.html');
    const r = placeInHtml(html, PH);
    const out = insertIntoHtml(html, r, '<div class="sig">S</div>');
    expect(out).to.equal(`${html.slice(0, r.at)}<div class="sig">S</div>${html.slice(r.at)}`);
    expect(out.indexOf('<div class="sig">S</div><div id="appendonsend">')).to.be.greaterThan(0);
  });
});

describe('mime/placement: HTML new messages', () => {
  it('Outlook desktop new message: before </body>, never matching inside <style>, <script> or conditional comments', () => {
    const html = fixture('new-outlook-desktop.html');
    const r = placeInHtml(html, PH);
    expect(r.placement).to.equal('end');
    expect(r.quoteStart).to.equal(undefined);
    expect(html.slice(r.at)).to.equal('</body></html>\n');
    expect(html.slice(0, r.bodyStart)).to.match(/style='word-wrap:break-word'>$/);
  });

  it('fragment without <html>/<body>: end of the string, bodyStart 0', () => {
    const html = fixture('new-fragment.html');
    const r = placeInHtml(html, PH);
    expect(r).to.deep.equal({ at: html.length, removeLength: 0, placement: 'end', bodyStart: 0, openLinks: { at: 0, bodyStart: 0, atAfterTop: 0 } });
  });

  it('no <body> tag: before </html>, top banners after </head>', () => {
    const html = fixture('new-no-body.html');
    const r = placeInHtml(html, PH);
    expect(r.placement).to.equal('end');
    expect(html.slice(r.at)).to.equal('</html>\n');
    expect(html.slice(0, r.bodyStart)).to.equal('<html><head><title>Status</title></head>');
  });

  it('<html> without <head> or <body>: top banners after the <html> start tag', () => {
    const html = '<html lang="en"><div>Hi</div></html>';
    const r = placeInHtml(html, PH);
    expect(r.bodyStart).to.equal('<html lang="en">'.length);
    expect(r.at).to.equal(html.indexOf('</html>'));
  });

  it('a fragment that starts with a doctype: top banners after it (in front, the reader\'s browser would switch to quirks mode)', () => {
    for (const doctype of ['<!DOCTYPE html>', '<!doctype HTML PUBLIC "-//W3C//DTD HTML 4.01//EN">', '\r\n<!DOCTYPE html>']) {
      const html = `${doctype}\r\n<div>Hi</div>`;
      const r = placeInHtml(html, PH);
      expect(r.bodyStart, doctype).to.equal(doctype.length);
      expect(r.at, doctype).to.equal(html.length);
    }
    // a doctype after content sets nothing
    expect(placeInHtml('<div>Hi</div><!DOCTYPE html>', PH).bodyStart).to.equal(0);
  });

  it('uppercase tags, unquoted attributes, unclosed elements, "</BODY>" inside a comment', () => {
    const html = fixture('new-uppercase-unclosed.html');
    const r = placeInHtml(html, PH);
    expect(r.placement).to.equal('end');
    expect(html.slice(r.at)).to.equal('</BODY></HTML>\n');
    expect(html.slice(0, r.bodyStart)).to.match(/<BODY BGCOLOR=#FFFFFF>$/);
  });

  it('last </body> wins when there are several', () => {
    const html = '<body><div>a</div></body><div>b</div></body>';
    expect(placeInHtml(html, PH).at).to.equal(html.lastIndexOf('</body>'));
  });

  it('a blockquote the sender used for indentation (no attribution, no type=cite) is not a quote', () => {
    // Known ambiguity: Outlook's and Gmail's "indent" button produce a plain
    // <blockquote>. Without an attribution line or type="cite" it is content.
    const html = fixture('new-user-blockquote.html');
    const r = placeInHtml(html, PH);
    expect(r.placement).to.equal('end');
    expect(r.quoteStart).to.equal(undefined);
  });

  it('a "From:" line without Sent/Date/To lines is typed text, not a quote header', () => {
    const r = placeInHtml(fixture('new-from-line.html'), PH);
    expect(r.placement).to.equal('end');
    expect(r.quoteStart).to.equal(undefined);
  });

  it('"wrote:" inside a sentence, or an attribution-like line not followed by a blockquote, is not a quote', () => {
    const r = placeInHtml(fixture('new-wrote-sentence.html'), PH);
    expect(r.placement).to.equal('end');
    expect(r.quoteStart).to.equal(undefined);
  });

  it('an attribution line followed by a plain blockquote is a quote (generic clients)', () => {
    const html = '<div>Agreed.</div><div>On Tue, 3 Mar 2026 at 10:00, Kim &lt;kim@example.com&gt; wrote:</div><blockquote style="margin:0 0 0 .8ex">old</blockquote>';
    const r = placeInHtml(html, PH);
    expect(r.placement).to.equal('above-quote');
    expect(html.slice(r.at)).to.match(/^<div>On Tue/);
  });

  it('an attribution wrapped over two lines above a blockquote', () => {
    const html = 'Agreed.<br><br>Am Di., 3. März 2026 um 10:00 Uhr schrieb Kim Berg<br>&lt;kim@example.de&gt;:<br><blockquote>alt</blockquote>';
    const r = placeInHtml(html, PH);
    expect(r.placement).to.equal('above-quote');
    expect(html.slice(0, r.at)).to.equal('Agreed.<br><br>');
  });
});

describe('mime/placement: HTML reply headers under an underscore ruler, and markup browsers read leniently', () => {
  it('a ruler of underscores above a From/Sent/To/Subject block starts the quote at the ruler (Outlook for Mac and mobile, Word-made HTML)', () => {
    const inDivs = '<html><body><div>Thanks!</div><div>________________________________</div><div><b>From:</b> Bob &lt;bob@fabrikam.example&gt;<br><b>Sent:</b> Monday, 1 June 2026 10:00<br><b>To:</b> Jane<br><b>Subject:</b> Re: budget</div><div>old text</div></body></html>';
    const r1 = placeInHtml(inDivs, PH);
    expect(r1.placement).to.equal('above-quote');
    expectSplit(inDivs, r1, '<div>Thanks!</div>', '<div>________________________________</div><div><b>From:</b>');
    const inOneParagraph = '<html><body><p>Danke!</p><p>________________________________<br>Von: Bob<br>Gesendet: Montag, 1. Juni 2026 10:00<br>An: Jane<br>Betreff: AW: Budget</p><p>alt</p></body></html>';
    const r2 = placeInHtml(inOneParagraph, PH);
    expect(r2.placement).to.equal('above-quote');
    expectSplit(inOneParagraph, r2, '<p>Danke!</p>', '<p>________________________________<br>Von: Bob');
  });

  it('a ruler of underscores without a header block under it is typed text', () => {
    const html = '<html><body><div>Sign here: ________________________________</div><div>________________________________</div><div>Thanks</div></body></html>';
    const r = placeInHtml(html, PH);
    expect(r.placement).to.equal('end');
    expect(html.slice(r.at)).to.equal('</body></html>');
  });

  it('processing instructions (Word\'s <?xml:namespace …>), "</br>" and stray text in <head> do not move the end of the body', () => {
    for (const html of [
      '<html xmlns:o="urn:schemas-microsoft-com:office:office"><head><?xml:namespace prefix = o ns = "urn:schemas-microsoft-com:office:office" /></head><body><p>Hello<o:p></o:p></p></body></html>',
      '<html><body><p>Hello</p><?xml:namespace prefix = o /><p>More</p></body></html>',
      '<html><body><p>Hello</br>World</p></body></html>',
      '<html><head><title>t</title>stray text<p>Hi</p></head><body><p>x</p></body></html>',
    ]) {
      const r = placeInHtml(html, PH);
      expect(r.placement, html).to.equal('end');
      expect(html.slice(r.at), html).to.equal('</body></html>');
    }
  });
});

describe('mime/placement: HTML placeholder', () => {
  function check(html: string, expectedRemoved: string, placeholder = PH): PlacementResult {
    const r = placeInHtml(html, placeholder);
    expect(r.placement).to.equal('placeholder');
    expect(html.slice(r.at, r.at + r.removeLength)).to.equal(expectedRemoved);
    return r;
  }

  it('plain placeholder in the typed text wins over the quote', () => {
    const base = fixture('owa-reply.html');
    const html = base.replace('Yes, please go ahead with the order.', 'Yes, please go ahead with the order.<br>{{signature}}');
    const r = check(html, '{{signature}}');
    expect(r.quoteStart).to.equal(html.indexOf('<div id="appendonsend">'));
  });

  it('placeholder wins over the end of a new message', () => {
    check('<html><body><p>Hi</p><p>{{signature}}</p><p>PS: more text</p></body></html>', '{{signature}}');
  });

  it('split by Word proofing markup: {{<span class=SpellE>signature</span>}}', () => {
    check('<p class=MsoNormal>Regards<br>{{<span class=SpellE>signature</span>}}<o:p></o:p></p>', '{{<span class=SpellE>signature</span>}}');
  });

  it('entity-encoded by the client: &#123;&#123;signature&#125;&#125;', () => {
    check('<div>Thanks</div><div>&#123;&#123;signature&#125;&#125;</div>', '&#123;&#123;signature&#125;&#125;');
  });

  it('mixed entities and markup: &#x7B;{<b>signature</b>}&#x7d;', () => {
    check('<div>&#x7B;{<b>signature</b>}&#x7d;</div>', '&#x7B;{<b>signature</b>}&#x7d;');
  });

  it('starts inside an element: <span>{{signature</span>}} is widened to whole elements', () => {
    check('<p>Hi <span style="color:red">{{signature</span>}} there</p>', '<span style="color:red">{{signature</span>}}');
  });

  it('every piece in its own span: the spans in between go, the outer ones stay balanced', () => {
    const html = '<p><span>{{</span><span>signature</span><span>}}</span></p>';
    const r = check(html, '{{</span><span>signature</span><span>}}');
    expect(insertIntoHtml(html, r, 'SIG')).to.equal('<p><span>SIG</span></p>');
  });

  it('inline elements opened before and closed after the placeholder: widened on both sides', () => {
    check('<p>x <b><i>{{signature</i></b>}} <u>{{</u>y</p>', '<b><i>{{signature</i></b>}}');
  });

  it('crossing tags that cannot be removed whole: placeholder not used', () => {
    const html = '<p><b>{{sig<i>nature}}</b> and</i> more</p>';
    const r = placeInHtml(html, PH);
    expect(r.placement).to.equal('end');
  });

  it('placeholder inside the quoted thread is ignored', () => {
    const base = fixture('gmail-reply.html');
    const html = base.replace('Does Friday work?', 'Does Friday work? {{signature}}');
    const r = placeInHtml(html, PH);
    expect(r.placement).to.equal('above-quote');
  });

  it('only the first occurrence counts', () => {
    const html = '<p>{{signature}}</p><p>{{signature}}</p>';
    const r = check(html, '{{signature}}');
    expect(r.at).to.equal(3);
  });

  it('never matched across block boundaries, nor inside <style>, <title> or comments', () => {
    const html = '<html><head><title>{{signature}}</title><style>/* {{signature}} */</style></head><body><p>{{sig</p><p>nature}}</p><!-- {{signature}} --></body></html>';
    expect(placeInHtml(html, PH).placement).to.equal('end');
  });

  it('a configured placeholder other than the default', () => {
    check('<div>Best</div><div>%%SIGNATURE%%</div>', '%%SIGNATURE%%', '%%SIGNATURE%%');
  });

  it('an empty placeholder is never matched', () => {
    expect(placeInHtml('<p>x</p>', '').placement).to.equal('end');
  });
});

describe('mime/placement: HTML placeholder split by Word language runs', () => {
  it('Word language runs "Best<br>{{" + "signature}}": the close/reopen pair goes, the rest stays balanced', () => {
    const html = '<p class=MsoNormal><span lang=EN-US>Best<br>{{</span><span lang=DE>signature}}</span><o:p></o:p></p>';
    const r = placeInHtml(html, PH);
    expect(r.placement).to.equal('placeholder');
    expect(html.slice(r.at, r.at + r.removeLength)).to.equal('{{</span><span lang=DE>signature}}');
    expect(insertIntoHtml(html, r, 'SIG')).to.equal('<p class=MsoNormal><span lang=EN-US>Best<br>SIG</span><o:p></o:p></p>');
  });

  it('crossing tags with different names cannot be fixed: not used', () => {
    const html = '<p><b>x{{</b><i>signature}}</i></p>';
    expect(placeInHtml(html, PH).placement).to.equal('end');
  });
});

describe('mime/placement: HTML without a closed head', () => {
  it('an unclosed <head> ends at the first body element: the quote is still found', () => {
    const html = '<html><head><meta charset="utf-8"><style>p{}</style><div>Thanks</div><div id="appendonsend"></div><hr tabindex="-1"><div id="divRplyFwdMsg"><b>From:</b> A</div></html>';
    const r = placeInHtml(html, PH);
    expect(r.placement).to.equal('above-quote');
    expect(html.slice(r.at)).to.match(/^<div id="appendonsend">/);
  });

  it('the separator element is the first body element of an unclosed head: its attributes are still read', () => {
    for (const tag of ['<div class="gmail_quote">', '<DIV STYLE="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">', '<div id=divRplyFwdMsg>']) {
      const html = `<html><head><meta charset="utf-8">${tag}<b>From:</b> A</div></html>`;
      const r = placeInHtml(html, PH);
      expect(r.placement, tag).to.equal('above-quote');
      expect(html.slice(r.at), tag).to.match(/^<div/i);
    }
  });

  it('markup inside <template> is inert', () => {
    const html = '<body><p>Hi</p><template><div class="gmail_quote">x</div></template></body>';
    expect(placeInHtml(html, PH).placement).to.equal('end');
  });
});

describe('mime/placement: separator attributes', () => {
  const reply = (tag: string) => `<html><body><p>Thanks</p>${tag}<p><b>From:</b> A</p></div></body></html>`;

  it('repaired values: padding, stray quotes, quoted-printable damage, OWA and Gmail prefixes, several classes', () => {
    for (const tag of [
      '<div class=" gmail_quote ">',
      `<div class='"gmail_quote"'>`,
      '<div class=3D"gmail_quote">',
      '<div class="x_x_gmail_quote">',
      '<div class="m_-4711_gmail_quote">',
      '<div class="gmail_attr\tgmail_quote  other">',
      '<div NAME="divRplyFwdMsg">',
      '<div id="X_divRplyFwdMsg">',
    ]) {
      expect(placeInHtml(reply(tag), PH).placement, tag).to.equal('above-quote');
    }
  });

  it("Outlook's border style counts on div, p and span only; other attributes and elements do not look like a separator", () => {
    const style = 'style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm"';
    expect(placeInHtml(reply(`<span ${style}>`), PH).placement).to.equal('above-quote');
    expect(placeInHtml(reply(`<td ${style}>`), PH).placement).to.equal('end');
    expect(placeInHtml(reply(`<div data-class="gmail_quote" title="divRplyFwdMsg" data-style-id="${style}">`), PH).placement).to.equal('end');
    expect(placeInHtml(reply('<div class="gmail_quotes xgmail_quote">'), PH).placement).to.equal('end');
  });

  it('the first of a repeated attribute counts, as in browsers', () => {
    expect(placeInHtml(reply('<div class="note" class="gmail_quote">'), PH).placement).to.equal('end');
    expect(placeInHtml(reply('<div class="gmail_quote" class="note">'), PH).placement).to.equal('above-quote');
  });
});

describe('mime/placement: more HTML layouts', () => {
  it('Apple Mail: attribution div, Apple-interchange-newline, then blockquote type=cite', () => {
    const html = '<body>Fine by me.<div><br><div>On 2 Mar 2026, at 09:14, Bob &lt;bob@example.com&gt; wrote:</div><br class="Apple-interchange-newline"><blockquote type="cite"><div>old</div></blockquote></div></body>';
    const r = placeInHtml(html, PH);
    expect(r.placement).to.equal('above-quote');
    expect(html.slice(0, r.at)).to.equal('<body>Fine by me.');
  });

  it('header block with one paragraph per header line', () => {
    const html = '<body><p>Ok.</p><p><b>Van:</b> Bob</p><p><b>Verzonden:</b> maandag 2 maart 2026</p><p><b>Aan:</b> Ann</p><p>oud</p></body>';
    const r = placeInHtml(html, PH);
    expect(r.placement).to.equal('above-quote');
    expect(html.slice(r.at)).to.match(/^<p><b>Van:<\/b> Bob/);
  });

  it('separator inside a layout table cell: the signature stays inside the cell', () => {
    const html = '<body><table><tr><td>Thanks<div class="gmail_quote">On Mon, 2 Mar 2026, Bob wrote:<blockquote>old</blockquote></div></td></tr></table></body>';
    const r = placeInHtml(html, PH);
    expect(html.slice(0, r.at)).to.equal('<body><table><tr><td>Thanks');
  });

  it('separator as the first thing in a cell is not moved out of the cell', () => {
    const html = '<body><table><tr><td><div id="divRplyFwdMsg"><b>From:</b> A</div></td></tr></table></body>';
    const r = placeInHtml(html, PH);
    expect(html.slice(0, r.at)).to.equal('<body><table><tr><td>');
  });

  it('reply with no typed text at all: right after <body>', () => {
    const html = '<html><body><div id="appendonsend"></div><hr tabindex="-1"><div id="divRplyFwdMsg"><b>From:</b> A</div></body></html>';
    const r = placeInHtml(html, PH);
    expect(r.at).to.equal(r.bodyStart);
    expect(r.placement).to.equal('above-quote');
  });
});
