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
// A day inside the example's winter campaign: after it ends, validate warns that it is over.
const DURING_CAMPAIGN = ['--at', '2026-12-01'];

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
    const result = await signet('config', 'validate', EXAMPLE_DIR, ...DURING_CAMPAIGN);
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

  it('checks the photos the local directory names (relative to its folder) and reports a bad one like any problem', async () => {
    const dir = path.join(tmp, 'photos');
    await fs.cp(EXAMPLE_DIR, dir, { recursive: true });
    // the example gives Ingrid photos/ingrid.png; Tom gets one that is not an image
    await fs.writeFile(path.join(dir, 'photos', 'tom.png'), 'a text file, not a PNG');
    const directory = (await fs.readFile(path.join(dir, 'directory.yaml'), 'utf8'))
      .replace('  - mail: tom.okafor@contoso.com\n', '  - mail: tom.okafor@contoso.com\n    photo: photos/tom.png\n');
    expect(directory).to.include('photo: photos/ingrid.png');
    await fs.writeFile(path.join(dir, 'directory.yaml'), directory);
    const line = (text: string) => directory.split('\n').findIndex((l) => l.includes(text)) + 1;
    const tom = directory.split('\n').slice(0, line('photos/tom.png')).filter((l) => l.startsWith('  - mail:')).length - 1;

    const result = await signet('config', 'validate', dir, ...DURING_CAMPAIGN);
    expect(result.stdout.trimEnd().split('\n')).to.deep.equal([
      `${path.join(dir, 'directory.yaml')}:${line('photos/tom.png')} users[${tom}].photo: photos/tom.png: the photo is not a JPEG, PNG or GIF image`,
      `1 problem in ${dir}`,
    ]);
    expect(result.code).to.equal(1);

    await fs.writeFile(path.join(dir, 'photos', 'tom.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0]));
    const fixed = await signet('config', 'validate', dir, ...DURING_CAMPAIGN);
    expect(fixed.stdout).to.match(/^OK contoso .*, 8 directory users\n$/);
    expect(fixed.code).to.equal(0);
  });

  it('warns, without failing, about a rule group no user of the local directory is in (and its exception groups)', async () => {
    const dir = path.join(tmp, 'groups');
    await fs.cp(EXAMPLE_DIR, dir, { recursive: true });
    const rules = (await fs.readFile(path.join(dir, 'rules.yaml'), 'utf8')).replace('groups: [Sales]', 'groups: [Salez]').replace('- groups: [Legal]', '- groups: [legal-team]');
    await fs.writeFile(path.join(dir, 'rules.yaml'), rules);
    const line = (text: string) => rules.split('\n').findIndex((l) => l.includes(text)) + 1;

    const result = await signet('config', 'validate', dir, ...DURING_CAMPAIGN);
    expect(result.code).to.equal(0);
    const out = result.stdout.trimEnd().split('\n');
    expect(out.slice(0, -1)).to.deep.equal([
      `warning: ${path.join(dir, 'rules.yaml')}:${line('[Salez]')} rules[3].match.groups[0]: no user in directory.yaml is in group "Salez" (by id or name), so this matches nobody there`,
      `warning: ${path.join(dir, 'rules.yaml')}:${line('[legal-team]')} rules[7].except[0].groups[0]: no user in directory.yaml is in group "legal-team" (by id or name), so this matches nobody there`,
    ]);
    expect(out.at(-1)).to.match(/^OK contoso .* \(2 warnings\)$/);

    // without a local directory there is nothing to compare with
    await fs.rm(path.join(dir, 'directory.yaml'));
    const without = await signet('config', 'validate', dir, ...DURING_CAMPAIGN);
    expect(without.code).to.equal(0);
    expect(without.stdout).to.not.include('warning');
  });

  it('warns about campaign windows: over, or two campaigns one message gets at once', async () => {
    const dir = path.join(tmp, 'campaigns');
    await fs.cp(EXAMPLE_DIR, dir, { recursive: true });
    const campaign = await fs.readFile(path.join(dir, 'addons', 'winter-campaign.yaml'), 'utf8');
    const windowed = (from: string, until: string) => campaign.replace('from: 2026-11-16', `from: ${from}`).replace('until: 2027-01-01', `until: ${until}`);
    await fs.writeFile(path.join(dir, 'addons', 'spring-campaign.yaml'), windowed('2026-12-15', '2027-04-01'));
    await fs.writeFile(path.join(dir, 'addons', 'webinar.yaml'), windowed('2026-12-20', '2027-01-10'));
    const rules = `${await fs.readFile(path.join(dir, 'rules.yaml'), 'utf8')}
  - id: spring
    description: overlaps the winter campaign from 15 December
    match:
      direction: external
    addons: [spring-campaign]

  - id: internal-spring
    description: internal mail never gets the winter campaign (external only); the spring one is the same campaign
    match:
      direction: internal
    addons: [spring-campaign]

  - id: webinar-and-spring
    description: one rule, two campaigns at once from 20 December
    match:
      kinds: [reply]
    addons: [webinar, spring-campaign]
`;
    await fs.writeFile(path.join(dir, 'rules.yaml'), rules);
    const line = (text: string) => rules.split('\n').findIndex((l) => l.includes(text)) + 1;
    const at = (rule: number, addon: number, text: string) => `warning: ${path.join(dir, 'rules.yaml')}:${line(text)} rules[${rule}].addons[${addon}]: `;
    const summary = (warnings: string) => `OK contoso (Contoso Ltd): 11 rules, 4 templates, 4 add-ons, 2 images, 3 user overrides, 8 directory users (${warnings})`;

    const december = await signet('config', 'validate', dir, ...DURING_CAMPAIGN);
    expect(december.code).to.equal(0);
    // internal mail never gets the winter campaign (external only), nor do replies (new mail only); one
    // warning per pair of campaigns, at the first rule that adds the second of them
    expect(december.stdout.trimEnd().split('\n')).to.deep.equal([
      `${at(8, 0, '[spring-campaign]')}campaigns "winter-campaign" and "spring-campaign" overlap in [2026-12-15, 2027-01-01): a message that rules "winter-campaign" and "spring" both match gets both`,
      `${at(10, 0, '[webinar, spring-campaign]')}campaigns "spring-campaign" and "webinar" overlap in [2026-12-20, 2027-01-10): a message that rules "spring" and "webinar-and-spring" both match gets both`,
      summary('2 warnings'),
    ]);

    // once the webinar is over only one campaign runs: nothing overlaps, two are over
    const february = await signet('config', 'validate', dir, '--at', '2027-02-01');
    expect(february.code).to.equal(0);
    expect(february.stdout.trimEnd().split('\n')).to.deep.equal([
      `${at(7, 0, '[winter-campaign]')}campaign "winter-campaign" ended on 2027-01-01 for rule "winter-campaign": no message gets it any more`,
      `${at(10, 0, '[webinar, spring-campaign]')}campaign "webinar" ended on 2027-01-10 for rule "webinar-and-spring": no message gets it any more`,
      summary('2 warnings'),
    ]);

    // the same rule adding two campaigns at once
    await fs.writeFile(path.join(dir, 'rules.yaml'), rules.replace('addons: [spring-campaign]\n', 'addons: [spring-campaign, webinar]\n'));
    const sameRule = await signet('config', 'validate', dir, '--at', '2026-12-18');
    expect(sameRule.stdout).to.contain('rules[8].addons[1]: campaigns "spring-campaign" and "webinar" overlap in [2026-12-20, 2027-01-10): rule "spring" adds both\n');

    const bad = await signet('config', 'validate', dir, '--at', 'next week');
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.equal('signet: --at: "next week" is not an ISO 8601 date (e.g. 2026-03-01 or 2026-03-01T08:00:00Z)\n');
  });

  it('warns at a rule an earlier stop rule always stops before, with its line, and exits 0', async () => {
    const dir = path.join(tmp, 'shadowed');
    await fs.cp(EXAMPLE_DIR, dir, { recursive: true });
    const rules = `${await fs.readFile(path.join(dir, 'rules.yaml'), 'utf8')}
  - id: sales-disclaimer
    description: stops at every message from the sales group
    match:
      groups: [sales]
    addons: [legal-disclaimer]
    stop: true

  - id: sales-replies
    description: never reached
    match:
      groups: [sales]
      kinds: [reply]
    template: reply
`;
    await fs.writeFile(path.join(dir, 'rules.yaml'), rules);
    const line = rules.split('\n').findIndex((l) => l.includes('- id: sales-replies')) + 1;
    const result = await signet('config', 'validate', dir, ...DURING_CAMPAIGN);
    expect(result.code, result.stdout + result.stderr).to.equal(0);
    expect(result.stdout.trimEnd().split('\n')).to.deep.equal([
      `warning: ${path.join(dir, 'rules.yaml')}:${line} rules[9]: rule "sales-replies" never takes effect: the earlier rule "sales-disclaimer" matches every message it matches and stops (stop: true); move it above, or narrow the earlier rule`,
      'OK contoso (Contoso Ltd): 10 rules, 4 templates, 2 add-ons, 2 images, 3 user overrides, 8 directory users (1 warning)',
    ]);
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
