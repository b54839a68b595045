import { expect } from 'chai';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createOrgSource, fetchBlob, MAX_BUNDLE_BYTES, publishBundle, type OrgSource } from '../../appliance/src/config/source';
import { reseal, seal } from '../../appliance/src/config/bundle';
import { readOrgFolder, type OrgConfig } from '../../appliance/src/config';
import { createMetrics, type SignetMetrics } from '../../appliance/src/observability';
import { createAzureCredential, createAzureKeyProvider, type TokenCredential } from '../../appliance/src/secrets';
import { startAzureStandin, trustTestCa, useStandinManagedIdentity, type AzureStandin } from '../support/azure-standin';
import { createSealedOrgKit, type SealedOrgKit } from '../support/sealed-org';

async function metricValue(metrics: SignetMetrics, name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const value = metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return value?.value ?? 0;
}

const TEMPLATE = 'templates/default.html.ejs';

describe('org config source: hot reload of sealed bundles', () => {
  let kit: SealedOrgKit;
  let dir: string;
  before(async () => {
    kit = await createSealedOrgKit();
    dir = await mkdtemp(path.join(os.tmpdir(), 'signet-source-'));
  });
  after(async () => {
    await kit.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  function collect(source: OrgSource): OrgConfig[] {
    const seen: OrgConfig[] = [];
    source.on('config', (c: OrgConfig) => seen.push(c));
    return seen;
  }

  it('loads a bundle file, picks up a new version, refuses a tampered one and a rollback, keeps the running config', async () => {
    const original = await readFile(path.join(kit.orgDir, TEMPLATE), 'utf8');
    const file = path.join(dir, 'contoso.bundle');
    await publishBundle(await kit.seal(100), file);
    const metrics = createMetrics({ processMetrics: false });
    const source = createOrgSource({ location: file, key: kit.key, pollSeconds: 0, metrics });
    const configs = collect(source);
    expect(source.status().loaded).to.equal(false);
    await source.start();
    expect(source.status()).to.include({ loaded: true, version: '100', orgId: 'contoso' });
    const refusedNow = () => metricValue(metrics, 'signet_config_refused', {});
    expect(await refusedNow()).to.equal(0);
    expect(await source.reload()).to.equal('unchanged');

    await publishBundle(await kit.seal(101, { [TEMPLATE]: `${original}<!-- v101 -->\n` }), file);
    expect(await source.reload()).to.equal('loaded');
    expect(source.current()!.version).to.equal('101');
    expect(source.current()!.templates.get('default')!.html).to.include('<!-- v101 -->');
    expect(configs.map((c) => c.version)).to.deep.equal(['100', '101']);

    // Tampered: one byte of the ciphertext flipped.
    const next = await kit.seal(102, { [TEMPLATE]: `${original}<!-- v102 -->\n` });
    next[next.length - 40] ^= 1;
    await writeFile(file, next);
    expect(await source.reload()).to.equal('refused');
    expect(source.status()).to.include({ loaded: true, version: '101' });
    expect(source.status().lastError).to.match(/tampered/);
    expect(await source.reload()).to.equal('unchanged'); // refused once, not at every poll
    expect(await refusedNow()).to.equal(1); // ...but still the published one

    // Rollback: a valid but older bundle.
    await writeFile(file, await kit.seal(99));
    expect(await source.reload()).to.equal('refused');
    expect(source.status().lastError).to.match(/rollback/);
    expect(source.current()!.version).to.equal('101');

    expect(await metricValue(metrics, 'signet_config_reloads_total', { result: 'loaded' })).to.equal(2);
    expect(await metricValue(metrics, 'signet_config_reloads_total', { result: 'refused' })).to.equal(2);
    expect(await metricValue(metrics, 'signet_config_info', { org: 'contoso', version: '101' })).to.equal(1);
    expect(await metricValue(metrics, 'signet_config_info', { org: 'contoso', version: '100' })).to.equal(0);
    expect(configs.map((c) => c.version)).to.deep.equal(['100', '101']);

    expect(await refusedNow()).to.equal(1);
    // The running version published again instead: nothing refused any more.
    await writeFile(file, await kit.seal(101, { [TEMPLATE]: `${original}<!-- v101 -->\n` }));
    expect(await source.reload()).to.equal('unchanged');
    expect(await refusedNow()).to.equal(0);
    await writeFile(file, await kit.seal(99));
    expect(await source.reload()).to.equal('refused');
    expect(await refusedNow()).to.equal(1);

    // The running version resealed (key rotation) and republished: same content, nothing to reload.
    const running = await kit.seal(103);
    await publishBundle(running, file);
    expect(await source.reload()).to.equal('loaded');
    expect(await refusedNow()).to.equal(0);
    await publishBundle(await reseal(running, kit.key), file);
    expect(await source.reload()).to.equal('unchanged');
    expect(configs.map((c) => c.version)).to.deep.equal(['100', '101', '103']);
    source.stop();
  });

  it('takes other bytes under the running version\'s header as unchanged only once they open as the running configuration', async () => {
    const file = path.join(dir, 'same-header.bundle');
    const running = await kit.seal(400);
    await publishBundle(running, file);
    const metrics = createMetrics({ processMetrics: false });
    const source = createOrgSource({ location: file, key: kit.key, pollSeconds: 0, metrics });
    await source.start();
    // the header (version, content hash) is clear text: a copy with a ciphertext byte changed keeps it
    const altered = Buffer.from(running);
    altered[altered.length - 40] ^= 1;
    await writeFile(file, altered);
    expect(await source.reload()).to.equal('refused');
    expect(source.status().lastError).to.match(/tampered/);
    expect(source.status().version).to.equal('400');
    expect(await metricValue(metrics, 'signet_config_refused', {})).to.equal(1);
    // the same version sealed under a key the node does not have
    const stranger = await createSealedOrgKit();
    try {
      await writeFile(file, await stranger.seal(400));
      expect(await source.reload()).to.equal('refused');
      expect(await metricValue(metrics, 'signet_config_refused', {})).to.equal(1);
    } finally {
      await stranger.cleanup();
    }
    // the running bundle itself, and a reseal of it under the node's key: unchanged, nothing refused
    await writeFile(file, running);
    expect(await source.reload()).to.equal('unchanged');
    expect(await metricValue(metrics, 'signet_config_refused', {})).to.equal(0);
    await writeFile(file, await reseal(running, kit.key));
    expect(await source.reload()).to.equal('unchanged');
    source.stop();
  });

  it('fails a poll that hangs at its deadline, so polling and a starting node go on; the late poll then changes nothing', async () => {
    const file = path.join(dir, 'hang.bundle');
    await publishBundle(await kit.seal(500), file);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let hang = true;
    const slowKey = { ...kit.key, keyRef: kit.key.keyRef, wrap: kit.key.wrap.bind(kit.key), unwrap: async (wrapped: Buffer, ref: string, alg: string) => {
      if (hang) await gate; // a Key Vault that never answers
      return kit.key.unwrap(wrapped, ref, alg);
    } };
    const metrics = createMetrics({ processMetrics: false });
    const source = createOrgSource({ location: file, key: slowKey, pollSeconds: 0, pollTimeoutSeconds: 0.2, metrics });
    const configs = collect(source);
    await source.start(); // returns at the deadline instead of waiting for the key
    expect(source.status().loaded).to.equal(false);
    expect(source.status().lastError).to.match(/took longer than 0\.2 s/);
    expect(await metricValue(metrics, 'signet_config_refused', {})).to.equal(0); // a failure, not a refusal of the published config
    // the next poll is not stuck behind the hung one; this one the key answers
    hang = false;
    expect(await source.reload()).to.equal('loaded');
    expect(source.status().version).to.equal('500');
    // the hung poll ends now: it neither loads nor announces anything
    release();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(configs.map((c) => c.version)).to.deep.equal(['500']);
    source.stop();
  });

  it('refuses a version the engine cannot run like an invalid bundle: not announced, not the rollback floor', async () => {
    const file = path.join(dir, 'unusable.bundle');
    const stateDir = await mkdtemp(path.join(os.tmpdir(), 'signet-unusable-state-'));
    try {
      const good = await kit.seal(600);
      await publishBundle(good, file);
      const metrics = createMetrics({ processMetrics: false });
      const accept = (org: OrgConfig) => {
        if (org.version === '601') throw new Error('templates/default.html.ejs:3: user.x is not defined');
      };
      const source = createOrgSource({ location: file, key: kit.key, pollSeconds: 0, stateDir, metrics, accept });
      const configs = collect(source);
      await source.start();
      await publishBundle(await kit.seal(601), file);
      expect(await source.reload()).to.equal('refused');
      expect(source.status().lastError).to.match(/version 601 refused by the engine: templates\/default\.html\.ejs:3/);
      expect(source.status().version).to.equal('600');
      expect(await metricValue(metrics, 'signet_config_refused', {})).to.equal(1);
      expect(configs.map((c) => c.version)).to.deep.equal(['600']);
      // the floor stayed at the running version: putting it back is allowed and clears the refusal
      expect(JSON.parse(await readFile(path.join(stateDir, 'config-versions.json'), 'utf8')).orgs.contoso.version).to.equal(600);
      await writeFile(file, good);
      expect(await source.reload()).to.equal('unchanged');
      expect(await metricValue(metrics, 'signet_config_refused', {})).to.equal(0);
      source.stop();
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  });

  it('after a restart, refuses another organization\'s bundle than the one the node has run, and any file too large to be a bundle', async () => {
    const file = path.join(dir, 'pinned.bundle');
    const stateDir = await mkdtemp(path.join(os.tmpdir(), 'signet-pinned-state-'));
    const orgYaml = path.join(kit.orgDir, 'org.yaml');
    const original = await readFile(orgYaml, 'utf8');
    try {
      await publishBundle(await kit.seal(700), file);
      const first = createOrgSource({ location: file, key: kit.key, pollSeconds: 0, stateDir });
      await first.start();
      first.stop();
      // a bundle of another organization, validly sealed under the same key, put in place while the node is down
      await writeFile(orgYaml, original.replace(/^orgId: contoso$/m, 'orgId: contoso-old'));
      const files = await readOrgFolder(kit.orgDir);
      await writeFile(file, await seal(files, { orgId: 'contoso-old', version: 3, author: 'test@signet.invalid', keyProvider: kit.key }));
      const restarted = createOrgSource({ location: file, key: kit.key, pollSeconds: 0, stateDir });
      await restarted.start();
      expect(restarted.status().loaded).to.equal(false);
      expect(restarted.status().lastError).to.match(/organization "contoso-old", but this node has run "contoso" .*config-versions\.json; remove the file/);
      // a file far larger than any bundle is refused from its size, without reading it
      await rm(file);
      await writeFile(file, '');
      const { truncate } = await import('node:fs/promises');
      await truncate(file, MAX_BUNDLE_BYTES + 1);
      expect(await restarted.reload()).to.equal('refused');
      expect(restarted.status().lastError).to.match(/bytes, not a config bundle/);
      restarted.stop();
    } finally {
      await writeFile(orgYaml, original);
      await rm(stateDir, { recursive: true, force: true });
    }
  });

  it('refuses an invalid configuration inside a well-sealed bundle, naming the problem', async () => {
    const file = path.join(dir, 'invalid.bundle');
    const rules = await readFile(path.join(kit.orgDir, 'rules.yaml'));
    await publishBundle(await kit.seal(200), file);
    const source = createOrgSource({ location: file, key: kit.key, pollSeconds: 0 });
    const errors: Error[] = [];
    source.on('error', (e: Error) => errors.push(e));
    await source.start();
    const broken = await kit.seal(201, { 'rules.yaml': 'rules:\n  - id: x\n    template: no-such-template\n    match: {}\n' });
    await publishBundle(broken, file);
    expect(await source.reload()).to.equal('refused');
    expect(source.status().version).to.equal('200');
    expect(source.status().lastError).to.match(/rules\.yaml/);
    expect(errors).to.have.length(1);
    await writeFile(path.join(kit.orgDir, 'rules.yaml'), rules);
  });

  it('reports no config until one loads, and loads once the bundle arrives (transient failures are retried)', async () => {
    const file = path.join(dir, 'late.bundle');
    const source = createOrgSource({ location: file, keyRef: `file:${kit.keyFile}`, pollSeconds: 0 });
    await source.start(); // missing file: not loaded, no throw
    expect(source.status().loaded).to.equal(false);
    expect(source.status().lastError).to.match(/ENOENT/);
    await publishBundle(await kit.seal(300), file);
    expect(await source.reload()).to.equal('loaded');
  });

  it('serves a plain folder in development: edits are picked up, an invalid edit is refused', async () => {
    const folder = path.join(dir, 'folder-org');
    await cp(kit.orgDir, folder, { recursive: true });
    const source = createOrgSource({ location: folder, pollSeconds: 0 });
    const configs = collect(source);
    await source.start();
    expect(source.status()).to.include({ loaded: true, version: 'local', orgId: 'contoso' });
    expect(await source.reload()).to.equal('unchanged');
    const template = path.join(folder, TEMPLATE);
    const original = await readFile(template, 'utf8');
    await writeFile(template, `${original}<!-- edited -->\n`);
    expect(await source.reload()).to.equal('loaded');
    expect(source.current()!.templates.get('default')!.html).to.include('<!-- edited -->');
    await writeFile(path.join(folder, 'org.yaml'), 'orgId: contoso\nacceptedDomains: [not a domain]\n');
    expect(await source.reload()).to.equal('refused');
    expect(source.status().lastError).to.match(/org\.yaml/);
    expect(source.current()!.templates.get('default')!.html).to.include('<!-- edited -->');
    expect(configs).to.have.length(2);
  });

  it('publish refuses to replace a newer version at the target', async () => {
    const file = path.join(dir, 'pub.bundle');
    await publishBundle(await kit.seal(400), file);
    let error: Error | undefined;
    await publishBundle(await kit.seal(399), file).catch((e: Error) => (error = e));
    expect(error?.message).to.match(/already holds version 400.*rollback/);
    const missing = path.join(dir, 'no-such-folder', 'pub.bundle');
    const refused = await publishBundle(await kit.seal(401), missing).then(() => undefined, (e: Error) => e);
    expect(refused?.message).to.equal(`${path.dirname(missing)}: no such folder; create it first`);
    // a SAS token in the URL is refused before anything is sent, and never repeated
    const sas = 'https://stcontoso.blob.core.windows.net/config/org-config.sealed?sv=2024-01-01&sig=c2VjcmV0';
    const withToken = await publishBundle(await kit.seal(402), sas).then(() => undefined, (e: Error) => e);
    expect(withToken?.message).to.match(/query string or fragment/).and.not.include('sig=');
  });

  describe('from Azure Blob Storage with the node identity (real storage-blob client)', () => {
    let standin: AzureStandin;
    let restore: Array<() => void>;
    let credential: TokenCredential;
    before(async () => {
      standin = await startAzureStandin();
      restore = [trustTestCa(standin.caPem), useStandinManagedIdentity(standin)];
      credential = createAzureCredential({ kind: 'node', managedIdentityClientId: 'node-identity-1' });
    });
    after(async () => {
      for (const undo of restore.reverse()) undo();
      await standin.close();
    });

    it('publishes, hot-reloads a new version, skips unchanged by ETag, refuses a tampered blob', async () => {
      const url = standin.blobUrl('signetcontoso', 'config', 'contoso.bundle');
      const operator = { blob: () => ({ credential }) };
      await publishBundle(await kit.seal(500), url, operator);
      const metrics = createMetrics({ processMetrics: false });
      const source = createOrgSource({ location: url, key: kit.key, pollSeconds: 0, credential, metrics });
      const configs = collect(source);
      await source.start();
      expect(source.status(), source.status().lastError).to.include({ loaded: true, version: '500' });
      expect(await source.reload()).to.equal('unchanged');
      const conditional = standin.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/contoso.bundle'));
      expect(conditional.length).to.be.greaterThan(1);

      await publishBundle(await kit.seal(501), url, operator);
      expect(await source.reload()).to.equal('loaded');
      expect(source.current()!.version).to.equal('501');

      const tampered = await kit.seal(502);
      tampered[tampered.length - 3] ^= 0x80;
      standin.putBlob('signetcontoso', 'config', 'contoso.bundle', tampered);
      expect(await source.reload()).to.equal('refused');
      expect(source.status()).to.include({ version: '501' });
      expect(source.status().lastError).to.match(/tampered/);
      expect(configs.map((c) => c.version)).to.deep.equal(['500', '501']);
      expect(await metricValue(metrics, 'signet_config_reloads_total', { result: 'refused' })).to.equal(1);
      // The node authenticated as its managed identity for storage.
      const tokenRequests = standin.tokenRequests().filter((r) => r.resource === 'https://storage.azure.com');
      expect(tokenRequests.map((r) => r.clientId)).to.include('node-identity-1');
    });

    it('a node as on Azure: bundle sealed under a Key Vault key, read from a blob, key by reference, all with its managed identity', async () => {
      standin.createKey('org-contoso');
      standin.createKey('org-contoso-signing', { ops: ['sign', 'verify'] });
      const keyRef = `${standin.vaultUrl}/keys/org-contoso`;
      // Loopback vault: challenge verification off (see test/secrets/azure-key-vault.test.ts).
      const keyClientOptions = { disableChallengeResourceVerification: true };
      const vaultKey = createAzureKeyProvider(keyRef, { credential, clientOptions: keyClientOptions });
      const files = await readOrgFolder(kit.orgDir);
      const url = standin.blobUrl('signetcontoso', 'config', 'vault.bundle');
      await publishBundle(await seal(files, { orgId: 'contoso', version: 700, author: 'ops', keyProvider: vaultKey }), url, { blob: () => ({ credential }) });
      const source = createOrgSource({ location: url, keyRef, keyClientOptions, credential, pollSeconds: 0 });
      await source.start();
      expect(source.status(), source.status().lastError).to.include({ loaded: true, version: '700' });
      expect(standin.requests.some((r) => /^\/keys\/org-contoso\/[0-9a-f]+\/unwrapkey$/.test(r.path) && r.clientId === 'node-identity-1')).to.equal(true);
    });

    it('refuses a blob larger than any bundle from its length alone, and lets go of the download', async () => {
      standin.putBlob('signetcontoso', 'config', 'huge.bundle', Buffer.alloc(MAX_BUNDLE_BYTES + 1));
      const url = standin.blobUrl('signetcontoso', 'config', 'huge.bundle');
      const error = await fetchBlob(url, { credential }).then(() => undefined, (e: Error) => e);
      expect(error?.message).to.match(/not a config bundle/);
      const download = standin.blobDownloads.find((d) => d.path.endsWith('/huge.bundle'))!;
      // Without letting go, the socket stays open with 64 MB unread until the server gives up.
      const outcome = await Promise.race([download.closed.then(() => 'closed'), new Promise((resolve) => setTimeout(resolve, 5000, 'still open'))]);
      expect(outcome).to.equal('closed');
    });

    it('polls on its own and emits the new version', async () => {
      const url = standin.blobUrl('signetcontoso', 'config', 'polled.bundle');
      await publishBundle(await kit.seal(600), url, { blob: () => ({ credential }) });
      const source = createOrgSource({ location: url, key: kit.key, pollSeconds: 0.05, credential });
      await source.start();
      const next = new Promise<OrgConfig>((resolve) => source.once('config', resolve));
      await publishBundle(await kit.seal(601), url, { blob: () => ({ credential }) });
      expect((await next).version).to.equal('601');
      source.stop();
    });
  });
});
