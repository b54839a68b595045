import { expect } from 'chai';
import { loadOrgFolder } from '../../appliance/src/config';
import {
  applyUserOverrides,
  createDirectorySnapshot,
  loadDirectoryFile,
  resolveTransitiveGroups,
  unmatchedOverrides,
  type DirectoryUser,
} from '../../appliance/src/directory';
import * as path from 'node:path';

const EXAMPLE = path.resolve(__dirname, '../../config/examples/contoso');

const user = (mail: string, extra: Partial<DirectoryUser> = {}): DirectoryUser => ({
  mail,
  aliases: [],
  attributes: {},
  groups: [],
  ...extra,
});

describe('directory: snapshots and overrides', () => {
  it('indexes every address lower-case, strips smtp: prefixes, and counts users once', () => {
    const snapshot = createDirectorySnapshot(
      [user('Ann@Contoso.com', { aliases: ['SMTP:Ann.Lee@Contoso.co.uk', 'smtp:ann@contoso.com'], attributes: { displayName: 'Ann Lee' } })],
      new Date('2026-11-23T10:00:00Z'),
    );
    expect(snapshot.size).to.equal(1);
    const ann = snapshot.lookup('ANN.LEE@contoso.co.uk')!;
    expect(ann.mail).to.equal('ann@contoso.com');
    expect(ann.aliases, 'the primary address is not repeated as an alias').to.deep.equal(['ann.lee@contoso.co.uk']);
    expect([...snapshot.users()]).to.deep.equal([ann]);
    expect(snapshot.syncedAt.toISOString()).to.equal('2026-11-23T10:00:00.000Z');
  });

  it('finds a user of an internationalized domain whichever form (Unicode or punycode) the address is written in', () => {
    const snapshot = createDirectorySnapshot([user('Anna@Bücher.example', { aliases: ['SMTP:Bo@XN--BCHER-KVA.example'] })]);
    const anna = snapshot.lookup('anna@xn--bcher-kva.example')!;
    expect(anna.mail).to.equal('anna@xn--bcher-kva.example');
    expect(snapshot.lookup('bo@bücher.example')).to.equal(anna);
    expect(snapshot.lookup('ANNA@BÜCHER.EXAMPLE')).to.equal(anna);
    expect(anna.aliases).to.deep.equal(['bo@xn--bcher-kva.example']);
  });

  it('never lets a later user take over an address someone already has', () => {
    const snapshot = createDirectorySnapshot([
      user('ann@contoso.com', { attributes: { displayName: 'Ann' } }),
      user('bob@contoso.com', { aliases: ['ann@contoso.com'], attributes: { displayName: 'Bob' } }),
      user('ANN@contoso.com', { attributes: { displayName: 'Impostor' } }),
    ]);
    expect(snapshot.lookup('ann@contoso.com')!.attributes.displayName).to.equal('Ann');
    expect(snapshot.lookup('bob@contoso.com')!.attributes.displayName).to.equal('Bob');
    expect(snapshot.size).to.equal(2);
  });

  it('snapshots are immutable: a caller cannot change what the next lookup sees', () => {
    const source = user('ann@contoso.com', { attributes: { jobTitle: 'Engineer' }, groups: ['g'] });
    const snapshot = createDirectorySnapshot([source]);
    source.attributes.jobTitle = 'Changed';
    const ann = snapshot.lookup('ann@contoso.com')!;
    expect(ann.attributes.jobTitle).to.equal('Engineer');
    expect(() => {
      (ann.attributes as Record<string, string>).jobTitle = 'x';
    }).to.throw(TypeError);
  });

  it('overrides from the configuration win over directory values, by any address', async () => {
    const directory = await loadDirectoryFile(path.join(EXAMPLE, 'directory.yaml'));
    const org = await loadOrgFolder(EXAMPLE);
    const merged = applyUserOverrides(directory, org.userAttributes);
    const priya = merged.lookup('priya.natarajan@contoso.com')!;
    expect(priya.attributes.mobilePhone, 'users.yaml fills the empty directory phone').to.equal('+44 7700 900123');
    expect(priya.attributes.jobTitle, 'other attributes kept').to.equal('Sales Director, UK & Ireland');
    expect(merged.lookup('ceo@contoso.com')!.attributes.pronouns).to.equal('she/her');
    expect(directory.lookup('ceo@contoso.com')!.attributes.pronouns, 'the original snapshot is unchanged').to.equal(undefined);
    expect(merged.size).to.equal(directory.size);
    expect(merged.syncedAt).to.equal(directory.syncedAt);
  });

  it('an override under the primary address beats one under an alias; unknown addresses change nothing', () => {
    const snapshot = createDirectorySnapshot([user('ann@contoso.com', { aliases: ['a.lee@contoso.com'], attributes: { jobTitle: 'Engineer', city: 'Leeds' } })]);
    const overrides = new Map<string, Record<string, string>>([
      ['ann@contoso.com', { jobTitle: 'Lead Engineer' }],
      ['A.Lee@contoso.com', { jobTitle: 'Alias title', pronouns: 'she/her' }],
      ['ghost@contoso.com', { jobTitle: 'Ghost' }],
    ]);
    const merged = applyUserOverrides(snapshot, overrides);
    expect(merged.lookup('a.lee@contoso.com')!.attributes).to.deep.equal({ jobTitle: 'Lead Engineer', city: 'Leeds', pronouns: 'she/her' });
    expect(merged.lookup('ghost@contoso.com')).to.equal(undefined);
    expect(unmatchedOverrides(snapshot, overrides)).to.deep.equal(['ghost@contoso.com']);
  });

  it('a hostile "__proto__" override cannot reach the prototype', () => {
    const snapshot = createDirectorySnapshot([user('ann@contoso.com')]);
    const hostile = JSON.parse('{"__proto__": {"polluted": "yes"}, "jobTitle": "x"}') as Record<string, string>;
    const merged = applyUserOverrides(snapshot, new Map([['ann@contoso.com', hostile]]));
    const attributes = merged.lookup('ann@contoso.com')!.attributes;
    expect(attributes.jobTitle).to.equal('x');
    expect((attributes as Record<string, unknown>).polluted).to.equal(undefined);
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
  });

  it('resolveTransitiveGroups follows parents once each, cycles included', () => {
    const parents: Record<string, string[]> = { a: ['b'], b: ['c', 'a'], c: ['a'], d: [] };
    expect(resolveTransitiveGroups(['a', 'd'], (g) => parents[g] ?? [])).to.deep.equal(['a', 'd', 'b', 'c']);
    expect(resolveTransitiveGroups([], () => ['x'])).to.deep.equal([]);
  });
});
