// Grafana's Front Door origin on the monitoring VM: the AzureFrontDoor.Backend
// service tag admits every customer's Front Door, so nginx on the origin port
// admits only requests carrying this stack's profile id in X-Azure-FDID and
// proxies them to Grafana on loopback. The rendered config is checked as text,
// by `nginx -t` and against a stand-in Grafana where nginx is installed; the
// stack without Front Door keeps Grafana private with no proxy at all.
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import {
  GRAFANA_LOOPBACK_PORT, GRAFANA_ORIGIN_PORT, GRAFANA_PROXY_CONF_PATH, grafanaProxyConfig, MONITORING_SETUP_PATH,
  monitoringFiles, renderMonitoringCloudInit, renderMonitoringConvergeScript, type MonitoringValues,
} from '../../infra/cloud-init';
import { parseStackConfig } from '../../infra/config';
import type { StackOutputs } from '../../infra/outputs';
import { createTenantStack } from '../../infra/stack';
import { REPO_ROOT, runUnderMocks, type StackRun } from './support/harness';
import { exampleStackValues, fabrikam, placeholderArtifact, type ArtifactFixture } from './support/fixtures';

const FRONT_DOOR_ID = '5b2f8a31-7c4d-4e9a-8b1f-0d3e6c9a2f47';
const OTHER_FRONT_DOOR_ID = '0e1d2c3b-4a59-4687-9a0b-1c2d3e4f5a6b';
const ORIGIN_HOST = 'signet-fabrikam-mon-abc123.westeurope.cloudapp.azure.com';

const base: MonitoringValues = {
  identityClientId: '2f0c3c1e-5a4b-4c3d-9e8f-1a2b3c4d5e6f', vaultUri: 'https://kv-fabrikam-abc123.vault.azure.net/', grafanaPasswordSecret: 'grafana-admin-password',
  grafanaImage: 'grafana/grafana-oss:11.6.0', grafanaRootUrl: 'https://signet-fabrikam-abc123.z01.azurefd.net/', tenantName: 'fabrikam', httpPort: 9025,
  scrapeTargets: ['10.40.0.4:9025'],
  files: { dashboard: { url: 'https://x.blob.core.windows.net/artifacts/monitoring/signet-dashboard.json', sha256: 'b'.repeat(64) }, alerts: { url: 'https://x.blob.core.windows.net/artifacts/monitoring/alerts.yaml', sha256: 'c'.repeat(64) } },
};
const withFrontDoor: MonitoringValues = { ...base, frontDoorId: FRONT_DOOR_ID };

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
    const conf = fileOf(withFrontDoor, GRAFANA_PROXY_CONF_PATH) ?? '';
    expect(conf).to.match(new RegExp(`^ {4}listen ${GRAFANA_ORIGIN_PORT} default_server;$`, 'm'));
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

  it('binds Grafana to 127.0.0.1 behind the proxy, and converges the proxy onto a running VM', function () {
    const setup = fileOf(withFrontDoor, MONITORING_SETUP_PATH) ?? '';
    expect(setup).to.include(`GF_SERVER_HTTP_ADDR=127.0.0.1\\nGF_SERVER_HTTP_PORT=${GRAFANA_LOOPBACK_PORT}\\n`);
    // Grafana leaves the origin port before the nginx package (which starts nginx) is installed on an older VM;
    // a broken config never replaces a running one.
    const order = ['docker rm -f grafana', 'docker run -d --name grafana', 'apt-get install -y -q -o DPkg::Lock::Timeout=600 nginx',
      'rm -f /etc/nginx/sites-enabled/default', '/usr/sbin/nginx -t -q', 'systemctl enable nginx', 'systemctl reload-or-restart nginx'];
    const at = order.map((s) => setup.indexOf(s));
    expect(at.every((i) => i >= 0), order.filter((_, i) => (at[i] ?? -1) < 0).join(', ')).to.equal(true);
    expect([...at].sort((a, b) => a - b)).to.deep.equal(at);
    expect(setup).to.include('if [ ! -x /usr/sbin/nginx ]; then');
    const doc = parse(renderMonitoringCloudInit(withFrontDoor)) as { packages: string[]; write_files: { path: string; content: string }[] };
    expect(doc.packages).to.include('nginx');
    expect(doc.write_files.find((f) => f.path === GRAFANA_PROXY_CONF_PATH)?.content).to.equal(fileOf(withFrontDoor, GRAFANA_PROXY_CONF_PATH));
    const converge = renderMonitoringConvergeScript(withFrontDoor);
    expect(converge).to.include(Buffer.from(fileOf(withFrontDoor, GRAFANA_PROXY_CONF_PATH) ?? '', 'utf8').toString('base64'));
    expect(converge).to.match(/exec \/usr\/local\/sbin\/signet-monitoring-setup\n$/);
  });

  it('without Front Door renders no proxy and leaves Grafana on its port, removing a proxy an earlier deployment set up', function () {
    expect(fileOf(base, GRAFANA_PROXY_CONF_PATH)).to.equal(undefined);
    const setup = fileOf(base, MONITORING_SETUP_PATH) ?? '';
    expect(setup).to.not.match(/GF_SERVER_HTTP_ADDR|GF_SERVER_HTTP_PORT|apt-get|reload-or-restart/);
    expect(setup).to.include(`if [ -e ${GRAFANA_PROXY_CONF_PATH} ]; then\n  rm -f ${GRAFANA_PROXY_CONF_PATH}\n  [ ! -x /usr/sbin/nginx ] || systemctl disable --now nginx\nfi\n`);
    expect(setup.indexOf('systemctl disable --now nginx')).to.be.lessThan(setup.indexOf('docker run -d --name grafana'));
    expect((parse(renderMonitoringCloudInit(base)) as { packages: string[] }).packages).to.not.include('nginx');
  });

  it('refuses a Front Door id that is not a GUID (an empty one would admit requests without the header)', function () {
    for (const bad of ['', ' ', 'not-a-guid', `${FRONT_DOOR_ID}"; return 200; #`, `${FRONT_DOOR_ID}\n`]) {
      expect(() => monitoringFiles({ ...base, frontDoorId: bad }), JSON.stringify(bad)).to.throw(/must be a GUID/);
      expect(() => grafanaProxyConfig(bad), JSON.stringify(bad)).to.throw(/must be a GUID/);
    }
  });
});

interface Seen { url: string; headers: IncomingHttpHeaders }

function get(port: number, urlPath: string, headers: Record<string, string | string[]>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: urlPath, headers: { host: ORIGIN_HOST, ...headers } }, (res) => {
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

  it('passes `nginx -t`, and `nginx -t` rejects a broken site (so it is really reading it)', function () {
    const site = grafanaProxyConfig(FRONT_DOOR_ID);
    const good = check(site);
    expect(good.status, good.output).to.equal(0);
    const bad = check(site.replace('return 403;', 'return 403'));
    expect(bad.status, bad.output).to.not.equal(0);
  });

  it('answers 403 unless X-Azure-FDID is the profile\'s id; forwards the rest, health probe included, to Grafana unchanged', async function () {
    this.timeout(30000);
    const site = grafanaProxyConfig(FRONT_DOOR_ID);
    const local = site
      .replace(`listen ${GRAFANA_ORIGIN_PORT} default_server;`, `listen 127.0.0.1:${originPort} default_server;`)
      .replace(`proxy_pass http://127.0.0.1:${GRAFANA_LOOPBACK_PORT};`, `proxy_pass http://127.0.0.1:${grafanaPort};`);
    expect(local).to.not.equal(site);
    expect(local).to.include(`127.0.0.1:${originPort}`).and.to.include(`127.0.0.1:${grafanaPort}`);
    proc = spawn(nginx as string, ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', mainConfig(local), '-g', 'daemon off;'], { stdio: 'ignore' });
    const deadline = Date.now() + 10000;
    for (;;) {
      try { await get(originPort, '/', {}); break; } catch (error) {
        if (Date.now() > deadline || proc.exitCode !== null) throw error;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    seen.length = 0;

    // Another customer's Front Door (the same service tag), or no Front Door at all: refused before Grafana sees it.
    expect((await get(originPort, '/login', {})).status).to.equal(403);
    expect((await get(originPort, '/login', { 'x-azure-fdid': OTHER_FRONT_DOOR_ID })).status).to.equal(403);
    expect((await get(originPort, '/api/health', { 'x-azure-fdid': '' })).status).to.equal(403);
    expect((await get(originPort, '/api/health', { 'x-azure-fdid': `${FRONT_DOOR_ID}x` })).status).to.equal(403);
    expect(seen).to.deep.equal([]);

    // Our Front Door: its health probe and users' requests reach Grafana with the host Front Door sent.
    const probe = await get(originPort, '/api/health', { 'x-azure-fdid': FRONT_DOOR_ID, 'user-agent': 'Edge Health Probe', 'x-fd-healthprobe': '1' });
    expect(probe).to.deep.equal({ status: 200, body: '{"database":"ok"}' });
    expect((await get(originPort, '/d/signet?orgId=1', { 'x-azure-fdid': FRONT_DOOR_ID, 'x-forwarded-host': 'signet-fabrikam-abc123.z01.azurefd.net' })).status).to.equal(200);
    expect(seen.map((s) => s.url)).to.deep.equal(['/api/health', '/d/signet?orgId=1']);
    expect(seen.every((s) => s.headers.host === ORIGIN_HOST)).to.equal(true);
    expect(seen[1]?.headers['x-forwarded-host']).to.equal('signet-fabrikam-abc123.z01.azurefd.net');

    // Two X-Azure-FDID lines (ours smuggled beside another profile's): nginx 1.23+ joins them, so they do not match.
    const version = /nginx\/(\d+)\.(\d+)/.exec(spawnSync(nginx as string, ['-v'], { encoding: 'utf8' }).stderr);
    if (version && (Number(version[1]) > 1 || Number(version[2]) >= 23)) {
      expect((await get(originPort, '/login', { 'x-azure-fdid': [OTHER_FRONT_DOOR_ID, FRONT_DOOR_ID] })).status).to.equal(403);
      expect((await get(originPort, '/login', { 'x-azure-fdid': [FRONT_DOOR_ID, OTHER_FRONT_DOOR_ID] })).status).to.equal(403);
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
    expect(run.outputs.dashboardUrl).to.match(/^http:\/\/10\.40\.0\.68:3000\/d\//);
  });
});
