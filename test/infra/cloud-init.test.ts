// The rendered cloud-init documents checked by a real validator (Debian's
// `cloud-init schema`), and the install script checked by bash and, where the
// packaged unit exists, `systemd-analyze verify`.
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import { renderConvergeScript, renderMonitoringCloudInit, renderNodeCloudInit, systemdDropIn, type NodeValues } from '../../infra/cloud-init';
import { renderRelayConfig } from '../../infra/cloud-init/relay-config';
import { parseRelayConfig } from '../../appliance/src/smtp';
import { REPO_ROOT } from './support/harness';

function has(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
}

const values: NodeValues = {
  nodeName: 'node0',
  nodeFqdn: 'signet-fabrikam-n0-abc123.westeurope.cloudapp.azure.com',
  version: '0.1.0',
  artifactUrl: 'https://stfabrikamabc123.blob.core.windows.net/artifacts/signet-appliance-0.1.0.tar.gz',
  artifactSha256: 'a'.repeat(64),
  identityClientId: '2f0c3c1e-5a4b-4c3d-9e8f-1a2b3c4d5e6f',
  vaultUri: 'https://kv-fabrikam-abc123.vault.azure.net/',
  tlsSecretName: 'node0-tls',
  tlsThumbprint: 'A'.repeat(40),
  httpPort: 9025,
  relayConfigYaml: renderRelayConfig({
    certificateDomain: 'fabrikam.relay.signet-msp.example', httpPort: 9025, downstreamHost: 'fabrikam-com.mail.protection.outlook.com',
    configBundleUrl: 'https://stfabrikamabc123.blob.core.windows.net/config/org-config.sealed',
    orgKeyId: 'https://kv-fabrikam-abc123.vault.azure.net/keys/org-config-key', identityClientId: '2f0c3c1e-5a4b-4c3d-9e8f-1a2b3c4d5e6f',
    azureTenantId: '4a1c6f43-2b7e-4d59-9f0e-8c3d2a7b5e10', exchangeOnlineRanges: ['40.92.0.0/15', '2a01:111:f400::/48'], directoryRefreshMinutes: 15,
  }),
};

describe('infra: cloud-init and node scripts', function () {
  let dir: string;
  before(() => { dir = mkdtempSync(path.join(tmpdir(), 'signet-cloudinit-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function validate(name: string, text: string): void {
    const file = path.join(dir, name);
    writeFileSync(file, text);
    const result = spawnSync('cloud-init', ['schema', '--config-file', file], { encoding: 'utf8' });
    expect(result.status, `${result.stdout}\n${result.stderr}`).to.equal(0);
    expect(result.stdout + result.stderr).to.match(/Valid (schema|cloud-config)/i);
  }

  it('renders a node cloud-config that `cloud-init schema` accepts', function () {
    if (!has('cloud-init')) this.skip(); // .ci/run installs cloud-init
    validate('node.yaml', renderNodeCloudInit(values));
  });

  it('renders a monitoring cloud-config that `cloud-init schema` accepts, with and without the Front Door proxy', function () {
    if (!has('cloud-init')) this.skip();
    const monitoring = {
      identityClientId: values.identityClientId, vaultUri: values.vaultUri, grafanaPasswordSecret: 'grafana-admin-password',
      grafanaImage: 'grafana/grafana-oss:11.6.0', grafanaRootUrl: 'https://signet-fabrikam-abc123.z01.azurefd.net/', tenantName: 'fabrikam', httpPort: 9025, scrapeTargets: ['10.40.0.4:9025', '10.40.0.5:9025'],
      files: { dashboard: { url: 'https://x.blob.core.windows.net/artifacts/monitoring/signet-dashboard.json', sha256: 'b'.repeat(64) }, alerts: { url: 'https://x.blob.core.windows.net/artifacts/monitoring/alerts.yaml', sha256: 'c'.repeat(64) } },
    };
    const withProxy = renderMonitoringCloudInit({ ...monitoring, frontDoorId: '5b2f8a31-7c4d-4e9a-8b1f-0d3e6c9a2f47', originTls: { secretName: 'monitoring-tls', thumbprint: 'D'.repeat(40) } });
    expect(withProxy).to.include('/etc/signet-monitoring/nginx/signet-grafana.conf');
    validate('monitoring.yaml', withProxy);
    validate('monitoring-private.yaml', renderMonitoringCloudInit(monitoring));
  });

  it('refuses a broken document, so the validator is really looking', function () {
    if (!has('cloud-init')) this.skip();
    const file = path.join(dir, 'broken.yaml');
    writeFileSync(file, '#cloud-config\nwrite_files: not-a-list\nruncmd: 42\n');
    const result = spawnSync('cloud-init', ['schema', '--config-file', file], { encoding: 'utf8' });
    expect(result.status).to.not.equal(0);
  });

  it('keeps file modes and owners: scripts executable by root, nothing world-writable', function () {
    const doc = parse(renderNodeCloudInit(values)) as { write_files: { path: string; permissions: string; owner: string }[] };
    for (const f of doc.write_files) {
      expect(f.owner, f.path).to.equal('root:root');
      expect(Number.parseInt(f.permissions, 8) & 0o022, f.path).to.equal(0);
    }
    expect(doc.write_files.find((f) => f.path === '/usr/local/sbin/signet-install')?.permissions).to.equal('0755');
  });

  it('writes no secret into cloud-init (the node fetches its key from Key Vault)', function () {
    const text = renderNodeCloudInit(values);
    // No PEM block with content (the install script only names the markers it splits on).
    expect(text).to.not.match(/-----BEGIN [A-Z ]+-----\s*\n\s*[A-Za-z0-9+/=]{32,}/);
    expect(text).to.not.match(/password/i);
  });

  it('passes bash syntax checks for the install and converge scripts', function () {
    execFileSync('bash', ['-n', path.join(REPO_ROOT, 'infra/cloud-init/signet-install.sh')]);
    const converge = path.join(dir, 'converge.sh');
    writeFileSync(converge, renderConvergeScript(values));
    execFileSync('bash', ['-n', converge]);
    if (has('shellcheck')) execFileSync('shellcheck', ['-S', 'warning', path.join(REPO_ROOT, 'infra/cloud-init/signet-install.sh'), converge]);
  });

  it('passes bash and shellcheck for the monitoring setup script, with and without the Front Door proxy', function () {
    const files: string[] = [];
    for (const frontDoorId of ['5b2f8a31-7c4d-4e9a-8b1f-0d3e6c9a2f47', undefined]) {
      const doc = parse(renderMonitoringCloudInit({
        identityClientId: values.identityClientId, vaultUri: values.vaultUri, grafanaPasswordSecret: 'grafana-admin-password',
        grafanaImage: 'grafana/grafana-oss:11.6.0', grafanaRootUrl: 'https://signet-fabrikam-abc123.z01.azurefd.net/', tenantName: 'fabrikam', httpPort: 9025,
        scrapeTargets: ['10.40.0.4:9025'],
        files: { dashboard: { url: 'https://x.blob.core.windows.net/artifacts/monitoring/signet-dashboard.json', sha256: 'b'.repeat(64) }, alerts: { url: 'https://x.blob.core.windows.net/artifacts/monitoring/alerts.yaml', sha256: 'c'.repeat(64) } },
        ...(frontDoorId ? { frontDoorId, originTls: { secretName: 'monitoring-tls', thumbprint: 'D'.repeat(40) } } : {}),
      })) as { write_files: { path: string; content: string }[] };
      const setup = doc.write_files.find((f) => f.path === '/usr/local/sbin/signet-monitoring-setup')?.content ?? '';
      expect(setup.includes('nginx -t'), 'proxy set up only behind Front Door').to.equal(Boolean(frontDoorId));
      const file = path.join(dir, frontDoorId ? 'monitoring-setup.sh' : 'monitoring-setup-private.sh');
      writeFileSync(file, setup);
      execFileSync('bash', ['-n', file]);
      files.push(file);
      // identity tokens reach curl on stdin, never as arguments (any process can read /proc/*/cmdline)
      for (const script of [setup, readFileSync(path.join(REPO_ROOT, 'infra/cloud-init/signet-install.sh'), 'utf8')]) {
        expect(script).to.not.match(/-H\s+["']Authorization/);
        expect(script).to.match(/curl --config -/);
      }
    }
    if (!has('shellcheck')) this.skip(); // .ci/run installs shellcheck
    execFileSync('shellcheck', ['-S', 'warning', ...files]);
  });

  /** The converge script against a scratch root, with `install` (the install script's run) replaced by shell code. */
  function scratchConverge(root: string, install: string): string {
    const script = renderConvergeScript(values)
      .replace('cloud-init status --wait >/dev/null 2>&1 || true', ':')
      .replace('systemctl daemon-reload || true', ':')
      .replace(/^\/usr\/local\/sbin\/signet-install \|\| status=\$\?$/m, `{ ${install}; } || status=$?`)
      .replaceAll(/(install -d -m 0755 |> |chmod \S+ |mv )\//g, `$1${root}/`)
      .replaceAll(/ \/(usr|etc|run)\//g, ` ${root}/$1/`);
    expect(script, 'the install step was found and replaced').to.include(`{ ${install}; } || status=$?`);
    const file = path.join(root, 'converge-scratch.sh');
    mkdirSync(root, { recursive: true });
    writeFileSync(file, script);
    return file;
  }

  it('converge script rewrites exactly the cloud-init files, byte for byte', function () {
    const root = path.join(dir, 'root');
    execFileSync('bash', [scratchConverge(root, 'true')]);
    const doc = parse(renderNodeCloudInit(values)) as { write_files: { path: string; content: string }[] };
    for (const f of doc.write_files) {
      expect(execFileSync('cat', [path.join(root, f.path)]).toString(), f.path).to.equal(f.content);
      expect(existsSync(path.join(root, `${f.path}.prev`)), `${f.path}.prev`).to.equal(false);
    }
  });

  it('converge script puts the running version\'s files back when the install fails before switching versions, and keeps the new ones after', function () {
    const doc = parse(renderNodeCloudInit(values)) as { write_files: { path: string; content: string }[] };
    for (const switched of [false, true]) {
      const root = path.join(dir, switched ? 'root-switched' : 'root-failed');
      // a node running with its own files; a marker left from its last install
      mkdirSync(path.join(root, 'run'), { recursive: true });
      writeFileSync(path.join(root, 'run/signet-install.switched'), '');
      for (const f of doc.write_files) {
        mkdirSync(path.join(root, path.dirname(f.path)), { recursive: true });
        writeFileSync(path.join(root, f.path), `old ${f.path}\n`);
      }
      // the install fails: a download refused, or (switched) a new version or configuration that never became ready
      const install = switched ? `touch ${root}/run/signet-install.switched && false` : 'false';
      const result = spawnSync('bash', [scratchConverge(root, install)], { encoding: 'utf8' });
      expect(result.status).to.equal(1);
      for (const f of doc.write_files) {
        expect(readFileSync(path.join(root, f.path), 'utf8'), f.path).to.equal(switched ? f.content : `old ${f.path}\n`);
        expect(existsSync(path.join(root, `${f.path}.prev`)), `${f.path}.prev`).to.equal(false);
      }
      expect(result.stderr.includes("the running version's are back in place")).to.equal(!switched);
    }
  });

  function verifyUnit(dropIn: string): string[] {
    const unitDir = mkdtempSync(path.join(dir, 'unit-'));
    copyFileSync(path.join(REPO_ROOT, 'packaging/signet.service'), path.join(unitDir, 'signet.service'));
    mkdirSync(path.join(unitDir, 'signet.service.d'));
    writeFileSync(path.join(unitDir, 'signet.service.d', '10-signet-stack.conf'), dropIn);
    const result = spawnSync('systemd-analyze', ['verify', '--man=no', path.join(unitDir, 'signet.service')], { encoding: 'utf8' });
    // The binary itself is not installed on the build machine; everything else must be clean.
    return `${result.stdout}${result.stderr}`.split('\n').filter((l) => l.trim() && !/is not executable: No such file or directory/.test(l));
  }

  it('verifies the packaged systemd unit with the stack\'s drop-in (systemd-analyze verify)', function () {
    if (!existsSync(path.join(REPO_ROOT, 'packaging/signet.service')) || !has('systemd-analyze')) this.skip(); // .ci/run installs systemd
    const dropIn = systemdDropIn(values);
    expect(dropIn).to.include('ExecStart=/opt/signet/current/bin/signet serve --config /etc/signet/relay.yaml');
    expect(dropIn).to.include(`Environment=SIGNET_MANAGED_IDENTITY_CLIENT_ID=${values.identityClientId}`);
    expect(verifyUnit(dropIn)).to.deep.equal([]);
    // The verifier does read the drop-in: a bad key in it is reported.
    expect(verifyUnit(`${dropIn}NotAKey=1\n`).join('\n')).to.match(/Unknown key 'NotAKey'/);
  });
});

describe('node relay config', () => {
  const base = {
    certificateDomain: 'fabrikam.relay.signet-msp.example', httpPort: 9025, downstreamHost: 'fabrikam-com.mail.protection.outlook.com',
    configBundleUrl: 'https://stfabrikam.blob.core.windows.net/config/org-config.sealed', orgKeyId: 'https://kv-fabrikam.vault.azure.net/keys/org-key',
    identityClientId: '22222222-2222-2222-2222-222222222222', azureTenantId: '33333333-3333-3333-3333-333333333333',
    exchangeOnlineRanges: ['40.92.0.0/15'], directoryRefreshMinutes: 15,
  };

  it('is accepted by the relay and reads Graph with the node identity by default', () => {
    const config = parseRelayConfig(parse(renderRelayConfig(base)), 'relay.yaml', '/etc/signet');
    expect(config.directory.graph).to.deep.include({ tenantId: base.azureTenantId, clientId: base.identityClientId, refreshSeconds: 900 });
    expect(config.directory.graph?.app).to.equal(undefined);
    // the shared Exchange Online certificate does not tell tenants apart: the stamped tenant id is checked
    expect(config.tenantId).to.equal(base.azureTenantId);
    expect(parseRelayConfig(parse(renderRelayConfig({ ...base, tenantCheck: false })), 'relay.yaml', '/etc/signet').tenantId).to.equal(undefined);
  });

  it('reads Graph as the customer-consented app when one is configured, its secret in the vault', () => {
    const graphApp = { clientId: '44444444-4444-4444-4444-444444444444', secretUrl: 'https://kv-fabrikam.vault.azure.net/secrets/graph-app-secret' };
    const config = parseRelayConfig(parse(renderRelayConfig({ ...base, graphApp })), 'relay.yaml', '/etc/signet');
    expect(config.directory.graph?.app).to.deep.include({ clientId: graphApp.clientId, secret: graphApp.secretUrl });
  });
});
