// The node install script (infra/cloud-init/signet-install.sh) run for real
// against loopback stand-ins: a metadata service handing out identity tokens,
// blob storage and Key Vault that demand them, and the relay's health
// endpoints; a scratch root and a stub systemctl stand in for the VM.
import { expect } from 'chai';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { monitoringFiles, MONITORING_SETUP_PATH, nodeEnvFile } from '../../infra/cloud-init';
import { REPO_ROOT } from './support/harness';

const SCRIPT = path.join(REPO_ROOT, 'infra/cloud-init/signet-install.sh');
const CLIENT_ID = '2f0c3c1e-5a4b-4c3d-9e8f-1a2b3c4d5e6f';

interface Seen { method: string; url: string; headers: IncomingMessage['headers'] }

interface StandIn {
  server: Server;
  port: number;
  seen: Seen[];
  artifact: Buffer;
  secretPem: string;
  /** /readyz answer before and after the stub systemctl restarted the service. */
  readyBefore: number;
  readyAfter: number;
  restartedFlag: string;
  /** How many more requests to each data path get 403 first (a role assignment not yet applied). */
  denyFirst: Record<string, number>;
  /** Whether the running version knows POST /leave, and whether it was asked before the restart. */
  leaveSupported: boolean;
  leftBeforeRestart?: boolean;
}

function startStandIn(dir: string, artifact: Buffer, secretPem: string): Promise<StandIn> {
  const state: Omit<StandIn, 'server' | 'port'> = { seen: [], artifact, secretPem, readyBefore: 503, readyAfter: 200, restartedFlag: path.join(dir, 'restarted'), denyFirst: {}, leaveSupported: true };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    state.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const auth = req.headers.authorization ?? '';
    // Azure RBAC not yet propagated: the data plane refuses a valid token for a while.
    if ((state.denyFirst[url.pathname] ?? 0) > 0) {
      state.denyFirst[url.pathname] = (state.denyFirst[url.pathname] ?? 0) - 1;
      res.writeHead(403, { 'content-type': 'application/json' }).end('{"error":{"code":"Forbidden","message":"Caller is not authorized to perform action on resource."}}');
      return;
    }
    if (url.pathname === '/metadata/identity/oauth2/token') {
      if (req.headers.metadata !== 'true' || url.searchParams.get('client_id') !== CLIENT_ID) { res.writeHead(400).end('{"error":"invalid_request"}'); return; }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: `token-for:${url.searchParams.get('resource')}`, token_type: 'Bearer' }));
      return;
    }
    if (url.pathname === '/artifacts/signet-appliance-0.1.0.tar.gz') {
      if (auth !== 'Bearer token-for:https://storage.azure.com/' || !req.headers['x-ms-version']) { res.writeHead(403).end('AuthorizationFailure'); return; }
      res.writeHead(200, { 'content-type': 'application/gzip' }).end(state.artifact);
      return;
    }
    if (url.pathname === '/secrets/node0-tls') {
      if (auth !== 'Bearer token-for:https://vault.azure.net' || url.searchParams.get('api-version') !== '7.4') { res.writeHead(403).end('{"error":{"code":"Forbidden"}}'); return; }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ value: state.secretPem, id: 'x' }));
      return;
    }
    if (url.pathname === '/healthz') { res.writeHead(200).end('ok'); return; }
    if (url.pathname === '/leave' && req.method === 'POST' && state.leaveSupported) {
      state.leftBeforeRestart = !existsSync(state.restartedFlag);
      res.writeHead(202).end('{"status":"leaving"}');
      return;
    }
    if (url.pathname === '/readyz') {
      const status = existsSync(state.restartedFlag) ? state.readyAfter : state.readyBefore;
      res.writeHead(status).end(status === 200 ? 'ready' : 'not ready: downstream unreachable (port25-blocked)');
      return;
    }
    res.writeHead(404).end();
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    resolve(Object.assign(state, { server, port: (server.address() as AddressInfo).port }) as StandIn);
  }));
}

function monitoringSetupScript(): string {
  const files = monitoringFiles({
    identityClientId: CLIENT_ID, vaultUri: 'https://kv-fabrikam-abc123.vault.azure.net/', grafanaPasswordSecret: 'grafana-admin-password',
    grafanaImage: 'grafana/grafana-oss:11.6.0', grafanaRootUrl: 'https://signet-fabrikam-abc123.z01.azurefd.net/', tenantName: 'fabrikam', httpPort: 9025,
    scrapeTargets: ['10.40.0.4:9025'],
    files: { dashboard: { url: 'https://x.blob.core.windows.net/artifacts/monitoring/signet-dashboard.json', sha256: 'b'.repeat(64) }, alerts: { url: 'https://x.blob.core.windows.net/artifacts/monitoring/alerts.yaml', sha256: 'c'.repeat(64) } },
  });
  return files.find((f) => f.path === MONITORING_SETUP_PATH)?.content ?? '';
}

function run(env: Record<string, string>): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', [SCRIPT], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } });
    let output = '';
    child.stdout.on('data', (d) => { output += String(d); });
    child.stderr.on('data', (d) => { output += String(d); });
    child.on('close', (code) => resolve({ code: code ?? -1, output }));
  });
}

describe('infra: node install script against local stand-ins', function () {
  let dir: string;
  let standIn: StandIn;
  let artifact: Buffer;
  let certPem: string;
  let keyPem: string;
  let thumbprint: string;

  before(async function () {
    if (process.getuid?.() !== 0) this.skip(); // it sets root ownership and modes, as on a node
    dir = mkdtempSync(path.join(tmpdir(), 'signet-install-'));
    // A packaged-appliance-shaped archive: one top-level folder, bin/signet, the unit and sysusers file.
    const pkg = path.join(dir, 'pkg', 'signet-appliance-0.1.0');
    mkdirSync(path.join(pkg, 'bin'), { recursive: true });
    mkdirSync(path.join(pkg, 'systemd'), { recursive: true });
    writeFileSync(path.join(pkg, 'bin', 'signet'), '#!/bin/sh\necho signet\n');
    chmodSync(path.join(pkg, 'bin', 'signet'), 0o755);
    writeFileSync(path.join(pkg, 'systemd', 'signet.service'), '[Service]\nExecStart=/opt/signet/bin/signet serve --config /etc/signet/relay.yaml\n');
    writeFileSync(path.join(pkg, 'systemd', 'signet.sysusers.conf'), 'u signet - "Signet" /var/lib/signet /usr/sbin/nologin\n');
    execFileSync('tar', ['-C', path.join(dir, 'pkg'), '-czf', path.join(dir, 'artifact.tar.gz'), 'signet-appliance-0.1.0']);
    artifact = readFileSync(path.join(dir, 'artifact.tar.gz'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=fabrikam.relay.signet-msp.example',
      '-days', '30', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    certPem = readFileSync(path.join(dir, 'cert.pem'), 'utf8');
    keyPem = readFileSync(path.join(dir, 'key.pem'), 'utf8');
    thumbprint = execFileSync('openssl', ['x509', '-noout', '-fingerprint', '-sha1', '-in', path.join(dir, 'cert.pem')]).toString().split('=')[1]?.trim().replaceAll(':', '') ?? '';
    standIn = await startStandIn(dir, artifact, certPem + keyPem);
    // A stub systemctl that records its calls and marks the restart.
    writeFileSync(path.join(dir, 'systemctl'), `#!/bin/sh\necho "$*" >> ${dir}/systemctl.log\n[ "$1" = restart ] && touch ${standIn.restartedFlag}\nexit 0\n`);
    chmodSync(path.join(dir, 'systemctl'), 0o755);
  });
  after(function () {
    standIn?.server.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A fresh scratch root with node.env (rendered by the stack's own renderer) and relay.yaml. */
  function scratch(name: string, overrides: { sha256?: string; thumbprint?: string } = {}): { root: string; env: Record<string, string> } {
    const root = path.join(dir, name);
    mkdirSync(path.join(root, 'etc/signet'), { recursive: true });
    const base = `http://127.0.0.1:${standIn.port}`;
    writeFileSync(path.join(root, 'etc/signet/node.env'), nodeEnvFile({
      nodeName: 'node0', nodeFqdn: 'signet-fabrikam-n0-abc123.westeurope.cloudapp.azure.com', version: '0.1.0',
      artifactUrl: `${base}/artifacts/signet-appliance-0.1.0.tar.gz`,
      artifactSha256: overrides.sha256 ?? createHash('sha256').update(artifact).digest('hex'),
      identityClientId: CLIENT_ID, vaultUri: `${base}/`, tlsSecretName: 'node0-tls', tlsThumbprint: overrides.thumbprint ?? thumbprint,
      httpPort: standIn.port, relayConfigYaml: '',
    }));
    writeFileSync(path.join(root, 'etc/signet/relay.yaml'), 'hostname: fabrikam.relay.signet-msp.example\n');
    rmSync(standIn.restartedFlag, { force: true });
    rmSync(path.join(dir, 'systemctl.log'), { force: true });
    standIn.seen.length = 0;
    return {
      root,
      env: {
        SIGNET_ROOT: root, SIGNET_IMDS_ENDPOINT: base, SIGNET_SYSTEMCTL: path.join(dir, 'systemctl'), SIGNET_SYSUSERS: 'true',
        SIGNET_SERVICE_USER: 'root', SIGNET_WAIT_SECONDS: '2', SIGNET_RETRY_SECONDS: '0', SIGNET_LEAVE_SECONDS: '0',
      },
    };
  }

  it('downloads with the node identity, verifies, installs, fetches and splits the certificate, and starts the unit', async function () {
    const { root, env } = scratch('ok');
    const result = await run(env);
    expect(result.code, result.output).to.equal(0);
    expect(readlinkSync(path.join(root, 'opt/signet/current'))).to.equal(path.join(root, 'opt/signet/0.1.0'));
    expect(existsSync(path.join(root, 'opt/signet/current/bin/signet'))).to.equal(true);
    expect(existsSync(path.join(root, 'run/signet-install.switched')), 'the converge keeps the new files from here on').to.equal(true);
    expect(readFileSync(path.join(root, 'etc/systemd/system/signet.service'), 'utf8')).to.include('ExecStart=/opt/signet/bin/signet');
    const crt = readFileSync(path.join(root, 'etc/signet/tls/node.crt'), 'utf8');
    const key = readFileSync(path.join(root, 'etc/signet/tls/node.key'), 'utf8');
    expect(crt.trim()).to.equal(certPem.trim());
    expect(key.trim()).to.equal(keyPem.trim());
    expect(statSync(path.join(root, 'etc/signet/tls/node.key')).mode & 0o777).to.equal(0o600);
    expect(statSync(path.join(root, 'etc/signet/relay.yaml')).mode & 0o777).to.equal(0o640);
    expect(readFileSync(path.join(dir, 'systemctl.log'), 'utf8').trim().split('\n')).to.deep.equal(['daemon-reload', 'enable signet.service', 'restart signet.service']);
    const tokens = standIn.seen.filter((s) => s.url.startsWith('/metadata/')).map((s) => new URL(s.url, 'http://x').searchParams.get('resource'));
    expect(tokens).to.deep.equal(['https://storage.azure.com/', 'https://vault.azure.net']);
    const blob = standIn.seen.find((s) => s.url.startsWith('/artifacts/')) as Seen;
    expect(blob.headers['x-ms-version']).to.match(/^\d{4}-\d{2}-\d{2}$/);
    expect(result.output).to.match(/signet 0\.1\.0 installed and passing \/healthz/);
  });

  it('waits out role assignments that have not reached Storage and Key Vault yet (403), then installs', async function () {
    const { root, env } = scratch('rbac-delay');
    standIn.denyFirst = { '/artifacts/signet-appliance-0.1.0.tar.gz': 2, '/secrets/node0-tls': 3 };
    try {
      const result = await run(env);
      expect(result.code, result.output).to.equal(0);
      expect(result.output).to.match(/denied \(HTTP 403\); role assignments can take minutes to apply/);
      expect(readFileSync(path.join(root, 'etc/signet/tls/node.crt'), 'utf8').trim()).to.equal(certPem.trim());
      expect(standIn.seen.filter((s) => s.url.startsWith('/secrets/'))).to.have.length(4);
      // the secret's JSON is not left behind
      expect(execFileSync('ls', ['-A', path.join(root, 'etc/signet/tls')]).toString().trim().split('\n').sort()).to.deep.equal(['node.crt', 'node.key']);
    } finally {
      standIn.denyFirst = {};
    }
  });

  it('retries the metadata service when the identity is not ready yet, and uses only the token (not its own log lines) as the bearer', async function () {
    const { root, env } = scratch('imds-delay');
    // right after a VM is created, IMDS may refuse a user-assigned identity's token for a while
    standIn.denyFirst = { '/metadata/identity/oauth2/token': 2 };
    try {
      const result = await run({ ...env, SIGNET_RBAC_WAIT_SECONDS: '0' });
      expect(result.code, result.output).to.equal(0);
      expect(result.output).to.match(/identity token for https:\/\/storage\.azure\.com\/ not available yet \(attempt 1\)/);
      const blob = standIn.seen.find((s) => s.url.startsWith('/artifacts/')) as Seen;
      expect(blob.headers.authorization).to.equal('Bearer token-for:https://storage.azure.com/');
      expect(readlinkSync(path.join(root, 'opt/signet/current'))).to.equal(path.join(root, 'opt/signet/0.1.0'));
    } finally {
      standIn.denyFirst = {};
    }
  });

  it('gives up on a denial that outlasts the wait, naming the refusal, and installs nothing', async function () {
    const { root, env } = scratch('rbac-denied');
    standIn.denyFirst = { '/artifacts/signet-appliance-0.1.0.tar.gz': 1000 };
    try {
      const result = await run({ ...env, SIGNET_RBAC_WAIT_SECONDS: '0' });
      expect(result.code).to.equal(1);
      expect(result.output).to.match(/still denied \(HTTP 403\) after 0s: .*Forbidden/);
      expect(result.output).to.include('cannot download');
      expect(existsSync(path.join(root, 'opt/signet/current'))).to.equal(false);
      expect(existsSync(path.join(root, 'run/signet-install.switched')), 'the converge puts the previous files back').to.equal(false);
    } finally {
      standIn.denyFirst = {};
    }
  });

  it('retries 403 the same way in the monitoring VM\'s setup script (its fetch of blobs and the Grafana secret)', async function () {
    const setup = monitoringSetupScript();
    const get = /^get\(\) \{[\s\S]*?\n\}\n/m.exec(setup)?.[0];
    expect(get, 'get() in the monitoring setup script').to.be.a('string');
    const out = path.join(dir, 'monitoring-get.out');
    // bearer() is the script's own token helper; here it hands curl a fixed token (IMDS is exercised above).
    const script = `set -euo pipefail\nbearer() { printf 'header = "Authorization: Bearer token-for:%s"\\n' "$1"; }\n${get}get https://vault.azure.net "http://127.0.0.1:${standIn.port}/secrets/node0-tls?api-version=7.4" ${out}\n`;
    standIn.denyFirst = { '/secrets/node0-tls': 2 };
    try {
      const result = await new Promise<{ code: number; output: string }>((resolve) => {
        const child = spawn('bash', ['-c', script], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', RETRY_SECONDS: '0' } });
        let output = '';
        child.stdout.on('data', (d) => { output += String(d); });
        child.stderr.on('data', (d) => { output += String(d); });
        child.on('close', (code) => resolve({ code: code ?? -1, output }));
      });
      expect(result.code, result.output).to.equal(0);
      expect((JSON.parse(readFileSync(out, 'utf8')) as { value: string }).value).to.equal(standIn.secretPem);
      expect(standIn.seen.filter((s) => s.url.startsWith('/secrets/'))).to.have.length(3);
    } finally {
      standIn.denyFirst = {};
    }
  });

  it('refuses an artifact whose SHA-256 is not the one the stack recorded, and changes nothing', async function () {
    const { root, env } = scratch('badsha', { sha256: 'f'.repeat(64) });
    const result = await run(env);
    expect(result.code).to.equal(1);
    expect(result.output).to.match(/artifact checksum mismatch .* expected f{64}, got [0-9a-f]{64}/);
    expect(existsSync(path.join(root, 'opt/signet/current'))).to.equal(false);
    expect(existsSync(path.join(dir, 'systemctl.log'))).to.equal(false);
  });

  it('refuses a certificate that is not the one registered for the node', async function () {
    const { root, env } = scratch('badcert', { thumbprint: 'A'.repeat(40) });
    const result = await run(env);
    expect(result.code).to.equal(1);
    expect(result.output).to.include(`holds certificate ${thumbprint}, but the stack registered ${'A'.repeat(40)}`);
    expect(existsSync(path.join(root, 'etc/signet/tls/node.crt'))).to.equal(false);
    expect(existsSync(path.join(root, 'etc/signet/tls/node.crt.new'))).to.equal(false);
    expect(existsSync(path.join(dir, 'systemctl.log'))).to.equal(false);
  });

  it('takes a node in rotation out of it (POST /leave, then the wait) before the restart; a version without /leave restarts at once', async function () {
    standIn.readyBefore = 200;
    try {
      for (const leaveSupported of [true, false]) {
        standIn.leaveSupported = leaveSupported;
        standIn.leftBeforeRestart = undefined;
        const { env } = scratch(`leave-${leaveSupported}`);
        const result = await run({ ...env, SIGNET_LEAVE_SECONDS: '1' });
        expect(result.code, result.output).to.equal(0);
        expect(standIn.leftBeforeRestart, 'POST /leave before the restart').to.equal(leaveSupported ? true : undefined);
        expect(result.output.includes('leaving rotation: waiting 1s'), result.output).to.equal(leaveSupported);
        expect(readFileSync(path.join(dir, 'systemctl.log'), 'utf8').trim().split('\n')).to.deep.equal(['daemon-reload', 'enable signet.service', 'restart signet.service']);
      }
    } finally {
      standIn.readyBefore = 503;
      standIn.leaveSupported = true;
    }
  });

  it('fails (stopping a rolling upgrade) when a node that was ready does not become ready again, quoting /readyz', async function () {
    const { env } = scratch('notready');
    standIn.readyBefore = 200;
    standIn.readyAfter = 503;
    try {
      const result = await run(env);
      expect(result.code).to.equal(1);
      expect(result.output).to.include('/readyz says: not ready: downstream unreachable (port25-blocked)');
      expect(result.output).to.match(/did not pass \/readyz within 2s/);
    } finally {
      standIn.readyBefore = 503;
      standIn.readyAfter = 200;
    }
  });
});
