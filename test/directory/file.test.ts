import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { ConfigError, type ConfigIssue } from '../../appliance/src/config';
import { loadDirectoryFile, MAX_PHOTO_BYTES, parseDirectoryFile } from '../../appliance/src/directory';

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
    // rules compare group names whatever their letter case: so does this check
    const cased = issuesOf('groups:\n  - { id: s1, name: Sales }\n  - { id: s2, name: SALES }\nusers:\n  - mail: a@contoso.com\n    groups: [s1]\n');
    expect(cased.map((i) => `${i.line} ${i.path}: ${i.message}`)).to.deep.equal(['3 groups[1].name: two groups are named "SALES" ("Sales" in other letter case); a reference by name would be ambiguous']);
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

  describe('photos', () => {
    // tiny images: the type is read from the first bytes
    const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46]);
    const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('IHDR-png')]);
    const GIF = Buffer.from('GIF89a\x01\x00\x01\x00gif', 'latin1');
    let tmp: string;
    let folder: string;
    beforeEach(async () => {
      tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'signet-photos-'));
      folder = path.join(tmp, 'org');
      await fs.mkdir(path.join(folder, 'photos'), { recursive: true });
    });
    afterEach(async () => {
      await fs.rm(tmp, { recursive: true, force: true });
    });
    const write = (name: string, data: string | Buffer) => fs.writeFile(path.join(folder, name), data);
    const issuesOfFile = async (): Promise<string[]> => {
      try {
        await loadDirectoryFile(path.join(folder, 'directory.yaml'));
      } catch (error) {
        expect(error).to.be.instanceOf(ConfigError);
        const issues = (error as ConfigError).issues;
        for (const issue of issues) expect(issue.file).to.equal('directory.yaml');
        return issues.map((i) => `${i.line} ${i.path}: ${i.message}`);
      }
      throw new Error('the directory file was accepted');
    };

    it('loads JPEG, PNG and GIF photos relative to the folder of the file, with their bytes and type', async () => {
      await write('photos/ingrid.jpg', JPEG);
      await write('photos/tom.png', PNG);
      await write('ann.gif', GIF);
      await write(
        'directory.yaml',
        [
          'users:',
          '  - { mail: ingrid@contoso.com, photo: photos/ingrid.jpg }',
          '  - { mail: tom@contoso.com, photo: ./photos/tom.png }',
          '  - { mail: ann@contoso.com, photo: ann.gif }',
          '  - { mail: ann.twin@contoso.com, photo: ann.gif }',
          '  - { mail: nophoto@contoso.com }',
          '',
        ].join('\n'),
      );
      // read from elsewhere: the path is relative to the file's folder, not to the working directory
      const directory = await loadDirectoryFile(path.relative(process.cwd(), path.join(folder, 'directory.yaml')));
      const photo = (mail: string) => directory.lookup(mail)?.photo;
      expect(photo('ingrid@contoso.com')?.contentType).to.equal('image/jpeg');
      expect(photo('ingrid@contoso.com')?.data.equals(JPEG)).to.equal(true);
      expect(photo('tom@contoso.com')?.contentType).to.equal('image/png');
      expect(photo('tom@contoso.com')?.data.equals(PNG)).to.equal(true);
      expect(photo('ann@contoso.com')?.contentType).to.equal('image/gif');
      expect(photo('ann@contoso.com')?.data.equals(GIF)).to.equal(true);
      expect(photo('ann.twin@contoso.com')?.data.equals(GIF)).to.equal(true);
      expect(directory.lookup('nophoto@contoso.com')).to.not.have.property('photo');
    });

    it('follows a symbolic link that stays inside the folder, also when the folder is reached through one', async () => {
      await fs.mkdir(path.join(folder, '..data'));
      await write('..data/ingrid.jpg', JPEG);
      await fs.symlink('..data/ingrid.jpg', path.join(folder, 'ingrid.jpg'));
      await write('directory.yaml', 'users:\n  - { mail: ingrid@contoso.com, photo: ingrid.jpg }\n');
      await fs.symlink(folder, path.join(tmp, 'linked'));
      const directory = await loadDirectoryFile(path.join(tmp, 'linked', 'directory.yaml'));
      expect(directory.lookup('ingrid@contoso.com')?.photo?.data.equals(JPEG)).to.equal(true);
    });

    it('reports every bad photo at once, with the path in the file, its line and why, next to the other problems', async () => {
      await write('photos/text.jpg', 'not an image at all');
      await write('photos/big.jpg', Buffer.concat([JPEG, Buffer.alloc(MAX_PHOTO_BYTES + 1 - JPEG.length)]));
      await write('photos/empty.png', '');
      await write('photos/limit.jpg', Buffer.concat([JPEG, Buffer.alloc(MAX_PHOTO_BYTES - JPEG.length)]));
      await fs.writeFile(path.join(tmp, 'secret.jpg'), JPEG);
      await fs.symlink('../../secret.jpg', path.join(folder, 'photos', 'escape.jpg'));
      await write(
        'directory.yaml',
        [
          'users:', // 1
          '  - mail: a@contoso.com', // 2
          '    photo: /etc/photos/a.jpg', // 3
          '  - mail: b@contoso.com', // 4
          '    photo: photos/../../b.jpg', // 5
          '  - mail: c@contoso.com', // 6
          '    photo: photos\\c.jpg', // 7
          '  - mail: d@contoso.com', // 8
          '    photo: ""', // 9
          '  - mail: e@contoso.com', // 10
          '    photo: photos/escape.jpg', // 11
          '  - mail: f@contoso.com', // 12
          '    photo: photos/missing.jpg', // 13
          '  - mail: g@contoso.com', // 14
          '    photo: photos/text.jpg', // 15
          '  - mail: h@contoso.com', // 16
          '    photo: photos/big.jpg', // 17
          '  - mail: i@contoso.com', // 18
          '    photo: photos/empty.png', // 19
          '  - mail: j@contoso.com', // 20
          '    photo: photos', // 21
          '  - mail: k@contoso.com', // 22
          '    photo: photos/limit.jpg', // 23
          '    groups: [nobody]', // 24
          '',
        ].join('\n'),
      );
      expect(await issuesOfFile()).to.deep.equal([
        '3 users[0].photo: must be a path relative to the folder of directory.yaml, not an absolute one: "/etc/photos/a.jpg"',
        '5 users[1].photo: must not step out of the folder of directory.yaml with "..": "photos/../../b.jpg"',
        '7 users[2].photo: must separate folders with /, not a backslash: "photos\\\\c.jpg"',
        '9 users[3].photo: must not be empty',
        '11 users[4].photo: photos/escape.jpg: leads outside the folder of directory.yaml through a symbolic link',
        '13 users[5].photo: photos/missing.jpg: no such file',
        '15 users[6].photo: photos/text.jpg: the photo is not a JPEG, PNG or GIF image',
        `17 users[7].photo: photos/big.jpg: the photo has ${MAX_PHOTO_BYTES + 1} bytes, more than ${MAX_PHOTO_BYTES}`,
        '19 users[8].photo: photos/empty.png: the photo is empty',
        '21 users[9].photo: photos: is not a file',
        '24 users[10].groups[0]: unknown group "nobody"',
      ]);
    });

    it('parseDirectoryFile takes the photos as read, and refuses a file naming photos without them', () => {
      const text = 'users:\n  - mail: a@contoso.com\n    photo: photos/a.png\n  - mail: b@contoso.com\n';
      expect(issuesOf(text).map((i) => `${i.line} ${i.path}: ${i.message}`)).to.deep.equal([
        '3 users[0].photo: photos/a.png: not read (photos are read by loadDirectoryFile)',
      ]);
      const read = parseDirectoryFile(text, 'directory.yaml', new Date(), new Map([['photos/a.png', PNG]]));
      expect(read.lookup('a@contoso.com')?.photo).to.deep.equal({ data: PNG, contentType: 'image/png' });
      expect(() => parseDirectoryFile(text, 'directory.yaml', new Date(), new Map())).to.throw(ConfigError, 'users[0].photo: photos/a.png: not read');
      // without photos in the file, a caller that reads none needs none
      expect(parseDirectoryFile('users:\n  - mail: b@contoso.com\n').size).to.equal(1);
    });
  });
});
