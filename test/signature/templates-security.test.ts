// Directory values are untrusted: whatever a user puts in their profile must
// come out as text, never as markup, script, attributes or a javascript: link.
// The rendered HTML is read back with htmlparser2, the way a mail client would.
import { expect } from 'chai';
import fc from 'fast-check';
import { Parser } from 'htmlparser2';
import type { OrgConfig } from '../../appliance/src/config';
import type { DirectoryUser } from '../../appliance/src/directory';
import { compileTemplates, lintHtmlTemplate, safeUrl, type TemplateSet } from '../../appliance/src/signature/templates';
import { makeOrg, template } from '../rules/helpers';

// Values land in text, double- and single-quoted attributes, url()/tel() hrefs and a mailto: href.
const HOSTILE_TEMPLATE = `<table><tr><td>
<img src="<%= image('logo') %>" alt="<%= user.displayName %>" title='<%= user.jobTitle %>'>
<p><b><%= user.displayName %></b> <span data-dept="<%= user.department %>"><%= user.department %></span></p>
<% if (user.jobTitle) { %><p><%= user.jobTitle %></p><% } %>
<% if (user.mobilePhone) { %><p><a href="<%= tel(user.mobilePhone) %>"><%= user.mobilePhone %></a></p><% } %>
<p><a href="mailto:<%= user.mail %>" title="<%= user.displayName %>"><%= user.mail %></a></p>
<% if (url(user.extensionAttribute1)) { %><p><a href="<%= url(user.extensionAttribute1) %>">Website</a></p><% } %>
</td></tr></table>`;

const FIELDS = ['displayName', 'jobTitle', 'department', 'mobilePhone', 'extensionAttribute1'] as const;

function hostileOrg(): OrgConfig {
  const org = makeOrg({ rules: [], templates: [template('sig', HOSTILE_TEMPLATE, '<%= user.displayName %>\n<%= user.jobTitle %>\n<%= url(user.extensionAttribute1) %>')] });
  org.images = new Map([['logo', { id: 'logo', contentType: 'image/png', data: Buffer.from('logo'), mode: 'embed', file: 'images/logo.png' }]]);
  return org;
}

interface ParsedHtml {
  /** `tag[attr,attr]` for every open tag, in order. */
  shape: string[];
  attributes: Array<{ tag: string; name: string; value: string }>;
  text: string;
}

function parse(html: string): ParsedHtml {
  const out: ParsedHtml = { shape: [], attributes: [], text: '' };
  const parser = new Parser(
    {
      onopentag(name, attribs) {
        out.shape.push(`${name}[${Object.keys(attribs).join(',')}]`);
        for (const [attr, value] of Object.entries(attribs)) out.attributes.push({ tag: name, name: attr, value });
      },
      ontext(text) {
        out.text += text;
      },
    },
    { decodeEntities: true },
  );
  parser.write(html);
  parser.end();
  return out;
}

/** What a browser would treat as the scheme of a URL attribute: control characters and whitespace ignored. */
function effectiveScheme(value: string): string {
  // eslint-disable-next-line no-control-regex
  return /^([a-z][a-z0-9+.-]*):/i.exec(value.replace(/[\u0000-\u0020\u007F-\u009F]/g, ''))?.[1]?.toLowerCase() ?? '';
}

function assertHarmless(html: string): ParsedHtml {
  const parsed = parse(html);
  expect(parsed.shape.filter((s) => s.startsWith('script[')), 'script elements').to.deep.equal([]);
  expect(parsed.attributes.filter((a) => /^on/i.test(a.name)), 'event handler attributes').to.deep.equal([]);
  for (const a of parsed.attributes.filter((x) => ['href', 'src'].includes(x.name))) {
    expect(['', 'http', 'https', 'mailto', 'tel', 'cid'], `${a.tag} ${a.name}=${JSON.stringify(a.value)}`).to.include(effectiveScheme(a.value));
  }
  return parsed;
}

/** A value as templates see it: control characters but tab, CR and LF dropped. */
// eslint-disable-next-line no-control-regex
const withoutControls = (value: string) => value.replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/g, '');

function render(set: TemplateSet, org: OrgConfig, attributes: Record<string, string>, mail = 'eve@contoso.com') {
  const user: DirectoryUser = { mail, aliases: [], attributes, groups: [] };
  return set.render('sig', { user, sender: mail, org, now: new Date('2026-03-15T12:00:00Z'), kind: 'new' });
}

const ATTACKS = [
  '<script>alert(1)</script>',
  '"><img src=x onerror=alert(1)>',
  "'><img src=x onerror=alert(1)>",
  '<img src=x onerror=alert(1)//',
  '</p></td></tr></table><script>alert(document.cookie)</script>',
  '<!--',
  ']]><svg onload=alert(1)>',
  '<%= 7*7 %>',
  '<%- "<script>alert(1)</script>" %>',
  '<% process.exit(1) %>',
  '&lt;script&gt;alert(1)&lt;/script&gt;',
  'O\'Brien "The Boss" & Sons',
];

const HOSTILE_URLS = [
  'javascript:alert(1)',
  'JaVaScRiPt:alert(1)',
  '&#106;avascript:alert(1)',
  '&#x6A;&#x61;vascript:alert(1)',
  'javascript&colon;alert(1)',
  ' \t\n javascript:alert(1)',
  '\u0000javascript:alert(1)',
  '\u0001\u0002javascript:alert(1)',
  'java\tscript:alert(1)',
  'java\u0000script:alert(1)',
  '\u200Bjavascript:alert(1)',
  'vbscript:msgbox(1)',
  'data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==',
  'https://ok.example/"><script>alert(1)</script>',
  "https://ok.example/' onmouseover='alert(1)",
];

describe('templates: hostile directory values', () => {
  const org = hostileOrg();
  const set = compileTemplates(org);
  const baseline = parse(render(set, org, { displayName: 'Eve', jobTitle: 'Analyst', department: 'Ops', mobilePhone: '+1 555 0100', extensionAttribute1: 'https://ok.example' }).html).shape;

  for (const attack of ATTACKS) {
    it(`renders ${JSON.stringify(attack)} as text in every field`, () => {
      const out = render(set, org, { displayName: attack, jobTitle: attack, department: attack, mobilePhone: '+1 555 0100', extensionAttribute1: 'https://ok.example' });
      const parsed = assertHarmless(out.html);
      // Same elements and attributes as with benign values: nothing injected, nothing broken out of.
      expect(parsed.shape).to.deep.equal(baseline);
      // Every value reads back exactly, in text and in attributes (single- and double-quoted).
      expect(parsed.text.split(attack).length - 1).to.be.at.least(3);
      expect(parsed.attributes.find((a) => a.tag === 'img' && a.name === 'alt')?.value).to.equal(attack);
      expect(parsed.attributes.find((a) => a.tag === 'img' && a.name === 'title')?.value).to.equal(attack);
      expect(parsed.attributes.find((a) => a.name === 'data-dept')?.value).to.equal(attack);
      // EJS syntax in a value is never evaluated.
      expect(out.html).to.not.contain('49');
      // The text form writes the value as it is.
      expect(out.text.split('\n').slice(0, 2)).to.deep.equal([attack, attack]);
    });
  }

  for (const website of HOSTILE_URLS) {
    it(`url() does not let ${JSON.stringify(website)} become a script link`, () => {
      const out = render(set, org, { displayName: 'Eve', extensionAttribute1: website, mobilePhone: website });
      const parsed = assertHarmless(out.html);
      const links = parsed.attributes.filter((a) => a.tag === 'a' && a.name === 'href').map((a) => a.value);
      for (const href of links) expect(href).to.match(/^(?:https:\/\/ok\.example\/|mailto:eve@contoso\.com$|tel:\d*$)/);
      expect(parsed.shape.filter((s) => s.startsWith('a['))).to.have.length(links.length);
    });
  }

  it('a quote in displayName stays inside the attribute', () => {
    const name = 'Eve "Evil" O\'Hara';
    const out = render(set, org, { displayName: name });
    expect(out.html).to.contain('alt="Eve &#34;Evil&#34; O&#39;Hara"');
    const anchorTitles = parse(out.html).attributes.filter((a) => a.tag === 'a' && a.name === 'title');
    expect(anchorTitles.map((a) => a.value)).to.deep.equal([name]);
  });

  it('control characters in a value (NUL, escape, bell) never reach the message; tabs and line breaks stay', () => {
    // A NUL is not allowed in a mail body at all, whatever its transfer encoding.
    const out = render(set, org, { displayName: 'Eve\u0000 \u001B[31mSmith\u0007\u007F', jobTitle: 'Head\tof\r\nSales', department: 'Ops\u000B\u000C', mobilePhone: '+1 555 0100' });
    // eslint-disable-next-line no-control-regex
    const controls = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;
    expect(out.html).to.not.match(controls);
    expect(out.text).to.not.match(controls);
    expect(parse(out.html).attributes.find((a) => a.tag === 'img' && a.name === 'alt')?.value).to.equal('Eve [31mSmith');
    expect(out.html).to.contain('Head\tof\r\nSales');
  });

  it('a hostile primary address stays inside the mailto: link', () => {
    const out = render(set, org, { displayName: 'Eve' }, 'x"onmouseover="alert(1)@contoso.com');
    const parsed = assertHarmless(out.html);
    expect(parsed.shape).to.deep.equal(parse(render(set, org, { displayName: 'Eve' }).html).shape);
  });

  it('property: any values for any field leave the markup as the template wrote it', () => {
    const value = fc.oneof(
      fc.string({ minLength: 1, maxLength: 40 }),
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }),
      fc.array(fc.constantFrom(...ATTACKS, ...HOSTILE_URLS, '<', '>', '"', "'", '&', '=', '%>', '<%', ' ', 'on', 'javascript:', 'https://x.example/'), { minLength: 1, maxLength: 6 }).map((parts) => parts.join('')),
    );
    fc.assert(
      fc.property(fc.tuple(value, value, value, value, value), (values) => {
        const attributes = Object.fromEntries(FIELDS.map((f, i) => [f, values[i]]));
        // The benign twin keeps the same lines: values are never empty, and the website gets the same url() verdict
        // (templates see values without control characters).
        const twin = Object.fromEntries(FIELDS.map((f, i) => [f, f === 'extensionAttribute1' ? (safeUrl(withoutControls(values[i])) ? 'https://ok.example' : 'no') : 'x1']));
        const parsed = assertHarmless(render(set, org, attributes).html);
        expect(parsed.shape).to.deep.equal(parse(render(set, org, twin).html).shape);
        expect(parsed.attributes.find((a) => a.tag === 'img' && a.name === 'alt')?.value).to.equal(withoutControls(values[0]));
      }),
      { numRuns: 300 },
    );
  });
});

describe('templates: constructs escaping cannot protect are refused', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['script element', '<p>hi</p>\n<script>var n = "<%= user.displayName %>";</script>', /:2: script elements are not allowed/],
    ['event handler', '<p>\n<a href="https://x.example" onclick="track(\'<%= user.mail %>\')">x</a></p>', /:2: event handler attribute onclick is not allowed/],
    ['unquoted attribute', '<img alt=<%= user.displayName %> src="<%= image(\'logo\') %>">', /:1: attribute alt takes a value from <%= %> without quotes/],
    ['raw URL attribute', '<p>ok</p>\n\n<a href="<%= user.extensionAttribute1 %>">site</a>', /:3: attribute href starts with a value from <%= %>; wrap it in url/],
    ['raw URL attribute, single quotes', "<img src='<%= user.photo %>'>", /:1: attribute src starts with a value from/],
    ['raw output, even of an alias', '<% const u = user %>\n<p><%- u.displayName %></p>', /:2: raw output <%- is not allowed/],
    ['a safe helper followed by a raw value', '<a href="<%= url(user.website) || user.website %>">x</a>', /:1: attribute href starts with a value from/],
    ['a scheme completed by the value', '<a href="java<%= user.website %>">x</a>', /:1: attribute href starts with a value from/],
    ['an attribute after a slash', '<img/src="<%= user.photo %>">', /:1: attribute src starts with a value from/],
    ['an event handler after a slash', '<img/onerror="x(<%= user.mail %>)" src="<%= image(\'logo\') %>">', /:1: event handler attribute onerror/],
    ['a value in a style attribute', '<p style="background:url(<%= user.photo %>)">x</p>', /:1: a style attribute takes a value from/],
    // A condition inside the attribute does not fix the scheme, nor hide the value.
    ['a URL attribute behind a condition', '<a href="<% if (user.website) { %><%= user.website %><% } %>">site</a>', /:1: attribute href starts with a value from/],
    ['a URL attribute after a trimming code tag', '<a href="<%_ _%><%= user.website %>">site</a>', /:1: attribute href starts with a value from/],
    ['a scheme left behind by a condition', '<a href="<% if (user.secure) { %>https://<% } %><%= user.website %>">site</a>', /:1: attribute href starts with a value from/],
    ['a helper that may print nothing, then a raw value', '<a href="<%= url(user.website) %><%= user.other %>">x</a>', /:1: attribute href starts with a value from/],
    ['a value in a style element', '<style>\n.name { color: <%= user.extensionAttribute3 %>; }\n</style><p>x</p>', /:2: a style element takes a value from/],
    ['a style attribute behind a condition', '<p style="<% if (user.color) { %>color:<%= user.color %><% } %>">x</p>', /:1: a style attribute takes a value from/],
    // Unquoted, a space in the value starts a new attribute, whatever comes before it.
    ['an unquoted value after fixed text', '<a href=tel:<%= user.mobilePhone %>>call</a>', /:1: attribute href takes a value from <%= %> without quotes/],
    ['an unquoted value behind a condition', '<a title=<% if (user.jobTitle) { %><%= user.jobTitle %><% } %>>x</a>', /:1: attribute title takes a value from <%= %> without quotes/],
    ['a URL attribute after a quoted ">"', '<a title="Contoso > Events" href="<%= user.website %>">x</a>', /:1: attribute href starts with a value from/],
    ['a value where attributes go', '<td <%= user.extensionAttribute2 %>>x</td>', /:1: a value from <%= %> stands in a tag outside a quoted attribute value/],
    ['a value in an attribute name', '<td data-<%= user.department %>="1">x</td>', /:1: a value from <%= %> stands in a tag outside a quoted attribute value/],
    // attributes whose value becomes markup, a redirect, a fetched URL or another attribute
    ['a value in an iframe srcdoc', '<iframe srcdoc="<p><%= user.displayName %></p>"></iframe>', /:1: attribute srcdoc takes a value from <%= %>: its value is a whole HTML document/],
    ['a value in an object data URL', '<object data="<%= user.website %>"></object>', /:1: attribute data starts with a value from/],
    ['a value in a link ping', '<a href="https://contoso.com" ping="<%= user.website %>">x</a>', /:1: attribute ping takes a value from <%= %>: it holds a list of URLs/],
    ['a second URL of a ping list chosen by a value', '<a href="https://contoso.com" ping="https://contoso.com/p <%= user.displayName %>">x</a>', /:1: attribute ping takes a value from <%= %>: it holds a list of URLs/],
    ['a value in an image srcset after a fixed URL', '<img src="https://contoso.com/a.png" srcset="https://contoso.com/a.png 1x, <%= user.website %> 2x">', /:1: attribute srcset takes a value from <%= %>: it holds a list of URLs/],
    ['a quote written only when a condition holds', '<a title=<% if (user.department) { %>"<% } %><%= user.website %>">x</a>', /:1: a quote of attribute title is written inside a condition/],
    ['a tag name written by code', '<<% if (true) { %>a<% } %> href=<%= user.website %>>x</a>', /:1: a tag whose name is written by <% %> code/],
    ["EJS's output function called directly", '<p>\n<% __append(user.jobTitle) %></p>', /:2: EJS's output function \(__append, __output\) is not allowed/],
    // (with many EJS tags after it: the tag pattern once took exponential time in their number here)
    ['an attribute quote never closed', `<div style="font-family:Arial>\n<b><%= user.displayName %></b>\n${'<% if (user.mobilePhone) { %><%= user.mobilePhone %><br><% } %>\n'.repeat(40)}</div>`, /:1: an attribute value's double quote is never closed/],
    ['a value in a meta refresh', '<meta http-equiv="refresh" content="0;url=<%= user.website %>">', /:1: a meta element takes its content from <%= %>/],
    ['a value an SVG animation sets as a link', '<svg><a><set attributeName="href" to="<%= user.website %>"/><text>x</text></a></svg>', /:1: attribute to takes a value from <%= %>: SVG animation/],
    ['a photo followed by a raw value', '<img src="<%= photo() %><%= user.website %>">', /:1: attribute src starts with a value from/],
    ['values of an SVG animation', '<animate attributeName="href" values="<%= user.website %>"/>', /:1: attribute values takes a value from/],
  ];
  for (const [name, html, message] of cases) {
    it(name, () => {
      const org = hostileOrg();
      org.templates = new Map([['bad', template('bad', html)]]);
      expect(() => compileTemplates(org)).to.throw(Error, new RegExp(`^templates/bad\\.html\\.ejs${message.source}`));
    });
  }

  it('accepts the safe forms', () => {
    for (const html of [
      HOSTILE_TEMPLATE,
      '<a href="<%= url(user.extensionAttribute1) %>">x</a><a href="<%= tel(user.mobilePhone) %>">y</a><img src="<%= images.logo %>">',
      '<a href="mailto:<%= user.mail %>">m</a><a href="https://contoso.com/people/<%= encodeURIComponent(user.mail) %>">p</a>',
      '<p>Total =<%= user.department %></p>',
      '<p style="color:#333" title="onion=<%= user.jobTitle %>">onclick text</p>',
      '<a href="https://contoso.com/<%= user.mail %>">p</a><a href="/people?m=<%= user.mail %>">q</a><img src="<%= images[\'logo\'] %>">',
      // conditions around whole attributes, or around a vetted or scheme-fixed value
      '<td<% if (user.department) { %> class="dept"<% } %> title="<%= user.department %>">x</td>',
      '<a href="<% if (user.website) { %><%= url(user.website) %><% } %>">w</a><a href="<% if (user.x) { %>https://contoso.com/<%= user.x %><% } %>">x</a>',
      '<a href="mailto:<%= user.mail %>?cc=<%= user.department %>">m</a>',
      '<style>p { color: #333 }</style><p><%= user.department %></p><style type="text/css"><% if (true) { %>.x { margin: 0 }<% } %></style>',
      '<p title="a onclick=b">text with onclick=x</p><img width=220 height=56 alt="<%= user.displayName %>" src="<%= image(\'logo\') -%>">',
      // fixed values in those attributes, and data-* or content attributes outside meta
      '<iframe srcdoc="<p>hi</p>"></iframe><meta name="x" content="y"><set attributeName="fill" to="red"/>',
      '<td data-dept="<%= user.department %>" content="<%= user.jobTitle %>">x</td><object data="<%= url(user.website) %>"></object>',
      '<% if (photo()) { %><img src="<%= photo() %>" width="64" alt="<%= user.displayName %>"><% } %>',
      // a whole attribute behind a condition inside the tag; an apostrophe in text; a "<" in a quoted value
      '<a<% if (user.department) { %> title="<%= user.department %>"<% } %> href="https://contoso.com">x</a><p>Don\'t reply</p><p title="a < b">c</p>',
    ]) {
      expect(lintHtmlTemplate(html), html).to.equal(undefined);
    }
  });
});
