// The runbooks are executable documentation: every `signet …` command in their
// `sh` blocks is run, as written, in a shell whose session variables point at
// local stand-ins (the example organization, the fixture stack outputs, a local
// key file instead of the Key Vault key, a file path instead of the blob URL,
// loopback stand-ins for the nodes' HTTP port). So is every
// `az storage blob download` of the published bundle, through a stub `az` that
// copies the file: a runbook that reads `$WORK/current.bundle` without
// downloading it first fails here. Other `az`, `pulumi` and Exchange Online
// commands need the tenant's Azure resources and are checked statically only.
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';

const ROOT = resolve(__dirname, '../..');
const RUNBOOKS = join(ROOT, 'runbooks');
const HEADINGS = ['## Purpose', '## Prerequisites', '## Steps', '## Verify', '## Roll back'];
const hasChromium = spawnSync(process.env.SIGNET_CHROMIUM ?? 'chromium', ['--version'], { encoding: 'utf8' }).status === 0;

/** Commands not run here, and why. */
const SKIPPED: Array<[pattern: RegExp, reason: string]> = [];

/** Changes made to a command before it runs here, and why. */
const REWRITES: Array<[pattern: RegExp, rewrite: (command: string) => string, reason: string]> = [
  [/^signet status\b/, (c) => `${c.replace(/ --interval \d+/, '')} --interval 0`, 'the stand-in nodes have nothing to count over an interval'],
];

const runbookFiles = () => readdirSync(RUNBOOKS).filter((f) => f.endsWith('.md') && f !== 'README.md').sort();
const read = (file: string) => readFileSync(join(RUNBOOKS, file), 'utf8');

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

/** Commands run here: the operator CLI, and downloads of the published bundle (stub `az`). */
const runnable = (command: string) => command.startsWith('signet ') || command.startsWith('az storage blob download ');

/**
 * A command's shell variables: the ones it assigns (`X=`, `export X=`, `for X in`)
 * and the ones it reads (`$X`, `${X}`), outside single quotes.
 */
function shellVariables(command: string): { uses: string[]; defines: string[] } {
  const uses: string[] = [];
  let unquoted = '';
  let state: 'none' | 'single' | 'double' = 'none';
  for (let i = 0; i < command.length; i++) {
    const ch = command[i]!;
    if (state === 'single') {
      if (ch === "'") state = 'none';
      unquoted += ' ';
      continue;
    }
    if (ch === '\\') {
      unquoted += '  ';
      i++;
      continue;
    }
    if (ch === '$') {
      const m = /^\$\{?([A-Za-z_][A-Za-z0-9_]*)/.exec(command.slice(i));
      if (m) uses.push(m[1]!);
    }
    if (state === 'none' && ch === "'") state = 'single';
    else if (ch === '"') state = state === 'double' ? 'none' : 'double';
    unquoted += state === 'double' || ch === '"' || ch === "'" ? ' ' : ch;
  }
  const defines = [
    ...[...unquoted.matchAll(/(?:^|[\s;&|(])(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=/g)].map((m) => m[1]!),
    ...[...unquoted.matchAll(/\bfor\s+([A-Za-z_][A-Za-z0-9_]*)\s+in\b/g)].map((m) => m[1]!),
  ];
  return { uses, defines };
}

/** Variables a command reads before any earlier command (or the session) set them. */
function undefinedVariables(commands: string[], given: Iterable<string>): string[] {
  const defined = new Set(['HOME', ...given]);
  const missing: string[] = [];
  for (const command of commands) {
    const { uses, defines } = shellVariables(command);
    for (const name of uses) if (!defined.has(name) && !defines.includes(name)) missing.push(`$${name} in: ${command}`);
    for (const name of defines) defined.add(name);
  }
  return missing;
}

interface Workspace {
  dir: string;
  env: NodeJS.ProcessEnv;
}

function signet(env: NodeJS.ProcessEnv, args: string[]): void {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/signet.js'), ...args], { encoding: 'utf8', env, cwd: ROOT });
  if (r.status !== 0) throw new Error(`setup: signet ${args.join(' ')}: ${r.stderr}`);
}

function run(command: string, ws: Workspace): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    const child = spawn('sh', ['-c', command], { env: ws.env, cwd: ws.dir, timeout: 280_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (status) => resolveRun({ status, stdout, stderr }));
  });
}

function envFor(dir: string): NodeJS.ProcessEnv {
  const orgKey = `file:${join(dir, 'org.key')}`;
  return {
    ...process.env,
    PATH: `${join(dir, 'bin')}:${process.env.PATH ?? ''}`,
    TENANT: 'contoso',
    ORG_DIR: join(dir, 'org'),
    WORK: join(dir, 'work'),
    OUTPUTS: join(dir, 'work', 'outputs.json'),
    ORG_KEY: orgKey,
    // rotate-org-key: "$ORG_KEY/$OLD_KEY_VERSION" in Azure; a key file has a single version
    OLD_KEY: orgKey,
    BUNDLE_URL: join(dir, 'published', 'contoso.bundle'),
    VAULT: 'kv-signet-contoso-4f2a',
    RG: 'rg-signet-contoso',
    SIGNET_AUTHOR: 'runbook-test',
  };
}

// `az storage blob download --blob-url URL --file FILE [--auth-mode login]`, where URL is a local path.
const AZ_STUB = `#!/bin/sh
[ "$1 $2 $3" = "storage blob download" ] || { echo "az stub: only 'storage blob download' runs here: $*" >&2; exit 2; }
shift 3
url= file=
while [ $# -gt 0 ]; do
  case "$1" in
    --blob-url) url=$2; shift 2 ;;
    --file) file=$2; shift 2 ;;
    --auth-mode) [ "$2" = login ] || { echo "az stub: --auth-mode $2" >&2; exit 2; }; shift 2 ;;
    *) echo "az stub: unexpected argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$url" ] && [ -n "$file" ] || { echo "az stub: --blob-url and --file are required" >&2; exit 2; }
cp "$url" "$file"
`;

// The session variables of runbooks/README.md, pointing at local stand-ins.
// Built once (key, published bundle, stack outputs whose nodes' public names
// are the loopback stand-in), then copied per runbook. Nothing is in $WORK but
// the outputs: a bundle a runbook needs, it must download.
let template: string | undefined;
function workspace(httpPort: number): Workspace {
  if (!template) {
    template = mkdtempSync(join(tmpdir(), 'signet-runbook-template-'));
    const env = envFor(template);
    mkdirSync(join(template, 'bin'));
    writeFileSync(join(template, 'bin', 'signet'), `#!/bin/sh\nexec "${process.execPath}" "${join(ROOT, 'bin/signet.js')}" "$@"\n`);
    writeFileSync(join(template, 'bin', 'az'), AZ_STUB);
    mkdirSync(env.WORK!);
    mkdirSync(join(template, 'published'));
    cpSync(join(ROOT, 'config/examples/contoso'), env.ORG_DIR!, { recursive: true });
    // Public names reach the stand-in; private addresses stay the fixture's (not reachable from here).
    const outputs = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/stack-outputs.json'), 'utf8')) as { httpPort: number; nodes: Array<{ fqdn: string }> };
    outputs.httpPort = httpPort;
    for (const node of outputs.nodes) node.fqdn = '127.0.0.1';
    writeFileSync(env.OUTPUTS!, JSON.stringify(outputs, null, 2));
    signet(env, ['keys', 'create-local', join(template, 'org.key')]);
    // What the nodes run: version 1000, published where `az storage blob download` fetches it.
    signet(env, ['config', 'seal', env.ORG_DIR!, '--key', env.ORG_KEY!, '--out', join(template, 'running.bundle'), '--version', '1000']);
    signet(env, ['config', 'publish', join(template, 'running.bundle'), '--to', env.BUNDLE_URL!]);
    rmSync(join(template, 'running.bundle'));
  }
  const dir = mkdtempSync(join(tmpdir(), 'signet-runbook-'));
  cpSync(template, dir, { recursive: true });
  for (const tool of ['signet', 'az']) {
    writeFileSync(join(dir, 'bin', tool), readFileSync(join(template, 'bin', tool)));
    chmodSync(join(dir, 'bin', tool), 0o755);
  }
  return { dir, env: envFor(dir) };
}

// A node's HTTP port as the relay serves it (/readyz, /metrics): ready, running the published version.
interface StandInNode {
  server: Server;
  port: number;
  requests: number;
}

async function startStandInNode(): Promise<StandInNode> {
  const node = { requests: 0 } as StandInNode;
  const metrics = [
    '# TYPE signet_messages_total counter',
    'signet_messages_total{outcome="signed",reason="signed"} 12',
    '# TYPE signet_config_info gauge',
    'signet_config_info{org="contoso",version="1000"} 1',
    '# TYPE signet_certificate_expiry_timestamp_seconds gauge',
    `signet_certificate_expiry_timestamp_seconds{certificate="node",subject="CN=k7q2m9x4t1.contoso.signet-relay.net"} ${Math.floor(Date.now() / 1000) + 90 * 86_400}`,
    '# TYPE signet_downstream_up gauge',
    'signet_downstream_up{cause="none"} 1',
    '',
  ].join('\n');
  node.server = createServer((req, res) => {
    node.requests++;
    if (req.url === '/readyz') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ready: true, reasons: [] }));
    else if (req.url === '/metrics') res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(metrics);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => node.server.listen(0, '127.0.0.1', r));
  node.port = (node.server.address() as AddressInfo).port;
  return node;
}

describe('runbooks', () => {
  it('each has Purpose, Prerequisites, Steps, Verify and Roll back, in that order', () => {
    const files = runbookFiles();
    expect(files.length).to.be.at.least(11);
    for (const file of files) {
      const text = read(file);
      expect(text, file).to.match(/^# \S/);
      const positions = HEADINGS.map((h) => text.search(new RegExp(`^${h}$`, 'm')));
      for (const [i, p] of positions.entries()) expect(p, `${file}: ${HEADINGS[i]}`).to.be.greaterThan(-1);
      expect([...positions].sort((a, b) => a - b), `${file}: heading order`).to.deep.equal(positions);
    }
  });

  it('the procedures the operators need all exist, and the index links each of them', () => {
    const index = read('README.md');
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
      const text = read(file);
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

  it('every pulumi preview and pulumi up applies the policy pack, as the README deploys', () => {
    let seen = 0;
    for (const file of runbookFiles()) {
      for (const command of shellCommands(read(file)).filter((c) => /^pulumi (preview|up)\b/.test(c))) {
        seen++;
        expect(command, file).to.match(/ --policy-pack infra\/policy(\s|$)/);
      }
    }
    expect(seen).to.be.greaterThan(8);
  });

  it("signet status reaches the nodes by their public names, from signet:operatorRanges (the README says so)", () => {
    for (const file of [...runbookFiles(), 'README.md']) {
      // In sh blocks and in inline code alike.
      for (const m of read(file).matchAll(/signet status --stack-outputs[^`\n]*/g)) expect(m[0], file).to.match(/ --via (fqdn|private)\b/);
    }
    const index = read('README.md');
    expect(index).to.match(/--via fqdn/);
    expect(index).to.match(/signet:operatorRanges/);
    expect(index).to.match(/--via private/);
  });

  it('each runbook sets a shell variable before it reads it (onboard-tenant starts without a session)', () => {
    const session = shellCommands(read('README.md'));
    expect(undefinedVariables(session, []), 'README session block').to.deep.equal([]);
    const given = session.flatMap((c) => shellVariables(c).defines);
    expect(given).to.include.members(['TENANT', 'WORK', 'OUTPUTS', 'ORG_KEY', 'BUNDLE_URL', 'VAULT', 'RG']);
    for (const file of runbookFiles()) {
      expect(undefinedVariables(shellCommands(read(file)), file === 'onboard-tenant.md' ? [] : given), file).to.deep.equal([]);
    }
  });

  it('reads no bundle it has not downloaded or sealed (the test workspace has none)', () => {
    // A guard on the dynamic check below: $WORK starts with the stack outputs only.
    const ws = workspace(1);
    try {
      expect(readdirSync(ws.env.WORK!)).to.deep.equal(['outputs.json']);
    } finally {
      rmSync(ws.dir, { recursive: true, force: true });
      rmSync(template!, { recursive: true, force: true });
      template = undefined;
    }
  });

  describe('every signet command in the runbooks runs here (local stand-ins for Azure and the nodes)', function () {
    this.timeout(600_000);
    const ran: string[] = [];
    const skipped: Array<[string, string]> = [];
    let node: StandInNode;

    before(async () => {
      node = await startStandInNode();
    });

    after(async () => {
      if (template) rmSync(template, { recursive: true, force: true });
      template = undefined;
      await new Promise<void>((r) => node.server.close(() => r()));
      // Listed in the test output so a reader sees what was not run, and why.
      for (const [command, reason] of skipped) process.stdout.write(`      skipped: ${command}\n        (${reason})\n`);
    });

    for (const file of ['README.md', ...runbookFiles()]) {
      const commands = shellCommands(read(file)).filter(runnable);
      if (!commands.length) continue;
      it(`${file}: ${commands.length} command(s)`, async function () {
        const ws = workspace(node.port);
        try {
          for (const written of commands) {
            const skip = SKIPPED.find(([pattern]) => pattern.test(written));
            if (skip) {
              skipped.push([`${file}: ${written}`, skip[1]]);
              continue;
            }
            if (/ --png /.test(written) && !hasChromium) {
              skipped.push([`${file}: ${written}`, 'chromium is not installed (.ci/run installs it)']);
              continue;
            }
            const command = REWRITES.reduce((c, [pattern, rewrite]) => (pattern.test(c) ? rewrite(c) : c), written);
            const before = node.requests;
            const r = await run(command, ws);
            expect(r.status, `${file}: ${command}\n${r.stdout}\n${r.stderr}`).to.equal(0);
            if (command.startsWith('signet status ')) {
              expect(node.requests, `${file}: ${command} did not reach the nodes' stand-in`).to.be.greaterThan(before);
              expect(r.stdout, `${file}: ${command}`).to.match(/contoso@1000/);
            }
            ran.push(written);
          }
        } finally {
          rmSync(ws.dir, { recursive: true, force: true });
        }
      });
    }

    it('ran the commands that matter', () => {
      const all = ran.join('\n');
      for (const wanted of [
        'signet config validate', 'signet config seal', 'signet config publish', 'signet config diff', 'signet config unseal', 'signet config reseal',
        'signet connectors script', 'signet connectors pause', 'signet connectors remove', 'signet explain', 'signet preview',
        'signet status --stack-outputs "$OUTPUTS" --via fqdn', 'az storage blob download', 'signet config seal "$ORG_DIR" --key "$OLD_KEY"',
      ]) {
        expect(all, wanted).to.include(wanted);
      }
    });
  });
});
