// Bundles sealed under a Key Vault org key are signed, and a node refuses one
// without a valid signature before anything is unwrapped. The data key is
// wrapped with RSA-OAEP-256, a public-key operation: without the signature,
// anyone who can read the org key's public half and write the config blob
// could seal a bundle of their own (templates are EJS, i.e. code) that every
// node accepts. Real SDK clients (@azure/keyvault-keys, @azure/storage-blob,
// @azure/identity) against the loopback stand-in, with per-key roles as the
// tenant stack assigns them.
import { expect } from 'chai';
import { constants, createHash, createPublicKey, generateKeyPairSync, publicEncrypt, sign as rsaSign } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { KeyClient } from '@azure/keyvault-keys';
import { BundleError, inspect, reseal, seal, unseal, type BundleHeader } from '../../appliance/src/config/bundle';
import { createOrgSource, publishBundle, VERSION_STATE_FILE, type OrgSource } from '../../appliance/src/config/source';
import { readOrgFolder } from '../../appliance/src/config';
import { createMetrics, type SignetMetrics } from '../../appliance/src/observability';
import { createAzureBundleSigner, createAzureCredential, createAzureKeyProvider, signingKeyRefFor, type BundleSigner, type OrgKeyProvider, type TokenCredential } from '../../appliance/src/secrets';
import { startAzureStandin, trustTestCa, useStandinManagedIdentity, type AzureStandin } from '../support/azure-standin';
import { createSealedOrgKit, EXAMPLE_ORG_DIR, type SealedOrgKit } from '../support/sealed-org';

// Loopback vault: the challenge's resource (vault.azure.net) cannot match 127.0.0.1 (see test/secrets/azure-key-vault.test.ts).
const clientOptions = { disableChallengeResourceVerification: true, retryOptions: { maxRetries: 0 } };
const TEMPLATE = 'templates/default.html.ejs';
const EVIL = `<% globalThis.SIGNET_FORGED_TEMPLATE_RAN = true; %><p><%= user.displayName %></p>\n`;

async function metricValue(metrics: SignetMetrics, name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  return metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;
}

async function refusal(promise: Promise<unknown>): Promise<BundleError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(BundleError);
    return error as BundleError;
  }
  return expect.fail('expected a refusal');
}

/** Rewrite a bundle's clear header, as anyone with write access to the blob can (layout in seal.ts). */
function withHeader(bundle: Buffer, edit: (header: BundleHeader) => BundleHeader): Buffer {
  const length = bundle.readUInt32BE(8);
  const header = JSON.parse(bundle.subarray(12, 12 + length).toString('utf8')) as BundleHeader;
  const bytes = Buffer.from(JSON.stringify(edit(header)), 'utf8');
  const prefix = Buffer.alloc(12);
  bundle.copy(prefix, 0, 0, 8);
  prefix.writeUInt32BE(bytes.length, 8);
  return Buffer.concat([prefix, bytes, bundle.subarray(12 + length)]);
}

describe('signed bundles under a Key Vault org key (real SDK clients against the stand-in)', function () {
  this.timeout(60_000);
  let standin: AzureStandin;
  let restore: Array<() => void>;
  let operator: TokenCredential;
  let node: TokenCredential;
  let attacker: TokenCredential;
  let orgKeyRef: string;
  let signingKeyRef: string;
  let kit: SealedOrgKit;
  let files: Map<string, Buffer>;
  const url = () => standin.blobUrl('signetcontoso', 'config', 'contoso.bundle');
  const unwraps = () => standin.requests.filter((r) => /\/unwrapkey$/.test(r.path)).length;

  before(async () => {
    standin = await startAzureStandin();
    restore = [trustTestCa(standin.caPem), useStandinManagedIdentity(standin)];
    operator = createAzureCredential({ kind: 'node', managedIdentityClientId: 'operator-1' });
    node = createAzureCredential({ kind: 'node', managedIdentityClientId: 'node-1' });
    attacker = createAzureCredential({ kind: 'node', managedIdentityClientId: 'attacker-1' });
    standin.createKey('org-config-key');
    standin.createKey('org-config-key-signing', { ops: ['sign', 'verify'] });
    orgKeyRef = `${standin.vaultUrl}/keys/org-config-key`;
    signingKeyRef = signingKeyRefFor(orgKeyRef);
    // As infra/components/keyvault.ts assigns them; the attacker may read the org key's public half (keys/read).
    standin.keyRoles.set('org-config-key', new Map([['operator-1', 'Key Vault Crypto User'], ['node-1', 'Key Vault Crypto User'], ['attacker-1', 'Key Vault Reader']]));
    standin.keyRoles.set('org-config-key-signing', new Map([['operator-1', 'Key Vault Crypto User'], ['node-1', 'Key Vault Reader'], ['officer-1', 'Key Vault Crypto Officer']]));
    kit = await createSealedOrgKit();
    files = await readOrgFolder(EXAMPLE_ORG_DIR);
  });
  after(async () => {
    for (const undo of restore.reverse()) undo();
    await standin.close();
    await kit.cleanup();
    delete (globalThis as Record<string, unknown>).SIGNET_FORGED_TEMPLATE_RAN;
  });

  const operatorKey = () => createAzureKeyProvider(orgKeyRef, { credential: operator, clientOptions });
  const sealed = (version: number, content = files) => seal(content, { orgId: 'contoso', version, author: 'ops', keyProvider: operatorKey() });
  const nodeSource = (options: { stateDir?: string; metrics?: SignetMetrics } = {}): OrgSource =>
    createOrgSource({ location: url(), keyRef: orgKeyRef, keyClientOptions: clientOptions, credential: node, pollSeconds: 0, ...options });

  /** The reviewer's forger: the org key's public half only (keys/read), never the vault's wrapkey. */
  async function forger(): Promise<OrgKeyProvider> {
    const jwk = (await new KeyClient(standin.vaultUrl, attacker, clientOptions).getKey('org-config-key')).key!;
    const publicKey = createPublicKey({ key: { kty: 'RSA', n: Buffer.from(jwk.n!).toString('base64url'), e: Buffer.from(jwk.e!).toString('base64url') }, format: 'jwk' });
    return {
      keyRef: orgKeyRef,
      wrap: async (dataKey) => ({ wrapped: publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, dataKey), keyRef: jwk.kid!, alg: 'RSA-OAEP-256' }),
      unwrap: () => Promise.reject(new Error('the attacker cannot unwrap')),
    };
  }

  /** A PS256 signer with a key of the attacker's own that names the org's signing key as its kid. */
  function impostor(kid: string): BundleSigner {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    return {
      keyRef: signingKeyRef,
      sign: async (digest) => ({ kid, alg: 'PS256', signature: rsaSign('sha256', digest, { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }) }),
    };
  }

  it('seals with the vault: wrap under the org key, PS256 signature by <org key>-signing, checked before it is returned', async () => {
    const bundle = await sealed(1);
    const header = inspect(bundle);
    expect(signingKeyRef).to.equal(`${standin.vaultUrl}/keys/org-config-key-signing`);
    expect(header.signature).to.include({ alg: 'PS256' });
    expect(header.signature!.kid).to.match(/\/keys\/org-config-key-signing\/[0-9a-f]{32}$/);
    expect(Buffer.from(header.signature!.value, 'base64')).to.have.length(256);
    const signCalls = standin.requests.filter((r) => /^\/keys\/org-config-key-signing\/[0-9a-f]*\/sign$/.test(r.path));
    expect(signCalls.map((r) => r.clientId)).to.include('operator-1');
    // A node (Key Vault Reader on the signing key) opens it, reading the public key only.
    const opened = await unseal(bundle, createAzureKeyProvider(orgKeyRef, { credential: node, clientOptions }));
    expect(opened.header.version).to.equal(1);
    expect(standin.requests.some((r) => r.method === 'GET' && /^\/keys\/org-config-key-signing\/[0-9a-f]{32}$/.test(r.path) && r.clientId === 'node-1')).to.equal(true);
  });

  it("a node's identity cannot sign: Key Vault Reader on the signing key reads its public half only", async () => {
    const error = await refusal(seal(files, { orgId: 'contoso', version: 2, author: 'node', keyProvider: createAzureKeyProvider(orgKeyRef, { credential: node, clientOptions }) }));
    expect(error.code).to.equal('key-unavailable');
    expect(error.message).to.match(/bundle not signed: Key Vault refused sign .*org-config-key-signing \(403\)/);
    const direct = await createAzureBundleSigner(signingKeyRef, { credential: node, clientOptions }).sign(createHash('sha256').update('x').digest()).catch((e: Error) => e);
    expect(String(direct)).to.match(/Key Vault Crypto User/);
  });

  it("the node's source refuses the reviewer's forgery and every unsigned or wrongly signed bundle before unwrapping; the running config stays", async () => {
    const metrics = createMetrics({ processMetrics: false });
    await publishBundle(await sealed(100), url(), { blob: () => ({ credential: operator }) });
    const source = nodeSource({ metrics });
    await source.start();
    expect(source.status(), source.status().lastError).to.include({ loaded: true, version: '100' });

    const evil = new Map(files);
    evil.set(TEMPLATE, Buffer.from(EVIL));
    const forgedKey = await forger();
    const realSigningKid = (await new KeyClient(standin.vaultUrl, operator, clientOptions).getKey('org-config-key-signing')).id!;
    // An attacker-held key in the same vault, used through the vault: a valid PS256 signature, by the wrong key.
    standin.createKey('attacker-signing', { ops: ['sign', 'verify'] });
    standin.keyRoles.set('attacker-signing', new Map([['attacker-1', 'Key Vault Crypto User']]));
    const otherVaultKey = createAzureBundleSigner(`${standin.vaultUrl}/keys/attacker-signing`, { credential: attacker, clientOptions });

    const signedForgery = await seal(evil, { orgId: 'contoso', version: 99999999999999, author: 'attacker', keyProvider: forgedKey, signer: impostor(realSigningKid) });
    const cases: Array<[label: string, bundle: Buffer, code: string, message: RegExp]> = [
      ['forged, no signature (the reviewer\'s reproducer)', withHeader(signedForgery, (h) => ({ ...h, signature: undefined })), 'unsigned', /unsigned .*RSA-OAEP-256.*carries no signature/],
      ['forged, signed by another key claiming the signing key\'s id', signedForgery, 'bad-signature', /does not match the bundle/],
      ['forged, validly signed by another vault key', await seal(evil, { orgId: 'contoso', version: 99999999999998, author: 'attacker', keyProvider: forgedKey, signer: otherVaultKey }), 'bad-signature', /signed by .*attacker-signing.*only signatures by .*org-config-key-signing/],
      ['forged, signature copied from a genuine bundle', withHeader(signedForgery, (h) => ({ ...h, signature: inspect(standin.getBlob('signetcontoso', 'config', 'contoso.bundle')!).signature })), 'bad-signature', /does not match the bundle/],
      ['forged, signature by a made-up version of the signing key', withHeader(signedForgery, (h) => ({ ...h, signature: { ...h.signature!, kid: `${signingKeyRef}/${'0'.repeat(32)}` } })), 'bad-signature', /does not exist/],
      ['forged, another signature algorithm', withHeader(signedForgery, (h) => ({ ...h, signature: { ...h.signature!, alg: 'RS256' } })), 'bad-signature', /only PS256/],
    ];
    const genuine = await sealed(101);
    const tampered = Buffer.from(genuine);
    tampered[tampered.length - 40] ^= 1; // one byte of the ciphertext
    cases.push(['genuine, ciphertext altered', tampered, 'bad-signature', /does not match the bundle/]);
    cases.push(['genuine, signature removed', withHeader(genuine, (h) => ({ ...h, signature: undefined })), 'unsigned', /unsigned/]);
    cases.push(['genuine, relabelled version', withHeader(genuine, (h) => ({ ...h, version: 102 })), 'bad-signature', /does not match the bundle/]);

    let refused = 0;
    for (const [label, bundle, code, message] of cases) {
      const before = unwraps();
      const direct = await refusal(unseal(bundle, createAzureKeyProvider(orgKeyRef, { credential: node, clientOptions })));
      expect(direct.code, `${label}: ${direct.message}`).to.equal(code);
      expect(direct.message, label).to.match(message);
      standin.putBlob('signetcontoso', 'config', 'contoso.bundle', bundle);
      expect(await source.reload(), label).to.equal('refused');
      refused++;
      expect(source.status(), label).to.include({ loaded: true, version: '100' });
      expect(source.status().lastError, label).to.match(message);
      expect(unwraps(), `${label}: nothing unwrapped`).to.equal(before);
    }
    expect((globalThis as Record<string, unknown>).SIGNET_FORGED_TEMPLATE_RAN).to.equal(undefined);
    expect(source.current()!.templates.get('default')!.html).to.not.include('SIGNET_FORGED_TEMPLATE_RAN');
    expect(await metricValue(metrics, 'signet_config_reloads_total', { result: 'refused' })).to.equal(refused);

    // The genuine bundle itself loads.
    await publishBundle(genuine, url(), { blob: () => ({ credential: operator }), force: true });
    expect(await source.reload()).to.equal('loaded');
    expect(source.status()).to.include({ version: '101' });
    expect(await metricValue(metrics, 'signet_config_info', { org: 'contoso', version: '101' })).to.equal(1);
  });

  it('the signing key rotates: new bundles are signed by the new version, older ones still load while their version is enabled', async () => {
    const old = await sealed(200);
    const oldKid = inspect(old).signature!.kid;
    // Rotation is a Crypto Officer's (runbooks/rotate-org-key.md); nodes need nothing new: any version of the key is accepted.
    const officer = createAzureCredential({ kind: 'node', managedIdentityClientId: 'officer-1' });
    const rotated = await new KeyClient(standin.vaultUrl, officer, clientOptions).rotateKey('org-config-key-signing');
    const fresh = await sealed(201);
    expect(inspect(fresh).signature!.kid).to.equal(rotated.id);
    const nodeKey = createAzureKeyProvider(orgKeyRef, { credential: node, clientOptions });
    expect((await unseal(old, nodeKey)).header.version).to.equal(200);
    expect((await unseal(fresh, nodeKey)).header.version).to.equal(201);
    // reseal re-signs with the current version (and refuses to vouch for what it cannot verify)
    const moved = await reseal(old, operatorKey());
    expect(inspect(moved).signature!.kid).to.equal(rotated.id);
    const unsigned = await refusal(reseal(withHeader(old, (h) => ({ ...h, signature: undefined })), operatorKey()));
    expect(unsigned.code).to.equal('unsigned');
    // A disabled version is refused by a node that has not seen it yet.
    standin.disableKeyVersion('org-config-key-signing', oldKid.split('/').pop()!);
    const refused = await refusal(unseal(old, createAzureKeyProvider(orgKeyRef, { credential: node, clientOptions })));
    expect(refused.code).to.equal('bad-signature');
    expect(refused.message).to.match(/disabled version/);
    expect((await unseal(moved, createAzureKeyProvider(orgKeyRef, { credential: node, clientOptions }))).header.version).to.equal(200);
  });

  it('a signing key version disabled while a node runs is refused by that node too, not only by one that never read it', async () => {
    const loaded = await sealed(400);
    const presigned = await sealed(401); // e.g. signed ahead by someone whose access is being revoked
    const kid = inspect(presigned).signature!.kid;
    const nodeKey = createAzureKeyProvider(orgKeyRef, { credential: node, clientOptions });
    expect((await unseal(loaded, nodeKey)).header.version).to.equal(400); // the node has read that version's public key
    const officer = createAzureCredential({ kind: 'node', managedIdentityClientId: 'officer-1' });
    await new KeyClient(standin.vaultUrl, officer, clientOptions).rotateKey('org-config-key-signing');
    standin.disableKeyVersion('org-config-key-signing', kid.split('/').pop()!);
    const refused = await refusal(unseal(presigned, nodeKey));
    expect(refused.code).to.equal('bad-signature');
    expect(refused.message).to.match(/disabled version/);
    expect((await unseal(await sealed(402), nodeKey)).header.version).to.equal(402); // the current version still verifies
  });

  it('a node whose identity lacks Key Vault Reader on the signing key keeps retrying (not a refusal) and names the role', async () => {
    const bundle = await sealed(300);
    const stranger = createAzureCredential({ kind: 'node', managedIdentityClientId: 'node-2' });
    standin.keyRoles.get('org-config-key')!.set('node-2', 'Key Vault Crypto User');
    const error = await refusal(unseal(bundle, createAzureKeyProvider(orgKeyRef, { credential: stranger, clientOptions })));
    expect(error.code).to.equal('key-unavailable');
    expect(error.message).to.match(/Key Vault Reader/);
  });

  it('a vault that refuses the signing key read for its network rules is retried, not taken for a disabled key version', async () => {
    await publishBundle(await sealed(500), url(), { blob: () => ({ credential: operator }), force: true });
    const source = nodeSource();
    // Key Vault's answer while the node's private endpoint or firewall rule is not in place yet.
    standin.vaultFault = (method, path) => method === 'GET' && path.startsWith('/keys/org-config-key-signing/')
      ? { status: 403, code: 'Forbidden', message: 'Public network access is disabled and request is not from a trusted service nor via an approved private link.' }
      : undefined;
    try {
      await source.start();
      expect(source.status().loaded).to.equal(false);
      expect(source.status().lastError).to.match(/Public network access is disabled/);
      expect(await source.reload()).to.equal('failed');
    } finally {
      standin.vaultFault = undefined;
    }
    expect(await source.reload(), source.status().lastError).to.equal('loaded');
    expect(source.status()).to.include({ loaded: true, version: '500' });
  });

  describe('rollback floor kept in the state directory', () => {
    let stateDir: string;
    let bundleFile: string;
    before(async () => {
      stateDir = await mkdtemp(path.join(os.tmpdir(), 'signet-state-'));
      bundleFile = path.join(stateDir, '..', `${path.basename(stateDir)}.bundle`);
    });
    after(async () => {
      await rm(stateDir, { recursive: true, force: true });
      await rm(bundleFile, { force: true });
    });

    it('a restarted source refuses an older bundle put back; without a state directory it would not', async () => {
      const v1 = await kit.seal(1);
      const v2 = await kit.seal(2);
      await writeFile(bundleFile, v2);
      const first = createOrgSource({ location: bundleFile, key: kit.key, pollSeconds: 0, stateDir });
      await first.start();
      expect(first.status()).to.include({ loaded: true, version: '2' });
      const stateFile = path.join(stateDir, VERSION_STATE_FILE);
      expect((await stat(stateFile)).mode & 0o777).to.equal(0o600);
      expect(JSON.parse(await readFile(stateFile, 'utf8')).orgs.contoso).to.deep.equal({ version: 2, contentHash: inspect(v2).contentHash });
      first.stop();

      await writeFile(bundleFile, v1); // put back while the node is down
      const restarted = createOrgSource({ location: bundleFile, key: kit.key, pollSeconds: 0, stateDir });
      await restarted.start();
      expect(restarted.status().loaded).to.equal(false);
      expect(restarted.status().lastError).to.match(/version 1 is older than version 2 .*rollback/);

      // Same version, other content: refused too.
      const otherV2 = await kit.seal(2, { [TEMPLATE]: `${(await readFile(path.join(kit.orgDir, TEMPLATE), 'utf8'))}<!-- other -->\n` });
      await writeFile(bundleFile, otherV2);
      expect(await restarted.reload()).to.equal('refused');
      expect(restarted.status().lastError).to.match(/version 2 was loaded before with other content/);

      // The running version itself loads after a restart, and a newer one moves the floor.
      await writeFile(bundleFile, v2);
      expect(await restarted.reload()).to.equal('loaded');
      await writeFile(bundleFile, await kit.seal(3));
      expect(await restarted.reload()).to.equal('loaded');
      expect(JSON.parse(await readFile(stateFile, 'utf8')).orgs.contoso.version).to.equal(3);

      // Development and tests without a state directory: the floor is in memory only.
      await writeFile(bundleFile, v1);
      const memoryOnly = createOrgSource({ location: bundleFile, key: kit.key, pollSeconds: 0 });
      await memoryOnly.start();
      expect(memoryOnly.status()).to.include({ loaded: true, version: '1' });
    });

    it('a garbled state file fails closed: nothing loads until it is repaired or removed', async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'signet-state-garbled-'));
      try {
        await writeFile(path.join(dir, VERSION_STATE_FILE), '{"format":"signet-config-versions/1","orgs":{"contoso":{"version":"9"}}}');
        await writeFile(bundleFile, await kit.seal(10));
        const source = createOrgSource({ location: bundleFile, key: kit.key, pollSeconds: 0, stateDir: dir });
        await source.start();
        expect(source.status().loaded).to.equal(false);
        expect(source.status().lastError).to.match(/config-versions\.json is garbled/);
        await rm(path.join(dir, VERSION_STATE_FILE));
        expect(await source.reload()).to.equal('loaded');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
});
