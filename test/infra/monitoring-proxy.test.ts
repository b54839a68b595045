// Grafana's Front Door origin on the monitoring VM: the AzureFrontDoor.Backend
// service tag admits every customer's Front Door, so nginx on the origin port
// admits only requests carrying this stack's profile id in X-Azure-FDID and
// proxies them to Grafana on loopback. Front Door reaches it over HTTPS (the
// leg crosses the internet), so nginx terminates TLS there with the origin
// certificate the VM fetched from the vault. The rendered config is checked as
// text, by `nginx -t` and, with a throwaway certificate, against a stand-in
// Grafana where nginx is installed; the stack without Front Door keeps Grafana
// private with no proxy at all.
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { request } from 'node:https';
import { X509Certificate } from 'node:crypto';
import type { SecureVersion } from 'node:tls';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import {
  GRAFANA_LOOPBACK_PORT, GRAFANA_ORIGIN_PORT, GRAFANA_ORIGIN_TLS, GRAFANA_PROXY_CONF_PATH, GRAFANA_PROXY_STAGED_PATH, grafanaProxyConfig, MONITORING_SETUP_PATH,
  monitoringFiles, renderMonitoringCloudInit, renderMonitoringConvergeScript, type MonitoringValues,
} from '../../infra/cloud-init';
import { parseStackConfig } from '../../infra/config';
import type { StackOutputs } from '../../infra/outputs';
import { createTenantStack } from '../../infra/stack';
import { REPO_ROOT, runUnderMocks, type StackRun } from './support/harness';
import { exampleStackValues, fabrikam, placeholderArtifact, type ArtifactFixture } from './support/fixtures';
import { createCertificateAuthority, type CertificateAuthority, type IssuedCertificate } from '../support/certs';

const FRONT_DOOR_ID = '5b2f8a31-7c4d-4e9a-8b1f-0d3e6c9a2f47';
const OTHER_FRONT_DOOR_ID = '0e1d2c3b-4a59-4687-9a0b-1c2d3e4f5a6b';
const ORIGIN_HOST = 'signet-fabrikam-mon-abc123.westeurope.cloudapp.azure.com';

const base: MonitoringValues = {
  identityClientId: '2f0c3c1e-5a4b-4c3d-9e8f-1a2b3c4d5e6f', vaultUri: 'https://kv-fabrikam-abc123.vault.azure.net/', grafanaPasswordSecret: 'grafana-admin-password',
  grafanaImage: 'grafana/grafana-oss:11.6.0', grafanaRootUrl: 'https://signet-fabrikam-abc123.z01.azurefd.net/', tenantName: 'fabrikam', httpPort: 9025,
  scrapeTargets: ['10.40.0.4:9025'],
  files: { dashboard: { url: 'https://x.blob.core.windows.net/artifacts/monitoring/signet-dashboard.json', sha256: 'b'.repeat(64) }, alerts: { url: 'https://x.blob.core.windows.net/artifacts/monitoring/alerts.yaml', sha256: 'c'.repeat(64) } },
};
const ORIGIN_THUMBPRINT = '0123456789ABCDEF0123456789ABCDEF01234567';
const withFrontDoor: MonitoringValues = { ...base, frontDoorId: FRONT_DOOR_ID, originTls: { secretName: 'monitoring-tls', thumbprint: ORIGIN_THUMBPRINT } };

function fileOf(v: MonitoringValues, file: string): string | undefined {
  return monitoringFiles(v).find((f) => f.path === file)?.content;
}

function nginxBinary(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).stdout.trim();
  if (found) return found;
  return existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : undefined;
}

describe('infra: Grafana\'s Front Door origin proxy (rendered)', function () {
  it('admits only requests whose X-Azure-FDID is the profile\'s id, before any location, and proxies to Grafana on loopback', function () {
    const conf = fileOf(withFrontDoor, GRAFANA_PROXY_STAGED_PATH) ?? '';
    expect(conf).to.match(new RegExp(`^ {4}listen ${GRAFANA_ORIGIN_PORT} ssl default_server;$`, 'm'));
    expect(conf).to.include(`    if ($http_x_azure_fdid != "${FRONT_DOOR_ID}") {\n        return 403;\n    }\n`);
    expect(conf.indexOf('$http_x_azure_fdid')).to.be.lessThan(conf.indexOf('location'));
    expect(conf).to.include(`        proxy_pass http://127.0.0.1:${GRAFANA_LOOPBACK_PORT};\n`);
    // the one place a request can go; nothing answers without passing the check
    expect(conf.match(/\blocation\b/g)).to.have.length(1);
    expect(conf).to.not.match(/\breturn 200\b|\ballow\b|\bsatisfy\b/);
    // braces balance, every statement ends
    expect(conf.split('{').length).to.equal(conf.split('}').length);
    expect(GRAFANA_LOOPBACK_PORT).to.not.equal(GRAFANA_ORIGIN_PORT);
  });

  it('terminates TLS 1.2+ on the origin port with the certificate the setup script installs, and has no cleartext listener', function () {
    const conf = fileOf(withFrontDoor, GRAFANA_PROXY_STAGED_PATH) ?? '';
    expect(conf).to.equal(grafanaProxyConfig(FRONT_DOOR_ID));
    expect(conf.match(/^\s*listen\b.*$/gm)).to.deep.equal([`    listen ${GRAFANA_ORIGIN_PORT} ssl default_server;`]);
    expect(conf).to.match(new RegExp(`^ {4}ssl_certificate ${GRAFANA_ORIGIN_TLS.certificate};$`, 'm'));
    expect(conf).to.match(new RegExp(`^ {4}ssl_certificate_key ${GRAFANA_ORIGIN_TLS.key};$`, 'm'));
    expect(conf).to.match(/^ {4}ssl_protocols TLSv1\.2 TLSv1\.3;$/m);
    expect(conf).to.not.match(/TLSv1(\.1)?\b(?!\.)|SSLv/);
    // the setup script writes exactly these files, root's alone
    const setup = fileOf(withFrontDoor, MONITORING_SETUP_PATH) ?? '';
    expect(setup).to.include(`install -d -m 0700 -o root -g root ${GRAFANA_ORIGIN_TLS.dir}\n`);
    expect(setup).to.include(`mv ${GRAFANA_ORIGIN_TLS.certificate}.new ${GRAFANA_ORIGIN_TLS.certificate}\n`);
    expect(setup).to.include(`mv ${GRAFANA_ORIGIN_TLS.key}.new ${GRAFANA_ORIGIN_TLS.key}\n`);
    expect(path.posix.dirname(GRAFANA_ORIGIN_TLS.certificate)).to.equal(GRAFANA_ORIGIN_TLS.dir);
    expect(path.posix.dirname(GRAFANA_ORIGIN_TLS.key)).to.equal(GRAFANA_ORIGIN_TLS.dir);
  });

  it('fetches the origin certificate from its one vault secret, keeps it only if it is the registered one with its own key, then goes live', function () {
    const setup = fileOf(withFrontDoor, MONITORING_SETUP_PATH) ?? '';
    expect(setup).to.include(`get https://vault.azure.net 'https://kv-fabrikam-abc123.vault.azure.net/secrets/monitoring-tls?api-version=7.4' "$tls_secret"`);
    expect(setup).to.include(`if [ "$thumbprint" != '${ORIGIN_THUMBPRINT}' ]; then`);
    expect(setup).to.include('"$(openssl x509 -noout -pubkey -in /etc/nginx/signet-tls/origin.crt.new)" != "$(openssl pkey -pubout -in /etc/nginx/signet-tls/origin.key.new)"');
    // Grafana leaves the origin port before the nginx package (which starts nginx) is installed on an older VM;
    // the certificate is in place before the site that names it, and a broken config never replaces a running one.
    const order = ['docker rm -f grafana', 'docker run -d --name grafana', 'apt-get install -y -q -o DPkg::Lock::Timeout=600 nginx',
      'get https://vault.azure.net \'https://kv-fabrikam-abc123.vault.azure.net/secrets/monitoring-tls', 'if [ "$thumbprint" !=', 'openssl pkey -pubout',
      `mv ${GRAFANA_ORIGIN_TLS.key}.new ${GRAFANA_ORIGIN_TLS.key}`, 'rm -f /etc/nginx/sites-enabled/default',
      `install -m 0644 ${GRAFANA_PROXY_STAGED_PATH} ${GRAFANA_PROXY_CONF_PATH}`, 'if ! /usr/sbin/nginx -t -q; then', 'systemctl enable nginx', 'systemctl reload-or-restart nginx'];
    const at = order.map((s) => setup.indexOf(s));
    expect(at.every((i) => i >= 0), order.filter((_, i) => (at[i] ?? -1) < 0).join(', ')).to.equal(true);
    expect([...at].sort((a, b) => a - b)).to.deep.equal(at);
    // the key is written under umask 077, and nothing but the secret's PEM blocks is kept
    expect(setup.lastIndexOf('umask 077', setup.indexOf('tls_secret=$(mktemp)'))).to.be.greaterThan(setup.indexOf('apt-get install'));
  });

  it('binds Grafana to 127.0.0.1 behind the proxy, and converges the proxy onto a running VM', function () {
    const setup = fileOf(withFrontDoor, MONITORING_SETUP_PATH) ?? '';
    expect(setup).to.include(`GF_SERVER_HTTP_ADDR=127.0.0.1\\nGF_SERVER_HTTP_PORT=${GRAFANA_LOOPBACK_PORT}\\n`);
    expect(setup).to.include('if [ ! -x /usr/sbin/nginx ]; then');
    const doc = parse(renderMonitoringCloudInit(withFrontDoor)) as { packages: string[]; write_files: { path: string; content: string }[] };
    expect(doc.packages).to.include.members(['nginx', 'openssl']);
    // first boot stages the site: in conf.d before its certificate exists, it would stop the nginx package's own start
    expect(doc.write_files.map((f) => f.path)).to.not.include(GRAFANA_PROXY_CONF_PATH);
    expect(doc.write_files.find((f) => f.path === GRAFANA_PROXY_STAGED_PATH)?.content).to.equal(fileOf(withFrontDoor, GRAFANA_PROXY_STAGED_PATH));
    const converge = renderMonitoringConvergeScript(withFrontDoor);
    expect(converge).to.include(Buffer.from(fileOf(withFrontDoor, GRAFANA_PROXY_STAGED_PATH) ?? '', 'utf8').toString('base64'));
    expect(converge).to.match(/exec \/usr\/local\/sbin\/signet-monitoring-setup\n$/);
    // a rotated certificate (new thumbprint) changes the converge script, so `pulumi up` runs it again
    const rotated = renderMonitoringConvergeScript({ ...withFrontDoor, originTls: { secretName: 'monitoring-tls', thumbprint: 'F'.repeat(40) } });
    expect(rotated).to.not.equal(converge);
  });

  it('without Front Door renders no proxy and leaves Grafana on its port, removing a proxy an earlier deployment set up', function () {
    expect(fileOf(base, GRAFANA_PROXY_STAGED_PATH)).to.equal(undefined);
    const setup = fileOf(base, MONITORING_SETUP_PATH) ?? '';
    expect(setup).to.not.match(/GF_SERVER_HTTP_ADDR|GF_SERVER_HTTP_PORT|apt-get|reload-or-restart|secrets\/monitoring-tls/);
    expect(setup).to.include(`if [ -e ${GRAFANA_PROXY_CONF_PATH} ]; then\n  rm -f ${GRAFANA_PROXY_CONF_PATH}\n  [ ! -x /usr/sbin/nginx ] || systemctl disable --now nginx\nfi\n`);
    expect(setup).to.include(`rm -rf ${GRAFANA_ORIGIN_TLS.dir} ${GRAFANA_PROXY_STAGED_PATH}\n`);
    expect(setup.indexOf('systemctl disable --now nginx')).to.be.lessThan(setup.indexOf('docker run -d --name grafana'));
    expect((parse(renderMonitoringCloudInit(base)) as { packages: string[] }).packages).to.not.include('nginx');
  });

  it('refuses a Front Door id that is not a GUID (an empty one would admit requests without the header)', function () {
    for (const bad of ['', ' ', 'not-a-guid', `${FRONT_DOOR_ID}"; return 200; #`, `${FRONT_DOOR_ID}\n`]) {
      expect(() => monitoringFiles({ ...withFrontDoor, frontDoorId: bad }), JSON.stringify(bad)).to.throw(/must be a GUID/);
      expect(() => grafanaProxyConfig(bad), JSON.stringify(bad)).to.throw(/must be a GUID/);
    }
  });

  it('refuses a Front Door origin without its certificate, or with a thumbprint or secret name that could break the script', function () {
    expect(() => monitoringFiles({ ...base, frontDoorId: FRONT_DOOR_ID })).to.throw(/needs its certificate/);
    for (const thumbprint of ['', 'a'.repeat(40), `${ORIGIN_THUMBPRINT}'; rm -rf /; '`, ORIGIN_THUMBPRINT.slice(1)]) {
      expect(() => monitoringFiles({ ...withFrontDoor, originTls: { secretName: 'monitoring-tls', thumbprint } }), thumbprint).to.throw(/thumbprint/);
    }
    expect(() => monitoringFiles({ ...withFrontDoor, originTls: { secretName: 'a b', thumbprint: ORIGIN_THUMBPRINT } })).to.throw(/secret name/);
  });
});

interface Seen { url: string; headers: IncomingHttpHeaders }

interface Tls { ca: string; servername?: string; minVersion?: SecureVersion; maxVersion?: SecureVersion }

/** An HTTPS request the way Front Door sends one to the origin: TLS server name and Host the origin host, the certificate verified. */
function get(port: number, urlPath: string, headers: Record<string, string | string[]>, tls: Tls): Promise<{ status: number; body: string; peer: string }> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port, path: urlPath, headers: { host: ORIGIN_HOST, ...headers },
      ca: tls.ca, servername: tls.servername ?? ORIGIN_HOST, minVersion: tls.minVersion, maxVersion: tls.maxVersion, agent: false,
    }, (res) => {
      const peer = res.socket && 'getPeerCertificate' in res.socket ? (res.socket as import('node:tls').TLSSocket).getPeerCertificate().fingerprint256 : '';
      let body = '';
      res.on('data', (d) => { body += String(d); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, peer }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A cleartext request to the same port. */
function plainGet(port: number, urlPath: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: urlPath, headers: { host: ORIGIN_HOST, ...headers } }, (res) => {
      let body = '';
      res.on('data', (d) => { body += String(d); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createTcpServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

describe('infra: Grafana\'s Front Door origin proxy under nginx', function () {
  let nginx: string | undefined;
  let dir: string;
  let grafana: Server;
  let grafanaPort: number;
  let originPort: number;
  let proc: ChildProcess | undefined;
  let ca: CertificateAuthority;
  let originCert: IssuedCertificate;
  let tlsFiles: { certificate: string; key: string };
  const seen: Seen[] = [];

  /** Wraps the site in a minimal main config, the way Ubuntu's nginx.conf includes conf.d/*.conf in its http block. */
  function mainConfig(site: string): string {
    const sitePath = path.join(dir, 'signet-grafana.conf');
    writeFileSync(sitePath, site);
    const file = path.join(dir, 'nginx.conf');
    const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `    ${t}_temp_path ${path.join(dir, t)};`).join('\n');
    writeFileSync(file, `pid ${path.join(dir, 'nginx.pid')};\nerror_log ${path.join(dir, 'error.log')};\nevents {}\nhttp {\n    access_log off;\n${temp}\n    include ${sitePath};\n}\n`);
    return file;
  }

  function check(site: string): { status: number | null; output: string } {
    const result = spawnSync(nginx as string, ['-t', '-p', dir, '-e', path.join(dir, 'error.log'), '-c', mainConfig(site)], { encoding: 'utf8' });
    return { status: result.status, output: `${result.stdout}${result.stderr}` };
  }

  before(async function () {
    nginx = nginxBinary();
    if (!nginx) this.skip(); // a careful reading of the text (above) stands in where nginx is not installed
    dir = mkdtempSync(path.join(tmpdir(), 'signet-grafana-proxy-'));
    chmodSync(dir, 0o755); // worker processes may run as an unprivileged user
    grafana = createServer((req, res) => {
      seen.push({ url: req.url ?? '', headers: req.headers });
      res.writeHead(200, { 'content-type': 'application/json' }).end(req.url === '/api/health' ? '{"database":"ok"}' : 'grafana');
    });
    await new Promise<void>((resolve) => grafana.listen(0, '127.0.0.1', resolve));
    grafanaPort = (grafana.address() as AddressInfo).port;
    originPort = await freePort();
    // A throwaway origin certificate for the origin host, chain then key in separate files as the setup script leaves them.
    ca = await createCertificateAuthority('Signet Test Origin CA');
    originCert = await ca.issue({ commonName: ORIGIN_HOST, dnsNames: [ORIGIN_HOST], usage: ['server'] });
    tlsFiles = { certificate: path.join(dir, 'origin.crt'), key: path.join(dir, 'origin.key') };
    writeFileSync(tlsFiles.certificate, `${originCert.cert.trim()}\n${ca.cert.trim()}\n`);
    writeFileSync(tlsFiles.key, originCert.key, { mode: 0o600 });
  });

  after(async function () {
    if (proc && proc.exitCode === null) {
      const exited = new Promise((resolve) => proc?.once('exit', resolve));
      proc.kill('SIGTERM');
      await exited;
    }
    if (grafana) await new Promise((resolve) => grafana.close(resolve));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('passes `nginx -t` with its certificate files, and `nginx -t` rejects a broken site or a missing certificate (so it is really reading it)', function () {
    const site = grafanaProxyConfig(FRONT_DOOR_ID, tlsFiles);
    const good = check(site);
    expect(good.status, good.output).to.equal(0);
    const bad = check(site.replace('return 403;', 'return 403'));
    expect(bad.status, bad.output).to.not.equal(0);
    const missing = check(grafanaProxyConfig(FRONT_DOOR_ID, { certificate: path.join(dir, 'absent.crt'), key: tlsFiles.key }));
    expect(missing.status, missing.output).to.not.equal(0);
    expect(missing.output).to.include('absent.crt');
  });

  it('answers 403 unless X-Azure-FDID is the profile\'s id; forwards the rest, health probe included, to Grafana unchanged, all over TLS', async function () {
    this.timeout(30000);
    const site = grafanaProxyConfig(FRONT_DOOR_ID, tlsFiles);
    const local = site
      .replace(`listen ${GRAFANA_ORIGIN_PORT} ssl default_server;`, `listen 127.0.0.1:${originPort} ssl default_server;`)
      .replace(`proxy_pass http://127.0.0.1:${GRAFANA_LOOPBACK_PORT};`, `proxy_pass http://127.0.0.1:${grafanaPort};`);
    expect(local).to.not.equal(site);
    expect(local).to.include(`127.0.0.1:${originPort}`).and.to.include(`127.0.0.1:${grafanaPort}`);
    proc = spawn(nginx as string, ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', mainConfig(local), '-g', 'daemon off;'], { stdio: 'ignore' });
    const tls: Tls = { ca: ca.cert };
    const deadline = Date.now() + 10000;
    for (;;) {
      try { await get(originPort, '/', {}, tls); break; } catch (error) {
        if (Date.now() > deadline || proc.exitCode !== null) throw error;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    seen.length = 0;

    // The origin presents the certificate for the origin host (what Front Door's name check verifies), over TLS 1.2 and 1.3.
    const served = await get(originPort, '/api/health', { 'x-azure-fdid': FRONT_DOOR_ID }, { ...tls, maxVersion: 'TLSv1.2' });
    expect(served.peer).to.equal(new X509Certificate(originCert.cert).fingerprint256);
    expect(served.status).to.equal(200);
    expect((await get(originPort, '/api/health', { 'x-azure-fdid': FRONT_DOOR_ID }, { ...tls, minVersion: 'TLSv1.3' })).status).to.equal(200);
    // A client that checks the name refuses the certificate for any other host.
    let wrongName: Error | undefined;
    try { await get(originPort, '/api/health', { 'x-azure-fdid': FRONT_DOOR_ID }, { ...tls, servername: 'grafana.example.net' }); } catch (error) { wrongName = error as Error; }
    expect(wrongName?.message).to.match(/does not match|altnames/i);
    // Nothing is served in clear on the origin port: a plain HTTP request gets nginx's 400, never Grafana.
    const plain = await plainGet(originPort, '/login', { 'x-azure-fdid': FRONT_DOOR_ID });
    expect(plain.status).to.equal(400);
    expect(plain.body).to.match(/plain HTTP request was sent to HTTPS port/);
    expect(seen.map((s) => s.url)).to.deep.equal(['/api/health', '/api/health']);
    seen.length = 0;

    // Another customer's Front Door (the same service tag), or no Front Door at all: refused before Grafana sees it.
    expect((await get(originPort, '/login', {}, tls)).status).to.equal(403);
    expect((await get(originPort, '/login', { 'x-azure-fdid': OTHER_FRONT_DOOR_ID }, tls)).status).to.equal(403);
    expect((await get(originPort, '/api/health', { 'x-azure-fdid': '' }, tls)).status).to.equal(403);
    expect((await get(originPort, '/api/health', { 'x-azure-fdid': `${FRONT_DOOR_ID}x` }, tls)).status).to.equal(403);
    expect(seen).to.deep.equal([]);

    // Our Front Door: its health probe and users' requests reach Grafana with the host Front Door sent.
    const probe = await get(originPort, '/api/health', { 'x-azure-fdid': FRONT_DOOR_ID, 'user-agent': 'Edge Health Probe', 'x-fd-healthprobe': '1' }, tls);
    expect({ status: probe.status, body: probe.body }).to.deep.equal({ status: 200, body: '{"database":"ok"}' });
    expect((await get(originPort, '/d/signet?orgId=1', { 'x-azure-fdid': FRONT_DOOR_ID, 'x-forwarded-host': 'signet-fabrikam-abc123.z01.azurefd.net' }, tls)).status).to.equal(200);
    expect(seen.map((s) => s.url)).to.deep.equal(['/api/health', '/d/signet?orgId=1']);
    expect(seen.every((s) => s.headers.host === ORIGIN_HOST)).to.equal(true);
    expect(seen[1]?.headers['x-forwarded-host']).to.equal('signet-fabrikam-abc123.z01.azurefd.net');

    // Two X-Azure-FDID lines (ours smuggled beside another profile's): nginx 1.23+ joins them, so they do not match.
    const version = /nginx\/(\d+)\.(\d+)/.exec(spawnSync(nginx as string, ['-v'], { encoding: 'utf8' }).stderr);
    if (version && (Number(version[1]) > 1 || Number(version[2]) >= 23)) {
      expect((await get(originPort, '/login', { 'x-azure-fdid': [OTHER_FRONT_DOOR_ID, FRONT_DOOR_ID] }, tls)).status).to.equal(403);
      expect((await get(originPort, '/login', { 'x-azure-fdid': [FRONT_DOOR_ID, OTHER_FRONT_DOOR_ID] }, tls)).status).to.equal(403);
    }
  });
});

describe('infra: monitoring without Front Door (mocked Azure)', function () {
  let artifact: ArtifactFixture;
  let run: StackRun<StackOutputs>;

  before(async function () {
    artifact = placeholderArtifact();
    const monitoring = { ...(exampleStackValues().monitoring as Record<string, unknown>), frontDoor: false };
    const config = parseStackConfig(fabrikam(artifact.path, { monitoring }));
    run = await runUnderMocks('fabrikam', () => createTenantStack(config, { baseDir: REPO_ROOT })) as StackRun<StackOutputs>;
  });
  after(() => artifact.cleanup());

  it('declares no Front Door, admits nothing to the monitoring subnet, and runs no proxy: Grafana stays private', function () {
    expect(run.resources.filter((r) => r.type.startsWith('azure-native:cdn:')).map((r) => r.name)).to.deep.equal([]);
    const rules = run.one('azure-native:network:NetworkSecurityGroup', 'nsg-monitoring').inputs.securityRules as { access: string }[];
    expect(rules.filter((r) => r.access === 'Allow')).to.deep.equal([]);
    const vm = run.one('azure-native:compute:VirtualMachine', 'vm-monitoring');
    const doc = parse(Buffer.from((vm.inputs.osProfile as { customData: string }).customData, 'base64').toString('utf8')) as { packages: string[]; write_files: { path: string; content: string }[] };
    expect(doc.packages).to.not.include('nginx');
    expect(doc.write_files.map((f) => f.path)).to.not.include(GRAFANA_PROXY_CONF_PATH);
    const setup = doc.write_files.find((f) => f.path === MONITORING_SETUP_PATH)?.content ?? '';
    expect(setup).to.not.include('GF_SERVER_HTTP_ADDR');
    expect(setup).to.match(/GF_SERVER_ROOT_URL=%s.*'http:\/\/10\.40\.0\.68:3000\/'/s);
    const converge = (run.one('azure-native:compute:VirtualMachineRunCommandByVirtualMachine', 'converge-monitoring').inputs.source as { script: string }).script;
    expect(converge).to.not.include(GRAFANA_PROXY_CONF_PATH.replace(/\.conf$/, '.conf.new'));
    expect(converge).to.not.include(`${GRAFANA_PROXY_STAGED_PATH}.new`);
    // no origin certificate to issue, store or read
    expect(run.resources.filter((r) => r.name.includes('monitoring-origin')).map((r) => r.name)).to.deep.equal([]);
    expect(run.ofType('azure-native:authorization:RoleAssignment').map((r) => r.name)).to.not.include('fabrikam-ra-monitoring-origin-tls');
    expect(run.outputs.dashboardUrl).to.match(/^http:\/\/10\.40\.0\.68:3000\/d\//);
    // asked for by the stack file: nothing to warn about
    expect(run.warnings).to.deep.equal([]);
  });
});
