// The sender controls the HTML: whatever it holds, the signature must land
// where a browser's HTML parser is in its normal "in body" state and shows
// what it reads — never in a comment, raw text, <template>, SVG/MathML, a tag
// cut off at the end, or an element that hides its content. The expected
// offsets below are what an HTML5 parser (parse5, the WHATWG algorithm) makes
// of these documents: the signature's text ends up in a shown element.
import { expect } from 'chai';
import fc from 'fast-check';
import { evaluateCondition, msoConditional, scriptEndIgnored, styleHides } from '../../appliance/src/mime/placement/hidden';
import { insertIntoHtml, placeInHtml, scanHtml, type PlacementResult } from '../../appliance/src/mime/placement';

const PH = '{{signature}}';

/** The placement, checked to be in bounds. */
function place(html: string, placeholder = PH): PlacementResult {
  const r = placeInHtml(html, placeholder);
  expect(r.at).to.be.within(0, html.length);
  expect(r.at + r.removeLength).to.be.at.most(html.length);
  expect(r.bodyStart).to.be.within(0, html.length);
  return r;
}

/** What follows the end insertion point of a new message. */
function afterEnd(html: string): string {
  const r = place(html);
  expect(r.placement, html).to.equal('end');
  return html.slice(r.at);
}

const body = (inner: string): string => `<html><body><p>Hello</p>${inner}</body></html>`;

describe('mime/placement: HTML visibility — constructs left open at the end', () => {
  const cases: Array<[string, string, string]> = [
    ['a comment', '<html><body><p>Hello</p><!-- note </body></html>', '<!-- note'],
    ['an Outlook conditional comment', '<html><body><p>Hello</p><!--[if mso]><p>x</p></body></html>', '<!--[if mso]>'],
    ['a comment in a fragment', '<p>Hello</p><!-- x', '<!-- x'],
    ['<style>', body('<style>p{}'), '<style>'],
    ['<script>', body('<script>var a = 1;'), '<script>'],
    ['<title>', body('<title>t'), '<title>'],
    ['<textarea>', body('<textarea>t'), '<textarea>'],
    ['<xmp>', body('<xmp>t'), '<xmp>'],
    ['<iframe>', body('<iframe>t'), '<iframe>'],
    ['<noembed>', body('<noembed>t'), '<noembed>'],
    ['<noframes>', body('<noframes>t'), '<noframes>'],
    ['<noscript>', body('<noscript>t'), '<noscript>'],
    ['<plaintext> (never ends)', body('<plaintext>t'), '<plaintext>'],
    ['<template>', body('<template><p>t'), '<template>'],
    ['nested <template>s', body('<template><template></template><p>t'), '<template><template>'],
    ['CDATA in SVG', body('<svg><![CDATA[ x'), '<svg>'],
    ['an attribute value', '<p>Hello</p><div class="x', '<div class="x'],
    ['a start tag', '<p>Hello</p><div', '<div'],
    ['an end tag', '<p>Hello</p></div ', '</div '],
    ['"</"', '<p>Hello</p></', '</'],
    ['"<!"', '<p>Hello</p><!', '<!'],
    ['"<"', '<p>Hello</p>a <', '<'],
    ['a raw-text element name being read ("<scr")', '<p>Hello</p><scr', '<scr'],
  ];
  for (const [what, html, from] of cases) {
    it(`${what}: the signature goes in front of it`, () => {
      expect(afterEnd(html)).to.equal(html.slice(html.lastIndexOf(from)));
    });
  }

  it('an attribute value left open swallowing </body></html> (real message): in front of the tag', () => {
    const html = '<html>\n<head>\n<body>\nFrom one solid piece of aluminum.<br><a href="http://insideapple.app</body>\n</html>\n';
    expect(afterEnd(html)).to.equal('<a href="http://insideapple.app</body>\n</html>\n');
  });

  it('a closed comment, a complete document, "a < b" at the end: unchanged', () => {
    expect(afterEnd(body('<!-- note -->'))).to.equal('</body></html>');
    expect(afterEnd('<p>Hello</p><!-- x -->')).to.equal('');
    expect(afterEnd('<p>Hello</p>a < b')).to.equal('');
  });
});

describe('mime/placement: HTML visibility — hidden elements left open at the end', () => {
  const hidden: Array<[string, string]> = [
    ['display:none', '<div style="display:none">'],
    ['DISPLAY : NONE !important', '<DIV STYLE="DISPLAY : NONE !important">'],
    ['display:none written with a CSS comment', '<div style="display:/**/none">'],
    ['display:none written with a CSS escape', '<div style="d\\isplay:none">'],
    ['display:none written with a character reference', '<div style="display&#58;none">'],
    ['visibility:hidden', '<span style="visibility:hidden">'],
    ['opacity:0', '<div style="opacity:0">'],
    ['opacity:.0', '<div style="opacity:.0">'],
    ["Outlook's mso-hide:all", '<div style="mso-hide:all">'],
    ['max-height:0 with overflow:hidden', '<div style="max-height:0;overflow:hidden">'],
    ['the hidden attribute', '<div hidden>'],
    ['hidden="until-found"', '<div hidden="until-found">'],
    ['a closed <details>', '<details><summary>More</summary>'],
    ['a closed <dialog>', '<dialog>'],
    ['<select>', '<select><option>'],
    ['<object>', '<object data="x.swf">'],
    ['<video>', '<video src="x.mp4">'],
    ['<canvas>', '<canvas>'],
  ];
  for (const [what, tag] of hidden) {
    it(`${what}: in front of the outermost hidden element`, () => {
      const html = body(`<div>Text ${tag}preheader`);
      expect(afterEnd(html)).to.equal(`${tag}preheader</body></html>`);
    });
  }

  it('nested hidden elements: in front of the outermost one', () => {
    expect(afterEnd(body('<div hidden>a<span style="display:none">b'))).to.equal('<div hidden>a<span style="display:none">b</body></html>');
  });

  it('a hidden table row or cell: in front of its table', () => {
    expect(afterEnd(body('<table><tr style="display:none"><td>x'))).to.equal('<table><tr style="display:none"><td>x</body></html>');
  });

  it('shown elements left open stay around the signature', () => {
    for (const tag of ['<div style="display:none;display:block">', '<details open><summary>s</summary>', '<dialog open>', '<div style="opacity:0.5">', '<div style="max-height:0">', '<div style="font-size:0">']) {
      expect(afterEnd(body(`${tag}x`)), tag).to.equal('</body></html>');
    }
    expect(afterEnd(body('<table><tr><td>x'))).to.equal('</body></html>');
  });

  it('the whole document hidden by the sender cannot be helped: still before </body>', () => {
    expect(afterEnd('<html><body style="display:none"><p>Hello</p></body></html>')).to.equal('</body></html>');
  });
});

describe('mime/placement: HTML visibility — open elements as a browser sees them', () => {
  it('"<div …/>" opens a div (only SVG/MathML elements close themselves)', () => {
    expect(afterEnd(body('<div style="display:none"/>pre'))).to.equal('<div style="display:none"/>pre</body></html>');
  });

  it('</body> closes nothing: a hidden element open before it still hides what follows', () => {
    const html = '<html><body><div style="display:none">x</body>tail</body></html>';
    expect(afterEnd(html)).to.equal(html.slice(html.indexOf('<div')));
  });

  it('an end tag does not close across a block or a table cell', () => {
    expect(afterEnd(body('<span style="display:none"><div>x</span>'))).to.equal('<span style="display:none"><div>x</span></body></html>');
    expect(afterEnd(body('<div style="display:none"><table><tr><td>x</div>'))).to.equal('<div style="display:none"><table><tr><td>x</div></body></html>');
    expect(afterEnd(body('<p hidden><button>x</p>'))).to.equal('<p hidden><button>x</p></body></html>');
    expect(afterEnd(body('<ul><li hidden>x<ul><li>y</li></ul></li>'))).to.equal('</body></html>');
  });

  it('</form> leaves what was opened in the form open', () => {
    expect(afterEnd(body('<form><div hidden></form>'))).to.equal('<div hidden></form></body></html>');
  });

  it('a hidden formatting element closed by a block is reopened by the browser: in front of it', () => {
    expect(afterEnd(body('<p><font style="display:none">x</p>'))).to.equal('<font style="display:none">x</p></body></html>');
    expect(afterEnd(body('<p><b hidden>x</p><div>more</div>'))).to.equal('<b hidden>x</p><div>more</div></body></html>');
    // its own end tag, or the end of a table cell, ends that
    expect(afterEnd(body('<p><b hidden>x</p></b>'))).to.equal('</body></html>');
    expect(afterEnd(body('<table><tr><td><p><font hidden>x</p></td></tr></table>'))).to.equal('</body></html>');
  });

  it('a formatting end tag with a block inside: the block stays open, outside the formatting element', () => {
    expect(afterEnd(body('<b><div style="display:none">x</b>'))).to.equal('<div style="display:none">x</b></body></html>');
    expect(afterEnd(body('<b style="display:none"><div>x</b>y'))).to.equal('</body></html>');
  });

  it('in a <select> only options count; <input> or <textarea> closes it, and so do table tags in a table', () => {
    expect(afterEnd(body('<select><option>a<div style="display:none">x</select>y'))).to.equal('</body></html>');
    expect(afterEnd(body('<select><input><div hidden>x</select>'))).to.equal('<div hidden>x</select></body></html>');
    expect(afterEnd(body('<table><select><td></td><div hidden>'))).to.equal('<div hidden></body></html>');
    expect(afterEnd(body('<table><tr><td><select></td><b hidden>x'))).to.equal('<b hidden>x</body></html>');
    // <svg> and <style> are dropped in a <select>: what follows is markup to a browser, not SVG or CSS
    expect(afterEnd(body('<select><svg></select><script>x'))).to.equal('<script>x</body></html>');
    // </option> only closes an option the select holds
    expect(afterEnd(body('<option><select></option>x'))).to.equal('<select></option>x</body></html>');
    expect(afterEnd(body('<select><style><!--</style></select>--><p>x'))).to.equal('<select><style><!--</style></select>--><p>x</body></html>');
  });

  it('cells and rows close what a table put in front of itself; a <form> in a table closes nothing', () => {
    expect(afterEnd(body('<table><p><colgroup><font color=red><datalist><section>'))).to.equal('<datalist><section></body></html>');
    expect(afterEnd(body('<table><p hidden><form>x'))).to.equal('<p hidden><form>x</body></html>');
  });

  it('a <head> inside the body is ignored, and so is its </head>', () => {
    expect(afterEnd(body('<head><div hidden/><li>x</head>y'))).to.equal('<div hidden/><li>x</head>y</body></html>');
  });

  it('a second <form> is ignored: it closes no <p>', () => {
    expect(afterEnd(body('<form><p hidden><form>x'))).to.equal('<p hidden><form>x</body></html>');
  });

  it('formatting opened in a <template> can be reopened after it: in front of the template', () => {
    expect(afterEnd(body('<template><u style="visibility:hidden"><applet></template><u>x'))).to.equal('<template><u style="visibility:hidden"><applet></template><u>x</body></html>');
    expect(afterEnd(body('<template><u>x</u></template><p>y'))).to.equal('</body></html>');
  });

  it('table cells outside a table are ignored, so </td> closes nothing', () => {
    expect(afterEnd(body('<td><div hidden>x</td>'))).to.equal('<div hidden>x</td></body></html>');
  });

  it('<table> closes a <p> only with <!DOCTYPE html> (quirks mode keeps it open)', () => {
    expect(afterEnd('<body><p hidden><table><tr><td>x</td></tr></table></body>')).to.equal('<p hidden><table><tr><td>x</td></tr></table></body>');
    expect(afterEnd('<!DOCTYPE html><body><p hidden><table><tr><td>x</td></tr></table></body>')).to.equal('</body>');
  });

  it('SVG/MathML left open: in front of it; an HTML block ends it', () => {
    expect(afterEnd(body('<svg><text>t</text>'))).to.equal('<svg><text>t</text></body></html>');
    expect(afterEnd(body('<math><mi>x</mi>'))).to.equal('<math><mi>x</mi></body></html>');
    expect(afterEnd(body('<svg><rect/><p>shown'))).to.equal('</body></html>');
    expect(afterEnd(body('<svg><foreignObject><div>x'))).to.equal('<svg><foreignObject><div>x</body></html>');
    // in SVG, <style> is no raw text: the </body> in it is a tag, inside the SVG
    expect(afterEnd('<html><body><p>Hi</p><svg><style></body></style></svg></html>')).to.equal('<svg><style></body></style></svg></html>');
    // HTML inside a MathML annotation stays in the MathML
    expect(afterEnd(body('<math><annotation-xml encoding="text/html"><div>x'))).to.equal('<math><annotation-xml encoding="text/html"><div>x</body></html>');
  });

  it('Outlook desktop hides what follows <!--[if !mso]><!--> until <!--<![endif]-->', () => {
    expect(afterEnd(body('<!--[if !mso]><!--><p>for other readers'))).to.equal('<!--[if !mso]><!--><p>for other readers</body></html>');
    expect(afterEnd(body('<![if !supportLists]><span>1.</span>'))).to.equal('<![if !supportLists]><span>1.</span></body></html>');
    expect(afterEnd(body('<!--[if !mso]><!--><p>x</p><!--<![endif]-->'))).to.equal('</body></html>');
    expect(afterEnd(body('<!--[if gte mso 9]><!--><p>x</p>'))).to.equal('</body></html>');
  });
});

describe('mime/placement: HTML visibility — where the tokenizer and a browser part', () => {
  it('CDATA outside SVG/MathML is a comment up to the first ">": in front of it', () => {
    expect(afterEnd(body('<![CDATA[ a > b <div style="display:none"> ]]>'))).to.equal('<![CDATA[ a > b <div style="display:none"> ]]></body></html>');
    expect(afterEnd(body('<![CDATA[ x ]]>'))).to.equal('</body></html>');
  });

  it('"<script><!--<script></script>": the script goes on, the signature goes in front of it', () => {
    expect(afterEnd(body('<script><!--<script></script>'))).to.equal('<script><!--<script></script></body></html>');
    expect(afterEnd(body('<script><!--<script></script>--></script>'))).to.equal('<script><!--<script></script>--></script></body></html>');
    expect(afterEnd(body('<script><!-- x --></script>'))).to.equal('</body></html>');
  });

  it('a <noscript> is hidden until a script-running browser would end it too', () => {
    expect(afterEnd(body('<noscript><!--</noscript><div hidden>-->'))).to.equal('<noscript><!--</noscript><div hidden>--></body></html>');
    expect(afterEnd(body('<noscript><p title="</noscript>">x</p>'))).to.equal('<noscript><p title="</noscript>">x</p></body></html>');
    expect(afterEnd(body('<noscript>x</noscript>'))).to.equal('</body></html>');
    expect(afterEnd('<html><body><p>Hi</p><noscript></body></noscript></html>')).to.equal('<noscript></body></noscript></html>');
  });
});

describe('mime/placement: HTML visibility — which </body>', () => {
  it('"</body>" in a comment, a script, an attribute or a textarea is not the end', () => {
    for (const hide of ['<!-- </body> -->', '<script>document.write("</body>")</script>', '<p title="</body>">Hi</p>', '<textarea></body></textarea>']) {
      const html = `<html><body><p>Hi</p>${hide}<p>more</p></body></html>`;
      expect(afterEnd(html), hide).to.equal('</body></html>');
    }
  });

  it('several </body>: the last; content after </html>: left after the signature', () => {
    expect(afterEnd('<html><body><p>Hi</p></body><p>more</p></body></html>')).to.equal('</body></html>');
    expect(afterEnd('<html><body><p>Hi</p></body></html><div style="display:none">tracking')).to.equal('</body></html><div style="display:none">tracking');
  });

  it('top banners: a late <body> inside a hidden element is not the top', () => {
    const html = '<div style="display:none">preheader<body><p>Hello</p></body>';
    const r = place(html);
    expect(r.bodyStart).to.equal(0);
    expect(html.slice(r.at)).to.equal(html);
  });
});

describe('mime/placement: HTML visibility — placeholder', () => {
  const notUsed: Array<[string, string]> = [
    ['an attribute value', '<p title="{{signature}}">Hi</p>'],
    ['a comment', '<p>Hi</p><!-- {{signature}} -->'],
    ['<style>', '<style>{{signature}}</style><p>Hi</p>'],
    ['<textarea>', '<textarea>{{signature}}</textarea><p>Hi</p>'],
    ['<template>', '<p>Hi</p><template>{{signature}}</template>'],
    ['a hidden element', '<p>Hi</p><div style="display:none">{{signature}}</div>'],
    ['a closed <details>', '<p>Hi</p><details><summary>s</summary>{{signature}}</details>'],
    ['<noscript>', '<p>Hi</p><noscript>{{signature}}</noscript>'],
    ['<select>', '<p>Hi</p><select><option>{{signature}}</option></select>'],
    ['<rp>', '<p>Hi</p><ruby>x<rp>{{signature}}</rp></ruby>'],
    ['SVG', '<p>Hi</p><svg><text>{{signature}}</text></svg>'],
    ['an Outlook-hidden region', '<!--[if !mso]><!--><p>{{signature}}</p><!--<![endif]-->'],
  ];
  for (const [what, inner] of notUsed) {
    it(`in ${what}: not replaced, the signature goes at the end`, () => {
      const html = `<html><body>${inner}</body></html>`;
      const r = place(html);
      expect(r.placement).to.equal('end');
      expect(html.slice(r.at)).to.equal('</body></html>');
    });
  }

  it('after a hidden formatting element the browser reopens, or in a "<div hidden/>" (it opens a div): not replaced', () => {
    for (const hiding of ['<p><b hidden>x</p>', '<div hidden/>']) {
      const html = `<html><body>${hiding}<p>{{signature}}</p></body></html>`;
      const r = place(html);
      expect(r.placement, hiding).to.equal('end');
      expect(r.at, hiding).to.equal(html.indexOf(hiding.startsWith('<p>') ? '<b hidden' : '<div hidden'));
    }
  });

  it('the first shown occurrence counts when an earlier one is hidden', () => {
    const html = '<html><body><div hidden>{{signature}}</div><p>{{signature}}</p></body></html>';
    const r = place(html);
    expect(r.placement).to.equal('placeholder');
    expect(r.at).to.equal(html.lastIndexOf(PH));
  });

  it('after a hidden element closed properly: replaced', () => {
    const html = '<html><body><div hidden>x</div><p>{{signature}}</p></body></html>';
    expect(place(html).placement).to.equal('placeholder');
  });
});

describe('mime/placement: HTML visibility — above the quote', () => {
  it('a separator inside a hidden element is no quote', () => {
    const html = '<html><body><p>Hi</p><div style="display:none"><p>x</p><div id="divRplyFwdMsg"><b>From:</b> A</div></div><p>more</p></body></html>';
    const r = place(html);
    expect(r.placement).to.equal('end');
    expect(r.quoteStart).to.equal(undefined);
  });

  it('never in front of a tag that closes a hidden element (the hidden one is still open there)', () => {
    // <div> closes the <p> and its hidden <span>: the reply header block is shown, its start tag's offset is not
    const html = '<p><span style="display:none"><div>From: A<br>Sent: B<br>To: C<br>old</div>';
    const r = place(html);
    expect(r.placement).to.equal('above-quote');
    expect(html.slice(r.at)).to.match(/^From: A/);
    const math = '<math><div><blockquote type="cite">old</blockquote></div>';
    expect(math.slice(place(math).at)).to.match(/^<blockquote/);
  });

  it('after a hidden formatting element that the browser reopens, nothing is searched', () => {
    const html = '<html><body><p><b hidden>x</p><p>Thanks</p><div class="gmail_quote">On Mon, Bob wrote:<blockquote>old</blockquote></div></body></html>';
    const r = place(html);
    expect(r.placement).to.equal('end');
    expect(html.slice(r.at)).to.match(/^<b hidden>/);
  });
});

describe('mime/placement: HTML visibility — the signature is shown text of the result (property)', () => {
  const pieces = fc.constantFrom(
    'text', ' ', '<div>', '</div>', '<p>', '</p>', '<span>', '</span>', '<b>', '</b>', '<font face=x>', '</font>', '<a href=x>', '</a>',
    '<table>', '<tr>', '<td>', '</td>', '</tr>', '</table>', '<ul><li>', '</li>', '</ul>', '<div hidden>', '<span style="display:none">',
    '<b style="display:none">', '<p hidden>', '<tr hidden>', '<li hidden>', '<details>', '</details>', '<details open>', '<select>',
    '</select>', '<noscript>', '</noscript>', '<svg>', '</svg>', '<math>', '<template>', '</template>', '<style>', '</style>', '<script>',
    '</script>', '<!--', '-->', '<![CDATA[', ']]>', '<title>', '</title>', '<textarea>', '</textarea>', '</body>', '</html>', '<body>',
    '<div/>', '<div hidden/>', '<br>', '<img src=x>', '<button>', '</button>', '<object>', '</object>', '<form>', '</form>', '<caption>',
    '<!--[if !mso]><!-->', '<!--<![endif]-->', '<div class="', '{{signature}}',
  );
  it('inserted at the placement, a marker is text the scan reads as shown (outside comments, raw text, hidden elements)', () => {
    fc.assert(
      fc.property(fc.array(pieces, { maxLength: 24 }), fc.boolean(), (parts, wrap) => {
        const inner = parts.join('');
        const html = wrap ? `<html><body>${inner}</body></html>` : inner;
        const r = place(html);
        const out = insertIntoHtml(html, r, '<div>SIGNETMARK</div>');
        if (r.placement === 'end') expect(r.at === html.length || html[r.at] === '<', html).to.equal(true);
        // the scan of the result stops at a quote: only placements before any quote are checked this way
        if (r.placement !== 'above-quote') expect(scanHtml(out).text, html).to.contain('SIGNETMARK');
      }),
      { numRuns: 500 },
    );
  });
});

describe('mime/placement: what hides (hidden.ts)', () => {
  it('styleHides: the declarations that hide every descendant, last one winning unless !important', () => {
    for (const style of ['display:none', 'DISPLAY: NONE', 'color:red; display : none !important', 'visibility:hidden', 'visibility:collapse', 'opacity:0', 'opacity: 0.0', 'opacity:0%', 'mso-hide:all', 'content-visibility:hidden', 'height:0;overflow:hidden', 'max-width:0px;overflow:clip', 'display:none !important;display:block', 'display:/* x */none', 'displ\\61y:none']) {
      expect(styleHides(style), style).to.equal(true);
    }
    for (const style of [undefined, '', 'border:none', 'text-decoration:none;border:none', 'display:none;display:block', 'opacity:0.5', 'max-height:0', 'overflow:hidden', 'font-size:0', 'color:#fff;background:#fff', 'border-collapse:collapse', 'font-family:"display:none"x;display:block']) {
      expect(styleHides(style), String(style)).to.equal(false);
    }
  });

  it('msoConditional / evaluateCondition: conditions as Outlook desktop reads them', () => {
    expect(msoConditional('[if !mso]><!')).to.equal('hidden');
    expect(msoConditional('[if !mso]><!--')).to.equal('hidden');
    expect(msoConditional('[if !supportLists]')).to.equal('hidden');
    expect(msoConditional('[if (!mso)&(!IE)]><!')).to.equal('hidden');
    expect(msoConditional('[if mso]><!')).to.equal(undefined);
    expect(msoConditional('[if IE]><!')).to.equal('hidden');
    expect(msoConditional('[if mso]><p>only Outlook</p><![endif]')).to.equal(undefined);
    expect(msoConditional('<![endif]')).to.equal('end');
    expect(msoConditional('[endif]')).to.equal('end');
    expect(msoConditional(' note ')).to.equal(undefined);
    expect(evaluateCondition('gte mso 9')).to.equal(true);
    expect(evaluateCondition('lt mso 12')).to.equal(false);
    expect(evaluateCondition('!vml')).to.equal(false);
    expect(evaluateCondition('mso | IE')).to.equal(true);
    expect(evaluateCondition('mso &')).to.equal(undefined);
  });

  it('scriptEndIgnored: the "script data double escaped" state', () => {
    expect(scriptEndIgnored('<!--<script>')).to.equal(true);
    expect(scriptEndIgnored('<!--<SCRIPT type=x>')).to.equal(true);
    expect(scriptEndIgnored('<!--<script></script>')).to.equal(false);
    expect(scriptEndIgnored('<!--<script>-->')).to.equal(false);
    expect(scriptEndIgnored('<!--><script>')).to.equal(false);
    expect(scriptEndIgnored('<!--<scripts>')).to.equal(false);
    expect(scriptEndIgnored('var a = "<script>";')).to.equal(false);
  });
});
