// The runbooks are executable documentation: every `signet …` command in their
// `sh` blocks that can run here is run, as written, in a shell whose session
// variables point at local stand-ins (the example organization, the fixture
// stack outputs, a local key file instead of the Key Vault key, a file path
// instead of the blob URL). Commands that need the tenant's Azure resources
// or Exchange Online are listed below with the reason they are skipped.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';

const ROOT = resolve(__dirname, '../..');
const RUNBOOKS = join(ROOT, 'runbooks');
const HEADINGS = ['## Purpose', '## Prerequisites', '## Steps', '## Verify', '## Roll back'];
const hasChromium = spawnSync(process.env.SIGNET_CHROMIUM ?? 'chromium', ['--version'], { encoding: 'utf8' }).status === 0;

/** Commands not run here, and why. */
const SKIPPED: Array<[pattern: RegExp, reason: string]> = [
  [/^signet status\b/, "reads the tenant's running nodes over HTTP (signet status itself is tested against live loopback nodes in test/fleet)"],
];

const runbookFiles = () => readdirSync(RUNBOOKS).filter((f) => f.endsWith('.md') && f !== 'README.md').sort();

/** `sh` fenced blocks, continuation lines joined. */
function shellCommands(markdown: string): string[] {
  const commands: string[] = [];
  for (const block of markdown.matchAll(/^[ \t]*```sh\n([\s\S]*?)^[ \t]*```/gm)) {
    let pending = '';
    for (const raw of block[1]!.split('\n')) {
      const line = raw.trim();
      if (line.endsWith('\\')) {
        pending += `${line.slice(0, -1)} `;
        continue;
      }
      const full = (pending + line).trim();
      pending = '';
      if (full) commands.push(full);
    }
  }
  return commands;
}

interface Workspace {
  dir: string;
  env: NodeJS.ProcessEnv;
}

function signet(env: NodeJS.ProcessEnv, args: string[]): void {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/signet.js'), ...args], { encoding: 'utf8', env, cwd: ROOT });
  if (r.status !== 0) throw new Error(`setup: signet ${args.join(' ')}: ${r.stderr}`);
}

function envFor(dir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PATH: `${join(dir, 'bin')}:${process.env.PATH ?? ''}`,
    TENANT: 'contoso',
    ORG_DIR: join(dir, 'org'),
    WORK: join(dir, 'work'),
    OUTPUTS: join(dir, 'work', 'outputs.json'),
    ORG_KEY: `file:${join(dir, 'org.key')}`,
    BUNDLE_URL: join(dir, 'published', 'contoso.bundle'),
    VAULT: 'kv-signet-contoso-4f2a',
    RG: 'rg-signet-contoso',
    SIGNET_AUTHOR: 'runbook-test',
  };
}

// The session variables of runbooks/README.md, pointing at local stand-ins.
// Built once (key, running bundle, published copy), then copied per runbook.
let template: string | undefined;
function workspace(): Workspace {
  if (!template) {
    template = mkdtempSync(join(tmpdir(), 'signet-runbook-template-'));
    const env = envFor(template);
    mkdirSync(join(template, 'bin'));
    writeFileSync(join(template, 'bin', 'signet'), `#!/bin/sh\nexec "${process.execPath}" "${join(ROOT, 'bin/signet.js')}" "$@"\n`);
    chmodSync(join(template, 'bin', 'signet'), 0o755);
    mkdirSync(env.WORK!);
    mkdirSync(join(template, 'published'));
    cpSync(join(ROOT, 'config/examples/contoso'), env.ORG_DIR!, { recursive: true });
    cpSync(join(ROOT, 'test/fixtures/stack-outputs.json'), env.OUTPUTS!);
    signet(env, ['keys', 'create-local', join(template, 'org.key')]);
    // What `az storage blob download` would have fetched: the running version.
    signet(env, ['config', 'seal', env.ORG_DIR!, '--key', env.ORG_KEY!, '--out', join(env.WORK!, 'current.bundle'), '--version', '1000']);
    signet(env, ['config', 'publish', join(env.WORK!, 'current.bundle'), '--to', env.BUNDLE_URL!]);
  }
  const dir = mkdtempSync(join(tmpdir(), 'signet-runbook-'));
  cpSync(template, dir, { recursive: true });
  writeFileSync(join(dir, 'bin', 'signet'), readFileSync(join(template, 'bin', 'signet')));
  chmodSync(join(dir, 'bin', 'signet'), 0o755);
  return { dir, env: envFor(dir) };
}

describe('runbooks', () => {
  it('each has Purpose, Prerequisites, Steps, Verify and Roll back, in that order', () => {
    const files = runbookFiles();
    expect(files.length).to.be.at.least(11);
    for (const file of files) {
      const text = readFileSync(join(RUNBOOKS, file), 'utf8');
      expect(text, file).to.match(/^# \S/);
      const positions = HEADINGS.map((h) => text.search(new RegExp(`^${h}$`, 'm')));
      for (const [i, p] of positions.entries()) expect(p, `${file}: ${HEADINGS[i]}`).to.be.greaterThan(-1);
      expect([...positions].sort((a, b) => a - b), `${file}: heading order`).to.deep.equal(positions);
    }
  });

  it('the procedures the operators need all exist, and the index links each of them', () => {
    const index = readFileSync(join(RUNBOOKS, 'README.md'), 'utf8');
    for (const name of [
      'onboard-tenant', 'change-signatures', 'rotate-org-key', 'renew-tenant-certificate', 'scale-nodes', 'drain-replace-node',
      'upgrade-appliance', 'pause-resume-signing', 'incident-mail-delayed', 'offboard-tenant', 'refresh-exo-ip-ranges',
    ]) {
      expect(existsSync(join(RUNBOOKS, `${name}.md`)), name).to.equal(true);
    }
    for (const file of runbookFiles()) expect(index, file).to.include(`](${file})`);
  });

  it('every relative link points at an existing file', () => {
    for (const file of [...runbookFiles(), 'README.md']) {
      const text = readFileSync(join(RUNBOOKS, file), 'utf8');
      for (const m of text.matchAll(/\]\(([^)#\s]+\.md)(#[^)]*)?\)/g)) {
        expect(existsSync(join(RUNBOOKS, m[1]!)), `${file} → ${m[1]}`).to.equal(true);
      }
    }
  });

  it("every alert's runbook_url names an existing runbook", () => {
    const alerts = parseYaml(readFileSync(join(ROOT, 'monitoring/prometheus/alerts.yaml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; annotations: { runbook_url: string } }> }> };
    const rules = alerts.groups.flatMap((g) => g.rules);
    expect(rules.length).to.be.greaterThan(6);
    for (const rule of rules) {
      expect(rule.annotations.runbook_url, rule.alert).to.match(/^runbooks\/[a-z0-9-]+\.md$/);
      expect(existsSync(join(ROOT, rule.annotations.runbook_url)), `${rule.alert}: ${rule.annotations.runbook_url}`).to.equal(true);
    }
  });

  describe('every signet command in the runbooks runs here (local stand-ins for Azure)', function () {
    this.timeout(600_000);
    const ran: string[] = [];
    const skipped: Array<[string, string]> = [];

    after(() => {
      if (template) rmSync(template, { recursive: true, force: true });
      // Listed in the test output so a reader sees what was not run, and why.
      for (const [command, reason] of skipped) process.stdout.write(`      skipped: ${command}\n        (${reason})\n`);
    });

    for (const file of ['README.md', ...runbookFiles()]) {
      const commands = shellCommands(readFileSync(join(RUNBOOKS, file), 'utf8')).filter((c) => c.startsWith('signet '));
      if (!commands.length) continue;
      it(`${file}: ${commands.length} signet command(s)`, function () {
        const ws = workspace();
        try {
          for (const command of commands) {
            const skip = SKIPPED.find(([pattern]) => pattern.test(command));
            if (skip) {
              skipped.push([`${file}: ${command}`, skip[1]]);
              continue;
            }
            if (/ --png /.test(command) && !hasChromium) {
              skipped.push([`${file}: ${command}`, 'chromium is not installed (.ci/run installs it)']);
              continue;
            }
            const r = spawnSync('sh', ['-c', command], { encoding: 'utf8', env: ws.env, cwd: ws.dir, timeout: 280_000 });
            expect(r.status, `${file}: ${command}\n${r.stdout}\n${r.stderr}`).to.equal(0);
            ran.push(command);
          }
        } finally {
          rmSync(ws.dir, { recursive: true, force: true });
        }
      });
    }

    it('ran the commands that matter', () => {
      const all = ran.join('\n');
      for (const wanted of ['signet config validate', 'signet config seal', 'signet config publish', 'signet config diff', 'signet connectors script', 'signet connectors pause', 'signet connectors remove', 'signet explain', 'signet preview']) {
        expect(all, wanted).to.include(wanted);
      }
    });
  });
});
