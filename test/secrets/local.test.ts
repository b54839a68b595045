import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createFileSecretProvider, createLocalKeyFile, createLocalKeyProvider, keyProviderFromRef, KeyProviderError, localKeyVersion, SecretError } from '../../appliance/src/secrets';

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  return expect.fail('expected a rejection');
}

describe('local org key file and file secrets', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'signet-keys-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('wraps with AES-256-KW and unwraps; the versioned ref is the key hash prefix', async () => {
    const file = path.join(dir, 'a.key');
    const { version } = await createLocalKeyFile(file);
    const key = createLocalKeyProvider(file);
    const dataKey = randomBytes(32);
    const { wrapped, keyRef, alg } = await key.wrap(dataKey);
    expect(alg).to.equal('A256KW');
    expect(keyRef).to.equal(`file:a.key#${version}`);
    expect(wrapped.length).to.equal(40);
    expect((await key.unwrap(wrapped, keyRef, alg)).equals(dataKey)).to.equal(true);
    const altered = Buffer.from(wrapped);
    altered[3] ^= 1;
    const error = await rejection(key.unwrap(altered, keyRef, alg));
    expect((error as KeyProviderError).code).to.equal('tampered');
  });

  it('accepts raw 32-byte key files, refuses anything else with the file name', async () => {
    const raw = randomBytes(32);
    const rawFile = path.join(dir, 'raw.key');
    await writeFile(rawFile, raw);
    const { keyRef } = await createLocalKeyProvider(rawFile).wrap(randomBytes(32));
    expect(keyRef).to.equal(`file:raw.key#${localKeyVersion(raw)}`);
    const bad = path.join(dir, 'bad.key');
    await writeFile(bad, 'not a key\n');
    const error = await rejection(createLocalKeyProvider(bad).wrap(randomBytes(32)));
    expect(error.message).to.match(/bad\.key: not a Signet key file/);
    const missing = await rejection(createLocalKeyProvider(path.join(dir, 'none.key')).wrap(randomBytes(32)));
    expect(missing.message).to.match(/cannot read key file .*none\.key: ENOENT/);
  });

  it('parses key references', () => {
    expect(keyProviderFromRef('file:/x/org.key').keyRef).to.equal('file:/x/org.key');
    expect(() => keyProviderFromRef('https://v.vault.azure.net/keys/k')).to.throw(/needs an Azure credential/);
    expect(() => keyProviderFromRef('s3://bucket/key')).to.throw(/unknown key reference/);
    expect(() => keyProviderFromRef('file:')).to.throw(/missing path/);
  });

  it('reads secrets from files, with versions, refusing path tricks', async () => {
    await writeFile(path.join(dir, 'graph-client-secret'), 's3cret');
    await writeFile(path.join(dir, 'graph-client-secret.v2'), 's3cret-2');
    const secrets = createFileSecretProvider(dir);
    expect(await secrets.get('graph-client-secret')).to.equal('s3cret');
    expect(await secrets.get('graph-client-secret', 'v2')).to.equal('s3cret-2');
    expect(await rejection(secrets.get('../etc/passwd'))).to.be.instanceOf(SecretError);
    expect((await rejection(secrets.get('absent'))).message).to.match(/cannot read secret absent .*ENOENT/);
  });
});
