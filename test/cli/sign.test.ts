import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { simpleParser } from 'mailparser';

const ROOT = resolve(__dirname, '../..');
const ORG = join(ROOT, 'config/examples/contoso');
const CRLF = '\r\n';

const message = [
  'From: Tom Okafor <tom.okafor@contoso.com>',
  'To: buyer@fabrikam.example',
  'Subject: Offer',
  'MIME-Version: 1.0',
  'Content-Type: text/html; charset=utf-8',
  '',
  '<html><body><p>Here is the offer.</p></body></html>',
  '',
].join(CRLF);

function signet(args: string[], input?: string, env: NodeJS.ProcessEnv = process.env) {
  // The project's own Node (22), as npm scripts use it.
  return spawnSync(process.execPath, [join(ROOT, 'bin/signet.js'), 'sign', ...args], { cwd: ROOT, input, encoding: 'latin1', env });
}

describe('signet sign', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'signet-sign-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('signs a message from stdin to stdout and explains the decision on stderr', async () => {
    const run = signet(['--org', ORG, '--from', 'tom.okafor@contoso.com', '--to', 'buyer@fabrikam.example', '--date', '2026-12-01T10:00:00Z', '--explain'], message);
    expect(run.status, run.stderr).to.equal(0);
    const explain = JSON.parse(run.stderr) as { outcome: string; templateId: string; addons: string[]; parts: Array<{ placement: string }>; trace: unknown[] };
    expect(explain).to.include({ outcome: 'signed', templateId: 'sales' });
    expect(explain.addons).to.include('legal-disclaimer');
    expect(explain.parts[0]?.placement).to.equal('end');
    expect(explain.trace.length).to.be.greaterThan(3);
    expect(run.stdout.startsWith('X-Signet-Processed: org=contoso; result=signed;')).to.equal(true);
    const parsed = await simpleParser(Buffer.from(run.stdout, 'latin1'));
    expect(parsed.html).to.include('Tom Okafor');
    expect(parsed.attachments.map((a) => a.contentType)).to.deep.equal(['image/png']);
  });

  it('embeds the sender\'s photo the example directory names (the CEO\'s signature calls photo()), byte for byte', async () => {
    const fromIngrid = message.replace('From: Tom Okafor <tom.okafor@contoso.com>', 'From: Ingrid Halvorsen <ingrid.halvorsen@contoso.com>');
    const run = signet(['--org', ORG, '--from', 'ingrid.halvorsen@contoso.com', '--to', 'buyer@fabrikam.example', '--date', '2026-12-01T10:00:00Z'], fromIngrid);
    expect(run.status, run.stderr).to.equal(0);
    const parsed = await simpleParser(Buffer.from(run.stdout, 'latin1'), { keepCidLinks: true });
    const photo = parsed.attachments.find((a) => a.filename === 'photo.png');
    expect(photo, 'the photo part').to.not.equal(undefined);
    expect(photo!.content.equals(readFileSync(join(ORG, 'photos', 'ingrid.png')))).to.equal(true);
    expect(String(parsed.html)).to.include(`<img src="cid:${photo!.contentId!.slice(1, -1)}"`);
    // Tom has no photo: his signature has none
    const tom = await simpleParser(Buffer.from(signet(['--org', ORG, '--from', 'tom.okafor@contoso.com', '--to', 'buyer@fabrikam.example'], message).stdout, 'latin1'));
    expect(tom.attachments.map((a) => a.filename)).to.not.include('photo.png');
  });

  it('reads --in and writes --out, and exits 0 for a message it passes through', () => {
    const input = join(dir, 'auto.eml');
    const output = join(dir, 'auto.out.eml');
    const auto = message.replace('Subject: Offer', 'Subject: Offer' + CRLF + 'Auto-Submitted: auto-replied');
    writeFileSync(input, auto, 'latin1');
    const run = signet(['--org', ORG, '--from', 'tom.okafor@contoso.com', '--to', 'buyer@fabrikam.example', '--in', input, '--out', output, '--explain']);
    expect(run.status, run.stderr).to.equal(0);
    expect(JSON.parse(run.stderr)).to.include({ outcome: 'passed', reason: 'auto-reply' });
    const out = readFileSync(output, 'latin1');
    expect(out.replace(/^X-Signet-Processed:[^\n]*\n(?:[ \t][^\n]*\n)*/, '')).to.equal(auto);
  });

  it('refuses bad usage with one line and a non-zero exit', () => {
    for (const args of [
      ['--org', ORG, '--from', 'not-an-address'],
      ['--org', ORG, '--from', 'tom.okafor@contoso.com', '--in', join(dir, 'missing.eml')],
      ['--org', join(dir, 'no-such-org'), '--from', 'tom.okafor@contoso.com'],
      ['--org', ORG, '--from', 'tom.okafor@contoso.com', '--in', dir],
      ['--org', ORG, '--from', 'tom.okafor@contoso.com', '--out', dir],
      ['--org', ORG, '--from', 'tom.okafor@contoso.com', '--date', 'Nov 16 2026'],
      // commander's own usage errors: one line too, not the whole help
      ['--org', ORG],
      ['--org', ORG, '--from', 'tom.okafor@contoso.com', '--frm', 'x'],
    ]) {
      const run = signet(args, message);
      expect(run.status, args.join(' ')).to.not.equal(0);
      expect(run.stdout).to.equal('');
      expect(run.stderr.trim().split('\n'), run.stderr).to.have.length(1);
      expect(run.stderr).to.match(/^signet: /);
    }
  });

  it('refuses a broken org config with one line naming the file', () => {
    const broken = join(dir, 'broken-org');
    cpSync(ORG, broken, { recursive: true });
    writeFileSync(join(broken, 'rules.yaml'), 'rules:\n  - id: x\n    template: no-such-template\n');
    const run = signet(['--org', broken, '--from', 'tom.okafor@contoso.com'], message);
    expect(run.status).to.not.equal(0);
    expect(run.stderr.trim().split('\n'), run.stderr).to.have.length(1);
    expect(run.stderr).to.include('rules.yaml');
  });

  it('--out may name the --in file: the message is read whole before the file is replaced', () => {
    const file = join(dir, 'in-place.eml');
    writeFileSync(file, message, 'latin1');
    const run = signet(['--org', ORG, '--from', 'tom.okafor@contoso.com', '--to', 'buyer@fabrikam.example', '--date', '2026-12-01T10:00:00Z', '--in', file, '--out', file]);
    expect(run.status, run.stderr).to.equal(0);
    const out = readFileSync(file, 'latin1');
    expect(out).to.match(/^X-Signet-Processed: org=contoso; result=signed;/);
    expect(out).to.include('Here is the offer.');
  });

  it('--out replacing a file keeps its permissions', () => {
    const file = join(dir, 'private.eml');
    writeFileSync(file, 'earlier result', { mode: 0o600 });
    chmodSync(file, 0o600);
    const run = signet(['--org', ORG, '--from', 'tom.okafor@contoso.com', '--out', file], message);
    expect(run.status, run.stderr).to.equal(0);
    expect(readFileSync(file, 'latin1')).to.include('Here is the offer.');
    expect(statSync(file).mode & 0o777).to.equal(0o600);
  });

  it('a failed run leaves an existing --out file as it was and no temporary file behind', () => {
    const folder = mkdtempSync(join(dir, 'out-'));
    const output = join(folder, 'kept.eml');
    writeFileSync(output, 'earlier result');
    // reading a process's own memory from offset 0 fails (EIO) after the file opened
    const run = signet(['--org', ORG, '--from', 'tom.okafor@contoso.com', '--in', '/proc/self/mem', '--out', output]);
    expect(run.status).to.not.equal(0);
    expect(run.stderr.trim().split('\n'), run.stderr).to.have.length(1);
    expect(readFileSync(output, 'latin1')).to.equal('earlier result');
    expect(readdirSync(folder)).to.deep.equal(['kept.eml']);
  });

  it('relays 8-bit bytes, CRLF and NUL of a message it passes through byte for byte on stdout', () => {
    const raw = Buffer.concat([
      Buffer.from('From: Tom Okafor <tom.okafor@contoso.com>\r\nSubject: signed\r\nMIME-Version: 1.0\r\nContent-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n', 'latin1'),
      Buffer.from([0x68, 0xe9, 0x6c, 0x6c, 0xf6, 0xff, 0x00, 0x80, 0x0d, 0x0a]),
      Buffer.from('--b--\r\n', 'latin1'),
    ]);
    const run = spawnSync(process.execPath, [join(ROOT, 'bin/signet.js'), 'sign', '--org', ORG, '--from', 'tom.okafor@contoso.com'], { cwd: ROOT, input: raw });
    expect(run.status, run.stderr.toString()).to.equal(0);
    const out = run.stdout;
    const start = out.indexOf('From: Tom Okafor');
    expect(out.subarray(0, start).toString('latin1')).to.match(/^X-Signet-Processed: org=contoso; result=passed; reason=smime;/);
    expect(out.subarray(start).equals(raw)).to.equal(true);
  });

  it('reads a --date without Z or an offset as UTC, as the rules read their dates, whatever the time zone', () => {
    // 20:00 in Los Angeles on 15 Nov is 04:00 UTC on 16 Nov, inside the winter campaign; 20:00 UTC is not
    const args = ['--org', ORG, '--from', 'tom.okafor@contoso.com', '--to', 'buyer@fabrikam.example', '--date', '2026-11-15T20:00', '--explain'];
    const run = signet(args, message, { ...process.env, TZ: 'America/Los_Angeles' });
    expect(run.status, run.stderr).to.equal(0);
    expect((JSON.parse(run.stderr) as { addons: string[] }).addons).to.not.include('winter-campaign');
    const inside = signet(args.map((a) => (a === '2026-11-15T20:00' ? '2026-11-16T04:00' : a)), message, { ...process.env, TZ: 'America/Los_Angeles' });
    expect((JSON.parse(inside.stderr) as { addons: string[] }).addons).to.include('winter-campaign');
  });

  it('refuses a broken directory file with one line naming it', () => {
    const file = join(dir, 'bad-directory.yaml');
    writeFileSync(file, 'users:\n  - mail: not-an-address\n  - mail: also@bad\n');
    const run = signet(['--org', ORG, '--from', 'tom.okafor@contoso.com', '--directory', file], message);
    expect(run.status).to.not.equal(0);
    expect(run.stderr.trim().split('\n'), run.stderr).to.have.length(1);
    expect(run.stderr).to.include(file).and.to.include('users[0].mail');
  });

  it('--out writes into a pipe or device as it is and through a symbolic link, never renaming over them', async () => {
    const folder = mkdtempSync(join(dir, 'special-'));
    const fifo = join(folder, 'pipe');
    expect(spawnSync('mkfifo', [fifo]).status).to.equal(0);
    const reader = spawn('cat', [fifo]);
    let received = '';
    reader.stdout.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    const readerDone = new Promise<void>((done) => reader.once('close', () => done()));
    try {
      const run = signet(['--org', ORG, '--from', 'tom.okafor@contoso.com', '--out', fifo], message);
      expect(run.status, run.stderr).to.equal(0);
      expect(lstatSync(fifo).isFIFO()).to.equal(true);
    } finally {
      if (reader.exitCode === null) reader.kill();
    }
    await readerDone;
    expect(received).to.include('Here is the offer.');
    const target = join(folder, 'target.eml');
    writeFileSync(target, 'old');
    symlinkSync(target, join(folder, 'link.eml'));
    const linked = signet(['--org', ORG, '--from', 'tom.okafor@contoso.com', '--out', join(folder, 'link.eml')], message);
    expect(linked.status, linked.stderr).to.equal(0);
    expect(lstatSync(join(folder, 'link.eml')).isSymbolicLink()).to.equal(true);
    expect(readFileSync(target, 'latin1')).to.include('Here is the offer.');
  });
});

