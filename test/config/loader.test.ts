import { expect } from 'chai';
import { ConfigError, formatIssue, loadOrgFolder, loadOrgFromFiles } from '../../appliance/src/config';
import { EXAMPLE_DIR, exampleFiles, expectIssue, issuesOf, withFile } from './helpers';

describe('organization config: loading the example', () => {
  it('loads config/examples/contoso without a single issue', async () => {
    const org = await loadOrgFolder(EXAMPLE_DIR);
    expect(org.orgId).to.equal('contoso');
    expect(org.version).to.equal('local');
    expect(org.displayName).to.equal('Contoso Ltd');
    expect(org.acceptedDomains).to.deep.equal(['contoso.com', 'contoso.co.uk']);
    expect([...org.templates.keys()].sort()).to.deep.equal(['ceo', 'default', 'reply', 'sales']);
    expect([...org.addons.keys()].sort()).to.deep.equal(['legal-disclaimer', 'winter-campaign']);
    expect(org.rules.map((r) => r.id)).to.include.members(['default', 'sales', 'ceo', 'legal-disclaimer', 'winter-campaign']);
  });

  it('fills option defaults and keeps the documented values', async () => {
    const files = await exampleFiles();
    const minimal = withFile(files, 'org.yaml', 'orgId: contoso\nacceptedDomains: [Contoso.COM, contoso.co.uk]\nimages:\n  - id: logo\n    file: contoso-logo.png\n  - id: winter-banner\n    mode: link\n    url: https://www.contoso.com/b.png\n');
    const org = loadOrgFromFiles(minimal, { version: '7', label: 'x' });
    expect(org.version).to.equal('7');
    expect(org.acceptedDomains).to.deep.equal(['contoso.com', 'contoso.co.uk']);
    expect(org.options).to.deep.equal({
      placeholder: '{{signature}}',
      dkim: 'remove',
      maxEditablePartBytes: 4 * 1024 * 1024,
      signAutoReplies: false,
      calendar: 'leave',
      separators: [],
      replaceSignOffs: false,
      signOffs: [],
      plainTextToHtml: false,
      extraHeaders: {},
    });
    const logo = org.images.get('logo')!;
    expect(logo.mode).to.equal('embed');
    expect(logo.contentType).to.equal('image/png');
    expect(logo.file).to.equal('images/contoso-logo.png');
    expect(logo.data.subarray(1, 4).toString()).to.equal('PNG');
    expect(logo.data.length).to.be.greaterThan(1000).and.lessThan(500 * 1024);
    const banner = org.images.get('winter-banner')!;
    expect(banner).to.include({ mode: 'link', url: 'https://www.contoso.com/b.png', contentType: 'image/png' });
  });

  it('builds templates, add-ons, rules and user overrides as the engine consumes them', async () => {
    const org = await loadOrgFolder(EXAMPLE_DIR);
    const def = org.templates.get('default')!;
    expect(def.file).to.equal('templates/default.html.ejs');
    expect(def.html).to.include("image('logo')");
    expect(def.text).to.include('user.displayName');
    expect(org.templates.get('sales')!.text, 'sales has no text form: rendered from HTML').to.equal(undefined);

    const disclaimer = org.addons.get('legal-disclaimer')!;
    expect(disclaimer).to.include({ kind: 'disclaimer', position: 'bottom', file: 'addons/legal-disclaimer.yaml' });
    expect(disclaimer.html, 'read from htmlFile').to.include('confidential');
    expect(disclaimer.text).to.include('registered in England and Wales');
    const campaign = org.addons.get('winter-campaign')!;
    expect(campaign).to.include({ kind: 'campaign', position: 'top', from: '2026-11-16', until: '2027-01-01' });

    const rule = org.rules.find((r) => r.id === 'winter-campaign')!;
    expect(rule.enabled).to.equal(true);
    expect(rule.match).to.deep.equal({ direction: 'external', kinds: ['new'], from: '2026-11-16', until: '2027-01-01' });
    expect(rule.except).to.deep.equal([{ groups: ['Legal'] }]);
    const defaultRule = org.rules.find((r) => r.id === 'default')!;
    expect(defaultRule.match, 'absent match matches every message').to.deep.equal({});
    expect(Object.keys(defaultRule)).to.not.include('noSignature');

    expect(org.userAttributes.get('ingrid.halvorsen@contoso.com')).to.deep.include({ pronouns: 'she/her' });
    expect(org.userAttributes.get('priya.natarajan@contoso.co.uk')!.mobilePhone).to.equal('+44 7700 900123');
  });

  it('lower-cases addresses and domains in rules and users', async () => {
    const files = withFile(
      withFile(await exampleFiles(), 'rules.yaml', 'rules:\n  - id: r\n    match:\n      senders: [Ingrid.Halvorsen@CONTOSO.com]\n      recipientDomains: [Fabrikam.COM]\n    template: default\n'),
      'users.yaml',
      'users:\n  Tom.Okafor@Contoso.com:\n    pronouns: he/him\n    mobilePhone: null\n',
    );
    const org = loadOrgFromFiles(files, { version: 'v', label: 'x' });
    expect(org.rules[0].match).to.deep.equal({ senders: ['ingrid.halvorsen@contoso.com'], recipientDomains: ['fabrikam.com'] });
    expect(org.userAttributes.get('tom.okafor@contoso.com')).to.deep.equal({ pronouns: 'he/him', mobilePhone: '' });
  });
});

describe('organization config: every problem reported with file, path and line', () => {
  let files: Map<string, Buffer>;
  before(async () => {
    files = await exampleFiles();
  });

  it('YAML syntax errors carry their line', () => {
    const issues = issuesOf(withFile(files, 'org.yaml', 'orgId: contoso\nacceptedDomains:\n  - contoso.com\n bad: [1,\n'));
    const issue = expectIssue(issues, { file: 'org.yaml', path: '', message: /^YAML: / });
    expect(issue.line).to.be.within(4, 5);
  });

  it('duplicate YAML keys are errors', () => {
    const issues = issuesOf(withFile(files, 'org.yaml', 'orgId: contoso\nacceptedDomains: [contoso.com]\norgId: other\n'));
    expectIssue(issues, { file: 'org.yaml', path: '', line: 3, message: /^YAML: Map keys must be unique \(column 1\)$/ });
  });

  it('an unknown key is an error with a "did you mean" hint, at the key\'s line', () => {
    const rules = 'rules:\n  - id: one\n    match:\n      kind: [new]\n    template: default\n';
    const issues = issuesOf(withFile(files, 'rules.yaml', rules));
    expectIssue(issues, { file: 'rules.yaml', path: 'rules[0].match.kind', line: 4, message: /unknown key "kind"; did you mean "kinds"\?/ });
  });

  it('an unknown key with no close match lists the allowed keys', () => {
    const issues = issuesOf(withFile(files, 'org.yaml', 'orgId: contoso\nacceptedDomains: [contoso.com]\ncolour: blue\n'));
    expectIssue(issues, { file: 'org.yaml', path: 'colour', line: 3, message: /unknown key "colour" \(allowed: orgId, displayName, acceptedDomains, options, images\)/ });
  });

  it('a value outside an enumeration names the choices and the closest one', () => {
    const rules = 'rules:\n  - id: one\n    match:\n      kinds:\n        - new\n        - replies\n    template: default\n';
    const issues = issuesOf(withFile(files, 'rules.yaml', rules));
    expectIssue(issues, { file: 'rules.yaml', path: 'rules[0].match.kinds[1]', line: 6, message: /"replies" is not one of: new, reply, forward; did you mean "reply"\?/ });
  });

  it('a missing required key is reported at its mapping', () => {
    const issues = issuesOf(withFile(files, 'org.yaml', 'displayName: Contoso\nacceptedDomains: [contoso.com]\n'));
    expectIssue(issues, { file: 'org.yaml', path: 'orgId', line: 1, message: /missing \(required/ });
  });

  it('a number where text is expected says to quote it', () => {
    const issues = issuesOf(withFile(files, 'users.yaml', 'users:\n  tom.okafor@contoso.com:\n    mobilePhone: 4477009001\n'));
    expectIssue(issues, { file: 'users.yaml', path: 'users["tom.okafor@contoso.com"].mobilePhone', line: 3, message: /expected text, found number 4477009001 \(put it in quotes\)/ });
  });

  it('a rule naming an unknown template', () => {
    const rules = 'rules:\n  - id: one\n    template: default\n  - id: two\n    template: defualt\n';
    const issues = issuesOf(withFile(files, 'rules.yaml', rules));
    expectIssue(issues, { file: 'rules.yaml', path: 'rules[1].template', line: 5, message: /unknown template "defualt": there is no templates\/defualt\.html\.ejs; did you mean "default"\?/ });
  });

  it('a rule naming an unknown reply template or add-on', () => {
    const rules = 'rules:\n  - id: one\n    template: default\n    replyTemplate: short\n    addons:\n      - legal-disclaimer\n      - legal-disclamer\n';
    const issues = issuesOf(withFile(files, 'rules.yaml', rules));
    expectIssue(issues, { file: 'rules.yaml', path: 'rules[0].replyTemplate', line: 4, message: /unknown template "short"/ });
    expectIssue(issues, { file: 'rules.yaml', path: 'rules[0].addons[1]', line: 7, message: /unknown add-on "legal-disclamer".*did you mean "legal-disclaimer"/ });
  });

  it('duplicate rule ids', () => {
    const rules = 'rules:\n  - id: same\n    template: default\n  - id: other\n    template: default\n  - id: same\n    template: reply\n';
    const issues = issuesOf(withFile(files, 'rules.yaml', rules));
    expectIssue(issues, { file: 'rules.yaml', path: 'rules[2].id', line: 6, message: /duplicate rule id "same" \(first used at line 2\)/ });
  });

  it('a reversed or empty date window, in a rule, an exception and an add-on', () => {
    const rules = [
      'rules:',
      '  - id: one',
      '    match:',
      '      from: 2026-12-01',
      '      until: 2026-11-01',
      '    except:',
      '      - from: 2026-11-20T10:00:00Z',
      '        until: 2026-11-20T11:00:00+01:00',
      '    template: default',
      '',
    ].join('\n');
    const issues = issuesOf(withFile(files, 'rules.yaml', rules));
    expectIssue(issues, { file: 'rules.yaml', path: 'rules[0].match.until', line: 5, message: /date window is reversed or empty: from 2026-12-01 is not before until 2026-11-01/ });
    expectIssue(issues, { file: 'rules.yaml', path: 'rules[0].except[0].until', line: 8, message: /reversed or empty/ });
    const addon = 'kind: campaign\nfrom: 2027-01-01\nuntil: 2026-11-16\nhtml: <p>hi</p>\n';
    expectIssue(issuesOf(withFile(files, 'addons/winter-campaign.yaml', addon)), { file: 'addons/winter-campaign.yaml', path: 'until', line: 3, message: /reversed/ });
  });

  it('reads a time without offset as UTC, as the nodes do, whatever the time zone of the machine that validates', () => {
    const saved = process.env.TZ;
    process.env.TZ = 'Asia/Tokyo';
    try {
      // 10:00+02:00 is 08:00Z, before 09:00Z: a valid window (in Tokyo's local time 09:00 would be 00:00Z).
      const valid = 'rules:\n  - id: one\n    match:\n      from: 2026-11-16T10:00+02:00\n      until: 2026-11-16T09:00\n    template: default\n';
      expect(issuesOf(withFile(files, 'rules.yaml', valid))).to.deep.equal([]);
      const reversed = 'rules:\n  - id: one\n    match:\n      from: 2026-11-16T09:00\n      until: 2026-11-16T10:00+02:00\n    template: default\n';
      expectIssue(issuesOf(withFile(files, 'rules.yaml', reversed)), { file: 'rules.yaml', path: 'rules[0].match.until', line: 5, message: /reversed or empty/ });
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });

  it('a stop rule that matches every message leaves the rules after it dead', () => {
    const rules = 'rules:\n  - id: everyone\n    template: default\n    stop: true\n  - id: sales\n    match: { groups: [Sales] }\n    template: sales\n  - id: legal\n    match: { direction: external }\n    addons: [legal-disclaimer]\n';
    expectIssue(issuesOf(withFile(files, 'rules.yaml', rules)), { file: 'rules.yaml', path: 'rules[0].stop', line: 4, message: /^the rule matches every message, so with stop: true the 2 rules after it are never evaluated$/ });
    // Last, disabled, or with conditions or exceptions: fine.
    for (const fine of [
      'rules:\n  - id: sales\n    match: { groups: [Sales] }\n    template: sales\n  - id: everyone\n    template: default\n    stop: true\n',
      'rules:\n  - id: everyone\n    enabled: false\n    template: default\n    stop: true\n  - id: sales\n    template: sales\n',
      'rules:\n  - id: everyone\n    match: { direction: internal }\n    template: default\n    stop: true\n  - id: sales\n    template: sales\n',
      'rules:\n  - id: everyone\n    except: [{ groups: [Sales] }]\n    template: default\n    stop: true\n  - id: sales\n    template: sales\n',
    ]) {
      expect(issuesOf(withFile(files, 'rules.yaml', fine)), fine).to.deep.equal([]);
    }
  });

  it("an add-on whose window never meets its rule's window can never be added", () => {
    // The example's winter campaign runs from 2026-11-16 until 2027-01-01.
    const rules = [
      'rules:',
      '  - id: last-year',
      '    match: { from: 2025-11-16, until: 2026-01-01 }',
      '    addons: [legal-disclaimer, winter-campaign]',
      '  - id: overlapping',
      '    match: { from: 2026-12-20 }',
      '    addons: [winter-campaign]',
      '  - id: ends-as-it-starts',
      '    match: { until: 2026-11-16 }',
      '    addons: [winter-campaign]',
      '',
    ].join('\n');
    const issues = issuesOf(withFile(files, 'rules.yaml', rules));
    expectIssue(issues, {
      file: 'rules.yaml',
      path: 'rules[0].addons[1]',
      line: 4,
      message: /add-on "winter-campaign" is shown only from 2026-11-16 until 2027-01-01, never while this rule applies \(from 2025-11-16 until 2026-01-01\): it can never be added/,
    });
    expectIssue(issues, { file: 'rules.yaml', path: 'rules[2].addons[0]', message: /never while this rule applies \(until 2026-11-16\)/ });
    expect(issues.map((i) => i.path)).to.deep.equal(['rules[0].addons[1]', 'rules[2].addons[0]']);
  });

  it('dates must be real ISO 8601 dates', () => {
    const rules = 'rules:\n  - id: one\n    match:\n      from: 2026-02-30\n      until: 01/12/2026\n    template: default\n  - id: two\n    match:\n      from: 2026-11-01T10:00\n      until: 2026-11-01T12:00+01:00\n    template: default\n';
    const issues = issuesOf(withFile(files, 'rules.yaml', rules));
    expectIssue(issues, { file: 'rules.yaml', path: 'rules[0].match.from', line: 4, message: /not a real calendar date/ });
    expectIssue(issues, { file: 'rules.yaml', path: 'rules[0].match.until', line: 5, message: /dates are YYYY-MM-DD/ });
    expect(issues.filter((i) => i.path.startsWith('rules[1]')), 'a time without offset is accepted').to.deep.equal([]);
  });

  it('domain conditions accept *.domain for subdomains, acceptedDomains do not', () => {
    const rules = 'rules:\n  - id: one\n    match:\n      senderDomains: ["*.contoso.com"]\n      recipientDomains: ["*.fabrikam.com", "fabrikam.*"]\n    template: default\n';
    const issues = issuesOf(withFile(files, 'rules.yaml', rules));
    expect(issues.map((i) => i.path)).to.deep.equal(['rules[0].match.recipientDomains[1]']);
    expectIssue(issues, { file: 'rules.yaml', path: 'rules[0].match.recipientDomains[1]', line: 5, message: /malformed domain name \(a domain, or \*\.domain for its subdomains\)/ });
    const org = 'orgId: contoso\nacceptedDomains: ["*.contoso.com"]\n';
    expectIssue(issuesOf(withFile(files, 'org.yaml', org)), { file: 'org.yaml', path: 'acceptedDomains[0]', line: 2, message: /malformed domain name/ });
  });

  it('an embedded image over 500 KB, saying the limit', () => {
    const big = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(600 * 1024)]);
    const issues = issuesOf(withFile(files, 'images/contoso-logo.png', big));
    expectIssue(issues, { file: 'org.yaml', path: 'images[0].file', line: 23, message: /embedded image is too large: images\/contoso-logo\.png is 600 KB; the limit is 500 KB/ });
  });

  it('a linked image may be large: only embedded ones travel in every message', async () => {
    const big = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(600 * 1024)]);
    const org = 'orgId: contoso\nacceptedDomains: [contoso.com, contoso.co.uk]\nimages:\n  - id: logo\n    file: contoso-logo.png\n    mode: link\n    url: https://cdn.contoso.com/logo.png\n  - id: winter-banner\n    mode: link\n    url: https://www.contoso.com/b.png\n';
    expect(issuesOf(withFile(withFile(files, 'images/contoso-logo.png', big), 'org.yaml', org))).to.deep.equal([]);
  });

  it('an image type that is not allowed (recognised by content, not name)', () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>');
    const issues = issuesOf(withFile(files, 'images/contoso-logo.png', svg));
    expectIssue(issues, { file: 'org.yaml', path: 'images[0].file', line: 23, message: /image type not allowed: images\/contoso-logo\.png is SVG; use PNG, JPEG or GIF/ });
  });

  it('an image whose name and content disagree, and a missing image file', () => {
    const gif = Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'latin1');
    expectIssue(issuesOf(withFile(files, 'images/contoso-logo.png', gif)), { file: 'org.yaml', path: 'images[0].file', message: /named like image\/png but its content is image\/gif/ });
    const copy = new Map(files);
    copy.delete('images/contoso-logo.png');
    expectIssue(issuesOf(copy), { file: 'org.yaml', path: 'images[0].file', line: 23, message: /file not found: images\/contoso-logo\.png/ });
  });

  it('image modes: embed needs a file and takes no url, link needs an https url', () => {
    const org = [
      'orgId: contoso',
      'acceptedDomains: [contoso.com, contoso.co.uk]',
      'images:',
      '  - id: logo',
      '    file: contoso-logo.png',
      '    url: https://cdn.contoso.com/logo.png',
      '  - id: winter-banner',
      '    mode: link',
      '  - id: other',
      '    mode: link',
      '    url: javascript:alert(1)',
      '  - id: logo',
      '    file: contoso-logo.png',
      '  - id: spoof',
      '    mode: link',
      '    url: https://www.contoso.com@cdn.evil.example/b.png',
      '',
    ].join('\n');
    const issues = issuesOf(withFile(files, 'org.yaml', org));
    expectIssue(issues, { file: 'org.yaml', path: 'images[4].url', line: 16, message: /no user name before the host/ });
    expectIssue(issues, { file: 'org.yaml', path: 'images[0].url', line: 6, message: /url is only used with mode: link/ });
    expectIssue(issues, { file: 'org.yaml', path: 'images[1]', line: 7, message: /mode: link needs a url/ });
    expectIssue(issues, { file: 'org.yaml', path: 'images[2].url', line: 11, message: /http:\/\/ or https:\/\/ URL/ });
    expectIssue(issues, { file: 'org.yaml', path: 'images[3].id', line: 12, message: /duplicate image id "logo" \(first declared at line 4\)/ });
  });

  it('a template naming an unknown image, at the template line', () => {
    const html = files.get('templates/default.html.ejs')!.toString() + '<p>\n<img src="<%= image(\'logo-dark\') %>">\n</p>\n';
    const line = html.split('\n').findIndex((l) => l.includes('logo-dark')) + 1;
    const issues = issuesOf(withFile(files, 'templates/default.html.ejs', html));
    expectIssue(issues, { file: 'templates/default.html.ejs', path: '', line, message: /unknown image "logo-dark"/ });
  });

  it('an add-on naming an unknown image inline reports the YAML line', () => {
    const addon = 'kind: banner\nhtml: |\n  <p>Visit us</p>\n  <img src="<%= images.banner %>">\n';
    const issues = issuesOf(withFile(files, 'addons/winter-campaign.yaml', addon));
    expectIssue(issues, { file: 'addons/winter-campaign.yaml', path: '', line: 4, message: /unknown image "banner"/ });
  });

  it('an image present in images/ but not declared gets a precise hint', () => {
    const html = '<img src="<%= image(\'contoso-logo\') %>">\n';
    const issues = issuesOf(withFile(files, 'templates/reply.html.ejs', html));
    expectIssue(issues, { file: 'templates/reply.html.ejs', path: '', line: 1, message: /images\/contoso-logo\.png exists but is not declared under images: in org\.yaml/ });
  });

  it('EJS syntax errors carry the template line', () => {
    const html = '<table>\n  <tr>\n    <td><%= user.displayName + %></td>\n  </tr>\n</table>\n';
    const issues = issuesOf(withFile(files, 'templates/reply.html.ejs', html));
    expectIssue(issues, { file: 'templates/reply.html.ejs', path: '', line: 3, message: /^EJS syntax error: Unexpected token/ });
  });

  it('an unclosed block and an unclosed tag are EJS errors with a line', () => {
    const block = '<p>\n<% if (user.mobilePhone) { %>\nM <%= user.mobilePhone %>\n</p>\n';
    expectIssue(issuesOf(withFile(files, 'templates/reply.txt.ejs', block)), { file: 'templates/reply.txt.ejs', path: '', line: 2, message: /EJS syntax error: this block is never closed \(missing <% } %>\?\)/ });
    const nested = '<% if (user.a) { %>\n<% if (user.b) { %>\nx\n<% } %>\n';
    expectIssue(issuesOf(withFile(files, 'templates/reply.txt.ejs', nested)), { file: 'templates/reply.txt.ejs', path: '', line: 1, message: /never closed/ });
    const tag = '<p>\n<%= user.displayName\n</p>\n';
    expectIssue(issuesOf(withFile(files, 'templates/reply.txt.ejs', tag)), { file: 'templates/reply.txt.ejs', path: '', line: 2, message: /"<%=" is never closed/ });
  });

  it('a directory value written raw with <%- is refused', () => {
    const html = '<p>\n<%- user.displayName %>\n<%- "<br>" %>\n</p>\n';
    const issues = issuesOf(withFile(files, 'templates/reply.html.ejs', html));
    expectIssue(issues, { file: 'templates/reply.html.ejs', path: '', line: 2, message: /untrusted: write them with <%=/ });
    expect(issues.filter((i) => i.file === 'templates/reply.html.ejs')).to.have.length(1);
  });

  it('refuses, as the nodes do, HTML where escaping cannot protect a directory value (validate and seal agree with the node)', () => {
    const html = '<p>\n<a href="<%= user.website %>">site</a>\n</p>\n';
    expectIssue(issuesOf(withFile(files, 'templates/reply.html.ejs', html)), { file: 'templates/reply.html.ejs', path: '', line: 2, message: /attribute href starts with a value from <%= %>/ });
    const addon = 'id: legal-disclaimer\nposition: bottom\nhtml: |\n  <p style="color:<%= user.department %>">x</p>\n';
    const issues = issuesOf(withFile(files, 'addons/legal-disclaimer.yaml', addon));
    expectIssue(issues, { file: 'addons/legal-disclaimer.yaml', path: 'html', line: 4, message: /style attribute takes a value/ });
    // a text form is not HTML: the same characters are plain text there
    const text = 'Site: <%= user.website %>\n';
    expect(issuesOf(withFile(files, 'templates/reply.txt.ejs', text)).filter((i) => i.file === 'templates/reply.txt.ejs')).to.deep.equal([]);
  });

  it('include() is refused: a template is one self-contained file', () => {
    const html = '<p>\n\n<%- include("header") %>\n</p>\n';
    expectIssue(issuesOf(withFile(files, 'templates/reply.html.ejs', html)), { file: 'templates/reply.html.ejs', path: '', line: 3, message: /include\(\) is not available/ });
  });

  it('numbers out of range, and an image file without a known extension', () => {
    const org = 'orgId: contoso\nacceptedDomains: [contoso.com, contoso.co.uk]\noptions:\n  maxEditablePartBytes: 999999999999\nimages:\n  - id: logo\n    file: logo.bin\n  - id: winter-banner\n    mode: link\n    url: https://www.contoso.com/b.png\n';
    const png = files.get('images/contoso-logo.png')!;
    const issues = issuesOf(withFile(withFile(files, 'org.yaml', org), 'images/logo.bin', png));
    expectIssue(issues, { file: 'org.yaml', path: 'options.maxEditablePartBytes', line: 4, message: /must be at most 268435456/ });
    expectIssue(issues, { file: 'org.yaml', path: 'images[0].file', line: 7, message: /name the file \.png, \.jpg, \.jpeg or \.gif \(its content is image\/png\)/ });
  });

  it('an invalid add-on file name and a user listed twice', () => {
    const copy = withFile(files, 'addons/Winter Campaign.yaml', 'kind: banner\nhtml: <p>x</p>\n');
    expectIssue(issuesOf(copy), { file: 'addons/Winter Campaign.yaml', path: '', message: /not a valid add-on id/ });
    const users = 'users:\n  tom.okafor@contoso.com:\n    pronouns: he/him\n  Tom.Okafor@contoso.com:\n    pronouns: they/them\n';
    expectIssue(issuesOf(withFile(files, 'users.yaml', users)), { file: 'users.yaml', path: 'users["Tom.Okafor@contoso.com"]', line: 4, message: /listed twice/ });
  });

  it('a rule that does nothing, and one that contradicts itself', () => {
    const rules = 'rules:\n  - id: empty\n    match:\n      direction: external\n  - id: both\n    template: default\n    noSignature: true\n';
    const issues = issuesOf(withFile(files, 'rules.yaml', rules));
    expectIssue(issues, { file: 'rules.yaml', path: 'rules[0]', line: 2, message: /the rule does nothing: give it a template, addons, or noSignature: true/ });
    expectIssue(issues, { file: 'rules.yaml', path: 'rules[1].noSignature', line: 7, message: /contradicts/ });
  });

  it('an empty exception would disable the rule', () => {
    const rules = 'rules:\n  - id: one\n    template: default\n    except:\n      - {}\n';
    expectIssue(issuesOf(withFile(files, 'rules.yaml', rules)), { file: 'rules.yaml', path: 'rules[0].except[0]', line: 5, message: /empty exception/ });
  });

  it('a malformed accepted domain, and a duplicate one', () => {
    const org = 'orgId: contoso\nacceptedDomains:\n  - contoso.com\n  - contoso..co.uk\n  - Contoso.com\n';
    const issues = issuesOf(withFile(files, 'org.yaml', org));
    expectIssue(issues, { file: 'org.yaml', path: 'acceptedDomains[1]', line: 4, message: /malformed domain name: "contoso\.\.co\.uk"/ });
    expectIssue(issues, { file: 'org.yaml', path: 'acceptedDomains[2]', line: 5, message: /duplicate accepted domain "contoso\.com"/ });
  });

  it('a malformed sender address, in rules and in users.yaml', () => {
    const rules = 'rules:\n  - id: one\n    match:\n      senders:\n        - ceo@@contoso.com\n    template: default\n';
    expectIssue(issuesOf(withFile(files, 'rules.yaml', rules)), { file: 'rules.yaml', path: 'rules[0].match.senders[0]', line: 5, message: /malformed email address: "ceo@@contoso\.com"/ });
    const users = 'users:\n  tom.okafor@contoso.com:\n    pronouns: he/him\n  "not an address":\n    pronouns: x\n';
    expectIssue(issuesOf(withFile(files, 'users.yaml', users)), { file: 'users.yaml', path: 'users["not an address"]', line: 4, message: /malformed email address: "not an address"/ });
  });

  it('a sender outside the accepted domains can never match', () => {
    const rules = 'rules:\n  - id: one\n    match:\n      senders: [ceo@fabrikam.com]\n      senderDomains: [sub.contoso.com, fabrikam.com]\n    template: default\n';
    const issues = issuesOf(withFile(files, 'rules.yaml', rules));
    expectIssue(issues, { file: 'rules.yaml', path: 'rules[0].match.senders[0]', line: 4, message: /not in an accepted domain/ });
    expectIssue(issues, { file: 'rules.yaml', path: 'rules[0].match.senderDomains[1]', line: 5, message: /fabrikam\.com is not an accepted domain/ });
    expect(issues.find((i) => i.path === 'rules[0].match.senderDomains[0]'), 'a subdomain is fine').to.equal(undefined);
  });

  it('an empty placeholder', () => {
    const org = 'orgId: contoso\nacceptedDomains: [contoso.com, contoso.co.uk]\noptions:\n  placeholder: "   "\n';
    expectIssue(issuesOf(withFile(files, 'org.yaml', org)), { file: 'org.yaml', path: 'options.placeholder', line: 4, message: /the placeholder must not be empty/ });
  });

  it('sign-offs to replace without replaceSignOffs, and a sign-off of two lines', () => {
    const org = 'orgId: contoso\nacceptedDomains: [contoso.com, contoso.co.uk]\noptions:\n  signOffs: [Sent with Contoso Field App]\n';
    expectIssue(issuesOf(withFile(files, 'org.yaml', org)), { file: 'org.yaml', path: 'options.signOffs', line: 4, message: /only replaced with replaceSignOffs: true/ });
    const twoLines = 'orgId: contoso\nacceptedDomains: [contoso.com, contoso.co.uk]\noptions:\n  replaceSignOffs: true\n  signOffs: ["Sent\\nfrom"]\n';
    expectIssue(issuesOf(withFile(files, 'org.yaml', twoLines)), { file: 'org.yaml', path: 'options.signOffs[0]', line: 5, message: /a sign-off is one line/ });
  });

  it('separators that would cut ordinary messages', () => {
    const withSeparators = (list: string) => `orgId: contoso\nacceptedDomains: [contoso.com, contoso.co.uk]\noptions:\n  separators: ${list}\n`;
    expectIssue(issuesOf(withFile(files, 'org.yaml', withSeparators('["*"]'))), { file: 'org.yaml', path: 'options.separators[0]', line: 4, message: /at least 6 characters besides blanks and \*/ });
    expectIssue(issuesOf(withFile(files, 'org.yaml', withSeparators('["-- * --", "Dne * napsal:"]'))), { file: 'org.yaml', path: 'options.separators[0]', line: 4, message: /at least 6 characters/ });
    expectIssue(issuesOf(withFile(files, 'org.yaml', withSeparators('["On * at * , * wrote * :"]'))), { file: 'org.yaml', path: 'options.separators[0]', line: 4, message: /at most three \*/ });
    // (this org.yaml leaves out the example's images, which its templates use: only the separators matter here)
    expect(issuesOf(withFile(files, 'org.yaml', withSeparators('["Dne * napsal(a):"]'))).filter((i) => i.path.startsWith('options'))).to.deep.equal([]);
  });

  it('a misspelt attribute, which would be empty in every signature', () => {
    const html = '<p><%= user.displayName %></p>\n<% if (user.jobTitel) { %><p><%= user.jobTitel %></p><% } %>\n<p><%= user.displayname %> <%= user[\'mobilPhone\'] %> <%= user.pronoun %></p>\n<p><%= user.pronouns %> <%= user.linkedin %> <%= user.mail %></p>\n';
    const issues = issuesOf(withFile(files, 'templates/default.html.ejs', html));
    expectIssue(issues, { file: 'templates/default.html.ejs', path: '', line: 2, message: /^user\.jobTitel is not an attribute, so it would be empty in every signature; did you mean user\.jobTitle\?$/ });
    expectIssue(issues, { file: 'templates/default.html.ejs', path: '', line: 3, message: /user\.displayname is not an attribute.*did you mean user\.displayName\?/ });
    expectIssue(issues, { file: 'templates/default.html.ejs', path: '', line: 3, message: /user\.mobilPhone is not an attribute.*did you mean user\.mobilePhone\?/ });
    // pronouns is a custom attribute of users.yaml; linkedin is like nothing known (a local directory's own attribute, maybe).
    expectIssue(issues, { file: 'templates/default.html.ejs', path: '', line: 3, message: /user\.pronoun is not an attribute.*did you mean user\.pronouns\?/ });
    expect(issues.filter((i) => /linkedin|user\.mail\b|user\.pronouns /.test(i.message))).to.deep.equal([]);
    // Add-ons too, at their line in the add-on file.
    const addon = 'kind: banner\nhtml: |\n  <p>Hi</p>\n  <p><%= user.departmnet %></p>\n';
    expectIssue(issuesOf(withFile(files, 'addons/winter-campaign.yaml', addon)), { file: 'addons/winter-campaign.yaml', path: '', line: 4, message: /user\.departmnet is not an attribute.*did you mean user\.department\?/ });
  });

  it('a placeholder that ordinary text may contain', () => {
    const withPlaceholder = (placeholder: string) => `orgId: contoso\nacceptedDomains: [contoso.com, contoso.co.uk]\noptions:\n  placeholder: ${JSON.stringify(placeholder)}\n`;
    for (const placeholder of ['signature', 'SIG', '--', 'a', '#sig']) {
      expectIssue(issuesOf(withFile(files, 'org.yaml', withPlaceholder(placeholder))), { file: 'org.yaml', path: 'options.placeholder', line: 4, message: /must never turn up in ordinary text/ });
    }
    for (const placeholder of ['{{signature}}', '[[sig]]', '<signature>', '%%SIG%%', '{{подпись}}']) {
      expect(issuesOf(withFile(files, 'org.yaml', withPlaceholder(placeholder))).filter((i) => i.path === 'options.placeholder'), placeholder).to.deep.equal([]);
    }
  });

  it('extra headers may not touch owned headers nor carry line breaks', () => {
    const org = 'orgId: contoso\nacceptedDomains: [contoso.com, contoso.co.uk]\noptions:\n  extraHeaders:\n    X-Org-Notice: ok\n    Content-Type: text/plain\n    X-Split: "a\\r\\nBcc: evil@fabrikam.com"\n';
    const issues = issuesOf(withFile(files, 'org.yaml', org));
    expectIssue(issues, { file: 'org.yaml', path: 'options.extraHeaders.Content-Type', line: 6, message: /owns this header/ });
    expectIssue(issues, { file: 'org.yaml', path: 'options.extraHeaders.X-Split', line: 7, message: /must be one line/ });
  });

  it('attribute names must be usable in templates and not shadow user fields', () => {
    const users = 'users:\n  tom.okafor@contoso.com:\n    mail: x@fabrikam.com\n    __proto__: x\n    job-title: x\n';
    const issues = issuesOf(withFile(files, 'users.yaml', users));
    expectIssue(issues, { file: 'users.yaml', path: 'users["tom.okafor@contoso.com"].mail', line: 3, message: /reserved name/ });
    expectIssue(issues, { file: 'users.yaml', path: 'users["tom.okafor@contoso.com"].__proto__', line: 4, message: /attribute names are/ });
    expectIssue(issues, { file: 'users.yaml', path: 'users["tom.okafor@contoso.com"].job-title', line: 5, message: /attribute names are/ });
  });

  it('files that do not belong to the format are named', () => {
    let copy = withFile(files, 'templates/default.html', '<p>');
    copy = withFile(copy, 'templates/Bad Id.html.ejs', '<p>');
    copy = withFile(copy, 'templates/lonely.txt.ejs', 'x');
    copy = withFile(copy, 'addons/notes.txt', 'x');
    copy = withFile(copy, 'settings.json', '{}');
    const issues = issuesOf(copy);
    expectIssue(issues, { file: 'templates/default.html', path: '', message: /templates are named <id>\.html\.ejs/ });
    expectIssue(issues, { file: 'templates/Bad Id.html.ejs', path: '', message: /not a valid template id/ });
    expectIssue(issues, { file: 'templates/lonely.txt.ejs', path: '', message: /text form without an HTML form/ });
    expectIssue(issues, { file: 'addons/notes.txt', path: '', message: /not used/ });
    expectIssue(issues, { file: 'settings.json', path: '', message: /not part of the organization folder format/ });
  });

  it('add-on content: exactly one of html and htmlFile, and the file must exist', () => {
    const both = 'kind: disclaimer\nhtml: <p>x</p>\nhtmlFile: legal-disclaimer.html.ejs\n';
    expectIssue(issuesOf(withFile(files, 'addons/legal-disclaimer.yaml', both)), { file: 'addons/legal-disclaimer.yaml', path: 'htmlFile', line: 3, message: /either inline \(html\) or in a file \(htmlFile\), not both/ });
    const none = 'kind: disclaimer\ntext: hi\n';
    expectIssue(issuesOf(withFile(files, 'addons/legal-disclaimer.yaml', none)), { file: 'addons/legal-disclaimer.yaml', path: '', message: /give html \(inline\) or htmlFile/ });
    const missing = 'kind: disclaimer\nhtmlFile: ../org.yaml\n';
    expectIssue(issuesOf(withFile(files, 'addons/legal-disclaimer.yaml', missing)), { file: 'addons/legal-disclaimer.yaml', path: 'htmlFile', line: 2, message: /relative path inside the organization folder/ });
    // a path out of the folder is one problem, not also "file not found" at a made-up path
    for (const [file, yaml, key] of [
      ['addons/legal-disclaimer.yaml', 'kind: disclaimer\nhtmlFile: /etc/passwd\n', 'htmlFile'],
      ['addons/legal-disclaimer.yaml', 'kind: disclaimer\nhtmlFile: x/../../rules.yaml\n', 'htmlFile'],
      ['org.yaml', files.get('org.yaml')!.toString().replace('contoso-logo.png', '/etc/passwd'), 'images[0].file'],
      ['org.yaml', files.get('org.yaml')!.toString().replace('contoso-logo.png', '../rules.yaml'), 'images[0].file'],
    ] as const) {
      const about = issuesOf(withFile(files, file, yaml)).filter((i) => i.file === file && i.path === key);
      expect(about.map((i) => i.message), yaml).to.deep.equal([about[0]?.message]);
      expect(about[0]?.message).to.match(/relative path inside the organization folder/);
    }
    const absent = 'kind: disclaimer\nhtmlFile: nowhere.html.ejs\n';
    expectIssue(issuesOf(withFile(files, 'addons/legal-disclaimer.yaml', absent)), { file: 'addons/legal-disclaimer.yaml', path: 'htmlFile', line: 2, message: /file not found: addons\/nowhere\.html\.ejs/ });
  });

  it('a broken add-on does not also make the rules naming it wrong', () => {
    const issues = issuesOf(withFile(files, 'addons/legal-disclaimer.yaml', 'kind: disclaimer\nhtml: [\n'));
    expect(issues.some((i) => i.file === 'addons/legal-disclaimer.yaml')).to.equal(true);
    expect(issues.filter((i) => i.file === 'rules.yaml')).to.deep.equal([]);
  });

  it('an unreadable org.yaml does not make every template\'s image unknown', () => {
    const issues = issuesOf(withFile(files, 'org.yaml', 'orgId: contoso\nimages: [\n'));
    expect(issues.map((i) => i.file)).to.deep.equal(['org.yaml']);
  });

  it('missing org.yaml and rules.yaml, and an empty file', () => {
    const copy = new Map(files);
    copy.delete('org.yaml');
    copy.delete('rules.yaml');
    const issues = issuesOf(withFile(copy, 'users.yaml', '# nothing yet\n'));
    expectIssue(issues, { file: 'org.yaml', path: '', message: /missing: every organization folder has an org\.yaml/ });
    expectIssue(issues, { file: 'rules.yaml', path: '', message: /missing/ });
    expectIssue(issues, { file: 'users.yaml', path: '', line: 1, message: /the file is empty/ });
  });

  it('text that is not UTF-8 is refused, not guessed', () => {
    const latin1 = Buffer.from('<p>Soci\xe9t\xe9</p>\n', 'latin1');
    expectIssue(issuesOf(withFile(files, 'templates/reply.html.ejs', latin1)), { file: 'templates/reply.html.ejs', path: '', message: /not valid UTF-8/ });
  });

  it('collects every problem of every file in one ConfigError', () => {
    let copy = withFile(files, 'org.yaml', 'orgId: Contoso Ltd\nacceptedDomains: [contoso.com, contoso.co.uk]\noptions:\n  dkim: strip\n');
    copy = withFile(copy, 'rules.yaml', 'rules:\n  - id: a\n    template: nope\n  - id: a\n    addons: [nope]\n');
    copy = withFile(copy, 'templates/reply.html.ejs', '<%= user.x + %>');
    let error: unknown;
    try {
      loadOrgFromFiles(copy, { version: 'v', label: 'contoso-test' });
    } catch (e) {
      error = e;
    }
    expect(error).to.be.instanceOf(ConfigError);
    const config = error as ConfigError;
    const where = config.issues.map((i) => `${i.file} ${i.path}`);
    expect(where).to.include.members(['org.yaml orgId', 'org.yaml options.dkim', 'rules.yaml rules[0].template', 'rules.yaml rules[1].id', 'rules.yaml rules[1].addons[0]', 'templates/reply.html.ejs ']);
    expect(config.message).to.match(/^configuration contoso-test has \d+ problems:\n {2}\S+:\d+[ :]/);
    expect(config.message).to.include('\n  org.yaml:1 orgId: org ids are lower-case');
    const lines = config.toString().split('\n');
    expect(lines).to.have.length(config.issues.length);
    expect(lines).to.include('rules.yaml:3 rules[0].template: unknown template "nope": there is no templates/nope.html.ejs');
    expect(lines[0]).to.equal(formatIssue(config.issues[0]));
  });
});
