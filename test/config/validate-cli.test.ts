import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { Command } from 'commander';
import { configCommand, stackMismatches } from '../../appliance/src/cli/commands/config-validate';
import type { OrgConfig } from '../../appliance/src/config';
import type { StackOutputs } from '../../appliance/src/fleet';
import { EXAMPLE_DIR, REPO_ROOT } from './helpers';

const run = promisify(execFile);
const NODE = path.resolve(REPO_ROOT, 'node_modules/.bin/node');
const SIGNET = path.resolve(REPO_ROOT, 'bin/signet.js');

async function signet(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(NODE, [SIGNET, ...args], { cwd: REPO_ROOT, timeout: 15000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout: string; stderr: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('signet config validate', () => {
  let tmp: string;
  beforeEach(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'signet-validate-'));
  });
  afterEach(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  it('accepts the example organization with a one-line summary and exit 0', async () => {
    const result = await signet('config', 'validate', EXAMPLE_DIR);
    expect(result.stderr).to.equal('');
    expect(result.code).to.equal(0);
    expect(result.stdout).to.equal(
      'OK contoso (Contoso Ltd): 8 rules, 4 templates, 2 add-ons, 2 images, 3 user overrides, 8 directory users\n',
    );
  });

  it('prints every problem of a broken copy as file:line path: message and exits 1', async () => {
    const dir = path.join(tmp, 'broken');
    await fs.cp(EXAMPLE_DIR, dir, { recursive: true });
    const rules = (await fs.readFile(path.join(dir, 'rules.yaml'), 'utf8'))
      .replace('template: ceo', 'template: chief')
      .replace('kinds: [new]', 'kinds: [novel]');
    await fs.writeFile(path.join(dir, 'rules.yaml'), rules);
    const ceoLine = rules.split('\n').findIndex((l) => l.includes('template: chief')) + 1;
    const kindsLine = rules.split('\n').findIndex((l) => l.includes('kinds: [novel]')) + 1;
    await fs.writeFile(path.join(dir, 'templates', 'reply.txt.ejs'), '-- \n<%= user.displayName\n');
    const directory = (await fs.readFile(path.join(dir, 'directory.yaml'), 'utf8')).replace('groups: [legal]', 'groups: [lawyers]');
    await fs.writeFile(path.join(dir, 'directory.yaml'), directory);
    const lawyersLine = directory.split('\n').findIndex((l) => l.includes('[lawyers]')) + 1;

    const result = await signet('config', 'validate', dir);
    expect(result.code).to.equal(1);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines).to.deep.equal([
      `${path.join(dir, 'directory.yaml')}:${lawyersLine} users[4].groups[0]: unknown group "lawyers"`,
      `${path.join(dir, 'rules.yaml')}:${ceoLine} rules[2].template: unknown template "chief": there is no templates/chief.html.ejs`,
      `${path.join(dir, 'rules.yaml')}:${kindsLine} rules[7].match.kinds[0]: the text "novel" is not one of: new, reply, forward`,
      `${path.join(dir, 'templates/reply.txt.ejs')}:2: EJS: "<%=" is never closed with "%>"`,
      `4 problems in ${dir}`,
    ]);
  });

  it('warns, without failing, about a rule group no user of the local directory is in (and its exception groups)', async () => {
    const dir = path.join(tmp, 'groups');
    await fs.cp(EXAMPLE_DIR, dir, { recursive: true });
    const rules = (await fs.readFile(path.join(dir, 'rules.yaml'), 'utf8')).replace('groups: [Sales]', 'groups: [Salez]').replace('- groups: [Legal]', '- groups: [legal-team]');
    await fs.writeFile(path.join(dir, 'rules.yaml'), rules);
    const line = (text: string) => rules.split('\n').findIndex((l) => l.includes(text)) + 1;

    const result = await signet('config', 'validate', dir);
    expect(result.code).to.equal(0);
    const out = result.stdout.trimEnd().split('\n');
    expect(out.slice(0, -1)).to.deep.equal([
      `warning: ${path.join(dir, 'rules.yaml')}:${line('[Salez]')} rules[3].match.groups[0]: no user in directory.yaml is in group "Salez" (by id or name), so this matches nobody there`,
      `warning: ${path.join(dir, 'rules.yaml')}:${line('[legal-team]')} rules[7].except[0].groups[0]: no user in directory.yaml is in group "legal-team" (by id or name), so this matches nobody there`,
    ]);
    expect(out.at(-1)).to.match(/^OK contoso .* \(2 warnings\)$/);

    // without a local directory there is nothing to compare with
    await fs.rm(path.join(dir, 'directory.yaml'));
    const without = await signet('config', 'validate', dir);
    expect(without.code).to.equal(0);
    expect(without.stdout).to.not.include('warning');
  });

  it('reports what a node would refuse at its trial render (a misspelt name), with file and line, and exits 1', async () => {
    const dir = path.join(tmp, 'render');
    await fs.cp(EXAMPLE_DIR, dir, { recursive: true });
    const file = path.join(dir, 'templates', 'default.html.ejs');
    const html = (await fs.readFile(file, 'utf8')).replace('<%= user.displayName %>', '<%= dispayName %>');
    await fs.writeFile(file, html);
    const line = html.split('\n').findIndex((l) => l.includes('dispayName')) + 1;
    const result = await signet('config', 'validate', dir);
    expect(result.code).to.equal(1);
    expect(result.stdout).to.equal(`${file}:${line}: dispayName is not defined\n1 problem in ${dir}\n`);
  });

  it('reports a folder that does not exist as a problem, not a crash', async () => {
    const result = await signet('config', 'validate', path.join(tmp, 'absent'));
    expect(result.code).to.equal(1);
    expect(result.stdout).to.include(`${path.join(tmp, 'absent')}: cannot read the organization folder: no such folder`);
  });

  it('shares one `config` command group with the other config subcommands', () => {
    const program = new Command('signet');
    const first = configCommand(program);
    first.command('seal');
    const again = configCommand(program);
    expect(again).to.equal(first);
    expect(program.commands.filter((c) => c.name() === 'config')).to.have.length(1);
    expect(again.commands.map((c) => c.name())).to.deep.equal(['seal']);
  });

  it('with --stack-outputs, refuses an organization whose accepted domains lack one the stack routes (it would bounce) and warns about one the stack does not route', async () => {
    const outputs = JSON.parse(await fs.readFile(path.join(REPO_ROOT, 'test/fixtures/stack-outputs.json'), 'utf8')) as Record<string, unknown>;
    const same = path.join(tmp, 'same.json');
    await fs.writeFile(same, JSON.stringify(outputs));
    const ok = await signet('config', 'validate', EXAMPLE_DIR, '--stack-outputs', same);
    expect(ok.code, ok.stdout + ok.stderr).to.equal(0);
    expect(ok.stdout).to.match(/^OK contoso /);

    const differs = path.join(tmp, 'differs.json');
    await fs.writeFile(differs, JSON.stringify({ ...outputs, orgId: 'contoso-ltd', acceptedDomains: ['contoso.com', 'contoso.de'] }));
    const refused = await signet('config', 'validate', EXAMPLE_DIR, '--stack-outputs', differs);
    expect(refused.code).to.equal(1);
    expect(refused.stdout).to.contain('org.yaml:3 orgId: is "contoso", the stack\'s is "contoso-ltd"');
    expect(refused.stdout).to.match(/org\.yaml:\d+ acceptedDomains: lacks contoso\.de, which the stack's signet:acceptedDomains has/);

    const fewer = path.join(tmp, 'fewer.json');
    await fs.writeFile(fewer, JSON.stringify({ ...outputs, acceptedDomains: ['contoso.com'] }));
    const warned = await signet('config', 'validate', EXAMPLE_DIR, '--stack-outputs', fewer);
    expect(warned.code).to.equal(0);
    expect(warned.stdout).to.contain('warning: ');
    expect(warned.stdout).to.contain('acceptedDomains: contoso.co.uk is not in the stack\'s signet:acceptedDomains');
  });

  it('compares accepted domains as the relay does: an internationalized domain in Unicode and in punycode is one domain', () => {
    const org = { orgId: 'contoso', acceptedDomains: ['Bücher.example', 'contoso.com'] } as OrgConfig;
    const outputs = { orgId: 'contoso', acceptedDomains: ['xn--bcher-kva.example', 'CONTOSO.com'] } as StackOutputs;
    expect(stackMismatches(org, outputs, undefined)).to.deep.equal({ issues: [], warnings: [] });
    const other = stackMismatches(org, { ...outputs, acceptedDomains: ['contoso.com'] }, undefined);
    expect(other.warnings.map((w) => w.message)).to.deep.equal(["xn--bcher-kva.example is not in the stack's signet:acceptedDomains: the transport rule does not route its senders to Signet, so their mail goes out unsigned"]);
  });
});
