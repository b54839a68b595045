import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { explainMessage, formatExplanation } from '../../appliance/src/cli/commands/explain';
import { loadOrgFolder, type OrgConfig } from '../../appliance/src/config';
import { loadDirectoryFile, type DirectorySnapshot } from '../../appliance/src/directory';

const ROOT = resolve(__dirname, '../..');
const ORG = join(ROOT, 'config/examples/contoso');
const IN_CAMPAIGN = new Date('2026-12-01T10:00:00Z');
const AFTER_CAMPAIGN = new Date('2027-02-01T10:00:00Z');

describe('signet explain (example organization)', () => {
  let org: OrgConfig;
  let directory: DirectorySnapshot;
  let emptyDirectory: DirectorySnapshot;
  before(async () => {
    org = await loadOrgFolder(ORG);
    directory = await loadDirectoryFile(join(ORG, 'directory.yaml'));
    const dir = mkdtempSync(join(tmpdir(), 'signet-explain-'));
    try {
      writeFileSync(join(dir, 'directory.yaml'), 'users: []\n');
      emptyDirectory = await loadDirectoryFile(join(dir, 'directory.yaml'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  const explain = (from: string, to: string[], extra: Partial<{ kind: 'new' | 'reply' | 'forward'; now: Date; subject: string }> = {}) =>
    explainMessage(org, directory, { from, to, subject: extra.subject ?? '', body: '', kind: extra.kind ?? 'new', now: extra.now ?? IN_CAMPAIGN });

  it('a salesperson writing to a customer: sales template by group, disclaimer and campaign stack', () => {
    const e = explain('Tom.Okafor@contoso.com', ['client@fabrikam.com']);
    expect(e).to.include({ outcome: 'sign', templateId: 'sales', templateRule: 'sales', level: 'group' });
    expect(e.addons).to.deep.equal(['legal-disclaimer', 'winter-campaign']);
    expect(e.sender).to.include({ address: 'tom.okafor@contoso.com', inDirectory: true, displayName: 'Tom Okafor' });
    const byId = new Map(e.rules.map((r) => [r.ruleId, r]));
    expect(byId.get('ceo')!.matched).to.equal(false);
    expect(byId.get('ceo')!.reasons.join(' ')).to.include('not among');
    expect(byId.get('default')!.reasons.join(' ')).to.include('outranked by rule sales');
  });

  it('the campaign window and the Legal exception are explained', () => {
    const after = explain('tom.okafor@contoso.com', ['client@fabrikam.com'], { now: AFTER_CAMPAIGN });
    expect(after.addons).to.deep.equal(['legal-disclaimer']);
    expect(after.rules.find((r) => r.ruleId === 'winter-campaign')!.reasons.join(' ')).to.match(/date window: no/);
    const legal = explain('elena.rossi@contoso.com', ['client@fabrikam.com']);
    expect(legal.templateId).to.equal('default');
    expect(legal.addons).to.deep.equal(['legal-disclaimer']);
    expect(legal.rules.find((r) => r.ruleId === 'winter-campaign')!.reasons.join(' ')).to.match(/except/);
  });

  it('replies get the reply template; internal UK mail and the scanner get none', () => {
    expect(explain('tom.okafor@contoso.com', ['client@fabrikam.com'], { kind: 'reply' }).templateId).to.equal('reply');
    const uk = explain('priya.natarajan@contoso.co.uk', ['sophie.laurent@contoso.co.uk']);
    expect(uk).to.include({ outcome: 'pass', passReason: 'no-signature' });
    expect(uk.recipients).to.deep.equal([{ address: 'sophie.laurent@contoso.co.uk', external: false }]);
    const scanner = explain('scanner@contoso.com', ['client@fabrikam.com']);
    expect(scanner).to.include({ outcome: 'pass', passReason: 'no-signature' });
    expect(scanner.rules[0]).to.include({ ruleId: 'scanner-no-signature', matched: true });
  });

  it('a sender missing from the directory gets add-ons but no signature, and says so', () => {
    const e = explain('new.hire@contoso.com', ['client@fabrikam.com']);
    expect(e).to.include({ outcome: 'sign', passReason: 'unknown-sender', templateId: undefined });
    expect(e.addons).to.include('legal-disclaimer');
    const text = formatExplanation(e);
    expect(text).to.include('NOT in the directory');
    expect(text).to.include('the sender is not in the directory');
  });

  it('a sender outside the accepted domains gets nothing, and is told why (the relay would refuse it)', () => {
    const e = explain('tom.okafor@fabrikam-partner.com', ['client@fabrikam.com']);
    expect(e).to.include({ outcome: 'pass', passReason: 'sender-domain', templateId: undefined });
    expect(e.addons).to.deep.equal([]);
    expect(formatExplanation(e)).to.include("not one of the organization's accepted domains").and.include('550 5.7.1');
  });

  it('a sender listed only in users.yaml is not said to be in the directory', () => {
    // tom.okafor has users.yaml attributes; with a directory that does not know him, only those remain
    const e = explainMessage(org, emptyDirectory, { from: 'tom.okafor@contoso.com', to: ['client@fabrikam.com'], subject: '', body: '', kind: 'new', now: IN_CAMPAIGN });
    expect(e.sender).to.include({ inDirectory: false, overridesOnly: true });
    expect(e.templateId).to.equal('default'); // as the engine: the overrides make a known sender
    const text = formatExplanation(e);
    expect(text).to.include('NOT in the directory, but listed in users.yaml: signed with those attributes alone (no displayName there)');
    expect(text).not.to.match(/: in the directory/);
    const unknown = formatExplanation(explain('new.hire@contoso.com', ['client@fabrikam.com']));
    expect(unknown).to.match(/new\.hire@contoso\.com: NOT in the directory\n/);
    expect(explain('tom.okafor@contoso.com', ['client@fabrikam.com']).sender).to.include({ inDirectory: true, overridesOnly: false });
  });

  it('command line: --to is documented as needed, without a misleading default', function () {
    this.timeout(60_000);
    const help = spawnSync(process.execPath, [join(ROOT, 'bin/signet.js'), 'explain', '--help'], { encoding: 'utf8', cwd: ROOT });
    expect(help.stdout).to.match(/--to <address> +recipient \(at least one\); repeat for several\n/);
    expect(help.stdout).not.to.include('default: []');
    const none = spawnSync(process.execPath, [join(ROOT, 'bin/signet.js'), 'explain', '--org', ORG, '--from', 'tom.okafor@contoso.com'], { encoding: 'utf8', cwd: ROOT });
    expect(none.status).to.equal(2);
    expect(none.stderr).to.equal('signet: --to: give at least one recipient\n');
  });

  it('command line: prints the explanation, --json parses, bad input is refused', function () {
    this.timeout(60_000);
    const run = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/signet.js'), 'explain', '--org', ORG, ...args], { encoding: 'utf8', cwd: ROOT });
    const text = run('--from', 'ingrid.halvorsen@contoso.com', '--to', 'board@fabrikam.com', '--date', '2026-12-01T10:00:00Z');
    expect(text.status, text.stderr).to.equal(0);
    expect(text.stdout).to.include('Result: template ceo (rule ceo, user assignment)');
    expect(text.stdout).to.match(/MATCH\s+ceo \(user\)/);
    const json = run('--from', 'ingrid.halvorsen@contoso.com', '--to', 'board@fabrikam.com', '--to', 'marcus.webb@contoso.com', '--kind', 'reply', '--json');
    expect(json.status, json.stderr).to.equal(0);
    const parsed = JSON.parse(json.stdout) as { templateId: string; recipients: Array<{ external: boolean }> };
    expect(parsed.templateId).to.equal('reply');
    expect(parsed.recipients.map((r) => r.external)).to.deep.equal([true, false]);
    const bad = run('--from', 'not-an-address', '--to', 'a@b.com');
    expect(bad.status).to.not.equal(0);
    expect(bad.stderr).to.include('--from: not an email address');
    const kind = run('--from', 'a@contoso.com', '--to', 'a@b.com', '--kind', 'fwd');
    expect(kind.stderr).to.include('--kind');
  });

  it('command line: a --date without Z or an offset is UTC, as the rules read their dates, whatever the time zone', function () {
    this.timeout(60_000);
    const at = (date: string) => {
      const run = spawnSync(
        process.execPath,
        [join(ROOT, 'bin/signet.js'), 'explain', '--org', ORG, '--from', 'tom.okafor@contoso.com', '--to', 'buyer@fabrikam.com', '--date', date, '--json'],
        { encoding: 'utf8', cwd: ROOT, env: { ...process.env, TZ: 'America/Los_Angeles' } },
      );
      expect(run.status, run.stderr).to.equal(0);
      return JSON.parse(run.stdout) as { at: string; addons: string[] };
    };
    // the winter campaign starts 2026-11-16 (UTC); 20:00 on the 15th is 04:00 UTC on the 16th in Los Angeles
    expect(at('2026-11-15T20:00')).to.include({ at: '2026-11-15T20:00:00.000Z' });
    expect(at('2026-11-15T20:00').addons).to.not.include('winter-campaign');
    expect(at('2026-11-15T20:00-08:00').addons).to.include('winter-campaign');
  });
});

