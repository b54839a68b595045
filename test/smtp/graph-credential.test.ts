// Which identity the relay reads Microsoft Graph with: the node's managed
// identity, or the customer-consented app whose client secret the node reads
// (nodes in an MSP subscription live in another tenant than the customer's).
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { graphCredential } from '../../appliance/src/cli/commands/serve';
import { createAzureCredential } from '../../appliance/src/secrets';
import { parseRelayConfig } from '../../appliance/src/smtp';
import { standinAppSecrets, standinIdentity, startAzureStandin, trustTestCa, useStandinManagedIdentity, type AzureStandin } from '../support/azure-standin';

const GRAPH_SCOPE = 'https://graph.microsoft.com/.default';

describe('relay: the Graph identity', () => {
  let azure: AzureStandin;
  let restore: Array<() => void>;
  let dir: string;

  before(async () => {
    azure = await startAzureStandin();
    restore = [trustTestCa(azure.caPem), useStandinManagedIdentity(azure)];
    dir = mkdtempSync(join(tmpdir(), 'signet-graph-cred-'));
  });
  after(async () => {
    for (const undo of restore.reverse()) undo();
    await azure.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('uses the node identity when no app is configured', async () => {
    const node = createAzureCredential({ kind: 'node', managedIdentityClientId: 'node-identity' });
    const credential = await graphCredential({ tenantId: 'customer-tenant', refreshSeconds: 900 }, () => node);
    expect(credential).to.equal(node);
  });

  it('signs in as the app with its client secret from a file', async () => {
    writeFileSync(join(dir, 'graph-app-secret'), 'file-secret\n', { mode: 0o600 });
    standinAppSecrets.set('graph-app-file', 'file-secret');
    const credential = await graphCredential(
      { tenantId: 'customer-tenant', refreshSeconds: 900, app: { clientId: 'graph-app-file', secret: `file:${join(dir, 'graph-app-secret')}`, authorityHost: azure.identityUrl } },
      () => {
        throw new Error('the node identity is not needed for a file secret');
      },
    );
    const token = await credential.getToken(GRAPH_SCOPE);
    expect(token?.token).to.be.a('string').with.length.greaterThan(10);
    // The token is the app's, for Graph: the stand-in's token service says whose it is.
    expect((await standinIdentity()).verify(`Bearer ${token!.token}`, 'https://graph.microsoft.com')).to.equal('graph-app-file');
  });

  it('reads the app secret from Key Vault with the node identity, and a rotated secret is refused', async () => {
    azure.setSecret('graph-app-secret', 'vault-secret');
    standinAppSecrets.set('graph-app-vault', 'vault-secret');
    const node = createAzureCredential({ kind: 'node', managedIdentityClientId: 'node-identity' });
    const graph = { tenantId: 'customer-tenant', refreshSeconds: 900, app: { clientId: 'graph-app-vault', secret: `${azure.vaultUrl}/secrets/graph-app-secret`, authorityHost: azure.identityUrl } };
    // Loopback vault: the SDK's challenge check (vault host under vault.azure.net) cannot hold here.
    const loopback = { secretClientOptions: { disableChallengeResourceVerification: true } };
    const credential = await graphCredential(graph, () => node, loopback);
    const token = await credential.getToken(GRAPH_SCOPE);
    expect((await standinIdentity()).verify(`Bearer ${token!.token}`, 'https://graph.microsoft.com')).to.equal('graph-app-vault');
    standinAppSecrets.set('graph-app-vault', 'rotated');
    const stale = await graphCredential(graph, () => node, loopback);
    let refused: unknown;
    await stale.getToken(GRAPH_SCOPE).catch((error: unknown) => (refused = error));
    expect(String(refused)).to.match(/AADSTS7000215|invalid_client/);
  });

  it('refuses an app secret that is neither a Key Vault secret URL nor a file', () => {
    const base = { listen: [{ address: '127.0.0.1', port: 2525 }], org: { source: 'config/examples/contoso' } };
    expect(() =>
      parseRelayConfig({ ...base, directory: { graph: { tenantId: 't', app: { clientId: 'c', secret: 'http://example.invalid/secret' } } } }, 'relay.yaml', process.cwd()),
    ).to.throw(/directory\.graph\.app\.secret/);
  });
});
