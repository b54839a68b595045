// Renders what a processing node (and the monitoring VM) is given at first
// boot: a cloud-config document built as data and serialized by the `yaml`
// library (no string templating, so no value can break the YAML), carrying
// the static install script from this folder and the per-node files.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';

export interface NodeFile {
  path: string;
  content: string;
  permissions: string;
  owner?: string;
}

export interface NodeValues {
  nodeName: string;
  nodeFqdn: string;
  version: string;
  artifactUrl: string;
  artifactSha256: string;
  identityClientId: string;
  vaultUri: string;
  tlsSecretName: string;
  /** SHA-1 thumbprint the fetched certificate must have: the stack's registry entry for this node. */
  tlsThumbprint: string;
  httpPort: number;
  /** /etc/signet/relay.yaml, already serialized. */
  relayConfigYaml: string;
}

export const INSTALL_SCRIPT_PATH = '/usr/local/sbin/signet-install';

export function installScript(): string {
  return readFileSync(path.join(__dirname, 'signet-install.sh'), 'utf8');
}

/** Single-quoted for a shell `. file`; values are URLs, GUIDs and names, quoted anyway. */
function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

export function nodeEnvFile(v: NodeValues): string {
  const entries: [string, string][] = [
    ['SIGNET_NODE_NAME', v.nodeName],
    ['SIGNET_NODE_FQDN', v.nodeFqdn],
    ['SIGNET_VERSION', v.version],
    ['SIGNET_ARTIFACT_URL', v.artifactUrl],
    ['SIGNET_ARTIFACT_SHA256', v.artifactSha256],
    ['SIGNET_IDENTITY_CLIENT_ID', v.identityClientId],
    ['SIGNET_VAULT_URI', v.vaultUri],
    ['SIGNET_TLS_SECRET', v.tlsSecretName],
    ['SIGNET_TLS_THUMBPRINT', v.tlsThumbprint],
    ['SIGNET_HTTP_PORT', String(v.httpPort)],
  ];
  return `# Written by the tenant's Pulumi stack; read by ${INSTALL_SCRIPT_PATH}.\n${entries.map(([k, val]) => `${k}=${shellQuote(val)}`).join('\n')}\n`;
}

export const SYSTEMD_DROP_IN_PATH = '/etc/systemd/system/signet.service.d/10-signet-stack.conf';

/** Where a version is installed; `current` links to the running one (old versions stay for rollback). */
export const INSTALL_ROOT = '/opt/signet';

/**
 * Adapts the packaged unit to a node: runs the current version from its
 * versioned folder and tells the relay which user-assigned identity is its own.
 * The packaged unit's hardening stays as it is.
 */
export function systemdDropIn(v: NodeValues): string {
  return [
    "# Written by the tenant's Pulumi stack.",
    '[Service]',
    'ExecStart=',
    `ExecStart=${INSTALL_ROOT}/current/bin/signet serve --config /etc/signet/relay.yaml`,
    `Environment=SIGNET_MANAGED_IDENTITY_CLIENT_ID=${v.identityClientId}`,
    '',
  ].join('\n');
}

export function nodeFiles(v: NodeValues): NodeFile[] {
  return [
    { path: INSTALL_SCRIPT_PATH, content: installScript(), permissions: '0755', owner: 'root:root' },
    { path: '/etc/signet/node.env', content: nodeEnvFile(v), permissions: '0600', owner: 'root:root' },
    // The install script hands it to the service group (which exists only once the package is installed).
    { path: '/etc/signet/relay.yaml', content: v.relayConfigYaml, permissions: '0640', owner: 'root:root' },
    { path: SYSTEMD_DROP_IN_PATH, content: systemdDropIn(v), permissions: '0644', owner: 'root:root' },
  ];
}

/** The node's cloud-config (`#cloud-config` document). */
export function renderNodeCloudInit(v: NodeValues): string {
  const doc = {
    package_update: true,
    packages: ['curl', 'ca-certificates', 'openssl', 'python3'],
    ssh_pwauth: false,
    disable_root: true,
    write_files: nodeFiles(v).map((f) => ({ path: f.path, content: f.content, permissions: f.permissions, owner: f.owner ?? 'root:root' })),
    runcmd: [[INSTALL_SCRIPT_PATH]],
  };
  return `#cloud-config\n${stringify(doc, { lineWidth: 0 })}`;
}

/**
 * The Run Command script that converges a running node to the stack's values:
 * waits for first-boot cloud-init, rewrites the files, reinstalls. Upgrades
 * and config changes go through here, one node at a time.
 */
export function renderConvergeScript(v: NodeValues): string {
  return filesThenRun(nodeFiles(v), INSTALL_SCRIPT_PATH);
}

/** A Run Command script: wait for first boot, rewrite `files` exactly as cloud-init wrote them, run `command`. */
function filesThenRun(files: NodeFile[], command: string): string {
  const writes = files.map((f) => {
    const b64 = Buffer.from(f.content, 'utf8').toString('base64');
    return `install -d -m 0755 ${path.posix.dirname(f.path)}\necho '${b64}' | base64 -d > ${f.path}.new\nchmod ${f.permissions} ${f.path}.new\nmv ${f.path}.new ${f.path}`;
  });
  return [
    '#!/bin/bash',
    'set -euo pipefail',
    '# Let first-boot provisioning finish before converging (it runs the same command).',
    'cloud-init status --wait >/dev/null 2>&1 || true',
    ...writes,
    `exec ${command}`,
    '',
  ].join('\n');
}

export interface MonitoringValues {
  identityClientId: string;
  vaultUri: string;
  grafanaPasswordSecret: string;
  grafanaImage: string;
  /** Grafana's public URL (Front Door), for its redirects and links. */
  grafanaRootUrl: string;
  /** name → { url, sha256 } of the dashboard and alert rules in blob storage. */
  files: { dashboard: { url: string; sha256: string }; alerts: { url: string; sha256: string } };
  scrapeTargets: string[];
  httpPort: number;
  tenantName: string;
}

export function prometheusConfig(v: MonitoringValues): string {
  return stringify({
    global: { scrape_interval: '30s', evaluation_interval: '30s', external_labels: { tenant: v.tenantName } },
    rule_files: ['/etc/prometheus/rules/*.yaml'],
    scrape_configs: [{
      job_name: 'signet',
      metrics_path: '/metrics',
      static_configs: [{ targets: v.scrapeTargets, labels: { tenant: v.tenantName } }],
    }],
  });
}

export function monitoringFiles(v: MonitoringValues): NodeFile[] {
  const datasource = stringify({
    apiVersion: 1,
    datasources: [{ name: 'Prometheus', uid: 'prometheus', type: 'prometheus', access: 'proxy', url: 'http://127.0.0.1:9090', isDefault: true }],
  });
  const dashboards = stringify({
    apiVersion: 1,
    providers: [{ name: 'signet', type: 'file', disableDeletion: true, allowUiUpdates: false, options: { path: '/var/lib/signet-monitoring/dashboards' } }],
  });
  return [
    { path: '/etc/prometheus/prometheus.yml', content: prometheusConfig(v), permissions: '0644' },
    { path: '/etc/signet-monitoring/grafana/provisioning/datasources/prometheus.yaml', content: datasource, permissions: '0644' },
    { path: '/etc/signet-monitoring/grafana/provisioning/dashboards/signet.yaml', content: dashboards, permissions: '0644' },
    { path: MONITORING_SETUP_PATH, content: monitoringSetupScript(v), permissions: '0755' },
  ];
}

/** Fetches the repository's dashboard and alert rules with the VM's identity, then (re)starts Prometheus and Grafana. */
function monitoringSetupScript(v: MonitoringValues): string {
  const q = shellQuote;
  return `#!/bin/bash
set -euo pipefail
token() { curl -fsS --retry 10 --retry-delay 15 -H 'Metadata: true' "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=$1&client_id=${v.identityClientId}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'; }
# the bearer token goes to curl on stdin, never on its command line (readable in /proc by any process)
bearer() { printf 'header = "Authorization: Bearer %s"\\n' "$(token "$1")"; }
# GET with a bearer token into a file. The VM's roles are granted just before it boots and Azure RBAC
# takes minutes to reach Storage and Key Vault: their 401/403 answers are retried for 15 minutes.
get() { # resource url destination [curl options]
  local resource=$1 url=$2 out=$3 status deadline=$((SECONDS + 900))
  shift 3
  while :; do
    status=$(bearer "$resource" | curl --config - -sS --retry 5 -o "$out" -w '%{http_code}' "$@" "$url") || status=000
    case "$status" in
      2??) return 0 ;;
      401|403) [ "$SECONDS" -lt "$deadline" ] || { echo "access to $url still denied (HTTP $status)" >&2; return 1; }; sleep "\${RETRY_SECONDS:-15}" ;;
      *) echo "HTTP $status from $url" >&2; return 1 ;;
    esac
  done
}
fetch() { # url sha256 destination
  get https://storage.azure.com/ "$1" "$3.new" -H 'x-ms-version: 2023-11-03'
  echo "$2  $3.new" | sha256sum --check --status || { echo "checksum mismatch for $1" >&2; exit 1; }
  mv "$3.new" "$3"
}
install -d -m 0755 /etc/prometheus/rules /var/lib/signet-monitoring/dashboards
fetch ${q(v.files.alerts.url)} ${q(v.files.alerts.sha256)} /etc/prometheus/rules/signet.yaml
fetch ${q(v.files.dashboard.url)} ${q(v.files.dashboard.sha256)} /var/lib/signet-monitoring/dashboards/signet-dashboard.json
promtool check config /etc/prometheus/prometheus.yml
systemctl enable prometheus
systemctl restart prometheus
umask 077
secret_file=$(mktemp)
get https://vault.azure.net ${q(`${v.vaultUri.replace(/\/+$/, '')}/secrets/${v.grafanaPasswordSecret}?api-version=7.4`)} "$secret_file"
password=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["value"])' "$secret_file")
rm -f "$secret_file"
printf 'GF_SECURITY_ADMIN_PASSWORD=%s\\nGF_SERVER_ROOT_URL=%s\\nGF_AUTH_ANONYMOUS_ENABLED=false\\nGF_USERS_ALLOW_SIGN_UP=false\\nGF_ANALYTICS_REPORTING_ENABLED=false\\n' "$password" ${q(v.grafanaRootUrl)} > /etc/signet-monitoring/grafana.env
docker rm -f grafana >/dev/null 2>&1 || true
docker run -d --name grafana --restart unless-stopped --network host --env-file /etc/signet-monitoring/grafana.env \\
  -v /etc/signet-monitoring/grafana/provisioning:/etc/grafana/provisioning:ro \\
  -v /var/lib/signet-monitoring/dashboards:/var/lib/signet-monitoring/dashboards:ro \\
  ${q(v.grafanaImage)}
`;
}

export const MONITORING_SETUP_PATH = '/usr/local/sbin/signet-monitoring-setup';

/** Re-applies the monitoring files (new dashboard, rules, scrape targets) on the running VM. */
export function renderMonitoringConvergeScript(v: MonitoringValues): string {
  return filesThenRun(monitoringFiles(v), MONITORING_SETUP_PATH);
}

export function renderMonitoringCloudInit(v: MonitoringValues): string {
  const doc = {
    package_update: true,
    // Ubuntu's prometheus package (with promtool) and Ubuntu's Docker engine package (named docker.io);
    // Grafana runs as a pinned container image.
    packages: ['curl', 'ca-certificates', 'python3', 'prometheus', 'docker.io'],
    ssh_pwauth: false,
    disable_root: true,
    write_files: monitoringFiles(v).map((f) => ({ path: f.path, content: f.content, permissions: f.permissions, owner: f.owner ?? 'root:root' })),
    runcmd: [[MONITORING_SETUP_PATH]],
  };
  return `#cloud-config\n${stringify(doc, { lineWidth: 0 })}`;
}
