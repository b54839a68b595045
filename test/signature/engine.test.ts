import { expect } from 'chai';
import { Readable } from 'node:stream';
import { simpleParser } from 'mailparser';
import type { OrgConfig, RuleSource } from '../../appliance/src/config/types';
import type { DirectorySnapshot, DirectoryUser } from '../../appliance/src/directory/types';
import { createEngine, signatureMarker } from '../../appliance/src/signature';
import type { EngineResult } from '../../appliance/src/signature/types';

const CRLF = '\r\n';

function user(mail: string, attributes: Record<string, string>, groups: string[] = []): DirectoryUser {
  return { mail, aliases: [], attributes, groups };
}

function snapshot(users: DirectoryUser[]): DirectorySnapshot {
  const byAddress = new Map(users.map((u) => [u.mail, u]));
  return { lookup: (a) => byAddress.get(a.toLowerCase()), users: () => users, syncedAt: new Date(), size: users.length };
}

function org(overrides: Partial<OrgConfig> = {}, rules?: RuleSource[]): OrgConfig {
  return {
    orgId: 'contoso',
    version: '7',
    acceptedDomains: ['contoso.com'],
    options: { placeholder: '{{signature}}', dkim: 'remove', maxEditablePartBytes: 1024 * 1024, signAutoReplies: false, calendar: 'leave', separators: [], replaceSignOffs: false, signOffs: [], plainTextToHtml: false, extraHeaders: {} },
    templates: new Map([
      ['default', { id: 'default', file: 'templates/default.html.ejs', html: '<p class="sig"><b><%= user.displayName %></b><% if (user.jobTitle) { %><br><%= user.jobTitle %><% } %></p>', text: '-- \n<%= user.displayName %>\n<%= user.jobTitle %>' }],
      ['short', { id: 'short', file: 'templates/short.html.ejs', html: '<p class="sig-short"><%= user.displayName %> | Contoso</p>' }],
    ]),
    addons: new Map([
      ['disclaimer', { id: 'disclaimer', kind: 'disclaimer' as const, position: 'bottom' as const, file: 'addons/disclaimer.yaml', html: '<p class="disclaimer">Confidential.</p>', text: 'Confidential.' }],
    ]),
    rules: rules ?? [
      { id: 'everyone', enabled: true, match: { senderDomains: ['contoso.com'] }, template: 'default', replyTemplate: 'short', skipIfInThread: true },
      { id: 'external-disclaimer', enabled: true, match: { direction: 'external' }, addons: ['disclaimer'] },
    ],
    images: new Map(),
    userAttributes: new Map(),
    ...overrides,
  };
}

const directory = snapshot([
  user('ada@contoso.com', { displayName: 'Ada Lovelace', jobTitle: 'Analyst' }),
  user('mallory@contoso.com', { displayName: '<script>alert(1)</script>"><img src=x onerror=alert(1)>', jobTitle: '' }),
]);

async function run(message: string, options: { config?: OrgConfig; from?: string; to?: string[] } = {}): Promise<{ out: string; result: EngineResult }> {
  const engine = createEngine({ org: options.config ?? org(), directory: () => directory, now: () => new Date('2026-11-23T12:00:00Z') });
  const handle = engine.process(Readable.from([Buffer.from(message, 'latin1')]), { mailFrom: options.from ?? 'ada@contoso.com', rcptTo: options.to ?? ['bob@fabrikam.example'] });
  const chunks: Buffer[] = [];
  for await (const chunk of handle.output) chunks.push(chunk as Buffer);
  return { out: Buffer.concat(chunks).toString('latin1'), result: await handle.result };
}

/** An invitation: text, the given HTML part (its header lines, blank line, body) and a METHOD:REQUEST calendar part. */
function calendarInvitation(htmlPart: string[], extraHeaders: string[] = []): string {
  return [
    ...extraHeaders,
    'From: ada@contoso.com',
    'Subject: Meeting',
    'MIME-Version: 1.0',
    'Content-Type: multipart/alternative; boundary="c1"',
    '',
    '--c1',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Let us meet.',
    '--c1',
    ...htmlPart,
    '--c1',
    'Content-Type: text/calendar; charset=utf-8; method=REQUEST',
    '',
    'BEGIN:VCALENDAR',
    'METHOD:REQUEST',
    'END:VCALENDAR',
    '--c1--',
    '',
  ].join(CRLF);
}

function htmlMessage(body: string, headers: string[] = []): string {
  return [
    'DKIM-Signature: v=1; a=rsa-sha256; d=contoso.com; s=s1; bh=abc; b=def',
    'From: Ada <ada@contoso.com>',
    'To: bob@fabrikam.example',
    'Subject: Quarterly numbers',
    'Message-ID: <m1@contoso.com>',
    ...headers,
    'MIME-Version: 1.0',
    'Content-Type: text/html; charset=utf-8',
    'Content-Transfer-Encoding: 7bit',
    '',
    body,
    '',
  ].join(CRLF);
}

/** The header fields of a message, each unfolded onto one line. */
function headerLines(message: string): string[] {
  return message.slice(0, message.indexOf(CRLF + CRLF)).replace(/\r\n[ \t]+/g, ' ').split(CRLF);
}

/** The message without its first header field (and that field's folded continuation lines). */
function withoutFirstField(message: string): string {
  return message.replace(/^[^\r\n]*\r\n([ \t][^\r\n]*\r\n)*/, '');
}

describe('signature engine', () => {
  it('renders a sender with users.yaml overrides once, and a directory refresh shows the new values', async () => {
    const counter = { n: 0 };
    // the template reaches the counter as a global, in this test only
    (globalThis as { counter?: unknown }).counter = counter;
    try {
      const base = org();
      const config = org({
        templates: new Map([['default', { id: 'default', file: 'templates/default.html.ejs', html: '<% counter.n++ %><p class="sig"><%= user.displayName %>, <%= user.jobTitle %></p>' }]]),
        userAttributes: new Map([['ada@contoso.com', { jobTitle: 'Chief Analyst' }]]),
        rules: [{ ...base.rules[0]!, replyTemplate: undefined }],
      });
      let current = directory;
      const engine = createEngine({ org: config, directory: () => current, now: () => new Date('2026-11-23T12:00:00Z') });
      const sign = async () => {
        const handle = engine.process(Readable.from([Buffer.from(htmlMessage('<p>Hi</p>'), 'latin1')]), { mailFrom: 'ada@contoso.com', rcptTo: ['bob@contoso.com'] });
        const chunks: Buffer[] = [];
        for await (const chunk of handle.output) chunks.push(chunk as Buffer);
        await handle.result;
        return Buffer.concat(chunks).toString('latin1');
      };
      counter.n = 0; // the trial renders at compile time do not count
      expect(await sign()).to.include('<p class="sig">Ada Lovelace, Chief Analyst</p>');
      expect(await sign()).to.include('<p class="sig">Ada Lovelace, Chief Analyst</p>');
      expect(counter.n).to.equal(1);
      current = snapshot([user('ada@contoso.com', { displayName: 'Ada King', jobTitle: 'Analyst' })]);
      expect(await sign()).to.include('<p class="sig">Ada King, Chief Analyst</p>');
      expect(counter.n).to.equal(2);
    } finally {
      delete (globalThis as { counter?: unknown }).counter;
    }
  });

  it('signs a new HTML message at the end of the body, stamps it first and removes the broken DKIM signature', async () => {
    const input = htmlMessage('<html><body><p>Hello Bob</p></body></html>');
    const { out, result } = await run(input);
    expect(result.outcome).to.equal('signed');
    expect(result.kind).to.equal('new');
    expect(result.ruleIds).to.deep.equal(['everyone', 'external-disclaimer']);
    expect(result.templateId).to.equal('default');
    expect(result.addons).to.deep.equal(['disclaimer']);
    const lines = headerLines(out);
    expect(lines[0]).to.match(/^X-Signet-Processed: org=contoso; result=signed; rule=everyone,external-disclaimer; template=default; config=7; v=\d/);
    expect(out).not.to.include('DKIM-Signature');
    const body = out.slice(out.indexOf(CRLF + CRLF) + 4);
    expect(body).to.match(/<p>Hello Bob<\/p><div class="signet-[0-9a-f]{12} signet-[0-9a-f]{12}-[0-9a-f]{8}" id="signet-[0-9a-f]{12}-[0-9a-f]{8}"><p class="sig"><b>Ada Lovelace<\/b><br>Analyst<\/p><p class="disclaimer">Confidential.<\/p><\/div><\/body><\/html>/);
    // Everything else is byte for byte what came in.
    // Every other header field is byte for byte what came in, in the same order.
    const head = (m: string) => m.slice(0, m.indexOf(CRLF + CRLF));
    expect(head(withoutFirstField(out))).to.equal(head(withoutFirstField(input)));
  });

  it('keeps DKIM-Signature when the organization says so', async () => {
    const config = org({ options: { ...org().options, dkim: 'keep' } });
    const { out } = await run(htmlMessage('<p>Hi</p>'), { config });
    expect(out).to.include('DKIM-Signature: v=1; a=rsa-sha256;');
  });

  it('puts the reply template above an Outlook on the web quote', async () => {
    const body =
      '<html><body><div>Sounds good.</div>' +
      '<div id="appendonsend"></div><hr style="display:inline-block;width:98%" tabindex="-1">' +
      '<div id="divRplyFwdMsg" dir="ltr"><b>From:</b> Bob<br><b>Sent:</b> Monday</div><div>Original text</div></body></html>';
    const { out, result } = await run(htmlMessage(body, ['In-Reply-To: <x@fabrikam.example>']).replace('Subject: Quarterly numbers', 'Subject: RE: Quarterly numbers'));
    expect(result.kind).to.equal('reply');
    expect(result.templateId).to.equal('short');
    expect(result.parts[0]?.placement).to.equal('above-quote');
    expect(out).to.match(/<div>Sounds good\.<\/div><div class="signet-[0-9a-f]+ signet-[0-9a-f-]+" id="signet-[0-9a-f-]+"><p class="sig-short">Ada Lovelace \| Contoso<\/p>.*<\/div><div id="appendonsend">/);
  });

  it('does not repeat the signature when the quoted thread already carries it', async () => {
    const marker = signatureMarker('contoso', 'ada@contoso.com');
    const body = `<html><body><div>Thanks!</div><div id="appendonsend"></div><div id="divRplyFwdMsg"><b>From:</b> Ada<br><b>Sent:</b> Monday</div><div><div class="x_${signatureMarker('contoso')} x_${marker}" id="x_${marker}">Ada Lovelace</div></div></body></html>`;
    const { out, result } = await run(htmlMessage(body).replace('Subject: Quarterly numbers', 'Subject: RE: Quarterly numbers'));
    // The disclaimer still applies; the signature does not come twice.
    expect(result.outcome).to.equal('signed');
    expect(result.templateId).to.equal(undefined);
    expect(out).not.to.include('sig-short');
    expect(out).to.include('Confidential.');
    // Only this organization's: another's marker, or the same words in the new text, do not count.
    const other = body.replaceAll(marker, signatureMarker('fabrikam', 'ada@contoso.com')).replaceAll(signatureMarker('contoso'), signatureMarker('fabrikam'));
    expect((await run(htmlMessage(other).replace('Subject: Quarterly numbers', 'Subject: RE: Quarterly numbers'))).result.templateId).to.equal('short');
  });

  it("a colleague's signature in the thread does not stand for the sender's: joining a thread, forwarding a colleague's mail", async () => {
    const colleague = user('grace@contoso.com', { displayName: 'Grace Hopper', jobTitle: 'Architect' });
    const config = org();
    const engine = createEngine({ org: config, directory: () => snapshot([colleague, ...directory.users()]), now: () => new Date('2026-11-23T12:00:00Z') });
    const send = async (message: string, from: string) => {
      const handle = engine.process(Readable.from([Buffer.from(message, 'latin1')]), { mailFrom: from, rcptTo: ['bob@fabrikam.example'] });
      const chunks: Buffer[] = [];
      for await (const chunk of handle.output) chunks.push(chunk as Buffer);
      return { out: Buffer.concat(chunks).toString('latin1'), result: await handle.result };
    };
    const bodyOf = (m: string) => m.slice(m.indexOf('<body>') + 6, m.lastIndexOf('</body>'));
    const quoting = (text: string, quoted: string) => `<html><body><div>${text}</div><div id="appendonsend"></div><div id="divRplyFwdMsg"><b>From:</b> X<br><b>Sent:</b> Monday</div><div>${quoted}</div></body></html>`;
    const graces = await send(htmlMessage('<html><body><p>Here is the plan.</p></body></html>'), 'grace@contoso.com');
    expect(graces.result.templateId).to.equal('default');
    // Ada joins the thread: Grace's signature is quoted, Ada's is not, so Ada signs.
    const adas = await send(htmlMessage(quoting('Adding my part.', bodyOf(graces.out))).replace('Subject: Quarterly numbers', 'Subject: RE: The plan'), 'ada@contoso.com');
    expect(adas.result.templateId).to.equal('short');
    // Ada forwards Grace's message: signed too.
    const forward = await send(htmlMessage(quoting('FYI', bodyOf(graces.out))).replace('Subject: Quarterly numbers', 'Subject: FW: The plan'), 'ada@contoso.com');
    expect(forward.result).to.include({ kind: 'forward', templateId: 'short' });
    // Grace answers the thread that now quotes both: her own is there, so not again.
    const again = await send(htmlMessage(quoting('Agreed.', bodyOf(adas.out))).replace('Subject: Quarterly numbers', 'Subject: RE: The plan'), 'grace@contoso.com');
    expect(again.result.templateId).to.equal(undefined);
  });

  it('a thread whose earlier messages got only a disclaimer does not count as signed', async () => {
    // An unknown sender (a shared mailbox) writes to a customer: disclaimer only, no signature.
    const first = await run(htmlMessage('<html><body><p>Your order shipped.</p></body></html>'), { from: 'orders@contoso.com' });
    expect(first.result).to.include({ outcome: 'signed', templateId: undefined });
    expect(first.out).not.to.include(signatureMarker('contoso'));
    // Ada answers the customer's reply, quoting that message: her signature is due.
    const quoted = first.out.slice(first.out.indexOf('<body>') + 6, first.out.lastIndexOf('</body>'));
    const body = `<html><body><div>I will look into it.</div><div id="appendonsend"></div><div id="divRplyFwdMsg"><b>From:</b> Customer<br><b>Sent:</b> Monday</div><div>${quoted}</div></body></html>`;
    const { out, result } = await run(htmlMessage(body).replace('Subject: Quarterly numbers', 'Subject: RE: Your order'));
    expect(result.reason).to.equal(undefined);
    expect(result.templateId).to.equal('short');
    expect(out).to.include('sig-short');
    // …and her signed reply, once quoted in turn, stops the next one.
    const again = out.slice(out.indexOf('<body>') + 6, out.lastIndexOf('</body>'));
    const next = `<html><body><div>Any news?</div><div id="appendonsend"></div><div id="divRplyFwdMsg"><b>From:</b> Customer<br><b>Sent:</b> Tuesday</div><div>${again}</div></body></html>`;
    expect((await run(htmlMessage(next).replace('Subject: Quarterly numbers', 'Subject: RE: Your order'))).result.templateId).to.equal(undefined);
  });

  it('reads an encoded subject for the kind and subject keywords', async () => {
    const config = org({}, [
      { id: 'orders', enabled: true, match: { subjectContains: ['Größe'] }, template: 'default', replyTemplate: 'short' },
    ]);
    const subject = `=?utf-8?B?${Buffer.from('AW: Größe der Lieferung').toString('base64')}?=`;
    const { result } = await run(htmlMessage('<p>Passt.</p>').replace('Subject: Quarterly numbers', `Subject: ${subject}`), { config });
    expect(result).to.include({ outcome: 'signed', kind: 'reply', templateId: 'short' });
  });

  it('matches body keywords in an HTML-only message as a reader sees its text: entities decoded, markup ignored', async () => {
    const config = org({}, [{ id: 'rnd', enabled: true, match: { bodyContains: ['R&D', 'café', 'special offer'] }, template: 'default' }]);
    for (const body of ['<p>The R&amp;D budget</p>', '<p>At the caf&eacute;</p>', '<p>At the caf&#233;</p>', '<p>Our <b>special</b>&nbsp;offer</p>', '<p>Our spe<span class="x">cial</span> offer</p>']) {
      expect((await run(htmlMessage(body), { config })).result.outcome, body).to.equal('signed');
    }
    for (const body of ['<p>Research and development</p>', '<style>p.special offer {}</style><p>Hi</p>', '<p title="R&amp;D">Hi</p>']) {
      expect((await run(htmlMessage(body), { config })).result.reason, body).to.equal('no-rule');
    }
  });

  it('signs the text part with the text form and the HTML part with the HTML form', async () => {
    const input = [
      'From: ada@contoso.com',
      'Subject: hi',
      'MIME-Version: 1.0',
      'Content-Type: multipart/alternative; boundary="b1"',
      '',
      '--b1',
      'Content-Type: text/plain; charset=us-ascii',
      '',
      'Hello Bob',
      '--b1',
      'Content-Type: text/html; charset=us-ascii',
      '',
      '<p>Hello Bob</p>',
      '--b1--',
      '',
    ].join(CRLF);
    const { out, result } = await run(input);
    expect(result.parts.map((p) => p.contentType).sort()).to.deep.equal(['text/html', 'text/plain']);
    const parsed = await simpleParser(Buffer.from(out, 'latin1'));
    expect(parsed.text).to.include('Hello Bob');
    expect(parsed.text).to.include('-- \nAda Lovelace\nAnalyst');
    expect(parsed.text).to.include('Confidential.');
    expect(parsed.text).not.to.include('<p');
    expect(parsed.html).to.include('<b>Ada Lovelace</b>');
  });

  it('embeds the sender\'s directory photo as a related image part, and nothing for a sender without one', async () => {
    const photo = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from('ada photo, not a real JPEG past its signature')]);
    const config = org({
      templates: new Map([
        ['default', { id: 'default', file: 'templates/default.html.ejs', html: '<% if (photo()) { %><img src="<%= photo() %>" width="64" alt=""><% } %><p class="sig"><%= user.displayName %></p>' }],
        ['short', { id: 'short', file: 'templates/short.html.ejs', html: '<p class="sig-short"><%= user.displayName %></p>' }],
      ]),
    });
    const withPhoto = snapshot([
      { ...user('ada@contoso.com', { displayName: 'Ada Lovelace' }), photo: { data: photo, contentType: 'image/jpeg' } },
      user('bob@contoso.com', { displayName: 'Bob' }),
    ]);
    const sign = async (from: string) => {
      const engine = createEngine({ org: config, directory: () => withPhoto, now: () => new Date('2026-11-23T12:00:00Z') });
      const handle = engine.process(Readable.from([Buffer.from(htmlMessage('<p>Hi</p>'), 'latin1')]), { mailFrom: from, rcptTo: ['colleague@contoso.com'] });
      const chunks: Buffer[] = [];
      for await (const chunk of handle.output) chunks.push(chunk as Buffer);
      return { parsed: await simpleParser(Buffer.concat(chunks), { keepCidLinks: true }), result: await handle.result };
    };
    const ada = await sign('ada@contoso.com');
    expect(ada.result.outcome).to.equal('signed');
    const [image, ...others] = ada.parsed.attachments;
    expect(others).to.deep.equal([]);
    expect(image.content.equals(photo)).to.equal(true);
    expect(image).to.include({ contentType: 'image/jpeg', filename: 'photo.jpg', contentDisposition: 'inline', related: true });
    expect(image.contentId).to.match(/^<photo\.[0-9a-f]{16}@signet>$/);
    expect(String(ada.parsed.html)).to.include(`<img src="cid:${image.contentId!.slice(1, -1)}" width="64" alt="">`);

    const bob = await sign('bob@contoso.com');
    expect(bob.result.outcome).to.equal('signed');
    expect(bob.parsed.attachments).to.deep.equal([]);
    expect(String(bob.parsed.html)).to.include('<p class="sig">Bob</p>').and.not.include('<img');
  });

  it('escapes hostile directory values', async () => {
    const { out } = await run(htmlMessage('<p>Hi</p>'), { from: 'mallory@contoso.com' });
    expect(out).not.to.include('<script>');
    expect(out).not.to.match(/<img[^>]*onerror/i);
    expect(out).to.include('&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(1)&gt;');
  });

  it('leaves a message already processed by this organization exactly as it came', async () => {
    const input = htmlMessage('<p>Hi</p>', ['X-Signet-Processed: org=contoso; result=signed; rule=everyone']);
    const { out, result } = await run(input);
    expect(result.outcome).to.equal('passed');
    expect(result.reason).to.equal('already-processed');
    expect(out).to.equal(input);
  });

  it('processes a message stamped by another organization', async () => {
    const { result } = await run(htmlMessage('<p>Hi</p>', ['X-Signet-Processed: org=fabrikam; result=signed']));
    expect(result.outcome).to.equal('signed');
  });

  for (const [name, extra, reason] of [
    ['auto-replies', ['Auto-Submitted: auto-replied'], 'auto-reply'],
    ['out-of-office subjects', [], 'auto-reply'],
  ] as const) {
    it(`passes ${name} through with a stamp and nothing else`, async () => {
      let input = htmlMessage('<p>Away</p>', [...extra]);
      if (extra.length === 0) input = input.replace('Subject: Quarterly numbers', 'Subject: Automatic reply: Quarterly numbers');
      const { out, result } = await run(input);
      expect(result).to.include({ outcome: 'passed', reason });
      expect(withoutFirstField(out)).to.equal(input);
      expect(headerLines(out)[0]).to.equal(`X-Signet-Processed: org=contoso; result=passed; reason=auto-reply; config=7; v=${headerLines(out)[0]!.split('v=')[1]}`);
    });
  }

  it('passes a message with the null sender (a notification) with a stamp and nothing else, even when auto-replies are signed', async () => {
    const input = htmlMessage('<p>Your message could not be delivered.</p>');
    const config = org({ options: { ...org().options, signAutoReplies: true } });
    const { out, result } = await run(input, { from: '', config });
    expect(result).to.include({ outcome: 'passed', reason: 'null-sender' });
    expect(withoutFirstField(out)).to.equal(input);
    expect(headerLines(out)[0]).to.match(/^X-Signet-Processed: org=contoso; result=passed; reason=null-sender;/);
  });

  it('signs auto-replies when the organization asks for it', async () => {
    const config = org({ options: { ...org().options, signAutoReplies: true } });
    const { result } = await run(htmlMessage('<p>Away</p>', ['Auto-Submitted: auto-replied']), { config });
    expect(result.outcome).to.equal('signed');
  });

  it('leaves S/MIME signed mail untouched but stamped', async () => {
    const input = [
      'From: ada@contoso.com',
      'Subject: signed',
      'MIME-Version: 1.0',
      'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="s1"',
      '',
      '--s1',
      'Content-Type: text/plain',
      '',
      'Signed text',
      '--s1',
      'Content-Type: application/pkcs7-signature; name=smime.p7s',
      'Content-Transfer-Encoding: base64',
      '',
      'MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwEAAKCAMIID',
      '--s1--',
      '',
    ].join(CRLF);
    const { out, result } = await run(input);
    expect(result).to.include({ outcome: 'passed', reason: 'smime' });
    expect(withoutFirstField(out)).to.equal(input);
  });

  it('gives an unknown sender the add-ons but no personal signature', async () => {
    const { out, result } = await run(htmlMessage('<p>Scan attached</p>'), { from: 'scanner@contoso.com' });
    expect(result.outcome).to.equal('signed');
    expect(result.templateId).to.equal(undefined);
    expect(out).to.include('Confidential.');
    expect(out).not.to.include('class="sig"');
  });

  it('delivers unsigned, stamped template-error, when a template fails for this sender only (a retry would fail the same way)', async () => {
    // the trial render at load (empty attributes) passes; Ada's job title is no JSON
    const failing = org({
      templates: new Map([
        ['default', { id: 'default', file: 'templates/default.html.ejs', html: '<p>\n<% if (user.jobTitle) { %><%= JSON.parse(user.jobTitle).x %><% } %></p>' }],
        ['short', { id: 'short', file: 'templates/short.html.ejs', html: '<p><%= user.displayName %></p>' }],
      ]),
    });
    const input = htmlMessage('<p>Hi</p>');
    const { out, result } = await run(input, { config: failing });
    expect(result).to.include({ outcome: 'passed', reason: 'template-error' });
    expect(result.templateError).to.include({ where: 'templates/default.html.ejs:2', errorName: 'SyntaxError' });
    expect(result.templateError!.message).to.match(/^templates\/default\.html\.ejs:2: /);
    expect(headerLines(out)[0]).to.match(/^X-Signet-Processed: org=contoso; result=passed; reason=template-error; rule=everyone,external-disclaimer;/);
    // nothing else changed: not the body, not the DKIM signature, no disclaimer without its signature
    expect(withoutFirstField(out)).to.equal(input);
    // a sender whose values it copes with is signed as before
    const other = await run(htmlMessage('<p>Hi</p>'), { config: failing, from: 'mallory@contoso.com' });
    expect(other.result.outcome).to.equal('signed');
    expect(other.result.templateError).to.equal(undefined);
  });

  it('delivers unsigned, stamped template-error, when an add-on fails for this sender', async () => {
    const failing = org({
      addons: new Map([['disclaimer', { id: 'disclaimer', kind: 'disclaimer' as const, position: 'bottom' as const, file: 'addons/disclaimer.yaml', html: '<p><%= user.jobTitle ? user.jobTitle.no.such : "" %></p>' }]]),
    });
    const input = htmlMessage('<p>Hi</p>');
    const { out, result } = await run(input, { config: failing });
    expect(result).to.include({ outcome: 'passed', reason: 'template-error' });
    expect(result.templateError).to.include({ errorName: 'TypeError' });
    expect(withoutFirstField(out)).to.equal(input);
  });

  it('passes, stamped, when no rule matches', async () => {
    const { out, result } = await run(htmlMessage('<p>Hi</p>'), { from: 'ada@contoso.com', to: ['colleague@contoso.com'], config: org({}, [{ id: 'external-only', enabled: true, match: { direction: 'external' }, template: 'default' }]) });
    expect(result).to.include({ outcome: 'passed', reason: 'no-rule' });
    expect(headerLines(out)[0]).to.match(/^X-Signet-Processed: org=contoso; result=passed; reason=no-rule;/);
  });

  it('signs only the HTML part of a calendar invitation when configured, never the calendar', async () => {
    const invitation = calendarInvitation(['Content-Type: text/html; charset=utf-8', '', '<html><body><p>Let us meet.</p></body></html>']);
    const left = await run(invitation);
    expect(left.result).to.include({ outcome: 'passed', reason: 'calendar' });
    const config = org({ options: { ...org().options, calendar: 'html-only' } });
    const { out, result } = await run(invitation, { config });
    expect(result.outcome).to.equal('signed');
    expect(result.parts.map((p) => p.contentType)).to.deep.equal(['text/html']);
    expect(out).to.include('Let us meet.' + CRLF + '--c1');
    expect(out).to.include('BEGIN:VCALENDAR' + CRLF + 'METHOD:REQUEST' + CRLF + 'END:VCALENDAR');
  });

  it('passes a message whose header block never ends (no body to edit) with a passed stamp, DKIM kept', async () => {
    const headerOnly = ['DKIM-Signature: v=1; a=rsa-sha256; d=contoso.com; s=s1;', '\tbh=abc; b=def', 'From: Ada <ada@contoso.com>', 'To: bob@fabrikam.example', 'Subject: hi', 'Content-Type: text/plain', ''].join(CRLF);
    const { out, result } = await run(headerOnly);
    expect(result).to.include({ outcome: 'passed', reason: 'no-body' });
    expect(withoutFirstField(out)).to.equal(headerOnly);
    expect(out).to.match(/^X-Signet-Processed: org=contoso; result=passed; reason=no-body;/);
  });

  it('ends a link the sender left open in front of the signature, so the signature is not part of it', async () => {
    const { out, result } = await run(htmlMessage('<p>Our offer: <a href="https://fabrikam.example/offer">details</p>'));
    expect(result.outcome).to.equal('signed');
    expect(out).to.match(/details<\/p>\r\n<\/a><div class="signet-[0-9a-f]+ signet-[0-9a-f]+-[0-9a-f]+"/);
    expect(out.split('</a>')).to.have.length(2);
  });

  it('passes a message whose body part names two transfer encodings (readers disagree how to decode it), stamped ambiguous-part, DKIM kept', async () => {
    const message = htmlMessage('<p>Hello Bob</p>').replace('Content-Transfer-Encoding: 7bit\r\n', 'Content-Transfer-Encoding: 7bit\r\nContent-Transfer-Encoding: base64\r\n');
    const { out, result } = await run(message);
    expect(result).to.include({ outcome: 'passed', reason: 'ambiguous-part' });
    expect(result.ambiguousParts).to.deep.equal(['text/html']);
    expect(result.parts).to.deep.equal([]);
    expect(withoutFirstField(out)).to.equal(message);
    expect(out).to.match(/^X-Signet-Processed: org=contoso; result=passed; reason=ambiguous-part;/);
  });

  it('signs the text alternative when only the HTML part is ambiguous, and says why the HTML was left alone', async () => {
    const message = [
      'From: Ada <ada@contoso.com>',
      'Subject: Numbers',
      'MIME-Version: 1.0',
      'Content-Type: multipart/alternative; boundary="a1"',
      '',
      '--a1',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'Hello Bob',
      '--a1',
      'Content-Type: text/html; charset=utf-8',
      'Content-Type: text/plain; charset=utf-8',
      '',
      '<p>Hello Bob</p>',
      '--a1--',
      '',
    ].join(CRLF);
    const { out, result } = await run(message);
    expect(result.outcome).to.equal('signed');
    expect(result.parts.map((p) => p.contentType)).to.deep.equal(['text/plain']);
    expect(result.ambiguousParts).to.deep.equal(['text/html']);
    expect(out).to.include(['Content-Type: text/html; charset=utf-8', 'Content-Type: text/plain; charset=utf-8', '', '<p>Hello Bob</p>', '--a1--', ''].join(CRLF));
  });

  it('passes a calendar invitation whose HTML part cannot be edited, even when html-only is configured', async () => {
    const invitation = calendarInvitation(['Content-Type: text/html; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', '<p>Caf\xe9?</p>'], ['DKIM-Signature: v=1; a=rsa-sha256; d=contoso.com; s=s1; bh=abc; b=def']);
    const config = org({ options: { ...org().options, calendar: 'html-only' } });
    const { out, result } = await run(invitation, { config });
    // the HTML bytes are not UTF-8: nothing would be signed, so the stamp must not say so
    expect(result).to.include({ outcome: 'passed', reason: 'calendar' });
    expect(withoutFirstField(out)).to.equal(invitation);
  });

  it('signs a message with an attached .ics file like any other', async () => {
    const input = [
      'From: ada@contoso.com',
      'Subject: Conference dates',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="m"',
      '',
      '--m',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'The dates are in the attached file.',
      '--m',
      'Content-Type: text/calendar; charset=utf-8; name="conference.ics"',
      'Content-Disposition: attachment; filename="conference.ics"',
      '',
      'BEGIN:VCALENDAR',
      'METHOD:PUBLISH',
      'END:VCALENDAR',
      '--m--',
      '',
    ].join(CRLF);
    const { out, result } = await run(input);
    expect(result.outcome).to.equal('signed');
    expect(out).to.include('BEGIN:VCALENDAR' + CRLF + 'METHOD:PUBLISH' + CRLF + 'END:VCALENDAR' + CRLF + '--m--');
  });

  it('matches body keywords in the new text only, not in the quoted thread', async () => {
    const config = org({}, [{ id: 'offer', enabled: true, match: { bodyContains: ['special offer'] }, template: 'default' }]);
    const quoted = ['From: ada@contoso.com', 'Subject: RE: hello', 'Content-Type: text/plain; charset=utf-8', '', 'Thanks!', '', 'On Mon, 23 Nov 2026, Bob <bob@fabrikam.example> wrote:', '> Our special offer', ''].join(CRLF);
    expect((await run(quoted, { config })).result).to.include({ outcome: 'passed', reason: 'no-rule' });
    const fresh = quoted.replace('Thanks!', 'Here is our Special Offer.');
    const { out, result } = await run(fresh, { config });
    expect(result.outcome).to.equal('signed');
    expect(out).to.include('Here is our Special Offer.' + CRLF + CRLF + '-- ' + CRLF + 'Ada Lovelace');
  });
  describe("a mail app's sign-off (options.replaceSignOffs)", () => {
    // iOS Mail's plain-text reply, quoted-printable with a soft break inside the sign-off
    const iphoneReply = [
      'From: ada@contoso.com',
      'Subject: Re: Test',
      'Content-Type: text/plain; charset=us-ascii',
      'Content-Transfer-Encoding: quoted-printable',
      'X-Mailer: iPhone Mail (9B176)',
      '',
      'Hello',
      '',
      'Sent from my iPh=',
      'one',
      '',
      'On Apr 3, 2012, at 4:19 PM, bob <bob@fabrikam.example> wr=',
      'ote:',
      '',
      '> Hi',
      '',
    ].join(CRLF);
    const replacing = org({ options: { ...org().options, replaceSignOffs: true } });

    it('the signature takes its place; the quote stays below, byte for byte', async () => {
      const { out, result } = await run(iphoneReply, { config: replacing });
      expect(result.outcome).to.equal('signed');
      expect(result.parts.map((p) => p.placement)).to.deep.equal(['sign-off']);
      const parsed = await simpleParser(out);
      expect(parsed.text).not.to.include('Sent from my iPhone');
      expect(parsed.text).to.match(/^Hello\n\nAda Lovelace \| Contoso\n\nConfidential\.\n\nOn Apr 3, 2012, at 4:19 PM, bob <bob@fabrikam.example> wrote:\n\n> Hi\n?$/);
      expect(out).to.include('wr=' + CRLF + 'ote:' + CRLF + CRLF + '> Hi' + CRLF);
    });

    it('left where it is when the organization did not ask for it', async () => {
      const { out, result } = await run(iphoneReply);
      expect(result.parts.map((p) => p.placement)).to.deep.equal(['above-quote']);
      expect((await simpleParser(out)).text).to.include('Sent from my iPhone');
    });

    it('left where it is when the message gets no signature, only a disclaimer', async () => {
      const { out, result } = await run(iphoneReply.replace('From: ada@', 'From: scanner@'), { config: replacing, from: 'scanner@contoso.com' });
      expect(result.outcome).to.equal('signed');
      expect(result.templateId).to.equal(undefined);
      expect(result.parts.map((p) => p.placement)).to.deep.equal(['above-quote']);
      const text = (await simpleParser(out)).text!;
      expect(text).to.include('Sent from my iPhone');
      expect(text.indexOf('Confidential.')).to.be.above(text.indexOf('Sent from my iPhone'));
    });

    it("the organization's own sign-offs too", async () => {
      const config = org({ options: { ...org().options, replaceSignOffs: true, signOffs: ['Sent with Contoso Field App'] } });
      const message = iphoneReply.replace('Sent from my iPh=' + CRLF + 'one', 'Sent with Contoso Field App');
      const { out, result } = await run(message, { config });
      expect(result.parts.map((p) => p.placement)).to.deep.equal(['sign-off']);
      expect((await simpleParser(out)).text).not.to.include('Contoso Field App');
    });
  });
  describe('plain text given an HTML alternative (options.plainTextToHtml)', () => {
    const plainText = ['From: ada@contoso.com', 'Subject: Lunch', 'Content-Type: text/plain; charset=us-ascii', '', 'Lunch on Friday?', '', 'Sent from my iPhone', ''].join(CRLF);
    const converting = org({ options: { ...org().options, plainTextToHtml: true } });

    it('the text part gets the text signature, the HTML made from it the HTML one', async () => {
      const { out, result } = await run(plainText, { config: converting });
      expect(result.outcome).to.equal('signed');
      expect(result.parts.map((p) => [p.contentType, p.converted ?? false])).to.deep.equal([['text/plain', false], ['text/html', true]]);
      const parsed = await simpleParser(out);
      expect(parsed.text).to.match(/^Lunch on Friday\?\n\nSent from my iPhone\n\n-- \nAda Lovelace\nAnalyst\n\nConfidential\.\n?$/);
      const html = String(parsed.html);
      expect(html).to.match(/Lunch on Friday\?<br>\r?\n<br>\r?\nSent from my iPhone<br>\r?\n<br>\r?\n<div class="signet-[0-9a-f]{12} signet-[0-9a-f]{12}-[0-9a-f]{8}" id="[^"]+"><p class="sig"><b>Ada Lovelace<\/b><br>Analyst<\/p><p class="disclaimer">Confidential\.<\/p><\/div>/);
    });

    it('with replaceSignOffs, the sign-off goes from both', async () => {
      const config = org({ options: { ...org().options, plainTextToHtml: true, replaceSignOffs: true } });
      const { out, result } = await run(plainText, { config });
      expect(result.parts.map((p) => p.placement)).to.deep.equal(['sign-off', 'sign-off']);
      const parsed = await simpleParser(out);
      expect(parsed.text).not.to.include('iPhone');
      expect(String(parsed.html)).not.to.include('iPhone');
      expect(String(parsed.html)).to.include('Ada Lovelace');
    });

    it('a hostile display name stays text in the converted HTML too', async () => {
      const { out } = await run(plainText.replace('From: ada@', 'From: mallory@'), { config: converting, from: 'mallory@contoso.com' });
      const html = String((await simpleParser(out)).html);
      expect(html).not.to.match(/<script|<img/i);
      expect(html).to.include('&lt;script&gt;alert(1)&lt;/script&gt;');
    });

    it('not without the option, not for a disclaimer alone, not when the message has an HTML part', async () => {
      const off = await run(plainText);
      expect(off.result.parts.map((p) => p.contentType)).to.deep.equal(['text/plain']);
      expect(off.out).not.to.include('multipart/alternative');
      const disclaimerOnly = await run(plainText.replace('From: ada@', 'From: scanner@'), { config: converting, from: 'scanner@contoso.com' });
      expect(disclaimerOnly.result).to.include({ outcome: 'signed', templateId: undefined });
      expect(disclaimerOnly.result.parts.map((p) => p.contentType)).to.deep.equal(['text/plain']);
      const withHtml = await run(htmlMessage('<p>Hello</p>'), { config: converting });
      expect(withHtml.result.parts.map((p) => p.converted ?? false)).to.deep.equal([false]);
    });
  });
  it("finds the quoted thread by the organization's own separators: the reply template above it, the kind a reply", async () => {
    const message = [
      'From: ada@contoso.com',
      'Subject: podklady',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      'Ahoj Dano,',
      '',
      'posílám podklady.',
      '',
      '-------- Původní zpráva --------',
      'Od: Dana Novák <dana@fabrikam.example>',
      '',
      'Pošli mi je prosím.',
      '',
    ].join(CRLF);
    const utf8 = Buffer.from(message, 'utf8').toString('latin1');
    const plain = await run(utf8);
    expect(plain.result).to.include({ kind: 'new', templateId: 'default' });
    const config = org({ options: { ...org().options, separators: ['-------- Původní zpráva --------'] } });
    const { out, result } = await run(utf8, { config });
    expect(result).to.include({ kind: 'reply', templateId: 'short' });
    expect(result.parts.map((p) => p.placement)).to.deep.equal(['above-quote']);
    const text = (await simpleParser(Buffer.from(out, 'latin1'))).text!;
    expect(text).to.match(/posílám podklady\.\n\nAda Lovelace \| Contoso\n\nConfidential\.\n\n-------- Původní zpráva --------/);
  });
  it("leaves mail an add-in already signed without a second signature (the README's first rule with bodyContains, noSignature and stop)", async () => {
    const rules: RuleSource[] = [
      { id: 'addin-signed', enabled: true, match: { bodyContains: ['Sent with the Acme signature add-in'] }, noSignature: true, stop: true, addons: ['disclaimer'] },
      { id: 'everyone', enabled: true, match: { senderDomains: ['contoso.com'] }, template: 'default' },
    ];
    const config = org({}, rules);
    const signedByAddin = htmlMessage('<p>Hello</p><div>Ada Lovelace<br>Sent with the Acme signature add-in</div>');
    const { out, result } = await run(signedByAddin, { config });
    expect(result).to.include({ outcome: 'signed', templateId: undefined });
    expect(result.ruleIds).to.deep.equal(['addin-signed']);
    expect(out).not.to.include('class="sig"');
    expect(out).to.include('Confidential.');
    const plain = await run(htmlMessage('<p>Hello</p>'), { config });
    expect(plain.result).to.include({ templateId: 'default' });
  });
});
