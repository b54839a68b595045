// Which identity the relay reads Microsoft Graph with: the node's managed
// identity, or the customer-consented app whose client secret the node reads
// (nodes in an MSP subscription live in another tenant than the customer's).
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';
import { graphCredential, graphEndpoints } from '../../appliance/src/cli/commands/serve';
import { createGraphDirectorySource } from '../../appliance/src/directory';
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

  describe('a tenant in a national cloud (directory.graph.cloud)', () => {
    const base = { listen: [{ address: '127.0.0.1', port: 2525 }], org: { source: 'config/examples/contoso' } };
    const app = { clientId: 'c', secret: 'file:/run/signet/graph-app-secret' };

    it('reads that cloud\'s Graph with a token for that cloud\'s Graph, signing in at its own Entra ID host', () => {
      expect(graphEndpoints({})).to.deep.equal({ baseUrl: 'https://graph.microsoft.com/', scope: GRAPH_SCOPE, authorityHost: undefined });
      expect(graphEndpoints({ cloud: 'usgov', app })).to.deep.equal({ baseUrl: 'https://graph.microsoft.us/', scope: 'https://graph.microsoft.us/.default', authorityHost: 'https://login.microsoftonline.us' });
      expect(graphEndpoints({ cloud: 'usgov-dod', app })).to.deep.equal({ baseUrl: 'https://dod-graph.microsoft.us/', scope: 'https://dod-graph.microsoft.us/.default', authorityHost: 'https://login.microsoftonline.us' });
      expect(graphEndpoints({ cloud: 'china', app })).to.deep.equal({ baseUrl: 'https://microsoftgraph.chinacloudapi.cn/', scope: 'https://microsoftgraph.chinacloudapi.cn/.default', authorityHost: 'https://login.chinacloudapi.cn' });
      // an explicit sign-in host still wins
      expect(graphEndpoints({ cloud: 'usgov', app: { ...app, authorityHost: 'https://login.example.invalid' } }).authorityHost).to.equal('https://login.example.invalid');
    });

    it('asks the credential for the cloud\'s own scope', async () => {
      const asked: string[] = [];
      const recording: TokenCredential = {
        getToken(scopes: string | string[], _options?: GetTokenOptions): Promise<AccessToken | null> {
          asked.push(...[scopes].flat());
          return Promise.resolve({ token: 'not-a-real-token', expiresOnTimestamp: Date.now() + 3_600_000 });
        },
      };
      const { scope } = graphEndpoints({ cloud: 'usgov', app });
      // nothing listens there: the refresh fails after the token was asked for
      const source = createGraphDirectorySource({ credential: recording, baseUrl: 'https://127.0.0.1:9/', scope, refreshSeconds: 0, maxRetries: 0, maxRefreshSeconds: 1 });
      expect(await source.refresh()).to.equal('failed');
      expect([...new Set(asked)]).to.deep.equal(['https://graph.microsoft.us/.default']);
    });

    it('refuses a sign-in host of another cloud than the one named (the old way to ask for a national cloud), and an unknown cloud by name', () => {
      // (the rest of this config is incomplete: only what it says about directory.graph counts here)
      const problems = (graph: Record<string, unknown>): string => {
        try {
          parseRelayConfig({ ...base, directory: { graph } }, 'relay.yaml', process.cwd());
          return '';
        } catch (error) {
          return String(error);
        }
      };
      expect(problems({ tenantId: 't', cloud: 'usgov', app })).to.not.include('directory.graph');
      expect(problems({ tenantId: 't', app })).to.not.include('directory.graph');
      // nodes that run in that cloud themselves read it with their own identity
      expect(problems({ tenantId: 't', cloud: 'china' })).to.not.include('directory.graph');
      // signing in at GCC High's host while reading worldwide Graph with a worldwide token: refused, naming the fix
      expect(problems({ tenantId: 't', app: { ...app, authorityHost: 'https://login.microsoftonline.us' } })).to.match(/directory\.graph\.cloud: is global, but app\.authorityHost is the sign-in host of usgov or usgov-dod: set cloud to that/);
      expect(problems({ tenantId: 't', cloud: 'china', app: { ...app, authorityHost: 'https://login.microsoftonline.com/' } })).to.match(/directory\.graph\.cloud: is china, but app\.authorityHost is the sign-in host of global/);
      // the cloud's own host, or one no cloud has (a proxy), is taken as given
      expect(problems({ tenantId: 't', cloud: 'usgov-dod', app: { ...app, authorityHost: 'https://login.microsoftonline.us' } })).to.not.include('directory.graph');
      expect(problems({ tenantId: 't', app: { ...app, authorityHost: 'https://login.example.invalid' } })).to.not.include('directory.graph');
      expect(problems({ tenantId: 't', cloud: 'gcc-high', app })).to.match(/directory\.graph\.cloud: .*usgov/);
    });
  });

  it('refuses an app secret that is neither a Key Vault secret URL nor a file', () => {
    const base = { listen: [{ address: '127.0.0.1', port: 2525 }], org: { source: 'config/examples/contoso' } };
    expect(() =>
      parseRelayConfig({ ...base, directory: { graph: { tenantId: 't', app: { clientId: 'c', secret: 'http://example.invalid/secret' } } } }, 'relay.yaml', process.cwd()),
    ).to.throw(/directory\.graph\.app\.secret/);
  });
});
