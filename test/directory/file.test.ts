import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { ConfigError, type ConfigIssue } from '../../appliance/src/config';
import { loadDirectoryFile, parseDirectoryFile } from '../../appliance/src/directory';

const EXAMPLE_DIRECTORY = path.resolve(__dirname, '../../config/examples/contoso/directory.yaml');

function issuesOf(text: string): ConfigIssue[] {
  try {
    parseDirectoryFile(text);
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return (error as ConfigError).issues;
  }
  throw new Error('the directory file was accepted');
}

describe('directory: the local directory file', () => {
  it('loads the example directory and finds users by any address, case-insensitively', async () => {
    const directory = await loadDirectoryFile(EXAMPLE_DIRECTORY);
    expect(directory.size).to.equal(8);
    const ceo = directory.lookup('CEO@Contoso.com')!;
    expect(ceo.mail).to.equal('ingrid.halvorsen@contoso.com');
    expect(directory.lookup('ingrid.halvorsen@contoso.co.uk')).to.equal(ceo);
    expect(directory.lookup(' Ingrid.Halvorsen@CONTOSO.COM ')).to.equal(ceo);
    expect(directory.lookup('nobody@contoso.com')).to.equal(undefined);
    expect(ceo.id).to.equal('6f1c2a9e-3b57-4c1e-9d2a-0a1b2c3d4e01');
    expect(ceo.attributes.jobTitle).to.equal('Chief Executive Officer');
    expect(directory.syncedAt).to.be.instanceOf(Date);
  });

  it('resolves nested groups transitively, with ids and display names', async () => {
    const directory = await loadDirectoryFile(EXAMPLE_DIRECTORY);
    const ceo = directory.lookup('ceo@contoso.com')!;
    expect([...ceo.groups].sort()).to.deep.equal(['All Staff', 'Executives', 'Leadership', 'all-staff', 'executives', 'leadership']);
    const priya = directory.lookup('priya.natarajan@contoso.co.uk')!;
    expect(priya.groups).to.include.members(['sales-uk', 'Sales UK', 'sales', 'Sales', 'all-staff']);
    expect(directory.lookup('scanner@contoso.com')!.groups).to.deep.equal([]);
  });

  it('treats empty and null attributes as not set, so conditional lines disappear', async () => {
    const directory = await loadDirectoryFile(EXAMPLE_DIRECTORY);
    const marcus = directory.lookup('marcus.webb@contoso.com')!;
    expect('mobilePhone' in marcus.attributes, 'empty string').to.equal(false);
    const priya = directory.lookup('priya.natarajan@contoso.com')!;
    expect('mobilePhone' in priya.attributes, 'null').to.equal(false);
    expect(priya.attributes.businessPhones).to.equal('+44 161 496 0200');
  });

  it('survives a membership cycle and still resolves every group once', () => {
    const text = [
      'groups:',
      '  - { id: a, name: Alpha, memberOf: [b] }',
      '  - { id: b, name: Beta, memberOf: [c] }',
      '  - { id: c, name: Gamma, memberOf: [a, Delta] }',
      '  - { id: d, name: Delta }',
      '  - { id: self, name: Self, memberOf: [self] }',
      'users:',
      '  - mail: one@contoso.com',
      '    groups: [Alpha, self]',
      '',
    ].join('\n');
    const user = parseDirectoryFile(text).lookup('one@contoso.com')!;
    expect([...user.groups].sort()).to.deep.equal(['Alpha', 'Beta', 'Delta', 'Gamma', 'Self', 'a', 'b', 'c', 'd', 'self']);
  });

  it('reports unknown groups, addresses claimed twice and schema problems, with lines', () => {
    const text = [
      'groups:', // 1
      '  - id: sales', // 2
      '    name: Sales', // 3
      '    memberOf: [all]', // 4
      '  - id: sales', // 5
      '    name: Sales Again', // 6
      'users:', // 7
      '  - mail: tom@contoso.com', // 8
      '    groups: [sale]', // 9
      '  - mail: ann@contoso.com', // 10
      '    aliases: [TOM@contoso.com, ann@contoso.com]', // 11
      '    atributes: {}', // 12
      '  - mail: not-an-address', // 13
      '',
    ].join('\n');
    const issues = issuesOf(text);
    const lines = issues.map((i) => `${i.line} ${i.path}: ${i.message}`);
    expect(lines).to.include.members([
      '4 groups[0].memberOf[0]: unknown group "all"',
      '5 groups[1].id: duplicate group id "sales" (first at line 2)',
      '9 users[0].groups[0]: unknown group "sale"; did you mean "sales"?',
      '11 users[1].aliases[0]: tom@contoso.com already belongs to tom@contoso.com (line 8)',
      '11 users[1].aliases[1]: ann@contoso.com is listed twice for this user',
      '12 users[1].atributes: unknown key "atributes"; did you mean "attributes"?',
      '13 users[2].mail: malformed email address: "not-an-address"',
    ]);
    for (const issue of issues) expect(issue.file).to.equal('directory.yaml');
  });

  it('two groups with one display name would make references by name ambiguous', () => {
    const text = 'groups:\n  - { id: s1, name: Sales }\n  - { id: s2, name: Sales }\nusers:\n  - mail: a@contoso.com\n    groups: [Sales]\n';
    const issues = issuesOf(text);
    expect(issues.map((i) => `${i.line} ${i.path}: ${i.message}`)).to.deep.equal(['3 groups[1].name: two groups are named "Sales"; a reference by name would be ambiguous']);
  });

  it('any YAML value gives a snapshot or a ConfigError, never a crash', () => {
    const entry = fc.record(
      { mail: fc.oneof(fc.constantFrom('a@contoso.com', 'B@contoso.com'), fc.string()), groups: fc.array(fc.constantFrom('g', 'h', 'x'), { maxLength: 3 }), aliases: fc.array(fc.constantFrom('a@contoso.com', 'c@contoso.com'), { maxLength: 2 }) },
      { requiredKeys: [] },
    );
    const group = fc.record({ id: fc.constantFrom('g', 'h'), name: fc.constantFrom('G', 'H'), memberOf: fc.array(fc.constantFrom('g', 'h', 'G'), { maxLength: 2 }) }, { requiredKeys: [] });
    fc.assert(
      fc.property(fc.oneof(fc.anything({ maxDepth: 3 }), fc.record({ users: fc.array(entry, { maxLength: 4 }), groups: fc.array(group, { maxLength: 3 }) })), (value) => {
        try {
          const snapshot = parseDirectoryFile(stringify(value) ?? '');
          for (const user of snapshot.users()) expect(snapshot.lookup(user.mail)).to.equal(user);
        } catch (error) {
          expect(error).to.be.instanceOf(ConfigError);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('loadDirectoryFile names a missing file', async () => {
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'signet-dir-'));
    try {
      await loadDirectoryFile(path.join(tmp, 'directory.yaml'));
      expect.fail('a missing file was accepted');
    } catch (error) {
      expect(error).to.be.instanceOf(ConfigError);
      expect(String(error)).to.equal('directory.yaml: cannot read the directory file: no such file');
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  });
});
