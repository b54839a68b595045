import { expect } from 'chai';
import { createCipheriv, randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, mkdtemp, open, readdir, readFile, rm, stat, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BundleError, contentHash, diffFiles, formatDiff, inspect, packFiles, reseal, seal, unpackFiles, unseal, writeUnsealedFolder } from '../../appliance/src/config/bundle';
import { createLocalKeyFile, createLocalKeyProvider } from '../../appliance/src/secrets';

const files = () =>
  new Map<string, Buffer>([
    ['org.yaml', Buffer.from('orgId: contoso\ndisplayName: Contoso\nacceptedDomains: [contoso.example]\n')],
    ['templates/default.html.ejs', Buffer.from('<p><%= user.displayName %></p>\n<p><%= user.jobTitle %></p>\n')],
    ['images/logo.png', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0xff, 0xfe])],
  ]);

async function expectRefusal(promise: Promise<unknown>, code: string, message: RegExp): Promise<BundleError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(BundleError);
    expect((error as BundleError).code, (error as Error).message).to.equal(code);
    expect((error as Error).message).to.match(message);
    return error as BundleError;
  }
  expect.fail(`expected refusal ${code}`);
}

describe('sealed config bundle (local key file)', () => {
  let dir: string;
  let keyFile: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'signet-bundle-'));
    keyFile = path.join(dir, 'org.key');
    await createLocalKeyFile(keyFile);
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('creates key files with mode 0600 and refuses to overwrite one', async () => {
    expect((await stat(keyFile)).mode & 0o777).to.equal(0o600);
    let refused = false;
    await createLocalKeyFile(keyFile).catch(() => (refused = true));
    expect(refused).to.equal(true);
  });

  it('leaves no key file behind when writing it fails, so the command can simply be run again', async () => {
    const second = path.join(dir, 'second.key');
    const probe = await open(path.join(dir, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { writeFile: (...args: unknown[]) => Promise<void> };
    await probe.close();
    const original = proto.writeFile;
    proto.writeFile = () => Promise.reject(Object.assign(new Error('no space left on device'), { code: 'ENOSPC' }));
    try {
      const error = await createLocalKeyFile(second).then(() => undefined, (e: NodeJS.ErrnoException) => e);
      expect(error?.code).to.equal('ENOSPC');
    } finally {
      proto.writeFile = original;
    }
    expect(await stat(second).then(() => 'exists', () => 'absent')).to.equal('absent');
    await createLocalKeyFile(second);
    expect((await stat(second)).size).to.be.greaterThan(32);
  });

  describe('writing an unsealed folder', () => {
    const content = () => new Map([['rules.yaml', Buffer.from('rules: []\n')], ['templates/default.html.ejs', Buffer.from('<p>x</p>')], ['templates/images/logo.png', Buffer.from([1, 2, 3])]]);
    const outcome = (promise: Promise<unknown>) => promise.then(() => 'written', (e: Error) => e.message);

    it('creates the folder and its subfolders for the user alone (0700), files 0600', async () => {
      const out = path.join(dir, 'unsealed-new', 'contoso');
      await writeUnsealedFolder(out, content());
      expect((await stat(out)).mode & 0o777).to.equal(0o700);
      expect((await stat(path.join(out, 'templates', 'images'))).mode & 0o777).to.equal(0o700);
      expect((await stat(path.join(out, 'templates', 'images', 'logo.png'))).mode & 0o777).to.equal(0o600);
      expect(await readFile(path.join(out, 'templates', 'default.html.ejs'), 'utf8')).to.equal('<p>x</p>');
    });

    it('closes an empty folder that others could write to before writing into it', async () => {
      const out = path.join(dir, 'unsealed-open');
      await mkdir(out);
      await chmod(out, 0o777);
      await writeUnsealedFolder(out, content());
      expect((await stat(out)).mode & 0o777).to.equal(0o700);
    });

    it('refuses a symbolic link, a folder that is not empty, or one of another user, and writes nothing', async () => {
      const elsewhere = path.join(dir, 'unsealed-elsewhere');
      await mkdir(elsewhere);
      const link = path.join(dir, 'unsealed-link');
      await symlink(elsewhere, link);
      expect(await outcome(writeUnsealedFolder(link, content()))).to.match(/is not a folder \(a symbolic link is refused too\)/);
      expect(await readdir(elsewhere)).to.deep.equal([]);

      const full = path.join(dir, 'unsealed-full');
      await mkdir(full);
      await mkdir(path.join(full, 'templates'));
      expect(await outcome(writeUnsealedFolder(full, content()))).to.match(/is not empty/);
      expect(await readdir(path.join(full, 'templates'))).to.deep.equal([]);

      if (process.getuid?.() === 0) {
        const theirs = path.join(dir, 'unsealed-theirs');
        await mkdir(theirs);
        await chown(theirs, 65534, 65534);
        expect(await outcome(writeUnsealedFolder(theirs, content()))).to.match(/belongs to another user/);
        expect(await readdir(theirs)).to.deep.equal([]);
      }
    });
  });

  it('packs deterministically and unpacks to the same map', () => {
    const a = files();
    const reversed = new Map([...a.entries()].reverse());
    expect(packFiles(a).equals(packFiles(reversed))).to.equal(true);
    expect(contentHash(a)).to.equal(contentHash(reversed));
    const back = unpackFiles(packFiles(a));
    expect([...back.keys()].sort()).to.deep.equal([...a.keys()].sort());
    for (const [name, data] of a) expect(back.get(name)!.equals(data)).to.equal(true);
  });

  it('refuses unsafe file names when packing', () => {
    for (const name of ['../etc/passwd', '/abs', 'a//b', 'a\\b', './x']) {
      expect(() => packFiles(new Map([[name, Buffer.from('x')]]))).to.throw(BundleError, /cannot pack/);
    }
  });

  it('seals, inspects without the key, and unseals to the same files', async () => {
    const key = createLocalKeyProvider(keyFile);
    const createdAt = new Date('2026-11-23T10:00:00Z');
    const bundle = await seal(files(), { orgId: 'contoso', version: 7, author: 'ops@msp.example', keyProvider: key, createdAt });
    const header = inspect(bundle);
    expect(header).to.include({ orgId: 'contoso', version: 7, author: 'ops@msp.example', createdAt: createdAt.toISOString(), files: 3 });
    expect(header.contentHash).to.equal(contentHash(files()));
    expect(header.key.alg).to.equal('A256KW');
    expect(header.key.ref).to.match(/^file:org\.key#[0-9a-f]{16}$/);
    // Nothing of the content in clear.
    expect(bundle.includes(Buffer.from('displayName'))).to.equal(false);
    const { files: opened } = await unseal(bundle, key, { expectOrgId: 'contoso', minVersion: 7 });
    for (const [name, data] of files()) if (!name.startsWith('images/')) expect(opened.get(name)!.equals(data)).to.equal(true);
    expect(opened.size).to.equal(3);
  });

  it('needs no signature under a local key file (AES key wrap authenticates it), and refuses one added afterwards', async () => {
    const key = createLocalKeyProvider(keyFile);
    const bundle = await seal(files(), { orgId: 'contoso', version: 8, author: 'ops', keyProvider: key });
    expect(inspect(bundle).signature).to.equal(undefined);
    expect(bundle.includes(Buffer.from('"signature"'))).to.equal(false);
    const length = bundle.readUInt32BE(8);
    const header = JSON.parse(bundle.subarray(12, 12 + length).toString('utf8')) as Record<string, unknown>;
    const text = Buffer.from(JSON.stringify({ ...header, signature: { kid: 'https://kv.vault.azure.net/keys/k/1', alg: 'PS256', value: 'AAAA' } }));
    const prefix = Buffer.from(bundle.subarray(0, 12));
    prefix.writeUInt32BE(text.length, 8);
    const added = Buffer.concat([prefix, text, bundle.subarray(12 + length)]);
    await expectRefusal(unseal(added, key), 'tampered', /signature was added/);
  });

  it('refuses a flipped byte anywhere, and says "tampered" when it is in the content, tag, AAD fields or wrapped key', async () => {
    const key = createLocalKeyProvider(keyFile);
    const bundle = await seal(files(), { orgId: 'contoso', version: 3, author: 'a', keyProvider: key });
    const headerLength = bundle.readUInt32BE(8);
    const headerStart = 12;
    const headerText = bundle.subarray(headerStart, headerStart + headerLength).toString('latin1');
    const offsetOf = (needle: string) => headerStart + headerText.indexOf(needle);
    // Content, tag, and a header value covered by the AAD (the author), the IV and the wrapped key.
    const header = inspect(bundle);
    const tamperedAt = [bundle.length - 1, bundle.length - 20, headerStart + headerLength + 5, offsetOf('"author":"a"') + 10, offsetOf(header.cipher.iv) + 2, offsetOf(header.key.wrapped) + 3, offsetOf('"ref":"file:org') + 13, offsetOf(header.key.mac) + 1];
    for (const at of tamperedAt) {
      const copy = Buffer.from(bundle);
      // Another letter (not a bit flip): inside the header's base64 fields it must stay valid base64.
      const c = String.fromCharCode(copy[at]);
      copy[at] = c === '+' ? 0x2f : c === '/' ? 0x2b : c === 'A' ? 0x42 : /[A-Za-z0-9]/.test(c) ? 0x41 : copy[at] ^ 0x01;
      await expectRefusal(unseal(copy, key), 'tampered', /tampered/);
    }
    // Every other single-byte change is refused too (with whichever reason fits).
    for (let at = 0; at < bundle.length; at += 7) {
      const copy = Buffer.from(bundle);
      copy[at] ^= 0x20;
      let refused: unknown;
      await unseal(copy, key).catch((e) => (refused = e));
      expect(refused, `byte ${at}`).to.be.instanceOf(BundleError);
    }
  });

  it('refuses a truncated file, another file, and a wrong organization', async () => {
    const key = createLocalKeyProvider(keyFile);
    const bundle = await seal(files(), { orgId: 'contoso', version: 3, author: 'a', keyProvider: key });
    await expectRefusal(unseal(bundle.subarray(0, bundle.length - 1), key), 'truncated', /truncated/);
    await expectRefusal(unseal(bundle.subarray(0, 30), key), 'truncated', /truncated/);
    await expectRefusal(unseal(bundle.subarray(0, 5), key), 'truncated', /truncated/);
    await expectRefusal(unseal(Buffer.from('orgId: contoso\n'), key), 'not-a-bundle', /not a Signet config bundle/);
    await expectRefusal(unseal(bundle, key, { expectOrgId: 'fabrikam' }), 'wrong-org', /wrong organization.*"contoso".*"fabrikam"/);
  });

  it('refuses a relabelled organization or version (the header is authenticated)', async () => {
    const key = createLocalKeyProvider(keyFile);
    const bundle = await seal(files(), { orgId: 'contoso', version: 3, author: 'a', keyProvider: key });
    const headerLength = bundle.readUInt32BE(8);
    const json = JSON.parse(bundle.subarray(12, 12 + headerLength).toString('utf8'));
    for (const change of [{ orgId: 'fabrikam' }, { version: 4 }]) {
      const forged = Buffer.from(JSON.stringify({ ...json, ...change }));
      const length = Buffer.alloc(4);
      length.writeUInt32BE(forged.length);
      const copy = Buffer.concat([bundle.subarray(0, 8), length, forged, bundle.subarray(12 + headerLength)]);
      await expectRefusal(unseal(copy, key, { expectOrgId: change.orgId ?? 'contoso' }), 'tampered', /tampered/);
    }
  });

  it('refuses a bundle under another key file, naming both versions', async () => {
    const other = path.join(dir, 'other.key');
    await createLocalKeyFile(other);
    const bundle = await seal(files(), { orgId: 'contoso', version: 3, author: 'a', keyProvider: createLocalKeyProvider(keyFile) });
    await expectRefusal(unseal(bundle, createLocalKeyProvider(other)), 'wrong-key', /wrong key: the bundle was sealed under file:org\.key#[0-9a-f]{16}.*version [0-9a-f]{16}/);
  });

  it('refuses a version older than the running one (rollback)', async () => {
    const key = createLocalKeyProvider(keyFile);
    const bundle = await seal(files(), { orgId: 'contoso', version: 5, author: 'a', keyProvider: key });
    await expectRefusal(unseal(bundle, key, { minVersion: 6 }), 'rollback', /version 5 is older than version 6.*rollback/);
    const { header } = await unseal(bundle, key, { minVersion: 5 });
    expect(header.version).to.equal(5);
  });

  it('reseals under a new key file: same labels and content, old key no longer opens it', async () => {
    const oldKey = createLocalKeyProvider(keyFile);
    const newFile = path.join(dir, 'new.key');
    await createLocalKeyFile(newFile);
    const newKey = createLocalKeyProvider(newFile);
    const bundle = await seal(files(), { orgId: 'contoso', version: 9, author: 'a', keyProvider: oldKey });
    const moved = await reseal(bundle, newKey, { from: oldKey });
    const before = inspect(bundle);
    const after = inspect(moved);
    expect({ ...after, key: undefined, cipher: undefined }).to.deep.equal({ ...before, key: undefined, cipher: undefined });
    expect(after.key.ref).to.not.equal(before.key.ref);
    const { files: opened } = await unseal(moved, newKey);
    expect(opened.get('org.yaml')!.equals(files().get('org.yaml')!)).to.equal(true);
    await expectRefusal(unseal(moved, oldKey), 'wrong-key', /wrong key/);
  });

  it('reseal does not carry the old data key over: whoever held the old key cannot seal content under the new one', async () => {
    const oldKey = createLocalKeyProvider(keyFile);
    const newFile = path.join(dir, 'rotated.key');
    await createLocalKeyFile(newFile);
    const newKey = createLocalKeyProvider(newFile);
    const bundle = await seal(files(), { orgId: 'contoso', version: 9, author: 'a', keyProvider: oldKey });
    const moved = await reseal(bundle, newKey, { from: oldKey });
    expect(inspect(moved).cipher.iv).to.not.equal(inspect(bundle).cipher.iv);
    // The old key's holder (someone who left: the reason for the rotation) unwraps the old bundle's data key...
    const old = inspect(bundle);
    const dataKey = await oldKey.unwrap(Buffer.from(old.key.wrapped, 'base64'), old.key.ref, old.key.alg);
    // ...and seals content of their own behind the resealed bundle's key envelope, as a higher version.
    const evil = files();
    evil.set('templates/default.html.ejs', Buffer.from('<% process.exit(1) %>\n'));
    const pack = packFiles(evil);
    const iv = randomBytes(12);
    const labels = { ...inspect(moved), version: 10, contentHash: contentHash(evil), size: pack.length };
    const aad = JSON.stringify({ author: labels.author, contentHash: labels.contentHash, createdAt: labels.createdAt, files: labels.files, format: labels.format, iv: iv.toString('base64'), orgId: labels.orgId, size: labels.size, version: labels.version });
    const cipher = createCipheriv('aes-256-gcm', dataKey, iv);
    cipher.setAAD(Buffer.from(aad));
    const ciphertext = Buffer.concat([cipher.update(pack), cipher.final()]);
    const header = Buffer.from(JSON.stringify({ ...labels, cipher: { alg: 'A256GCM', iv: iv.toString('base64') } }));
    const length = Buffer.alloc(4);
    length.writeUInt32BE(header.length);
    const forged = Buffer.concat([moved.subarray(0, 8), length, header, ciphertext, cipher.getAuthTag()]);
    await expectRefusal(unseal(forged, newKey, { expectOrgId: 'contoso', minVersion: 9 }), 'tampered', /tampered/);
  });

  it('diffs two configurations: added, removed, changed with a unified diff, binary summarised', () => {
    const a = files();
    const b = files();
    b.set('templates/default.html.ejs', Buffer.from('<p><%= user.displayName %></p>\n<p><%= user.department %></p>\n'));
    b.delete('images/logo.png');
    b.set('images/banner.png', Buffer.from([0x89, 0, 1]));
    a.set('images/x.bin', Buffer.from([0, 1]));
    b.set('images/x.bin', Buffer.from([0, 2]));
    const d = diffFiles(a, b);
    expect(d.added).to.deep.equal(['images/banner.png']);
    expect(d.removed).to.deep.equal(['images/logo.png']);
    expect(d.changed.map((c) => c.name)).to.deep.equal(['images/x.bin', 'templates/default.html.ejs']);
    const text = formatDiff(d);
    expect(text).to.include('-<p><%= user.jobTitle %></p>');
    expect(text).to.include('+<p><%= user.department %></p>');
    expect(text).to.include('changed  images/x.bin (binary, 2 → 2 bytes)');
    expect(formatDiff(diffFiles(a, a))).to.equal('no differences\n');
  });
});
