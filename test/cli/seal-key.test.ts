// `signet config seal` whose key cannot be used says the bundle was not
// sealed (nothing is written), not that some bundle was "not opened".
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readOrgFolder } from '../../appliance/src/config';
import { BundleError, seal } from '../../appliance/src/config/bundle';
import { createLocalKeyProvider } from '../../appliance/src/secrets';
import { EXAMPLE_ORG_DIR } from '../support/sealed-org';

const ROOT = resolve(__dirname, '../..');

describe('signet config seal with a key file that is not there', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'signet-seal-key-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('says the bundle was not sealed, names the key file, and writes nothing', () => {
    const key = join(dir, 'missing.key');
    const out = join(dir, 'contoso.bundle');
    const run = spawnSync(process.execPath, [join(ROOT, 'bin/signet.js'), 'config', 'seal', EXAMPLE_ORG_DIR, '--key', `file:${key}`, '--out', out], { cwd: ROOT, encoding: 'utf8' });
    expect(run.status).to.not.equal(0);
    expect(run.stderr).to.equal(`signet: bundle not sealed: cannot read key file ${key}: ENOENT\n`);
    expect(existsSync(out)).to.equal(false);
  });

  it('seal() itself: a key that cannot wrap is "bundle not sealed", still a key-unavailable error', async () => {
    const error = await seal(await readOrgFolder(EXAMPLE_ORG_DIR), { orgId: 'contoso', version: 1, author: 'test', keyProvider: createLocalKeyProvider(join(dir, 'gone.key')) }).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(BundleError);
    expect((error as BundleError).code).to.equal('key-unavailable');
    expect((error as Error).message).to.match(/^bundle not sealed: cannot read key file \S+gone\.key: ENOENT$/);
  });
});
