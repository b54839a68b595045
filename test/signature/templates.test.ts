import { expect } from 'chai';
import ejs from 'ejs';
import type { ImageAsset, OrgConfig, TemplateSource } from '../../appliance/src/config';
import { readPhoto, type DirectoryUser, type UserPhoto } from '../../appliance/src/directory';
import { compileTemplates, htmlToText, safeUrl, telHref, templatesUsePhotos, tidyText, type RenderContext, type TemplateSet } from '../../appliance/src/signature/templates';
import { addon, makeOrg, template } from '../rules/helpers';

const SIGNATURE_HTML = `<table cellpadding="0" cellspacing="0" style="font-family:Arial,sans-serif">
<tr><td><img src="<%= image('logo') %>" alt="<%= org.displayName %>" width="80"></td>
<td style="padding-left:8px">
<p style="margin:0"><b><%= user.displayName %></b></p>
<% if (user.jobTitle) { %><p style="margin:0"><%= user.jobTitle %><% if (user.department) { %> | <%= user.department %><% } %></p><% } %>
<% if (user.mobilePhone) { %><p style="margin:0">Mobile: <a href="<%= tel(user.mobilePhone) %>"><%= user.mobilePhone %></a></p><% } %>
<p style="margin:0"><a href="mailto:<%= user.mail %>"><%= user.mail %></a></p>
<% if (url(user.extensionAttribute1)) { %><p style="margin:0"><a href="<%= url(user.extensionAttribute1) %>" title="<%= user.displayName %>">Website</a> <a href="https://www.linkedin.com/company/contoso"><img src="<%= images.logo %>" alt="LinkedIn"></a></p><% } %>
</td></tr></table>`;

const LOGO: ImageAsset = { id: 'logo', contentType: 'image/png', data: Buffer.from('\x89PNG fake logo bytes'), mode: 'embed', file: 'images/logo.png' };

function signatureOrg(extra: { templates?: TemplateSource[]; images?: ImageAsset[] } = {}): OrgConfig {
  const org = makeOrg({
    rules: [],
    templates: extra.templates ?? [template('default', SIGNATURE_HTML)],
    addons: [
      addon('legal', { kind: 'disclaimer', position: 'bottom', html: '<p style="font-size:9px">This e-mail is confidential. <%= org.displayName %> &amp; partners.</p>' }),
      addon('banner', { kind: 'campaign', html: '<a href="https://contoso.com/spring"><img src="<%= image(\'banner\') %>" alt="Spring sale"></a>', text: 'Spring sale: https://contoso.com/spring' }),
    ],
  });
  const images = extra.images ?? [LOGO, { id: 'banner', contentType: 'image/gif', data: Buffer.from('GIF89a banner'), mode: 'link', url: 'https://cdn.contoso.com/banner.gif', file: 'images/banner.gif' }];
  org.images = new Map(images.map((i) => [i.id, i]));
  return org;
}

function person(attributes: Record<string, string | undefined>, mail = 'alice@contoso.com'): DirectoryUser {
  return { mail, aliases: [], attributes, groups: [] };
}

function ctx(org: OrgConfig, user?: DirectoryUser, extra: Partial<RenderContext> = {}): RenderContext {
  return { user, sender: user?.mail ?? 'someone@contoso.com', org, now: new Date('2026-03-15T12:00:00Z'), kind: 'new', ...extra };
}

const ALICE = person({ displayName: 'Alice Smith', jobTitle: 'Head of Sales', department: 'EMEA', mobilePhone: '+44 20 7946 0018', extensionAttribute1: 'www.contoso.com' });

describe('templates: rendering', () => {
  it('renders directory attributes, conditional lines and the org locals', () => {
    const set = compileTemplates(signatureOrg());
    const out = set.render('default', ctx(signatureOrg(), ALICE));
    expect(out.html).to.contain('<b>Alice Smith</b>');
    expect(out.html).to.contain('Head of Sales | EMEA');
    expect(out.html).to.contain('<a href="tel:+442079460018">+44 20 7946 0018</a>');
    expect(out.html).to.contain('<a href="mailto:alice@contoso.com">alice@contoso.com</a>');
    expect(out.html).to.contain('<a href="https://www.contoso.com" title="Alice Smith">Website</a>');
    expect(out.html).to.contain('alt="Contoso Ltd"');
    expect(out.text).to.equal(
      ['Contoso Ltd', 'Alice Smith', 'Head of Sales | EMEA', 'Mobile: +44 20 7946 0018', 'alice@contoso.com', 'Website <https://www.contoso.com> LinkedIn <https://www.linkedin.com/company/contoso>'].join('\n'),
    );
  });

  it('a line disappears when its attribute is empty or missing, in HTML and in text', () => {
    const org = signatureOrg();
    const set = compileTemplates(org);
    for (const bob of [person({ displayName: 'Bob Jones', mobilePhone: '' }, 'bob@contoso.com'), person({ displayName: 'Bob Jones' }, 'bob@contoso.com')]) {
      const out = set.render('default', ctx(org, bob));
      expect(out.html).to.not.contain('Mobile');
      expect(out.html).to.not.contain('Website');
      expect(out.html).to.not.contain(' | ');
      expect(out.html).to.not.contain('undefined');
      expect(out.text).to.equal(['Contoso Ltd', 'Bob Jones', 'bob@contoso.com'].join('\n'));
    }
  });

  it('a sender missing from the directory gets empty attributes and their address as user.mail', () => {
    const org = signatureOrg();
    const out = compileTemplates(org).render('default', ctx(org, undefined, { sender: 'Temp@Contoso.com' }));
    expect(out.html).to.contain('<a href="mailto:temp@contoso.com">temp@contoso.com</a>');
    expect(out.html).to.contain('<b></b>');
  });

  it('a custom attribute a user does not have reads as empty, in expressions too; control characters (C0 and C1) are dropped from values', () => {
    const org = signatureOrg();
    org.templates.set('pronouns', template('pronouns', '<p><%= user.displayName + " " + user.pronouns %>|<%= `${user.extensionAttribute9}${user.pronouns}` %></p>'));
    const set = compileTemplates(org);
    const plain = set.render('pronouns', ctx(org, person({ displayName: 'Bob' }, 'bob@contoso.com')));
    expect(plain.html).to.equal('<p>Bob |</p>');
    const withIt = set.render('pronouns', ctx(org, person({ displayName: 'Ann\u009b31m\u0085\u0007', pronouns: 'she/her' }, 'ann@contoso.com')));
    expect(withIt.html).to.equal('<p>Ann31m she/her|she/her</p>');
  });

  it('per-user attribute overrides from the config apply over the directory', () => {
    const org = signatureOrg();
    org.userAttributes.set('Alice@Contoso.com', { jobTitle: 'Chief Revenue Officer', mobilePhone: '' });
    const out = compileTemplates(org).render('default', ctx(org, ALICE));
    expect(out.html).to.contain('Chief Revenue Officer | EMEA');
    expect(out.html).to.not.contain('Mobile');
  });

  it('embedded images: cid: src, returned once with a stable per-content cid; linked images: the URL', () => {
    const org = signatureOrg();
    const set = compileTemplates(org);
    const out = set.render('default', ctx(org, ALICE));
    expect(out.images).to.have.length(1);
    const [logo] = out.images;
    expect(logo.cid).to.match(/^logo\.[0-9a-f]{8}@signet$/);
    expect(logo.contentType).to.equal('image/png');
    expect(logo.filename).to.equal('logo.png');
    expect(logo.data.equals(LOGO.data)).to.equal(true);
    expect(out.html.split(`src="cid:${logo.cid}"`)).to.have.length(3); // used twice, via image() and images.logo
    // Same content, same cid in another compile; other content, other cid.
    expect(compileTemplates(signatureOrg()).render('default', ctx(org, ALICE)).images[0].cid).to.equal(logo.cid);
    const changed = signatureOrg({ images: [{ ...LOGO, data: Buffer.from('another logo') }] });
    changed.addons.delete('banner');
    expect(compileTemplates(changed).render('default', ctx(changed, ALICE)).images[0].cid).to.not.equal(logo.cid);
    // Linked image: URL in the HTML, nothing to embed; the add-on's own text form is used.
    const banner = set.renderAddon('banner', ctx(org, ALICE));
    expect(banner.html).to.contain('src="https://cdn.contoso.com/banner.gif"');
    expect(banner.images).to.deep.equal([]);
    expect(banner.text).to.equal('Spring sale: https://contoso.com/spring');
  });

  it('a snippet that uses no image returns none', () => {
    const org = signatureOrg();
    const out = compileTemplates(org).renderAddon('legal', ctx(org, ALICE));
    expect(out.images).to.deep.equal([]);
    expect(out.html).to.equal('<p style="font-size:9px">This e-mail is confidential. Contoso Ltd &amp; partners.</p>');
    expect(out.text).to.equal('This e-mail is confidential. Contoso Ltd & partners.');
  });

  it('text forms are not HTML-escaped; automatic text decodes the escaped HTML', () => {
    const org = signatureOrg({
      templates: [
        template('plain', '<p><%= user.companyName %></p>', '-- \n<%= user.displayName %>\n<%= user.companyName %>\n\n\n<% if (user.mobilePhone) { %>M: <%= user.mobilePhone %><% } %>\n\n'),
        template('auto', '<p><%= user.displayName %> &lt;<%= user.mail %>&gt;</p><p><%= user.companyName %></p>'),
      ],
    });
    const set = compileTemplates(org);
    const who = person({ displayName: 'Tom "T" O\'Neil <ops>', companyName: 'AT&T' }, 'tom@contoso.com');
    const plain = set.render('plain', ctx(org, who));
    expect(plain.html).to.equal('<p>AT&amp;T</p>');
    // The "-- " delimiter keeps its space; blank lines at the end and doubled ones are dropped.
    expect(plain.text).to.equal('-- \nTom "T" O\'Neil <ops>\nAT&T');
    const auto = set.render('auto', ctx(org, who));
    expect(auto.html).to.equal('<p>Tom &#34;T&#34; O&#39;Neil &lt;ops&gt; &lt;tom@contoso.com&gt;</p><p>AT&amp;T</p>');
    expect(auto.text).to.equal('Tom "T" O\'Neil <ops> <tom@contoso.com>\nAT&T');
  });

  it('templates see kind, now, sender and org', () => {
    const org = signatureOrg({ templates: [template('t', '<%= kind %>|<%= now.getUTCFullYear() %>|<%= sender %>|<%= org.id %>|<%= org.displayName %>')] });
    const out = compileTemplates(org).render('t', ctx(org, ALICE, { kind: 'reply' }));
    expect(out.html).to.equal('reply|2026|alice@contoso.com|contoso|Contoso Ltd');
  });

  it('has(), version, and clear errors for unknown ids', () => {
    const org = signatureOrg();
    const set = compileTemplates(org);
    expect(set.version).to.equal('test-1');
    expect(set.has('default')).to.equal(true);
    expect(set.has('legal')).to.equal(false);
    expect(set.hasAddon('legal')).to.equal(true);
    expect(() => set.render('nope', ctx(org, ALICE))).to.throw('unknown template "nope" in config test-1');
    expect(() => set.renderAddon('nope', ctx(org, ALICE))).to.throw('unknown add-on "nope" in config test-1');
  });
});

describe('templates: compiled once per config version', () => {
  it('renders 1000 messages without compiling again', () => {
    const original = ejs.compile;
    let calls = 0;
    const counting: typeof ejs.compile = ((...args: Parameters<typeof ejs.compile>) => {
      calls++;
      return original(...args);
    }) as typeof ejs.compile;
    ejs.compile = counting;
    try {
      const org = signatureOrg({ templates: [template('default', SIGNATURE_HTML), template('plain', '<p>x</p>', '<%= user.displayName %>')] });
      const set = compileTemplates(org);
      // Every HTML form and every text form, once: 2 templates + 1 text form + 2 add-ons + 1 add-on text form.
      expect(calls).to.equal(6);
      const users = Array.from({ length: 50 }, (_, i) => person({ displayName: `User ${i}`, mobilePhone: i % 2 ? `+1 555 01${i}` : '' }, `u${i}@contoso.com`));
      for (let i = 0; i < 1000; i++) {
        const c = ctx(org, users[i % users.length], { kind: i % 3 ? 'new' : 'reply' });
        set.render(i % 2 ? 'default' : 'plain', c);
        set.renderAddon('legal', c);
        set.renderAddon('banner', c);
      }
      expect(calls).to.equal(6);
    } finally {
      ejs.compile = original;
    }
  });

  it('one render cannot leak into the next: user locals are frozen', () => {
    const org = signatureOrg({ templates: [template('t', '<% try { user.displayName = "hijacked" } catch (e) { %>frozen<% } %>|<%= user.displayName %>')] });
    const set = compileTemplates(org);
    expect(set.render('t', ctx(org, ALICE)).html).to.equal('frozen|Alice Smith');
    expect(set.render('t', ctx(org, ALICE)).html).to.equal('frozen|Alice Smith');
  });
});

describe('templates: renders reused per sender', () => {
  /** Compiles a template that counts its renders; the counter reaches it as a global, in the test only. */
  function counting(html: string, run: (render: (c: RenderContext) => ReturnType<TemplateSet['render']>, renders: () => number, org: OrgConfig) => void): void {
    const org = signatureOrg({ templates: [template('t', `<% counter.n++ %>${html}`)] });
    const counter = { n: 0 };
    (globalThis as { counter?: unknown }).counter = counter;
    try {
      const set = compileTemplates(org);
      counter.n = 0; // the trial render at compile time does not count
      run((c) => set.render('t', c), () => counter.n, org);
    } finally {
      delete (globalThis as { counter?: unknown }).counter;
    }
  }

  it('renders a sender\'s signature once, then reuses it for the same user, kind and sender', () => {
    counting('<%= user.displayName %>|<%= kind %>|<%= sender %>', (render, renders, org) => {
      const first = render(ctx(org, ALICE));
      const again = render(ctx(org, ALICE));
      expect(again).to.equal(first);
      expect(renders()).to.equal(1);
      expect(render(ctx(org, ALICE, { kind: 'reply' })).html).to.equal('Alice Smith|reply|alice@contoso.com');
      expect(render(ctx(org, ALICE, { sender: 'a.smith@contoso.com' })).html).to.equal('Alice Smith|new|a.smith@contoso.com');
      expect(renders()).to.equal(3);
      expect(Object.isFrozen(first) && Object.isFrozen(first.images)).to.equal(true);
    });
  });

  it('never serves a stale render: a directory refresh brings a new user object, and the new title shows', () => {
    const org = signatureOrg();
    const set = compileTemplates(org);
    expect(set.render('default', ctx(org, ALICE)).html).to.contain('Head of Sales');
    const promoted = person({ ...ALICE.attributes, jobTitle: 'Chief Revenue Officer' });
    const html = set.render('default', ctx(org, promoted)).html;
    expect(html).to.contain('Chief Revenue Officer');
    expect(html).to.not.contain('Head of Sales');
  });

  it('reuses a render when only the literal text says "now"', () => {
    counting('Register now: <%= user.displayName %>', (render, renders, org) => {
      render(ctx(org, ALICE));
      render(ctx(org, ALICE, { now: new Date('2027-01-01T00:00:00Z') }));
      expect(renders()).to.equal(1);
    });
  });

  it('renders a template that reads the time for every message', () => {
    const org = signatureOrg({ templates: [template('t', '© <%= now.getUTCFullYear() %> Contoso')] });
    const set = compileTemplates(org);
    expect(set.render('t', ctx(org, ALICE, { now: new Date('2026-12-31T23:59:59Z') })).html).to.equal('© 2026 Contoso');
    expect(set.render('t', ctx(org, ALICE, { now: new Date('2027-01-01T00:00:01Z') })).html).to.equal('© 2027 Contoso');
  });

  it('renders a template that reads the time without naming Date (Intl formats now by default) for every message', () => {
    counting('© <%= new Intl.DateTimeFormat("en", { year: "numeric", timeZone: "UTC" }).format() %> <%= user.displayName %>', (render, renders, org) => {
      render(ctx(org, ALICE));
      render(ctx(org, ALICE));
      expect(renders()).to.equal(2);
    });
  });

  it('keeps at most a bounded number of renders: the least recently used sender is rendered again', () => {
    counting('<%= user.displayName %>', (render, renders, org) => {
      const users = Array.from({ length: 600 }, (_, i) => person({ displayName: `User ${i}` }, `u${i}@contoso.com`));
      for (const u of users) render(ctx(org, u));
      expect(renders()).to.equal(600);
      render(ctx(org, users[599])); // recent: reused
      expect(renders()).to.equal(600);
      render(ctx(org, users[0])); // evicted: rendered again
      expect(renders()).to.equal(601);
    });
  });
});

describe('templates: errors name the file and line', () => {
  const compileWith = (t: TemplateSource) => () => compileTemplates(signatureOrg({ templates: [t] }));

  it('a JavaScript syntax error inside a tag', () => {
    expect(compileWith(template('bad', '<p>\n<%= user.displayName %>\n<% if (user.jobTitle { %>\n<p><% } %>'))).to.throw(
      /^templates\/bad\.html\.ejs:3: html template does not compile: .*\(line: "<% if \(user\.jobTitle \{ %>"\)/,
    );
    expect(compileWith(template('bad2', 'a\n\n\n<%= user.displayName user.mail %>\nz'))).to.throw(/^templates\/bad2\.html\.ejs:4: /);
  });

  it('an unclosed tag', () => {
    expect(compileWith(template('open', '<p>hi</p>\n<%= user.displayName\n<p>bye</p>'))).to.throw(/^templates\/open\.html\.ejs:2: html template does not compile: Could not find matching close tag/);
  });

  it('an error in the text form names it', () => {
    expect(compileWith(template('t', '<p>ok</p>', 'line1\n<% } %>'))).to.throw(/^templates\/t\.html\.ejs \(text form\):2: text template does not compile/);
  });

  it('a typo, an unknown image or include() fails when the config is compiled, not on a message', () => {
    expect(compileWith(template('typo', '<p>\n<%= usr.displayName %></p>'))).to.throw(/^templates\/typo\.html\.ejs:2: usr is not defined$/);
    expect(compileWith(template('img', '<img src="<%= image(\'logoo\') %>">'))).to.throw(/^templates\/img\.html\.ejs:1: unknown image "logoo"; images: logo, banner$/);
    expect(compileWith(template('txt', '<p>ok</p>', 'a\nb\n<%= user.manager.displayName %>'))).to.throw(/^templates\/txt\.html\.ejs \(text form\):3: Cannot read properties of undefined/);
    expect(compileWith(template('inc', '<%- include("footer.ejs") %>'))).to.throw(/include\("footer\.ejs"\) is not supported/);
  });

  it('a typo in a branch for replies or forwards fails when the config is compiled too', () => {
    expect(compileWith(template('reply', "<p>ok</p>\n<% if (kind !== 'new') { %><%= user.jobTitel.trim() %><% } %>"))).to.throw(/^templates\/reply\.html\.ejs:2: Cannot read properties of undefined/);
    expect(compileWith(template('fwd', "<p>ok</p>\n<% if (kind === 'forward') { %><%= usr.mail %><% } %>"))).to.throw(/^templates\/fwd\.html\.ejs:2: usr is not defined$/);
  });

  it('a linked image needs an http(s) URL', () => {
    const bad: ImageAsset = { id: 'x', contentType: 'image/png', data: Buffer.alloc(0), mode: 'link', url: 'javascript:alert(1)', file: 'images/x.png' };
    expect(() => compileTemplates(signatureOrg({ images: [LOGO, bad] }))).to.throw(/images\/x\.png: image "x" is linked but its url "javascript:alert\(1\)" is not an http\(s\) URL/);
  });
});

describe('templates: helpers and text conversion', () => {
  it('url() keeps http, https, mailto and tel; makes bare host names https; refuses everything else', () => {
    expect(safeUrl('https://contoso.com/a?b=c')).to.equal('https://contoso.com/a?b=c');
    expect(safeUrl('  HTTP://contoso.com ')).to.equal('HTTP://contoso.com');
    expect(safeUrl('mailto:a@contoso.com')).to.equal('mailto:a@contoso.com');
    expect(safeUrl('tel:+15550100')).to.equal('tel:+15550100');
    expect(safeUrl('www.contoso.com/jobs')).to.equal('https://www.contoso.com/jobs');
    // an @ after the host (path, query) is fine
    expect(safeUrl('https://www.contoso.com/people/@jane?ref=a@b')).to.equal('https://www.contoso.com/people/@jane?ref=a@b');
    for (const bad of [
      'javascript:alert(1)', 'JaVaScRiPt:alert(1)', ' \t javascript:alert(1)', '\u0001javascript:alert(1)', 'java\tscript:alert(1)', 'java\nscript:alert(1)',
      '&#106;avascript:alert(1)', '&#x6A;avascript:alert(1)', 'javascript&colon;alert(1)', 'data:text/html,<script>alert(1)</script>', 'vbscript:msgbox(1)',
      '//evil.example', '/relative', 'https://', 'http:///x', '\u200Bhttps://contoso.com', 'https://contoso.com/\u2028x', '', '   ', undefined, null,
      // an authority that does not parse: a space in the host, an unclosed IPv6 literal, a port out of range
      'https://exa mple.com', 'https://[::1/x', 'https://contoso.com:99999/',
      // a user name before the host: reads as one site, goes to another
      'https://www.contoso.com@evil.example/', 'http://a:b@evil.example', 'https://@evil.example', 'www.contoso.com@evil.example',
      // a backslash, which browsers read as "/" and others do not
      'https://evil.example\\@www.contoso.com', 'https://www.contoso.com\\path',
    ]) {
      expect(safeUrl(bad), JSON.stringify(bad)).to.equal('');
    }
  });

  it('tel() keeps digits and a leading +', () => {
    expect(telHref('+44 (20) 7946-0018')).to.equal('tel:+442079460018');
    expect(telHref('020 7946 0018')).to.equal('tel:02079460018');
    expect(telHref('javascript:alert(1)')).to.equal('tel:1');
    expect(telHref('n/a')).to.equal('');
    expect(telHref(undefined)).to.equal('');
  });

  it('tel() dials the first of several numbers and keeps an extension apart', () => {
    // Graph's businessPhones come joined with ", ".
    expect(telHref('+44 20 7946 0100, +44 20 7946 0101')).to.equal('tel:+442079460100');
    expect(telHref('+1 555 0100 x23')).to.equal('tel:+15550100;ext=23');
    expect(telHref('+1 (555) 0100 ext. 23')).to.equal('tel:+15550100;ext=23');
    expect(telHref('0170 / 1234567')).to.equal('tel:01701234567');
    expect(telHref('+1 555 0100 / +1 555 0101')).to.equal('tel:+15550100');
    expect(telHref('+44 7700 900001 or +44 7700 900002')).to.equal('tel:+447700900001');
    expect(telHref('+1 555 0100 ext 23 (mobile)')).to.equal('tel:+15550100;ext=23');
    expect(telHref('+1-555-0100;ext=23')).to.equal('tel:+15550100;ext=23');
    expect(telHref('+1 555 0100x23')).to.equal('tel:+15550100;ext=23');
    expect(telHref('+1 555 0100 (fax)')).to.equal('tel:+15550100');
    // a label in front is not part of the number, and its + stays
    expect(telHref('Tel +44 20 7946 0000')).to.equal('tel:+442079460000');
    expect(telHref('Mobile: 0171 234567')).to.equal('tel:0171234567');
    // The text form does not repeat a number the link text already shows.
    expect(htmlToText('<a href="tel:+15550100;ext=23">+1 555 0100 x23</a>')).to.equal('+1 555 0100 x23');
    expect(htmlToText('<a href="tel:+442079460100">+44 20 7946 0100, +44 20 7946 0101</a>')).to.equal('+44 20 7946 0100, +44 20 7946 0101');
  });

  it('tel() leaves out the (0) trunk prefix written after a country code, and the text form still does not repeat the number', () => {
    // "+44 (0)20 …" is dialled +44 20 …: the 0 in brackets is only for calls from inside the country.
    expect(telHref('+44 (0)20 7946 0018')).to.equal('tel:+442079460018');
    expect(telHref('+49 (0) 89 1234-56')).to.equal('tel:+4989123456');
    expect(telHref('+41 (0)44 668 18 00 ext. 7')).to.equal('tel:+41446681800;ext=7');
    expect(telHref('(0)20 7946 0018')).to.equal('tel:02079460018'); // a national number dials its 0
    expect(htmlToText('<a href="tel:+442079460018">+44 (0)20 7946 0018</a>')).to.equal('+44 (0)20 7946 0018');
  });

  it('url() refuses every invisible formatting character, bidi isolates included', () => {
    for (const bad of ['https://contoso.com/\u2066x\u2069', '\u2067https://contoso.com', 'https://contoso.com/\u061Cx', 'www.contoso.com/\u180Ex', 'https://contoso.com/\u{E0041}', 'https://contoso.com/\u0085']) {
      expect(safeUrl(bad), JSON.stringify(bad)).to.equal('');
    }
  });

  it('html-to-text: links only where the text does not say it, images by alt text, tables in reading order', () => {
    expect(htmlToText('<a href="mailto:a@contoso.com">a@contoso.com</a>')).to.equal('a@contoso.com');
    expect(htmlToText('<a href="mailto:a@contoso.com">Write to us</a>')).to.equal('Write to us <a@contoso.com>');
    expect(htmlToText('<a href="tel:+15550100">+1 555 0100</a>')).to.equal('+1 555 0100');
    expect(htmlToText('<a href="https://www.contoso.com/">www.contoso.com</a>')).to.equal('www.contoso.com');
    expect(htmlToText('<a href="https://contoso.com/jobs">Careers</a>')).to.equal('Careers <https://contoso.com/jobs>');
    expect(htmlToText('<a href="javascript:alert(1)">Click</a>')).to.equal('Click');
    expect(htmlToText('<img src="cid:x@signet"><img src="https://t.example/p.gif" alt="Contoso">')).to.equal('Contoso');
    expect(htmlToText('<style>p{color:red}</style><table><tr><td>Left</td><td><p>One</p><p>Two</p></td></tr></table>')).to.equal('Left\nOne\nTwo');
  });

  it('tidyText trims trailing spaces and blank lines, keeps one blank line between blocks', () => {
    expect(tidyText('\n\na  \r\n\r\n\r\n\r\nb\t\n\n')).to.equal('a\n\nb');
    expect(tidyText('--  \nName')).to.equal('-- \nName');
  });
});

describe('templates: text rendered from HTML', () => {
  it('turns no-break spaces into plain spaces', () => {
    expect(htmlToText('<p>T&nbsp;+1&nbsp;206&nbsp;555&nbsp;0142</p>')).to.equal('T +1 206 555 0142');
  });
});

describe('templates: the sender\'s photo, photo()', () => {
  const PHOTO_HTML = '<% if (photo()) { %><img src="<%= photo() %>" width="64" alt=""><% } %><p><%= user.displayName %></p><img src="<%= image(\'logo\') %>" alt="Contoso">';
  const photoOf = (bytes: Buffer): UserPhoto => {
    const photo = readPhoto(bytes);
    if ('refused' in photo) throw new Error(photo.refused);
    return photo;
  };
  const JPEG = photoOf(Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from('alice photo bytes')]));
  const PNG = photoOf(Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'), Buffer.from('bob photo bytes')]));
  const withPhoto = (user: DirectoryUser, photo: UserPhoto): DirectoryUser => ({ ...user, photo });
  const org = signatureOrg({ templates: [template('default', PHOTO_HTML)] });

  it('embeds the sender\'s photo by a content Content-ID, and attaches it with the org\'s images', () => {
    const out = compileTemplates(org).render('default', ctx(org, withPhoto(ALICE, JPEG)));
    const photo = out.images.find((i) => i.cid.startsWith('photo.'));
    expect(photo, 'the photo is attached').to.not.equal(undefined);
    expect(photo!.cid).to.match(/^photo\.[0-9a-f]{16}@signet$/);
    expect(photo!.data.equals(JPEG.data)).to.equal(true);
    expect(photo).to.include({ contentType: 'image/jpeg', filename: 'photo.jpg' });
    expect(out.html).to.contain(`<img src="cid:${photo!.cid}" width="64" alt="">`);
    // the photo first (first use), then the logo; each once
    expect(out.images.map((i) => i.cid.split('.')[0])).to.deep.equal(['photo', 'logo']);
    // the text form shows no image
    expect(out.text).to.equal(['Alice Smith', 'Contoso'].join('\n'));
  });

  it('a sender without a photo, or missing from the directory, gets no image and no part', () => {
    for (const user of [ALICE, undefined]) {
      const out = compileTemplates(org).render('default', ctx(org, user));
      expect(out.html).to.not.contain('width="64"');
      expect(out.images.map((i) => i.cid.split('.')[0])).to.deep.equal(['logo']);
    }
  });

  it('two senders get their own photos; the same bytes the same Content-ID, a changed photo a new one', () => {
    const set = compileTemplates(org);
    const cidOf = (user: DirectoryUser) => set.render('default', ctx(org, user, { sender: user.mail })).images.find((i) => i.cid.startsWith('photo.'))!;
    const alice = cidOf(withPhoto(ALICE, JPEG));
    const bob = cidOf(withPhoto(person({ displayName: 'Bob' }, 'bob@contoso.com'), PNG));
    expect(bob.cid).to.not.equal(alice.cid);
    expect(bob).to.include({ contentType: 'image/png', filename: 'photo.png' });
    // a directory refresh brings new user and photo objects: same bytes, same Content-ID
    expect(cidOf(withPhoto({ ...ALICE }, photoOf(Buffer.from(JPEG.data)))).cid).to.equal(alice.cid);
    // Alice changes her photo: the next render (a new user object) embeds the new one
    const changed = cidOf(withPhoto({ ...ALICE }, photoOf(Buffer.concat([JPEG.data, Buffer.from('new')]))));
    expect(changed.cid).to.not.equal(alice.cid);
  });

  it('a rendered signature is reused only for the same user object, so a new photo is never served stale', () => {
    const set = compileTemplates(org);
    const first = withPhoto(ALICE, JPEG);
    const a = set.render('default', ctx(org, first));
    expect(set.render('default', ctx(org, first))).to.equal(a);
    const refreshed = withPhoto({ ...ALICE }, PNG);
    const b = set.render('default', ctx(org, refreshed));
    expect(b.images.find((i) => i.cid.startsWith('photo.'))!.contentType).to.equal('image/png');
  });

  it('tells whether a configuration calls photo(): the directory loads photos only then', () => {
    expect(templatesUsePhotos(org)).to.equal(true);
    expect(templatesUsePhotos(signatureOrg())).to.equal(false);
    expect(templatesUsePhotos(undefined)).to.equal(false);
    // in an add-on's text or HTML too; a property of that name, or the word in literal text, does not count
    const withAddon = signatureOrg();
    withAddon.addons.set('photo-banner', { id: 'photo-banner', kind: 'banner', position: 'top', html: '<p>x</p>', text: '<%= photo ( ) %>', file: 'addons/photo-banner.yaml' });
    expect(templatesUsePhotos(withAddon)).to.equal(true);
    const lookalikes = signatureOrg({ templates: [template('default', '<p>Our photo(s) of the year</p><% if (user.photo) { %><p><%= user.photo %></p><% } %>')] });
    expect(templatesUsePhotos(lookalikes)).to.equal(false);
  });
});
