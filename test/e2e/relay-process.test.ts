// The relay as it runs in production: `signet serve` in its own process, the
// real engine with the example organization, swaks (an independent SMTP
// client) and hand-driven sessions upstream, a sink requiring the relay's
// client certificate downstream.
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { simpleParser } from 'mailparser';
import { startSink, type DevSink } from '../../appliance/src/smtp/dev/sink';
import { testPki, type TestPki } from '../support/certs';
import { startRelayProcess, type RelayProcess } from './support/relay-process';
import { ManualSmtp } from './support/smtp-client';

const hasSwaks = spawnSync('swaks', ['--version'], { encoding: 'utf8' }).status === 0;

/** swaks runs asynchronously: the sink lives in this process and must keep answering. */
function swaks(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('swaks', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

function message(subject: string, body = 'Hello,\r\n\r\nplease find the figures below.\r\n'): string {
  return [
    'From: Tom Okafor <tom.okafor@contoso.com>',
    'To: Partner <partner@fabrikam.example>',
    `Subject: ${subject}`,
    `Message-ID: <${Math.random().toString(36).slice(2)}@contoso.com>`,
    'Date: Mon, 23 Nov 2026 10:00:00 +0000',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 7bit',
    '',
    body,
  ].join('\r\n');
}

describe('relay process (signet serve) end to end', function () {
  this.timeout(60_000);
  let pki: TestPki;
  let sink: DevSink;
  let relay: RelayProcess | undefined;

  before(async () => {
    pki = await testPki();
  });
  beforeEach(async () => {
    sink = await startSink({ key: pki.sinkServer.key, cert: pki.sinkServer.cert, clientCa: pki.ca.cert });
  });
  afterEach(async () => {
    await relay?.stop();
    relay = undefined;
    await sink.close();
  });

  const tlsFor = () => ({ key: pki.exoClient.key, cert: pki.exoClient.cert, ca: pki.ca.cert, servername: 'relay.test.invalid' });

  it('signs a message sent by swaks (an independent SMTP client) over STARTTLS with a client certificate', async function () {
    if (!hasSwaks) this.skip(); // .ci/run installs swaks
    relay = await startRelayProcess(sink.port);
    await relay.waitReady();
    const file = relay.path('message.eml');
    writeFileSync(file, message('Figures for Q4'));
    const result = await swaks(
      ['--server', '127.0.0.1', '--port', String(relay.smtpPort), '--ehlo', 'exo.test', '--tls', '--tls-cert', relay.path('exo.crt'), '--tls-key', relay.path('exo.key'), '--tls-verify', '--tls-ca-path', relay.path('ca.crt'), '--tls-sni', 'relay.test.invalid', '--from', 'tom.okafor@contoso.com', '--to', 'partner@fabrikam.example', '--data', `@${file}`],
    );
    expect(result.status, result.stdout + result.stderr).to.equal(0);
    expect(result.stdout).to.match(/<~\s+250 2\.6\.0 Queued as sink-1/);
    expect(sink.messages).to.have.length(1);
    const delivered = sink.messages[0];
    expect(delivered.raw.toString('latin1')).to.match(/^X-Signet-Processed: org=contoso; result=signed;/);
    const parsed = await simpleParser(delivered.raw);
    expect(parsed.subject).to.equal('Figures for Q4');
    expect(parsed.text).to.contain('please find the figures below.');
    expect(parsed.text).to.contain('Tom Okafor');
    // the log has one transaction line with no addresses or subject
    await new Promise((r) => setTimeout(r, 100));
    const out = relay.output();
    expect(out).to.contain('"event":"transaction"');
    expect(out).not.to.contain('Figures for Q4');
    expect(out).not.to.contain('partner@fabrikam.example');
  });

  it('refuses swaks without a client certificate', async function () {
    if (!hasSwaks) this.skip();
    relay = await startRelayProcess(sink.port);
    await relay.waitReady();
    const result = await swaks(['--server', '127.0.0.1', '--port', String(relay.smtpPort), '--tls', '--from', 'tom.okafor@contoso.com', '--to', 'partner@fabrikam.example']);
    expect(result.status).not.to.equal(0);
    expect(result.stdout).to.match(/530 5\.7\.1 A client certificate is required/);
    expect(sink.messages).to.have.length(0);
  });

  it('delivers nothing partial when the relay process is killed mid-transaction; the client sees the failure', async () => {
    relay = await startRelayProcess(sink.port);
    await relay.waitReady();
    const smtp = await ManualSmtp.open(relay.smtpPort, tlsFor());
    await smtp.command('MAIL FROM:<tom.okafor@contoso.com>', /^250/);
    await smtp.command('RCPT TO:<partner@fabrikam.example>', /^250/);
    await smtp.command('DATA', /^354/);
    smtp.write(message('Half a message', 'first part\r\n'.repeat(2000)));
    // the sink has seen the transaction begin
    for (let i = 0; i < 100 && sink.stats.tlsSessions === 0; i++) await new Promise((r) => setTimeout(r, 50));
    process.kill(relay.child.pid!, 'SIGKILL');
    await relay.exited;
    smtp.write('more\r\n.\r\n');
    const answer = await smtp.reply();
    expect(answer).to.equal(''); // connection gone, no 250: the sender keeps the message and retries
    expect(smtp.closed).to.equal(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(sink.messages).to.have.length(0);
  });

  it('exits at once on a second SIGTERM during a drain (exit code 1); the transaction in flight is cut, nothing partial delivered', async () => {
    relay = await startRelayProcess(sink.port, { drainSeconds: 60 });
    await relay.waitReady();
    const smtp = await ManualSmtp.open(relay.smtpPort, tlsFor());
    await smtp.command('MAIL FROM:<tom.okafor@contoso.com>', /^250/);
    await smtp.command('RCPT TO:<partner@fabrikam.example>', /^250/);
    await smtp.command('DATA', /^354/);
    smtp.write(message('Half a message', 'first part\r\n'));
    process.kill(relay.child.pid!, 'SIGTERM');
    for (let i = 0; i < 100 && !relay.output().includes('"event":"drain-started"'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(relay.output()).to.contain('"event":"drain-started"');
    const started = Date.now();
    process.kill(relay.child.pid!, 'SIGTERM');
    expect(await relay.exited).to.equal(1);
    expect(Date.now() - started).to.be.below(5000); // not the 60 s drain bound
    expect(relay.output()).to.contain('"event":"drain-aborted"');
    smtp.write('more\r\n.\r\n');
    expect(await smtp.reply()).to.equal(''); // no 250: Exchange Online keeps the message and retries
    await new Promise((r) => setTimeout(r, 200));
    expect(sink.messages).to.have.length(0);
  });

  it('drains on SIGTERM: in-flight transactions finish, new sessions get 421 4.3.2, none is lost', async () => {
    relay = await startRelayProcess(sink.port, { drainSeconds: 20 });
    await relay.waitReady();
    const sessions = await Promise.all([0, 1, 2, 3].map(() => ManualSmtp.open(relay!.smtpPort, tlsFor())));
    for (const [i, s] of sessions.entries()) {
      await s.command('MAIL FROM:<tom.okafor@contoso.com>', /^250/);
      await s.command(`RCPT TO:<partner${i}@fabrikam.example>`, /^250/);
      await s.command('DATA', /^354/);
      s.write(message(`In flight ${i}`, 'part one\r\n'));
    }
    process.kill(relay.child.pid!, 'SIGTERM');
    // not ready any more, and new sessions are turned away
    for (let i = 0; i < 100; i++) {
      const res = await fetch(`http://127.0.0.1:${relay.httpPort}/readyz`).catch(() => undefined);
      if (res?.status === 503) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const body = (await (await fetch(`http://127.0.0.1:${relay.httpPort}/readyz`)).json()) as { reasons: string[] };
    expect(body.reasons).to.include('draining');
    const late = ManualSmtp.plain(relay.smtpPort);
    expect(await late.reply()).to.match(/^421 4\.3\.2/);
    late.destroy();

    const answers = await Promise.all(
      sessions.map(async (s) => {
        s.write('part two\r\n.\r\n');
        const r = await s.reply();
        s.destroy();
        return r;
      }),
    );
    const accepted = answers.filter((a) => a.startsWith('250'));
    for (const a of answers) expect(a).to.match(/^(250|4\d\d)/);
    expect(accepted).to.have.length(4); // well within the drain bound: all finish
    expect(sink.messages).to.have.length(accepted.length);
    expect(await relay.exited).to.equal(0);
    expect(relay.output()).to.contain('"event":"drain-finished","finished":true');
  });
});
