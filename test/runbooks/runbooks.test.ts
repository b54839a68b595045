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
import { z } from 'zod';
import type { Command } from 'commander';
import { buildProgram } from '../../appliance/src/cli/program';
import { connectorsScript, pauseScript, removeScript, resumeScript } from '../../appliance/src/exchange';
import { loadStackOutputs } from '../../appliance/src/fleet';
import { createMetrics } from '../../appliance/src/observability/metrics';
import { stackConfigSchema } from '../../infra/config';
import { STACK_OUTPUT_NAMES } from '../../infra/outputs';

const ROOT = resolve(__dirname, '../..');
const RUNBOOKS = join(ROOT, 'runbooks');
const HEADINGS = ['## Purpose', '## Prerequisites', '## Steps', '## Verify', '## Roll back'];
const hasChromium = spawnSync(process.env.SIGNET_CHROMIUM ?? 'chromium', ['--version'], { encoding: 'utf8' }).status === 0;

/** Commands not run here, and why. */
const SKIPPED: Array<[pattern: RegExp, reason: string]> = [];

/** Changes made to a command before it runs here, and why. */
const REWRITES: Array<[pattern: RegExp, rewrite: (command: string, standIn: { port: number }) => string, reason: string]> = [
  [/^signet status\b/, (c) => `${c.replace(/ --interval \d+/, '')} --interval 0`, 'the stand-in nodes have nothing to count over an interval'],
  [/^signet status\b.* --node http:\/\/localhost:\d+/, (c, standIn) => c.replace(/http:\/\/localhost:\d+/g, `http://127.0.0.1:${standIn.port}`), 'a Bastion tunnel\'s local end is the stand-in node here'],
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

/** Markdown outside fenced blocks (prose and inline code). */
const prose = (markdown: string) => markdown.replace(/^[ \t]*```[\s\S]*?^[ \t]*```/gm, '');

/** Inline code spans of the prose. */
const inlineCode = (markdown: string) => [...prose(markdown).matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);

/** Every fenced block's text, whatever its language. */
const fencedText = (markdown: string) => [...markdown.matchAll(/^[ \t]*```[a-z]*\n([\s\S]*?)^[ \t]*```/gm)].map((m) => m[1]!).join('\n');

/** Shell words of a command (quotes removed; enough for the operator CLI's arguments). */
function shellWords(command: string): string[] {
  const words: string[] = [];
  for (const m of command.matchAll(/"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g)) words.push(m[1] ?? m[2] ?? m[3]!);
  return words;
}

/**
 * Problems of one `signet …` invocation against the CLI's own definition: a
 * subcommand that does not exist, or an option its command does not have.
 */
function cliProblems(program: Command, invocation: string): string[] {
  const words = shellWords(invocation);
  if (words[0] !== 'signet') return [];
  let command = program;
  const problems: string[] = [];
  let i = 1;
  for (; i < words.length && !words[i]!.startsWith('-'); i++) {
    const sub = command.commands.find((c) => c.name() === words[i] || c.aliases().includes(words[i]!));
    if (!sub) {
      // A command with subcommands takes none of its own arguments: this word had to name one.
      if (command.commands.length) problems.push(`${invocation}: "${command.name()}" has no subcommand "${words[i]}"`);
      break;
    }
    command = sub;
  }
  const known = new Set(['--help', ...command.options.flatMap((o) => [o.long, o.short].filter((f): f is string => Boolean(f)))]);
  if (command === program) known.add('--version');
  for (const word of words.slice(1)) {
    if (!/^--?[A-Za-z]/.test(word)) continue;
    const flag = word.split('=')[0]!;
    if (!known.has(flag)) problems.push(`${invocation}: "signet ${command.name()}" has no option ${flag}`);
  }
  return problems;
}

/** Every `signet …` the runbooks name: in sh blocks and in inline code. */
function signetInvocations(markdown: string): string[] {
  return [
    ...shellCommands(markdown).flatMap((c) => c.split(/\s*(?:&&|\|\||;|\|)\s*/)).filter((c) => c.startsWith('signet ')),
    ...inlineCode(markdown).filter((c) => /^signet [a-z]/.test(c)),
  ];
}

/** The stack outputs as `pulumi stack output --json` gives them (the fixture holds every output: test/infra/stack.test.ts). */
function sampleOutputs(): Record<string, unknown> {
  return JSON.parse(readFileSync(join(ROOT, 'test/fixtures/stack-outputs.json'), 'utf8')) as Record<string, unknown>;
}

/**
 * Paths of a jq filter that lead nowhere in `data`: each `|` stage's paths are
 * read from what the stage before produced (`.nodes[] | "\(.name)"` reads each node's name).
 */
function missingJqPaths(filter: string, data: unknown): string[] {
  const missing: string[] = [];
  let contexts: unknown[] = [data];
  for (const stage of filter.split('|')) {
    const paths = [...stage.matchAll(/(?<![\w\])"])\.([A-Za-z_]\w*(?:\[\]|\.[A-Za-z_]\w*)*)/g)].map((m) => m[1]!);
    let results: unknown[] = [];
    for (const path of paths) {
      results = [];
      for (const context of contexts) {
        let values: unknown[] = [context];
        for (const part of path.split('.')) {
          const key = part.replace(/\[\]$/, '');
          values = values.flatMap((v) => {
            const o = v as Record<string, unknown> | null;
            if (o === null || typeof o !== 'object' || !(key in o)) {
              missing.push(`.${path} (at ${key})`);
              return [];
            }
            const next = o[key];
            return part.endsWith('[]') ? (Array.isArray(next) ? next : []) : [next];
          });
        }
        results.push(...values);
      }
    }
    if (paths.length === 1 && stage.trim() === `.${paths[0]}`) contexts = results;
    else if (paths.length) contexts = [];
  }
  return [...new Set(missing)];
}

/** jq filters the runbooks apply to the stack outputs (`jq … FILTER "$OUTPUTS"`). */
const outputsJqFilters = (text: string) =>
  [...text.matchAll(/\bjq\s+(?:-[a-zA-Z]+\s+)*(?:'([^']*)'|([^\s'"]+))\s+"\$OUTPUTS"/g)].map((m) => m[1] ?? m[2]!);

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
    `signet_certificate_expiry_timestamp_seconds{certificate="server",subject="CN=k7q2m9x4t1.contoso.signet-relay.net"} ${Math.floor(Date.now() / 1000) + 90 * 86_400}`,
    '# TYPE signet_downstream_up gauge',
    'signet_downstream_up{cause="none"} 1',
    '',
  ].join('\n');
  node.server = createServer((req, res) => {
    node.requests++;
    if (req.url === '/readyz') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ready', reasons: [] }));
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

  describe('what the runbooks name exists', () => {
    const docs = () => ['README.md', ...runbookFiles()].map((file) => [file, read(file)] as const);

    it('every signet command and option, in sh blocks and inline code, is in the CLI definition', () => {
      const program = buildProgram();
      // The checker itself: a misspelt subcommand and an unknown option are caught, real ones pass.
      expect(cliProblems(program, 'signet config sael x --key k')).to.not.deep.equal([]);
      expect(cliProblems(program, 'signet status --stack-outputs o.json --via fqdn --intervall 5')).to.have.length(1);
      expect(cliProblems(program, 'signet connectors script --stack-outputs o.json --scope all --disabled --out x.ps1')).to.deep.equal([]);
      let seen = 0;
      for (const [file, text] of docs()) {
        for (const invocation of signetInvocations(text)) {
          seen++;
          expect(cliProblems(program, invocation), file).to.deep.equal([]);
        }
      }
      expect(seen).to.be.greaterThan(40);
    });

    it('every jq path into the stack outputs is an output (infra/outputs.ts) with that shape', () => {
      const outputs = sampleOutputs();
      expect(missingJqPaths('.nodes[] | "\\(.name) \\(.thumbprint)"', outputs)).to.deep.equal(['.thumbprint (at thumbprint)']);
      expect(missingJqPaths('.smartHostCname.name', outputs)).to.deep.equal([]);
      expect(missingJqPaths('.orgKey', outputs)).to.have.length(1);
      let seen = 0;
      for (const [file, text] of docs()) {
        for (const filter of outputsJqFilters(text)) {
          seen++;
          expect(missingJqPaths(filter, outputs), `${file}: jq '${filter}'`).to.deep.equal([]);
        }
      }
      expect(seen).to.be.greaterThan(15);
    });

    it('every output `pulumi stack output` reads by name is a stack output (infra/outputs.ts)', () => {
      const names = new Set<string>(STACK_OUTPUT_NAMES);
      /** The output names of `pulumi stack output [flags] NAME` (none for the whole set, `--json`). */
      const named = (text: string) => [...text.matchAll(/\bpulumi stack output\b((?:\s+(?:-s\s+\S+|--[a-z-]+))*)\s+([A-Za-z][A-Za-z0-9]*)\b/g)].map((m) => m[2]!);
      // The reader itself: flags are skipped, the name is read.
      expect(named('x=$(pulumi stack output -s "$TENANT" --show-secrets monitoringFqdn)')).to.deep.equal(['monitoringFqdn']);
      expect(named('pulumi stack output -s "$TENANT" --json --show-secrets > "$WORK/outputs.json"')).to.deep.equal([]);
      let seen = 0;
      for (const [file, text] of docs()) {
        for (const name of [...named(fencedText(text)), ...inlineCode(text).flatMap(named)]) {
          seen++;
          expect(names.has(name), `${file}: pulumi stack output ${name}`).to.equal(true);
        }
      }
      expect(seen).to.be.greaterThan(1);
      // the monitoring VM's name comes from the stack, never from a lookup of the resource by its name
      expect(read('onboard-tenant.md')).to.not.include('az network public-ip show');
    });

    it('every signet: stack setting is a key of infra/config.ts, and so is every key inside it (signet:monitoring.frontDoor)', () => {
      const shape = stackConfigSchema.shape as Record<string, z.ZodType>;
      const keys = new Set(Object.keys(shape));
      /** The settings inside an object-valued key; undefined for other values. Refused keys (z.never: moved) are not settings. */
      const inner = (key: string): Set<string> | undefined => {
        let schema = shape[key];
        while (schema instanceof z.ZodDefault || schema instanceof z.ZodOptional) schema = schema.unwrap() as z.ZodType;
        if (!(schema instanceof z.ZodObject)) return undefined;
        const fields = Object.entries(schema.shape as Record<string, z.ZodType>);
        return new Set(fields.filter(([, f]) => !(f instanceof z.ZodOptional && f.unwrap() instanceof z.ZodNever)).map(([name]) => name));
      };
      // The checker itself: a real nested key, a moved one, and a key without settings inside.
      expect(inner('monitoring')).to.include('frontDoor').and.not.include('privateAccessRanges');
      expect(inner('privateOperatorRanges')).to.equal(undefined);
      // `signet:node` is the tag the stack puts on each node's VM (runbooks find VMs by it), not a setting.
      expect(readFileSync(join(ROOT, 'infra/components/nodes.ts'), 'utf8')).to.include("'signet:node': nodeName");
      let seen = 0;
      let nested = 0;
      for (const [file, text] of [...docs(), ['Pulumi.fabrikam.yaml', readFileSync(join(ROOT, 'Pulumi.fabrikam.yaml'), 'utf8')] as const]) {
        for (const m of text.matchAll(/\bsignet:([A-Za-z][A-Za-z0-9]*)(?:\.([A-Za-z][A-Za-z0-9]*))?/g)) {
          if (m[1] === 'node') continue;
          seen++;
          expect(keys.has(m[1]!), `${file}: signet:${m[1]}`).to.equal(true);
          const sub = inner(m[1]!);
          if (m[2] === undefined || sub === undefined) continue;
          nested++;
          expect(sub.has(m[2]), `${file}: signet:${m[1]}.${m[2]}`).to.equal(true);
        }
      }
      expect(seen).to.be.greaterThan(20);
      expect(nested).to.be.greaterThan(5);
    });

    it('every metric is one the relay exposes', () => {
      const names = new Set(createMetrics({ processMetrics: false }).registry.getMetricsAsArray().map((m) => m.name));
      expect(names.size).to.be.greaterThan(10);
      for (const [file, text] of docs()) {
        for (const m of text.matchAll(/\bsignet_[a-z_]+/g)) {
          const name = m[0].replace(/_(bucket|sum|count)$/, '');
          expect(names.has(name) || names.has(m[0]), `${file}: ${m[0]}`).to.equal(true);
        }
      }
    });

    it('every log event is one the relay logs', () => {
      const source = (dir: string): string[] =>
        readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => readFileSync(join(dir, f), 'utf8'));
      // `event: 'name'`, or `event: cond ? 'one' : 'other'`
      const events = new Set(source(join(ROOT, 'appliance/src')).flatMap((text) =>
        [...text.matchAll(/\bevent: ([^,}]+)/g)].flatMap((m) => [...m[1]!.matchAll(/'([a-z_-]+)'/g)].map((q) => q[1]!))));
      expect(events).to.include('directory_groups_loaded');
      let seen = 0;
      for (const [file, text] of docs()) {
        // snake_case directory/config events, and the kebab-case ones that name a failure
        for (const token of [...inlineCode(text), ...fencedText(text).split(/[^a-z_-]+/)]) {
          if (!/^(directory|config)_[a-z_]+$/.test(token) && !/^(downstream|client-certificate|tls|drain|engine)-[a-z-]*(refused|failed|down|error)$/.test(token)) continue;
          seen++;
          expect(events.has(token), `${file}: log event ${token}`).to.equal(true);
        }
      }
      expect(seen).to.be.greaterThan(8);
    });

    it('every alert named exists, and each alert is handled in the runbook its runbook_url names and listed for it in the index', () => {
      const alerts = parseYaml(readFileSync(join(ROOT, 'monitoring/prometheus/alerts.yaml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; annotations: { runbook_url: string } }> }> };
      const rules = alerts.groups.flatMap((g) => g.rules);
      const names = new Set(rules.map((r) => r.alert));
      for (const [file, text] of docs()) {
        for (const m of text.matchAll(/\bSignet[A-Z][A-Za-z]+\b/g)) expect(names.has(m[0]), `${file}: alert ${m[0]}`).to.equal(true);
      }
      const index = read('README.md');
      for (const rule of rules) {
        const file = rule.annotations.runbook_url.replace(/^runbooks\//, '');
        expect(read(file), `${rule.alert} in ${file}`).to.include(`\`${rule.alert}\``);
        const row = index.split('\n').find((line) => line.startsWith(`| [${file.replace(/\.md$/, '')}](${file})`));
        expect(row, `index row of ${file}`).to.be.a('string');
        expect(row, `index row of ${file} lists ${rule.alert}`).to.include(`\`${rule.alert}\``);
      }
    });

    it('every dashboard panel named exists in the Grafana dashboard', () => {
      const dashboard = JSON.parse(readFileSync(join(ROOT, 'monitoring/grafana/signet-dashboard.json'), 'utf8')) as { panels: Array<{ title: string; panels?: Array<{ title: string }> }> };
      const titles = new Set(dashboard.panels.flatMap((p) => [p.title, ...(p.panels ?? []).map((q) => q.title)]));
      let seen = 0;
      for (const [file, text] of docs()) {
        // Quoted names in a sentence about the dashboard (a bullet or paragraph).
        for (const paragraph of prose(text).split(/\n(?=\s*[-\d]|\s*\n)/)) {
          if (!/dashboard/i.test(paragraph)) continue;
          for (const m of paragraph.replace(/\s+/g, ' ').matchAll(/"([A-Z][^"]+)"/g)) {
            seen++;
            expect(titles.has(m[1]!), `${file}: dashboard panel "${m[1]}"`).to.equal(true);
          }
        }
      }
      expect(seen).to.be.greaterThan(8);
    });

    it('every repository path named exists', () => {
      for (const [file, text] of docs()) {
        for (const code of [...inlineCode(text), ...shellCommands(text)]) {
          for (const m of code.matchAll(/(?:^|[\s'"(=])((?:infra|monitoring|config|appliance|packaging|test|bin)\/[A-Za-z0-9_./-]*[A-Za-z0-9_])/g)) {
            expect(existsSync(join(ROOT, m[1]!)), `${file}: ${m[1]}`).to.equal(true);
          }
        }
      }
    });

    it('every Exchange Online script a runbook runs is one it generates, and every Signet object it names is one the scripts create', () => {
      const outputs = loadStackOutputs(join(ROOT, 'test/fixtures/stack-outputs.json'));
      const scripts = [
        connectorsScript(outputs, { scope: { kind: 'all' }, internal: false, routeMessageTypes: [], disabled: false }),
        pauseScript(outputs), resumeScript(outputs), removeScript(outputs),
      ].join('\n');
      const objects = new Set([...scripts.matchAll(/-(?:Name|Identity) '(Signet [^']+)'/g)].map((m) => m[1]!));
      expect(objects).to.include.members(['Signet route to relay', 'Signet outbound to relay', 'Signet inbound from relay']);
      for (const file of runbookFiles()) {
        const text = read(file);
        const written = new Set([...text.matchAll(/--out "\$WORK\/([\w.-]+\.ps1)"/g)].map((m) => m[1]!));
        for (const m of text.matchAll(/\.\/([\w.-]+\.ps1)\b/g)) expect(written.has(m[1]!), `${file}: runs ${m[1]} without generating it`).to.equal(true);
        for (const m of text.matchAll(/-Identity '(Signet [^']+)'/g)) expect(objects.has(m[1]!), `${file}: ${m[1]}`).to.equal(true);
      }
    });
  });

  it('steps that could lose or bounce mail come after the steps that make them safe', () => {
    /** Each string's first position in the runbook, in the order given. */
    const inOrder = (file: string, ...marks: string[]) => {
      const all = read(file);
      const text = all.slice(all.indexOf('\n## Steps'));
      const at = marks.map((mark) => text.indexOf(mark));
      for (const [i, p] of at.entries()) expect(p, `${file}: ${marks[i]}`).to.be.greaterThan(-1);
      expect(at, `${file}: ${marks.join(' → ')}`).to.deep.equal([...at].sort((a, b) => a - b));
    };
    // connectors go only after routing is paused and the nodes see no more mail; the key only after the handover
    inOrder('offboard-tenant.md', 'signet connectors pause', './signet-pause.ps1', '--interval 120', 'signet connectors remove', './signet-remove.ps1', 'signet config unseal', 'az keyvault key delete', 'pulumi destroy');
    // routing starts disabled, and is enabled only once the inbound connector exists
    inOrder('onboard-tenant.md', '--disabled', './signet-connectors.ps1', 'Get-InboundConnector', './signet-resume.ps1', '--scope all');
    // old key versions are disabled only after the rotated bundle is published (and the kept ones resealed)
    inOrder('rotate-org-key.md', 'az keyvault key rotate', 'signet config publish "$WORK/rotated.bundle"', 'signet config reseal', '--enabled false');
    // a node is drained before its VM is rebuilt or removed
    inOrder('drain-replace-node.md', '/leave', 'systemctl stop signet.service', '--replace');
    inOrder('scale-nodes.md', 'Scale in', 'Drain it first', 'signet:nodeCount 2');
    // certificates: the new secret version exists before the stack registers its thumbprint
    inOrder('renew-tenant-certificate.md', 'az keyvault secret set', "certificates.nodes[0].certificateFile' certs/$TENANT/node0.pem", 'pulumi up -s "$TENANT"');
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

  it('signet status --via private is reached from signet:privateOperatorRanges, wherever a runbook offers it', () => {
    const section = (text: string, heading: string) => text.slice(text.indexOf(heading), text.indexOf('\n#', text.indexOf(heading) + heading.length));
    const nodes = section(read('README.md'), '### Reaching the nodes');
    // The nodes' section says which list opens which way in, and that the private one is empty by default.
    expect(nodes).to.match(/`--via fqdn`[^]*?`signet:operatorRanges`/).and.match(/`--via private`[^]*?`signet:privateOperatorRanges`/);
    expect(nodes).to.match(/none by default/);
    // Grafana's section names the same setting, and what happens to it once Grafana is published.
    const grafana = section(read('README.md'), '### Reaching Grafana');
    expect(grafana).to.include('signet:privateOperatorRanges').and.include('#reaching-the-nodes').and.match(/reach the nodes only/);
    // A runbook that offers --via private says where it works from, or links to the README section that does.
    for (const file of runbookFiles()) {
      const text = read(file);
      if (!/--via private/.test(text)) continue;
      expect(/signet:privateOperatorRanges|README\.md#reaching-the-nodes/.test(text), file).to.equal(true);
      // no promise of a jump host inside the tenant's own VNet: the stack owns its subnets
      expect(text, file).to.not.match(/jump host in the\s+tenant's VNet/);
    }
    // The setting that moved is named nowhere any more.
    for (const [file, text] of [...runbookFiles(), 'README.md'].map((f) => [f, read(f)] as const).concat([['Pulumi.fabrikam.yaml', readFileSync(join(ROOT, 'Pulumi.fabrikam.yaml'), 'utf8')]])) {
      expect(text, file).to.not.include('privateAccessRanges');
    }
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
            const command = REWRITES.reduce((c, [pattern, rewrite]) => (pattern.test(c) ? rewrite(c, node) : c), written);
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
