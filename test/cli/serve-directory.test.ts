// The relay's Graph directory follows the configuration: the memberships it
// loads are those of the groups the running configuration's rules name, so a
// group rule added by a new configuration (or arriving with the first one, on
// a node that started without) signs with the group's template at once.
import { expect } from 'chai';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { followPhotos, followRuleGroups, ruleGroups } from '../../appliance/src/cli/commands/serve';
import { createOrgSource, type OrgConfig, type OrgSource } from '../../appliance/src/config';
import { createGraphDirectorySource, type GraphDirectorySource } from '../../appliance/src/directory';
import { createAzureCredential } from '../../appliance/src/secrets';
import { createEngine } from '../../appliance/src/signature';
import { startAzureStandin, trustTestCa, useStandinManagedIdentity, type AzureStandin } from '../support/azure-standin';
import { startGraphStandin, type GraphStandin } from '../support/graph-standin';

const EXAMPLE = resolve(__dirname, '../../config/examples/contoso');
const TOM = 'tom.okafor@contoso.com';
const SALES = 'bbbbbbbb-0000-4000-8000-000000000001';
const LEGAL = 'bbbbbbbb-0000-4000-8000-000000000002';

/** The example's rules without the Sales rule. */
function withoutSalesRule(rules: string): string {
  const without = rules.replace(/\n {2}- id: sales\n(?: {4}.*\n|\n(?= {4}))*/, '\n');
  expect(without).to.not.include('id: sales');
  return without;
}

async function templateFor(org: OrgConfig, graph: GraphDirectorySource): Promise<string | undefined> {
  const engine = createEngine({ org, directory: () => graph.current() });
  const run = engine.process(Readable.from([Buffer.from(`From: Tom <${TOM}>\r\nTo: p@fabrikam.example\r\nSubject: Offer\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Hello</p>\r\n`)]), {
    mailFrom: TOM,
    rcptTo: ['p@fabrikam.example'],
  });
  run.output.resume();
  return (await run.result).templateId;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100 && !condition(); i++) await new Promise((r) => setTimeout(r, 20));
  expect(condition(), what).to.equal(true);
}

describe('relay: the Graph directory follows the groups of the running configuration', function () {
  this.timeout(30_000);
  let azure: AzureStandin;
  let graph: GraphStandin;
  let restore: Array<() => void>;
  let dir: string;
  let orgSource: OrgSource | undefined;
  let directory: GraphDirectorySource | undefined;

  before(async () => {
    azure = await startAzureStandin();
    graph = await startGraphStandin();
    restore = [trustTestCa(azure.caPem), useStandinManagedIdentity(azure)];
    graph.upsertUser({ id: 'u-tom', mail: TOM, proxyAddresses: [`SMTP:${TOM}`], displayName: 'Tom Okafor', jobTitle: 'Account Manager' });
    graph.upsertUser({ id: 'u-ann', mail: 'ann@contoso.com', proxyAddresses: [], displayName: 'Ann' });
    graph.setGroup({ id: SALES, displayName: 'Sales', members: ['u-tom'] });
    graph.setGroup({ id: LEGAL, displayName: 'Legal', members: ['u-ann'] });
    dir = mkdtempSync(join(tmpdir(), 'signet-serve-dir-'));
  });
  afterEach(() => {
    orgSource?.stop();
    directory?.stop();
  });
  after(async () => {
    for (const undo of restore.reverse()) undo();
    await graph.close();
    await azure.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** An org folder without the Sales rule, its source started, and a Graph directory for its groups (not started). */
  async function startWithoutSalesRule(name: string): Promise<{ folder: string; rules: string; source: OrgSource; graphDirectory: GraphDirectorySource }> {
    const folder = join(dir, name);
    cpSync(EXAMPLE, folder, { recursive: true });
    const rules = readFileSync(join(folder, 'rules.yaml'), 'utf8');
    writeFileSync(join(folder, 'rules.yaml'), withoutSalesRule(rules));
    const source = (orgSource = createOrgSource({ location: folder, pollSeconds: 0 }));
    await source.start();
    const credential = createAzureCredential({ kind: 'node', managedIdentityClientId: 'graph-reader' });
    const graphDirectory = (directory = createGraphDirectorySource({ credential, baseUrl: graph.baseUrl, groups: ruleGroups(source.current()), refreshSeconds: 0 }));
    return { folder, rules, source, graphDirectory };
  }

  it('names the groups of rules and of their exceptions, once each', () => {
    const org = { rules: [{ match: { groups: ['Sales', 'Legal'] } }, { match: {}, except: [{ groups: ['Legal'] }, { groups: ['IT'] }] }] } as unknown as OrgConfig;
    expect(ruleGroups(org)).to.deep.equal(['Sales', 'Legal', 'IT']);
    expect(ruleGroups(undefined)).to.deep.equal([]);
  });

  it('loads a group a new configuration names, and the sender gets the group rule without a restart', async () => {
    const { folder, rules, source, graphDirectory } = await startWithoutSalesRule('org-new-rule');
    await graphDirectory.start();
    followRuleGroups(source, graphDirectory);

    expect(ruleGroups(source.current())).to.deep.equal(['Legal']);
    expect(graphDirectory.current()!.lookup(TOM)!.groups).to.deep.equal([]);
    expect(await templateFor(source.current()!, graphDirectory)).to.equal('default');

    // The operator adds the Sales rule back: one reload, and Tom is in Sales with no Graph refresh due.
    writeFileSync(join(folder, 'rules.yaml'), rules);
    const before = graph.requests.length;
    expect(await source.reload()).to.equal('loaded');
    await until(() => graphDirectory.current()!.lookup(TOM)!.groups.includes('Sales'), 'Tom is a member of Sales after the reload');
    expect(graph.requests.slice(before).some((r) => r.path.startsWith('/v1.0/users')), 'the users are not listed again').to.equal(false);
    expect(await templateFor(source.current()!, graphDirectory)).to.equal('sales');
  });

  it('catches up with a configuration that changed while the directory was loading', async () => {
    const { folder, rules, source, graphDirectory } = await startWithoutSalesRule('org-changed-during-load');
    const loading = graphDirectory.start();
    // the new version arrives before the node listens for versions
    writeFileSync(join(folder, 'rules.yaml'), rules);
    expect(await source.reload()).to.equal('loaded');
    await loading;
    followRuleGroups(source, graphDirectory);
    await until(() => graphDirectory.current()!.lookup(TOM)!.groups.includes('Sales'), 'Tom is a member of Sales although the version came during the first load');
  });

  it('loads the groups of the first configuration when the node started without one', async () => {
    const folder = join(dir, 'org-late');
    orgSource = createOrgSource({ location: folder, pollSeconds: 0 });
    await orgSource.start(); // nothing there yet
    expect(orgSource.current()).to.equal(undefined);
    const credential = createAzureCredential({ kind: 'node', managedIdentityClientId: 'graph-reader' });
    directory = createGraphDirectorySource({ credential, baseUrl: graph.baseUrl, groups: ruleGroups(orgSource.current()), refreshSeconds: 0 });
    await directory.start();
    followRuleGroups(orgSource, directory);
    const graphDirectory = directory;
    expect(graphDirectory.current()!.lookup(TOM)!.groups).to.deep.equal([]);

    cpSync(EXAMPLE, folder, { recursive: true });
    expect(await orgSource.reload()).to.equal('loaded');
    await until(() => graphDirectory.current()!.lookup(TOM)!.groups.includes('Sales'), 'Tom is a member of Sales once the configuration arrived');
    expect(graphDirectory.current()!.lookup('ann@contoso.com')!.groups).to.include('Legal');
    expect(await templateFor(orgSource.current()!, graphDirectory)).to.equal('sales');
  });

  it('loads photos once a new configuration\'s template calls photo(), and drops them when none does', async () => {
    const folder = join(dir, 'org-photos');
    cpSync(EXAMPLE, folder, { recursive: true });
    const ceo = readFileSync(join(folder, 'templates', 'ceo.html.ejs'), 'utf8');
    const sales = readFileSync(join(folder, 'templates', 'sales.html.ejs'), 'utf8');
    expect(ceo).to.include('photo()');
    // first a configuration that shows no photo
    const withoutPhotos = ceo.replace(/<% if \(photo\(\)\) \{ -%>[\s\S]*?<% \} -%>\n/, '');
    expect(withoutPhotos).to.not.include('photo(');
    writeFileSync(join(folder, 'templates', 'ceo.html.ejs'), withoutPhotos);
    const source = (orgSource = createOrgSource({ location: folder, pollSeconds: 0 }));
    await source.start();
    const png = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.from('tom photo')]);
    graph.setPhoto('u-tom', png);
    const credential = createAzureCredential({ kind: 'node', managedIdentityClientId: 'graph-reader' });
    const graphDirectory = (directory = createGraphDirectorySource({ credential, baseUrl: graph.baseUrl, groups: ruleGroups(source.current()), refreshSeconds: 0 }));
    const photoRequests = () => graph.requests.filter((r) => r.path.includes('/photos/')).length;
    const before = photoRequests();
    await graphDirectory.start();
    followPhotos(source, graphDirectory);
    expect(graphDirectory.current()!.lookup(TOM)!.photo).to.equal(undefined);
    expect(photoRequests(), 'no photo is fetched while no template shows one').to.equal(before);

    // the Sales signature starts showing the sender's photo: one reload, and Tom's photo is loaded and signed in
    writeFileSync(join(folder, 'templates', 'sales.html.ejs'), `<% if (photo()) { %><img src="<%= photo() %>" width="64" alt=""><% } %>\n${sales}`);
    expect(await source.reload()).to.equal('loaded');
    await until(() => graphDirectory.current()!.lookup(TOM)?.photo !== undefined, 'Tom has a photo after the reload');
    expect(graphDirectory.current()!.lookup(TOM)!.photo!.data.equals(png)).to.equal(true);
    const engine = createEngine({ org: source.current()!, directory: () => graphDirectory.current() });
    const run = engine.process(Readable.from([Buffer.from(`From: Tom <${TOM}>\r\nTo: p@fabrikam.example\r\nSubject: Offer\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Hello</p>\r\n`)]), { mailFrom: TOM, rcptTo: ['p@fabrikam.example'] });
    const chunks: Buffer[] = [];
    for await (const chunk of run.output) chunks.push(chunk as Buffer);
    expect((await run.result).templateId).to.equal('sales');
    const signed = Buffer.concat(chunks).toString('latin1');
    expect(signed).to.match(/Content-ID: <photo\.[0-9a-f]{16}@signet>/).and.include(png.toString('base64'));

    // and back: photos are dropped without asking Graph
    writeFileSync(join(folder, 'templates', 'sales.html.ejs'), sales);
    const requests = photoRequests();
    expect(await source.reload()).to.equal('loaded');
    await until(() => graphDirectory.current()!.lookup(TOM)!.photo === undefined, 'Tom\'s photo is dropped');
    expect(photoRequests()).to.equal(requests);
  });
});
