import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { standinAppSecrets, standinIdentity } from '../support/azure-standin';
import { startGraphStandin, type GraphStandin } from '../support/graph-standin';

const run = promisify(execFile);
const SIGNET = path.resolve(__dirname, '../../bin/signet.js');

describe('signet directory sync --dry-run (child process trusting the stand-in CA through NODE_EXTRA_CA_CERTS)', function () {
  this.timeout(60_000);
  let graph: GraphStandin;
  let dir: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    graph = await startGraphStandin();
    const identity = await standinIdentity();
    dir = await mkdtemp(path.join(os.tmpdir(), 'signet-dircli-'));
    const caFile = path.join(dir, 'ca.pem');
    await writeFile(caFile, identity.ca.caPem);
    env = { ...process.env, NODE_EXTRA_CA_CERTS: caFile, AZURE_POD_IDENTITY_AUTHORITY_HOST: identity.url };
    graph.upsertUser({ id: '1', mail: 'a@contoso.com', proxyAddresses: ['SMTP:a@contoso.com'], displayName: 'A' });
    graph.upsertUser({ id: '2', mail: 'b@contoso.com', proxyAddresses: [], displayName: 'B' });
    graph.setGroup({ id: 'g1', displayName: 'Sales', members: ['2'] });
  });
  after(async () => {
    await graph.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('with --photos also loads the photos, as a node does for photo(), and reports counts; a failed one exits 1 with its status', async () => {
    graph.setPhoto('1', Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.from('a photo')]));
    const args = [SIGNET, 'directory', 'sync', '--dry-run', '--identity', 'managed', '--client-id', 'node-1', '--graph-url', graph.baseUrl, '--photos'];
    const { stdout } = await run(process.execPath, args, { env, timeout: 30_000 });
    expect(stdout).to.equal('2 users with a mail address\nphotos: 1 loaded, 1 user has none\n');
    // without --photos, none is asked for
    const before = graph.requests.filter((r) => r.path.includes('/photos/')).length;
    await run(process.execPath, args.slice(0, -1), { env, timeout: 30_000 });
    expect(graph.requests.filter((r) => r.path.includes('/photos/')).length).to.equal(before);
    // the app may not read photos: every signature would lack them, so the check fails
    graph.failPhoto('1', 403);
    const failed = await run(process.execPath, args, { env, timeout: 30_000 }).then(() => undefined, (error: { code: number; stdout: string }) => error);
    expect(failed, 'exits non-zero').to.not.equal(undefined);
    expect(failed!.code).to.equal(1);
    expect(failed!.stdout).to.equal('2 users with a mail address\nphotos: 0 loaded, 1 user has none\nphotos: 1 failed (first: HTTP 403 generalException)\n');
    graph.setPhoto('1', undefined);
  });

  it('reads users and group members with the managed identity and reports counts only', async () => {
    const { stdout } = await run(process.execPath, [SIGNET, 'directory', 'sync', '--dry-run', '--identity', 'managed', '--client-id', 'node-1', '--graph-url', graph.baseUrl, '--group', 'Sales'], { env, timeout: 30_000 });
    expect(stdout).to.equal('2 users with a mail address\ngroup "Sales": 1 members (transitive)\n');
    expect(graph.requests.filter((r) => r.clientId === 'node-1').length).to.be.greaterThan(2);
  });

  it('says which groups match nobody, and why, instead of counting 0 members', async () => {
    graph.setGroup({ id: 'g2', displayName: 'Board', members: ['1'] });
    graph.setGroup({ id: 'g3', displayName: 'board', members: ['2'] });
    const args = [SIGNET, 'directory', 'sync', '--dry-run', '--identity', 'managed', '--graph-url', graph.baseUrl, '--group', 'Sales', '--group', 'Board', '--group', 'Salse'];
    const { stdout } = await run(process.execPath, args, { env, timeout: 30_000 });
    expect(stdout).to.equal(
      [
        '2 users with a mail address',
        'group "Sales": 1 members (transitive)',
        'group "Board": several groups have this display name (matches nobody; name the group by its object id)',
        'group "Salse": not found in the directory (matches nobody)',
        '',
      ].join('\n'),
    );
  });

  it('signs in as the customer-consented Graph app (as MSP-hosted nodes do) with its secret from a file', async () => {
    const identity = await standinIdentity();
    const secretFile = path.join(dir, 'graph-app-secret');
    await writeFile(secretFile, 'cli-app-secret\n', { mode: 0o600 });
    standinAppSecrets.set('graph-app-cli', 'cli-app-secret');
    const args = [SIGNET, 'directory', 'sync', '--dry-run', '--graph-url', graph.baseUrl, '--group', 'Sales', '--app-client-id', 'graph-app-cli', '--tenant-id', 'customer-tenant', '--app-secret', `file:${secretFile}`, '--authority-host', identity.url];
    const { stdout } = await run(process.execPath, args, { env, timeout: 30_000 });
    expect(stdout).to.equal('2 users with a mail address\ngroup "Sales": 1 members (transitive)\n');
    expect(graph.requests.filter((r) => r.clientId === 'graph-app-cli').length).to.be.greaterThan(2);

    // a wrong secret is Entra's refusal, exit 1
    standinAppSecrets.set('graph-app-cli', 'rotated');
    let failure: { code?: number; stderr?: string } = {};
    await run(process.execPath, args, { env, timeout: 30_000 }).catch((e: { code: number; stderr: string }) => (failure = e));
    expect(failure.code).to.equal(1);
    expect(failure.stderr).to.match(/AADSTS7000215|invalid_client/);
  });

  it('refuses app options without the app, and an app without its tenant and secret', async () => {
    for (const extra of [['--tenant-id', 't'], ['--app-client-id', 'a'], ['--app-client-id', 'a', '--tenant-id', 't', '--app-secret', 'http://x/secret']]) {
      let failure: { code?: number; stderr?: string } = {};
      await run(process.execPath, [SIGNET, 'directory', 'sync', '--graph-url', graph.baseUrl, ...extra], { env, timeout: 30_000 }).catch((e: { code: number; stderr: string }) => (failure = e));
      expect(failure.code, extra.join(' ')).to.be.greaterThan(0);
      expect(failure.stderr, extra.join(' ')).to.match(/--app-client-id|--app-secret/);
    }
  });

  it('refuses a Graph URL or sign-in host of another cloud than --cloud, and a cloud it does not know, naming the choices', async () => {
    for (const [extra, expected] of [
      [['--graph-url', 'https://graph.microsoft.us/'], /--graph-url https:\/\/graph\.microsoft\.us\/ belongs to usgov, not to --cloud global: give --cloud usgov/],
      [['--cloud', 'china', '--graph-url', graph.baseUrl, '--app-client-id', 'a', '--tenant-id', 't', '--app-secret', 'file:/x', '--authority-host', 'https://login.microsoftonline.com'], /--authority-host .* belongs to global, not to --cloud china/],
      [['--cloud', 'gcc-high', '--graph-url', graph.baseUrl], /--cloud: one of global, usgov, usgov-dod, china/],
    ] as const) {
      let failure: { code?: number; stderr?: string } = {};
      await run(process.execPath, [SIGNET, 'directory', 'sync', ...extra], { env, timeout: 30_000 }).catch((e: { code: number; stderr: string }) => (failure = e));
      expect(failure.code, extra.join(' ')).to.be.greaterThan(0);
      expect(failure.stderr, extra.join(' ')).to.match(expected);
    }
  });

  it('exits 1 with the Graph error when Graph refuses', async () => {
    graph.fail(1, 403);
    let failure: { code?: number; stderr?: string } = {};
    await run(process.execPath, [SIGNET, 'directory', 'sync', '--identity', 'managed', '--graph-url', graph.baseUrl], { env, timeout: 30_000 }).catch((e: { code: number; stderr: string }) => (failure = e));
    expect(failure.code).to.equal(1);
    expect(failure.stderr).to.match(/full refresh from Microsoft Graph failed \(403/);
  });
});
