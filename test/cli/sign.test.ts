import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

function signet(args: string[], input?: string) {
  // The project's own Node (22), as npm scripts use it.
  return spawnSync(process.execPath, [join(ROOT, 'bin/signet.js'), 'sign', ...args], { cwd: ROOT, input, encoding: 'latin1' });
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
});
