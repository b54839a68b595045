import { expect } from 'chai';
import { KeyClient } from '@azure/keyvault-keys';
import { inspect, reseal, seal, unseal, BundleError } from '../../appliance/src/config/bundle';
import { createAzureCredential, createAzureKeyProvider, createKeyVaultSecretProvider, keyProviderFromRef, SecretError, type TokenCredential } from '../../appliance/src/secrets';
import { startAzureStandin, trustTestCa, useStandinManagedIdentity, type AzureStandin } from '../support/azure-standin';

// The vault is reached at 127.0.0.1, which can never be a subdomain of the
// challenge's resource (vault.azure.net), so the SDK's check that the two match
// is turned off for the loopback stand-in only; production keeps it on.
const clientOptions = { disableChallengeResourceVerification: true, retryOptions: { maxRetries: 0 } };

const files = () => new Map([['org.yaml', Buffer.from('orgId: contoso\n')], ['templates/a.html.ejs', Buffer.from('<p>hi</p>')]]);

async function refusal(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  return expect.fail('expected a refusal');
}

describe('Azure Key Vault org key and secrets (real SDK clients against a local stand-in)', () => {
  let standin: AzureStandin;
  let credential: TokenCredential;
  let restore: Array<() => void>;
  let keyUrl: string;

  before(async () => {
    standin = await startAzureStandin();
    restore = [trustTestCa(standin.caPem), useStandinManagedIdentity(standin)];
    credential = createAzureCredential({ kind: 'node', managedIdentityClientId: 'node-identity-1' });
    standin.createKey('org-contoso');
    standin.createKey('org-contoso-signing', { ops: ['sign', 'verify'] }); // bundles sealed under a Key Vault key are signed
    keyUrl = `${standin.vaultUrl}/keys/org-contoso`;
  });
  after(async () => {
    for (const undo of restore.reverse()) undo();
    await standin.close();
  });

  it('seals and unseals with a Key Vault key: the vault wraps, the bundle records the versioned key id', async () => {
    const key = createAzureKeyProvider(keyUrl, { credential, clientOptions });
    const bundle = await seal(files(), { orgId: 'contoso', version: 1, author: 'ops', keyProvider: key });
    const header = inspect(bundle);
    expect(header.key.alg).to.equal('RSA-OAEP-256');
    expect(header.key.ref).to.match(new RegExp(`^${keyUrl.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/[0-9a-f]{32}$`));
    // signed by the vault's signing key beside it (PS256), with the version that signed
    expect(header.signature?.alg).to.equal('PS256');
    expect(header.signature?.kid).to.match(new RegExp(`^${keyUrl.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-signing/[0-9a-f]{32}$`));
    const { files: opened } = await unseal(bundle, key, { expectOrgId: 'contoso' });
    expect(opened.get('org.yaml')!.toString()).to.equal('orgId: contoso\n');
    // It went through the token endpoint with the node's user-assigned identity and through the vault's wrap/unwrap.
    const paths = standin.requests.map((r) => `${r.method} ${r.path}`);
    expect(paths.some((p) => /^POST \/keys\/org-contoso\/[0-9a-f]{32}\/unwrapkey$/.test(p))).to.equal(true);
    // (No check on the token endpoint's own log: the identity library caches managed-identity
    // tokens for the whole process, so another test file may already have fetched this one.
    // The vault's log below shows whose token each call carried.)
    // Each new client's first request is the unauthenticated challenge; every other one carries the node's token.
    const vaultCalls = standin.requests.filter((r) => r.path.startsWith('/keys/'));
    expect(vaultCalls[0].clientId).to.equal(undefined);
    expect(new Set(vaultCalls.filter((r) => r.clientId).map((r) => r.clientId))).to.deep.equal(new Set(['node-identity-1']));
  });

  it('rotation: new bundles use the new version, old bundles still open, reseal moves them; a disabled old version is refused', async () => {
    const key = keyProviderFromRef(keyUrl, { credential: () => credential, clientOptions });
    const old = await seal(files(), { orgId: 'contoso', version: 2, author: 'ops', keyProvider: key });
    const oldRef = inspect(old).key.ref;
    // Rotate with the real KeyClient (POST /keys/{name}/rotate).
    const keyClient = new KeyClient(standin.vaultUrl, credential, clientOptions);
    const rotated = await keyClient.rotateKey('org-contoso');
    expect(rotated.id).to.not.equal(oldRef);
    const fresh = await seal(files(), { orgId: 'contoso', version: 3, author: 'ops', keyProvider: key });
    expect(inspect(fresh).key.ref).to.equal(rotated.id);
    expect((await unseal(old, key)).header.version).to.equal(2);
    const moved = await reseal(old, key);
    expect(inspect(moved).key.ref).to.equal(rotated.id);
    expect(inspect(moved).contentHash).to.equal(inspect(old).contentHash);
    // Once the old version is disabled, only the resealed bundle opens.
    standin.disableKeyVersion('org-contoso', oldRef.split('/').pop()!);
    const error = await refusal(unseal(old, key));
    expect(error).to.be.instanceOf(BundleError);
    expect((error as BundleError).code).to.equal('key-unavailable');
    expect(error.message).to.match(/refused unwrap.*disabled key/);
    expect((await unseal(moved, key)).files.size).to.equal(2);
  });

  it('refuses a bundle of another Key Vault key as "wrong key", and an altered wrapped key before the vault sees it', async () => {
    standin.createKey('org-fabrikam');
    standin.createKey('org-fabrikam-signing', { ops: ['sign', 'verify'] });
    const fabrikam = createAzureKeyProvider(`${standin.vaultUrl}/keys/org-fabrikam`, { credential, clientOptions });
    const contoso = createAzureKeyProvider(keyUrl, { credential, clientOptions });
    const bundle = await seal(files(), { orgId: 'fabrikam', version: 1, author: 'ops', keyProvider: fabrikam });
    const wrong = await refusal(unseal(bundle, contoso));
    expect((wrong as BundleError).code).to.equal('wrong-key');
    expect(wrong.message).to.match(/wrong key: the bundle was sealed under .*org-fabrikam\/[0-9a-f]+, the key given is .*org-contoso/);
    // Replace the wrapped key by a valid-looking but different ciphertext: the vault cannot decrypt it.
    const header = inspect(bundle);
    const text = bundle.toString('latin1');
    const other = Buffer.from(header.key.wrapped, 'base64');
    other[10] ^= 1;
    const altered = Buffer.from(text.replace(header.key.wrapped, other.toString('base64')), 'latin1');
    const unwraps = () => standin.requests.filter((r) => /\/unwrapkey$/.test(r.path)).length;
    const before = unwraps();
    const tampered = await refusal(unseal(altered, fabrikam));
    // The signature covers the key envelope: refused before the vault is asked to unwrap anything.
    expect((tampered as BundleError).code).to.equal('bad-signature');
    expect(tampered.message).to.match(/does not match the bundle/);
    expect(unwraps()).to.equal(before);
  });

  it('says what the vault\'s answer means when it cannot unwrap: the key is gone (404), the wrapped key was altered (400), the vault is failing (5xx)', async () => {
    const key = createAzureKeyProvider(keyUrl, { credential, clientOptions });
    const bundle = await seal(files(), { orgId: 'contoso', version: 1, author: 'ops', keyProvider: key });
    const answers: Array<[{ status: number; code: string; message: string }, string, RegExp]> = [
      [{ status: 404, code: 'KeyNotFound', message: 'A key with (name/id) org-contoso was not found in this key vault.' }, 'wrong-key', /does not exist in its vault \(deleted, or another vault\)/],
      [{ status: 400, code: 'BadParameter', message: 'The parameter is incorrect.' }, 'tampered', /could not unwrap the data key .*the wrapped data key was altered/],
      [{ status: 503, code: 'ServiceUnavailable', message: 'Try again later.' }, 'key-unavailable', /unwrap with .* failed \(503\)/],
    ];
    try {
      for (const [answer, code, message] of answers) {
        standin.vaultFault = (method, path) => (method === 'POST' && /\/unwrapkey$/.test(path) ? answer : undefined);
        const error = await refusal(unseal(bundle, key));
        expect(error, String(answer.status)).to.be.instanceOf(BundleError);
        expect((error as BundleError).code, String(answer.status)).to.equal(code);
        expect(error.message, String(answer.status)).to.match(message);
      }
    } finally {
      standin.vaultFault = undefined;
    }
    expect((await unseal(bundle, key)).files.size).to.equal(2);
  });

  it('an identity without a role on the key is refused with the role it needs', async () => {
    const outsider = createAzureCredential({ kind: 'node', managedIdentityClientId: 'someone-else' });
    standin.deniedClients.add('someone-else');
    try {
      const key = createAzureKeyProvider(keyUrl, { credential: outsider, clientOptions });
      const error = await refusal(seal(files(), { orgId: 'contoso', version: 1, author: 'x', keyProvider: key }));
      expect(error.message).to.match(/Key Vault Crypto User/);
    } finally {
      standin.deniedClients.delete('someone-else');
    }
  });

  it('reads secrets (latest and pinned versions) with @azure/keyvault-secrets', async () => {
    const v1 = standin.setSecret('node-tls-key', '-----BEGIN PRIVATE KEY-----\nv1\n');
    standin.setSecret('node-tls-key', '-----BEGIN PRIVATE KEY-----\nv2\n');
    const secrets = createKeyVaultSecretProvider(standin.vaultUrl, { credential, clientOptions });
    expect(await secrets.get('node-tls-key')).to.equal('-----BEGIN PRIVATE KEY-----\nv2\n');
    expect(await secrets.get('node-tls-key', v1)).to.equal('-----BEGIN PRIVATE KEY-----\nv1\n');
    const missing = await refusal(secrets.get('graph-client-secret'));
    expect(missing).to.be.instanceOf(SecretError);
    expect(missing.message).to.match(/cannot read secret graph-client-secret .*404/);
    const invalid = await refusal(secrets.get('../etc'));
    expect(invalid.message).to.match(/invalid secret name/);
  });
});
