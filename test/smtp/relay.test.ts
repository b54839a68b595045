import { expect } from 'chai';
import { connect as netConnect, type Socket } from 'node:net';
import { simpleParser } from 'mailparser';
import { ManualSmtp } from '../e2e/support/smtp-client';
import { faultyEngine, stampEngine } from './support/engines';
import { DEFAULT_LIMITS, exoTransport, sampleMessage, send, startHarness, type Harness } from './support/harness';

async function metricValue(h: Harness, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = (await h.metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const values = (metric?.values ?? []) as Array<{ value: number; labels: Record<string, string | number> }>;
  return values.filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val)).reduce((sum, v) => sum + v.value, 0);
}

/** A line-oriented SMTP conversation over a raw socket (for what nodemailer will not do, like MAIL before STARTTLS). */
class RawSmtp {
  private buffer = '';
  private waiters: Array<() => void> = [];
  constructor(private socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buffer += d.toString('latin1');
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('close', () => {
      for (const w of this.waiters.splice(0)) w();
    });
  }
  static async open(port: number): Promise<RawSmtp> {
    const socket = netConnect(port, '127.0.0.1');
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new RawSmtp(socket);
  }
  /** Reads one complete reply (multi-line aware). */
  async reply(): Promise<string> {
    for (let i = 0; i < 200; i++) {
      const m = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\r?\n/.exec(this.buffer);
      if (m) {
        this.buffer = this.buffer.slice(m[0].length);
        return m[0].trim();
      }
      if (this.socket.destroyed) return this.buffer.trim();
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
    throw new Error(`no reply, buffer: ${this.buffer}`);
  }
  async command(line: string): Promise<string> {
    this.socket.write(line + '\r\n');
    return this.reply();
  }
  close(): void {
    this.socket.destroy();
  }
}

describe('relay: before-queue proxy with mutual TLS', function () {
  this.timeout(30_000);
  let h: Harness;
  afterEach(async () => {
    await h?.close();
  });

  it('relays a message through the engine to the downstream, byte for byte apart from the stamp', async () => {
    h = await startHarness();
    const raw = sampleMessage({ to: ['bob@fabrikam.com', 'carol@fabrikam.com'] });
    const result = await send(h.port, h.pki.exoClient, { to: ['bob@fabrikam.com', 'carol@fabrikam.com'], raw });
    expect(result.ok, result.response).to.equal(true);
    expect(result.response).to.match(/^250 2\.6\.0 Queued as sink-1/);
    expect(h.sink.messages).to.have.length(1);
    const delivered = h.sink.messages[0];
    expect(delivered.mailFrom).to.equal('adele@contoso.com');
    expect(delivered.rcptTo).to.deep.equal(['bob@fabrikam.com', 'carol@fabrikam.com']);
    expect(delivered.clientCertificate).to.equal('relay.test.invalid');
    const text = delivered.raw.toString('latin1');
    expect(text.startsWith('X-Signet-Processed: test-org; v=test\r\n')).to.equal(true);
    expect(text.slice('X-Signet-Processed: test-org; v=test\r\n'.length)).to.equal(raw.endsWith('\r\n') ? raw : raw + '\r\n');
    const parsed = await simpleParser(delivered.raw);
    expect(parsed.text).to.contain('A line with a lone dot above.');
    expect(await metricValue(h, 'signet_messages_total', { outcome: 'signed' })).to.equal(1);
    const line = h.logs.find((l) => l.event === 'transaction');
    expect(line).to.include({ outcome: 'signed', upstreamCode: 250, downstreamCode: 250, recipientCount: 2 });
    expect(line?.messageIdHash).to.match(/^[0-9a-f]{16}$/);
    const logText = JSON.stringify(h.logs);
    expect(logText).not.to.contain('Quarterly');
    expect(logText).not.to.contain('fabrikam');
    expect(logText).not.to.contain('adele@');
    expect(h.relay.fastStart).to.equal(true);
  });

  it('refuses a session without a client certificate (530 5.7.1) and counts it', async () => {
    h = await startHarness();
    const result = await send(h.port, undefined, { raw: sampleMessage() });
    expect(result.ok).to.equal(false);
    expect(result.response).to.match(/^530 5\.7\.1/);
    expect(h.sink.messages).to.have.length(0);
    expect(await metricValue(h, 'signet_tls_errors_total', { reason: 'no-certificate' })).to.equal(1);
  });

  it('refuses a client certificate from another CA (554 5.7.1 untrusted)', async () => {
    h = await startHarness();
    const result = await send(h.port, h.pki.otherCaClient, { raw: sampleMessage() });
    expect(result.ok).to.equal(false);
    expect(result.response).to.match(/^554 5\.7\.1 .*untrusted/);
    expect(await metricValue(h, 'signet_tls_errors_total', { reason: 'untrusted' })).to.equal(1);
    expect(h.sink.messages).to.have.length(0);
  });

  it('refuses a client certificate with a name that is not accepted', async () => {
    h = await startHarness();
    const result = await send(h.port, h.pki.wrongNameClient, { raw: sampleMessage() });
    expect(result.response).to.match(/^554 5\.7\.1 Client certificate name not accepted/);
    expect(await metricValue(h, 'signet_tls_errors_total', { reason: 'name-mismatch' })).to.equal(1);
    expect(h.sink.messages).to.have.length(0);
  });

  it('refuses an expired client certificate', async () => {
    h = await startHarness();
    const result = await send(h.port, h.pki.expiredClient, { raw: sampleMessage() });
    expect(result.response).to.match(/^554 5\.7\.1 .*expired/);
    expect(await metricValue(h, 'signet_tls_errors_total', { reason: 'expired' })).to.equal(1);
    expect(h.sink.messages).to.have.length(0);
  });

  it('answers MAIL before STARTTLS with 530 5.7.0, and offers no AUTH', async () => {
    h = await startHarness();
    const smtp = await RawSmtp.open(h.port);
    expect(await smtp.reply()).to.match(/^220 relay\.test\.invalid ESMTP/);
    const ehlo = await smtp.command('EHLO client.test');
    expect(ehlo).to.contain('STARTTLS');
    expect(ehlo).to.match(/SIZE 10485760/);
    expect(ehlo).not.to.match(/AUTH/);
    expect(await smtp.command('MAIL FROM:<adele@contoso.com>')).to.match(/^530 5\.7\.0 Must issue a STARTTLS command first/);
    // a SIZE over the limit is checked by smtp-server ahead of the relay: still 530 in the clear, and nothing counted
    for (let i = 0; i < 3; i++) expect(await smtp.command('MAIL FROM:<x@evil.example> SIZE=999999999')).to.match(/^530 5\.7\.0 Must issue a STARTTLS command first/);
    smtp.close();
    expect(h.sink.stats.sessions).to.equal(0);
    expect(await metricValue(h, 'signet_messages_total', { outcome: 'rejected', reason: 'size' })).to.equal(0);
    expect(h.logs.filter((l) => l.event === 'transaction')).to.have.length(0);
  });

  it('refuses a sender whose domain is not an accepted domain (550 5.7.1), without contacting the downstream', async () => {
    h = await startHarness();
    const result = await send(h.port, h.pki.exoClient, { from: 'mallory@evil.example', raw: sampleMessage({ from: 'mallory@evil.example' }) });
    expect(result.response).to.match(/^550 5\.7\.1 Sender domain not accepted/);
    expect(h.sink.stats.sessions).to.equal(0);
  });

  it('refuses an oversize message: SIZE at MAIL, and bytes past the limit in DATA (552 5.3.4), nothing delivered', async () => {
    h = await startHarness({ limits: { maxMessageBytes: 64 * 1024 } });
    const big = sampleMessage({ body: 'x'.repeat(76) + '\r\n'.repeat(1) + ('y'.repeat(76) + '\r\n').repeat(2000) });
    const result = await send(h.port, h.pki.exoClient, { raw: big });
    expect(result.ok).to.equal(false);
    expect(result.response).to.match(/^552 5\.3\.4/);
    expect(h.sink.messages).to.have.length(0);
  });

  it('refuses a declared SIZE over the limit at MAIL (552 5.3.4) and over-long command lines', async () => {
    h = await startHarness({ limits: { maxMessageBytes: 64 * 1024, maxLineLength: 600 } });
    const smtp = await ManualSmtp.open(h.port, { key: h.pki.exoClient.key, cert: h.pki.exoClient.cert, ca: h.pki.ca.cert, servername: 'relay.test.invalid' });
    expect(await smtp.command('MAIL FROM:<adele@contoso.com> SIZE=70000')).to.match(/^552 5\.3\.4/);
    expect(await smtp.command(`MAIL FROM:<${'a'.repeat(700)}@contoso.com>`)).to.match(/^421 4\.4\.2 .*too long/);
    smtp.destroy();
    expect(h.sink.stats.sessions).to.equal(0);
    // smtp-server refuses the declared SIZE before the relay sees MAIL; it is counted all the same
    expect(await metricValue(h, 'signet_messages_total', { outcome: 'rejected', reason: 'size' })).to.equal(1);
  });

  it('ends a session past its time limit with 421 4.4.2 (one in a transaction after it: see relay-edges)', async () => {
    h = await startHarness({ limits: { sessionMs: 1000 } });
    const smtp = await ManualSmtp.open(h.port, { key: h.pki.exoClient.key, cert: h.pki.exoClient.cert, ca: h.pki.ca.cert, servername: 'relay.test.invalid' });
    expect(await smtp.command('NOOP')).to.match(/^250/);
    expect(await smtp.reply()).to.match(/^421 4\.4\.2 Session time limit reached/);
    smtp.destroy();
    expect(h.relay.status().transactions).to.equal(0);
    expect(h.sink.messages).to.have.length(0);
  });

  it('records the expiry of the last accepted client certificate', async () => {
    h = await startHarness();
    expect((await send(h.port, h.pki.exoClient, { raw: sampleMessage() })).ok).to.equal(true);
    const expiry = await metricValue(h, 'signet_certificate_expiry_timestamp_seconds', { certificate: 'upstream-client', subject: 'mail.protection.outlook.com' });
    expect(expiry).to.equal(Math.floor(h.pki.exoClient.notAfter.getTime() / 1000));
  });

  it('passes DSN requests (RET, ENVID, NOTIFY, ORCPT) on to the downstream', async () => {
    h = await startHarness();
    const smtp = await ManualSmtp.open(h.port, { key: h.pki.exoClient.key, cert: h.pki.exoClient.cert, ca: h.pki.ca.cert, servername: 'relay.test.invalid' });
    expect(await smtp.command('MAIL FROM:<adele@contoso.com> RET=HDRS ENVID=QQ+2Bid=1')).to.match(/^250/);
    expect(await smtp.command('RCPT TO:<bob@fabrikam.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+2Bx@fabrikam.com')).to.match(/^250/);
    expect(await smtp.command('DATA')).to.match(/^354/);
    expect(await smtp.command(`${sampleMessage()}\r\n.`)).to.match(/^250/);
    smtp.destroy();
    expect(h.sink.messages[0].dsn).to.deep.equal({ ret: 'HDRS', envid: 'QQ+id=1', recipients: [{ notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;bob+x@fabrikam.com' }] });
  });

  it('limits recipients per message (452 4.5.3) and relays to the ones within the limit', async () => {
    h = await startHarness({ limits: { maxRecipients: 2 } });
    const to = ['a@fabrikam.com', 'b@fabrikam.com', 'c@fabrikam.com'];
    const result = await send(h.port, h.pki.exoClient, { to, raw: sampleMessage({ to }) });
    expect(result.ok).to.equal(true);
    expect(result.rejected).to.deep.equal(['c@fabrikam.com']);
    expect(result.rejectedResponses[0]).to.match(/^452 4\.5\.3/);
    expect(h.sink.messages[0].rcptTo).to.deep.equal(['a@fabrikam.com', 'b@fabrikam.com']);
    expect(await metricValue(h, 'signet_recipients_refused_total', { outcome: 'tempfailed', reason: 'too-many-recipients' })).to.equal(1);
  });

  it('passes a recipient given twice on to the downstream once (smtp-server keeps it once upstream)', async () => {
    const asked: string[] = [];
    h = await startHarness({ faults: { rcpt: (to) => void asked.push(to) } });
    const smtp = await ManualSmtp.open(h.port, { key: h.pki.exoClient.key, cert: h.pki.exoClient.cert, ca: h.pki.ca.cert, servername: 'relay.test.invalid' });
    expect(await smtp.command('MAIL FROM:<adele@contoso.com>')).to.match(/^250/);
    expect(await smtp.command('RCPT TO:<bob@fabrikam.com>')).to.match(/^250/);
    expect(await smtp.command('RCPT TO:<Bob@Fabrikam.com>')).to.match(/^250/);
    expect(await smtp.command('RCPT TO:<carol@fabrikam.com>')).to.match(/^250/);
    expect(await smtp.command('DATA')).to.match(/^354/);
    expect(await smtp.command(`${sampleMessage()}\r\n.`)).to.match(/^250/);
    smtp.destroy();
    expect(asked).to.deep.equal(['bob@fabrikam.com', 'carol@fabrikam.com']);
    expect(h.sink.messages[0].rcptTo).to.deep.equal(['bob@fabrikam.com', 'carol@fabrikam.com']);
  });

  it('answers 451 4.4.1 when the downstream is down, and delivers nothing', async () => {
    const probe = await startHarness();
    const deadPort = probe.sink.port;
    await probe.close();
    h = await startHarness({ downstreamPort: deadPort });
    const result = await send(h.port, h.pki.exoClient, { raw: sampleMessage() });
    expect(result.response).to.match(/^451 4\.4\.1/);
    expect(await metricValue(h, 'signet_downstream_errors_total', { reason: 'refused' })).to.equal(1);
    expect(await metricValue(h, 'signet_messages_total', { outcome: 'tempfailed' })).to.equal(1);
  });

  it('mirrors a recipient refused downstream (same code and enhanced code) and delivers to the others', async () => {
    h = await startHarness({ faults: { rcpt: (to) => (to === 'gone@fabrikam.com' ? { code: 550, message: '5.1.10 Recipient not found by SMTP address lookup' } : undefined) } });
    const to = ['bob@fabrikam.com', 'gone@fabrikam.com', 'carol@fabrikam.com'];
    const result = await send(h.port, h.pki.exoClient, { to, raw: sampleMessage({ to }) });
    expect(result.ok).to.equal(true);
    expect(result.rejected).to.deep.equal(['gone@fabrikam.com']);
    expect(result.rejectedResponses[0]).to.equal('550 5.1.10 Recipient not found by SMTP address lookup');
    expect(h.sink.messages).to.have.length(1);
    expect(h.sink.messages[0].rcptTo).to.deep.equal(['bob@fabrikam.com', 'carol@fabrikam.com']);
    expect(await metricValue(h, 'signet_recipients_refused_total', { outcome: 'rejected', reason: 'downstream-rcpt' })).to.equal(1);
    expect(await metricValue(h, 'signet_messages_total', { outcome: 'rejected' })).to.equal(0); // the message itself went through
  });

  it('counts a transaction whose every recipient the downstream defers as a deferred message (it never reaches DATA)', async () => {
    h = await startHarness({ faults: { rcpt: (to) => (to === 'gone@fabrikam.com' ? { code: 550, message: '5.1.10 Recipient not found' } : { code: 451, message: '4.7.500 Server busy. Please try again later' }) } });
    const smtp = await ManualSmtp.open(h.port, { key: h.pki.exoClient.key, cert: h.pki.exoClient.cert, ca: h.pki.ca.cert, servername: 'relay.test.invalid' });
    expect(await smtp.command('MAIL FROM:<adele@contoso.com>')).to.match(/^250/);
    expect(await smtp.command('RCPT TO:<gone@fabrikam.com>')).to.equal('550 5.1.10 Recipient not found');
    expect(await smtp.command('RCPT TO:<bob@fabrikam.com>')).to.equal('451 4.7.500 Server busy. Please try again later');
    expect(await smtp.command('RSET')).to.match(/^250/);
    expect(await smtp.command('MAIL FROM:<adele@contoso.com>')).to.match(/^250/);
    expect(await smtp.command('RCPT TO:<gone@fabrikam.com>')).to.match(/^550/);
    expect(await smtp.command('QUIT')).to.match(/^221/);
    smtp.destroy();
    const counted = async () => ({
      tempfailed: await metricValue(h, 'signet_messages_total', { outcome: 'tempfailed', reason: 'downstream-rcpt' }),
      rejected: await metricValue(h, 'signet_messages_total', { outcome: 'rejected', reason: 'downstream-rcpt' }),
    });
    // QUIT ends the second transaction as the session closes
    for (let i = 0; i < 50 && (await counted()).rejected === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await counted()).to.deep.equal({ tempfailed: 1, rejected: 1 });
    expect(await metricValue(h, 'signet_recipients_refused_total', { outcome: 'tempfailed', reason: 'downstream-rcpt' })).to.equal(1);
    expect(await metricValue(h, 'signet_recipients_refused_total', { outcome: 'rejected', reason: 'downstream-rcpt' })).to.equal(2);
    expect(h.sink.messages).to.have.length(0);
  });

  it('mirrors a 5xx at the end of DATA upstream', async () => {
    h = await startHarness({ faults: { data: () => ({ code: 554, message: '5.6.0 Content refused' }) } });
    const result = await send(h.port, h.pki.exoClient, { raw: sampleMessage() });
    expect(result.ok).to.equal(false);
    expect(result.response).to.equal('554 5.6.0 Content refused');
    expect(h.sink.messages).to.have.length(0);
    expect(await metricValue(h, 'signet_messages_total', { outcome: 'rejected', reason: 'downstream-data' })).to.equal(1);
  });

  it('mirrors a 4xx at the end of DATA upstream', async () => {
    h = await startHarness({ faults: { data: () => ({ code: 452, message: '4.3.1 Insufficient system resources' }) } });
    const result = await send(h.port, h.pki.exoClient, { raw: sampleMessage() });
    expect(result.response).to.equal('452 4.3.1 Insufficient system resources');
  });

  it('answers 451 when the downstream drops the connection mid-DATA, and nothing is delivered', async () => {
    h = await startHarness({ faults: { dropAfterBytes: () => 20_000 } });
    const body = ('z'.repeat(70) + '\r\n').repeat(3000);
    const result = await send(h.port, h.pki.exoClient, { raw: sampleMessage({ body }) });
    expect(result.ok).to.equal(false);
    expect(result.response).to.match(/^451 4\.4\.2/);
    expect(h.sink.messages).to.have.length(0);
    expect(h.sink.stats.dropped).to.equal(1);
    // one message, counted once
    expect(await metricValue(h, 'signet_messages_total')).to.equal(1);
    expect(await metricValue(h, 'signet_messages_total', { outcome: 'tempfailed' })).to.equal(1);
  });

  it('answers 451 4.3.0 when the engine fails mid-stream, and the downstream gets nothing', async () => {
    h = await startHarness({ engine: faultyEngine(5000) });
    const body = ('e'.repeat(70) + '\r\n').repeat(1000);
    const result = await send(h.port, h.pki.exoClient, { raw: sampleMessage({ body }) });
    expect(result.response).to.match(/^451 4\.3\.0/);
    expect(h.sink.messages).to.have.length(0);
    expect(await metricValue(h, 'signet_messages_total', { outcome: 'tempfailed', reason: 'engine-error' })).to.equal(1);
  });

  it('relays a message the engine passed for a template error with 250, logging where the template failed but not its message', async () => {
    const inner = stampEngine();
    const engine = {
      ...inner,
      process: (input: Parameters<typeof inner.process>[0], envelope: Parameters<typeof inner.process>[1]) => {
        const run = inner.process(input, envelope);
        const templateError = { where: 'templates/default.html.ejs:2', errorName: 'SyntaxError', message: 'templates/default.html.ejs:2: "Senior Analyst" is not valid JSON' };
        return { output: run.output, result: run.result.then((r) => ({ ...r, outcome: 'passed' as const, reason: 'template-error' as const, templateError })) };
      },
    };
    h = await startHarness({ engine });
    // exported at 0 from the start, so the alert's increase() sees the first one
    const series = ((await h.metrics.registry.getMetricsAsJSON()).find((m) => m.name === 'signet_messages_total')?.values ?? []) as Array<{ labels: Record<string, string | number> }>;
    expect(series.map((v) => v.labels)).to.deep.include({ outcome: 'passed', reason: 'template-error' });
    const result = await send(h.port, h.pki.exoClient, { raw: sampleMessage() });
    expect(result.ok, result.response).to.equal(true);
    expect(h.sink.messages).to.have.length(1);
    expect(await metricValue(h, 'signet_messages_total', { outcome: 'passed', reason: 'template-error' })).to.equal(1);
    expect(h.logs.find((l) => l.event === 'transaction')).to.include({ outcome: 'passed', reason: 'template-error', templateError: 'templates/default.html.ejs:2 (SyntaxError)' });
    expect(JSON.stringify(h.logs)).not.to.contain('Senior Analyst');
  });

  it('answers 451 4.3.0 while no configuration is loaded', async () => {
    h = await startHarness();
    h.org.current = undefined;
    const result = await send(h.port, h.pki.exoClient, { raw: sampleMessage() });
    expect(result.response).to.match(/^451 4\.3\.0 No configuration loaded/);
    expect(h.sink.stats.sessions).to.equal(0);
  });

  it('relays a message already stamped by this organization unchanged', async () => {
    h = await startHarness();
    const raw = sampleMessage({ extraHeaders: 'X-Signet-Processed: test-org; v=test' });
    const result = await send(h.port, h.pki.exoClient, { raw });
    expect(result.ok, result.response).to.equal(true);
    expect(h.sink.messages[0].raw.toString('latin1')).to.equal(raw.endsWith('\r\n') ? raw : raw + '\r\n');
    expect(await metricValue(h, 'signet_messages_total', { outcome: 'passed' })).to.equal(1);
  });

  it('refuses a message that passed through Signet too many times (554 5.4.6)', async () => {
    h = await startHarness();
    const stamps = ['a', 'b', 'c', 'd'].map((o) => `X-Signet-Processed: org-${o}; v=1`).join('\r\n');
    const result = await send(h.port, h.pki.exoClient, { raw: sampleMessage({ extraHeaders: stamps }) });
    expect(result.ok).to.equal(false);
    expect(result.response).to.match(/^554 5\.4\.6/);
    expect(h.sink.messages).to.have.length(0);
    // at the limit it still passes
    const three = ['a', 'b', 'c'].map((o) => `X-Signet-Processed: org-${o}; v=1`).join('\r\n');
    const ok = await send(h.port, h.pki.exoClient, { raw: sampleMessage({ extraHeaders: three }) });
    expect(ok.ok, ok.response).to.equal(true);
  });

  it('refuses sessions past the per-source limit with 421 4.7.0', async () => {
    h = await startHarness({ limits: { ...DEFAULT_LIMITS, maxSessionsPerSource: 1 } });
    const first = await RawSmtp.open(h.port);
    expect(await first.reply()).to.match(/^220/);
    const second = await RawSmtp.open(h.port);
    expect(await second.reply()).to.match(/^421 4\.7\.0/);
    first.close();
    second.close();
    expect(await metricValue(h, 'signet_sessions_refused_total', { reason: 'max-sessions-per-source' })).to.equal(1);
  });

  it('refuses sessions past the node\'s limit with 421 4.7.0, and takes new ones once a session ends', async () => {
    h = await startHarness({ limits: { ...DEFAULT_LIMITS, maxSessions: 2, maxSessionsPerSource: 10 } });
    const first = await RawSmtp.open(h.port);
    expect(await first.reply()).to.match(/^220/);
    const second = await RawSmtp.open(h.port);
    expect(await second.reply()).to.match(/^220/);
    const third = await RawSmtp.open(h.port);
    expect(await third.reply()).to.match(/^421 4\.7\.0 Too many sessions/);
    third.close();
    expect(await metricValue(h, 'signet_sessions_refused_total', { reason: 'max-sessions' })).to.equal(1);
    expect(await metricValue(h, 'signet_sessions_refused_total', { reason: 'max-sessions-per-source' })).to.equal(0);
    first.close();
    // the slot comes back when the session's connection has closed
    let fourth: RawSmtp | undefined;
    for (let i = 0; i < 50; i++) {
      fourth = await RawSmtp.open(h.port);
      if (/^220/.test(await fourth.reply())) break;
      fourth.close();
      fourth = undefined;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(fourth, 'a session accepted after one ended').to.not.equal(undefined);
    fourth!.close();
    second.close();
  });

  it('refuses sources outside the allowed networks for now (421 4.7.1: during a range change Exchange Online retries)', async () => {
    h = await startHarness({ allowNetworks: ['10.0.0.0/8', '2001:db8::/32'] });
    const smtp = await RawSmtp.open(h.port);
    expect(await smtp.reply()).to.match(/^421 4\.7\.1 Source address not allowed/);
    smtp.close();
  });

  it('keeps a pooled upstream connection working across several transactions', async () => {
    h = await startHarness();
    const transport = exoTransport(h.port, h.pki.exoClient, { pool: true, maxConnections: 1, ca: h.pki.ca.cert });
    for (let i = 0; i < 5; i++) {
      await transport.sendMail({ envelope: { from: 'adele@contoso.com', to: [`r${i}@fabrikam.com`] }, raw: sampleMessage({ to: [`r${i}@fabrikam.com`] }) });
    }
    transport.close();
    expect(h.sink.messages.map((m) => m.rcptTo[0])).to.deep.equal(['r0@fabrikam.com', 'r1@fabrikam.com', 'r2@fabrikam.com', 'r3@fabrikam.com', 'r4@fabrikam.com']);
    expect(h.relay.status().transactions).to.equal(0);
  });

  it('reuses a downstream session for the next transaction, and never one that failed', async () => {
    let refuseData = false;
    h = await startHarness({ reuse: 4, faults: { data: () => (refuseData ? { code: 554, message: '5.6.0 Refused' } : undefined) } });
    for (let i = 0; i < 3; i++) expect((await send(h.port, h.pki.exoClient, { raw: sampleMessage() })).ok).to.equal(true);
    expect(h.sink.stats.tlsSessions).to.equal(1); // one downstream session carried all three
    refuseData = true;
    expect((await send(h.port, h.pki.exoClient, { raw: sampleMessage() })).code).to.equal(554);
    refuseData = false;
    expect((await send(h.port, h.pki.exoClient, { raw: sampleMessage() })).ok).to.equal(true);
    expect(h.sink.stats.tlsSessions).to.equal(2); // the refused transaction's session was not reused
    expect(h.sink.messages).to.have.length(4);
  });

  it('does not reuse a downstream session that was busy when the pool was flushed (a rotated client certificate)', async () => {
    let flushDuringData = false;
    h = await startHarness({
      reuse: 4,
      faults: {
        data: () => {
          if (flushDuringData) h.relay.flushDownstream();
          return undefined;
        },
      },
    });
    expect((await send(h.port, h.pki.exoClient, { raw: sampleMessage() })).ok).to.equal(true);
    flushDuringData = true;
    expect((await send(h.port, h.pki.exoClient, { raw: sampleMessage() })).ok).to.equal(true);
    expect(h.sink.stats.tlsSessions).to.equal(1); // both on the first session; it was busy when flushed
    flushDuringData = false;
    expect((await send(h.port, h.pki.exoClient, { raw: sampleMessage() })).ok).to.equal(true);
    expect(h.sink.stats.tlsSessions).to.equal(2); // opened anew, with the current certificate
    expect(h.sink.messages).to.have.length(3);
  });

  it('uses the stamp engine as a real Engine (sanity of the double)', () => {
    expect(stampEngine('x').orgId).to.equal('x');
  });
});
