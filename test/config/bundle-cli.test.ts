import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { inspect } from '../../appliance/src/config/bundle';
import { EXAMPLE_ORG_DIR } from '../support/sealed-org';

const run = promisify(execFile);
const SIGNET = path.resolve(__dirname, '../../bin/signet.js');

async function signet(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [SIGNET, ...args], { env: { ...process.env, ...env }, timeout: 15_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('signet config seal | inspect | unseal | reseal | diff | publish, keys create-local', function () {
  this.timeout(180_000); // about fifteen CLI processes, each starting TypeScript through tsx
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'signet-cli-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('creates a key, seals the example org, inspects, publishes, unseals, diffs and reseals', async () => {
    const key = path.join(dir, 'org.key');
    const created = await signet(['keys', 'create-local', key]);
    expect(created.code, created.stderr).to.equal(0);
    expect((await stat(key)).mode & 0o777).to.equal(0o600);
    expect((await signet(['keys', 'create-local', key])).code).to.not.equal(0);

    const bundle = path.join(dir, 'contoso.bundle');
    const sealed = await signet(['config', 'seal', EXAMPLE_ORG_DIR, '--key', `file:${key}`, '--out', bundle, '--version', '7', '--author', 'alice@msp.example']);
    expect(sealed.code, sealed.stderr + sealed.stdout).to.equal(0);
    expect(sealed.stdout).to.match(/organization contoso\nversion +7\n/);
    expect(sealed.stdout).to.match(/\nsignature +none\n/); // a local key file authenticates its bundles itself (AES key wrap)
    const withSigningKey = await signet(['config', 'seal', EXAMPLE_ORG_DIR, '--key', `file:${key}`, '--out', path.join(dir, 'never.bundle'), '--signing-key', 'https://kv.vault.azure.net/keys/k-signing']);
    expect(withSigningKey.code).to.not.equal(0);
    expect(withSigningKey.stderr).to.match(/a signing key goes with a Key Vault key only/);
    const header = inspect(await readFile(bundle));
    expect(header).to.include({ orgId: 'contoso', version: 7, author: 'alice@msp.example' });

    const shown = await signet(['config', 'inspect', bundle, '--json']);
    expect(JSON.parse(shown.stdout)).to.include({ orgId: 'contoso', version: 7, contentHash: header.contentHash });

    const published = path.join(dir, 'published', 'contoso.bundle');
    await mkdir(path.dirname(published));
    const pub = await signet(['config', 'publish', bundle, '--to', published]);
    expect(pub.code, pub.stderr).to.equal(0);
    expect(pub.stdout).to.match(/published contoso version 7 to /);
    const again = await signet(['config', 'publish', bundle, '--to', published]); // same content again: harmless
    expect(again.code, again.stderr).to.equal(0);

    const out = path.join(dir, 'unsealed');
    const opened = await signet(['config', 'unseal', bundle, '--key', `file:${key}`, '--out', out, '--org', 'contoso']);
    expect(opened.code, opened.stderr).to.equal(0);
    expect(await readFile(path.join(out, 'org.yaml'), 'utf8')).to.equal(await readFile(path.join(EXAMPLE_ORG_DIR, 'org.yaml'), 'utf8'));
    const wrongOrg = await signet(['config', 'unseal', bundle, '--key', `file:${key}`, '--out', path.join(dir, 'x'), '--org', 'fabrikam']);
    expect(wrongOrg.code).to.not.equal(0);
    expect(wrongOrg.stderr).to.match(/wrong organization/);

    // Change a template in the unsealed copy, seal v8, diff the two bundles.
    const template = path.join(out, 'templates', 'default.html.ejs');
    await writeFile(template, `${await readFile(template, 'utf8')}<p>New line for v8</p>\n`);
    const v8 = path.join(dir, 'v8.bundle');
    expect((await signet(['config', 'seal', out, '--key', `file:${key}`, '--out', v8, '--version', '8'])).code).to.equal(0);
    const diff = await signet(['config', 'diff', bundle, v8, '--key', `file:${key}`]);
    expect(diff.code, diff.stderr).to.equal(0);
    expect(diff.stdout).to.include('changed  templates/default.html.ejs');
    expect(diff.stdout).to.include('+<p>New line for v8</p>');
    expect(diff.stdout).to.match(/contoso version 7[\s\S]*contoso version 8/);
    expect((await signet(['config', 'publish', v8, '--to', published])).code).to.equal(0);
    const rollback = await signet(['config', 'publish', bundle, '--to', published]);
    expect(rollback.code).to.not.equal(0);
    expect(rollback.stderr).to.match(/already holds version 8; this bundle is version 7/);

    // Reseal under a new key file; the old one no longer opens it.
    const newKey = path.join(dir, 'new.key');
    await signet(['keys', 'create-local', newKey]);
    const resealed = await signet(['config', 'reseal', v8, '--key', `file:${newKey}`, '--from', `file:${key}`]);
    expect(resealed.code, resealed.stderr).to.equal(0);
    expect(inspect(await readFile(v8)).key.ref).to.match(/^file:new\.key#/);
    const refused = await signet(['config', 'unseal', v8, '--key', `file:${key}`, '--out', path.join(dir, 'y')]);
    expect(refused.stderr).to.match(/wrong key/);
  });

  it('refuses to seal an invalid folder and prints every problem with file and path', async () => {
    const org = path.join(dir, 'broken');
    await cp(EXAMPLE_ORG_DIR, org, { recursive: true });
    await writeFile(path.join(org, 'rules.yaml'), 'rules:\n  - id: a\n    template: nope\n    match: {}\n');
    const key = path.join(dir, 'k2.key');
    await signet(['keys', 'create-local', key]);
    const result = await signet(['config', 'seal', org, '--key', `file:${key}`, '--out', path.join(dir, 'no.bundle')]);
    expect(result.code).to.equal(1);
    expect(result.stdout).to.match(/rules\.yaml.*rules\[0\]/);
    expect(result.stdout).to.match(/not sealed/);
    let exists = true;
    await stat(path.join(dir, 'no.bundle')).catch(() => (exists = false));
    expect(exists).to.equal(false);
  });

  it('refuses to seal a template every node would refuse at its trial render (a misspelt name)', async () => {
    const org = path.join(dir, 'misspelt');
    await cp(EXAMPLE_ORG_DIR, org, { recursive: true });
    const file = path.join(org, 'templates', 'default.html.ejs');
    await writeFile(file, (await readFile(file, 'utf8')).replace('<%= user.displayName %>', '<%= dispayName %>'));
    const key = path.join(dir, 'k3.key');
    await signet(['keys', 'create-local', key]);
    const result = await signet(['config', 'seal', org, '--key', `file:${key}`, '--out', path.join(dir, 'misspelt.bundle')]);
    expect(result.code).to.equal(1);
    expect(result.stdout).to.match(/templates\/default\.html\.ejs:\d+: dispayName is not defined\nnot sealed: 1 problem/);
    let exists = true;
    await stat(path.join(dir, 'misspelt.bundle')).catch(() => (exists = false));
    expect(exists).to.equal(false);
  });

  it('inspect shows header fields of any origin as inert text: no terminal escape sequences, no line breaks', async () => {
    const key = path.join(dir, 'k4.key');
    await signet(['keys', 'create-local', key]);
    const bundle = path.join(dir, 'escapes.bundle');
    // What anyone who can write the blob could put in the clear header; here through --author, which writes the same field.
    const author = 'ops\r\u001b[2Ksignature    https://kv.vault.azure.net/keys/org-config-key-signing/1 (PS256)\u001b]0;x\u0007\u202e';
    const sealed = await signet(['config', 'seal', EXAMPLE_ORG_DIR, '--key', `file:${key}`, '--out', bundle, '--version', '1', '--author', author]);
    expect(sealed.code, sealed.stderr).to.equal(0);
    const shown = await signet(['config', 'inspect', bundle]);
    expect(shown.code, shown.stderr).to.equal(0);
    for (const output of [sealed.stdout, shown.stdout]) {
      // eslint-disable-next-line no-control-regex -- matching control characters is the point
      expect(output).to.not.match(/[\u0000-\u0009\u000b-\u001f\u007f\u202e]/);
      expect(output).to.include('author       ops\\u000d\\u001b[2Ksignature');
      expect(output.match(/^signature/gm)).to.have.length(1);
    }
    expect(inspect(await readFile(bundle)).author).to.equal(author);
  });

  it('inspect names a file that is not a bundle', async () => {
    const result = await signet(['config', 'inspect', path.join(EXAMPLE_ORG_DIR, 'org.yaml')]);
    expect(result.code).to.not.equal(0);
    expect(result.stderr).to.match(/not a Signet config bundle/);
  });
});
