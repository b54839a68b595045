import { expect } from 'chai';
import fc from 'fast-check';
import { htmlDocument, textToHtml, type TextToHtmlOptions } from '../../appliance/src/mime/text-to-html';

const PLAIN_LF: TextToHtmlOptions = { flowed: false, delSp: false, eol: '\n' };
const PLAIN_CRLF: TextToHtmlOptions = { flowed: false, delSp: false, eol: '\r\n' };
const FLOWED: TextToHtmlOptions = { flowed: true, delSp: false, eol: '\n' };
const FLOWED_DELSP: TextToHtmlOptions = { flowed: true, delSp: true, eol: '\n' };

function plain(text: string): string {
  return textToHtml(text, PLAIN_LF);
}

function flowed(text: string): string {
  return textToHtml(text, FLOWED);
}

function link(url: string): string {
  return `<a href="${url}">${url}</a>`;
}

const BQ = '<blockquote type="cite" style="margin: 0 0 0 0.8ex; border-left: 1px solid #ccc; padding-left: 1ex;">';
const BQ_END = '</blockquote>\n';

// The only markup the converter may produce. Hrefs are escaped, so they hold
// no raw quote, and their scheme is checked separately.
const ALLOWED_TAG = /<br>|<a href="[^"<>]*">|<\/a>|<blockquote type="cite" style="margin: 0 0 0 0\.8ex; border-left: 1px solid #ccc; padding-left: 1ex;">|<\/blockquote>/g;
const KNOWN_ENTITY = /&(?:amp|lt|gt|quot|#39|nbsp);/g;
const ENTITY_TEXT: Record<string, string> = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'", '&nbsp;': ' ' };

function decodeEntities(html: string): string {
  return html.replace(KNOWN_ENTITY, (e) => ENTITY_TEXT[e]);
}

/** Fails unless `html` holds only our tags, known entities, and links to http/https/mailto. */
function expectOnlySafeMarkup(html: string): void {
  const outsideTags = html.replace(ALLOWED_TAG, '');
  expect(outsideTags, 'markup other than <br> and <a href>').to.not.match(/[<>"']/);
  expect(outsideTags.replace(KNOWN_ENTITY, ''), 'an unknown entity or a bare &').to.not.include('&');
  for (const m of html.matchAll(/<a href="([^"]*)">([^<]*)<\/a>/g)) {
    const href = decodeEntities(m[1]);
    expect(href).to.match(/^(?:https?:\/\/|mailto:)./i);
    expect(m[2], 'link text equals its href').to.equal(m[1]);
  }
  const opens = html.match(/<a /g)?.length ?? 0;
  const closes = html.match(/<\/a>/g)?.length ?? 0;
  expect(opens).to.equal(closes);
  // blockquotes nest properly and all close
  let depth = 0;
  for (const m of html.matchAll(/<(\/?)blockquote\b/g)) {
    depth += m[1] ? -1 : 1;
    expect(depth, 'a blockquote closed that was not open').to.be.at.least(0);
  }
  expect(depth, 'every blockquote closes').to.equal(0);
}

/** Spaces that HTML would collapse or drop: two plain spaces in a row, or one at a line's start or end. */
function expectSpacesKept(html: string, eol: string): void {
  expect(html).to.not.include('  ');
  for (const line of html.split(eol)) {
    const content = line.endsWith('<br>') ? line.slice(0, -4) : line;
    expect(content.startsWith(' '), `line starts with a plain space: ${JSON.stringify(line)}`).to.equal(false);
    expect(content.endsWith(' '), `line ends with a plain space: ${JSON.stringify(line)}`).to.equal(false);
  }
}

describe('mime/text-to-html: line breaks', () => {
  it('empty input gives an empty fragment', () => {
    expect(plain('')).to.equal('');
    expect(flowed('')).to.equal('');
  });

  it('LF lines each end in <br> + eol', () => {
    expect(plain('Hello Ann,\nsee you.\n')).to.equal('Hello Ann,<br>\nsee you.<br>\n');
  });

  it('CRLF lines, CRLF eol', () => {
    expect(textToHtml('Hello Ann,\r\nsee you.\r\n', PLAIN_CRLF)).to.equal('Hello Ann,<br>\r\nsee you.<br>\r\n');
  });

  it('the output eol is the option, not the input line ending', () => {
    expect(textToHtml('a\r\nb\r\n', PLAIN_LF)).to.equal('a<br>\nb<br>\n');
    expect(textToHtml('a\nb\n', PLAIN_CRLF)).to.equal('a<br>\r\nb<br>\r\n');
  });

  it('mixed CRLF and LF are both line breaks', () => {
    expect(plain('a\r\nb\nc\r\n')).to.equal('a<br>\nb<br>\nc<br>\n');
  });

  it('a last line without a line break gets no <br> and no eol', () => {
    expect(plain('Hello\nworld')).to.equal('Hello<br>\nworld');
    expect(plain('one line')).to.equal('one line');
  });

  it('blank lines become <br> + eol', () => {
    expect(plain('\n')).to.equal('<br>\n');
    expect(plain('\n\n')).to.equal('<br>\n<br>\n');
    expect(plain('Hi,\n\nBye\n\n')).to.equal('Hi,<br>\n<br>\nBye<br>\n<br>\n');
    expect(textToHtml('Hi,\r\n\r\nBye\r\n', PLAIN_CRLF)).to.equal('Hi,<br>\r\n<br>\r\nBye<br>\r\n');
  });

  it('a lone CR is no line break and is dropped', () => {
    expect(plain('a\rb')).to.equal('ab');
    expect(plain('a\r')).to.equal('a');
    expect(plain('\ra\n')).to.equal('a<br>\n');
    expect(plain('a\r\r\nb')).to.equal('a<br>\nb');
    expect(plain('\r')).to.equal('');
  });
});

describe('mime/text-to-html: escaping and characters', () => {
  it('escapes & < > " \' as entities', () => {
    expect(plain(`Tom & Jerry <tj@example.com> said "hi" & 'bye'`)).to.equal(
      'Tom &amp; Jerry &lt;tj@example.com&gt; said &quot;hi&quot; &amp; &#39;bye&#39;',
    );
  });

  it('text that looks like entities or tags is shown literally', () => {
    expect(plain('&amp; &nbsp; &#39; <br> </div>')).to.equal('&amp;amp; &amp;nbsp; &amp;#39; &lt;br&gt; &lt;/div&gt;');
  });

  it('non-ASCII characters are left as they are', () => {
    expect(plain('Grüße — 日本語 😀 ½\u00a0€')).to.equal('Grüße — 日本語 😀 ½\u00a0€');
  });

  it('C0 control characters and DEL are dropped, tab is not', () => {
    expect(plain('a\x00b\x01c\x08d\x0be\x0cf\x1bg\x1fh\x7fi\n')).to.equal('abcdefghi<br>\n');
    expect(plain('\x00\x07')).to.equal('');
    expect(plain('\x00\n')).to.equal('<br>\n');
  });

  it('C1 controls (U+0080–U+009F) are left as they are (only C0 and DEL are dropped)', () => {
    expect(plain('a\u0085b\u009bc')).to.equal('a\u0085b\u009bc');
  });
});

describe('mime/text-to-html: white space', () => {
  it('a single space between words stays a plain space', () => {
    expect(plain('one two three')).to.equal('one two three');
  });

  it('runs of spaces alternate &nbsp; and a plain space, keeping their width', () => {
    expect(plain('a  b')).to.equal('a&nbsp; b');
    expect(plain('a   b')).to.equal('a&nbsp; &nbsp;b');
    expect(plain('a    b')).to.equal('a&nbsp; &nbsp; b');
    expect(plain('a     b')).to.equal('a&nbsp; &nbsp; &nbsp;b');
  });

  it('spaces at the start of a line are kept', () => {
    expect(plain(' x')).to.equal('&nbsp;x');
    expect(plain('  x')).to.equal('&nbsp; x');
    expect(plain('   x\n  y\n')).to.equal('&nbsp; &nbsp;x<br>\n&nbsp; y<br>\n');
  });

  it('spaces at the end of a line become &nbsp; at the very end', () => {
    expect(plain('x \n')).to.equal('x&nbsp;<br>\n');
    expect(plain('x  \n')).to.equal('x&nbsp;&nbsp;<br>\n');
    expect(plain('x   ')).to.equal('x&nbsp; &nbsp;');
    expect(plain('x    ')).to.equal('x&nbsp; &nbsp;&nbsp;');
  });

  it('a line of spaces only', () => {
    expect(plain(' \n')).to.equal('&nbsp;<br>\n');
    expect(plain('  \n')).to.equal('&nbsp;&nbsp;<br>\n');
    expect(plain('   \n')).to.equal('&nbsp; &nbsp;<br>\n');
  });

  it('a tab is four spaces', () => {
    expect(plain('a\tb')).to.equal('a&nbsp; &nbsp; b');
    expect(plain('\tx')).to.equal('&nbsp; &nbsp; x');
    expect(plain('x\t')).to.equal('x&nbsp; &nbsp;&nbsp;');
    expect(plain('a \tb')).to.equal('a&nbsp; &nbsp; &nbsp;b');
    expect(plain('Name:\tAnn\nRoom:\t4.12\n')).to.equal('Name:&nbsp; &nbsp; Ann<br>\nRoom:&nbsp; &nbsp; 4.12<br>\n');
  });

  it('no plain space is doubled or at a line edge, for runs of 1 to 9 spaces anywhere', () => {
    for (let n = 1; n < 10; n++) {
      const s = ' '.repeat(n);
      for (const text of [`${s}a${s}b${s}`, `${s}`, `a${s}https://x.example/${s}b`, `${s}https://x.example/${s}`]) {
        const html = plain(`${text}\n${text}`);
        expectSpacesKept(html, '\n');
        expect(decodeEntities(html.replace(/<[^>]*>/g, ''))).to.equal(`${text}\n${text}`);
      }
    }
  });
});

describe('mime/text-to-html: slices of a body', () => {
  it('a slice that ends in the middle of a line: its last part has no <br>', () => {
    expect(plain('Hello,\nsee yo')).to.equal('Hello,<br>\nsee yo');
  });

  it('a slice that starts in the middle of a line', () => {
    expect(plain('u soon\nBye\n')).to.equal('u soon<br>\nBye<br>\n');
  });

  it('a slice that starts or ends on a space keeps it visible', () => {
    expect(plain(' soon\n')).to.equal('&nbsp;soon<br>\n');
    expect(plain('see ')).to.equal('see&nbsp;');
  });

  it('slices split after a line break join to the conversion of the whole', () => {
    const whole = 'Hi Ann,\n\n  indented https://x.example/a.\nBye\nAnn';
    const cut = whole.indexOf('Bye');
    expect(plain(whole.slice(0, cut)) + plain(whole.slice(cut))).to.equal(plain(whole));
  });
});

describe('mime/text-to-html: links', () => {
  it('http and https URLs become links', () => {
    expect(plain('see https://x.example/a?b=c#d now')).to.equal(`see ${link('https://x.example/a?b=c#d')} now`);
    expect(plain('http://x.example')).to.equal(link('http://x.example'));
  });

  it('trailing punctuation is not part of the link', () => {
    for (const p of ['.', ',', ';', ':', '!', '?', "'"]) {
      const escaped = p === "'" ? '&#39;' : p;
      expect(plain(`at https://x.example/a${p}`)).to.equal(`at ${link('https://x.example/a')}${escaped}`);
    }
    expect(plain('Really https://x.example/a?!...')).to.equal(`Really ${link('https://x.example/a')}?!...`);
  });

  it('punctuation inside the URL stays in it', () => {
    expect(plain('https://x.example/a.html?q=1;r=2,3:4!5')).to.equal(link('https://x.example/a.html?q=1;r=2,3:4!5'));
  });

  it('a closing ) without its opener in the URL is left out, a matched one is kept', () => {
    expect(plain('(see https://x.example/a)')).to.equal(`(see ${link('https://x.example/a')})`);
    expect(plain('https://en.wikipedia.org/wiki/Foo_(bar)')).to.equal(link('https://en.wikipedia.org/wiki/Foo_(bar)'));
    expect(plain('(https://en.wikipedia.org/wiki/Foo_(bar))')).to.equal(`(${link('https://en.wikipedia.org/wiki/Foo_(bar)')})`);
    expect(plain('(see https://x.example/a).')).to.equal(`(see ${link('https://x.example/a')}).`);
  });

  it('the same for ]', () => {
    expect(plain('[https://x.example/a]')).to.equal(`[${link('https://x.example/a')}]`);
    expect(plain('https://x.example/a[1]')).to.equal(link('https://x.example/a[1]'));
  });

  it('angle-bracketed URLs (as Outlook writes them) keep the brackets as text', () => {
    expect(plain('Docs <https://x.example/a>\n')).to.equal(`Docs &lt;${link('https://x.example/a')}&gt;<br>\n`);
  });

  it('a URL ends at white space, a double quote or the end of the line', () => {
    expect(plain('"https://x.example/a" and')).to.equal(`&quot;${link('https://x.example/a')}&quot; and`);
    expect(plain('https://x.example/a\tb')).to.equal(`${link('https://x.example/a')}&nbsp; &nbsp; b`);
    expect(plain('https://x.example/a\nb')).to.equal(`${link('https://x.example/a')}<br>\nb`);
    expect(plain('https://x.example/a\u00a0b')).to.equal(`${link('https://x.example/a')}\u00a0b`);
  });

  it('mailto: URLs become links', () => {
    expect(plain('Write to mailto:ann@example.com.')).to.equal(`Write to ${link('mailto:ann@example.com')}.`);
    expect(plain('mailto:ann@example.com?subject=Hi%20there')).to.equal(link('mailto:ann@example.com?subject=Hi%20there'));
  });

  it('the scheme is matched case-insensitively and kept as written', () => {
    expect(plain('HTTPS://X.EXAMPLE/A')).to.equal(link('HTTPS://X.EXAMPLE/A'));
    expect(plain('Http://x.example')).to.equal(link('Http://x.example'));
    expect(plain('MailTo:ann@example.com')).to.equal(link('MailTo:ann@example.com'));
  });

  it('& in a URL is escaped in the href and the text', () => {
    expect(plain('https://x.example/?a=1&b=2')).to.equal('<a href="https://x.example/?a=1&amp;b=2">https://x.example/?a=1&amp;b=2</a>');
  });

  it('a scheme with nothing after it is not linked', () => {
    expect(plain('https://')).to.equal('https://');
    expect(plain('see http:// and mailto: here')).to.equal('see http:// and mailto: here');
    expect(plain('https://.')).to.equal('https://.');
    expect(plain('(https://)')).to.equal('(https://)');
    // Trimming must not eat into the scheme: "mailto:." is no link to "mailto".
    expect(plain('mailto:.')).to.equal('mailto:.');
    expect(plain('mailto:?!')).to.equal('mailto:?!');
    expect(plain('http://:.')).to.equal('http://:.');
  });

  it('nothing but explicit http/https/mailto URLs is linked', () => {
    for (const text of ['www.example.com', 'ann@example.com', 'ftp://x.example/a', 'file:///etc/passwd', 'data:text/html,hi', 'tel:+4930123', 'https:x.example', 'xhttps://x.example/a']) {
      expect(plain(text), text).to.equal(text);
    }
  });

  it('several URLs on one line, with space runs around them', () => {
    expect(plain('  https://a.example  and https://b.example/  ')).to.equal(
      `&nbsp; ${link('https://a.example')}&nbsp; and ${link('https://b.example/')}&nbsp;&nbsp;`,
    );
  });

  it('non-ASCII in a URL is kept as is', () => {
    expect(plain('https://x.example/straße/日本')).to.equal(link('https://x.example/straße/日本'));
  });
});

describe('mime/text-to-html: format=flowed', () => {
  it('soft-broken lines join, keeping their space (DelSp=no)', () => {
    expect(flowed('The meeting is \nmoved to \nFriday.\nOK?\n')).to.equal('The meeting is moved to Friday.<br>\nOK?<br>\n');
  });

  it('DelSp=yes deletes the trailing space before joining', () => {
    expect(textToHtml('Zusammen\u00adge \nschrieben \nWort\n', FLOWED_DELSP)).to.equal('Zusammen\u00adgeschriebenWort<br>\n');
    expect(textToHtml('日本語の \n文章\n', FLOWED_DELSP)).to.equal('日本語の文章<br>\n');
  });

  it('only one trailing space is the soft-break marker', () => {
    expect(flowed('a  \nb\n')).to.equal('a&nbsp; b<br>\n');
    expect(textToHtml('a  \nb\n', FLOWED_DELSP)).to.equal('a b<br>\n');
  });

  it('delSp without flowed changes nothing', () => {
    expect(textToHtml('a \nb\n', { flowed: false, delSp: true, eol: '\n' })).to.equal('a&nbsp;<br>\nb<br>\n');
  });

  it('lines without a trailing space are hard breaks', () => {
    expect(flowed('one\ntwo\n\nthree\n')).to.equal('one<br>\ntwo<br>\n<br>\nthree<br>\n');
  });

  it('CRLF flowed text', () => {
    expect(textToHtml('one \r\ntwo\r\n', { flowed: true, delSp: false, eol: '\r\n' })).to.equal('one two<br>\r\n');
  });

  it('space-stuffing is removed (one leading space)', () => {
    expect(flowed(' From here on\n')).to.equal('From here on<br>\n');
    expect(flowed(' >not a quote\n')).to.equal('&gt;not a quote<br>\n');
    expect(flowed('  two spaces\n')).to.equal('&nbsp;two spaces<br>\n');
  });

  it('quoted lines: each quote depth is a blockquote, the markers are not repeated as text', () => {
    expect(flowed('> a \n> b\n')).to.equal(`${BQ}a b<br>\n${BQ_END}`);
    expect(flowed('>a \n>b\n')).to.equal(`${BQ}a b<br>\n${BQ_END}`);
    expect(flowed('>> deep \n>>  deeper\n')).to.equal(`${BQ}${BQ}deep&nbsp; deeper<br>\n${BQ_END}${BQ_END}`);
    expect(flowed('>\n> \n')).to.equal(`${BQ}<br>\n<br>\n${BQ_END}`);
  });

  it('"> >" is depth 1: spaces between markers end the quote prefix', () => {
    expect(flowed('> > x\n')).to.equal(`${BQ}&gt; x<br>\n${BQ_END}`);
  });

  it('a change of quote depth stops a join, and opens or closes a blockquote', () => {
    expect(flowed('> a \n>> b\n')).to.equal(`${BQ}a<br>\n${BQ}b<br>\n${BQ_END}${BQ_END}`);
    expect(flowed('> a \nb\n')).to.equal(`${BQ}a<br>\n${BQ_END}b<br>\n`);
    expect(flowed('a \n> b\n')).to.equal(`a<br>\n${BQ}b<br>\n${BQ_END}`);
    expect(flowed('On Monday Bob wrote:\n>> older\n> newer\nMine\n')).to.equal(`On Monday Bob wrote:<br>\n${BQ}${BQ}older<br>\n${BQ_END}newer<br>\n${BQ_END}Mine<br>\n`);
  });

  it('the signature separator "-- " is not soft and nothing joins onto it', () => {
    expect(flowed('-- \nAnn\n')).to.equal('--&nbsp;<br>\nAnn<br>\n');
    expect(flowed('Regards \n-- \nAnn\n')).to.equal('Regards<br>\n--&nbsp;<br>\nAnn<br>\n');
    expect(flowed('> -- \n> Ann\n')).to.equal(`${BQ}--&nbsp;<br>\nAnn<br>\n${BQ_END}`);
    expect(flowed('--  \nAnn\n')).to.equal('--&nbsp; Ann<br>\n');
  });

  it('a soft-broken last line of the slice is output without its trailing space', () => {
    expect(flowed('one \ntwo ')).to.equal('one two');
    expect(flowed('one \ntwo \n')).to.equal('one two<br>\n');
    expect(textToHtml('one \ntwo ', FLOWED_DELSP)).to.equal('onetwo');
    expect(flowed('> q \n')).to.equal(`${BQ}q<br>\n${BQ_END}`);
  });

  it('in text that is not flowed, quoted lines are blockquotes too (">", "> >" and ">>" markers), and trailing spaces are kept', () => {
    expect(plain('> a \n> b\n')).to.equal(`${BQ}a&nbsp;<br>\nb<br>\n${BQ_END}`);
    expect(plain('> > a\n>>b\n>  c\n>\nd\n')).to.equal(`${BQ}${BQ}a<br>\nb<br>\n${BQ_END}&nbsp;c<br>\n<br>\n${BQ_END}d<br>\n`);
    expect(plain(' From\n')).to.equal('&nbsp;From<br>\n');
    // a slice's last line may end without a break: the blockquote still closes
    expect(plain('> a')).to.equal(`${BQ}a${BQ_END}`);
  });

  it('a slice that starts in the middle of a line takes its first characters as text, not quote markers', () => {
    for (const flowedText of [false, true]) {
      const midLine = (text: string) => textToHtml(text, { flowed: flowedText, delSp: false, eol: '\n', midLine: true });
      expect(midLine('> not a quote\n> quoted\n')).to.equal(`&gt; not a quote<br>\n${BQ}quoted<br>\n${BQ_END}`);
      expect(midLine('>>\n')).to.equal('&gt;&gt;<br>\n');
    }
  });

  it('links are found in the joined line', () => {
    expect(flowed('see https://x.example/a \nnext\n')).to.equal(`see ${link('https://x.example/a')} next<br>\n`);
    expect(textToHtml('https://x.example/very \nlong/path\n', FLOWED_DELSP)).to.equal(`${link('https://x.example/verylong/path')}<br>\n`);
  });
});

describe('mime/text-to-html: hostile input', () => {
  const hostile: [string, string][] = [
    ['<script>alert(1)</script>', '&lt;script&gt;alert(1)&lt;/script&gt;'],
    ['"><img src=x onerror=alert(1)>', '&quot;&gt;&lt;img src=x onerror=alert(1)&gt;'],
    ['javascript:alert(1)', 'javascript:alert(1)'],
    ['JaVaScRiPt:alert(document.cookie)//https', 'JaVaScRiPt:alert(document.cookie)//https'],
    ['https://x.example/"onmouseover="alert(1)', `${link('https://x.example/')}&quot;onmouseover=&quot;alert(1)`],
    ["https://x.example/'onmouseover='alert(1)'", '<a href="https://x.example/&#39;onmouseover=&#39;alert(1)">https://x.example/&#39;onmouseover=&#39;alert(1)</a>&#39;'],
    ['https://x.example/<script>', `${link('https://x.example/')}&lt;script&gt;`],
    ['https://x.example/?a=1&b=<2>', '<a href="https://x.example/?a=1&amp;b=">https://x.example/?a=1&amp;b=</a>&lt;2&gt;'],
    ['mailto:"><script>', 'mailto:&quot;&gt;&lt;script&gt;'],
    ['javascript:https://x.example/', `javascript:${link('https://x.example/')}`],
    ['<a href="javascript:alert(1)">x</a>', '&lt;a href=&quot;javascript:alert(1)&quot;&gt;x&lt;/a&gt;'],
    ['</div></body><iframe src=https://x.example>', `&lt;/div&gt;&lt;/body&gt;&lt;iframe src=${link('https://x.example')}&gt;`],
  ];

  for (const [text, expected] of hostile) {
    it(`shows ${JSON.stringify(text)} as text`, () => {
      expect(plain(text)).to.equal(expected);
      expectOnlySafeMarkup(plain(text));
      expectOnlySafeMarkup(flowed(`> ${text} \n${text}\n`));
    });
  }
});

describe('mime/text-to-html: large input (linear)', () => {
  it('2 MB of "a" without spaces', () => {
    const html = plain('a'.repeat(2 * 1024 * 1024));
    expect(html.length).to.equal(2 * 1024 * 1024);
  });

  it('2 MB URL-like run, with 1 MB of ")" after it', () => {
    const html = plain(`https://x.example/${'a'.repeat(1024 * 1024)}${')'.repeat(1024 * 1024)}`);
    expect(html.endsWith(`</a>${')'.repeat(1024 * 1024)}`)).to.equal(true);
  });

  it('1 MB of spaces and 1 MB of "https://" repeated', () => {
    expect(plain(' '.repeat(1024 * 1024)).length).to.be.greaterThan(1024 * 1024);
    expect(plain('https://'.repeat(128 * 1024))).to.have.length.greaterThan(0);
  });

  it('100k lines, plain and flowed (one 100k-line paragraph)', () => {
    const lines = 'word\n'.repeat(100_000);
    expect(plain(lines)).to.equal('word<br>\n'.repeat(100_000));
    const paragraph = 'word \n'.repeat(99_999) + 'end\n';
    expect(flowed(paragraph)).to.equal(`${'word '.repeat(99_999)}end<br>\n`);
    expect(textToHtml(paragraph, FLOWED_DELSP)).to.equal(`${'word'.repeat(99_999)}end<br>\n`);
  });
});

describe('mime/text-to-html: htmlDocument', () => {
  it('wraps the fragment in a UTF-8 document with a sans-serif div, CRLF', () => {
    expect(htmlDocument('Hi<br>\r\n', '\r\n')).to.equal(
      '<html>\r\n<head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n</head>\r\n<body>\r\n' +
        '<div style="font-family: Calibri, Arial, Helvetica, sans-serif; font-size: 11pt;">\r\n' +
        'Hi<br>\r\n</div>\r\n</body>\r\n</html>\r\n',
    );
  });

  it('adds the eol after a fragment that does not end with one, LF', () => {
    expect(htmlDocument('Hi', '\n')).to.equal(
      '<html>\n<head>\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\n</head>\n<body>\n' +
        '<div style="font-family: Calibri, Arial, Helvetica, sans-serif; font-size: 11pt;">\nHi\n</div>\n</body>\n</html>\n',
    );
  });

  it('an empty fragment', () => {
    expect(htmlDocument('', '\n')).to.equal(
      '<html>\n<head>\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\n</head>\n<body>\n' +
        '<div style="font-family: Calibri, Arial, Helvetica, sans-serif; font-size: 11pt;">\n\n</div>\n</body>\n</html>\n',
    );
  });
});

describe('mime/text-to-html: properties', () => {
  // Pieces that exercise every rule: specials, entities, spaces, tabs, line
  // breaks, controls, schemes, URL punctuation, quote markers, non-ASCII.
  const piece = fc.constantFrom(
    'a', 'b', 'word', ' ', '  ', '\t', '\n', '\r\n', '\r', '\x00', '\x1b', '\x7f', '&', '<', '>', '"', "'", '&amp;', '&nbsp;', '&#39;',
    'https://', 'http://x.example/', 'mailto:', 'HTTPS://', 'x.example', '/', '(', ')', '[', ']', '.', ',', '?', ':', '=',
    'é', '😀', '\u00a0', '-- ', 'www.x.example', 'javascript:', '<br>', '<a href="https://x">',
  );
  const body = fc.oneof(fc.string({ unit: piece, maxLength: 60 }), fc.string({ maxLength: 60 }), fc.string({ unit: 'binary', maxLength: 60 }));
  const options = fc.record({ flowed: fc.boolean(), delSp: fc.boolean(), eol: fc.constantFrom('\n', '\r\n') });

  it('text that is not flowed: tags removed and entities decoded, the output is the input without controls and quote markers, tabs expanded, line breaks removed', () => {
    fc.assert(
      fc.property(body, fc.constantFrom('\n', '\r\n'), (text, eol) => {
        const html = textToHtml(text, { flowed: false, delSp: false, eol });
        const shown = decodeEntities(html.split(`<br>${eol}`).join('').replace(/<a href="[^"]*">|<\/a>|<blockquote [^>]*>|<\/blockquote>\r?\n/g, ''));
        const expected = text
          .replace(/\r\n/g, '\n')
          .replace(/[\x00-\x08\x0B-\x1F\x7F]/g, '') // eslint-disable-line no-control-regex
          .split('\n')
          .map((line) => line.replace(/^(?:> ?)+/, '')) // each ">" with at most one space after it
          .join('')
          .replace(/\t/g, '    ');
        expect(shown).to.equal(expected);
      }),
      { numRuns: 1000 },
    );
  });

  it('any options: only <br> and http/https/mailto links as markup, specials always escaped', () => {
    fc.assert(
      fc.property(body, options, (text, opts) => {
        expectOnlySafeMarkup(textToHtml(text, opts));
      }),
      { numRuns: 1000 },
    );
  });

  it('any options: no space HTML would collapse, and one <br> per input line break', () => {
    fc.assert(
      fc.property(body, options, (text, opts) => {
        const html = textToHtml(text, opts);
        expectSpacesKept(html, opts.eol);
        if (!opts.flowed) expect(html.split('<br>').length - 1).to.equal(text.split('\n').length - 1);
      }),
      { numRuns: 1000 },
    );
  });

  it('text that is not flowed: slices split after a line break convert to the same as the whole (a quote closed at the cut and opened again aside)', () => {
    // In a whole conversion a blockquote never closes right before another opens (depth moves one way per line).
    const rejoined = (html: string) => {
      let out = html;
      for (let previous = ''; previous !== out;) [previous, out] = [out, out.replace(`${BQ_END}${BQ}`, '')];
      return out;
    };
    const quoted = fc.constantFrom('> ', '>', '>> ', '> > ', '');
    fc.assert(
      fc.property(quoted, body, quoted, body, (qa, a, qb, b) => {
        const first = `${qa}${a}\n`;
        expect(rejoined(plain(first) + plain(qb + b))).to.equal(plain(first + qb + b));
      }),
      { numRuns: 1000 },
    );
  });
});
