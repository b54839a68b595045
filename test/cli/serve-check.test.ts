// `signet serve --config relay.yaml --check`: the file and everything it names
// (certificates, keys, CA bundles, the organization config, the directory)
// are checked with real files, without binding a port, contacting the
// downstream or writing anything; one line per problem, exit 1 if any.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { checkRelayConfigFile } from '../../appliance/src/cli/commands/serve';
import { readOrgFolder } from '../../appliance/src/config';
import { seal } from '../../appliance/src/config/bundle';
import type { OrgKeyProvider } from '../../appliance/src/secrets';
import { testPki, type TestPki } from '../support/certs';
import { createSealedOrgKit, EXAMPLE_ORG_DIR, type SealedOrgKit } from '../support/sealed-org';

const ROOT = resolve(__dirname, '../..');
const DAY = 86_400_000;

/** The problem of a downstream client certificate that does not name the certificate domain. */
const uncoveredByClient = (hostname: string, names: string) =>
  `the certificate does not cover hostname "${hostname}" (it names ${names}); Exchange Online's inbound connector (TlsSenderCertificateName) would refuse every message the node hands back with it`;

function signet(args: string[]) {
  // the project's own Node (22), as npm scripts use it
  return spawnSync(process.execPath, [join(ROOT, 'bin/signet.js'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
}

async function listening(onConnection: () => void = () => undefined): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    onConnection();
    socket.destroy();
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { server, port: (server.address() as { port: number }).port };
}

describe('signet serve --check', function () {
  this.timeout(90_000);
  let pki: TestPki;
  let dir: string;
  let kit: SealedOrgKit;
  let bundle: string;

  /** PEM files of a working node, then a relay.yaml (relative paths) with `settings` merged over a working one. */
  function relayYaml(name: string, settings: Record<string, unknown> = {}): string {
    const config: Record<string, unknown> = {
      hostname: 'relay.test.invalid',
      listen: [{ host: '127.0.0.1', port: 2525 }],
      tls: { cert: 'server.crt', key: 'server.key', ca: 'ca.crt' },
      downstream: { host: '127.0.0.1', port: 2526, tls: { cert: 'client.crt', key: 'client.key', ca: 'ca.crt' } },
      org: { source: EXAMPLE_ORG_DIR },
      ...settings,
    };
    const file = join(dir, name);
    writeFileSync(file, stringify(config));
    return file;
  }

  before(async () => {
    pki = await testPki();
    dir = mkdtempSync(join(tmpdir(), 'signet-serve-check-'));
    const files: Record<string, string> = {
      'ca.crt': pki.ca.cert,
      'server.crt': pki.relayServer.cert,
      'server.key': pki.relayServer.key,
      'client.crt': pki.relayClient.cert,
      'client.key': pki.relayClient.key,
      'other.key': pki.sinkServer.key,
      'expired.crt': pki.expiredClient.cert,
      'expired.key': pki.expiredClient.key,
      'garbage.crt': '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n',
      'empty.crt': 'nothing here\n',
    };
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content, { mode: 0o600 });
    const elsewhere = await pki.ca.issue({ commonName: 'other.test.invalid', usage: ['client'] });
    const wildcard = await pki.ca.issue({ commonName: '*.test.invalid', usage: ['client'] });
    const issued: Record<string, string> = { 'client-elsewhere.crt': elsewhere.cert, 'client-elsewhere.key': elsewhere.key, 'client-wildcard.crt': wildcard.cert, 'client-wildcard.key': wildcard.key };
    for (const [name, content] of Object.entries(issued)) writeFileSync(join(dir, name), content, { mode: 0o600 });
    kit = await createSealedOrgKit();
    bundle = join(dir, 'contoso.bundle');
    writeFileSync(bundle, await kit.seal(7));
  });
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await kit.cleanup();
  });

  it('says ok with what it checked, and binds nothing, contacts nothing, writes nothing', async () => {
    let downstreamConnections = 0;
    const smtp = await listening(); // a port in use: a started relay would fail to bind it
    const http = await listening();
    const downstream = await listening(() => downstreamConnections++);
    const stateDir = join(dir, 'state-folder');
    try {
      const file = relayYaml('ok.yaml', {
        listen: [{ host: '127.0.0.1', port: smtp.port }],
        http: { listen: '127.0.0.1', port: http.port },
        downstream: { host: '127.0.0.1', port: downstream.port, tls: { cert: 'client.crt', key: 'client.key', ca: 'ca.crt' } },
        stateDir,
      });
      const run = signet(['serve', '--config', file, '--check']);
      expect(run.status, run.stdout + run.stderr).to.equal(0);
      const until = pki.relayServer.notAfter.toISOString().slice(0, 10);
      const clientUntil = pki.relayClient.notAfter.toISOString().slice(0, 10);
      expect(run.stdout).to.match(new RegExp(`^${file}: ok \\(certificate relay\\.test\\.invalid valid until ${until}, client certificate relay\\.test\\.invalid valid until ${clientUntil}, org contoso \\(folder\\), directory \\d+ users\\)\\n$`));
      expect(downstreamConnections).to.equal(0);
      expect(existsSync(stateDir)).to.equal(false);
    } finally {
      for (const { server } of [smtp, http, downstream]) server.close();
    }
  });

  it('opens a sealed bundle with its local key file, as the node does, without recording its version', async () => {
    const stateDir = join(dir, 'state-bundle');
    const file = relayYaml('bundle.yaml', { org: { source: 'contoso.bundle', keyRef: `file:${kit.keyFile}` }, stateDir });
    const check = await checkRelayConfigFile(file);
    expect(check.problems).to.deep.equal([]);
    expect(check.checked).to.include('org contoso v7');
    // a sealed bundle with neither directory.file nor directory.graph: no personal signatures, said as a warning
    expect(check.notes).to.deep.equal([`warning: ${file}:1 directory: no directory (neither directory.file nor directory.graph): no sender is found, so messages get add-ons but no personal signature`]);
    expect(existsSync(stateDir)).to.equal(false);
  });

  it('prints one line per problem, naming the file, the line, the setting and the problem, and exits 1', () => {
    const file = relayYaml('broken.yaml', {
      hostname: 'smtp.contoso.com',
      tls: { cert: 'server.crt', key: 'other.key', ca: ['ca.crt', 'garbage.crt', 'missing.crt'] },
      downstream: { host: '127.0.0.1', tls: { cert: 'expired.crt', key: 'expired.key', ca: 'empty.crt' } },
    });
    const run = signet(['serve', '--config', file, '--check']);
    expect(run.status, run.stderr).to.equal(1);
    const at = (line: number, setting: string, name: string) => `${file}:${line} ${setting}: ${join(dir, name)}: `;
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines).to.have.length(8);
    expect(lines[0]).to.equal(`${at(6, 'tls.cert', 'server.crt')}the certificate does not cover hostname "smtp.contoso.com" (it names DNS:relay.test.invalid, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1)`);
    expect(lines[1]).to.equal(`${at(7, 'tls.key', 'other.key')}the key does not match the certificate ${join(dir, 'server.crt')}`);
    expect(lines[2]).to.match(/:10 tls\.ca\[1\]: \S+garbage\.crt: certificate 1 in it does not parse \(/);
    expect(lines[3]).to.equal(`${at(11, 'tls.ca[2]', 'missing.crt')}no such file or directory`);
    expect(lines[4]).to.equal(`${at(15, 'downstream.tls.cert', 'expired.crt')}the certificate expired on ${pki.expiredClient.notAfter.toISOString().replace(/\.\d+Z$/, '.000Z')}`);
    expect(lines[5]).to.equal(`${at(15, 'downstream.tls.cert', 'expired.crt')}${uncoveredByClient('smtp.contoso.com', 'DNS:mail.protection.outlook.com')}`);
    expect(lines[6]).to.equal(`${at(17, 'downstream.tls.ca', 'empty.crt')}no PEM certificate in it (-----BEGIN CERTIFICATE-----); expected a PEM CA bundle`);
    expect(lines[7]).to.equal(`${file}: 7 problems`);
  });

  it('reports a downstream client certificate that does not cover hostname (what the inbound connector names), and takes a wildcard one that does', async () => {
    const elsewhere = relayYaml('client-elsewhere.yaml', { downstream: { host: '127.0.0.1', tls: { cert: 'client-elsewhere.crt', key: 'client-elsewhere.key' } } });
    expect((await checkRelayConfigFile(elsewhere)).problems).to.deep.equal([`${elsewhere}:12 downstream.tls.cert: ${join(dir, 'client-elsewhere.crt')}: ${uncoveredByClient('relay.test.invalid', 'DNS:other.test.invalid')}`]);
    const wildcard = relayYaml('client-wildcard.yaml', { downstream: { host: '127.0.0.1', tls: { cert: 'client-wildcard.crt', key: 'client-wildcard.key' } } });
    const check = await checkRelayConfigFile(wildcard);
    expect(check.problems).to.deep.equal([]);
    expect(check.checked.filter((c) => /^client certificate \*\.test\.invalid valid until \d{4}-\d\d-\d\d$/.test(c))).to.have.length(1);
  });
  it('reports a CA bundle cut short (a copy still being written) rather than checking the certificates before the cut', async () => {
    writeFileSync(join(dir, 'cut.crt'), `${pki.otherCa.cert}${pki.ca.cert.slice(0, Math.floor(pki.ca.cert.length / 2))}`);
    const file = relayYaml('cut.yaml', { tls: { cert: 'server.crt', key: 'server.key', ca: 'cut.crt' } });
    const check = await checkRelayConfigFile(file);
    expect(check.problems).to.deep.equal([`${file}:8 tls.ca: ${join(dir, 'cut.crt')}: certificate 2 in it is incomplete (no -----END CERTIFICATE----- line: cut short or still being written?)`]);
  });

  it('reports the problems of the file itself, one per line, and checks nothing further', async () => {
    const file = join(dir, 'incomplete.yaml');
    writeFileSync(file, ['hostnme: relay.test.invalid', 'tls:', '  cert: server.crt', '  key: server.key', 'downstream:', '  host: 127.0.0.1', 'org:', '  source: contoso.bundle', ''].join('\n'));
    const check = await checkRelayConfigFile(file);
    expect(check.problems).to.deep.equal([
      `${file}:1 (top): Unrecognized key: "hostnme"; did you mean "hostname"?`,
      `${file}:3 tls.ca: required — PEM CA bundle(s) a client certificate must chain to.`,
      `${file}:6 downstream.tls: required — TLS toward the downstream: this node's client certificate and key.`,
    ]);
    expect(check.checked).to.deep.equal([]);
  });

  it('tells a certificate not valid yet from one about to expire (a warning, not a problem)', async () => {
    const file = relayYaml('dates.yaml');
    const early = await checkRelayConfigFile(file, { now: new Date(Date.now() - 7 * DAY) });
    expect(early.problems).to.have.length(2);
    expect(early.problems[0]).to.match(new RegExp(`^${file}:\\d+ tls\\.cert: \\S+server\\.crt: the certificate is not valid before \\d{4}-`));
    // a CA whose clock runs a couple of minutes ahead: within the node's allowance, as at start-up
    const skewed = await checkRelayConfigFile(file, { now: new Date(Date.now() - DAY - 2 * 60_000) });
    expect(skewed.problems).to.deep.equal([]);
    const late = await checkRelayConfigFile(file, { now: new Date(pki.relayServer.notAfter.getTime() - 10 * DAY) });
    expect(late.problems).to.deep.equal([]);
    expect(late.notes.filter((n) => n.startsWith('warning: '))).to.have.length(2);
    expect(late.notes[0]).to.match(/^warning: \S+:\d+ tls\.cert: \S+server\.crt: the certificate expires on \S+ \(in 10 days\)$/);
  });

  it('says why a sealed bundle does not open: no key, a missing key file, another key', async () => {
    const noKey = relayYaml('no-key.yaml', { org: { source: 'contoso.bundle' } });
    expect((await checkRelayConfigFile(noKey)).problems).to.deep.equal([`${noKey}:17 org.source: ${bundle} is a sealed bundle but no organization key is configured`]);
    const missing = relayYaml('missing-key.yaml', { org: { source: 'contoso.bundle', keyRef: 'nowhere.key' } });
    expect((await checkRelayConfigFile(missing)).problems).to.deep.equal([`${missing}:17 org.source: bundle not opened: cannot read key file ${join(dir, 'nowhere.key')}: ENOENT`]);
    const otherKit = await createSealedOrgKit();
    try {
      const other = relayYaml('other-key.yaml', { org: { source: 'contoso.bundle', keyRef: otherKit.keyFile } });
      expect((await checkRelayConfigFile(other)).problems[0]).to.match(/:17 org\.source: bundle refused: wrong key: the bundle was sealed under file:org\.key#/);
    } finally {
      await otherKit.cleanup();
    }
  });

  it('checks what it can of a bundle sealed under a Key Vault key without contacting the vault', async () => {
    const vault = 'https://kv-signet-check.vault.azure.net';
    // as a Key Vault key seals (RSA-OAEP-256 wrapping, signed by <key>-signing); nothing here talks to a vault
    const keyProvider: OrgKeyProvider = {
      keyRef: `${vault}/keys/org-key`,
      wrap: () => Promise.resolve({ wrapped: randomBytes(256), keyRef: `${vault}/keys/org-key/0123456789abcdef0123456789abcdef`, alg: 'RSA-OAEP-256' }),
      unwrap: () => Promise.reject(new Error('not used')),
    };
    const signer = { keyRef: `${vault}/keys/org-key-signing`, sign: () => Promise.resolve({ kid: `${vault}/keys/org-key-signing/fedcba9876543210fedcba9876543210`, alg: 'PS256', signature: randomBytes(256) }) };
    writeFileSync(join(dir, 'vault.bundle'), await seal(await readOrgFolder(EXAMPLE_ORG_DIR), { orgId: 'contoso', version: 12, author: 'test', keyProvider, signer }));
    const file = relayYaml('vault.yaml', { org: { source: 'vault.bundle', keyRef: `${vault}/keys/org-key` }, directory: { file: join(EXAMPLE_ORG_DIR, 'directory.yaml') } });
    const check = await checkRelayConfigFile(file);
    expect(check.problems).to.deep.equal([]);
    expect(check.notes).to.deep.equal([
      `not checked: ${file}:18 org.keyRef: ${join(dir, 'vault.bundle')} (org contoso v12, sealed under ${vault}/keys/org-key/0123456789abcdef0123456789abcdef, signed by ${vault}/keys/org-key-signing/fedcba9876543210fedcba9876543210): signature and decryption not checked — they need Key Vault, which the check does not use; the node does both with its managed identity when it starts`,
    ]);
    const wrong = relayYaml('vault-wrong.yaml', { org: { source: 'vault.bundle', keyRef: `${vault}/keys/another-key` } });
    expect((await checkRelayConfigFile(wrong)).problems).to.deep.equal([`${wrong}:17 org.source: bundle refused: wrong key: the bundle was sealed under ${vault}/keys/org-key/0123456789abcdef0123456789abcdef, the key given is ${vault}/keys/another-key`]);
  });

  it('leaves a blob URL and Microsoft Graph to the node, and says so', async () => {
    const secret = join(dir, 'graph-secret');
    const file = relayYaml('azure.yaml', {
      org: { source: 'https://stsignet.blob.core.windows.net/config/contoso.bundle', keyRef: 'https://kv-signet-check.vault.azure.net/keys/org-key' },
      directory: { graph: { tenantId: '3f2504e0-4f89-41d3-9a0c-0305e82c3301', app: { clientId: 'c0ffee00-0000-4000-8000-000000000001', secret: `file:${secret}` } } },
    });
    const missing = await checkRelayConfigFile(file);
    expect(missing.problems).to.deep.equal([`${file}:24 directory.graph.app.secret: cannot read secret graph-secret from ${secret}: ENOENT`]);
    writeFileSync(secret, 'the-secret\n', { mode: 0o600 });
    const check = await checkRelayConfigFile(file);
    expect(check.problems).to.deep.equal([]);
    expect(check.notes).to.have.length(2);
    expect(check.notes[0]).to.match(/^not checked: \S+:17 org\.source: https:\/\/stsignet\.blob\.core\.windows\.net\/config\/contoso\.bundle: not downloaded/);
    expect(check.notes[1]).to.match(/^not checked: \S+:21 directory\.graph: Microsoft Graph \(tenant 3f2504e0-4f89-41d3-9a0c-0305e82c3301\) not contacted/);
  });

  it('names the file and line of a problem in the organization folder and in the directory file', async () => {
    const org = join(dir, 'org-broken');
    cpSync(EXAMPLE_ORG_DIR, org, { recursive: true });
    writeFileSync(join(org, 'org.yaml'), 'orgId: contoso\nacceptedDomain: [contoso.com]\n');
    writeFileSync(join(org, 'directory.yaml'), 'users:\n  - mail: not-an-address\n');
    const file = relayYaml('org-broken.yaml', { org: { source: org } });
    const check = await checkRelayConfigFile(file);
    expect(check.problems.length).to.be.greaterThan(1);
    expect(check.problems.some((p) => p.startsWith(`${join(org, 'org.yaml')}:2 acceptedDomain: unknown key "acceptedDomain"; did you mean "acceptedDomains"?`)), check.problems.join('\n')).to.equal(true);
    expect(check.problems.some((p) => p.startsWith(`${join(org, 'directory.yaml')}:`)), check.problems.join('\n')).to.equal(true);
    expect(readdirSync(org).sort()).to.deep.equal(readdirSync(EXAMPLE_ORG_DIR).sort()); // nothing written into it
  });
});
