// The relay at the edges of a transaction: addresses with international
// domains and the null sender, a client that leaves while the downstream is
// still answering, and a session that reaches its time limit mid-transaction.
// The downstream here records the exact command lines it receives.
import { expect } from 'chai';
import { ManualSmtp } from '../e2e/support/smtp-client';
import { testPki } from '../support/certs';
import type { RelayLimits } from '../../appliance/src/smtp';
import type { Engine } from '../../appliance/src/signature';
import { sampleMessage, startHarness, type Harness } from './support/harness';
import { CLOSE, startWireDownstream, type WireDownstream } from './support/wire-downstream';

// no lone-dot line: these tests write DATA by hand, without dot-stuffing
const BODY = 'Hello Bob,\r\n\r\nsee you.\r\n';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100 && !condition(); i++) await sleep(20);
  expect(condition(), what).to.equal(true);
}

describe('relay: addresses, the null sender, and transactions cut short', function () {
  this.timeout(20_000);
  let h: Harness | undefined;
  let wire: WireDownstream | undefined;

  afterEach(async () => {
    await h?.close();
    await wire?.close();
    h = undefined;
    wire = undefined;
  });

  async function start(options: { acceptedDomains?: string[]; extensions?: string[]; limits?: Partial<RelayLimits>; tenantId?: string; reuse?: number; engine?: Engine } = {}) {
    wire = await startWireDownstream(await testPki(), options.extensions);
    h = await startHarness({ downstreamPort: wire.port, acceptedDomains: options.acceptedDomains, limits: options.limits, tenantId: options.tenantId, reuse: options.reuse, engine: options.engine });
    return start.again();
  }
  /** Another client session on the relay start() started. */
  start.again = () => ManualSmtp.open(h!.port, { key: h!.pki.exoClient.key, cert: h!.pki.exoClient.cert, ca: h!.pki.ca.cert, servername: 'relay.test.invalid' });

  const downstreamErrors = async () => (await h!.metrics.registry.getSingleMetric('signet_downstream_errors_total')!.get()).values.reduce((n, v) => n + v.value, 0);

  it('accepts a sender of an accepted IDN domain and sends both domains downstream in their ASCII form', async () => {
    const smtp = await start({ acceptedDomains: ['contoso.com', 'xn--bcher-kva.example'] });
    expect(await smtp.command('MAIL FROM:<anna@xn--bcher-kva.example>')).to.match(/^250/);
    expect(await smtp.command('RCPT TO:<hans@xn--mnchen-3ya.de>')).to.match(/^250/);
    expect(await smtp.command('DATA')).to.match(/^354/);
    expect(await smtp.command(`${sampleMessage({ from: 'anna@xn--bcher-kva.example', to: ['hans@xn--mnchen-3ya.de'], body: BODY })}\r\n.`)).to.match(/^250/);
    smtp.destroy();
    const commands = wire!.sessions.flatMap((s) => s.commands);
    expect(commands).to.include('MAIL FROM:<anna@xn--bcher-kva.example>');
    expect(commands).to.include('RCPT TO:<hans@xn--mnchen-3ya.de>');
    expect(wire!.sessions.flatMap((s) => s.messages)).to.have.length(1);
  });

  it('checks and forwards a domain as the client wrote it, even an xn-- label that decodes onto another domain', async () => {
    const smtp = await start();
    // "xn--contoso-nka" is con<soft hyphen>toso: decoded and normalised it would read as contoso.com
    expect(await smtp.command('MAIL FROM:<a@xn--contoso-nka.com>')).to.match(/^550 5\.7\.1/);
    expect(await smtp.command('MAIL FROM:<adele@contoso.com>')).to.match(/^250/);
    const odd = ['b@xn--ontoso-2x68a.com', 'b@xn--ss-ufa.de', 'b@host.xn--ss-ufa.example.com', 'b@xn--a.com', 'b@XN--Bcher-kva.example'];
    for (const to of odd) expect(await smtp.command(`RCPT TO:<${to}>`), to).to.match(/^250/);
    expect(await smtp.command('DATA')).to.match(/^354/);
    expect(await smtp.command(`${sampleMessage({ body: BODY })}\r\n.`)).to.match(/^250/);
    smtp.destroy();
    const commands = wire!.sessions.flatMap((s) => s.commands);
    expect(commands.filter((c) => c.startsWith('MAIL'))).to.deep.equal(['MAIL FROM:<adele@contoso.com>']);
    expect(commands.filter((c) => c.startsWith('RCPT'))).to.deep.equal(odd.map((to) => `RCPT TO:<${to}>`));
  });

  it('still refuses a sender of an IDN domain that is not accepted', async () => {
    const smtp = await start();
    expect(await smtp.command('MAIL FROM:<anna@xn--bcher-kva.example>')).to.match(/^550 5\.7\.1/);
    smtp.destroy();
  });

  it('refuses (553 5.6.7) an address that needs SMTPUTF8 when the downstream does not offer it, and passes it when it does', async () => {
    let smtp = await start();
    expect(await smtp.command('MAIL FROM:<adele@contoso.com> SMTPUTF8')).to.match(/^250/);
    expect(await smtp.command('RCPT TO:<jörg@example.net>')).to.match(/^553 5\.6\.7/);
    expect(await smtp.command('RCPT TO:<joerg@example.net>')).to.match(/^250/);
    expect(wire!.sessions.flatMap((s) => s.commands).filter((c) => c.startsWith('RCPT'))).to.deep.equal(['RCPT TO:<joerg@example.net>']);
    // a transaction whose only recipients were refused here counts once as a message, as one refused downstream does
    const messages = async () => (await h!.metrics.registry.getSingleMetric('signet_messages_total')!.get()).values.filter((v) => v.value > 0).map((v) => [v.labels, v.value]);
    expect(await smtp.command('RSET')).to.match(/^250/);
    // one recipient was accepted: not a refused message; the client ended it before DATA
    expect(await messages()).to.deep.equal([[{ outcome: 'abandoned', reason: 'upstream-reset' }, 1]]);
    expect(await smtp.command('MAIL FROM:<adele@contoso.com> SMTPUTF8')).to.match(/^250/);
    expect(await smtp.command('RCPT TO:<jörg@example.net>')).to.match(/^553 5\.6\.7/);
    expect(await smtp.command('RCPT TO:<zoë@example.org>')).to.match(/^553 5\.6\.7/);
    expect(await smtp.command('RSET')).to.match(/^250/);
    expect(await messages()).to.have.deep.members([
      [{ outcome: 'abandoned', reason: 'upstream-reset' }, 1],
      [{ outcome: 'rejected', reason: 'non-ascii-address' }, 1],
    ]);
    smtp.destroy();
    await h!.close();
    await wire!.close();

    smtp = await start({ extensions: ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES'] });
    expect(await smtp.command('MAIL FROM:<adele@contoso.com> SMTPUTF8')).to.match(/^250/);
    expect(await smtp.command('RCPT TO:<jörg@münchen.de>')).to.match(/^250/);
    smtp.destroy();
    const commands = wire!.sessions.flatMap((s) => s.commands);
    expect(commands).to.include('MAIL FROM:<adele@contoso.com> SMTPUTF8');
    expect(commands).to.include('RCPT TO:<jörg@münchen.de>');
  });

  it('keeps an international address a downstream error quotes out of the logs', async () => {
    const smtp = await start({ extensions: ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES'] });
    // a reply nothing asked for fails the session; its text becomes the logged error
    wire!.answers.rcpt = () => '250 2.1.5 OK\r\n550 5.1.1 <jörg@münchen.de>, <"anna smith"@fabrikam.com> and <ops@[192.0.2.7]> unknown';
    expect(await smtp.command('MAIL FROM:<adele@contoso.com> SMTPUTF8')).to.match(/^250/);
    expect(await smtp.command('RCPT TO:<jörg@münchen.de>')).to.match(/^250/);
    await sleep(100);
    expect(await smtp.command('RCPT TO:<anna@fabrikam.com>')).to.match(/^451 4\.4\.2/);
    smtp.destroy();
    const logged = h!.logs.filter((l) => l.event === 'downstream-error');
    expect(logged).to.have.length(1);
    expect(logged[0]!.error).to.include('<<address>>');
    for (const leaked of ['jörg', 'münchen', 'anna smith', 'ops@', '192.0.2.7']) expect(JSON.stringify(h!.logs)).to.not.include(leaked);
  });

  it('passes DSN ENVID and ORCPT on as the client encoded them, "+XX" escapes of any byte included', async () => {
    const smtp = await start({ extensions: ['PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES', 'DSN'] });
    expect(await smtp.command('MAIL FROM:<adele@contoso.com> RET=HDRS ENVID=id+2B1+3D+E9+20x')).to.match(/^250/);
    expect(await smtp.command('RCPT TO:<bob@fabrikam.com> NOTIFY=FAILURE ORCPT=rfc822;b+2Bo+FCb@fabrikam.com')).to.match(/^250/);
    smtp.destroy();
    const commands = wire!.sessions.flatMap((s) => s.commands);
    expect(commands).to.include('MAIL FROM:<adele@contoso.com> RET=HDRS ENVID=id+2B1+3D+E9+20x');
    expect(commands).to.include('RCPT TO:<bob@fabrikam.com> NOTIFY=FAILURE ORCPT=rfc822;b+2Bo+FCb@fabrikam.com');
  });

  describe('the downstream failing at MAIL or DATA (each answered so that nothing is lost)', () => {
    const counted = async () => Object.fromEntries((await h!.metrics.registry.getSingleMetric('signet_messages_total')!.get()).values.filter((v) => v.value > 0).map((v) => [`${v.labels.outcome}/${v.labels.reason}`, v.value]));
    const delivered = () => wire!.sessions.flatMap((s) => s.messages);

    async function deliver(smtp: ManualSmtp): Promise<string> {
      expect(await smtp.command('MAIL FROM:<adele@contoso.com>')).to.match(/^250/);
      expect(await smtp.command('RCPT TO:<bob@fabrikam.com>')).to.match(/^250/);
      expect(await smtp.command('DATA')).to.match(/^354/);
      return smtp.command(`${sampleMessage({ body: BODY })}\r\n.`);
    }

    it('opens a new downstream session when a reused one answers MAIL with 421 or drops it, and the client never notices', async () => {
      const smtp = await start({ reuse: 2 });
      expect(await deliver(smtp)).to.match(/^250/);
      // the pooled session now says it is closing (a server's idle limit), then one drops at MAIL
      for (const answer of ['421 4.4.2 idle too long', CLOSE]) {
        let first = true;
        wire!.answers.mail = () => (first ? ((first = false), answer) : '250 2.1.0 OK');
        expect(await deliver(smtp)).to.match(/^250/);
      }
      smtp.destroy();
      expect(delivered()).to.have.length(3);
      expect(wire!.sessions).to.have.length(3);
      expect(await counted()).to.deep.equal({ 'signed/signed': 3 });
    });

    it('retries on a new downstream session, not on another pooled one, when every pooled session has gone stale together', async () => {
      const a = await start({ reuse: 4 });
      const b = await start.again();
      // two transactions at once: two downstream sessions, both pooled afterwards
      await Promise.all([a, b].map(async (smtp) => expect(await deliver(smtp)).to.match(/^250/)));
      expect(wire!.sessions).to.have.length(2);
      // the downstream has timed both out on its side: a MAIL on either is answered 421
      const stale = new Set(wire!.sessions);
      wire!.answers.mail = (line) => (wire!.sessions.some((s) => stale.has(s) && !s.closed && s.commands.at(-1) === line) ? '421 4.4.2 idle timeout, closing' : '250 2.1.0 OK');
      expect(await deliver(a)).to.match(/^250/);
      a.destroy();
      b.destroy();
      expect(wire!.sessions).to.have.length(3);
      expect(wire!.sessions[2]!.messages).to.have.length(1);
      expect(await counted()).to.deep.equal({ 'signed/signed': 3 });
    });

    it('never sends mail in the clear to a downstream without STARTTLS: refused TLS is 451 4.4.1, and no MAIL goes out', async () => {
      wire = await startWireDownstream(await testPki(), undefined, { offerStartTls: false });
      h = await startHarness({ downstreamPort: wire.port });
      const smtp = await start.again();
      expect(await smtp.command('MAIL FROM:<adele@contoso.com>')).to.match(/^451 4\.4\.1/);
      smtp.destroy();
      const commands = wire.sessions.flatMap((s) => s.commands.map((c) => c.split(' ')[0]!.toUpperCase()));
      expect(commands.length).to.be.greaterThan(0);
      // it asks for TLS all the same (and is refused), and sends nothing else
      expect(commands.filter((c) => c !== 'EHLO' && c !== 'QUIT' && c !== 'STARTTLS')).to.deep.equal([]);
      expect(await counted()).to.deep.equal({ 'tempfailed/downstream-tls': 1 });
    });

    it('answers 451 4.4.2 when a new downstream session drops at MAIL, and delivers nothing', async () => {
      const smtp = await start();
      wire!.answers.mail = () => CLOSE;
      expect(await smtp.command('MAIL FROM:<adele@contoso.com>')).to.match(/^451 4\.4\.2/);
      smtp.destroy();
      expect(wire!.sessions).to.have.length(1); // not tried again: the session was not a reused one
      expect(await counted()).to.deep.equal({ 'tempfailed/downstream-dropped': 1 });
    });

    it('mirrors a downstream that refuses DATA (5xx stays 5xx, 4xx stays 4xx) and answers 451 4.4.2 when it drops at DATA; nothing delivered', async () => {
      const smtp = await start();
      const answers = ['554 5.6.0 content refused', '452 4.3.1 insufficient storage', CLOSE];
      let i = 0;
      wire!.answers.data = () => answers[i++]!;
      for (const expected of [/^554 5\.6\.0 content refused/, /^452 4\.3\.1 insufficient storage/, /^451 4\.4\.2/]) {
        expect(await smtp.command('MAIL FROM:<adele@contoso.com>')).to.match(/^250/);
        expect(await smtp.command('RCPT TO:<bob@fabrikam.com>')).to.match(/^250/);
        // smtp-server answers 354 at once; the downstream's answer to DATA comes after the client's final dot
        expect(await smtp.command('DATA')).to.match(/^354/);
        expect(await smtp.command(`${sampleMessage({ body: BODY })}\r\n.`)).to.match(expected);
      }
      smtp.destroy();
      expect(delivered()).to.have.length(0);
      expect(await counted()).to.deep.equal({ 'rejected/downstream-data': 1, 'tempfailed/downstream-data': 1, 'tempfailed/downstream-dropped': 1 });
    });

    it('refuses (553 5.6.7) a sender address that needs SMTPUTF8 when the downstream does not offer it, at MAIL', async () => {
      const smtp = await start({ acceptedDomains: ['contoso.com'] });
      expect(await smtp.command('MAIL FROM:<jörg@contoso.com> SMTPUTF8')).to.match(/^553 5\.6\.7/);
      smtp.destroy();
      expect(wire!.sessions.flatMap((s) => s.commands).some((c) => c.startsWith('MAIL'))).to.equal(false);
      expect(await counted()).to.deep.equal({ 'rejected/non-ascii-address': 1 });
    });

    it('answers 451 4.3.0 when the engine cannot start on a message, and cuts the downstream before its final dot', async () => {
      const failing: Engine = {
        orgId: 'test-org',
        configVersion: 'v1',
        process() {
          throw new Error('engine refused to start');
        },
      };
      const smtp = await start({ engine: failing });
      expect(await deliver(smtp)).to.match(/^451 4\.3\.0/);
      smtp.destroy();
      await until(() => wire!.sessions.every((s) => s.closed), 'the downstream session is closed');
      expect(delivered()).to.have.length(0);
      expect(await counted()).to.deep.equal({ 'tempfailed/engine-error': 1 });
      expect(h!.logs.filter((l) => l.event === 'engine-error')).to.have.length(1);
    });
  });

  describe('a message the downstream cannot carry as it is (no 8BITMIME, no SMTPUTF8)', () => {
    const counted = async () => Object.fromEntries((await h!.metrics.registry.getSingleMetric('signet_messages_total')!.get()).values.filter((v) => v.value > 0).map((v) => [`${v.labels.outcome}/${v.labels.reason}`, v.value]));
    const delivered = () => wire!.sessions.flatMap((s) => s.messages);

    async function transaction(smtp: ManualSmtp, mail: string, message: string): Promise<string> {
      expect(await smtp.command(mail)).to.match(/^250/);
      expect(await smtp.command('RCPT TO:<bob@fabrikam.com>')).to.match(/^250/);
      expect(await smtp.command('DATA')).to.match(/^354/);
      return smtp.command(`${message}\r\n.`);
    }

    it('defers (451 4.6.3) 8-bit data to a downstream without 8BITMIME, and relays 7-bit data to it without BODY=', async () => {
      const smtp = await start({ extensions: ['PIPELINING', 'ENHANCEDSTATUSCODES'] });
      const eightBit = sampleMessage({ extraHeaders: 'Content-Transfer-Encoding: 8bit', body: 'Grüße aus Köln\r\n' });
      expect(await transaction(smtp, 'MAIL FROM:<adele@contoso.com> BODY=8BITMIME', eightBit)).to.match(/^451 4\.6\.3 /);
      expect(delivered()).to.have.length(0);
      // the next transaction on the same session: 7-bit data goes through
      expect(await transaction(smtp, 'MAIL FROM:<adele@contoso.com> BODY=8BITMIME', sampleMessage({ body: BODY }))).to.match(/^250/);
      smtp.destroy();
      expect(delivered()).to.have.length(1);
      expect(delivered()[0]!.every((b) => b < 0x80)).to.equal(true);
      expect(wire!.sessions.flatMap((s) => s.commands).filter((c) => c.startsWith('MAIL'))).to.deep.equal(['MAIL FROM:<adele@contoso.com>', 'MAIL FROM:<adele@contoso.com>']);
      expect(await counted()).to.include({ 'tempfailed/downstream-no-8bitmime': 1 });
      const warned = h!.logs.filter((l) => l.event === 'downstream-unsupported');
      expect(warned.map((l) => l.extension)).to.deep.equal(['8BITMIME']);
      expect(JSON.stringify(h!.logs)).to.not.include('Köln');
    });

    it('relays 8-bit data to a downstream with 8BITMIME unchanged', async () => {
      const smtp = await start();
      const eightBit = sampleMessage({ extraHeaders: 'Content-Transfer-Encoding: 8bit', body: 'Grüße aus Köln\r\n' });
      expect(await transaction(smtp, 'MAIL FROM:<adele@contoso.com> BODY=8BITMIME', eightBit)).to.match(/^250/);
      smtp.destroy();
      expect(delivered()).to.have.length(1);
      expect(delivered()[0]!.toString('utf8')).to.include('Grüße aus Köln');
      expect(wire!.sessions.flatMap((s) => s.commands)).to.include('MAIL FROM:<adele@contoso.com> BODY=8BITMIME');
    });

    it('defers (451 4.6.9) UTF-8 header fields of an SMTPUTF8 transaction when the downstream does not offer SMTPUTF8', async () => {
      let smtp = await start();
      const utf8Subject = sampleMessage({ subject: 'Grüße aus Köln', extraHeaders: 'Content-Transfer-Encoding: 8bit', body: 'Grüße\r\n' });
      expect(await transaction(smtp, 'MAIL FROM:<adele@contoso.com> BODY=8BITMIME SMTPUTF8', utf8Subject)).to.match(/^451 4\.6\.9 /);
      expect(delivered()).to.have.length(0);
      // UTF-8 only in an 8-bit body needs no SMTPUTF8: it goes through (as 8BITMIME allows)
      const utf8Body = sampleMessage({ extraHeaders: 'Content-Transfer-Encoding: 8bit', body: 'Grüße\r\n' });
      expect(await transaction(smtp, 'MAIL FROM:<adele@contoso.com> BODY=8BITMIME SMTPUTF8', utf8Body)).to.match(/^250/);
      smtp.destroy();
      expect(delivered()).to.have.length(1);
      expect(await counted()).to.include({ 'tempfailed/downstream-no-smtputf8': 1 });

      // the header block ends where the engine says it ends: a message that starts with its empty line
      // (no header fields), and one whose header fields end in LF LF with a CRLF CRLF later in the body
      const noHeaders = '\r\nGrüße\r\n\r\nmore';
      const lfHeaders = 'From: Adele <adele@contoso.com>\nSubject: plain\nContent-Transfer-Encoding: 8bit\n\nGrüße\r\n\r\nmore';
      smtp = await start.again();
      for (const message of [noHeaders, lfHeaders]) expect(await transaction(smtp, 'MAIL FROM:<adele@contoso.com> BODY=8BITMIME SMTPUTF8', message), JSON.stringify(message)).to.match(/^250/);
      smtp.destroy();
      expect(delivered()).to.have.length(3);
      await h!.close();
      await wire!.close();

      // a downstream that offers SMTPUTF8 gets the message as it is
      smtp = await start({ extensions: ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES'] });
      expect(await transaction(smtp, 'MAIL FROM:<adele@contoso.com> BODY=8BITMIME SMTPUTF8', utf8Subject)).to.match(/^250/);
      smtp.destroy();
      expect(delivered()).to.have.length(1);
      expect(delivered()[0]!.toString('utf8')).to.include('Subject: Grüße aus Köln');
    });
  });

  it('mirrors each recipient refusal with its enhanced code, however the downstream words it', async () => {
    const smtp = await start();
    const answers: Array<[string, RegExp]> = [
      ['550-5.1.1 first line\r\n550 5.1.1 <jane@fabrikam.com> unknown', /^550 5\.1\.1 <jane@fabrikam\.com> unknown$/],
      ['550 5.1.10', /^550 5\.1\.10 Refused by the downstream$/], // an enhanced code with no text after it
      ['452 4.5.3', /^452 4\.5\.3 Refused by the downstream$/],
      ['550 4.1.1 class does not match', /^550 5\.0\.0 class does not match$/],
      ['450 mailbox busy', /^450 4\.0\.0 mailbox busy$/],
    ];
    let i = 0;
    wire!.answers.rcpt = () => answers[i++]![0];
    expect(await smtp.command('MAIL FROM:<adele@contoso.com>')).to.match(/^250/);
    for (const [n, [, expected]] of answers.entries()) expect(await smtp.command(`RCPT TO:<r${n}@fabrikam.com>`)).to.match(expected);
    smtp.destroy();
  });

  it('relays a message that is all header fields (no empty line, no body), stamped, with its fields as they were', async () => {
    const smtp = await start();
    expect(await smtp.command('MAIL FROM:<adele@contoso.com>')).to.match(/^250/);
    expect(await smtp.command('RCPT TO:<bob@fabrikam.com>')).to.match(/^250/);
    expect(await smtp.command('DATA')).to.match(/^354/);
    const fields = 'From: Adele <adele@contoso.com>\r\nTo: bob@fabrikam.com\r\nSubject: headers only\r\nMessage-ID: <only@contoso.com>';
    expect(await smtp.command(`${fields}\r\n.`)).to.match(/^250/);
    smtp.destroy();
    const delivered = wire!.sessions.flatMap((s) => s.messages);
    expect(delivered).to.have.length(1);
    const text = delivered[0]!.toString('latin1');
    expect(text).to.match(/^X-Signet-Processed: [^\r]*\r\n/);
    expect(text.slice(text.indexOf('\r\n') + 2)).to.equal(`${fields}\r\n`);
  });

  it('relays the null sender (a delivery report cannot be refused back to anyone)', async () => {
    const smtp = await start();
    expect(await smtp.command('MAIL FROM:<>')).to.match(/^250/);
    expect(await smtp.command('RCPT TO:<bob@fabrikam.com>')).to.match(/^250/);
    expect(await smtp.command('DATA')).to.match(/^354/);
    expect(await smtp.command(`${sampleMessage({ from: 'postmaster@contoso.com', body: BODY })}\r\n.`)).to.match(/^250/);
    smtp.destroy();
    expect(wire!.sessions.flatMap((s) => s.commands)).to.include('MAIL FROM:<>');
    expect(wire!.sessions.flatMap((s) => s.messages)).to.have.length(1);
  });

  describe('the tenant a message left (every Microsoft 365 tenant presents the same certificate)', () => {
    const TENANT = '8f4c2d1e-5a6b-4c7d-9e0f-1a2b3c4d5e6f';
    const OTHER = '0b7d3c52-6e1f-4a8b-9c2d-3e4f5a6b7c8d';
    async function sendWith(headers: string[]): Promise<{ replies: string[]; delivered: number }> {
      const smtp = await start({ tenantId: TENANT });
      const replies = [await smtp.command('MAIL FROM:<adele@contoso.com>'), await smtp.command('RCPT TO:<bob@fabrikam.com>'), await smtp.command('DATA')];
      replies.push(await smtp.command(`${headers.map((l) => `${l}\r\n`).join('')}${sampleMessage({ body: BODY })}\r\n.`));
      smtp.destroy();
      return { replies, delivered: wire!.sessions.flatMap((s) => s.messages).length };
    }

    it("relays a message stamped with the organization's tenant id (any case, folded)", async () => {
      const { replies, delivered } = await sendWith([`X-MS-Exchange-CrossTenant-Id:`, ` ${TENANT.toUpperCase()}`]);
      expect(replies.at(-1)).to.match(/^250/);
      expect(delivered).to.equal(1);
    });

    it("refuses another tenant's message for good (550 5.7.1), and defers one with another tenant's id beside ours; nothing delivered", async () => {
      const cases: Array<[string[], RegExp]> = [
        [[`X-MS-Exchange-CrossTenant-Id: ${OTHER}`], /^550 5\.7\.1 Message is not from this organization's Microsoft 365 tenant/],
        [[`X-MS-Exchange-CrossTenant-Id: ${TENANT}`, `x-ms-exchange-crosstenant-id: ${OTHER}`], /^451 4\.7\.1 /],
      ];
      for (const [headers, answer] of cases) {
        const { replies, delivered } = await sendWith(headers);
        expect(replies.at(-1)).to.match(answer);
        expect(delivered).to.equal(0);
        await h!.close();
        await wire!.close();
      }
      h = undefined;
      wire = undefined;
    });

    it('defers a message without a tenant id (451 4.7.1): a change in how it is stamped must queue mail, not bounce it', async () => {
      const { replies, delivered } = await sendWith([]);
      expect(replies.at(-1)).to.match(/^451 4\.7\.1/);
      expect(delivered).to.equal(0);
      expect(h!.logs.some((l) => l.event === 'tenant-refused')).to.equal(true);
    });
  });

  it('ends the transaction when the client leaves while the downstream answers MAIL: nothing stays counted, drain does not wait', async () => {
    const smtp = await start();
    wire!.answers.mail = async () => {
      await sleep(600);
      return '250 2.1.0 OK';
    };
    smtp.write('MAIL FROM:<adele@contoso.com>\r\n');
    await sleep(150);
    smtp.destroy();
    await until(() => wire!.sessions.some((s) => s.closed), 'the downstream session is closed');
    expect(h!.relay.status().transactions).to.equal(0);
    expect(wire!.sessions.flatMap((s) => s.commands).some((c) => c.startsWith('RCPT') || c === 'DATA')).to.equal(false);
    expect(await downstreamErrors()).to.equal(0);
    const started = Date.now();
    expect(await h!.relay.drain(5000)).to.deep.equal({ finished: true, cut: 0 });
    expect(Date.now() - started).to.be.below(2500);
  });

  it('does not count a client leaving during RCPT as a downstream error', async () => {
    const smtp = await start();
    wire!.answers.rcpt = async () => {
      await sleep(500);
      return '250 2.1.5 OK';
    };
    expect(await smtp.command('MAIL FROM:<adele@contoso.com>')).to.match(/^250/);
    smtp.write('RCPT TO:<bob@fabrikam.com>\r\n');
    await sleep(150);
    smtp.destroy();
    await sleep(700);
    expect(await downstreamErrors()).to.equal(0);
    expect(h!.logs.filter((l) => l.event === 'downstream-error')).to.deep.equal([]);
    expect(h!.relay.status().transactions).to.equal(0);
  });

  it('answers pipelined commands in order when the downstream closes during RCPT: 451 from there on, nothing delivered, counted once; the next transaction goes through', async () => {
    const smtp = await start();
    let n = 0;
    wire!.answers.rcpt = () => (n++ === 1 ? CLOSE : '250 2.1.5 OK');
    smtp.write('MAIL FROM:<adele@contoso.com>\r\nRCPT TO:<a@fabrikam.com>\r\nRCPT TO:<b@fabrikam.com>\r\nRCPT TO:<c@fabrikam.com>\r\nDATA\r\n');
    const replies = [];
    for (let i = 0; i < 5; i++) replies.push(await smtp.reply());
    expect(replies.map((r) => r.slice(0, 9))).to.deep.equal(['250 2.1.0', '250 2.1.5', '451 4.4.2', '451 4.4.2', '354 End d']);
    expect(await smtp.command(`${sampleMessage({ body: BODY })}\r\n.`)).to.match(/^451 4\.4\.2/);
    expect(wire!.sessions.flatMap((s) => s.messages)).to.have.length(0);
    const counted = async () => (await h!.metrics.registry.getSingleMetric('signet_messages_total')!.get()).values.filter((v) => v.value > 0).map((v) => [v.labels.outcome, v.labels.reason, v.value]);
    expect(await counted()).to.deep.equal([['tempfailed', 'downstream-dropped', 1]]);
    expect(await smtp.command('MAIL FROM:<adele@contoso.com>')).to.match(/^250/);
    expect(await smtp.command('RCPT TO:<a@fabrikam.com>')).to.match(/^250/);
    expect(await smtp.command('DATA')).to.match(/^354/);
    expect(await smtp.command(`${sampleMessage({ body: BODY })}\r\n.`)).to.match(/^250/);
    smtp.destroy();
    expect(wire!.sessions.flatMap((s) => s.messages)).to.have.length(1);
    expect(h!.relay.status().transactions).to.equal(0);
  });

  it('does not count a client leaving while the downstream answers DATA as a downstream error; nothing delivered', async () => {
    const smtp = await start();
    wire!.answers.data = async () => {
      await sleep(500);
      return '354 go ahead';
    };
    expect(await smtp.command('MAIL FROM:<adele@contoso.com>')).to.match(/^250/);
    expect(await smtp.command('RCPT TO:<bob@fabrikam.com>')).to.match(/^250/);
    expect(await smtp.command('DATA')).to.match(/^354/);
    smtp.write(`${sampleMessage({ body: BODY })}\r\n`);
    await sleep(150);
    smtp.destroy();
    await until(() => wire!.sessions.every((s) => s.closed), 'the downstream session is closed');
    await sleep(100);
    expect(await downstreamErrors()).to.equal(0);
    expect(h!.logs.filter((l) => l.event === 'downstream-error')).to.deep.equal([]);
    expect(h!.logs.filter((l) => l.event === 'transaction').map((l) => l.reason)).to.deep.equal(['upstream-dropped']);
    expect(wire!.sessions.flatMap((s) => s.messages)).to.have.length(0);
    expect(h!.relay.status().transactions).to.equal(0);
  });

  it('keeps the transaction through an EHLO or HELO refused for its syntax (it resets nothing), and ends it on one that is accepted', async () => {
    const smtp = await start();
    expect(await smtp.command('MAIL FROM:<adele@contoso.com>')).to.match(/^250/);
    expect(await smtp.command('RCPT TO:<bob@fabrikam.com>')).to.match(/^250/);
    expect(await smtp.command('EHLO')).to.match(/^501/);
    expect(await smtp.command('HELO two words')).to.match(/^501/);
    expect(await smtp.command('DATA')).to.match(/^354/);
    expect(await smtp.command(`${sampleMessage({ body: BODY })}\r\n.`)).to.match(/^250/);
    expect(wire!.sessions.flatMap((s) => s.messages)).to.have.length(1);

    expect(await smtp.command('MAIL FROM:<adele@contoso.com>')).to.match(/^250/);
    expect(await smtp.command('EHLO exo.test')).to.match(/^250/);
    await until(() => wire!.sessions.every((s) => s.closed), 'the downstream transaction is dropped');
    expect(h!.relay.status().transactions).to.equal(0);
    smtp.destroy();
  });

  it('lets a transaction in progress finish when the session reaches its time limit, then ends the session (421 4.4.2)', async () => {
    const smtp = await start({ limits: { sessionMs: 800 } });
    expect(await smtp.command('MAIL FROM:<adele@contoso.com>')).to.match(/^250/);
    expect(await smtp.command('RCPT TO:<bob@fabrikam.com>')).to.match(/^250/);
    await sleep(1100); // past the limit, between RCPT and DATA
    expect(smtp.closed).to.equal(false);
    expect(await smtp.command('DATA')).to.match(/^354/);
    const replies = [await smtp.command(`${sampleMessage({ body: BODY })}\r\n.`), await smtp.reply()];
    expect(replies[0], replies.join(' | ')).to.match(/^250/);
    expect(replies[1], replies.join(' | ')).to.match(/^421 4\.4\.2 Session time limit reached/);
    smtp.destroy();
    expect(wire!.sessions.flatMap((s) => s.messages)).to.have.length(1);
  });

  it('does not let a transaction kept open without DATA outlive the limit: one idle period more, then 421', async () => {
    const smtp = await start({ limits: { sessionMs: 800, idleMs: 1500 } });
    expect(await smtp.command('MAIL FROM:<adele@contoso.com>')).to.match(/^250/);
    expect(await smtp.command('RCPT TO:<bob@fabrikam.com>')).to.match(/^250/);
    // NOOPs keep the connection from idling out; past the limit plus one idle period the session ends anyway
    let ended = '';
    for (let i = 0; i < 12 && !ended; i++) {
      await sleep(250);
      const answer = await smtp.command('NOOP');
      if (!answer.startsWith('250')) ended = answer;
    }
    expect(ended).to.match(/^421 4\.4\.2 Session time limit reached/);
    smtp.destroy();
    await until(() => h!.relay.status().transactions === 0, 'the transaction ended');
    expect(wire!.sessions.flatMap((s) => s.messages)).to.have.length(0);
    expect(h!.logs.filter((l) => l.event === 'transaction').map((l) => [l.outcome, l.reason, l.upstreamCode])).to.deep.equal([['tempfailed', 'session-limit', 421]]);
  });

  it('ends a session past its time limit once an RSET ends its transaction', async () => {
    const smtp = await start({ limits: { sessionMs: 800 } });
    expect(await smtp.command('MAIL FROM:<adele@contoso.com>')).to.match(/^250/);
    await sleep(1100);
    expect(await smtp.command('RSET')).to.match(/^250/);
    expect(await smtp.reply()).to.match(/^421 4\.4\.2 Session time limit reached/);
    smtp.destroy();
    await until(() => h!.relay.status().transactions === 0, 'no transaction left');
    expect(wire!.sessions.flatMap((s) => s.messages)).to.have.length(0);
  });

  describe('one transaction line and one count per transaction, wherever it ends', () => {
    const transactions = () => h!.logs.filter((l) => l.event === 'transaction');
    /** signet_messages_total's non-zero series as `outcome/reason` → value. */
    const counted = async () => Object.fromEntries((await h!.metrics.registry.getSingleMetric('signet_messages_total')!.get()).values.filter((v) => v.value > 0).map((v) => [`${v.labels.outcome}/${v.labels.reason}`, v.value]));
    /** The log lines as `outcome/reason` → how many. */
    const logged = () => transactions().reduce<Record<string, number>>((n, l) => ({ ...n, [`${String(l.outcome)}/${String(l.reason)}`]: (n[`${String(l.outcome)}/${String(l.reason)}`] ?? 0) + 1 }), {});

    it('logs and counts a transaction ended before DATA: RSET, QUIT, a dropped connection, every recipient refused, a refused MAIL', async () => {
      let smtp = await start();
      wire!.answers.rcpt = (line) => (line.includes('nobody@') ? '550 5.1.1 unknown' : '250 2.1.5 OK');
      // RSET after an accepted recipient: the client gave the transaction up
      expect(await smtp.command('MAIL FROM:<adele@contoso.com>')).to.match(/^250/);
      expect(await smtp.command('RCPT TO:<bob@fabrikam.com>')).to.match(/^250/);
      expect(await smtp.command('RSET')).to.match(/^250/);
      // every recipient refused, then QUIT: the refusals decide it, and it is counted once
      expect(await smtp.command('MAIL FROM:<adele@contoso.com>')).to.match(/^250/);
      expect(await smtp.command('RCPT TO:<nobody@fabrikam.com>')).to.match(/^550 5\.1\.1/);
      expect(await smtp.command('RCPT TO:<nobody@contoso.com>')).to.match(/^550 5\.1\.1/);
      expect(await smtp.command('RSET')).to.match(/^250/);
      // a MAIL refused here never opens a transaction downstream, and is one all the same
      expect(await smtp.command('MAIL FROM:<adele@fabrikam.com>')).to.match(/^550 5\.7\.1/);
      // MAIL, then QUIT
      expect(await smtp.command('MAIL FROM:<adele@contoso.com>')).to.match(/^250/);
      expect(await smtp.command('QUIT')).to.match(/^221/);
      await until(() => transactions().length === 4, 'four transaction lines');
      smtp.destroy();
      // MAIL and RCPT, then the connection drops
      smtp = await start.again();
      expect(await smtp.command('MAIL FROM:<adele@contoso.com>')).to.match(/^250/);
      expect(await smtp.command('RCPT TO:<bob@fabrikam.com>')).to.match(/^250/);
      smtp.destroy();
      await until(() => transactions().length === 5, 'five transaction lines');
      await sleep(100);

      const lines = transactions().map(({ stage, outcome, reason, recipientCount, recipientsRefused, upstreamCode, downstreamCode, upstreamAnswered, messageIdHash }) => ({ stage, outcome, reason, recipientCount, recipientsRefused, upstreamCode, downstreamCode, upstreamAnswered, messageIdHash }));
      expect(lines).to.deep.equal([
        { stage: 'rcpt', outcome: 'abandoned', reason: 'upstream-reset', recipientCount: 1, recipientsRefused: 0, upstreamCode: undefined, downstreamCode: undefined, upstreamAnswered: undefined, messageIdHash: undefined },
        { stage: 'rcpt', outcome: 'rejected', reason: 'downstream-rcpt', recipientCount: 0, recipientsRefused: 2, upstreamCode: 550, downstreamCode: 550, upstreamAnswered: undefined, messageIdHash: undefined },
        { stage: 'mail', outcome: 'rejected', reason: 'sender-domain', recipientCount: 0, recipientsRefused: 0, upstreamCode: 550, downstreamCode: undefined, upstreamAnswered: undefined, messageIdHash: undefined },
        { stage: 'mail', outcome: 'abandoned', reason: 'upstream-quit', recipientCount: 0, recipientsRefused: 0, upstreamCode: undefined, downstreamCode: undefined, upstreamAnswered: undefined, messageIdHash: undefined },
        { stage: 'rcpt', outcome: 'tempfailed', reason: 'upstream-dropped', recipientCount: 1, recipientsRefused: 0, upstreamCode: undefined, downstreamCode: undefined, upstreamAnswered: false, messageIdHash: undefined },
      ]);
      for (const line of transactions()) expect(line).to.include({ orgId: 'test-org', configVersion: 'test-1' }).and.to.have.property('seconds').that.is.a('number');
      expect(await counted()).to.deep.equal(logged());
      expect(JSON.stringify(h!.logs)).to.not.match(/fabrikam|adele|bob@|nobody/);
      expect(h!.relay.status().transactions).to.equal(0);
    });

    /** A client sends a whole message and leaves once its final dot reached the downstream, before any answer; returns how to answer that dot. */
    async function clientLeavesAfterFinalDot(): Promise<(line: string) => void> {
      const smtp = await start();
      let answerDot!: (line: string) => void;
      wire!.answers.dot = () => new Promise<string>((resolve) => (answerDot = resolve));
      expect(await smtp.command('MAIL FROM:<adele@contoso.com>')).to.match(/^250/);
      expect(await smtp.command('RCPT TO:<bob@fabrikam.com>')).to.match(/^250/);
      expect(await smtp.command('DATA')).to.match(/^354/);
      smtp.write(`${sampleMessage({ body: BODY })}\r\n.\r\n`);
      await until(() => wire!.sessions.some((s) => s.messages.length === 1), 'the final dot to reach the downstream');
      smtp.destroy(); // gone before the relay could answer
      await sleep(150);
      return answerDot;
    }

    it('counts a message the downstream accepted as delivered when its client left after the final dot, and says the client never saw the answer', async () => {
      const answerDot = await clientLeavesAfterFinalDot();
      expect(transactions(), 'nothing recorded before the downstream answers').to.deep.equal([]);
      answerDot('250 2.0.0 queued as 42');
      await until(() => transactions().length === 1, 'the transaction line');
      expect(transactions()[0]).to.include({ stage: 'data', outcome: 'signed', reason: 'signed', upstreamCode: 250, downstreamCode: 250, upstreamAnswered: false });
      expect(transactions()[0]).to.not.have.property('deliveryUnknown');
      expect(await counted()).to.deep.equal({ 'signed/signed': 1 });
      expect(await downstreamErrors()).to.equal(0);
      expect(wire!.sessions.flatMap((s) => s.messages)).to.have.length(1);
      await until(() => h!.relay.status().transactions === 0, 'the transaction to end');
    });

    it('says the delivery is unknown when the downstream drops after the final dot of a client that left', async () => {
      const answerDot = await clientLeavesAfterFinalDot();
      answerDot(CLOSE);
      await until(() => transactions().length === 1, 'the transaction line');
      expect(transactions()[0]).to.include({ stage: 'data', outcome: 'tempfailed', reason: 'downstream-dropped', upstreamAnswered: false, deliveryUnknown: true });
      expect(await counted()).to.deep.equal({ 'tempfailed/downstream-dropped': 1 });
    });

    it('says shutdown for the transactions a drain cuts, in DATA and before it, not a dropped connection', async () => {
      const inData = await start();
      const beforeData = await start.again();
      expect(await inData.command('MAIL FROM:<adele@contoso.com>')).to.match(/^250/);
      expect(await inData.command('RCPT TO:<bob@fabrikam.com>')).to.match(/^250/);
      expect(await inData.command('DATA')).to.match(/^354/);
      inData.write(sampleMessage({ body: BODY }).split('\r\n\r\n')[0] + '\r\n\r\nfirst half\r\n');
      expect(await beforeData.command('MAIL FROM:<adele@contoso.com>')).to.match(/^250/);
      expect(await beforeData.command('RCPT TO:<bob@fabrikam.com>')).to.match(/^250/);
      await sleep(100);
      expect(await h!.relay.drain(300)).to.deep.equal({ finished: false, cut: 2 });
      expect(await inData.reply()).to.match(/^421 4\.3\.2/);
      expect(await beforeData.reply()).to.match(/^421 4\.3\.2/);
      inData.destroy();
      beforeData.destroy();
      await sleep(100);
      const lines = transactions().map(({ stage, outcome, reason, upstreamCode }) => ({ stage, outcome, reason, upstreamCode }));
      expect(lines).to.have.deep.members([
        { stage: 'data', outcome: 'tempfailed', reason: 'shutdown', upstreamCode: 421 },
        { stage: 'rcpt', outcome: 'tempfailed', reason: 'shutdown', upstreamCode: 421 },
      ]);
      expect(await counted()).to.deep.equal({ 'tempfailed/shutdown': 2 });
      expect(wire!.sessions.flatMap((s) => s.messages)).to.have.length(0);
    });
    it('says upstream-timeout for a client gone silent past the idle limit, in DATA and before it, not a dropped connection; the downstream is cut before its final dot', async () => {
      const inData = await start({ limits: { idleMs: 500 } });
      expect(await inData.command('MAIL FROM:<adele@contoso.com>')).to.match(/^250/);
      expect(await inData.command('RCPT TO:<bob@fabrikam.com>')).to.match(/^250/);
      expect(await inData.command('DATA')).to.match(/^354/);
      inData.write(sampleMessage({ body: BODY }).split('\r\n\r\n')[0] + '\r\n\r\nfirst half\r\n');
      // then silence: smtp-server's idle timeout ends the session with its own 421
      expect(await inData.reply()).to.match(/^421 4\.4\.2 /);
      const beforeData = await start.again();
      expect(await beforeData.command('MAIL FROM:<adele@contoso.com>')).to.match(/^250/);
      expect(await beforeData.command('RCPT TO:<bob@fabrikam.com>')).to.match(/^250/);
      expect(await beforeData.reply()).to.match(/^421 4\.4\.2 /);
      await until(() => h!.relay.status().sessions === 0, 'both sessions to close');
      await until(() => wire!.sessions.length === 2 && wire!.sessions.every((s) => s.closed), 'both downstream sessions to be cut');
      const lines = transactions().map(({ stage, outcome, reason, upstreamCode, upstreamAnswered, recipientCount }) => ({ stage, outcome, reason, upstreamCode, upstreamAnswered, recipientCount }));
      expect(lines).to.deep.equal([
        { stage: 'data', outcome: 'tempfailed', reason: 'upstream-timeout', upstreamCode: 421, upstreamAnswered: undefined, recipientCount: 1 },
        { stage: 'rcpt', outcome: 'tempfailed', reason: 'upstream-timeout', upstreamCode: 421, upstreamAnswered: undefined, recipientCount: 1 },
      ]);
      expect(await counted()).to.deep.equal({ 'tempfailed/upstream-timeout': 2 });
      expect(await downstreamErrors()).to.equal(0);
      // the first was mid-DATA downstream too: aborted there, nothing delivered
      expect(wire!.sessions.map((s) => s.commands.includes('DATA'))).to.deep.equal([true, false]);
      expect(wire!.sessions.flatMap((s) => s.messages)).to.have.length(0);
      expect(h!.relay.status().transactions).to.equal(0);
    });
  });

  describe('a refusal decided before the client\'s final dot (it is answered after the dot)', () => {
    const TENANT = '8f4c2d1e-5a6b-4c7d-9e0f-1a2b3c4d5e6f';
    const OTHER = '0b7d3c52-6e1f-4a8b-9c2d-3e4f5a6b7c8d';
    const refusedCount = async () => (await h!.metrics.registry.getSingleMetric('signet_messages_total')!.get()).values.filter((v) => v.labels.reason === 'other-tenant').reduce((n, v) => n + v.value, 0);
    /** Sends the header block of another tenant's message and waits until the relay has refused it; returns the rest, still to send. */
    async function headersThenWait(smtp: ManualSmtp): Promise<string> {
      expect(await smtp.command('MAIL FROM:<adele@contoso.com>')).to.match(/^250/);
      expect(await smtp.command('RCPT TO:<bob@fabrikam.com>')).to.match(/^250/);
      expect(await smtp.command('DATA')).to.match(/^354/);
      const message = sampleMessage({ extraHeaders: `X-MS-Exchange-CrossTenant-Id: ${OTHER}`, body: BODY.repeat(50) });
      const cut = message.indexOf('\r\n\r\n') + 40; // smtp-server holds back the last bytes it got (a final dot may follow)
      smtp.write(message.slice(0, cut));
      for (let i = 0; i < 100 && (await refusedCount()) === 0; i++) await sleep(20);
      expect(await refusedCount(), 'refused mid-stream').to.equal(1);
      return message.slice(cut);
    }

    it('keeps its 5xx when the session reaches its time limit meanwhile (421 only after it)', async () => {
      const smtp = await start({ tenantId: TENANT, limits: { sessionMs: 800 } });
      const rest = await headersThenWait(smtp);
      await sleep(1100); // past the session limit, the client still sending
      const replies = [await smtp.command(`${rest}\r\n.`), await smtp.reply()];
      smtp.destroy();
      expect(replies[0], replies.join(' | ')).to.match(/^550 5\.7\.1 /);
      expect(replies[1], replies.join(' | ')).to.match(/^421 4\.4\.2 Session time limit reached/);
      expect(wire!.sessions.flatMap((s) => s.messages)).to.have.length(0);
    });

    it('keeps its 5xx when a drain starts meanwhile: the drain waits for the answer', async () => {
      const smtp = await start({ tenantId: TENANT });
      const rest = await headersThenWait(smtp);
      const drained = h!.relay.drain(5000);
      await sleep(200);
      expect(h!.relay.status().transactions, 'still answering the client').to.equal(1);
      const replies = [await smtp.command(`${rest}\r\n.`), await smtp.reply()];
      smtp.destroy();
      expect(replies[0], replies.join(' | ')).to.match(/^550 5\.7\.1 /);
      expect(replies[1], replies.join(' | ')).to.match(/^421 4\.3\.2 /);
      expect(await drained).to.deep.equal({ finished: true, cut: 0 });
      expect(wire!.sessions.flatMap((s) => s.messages)).to.have.length(0);
    });
  });
});
