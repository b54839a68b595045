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
/** Created by the install script once it has switched `current` and the node's files are in use. */
export const INSTALL_SWITCHED_MARKER = '/run/signet-install.switched';

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
export function renderConvergeScript(v: NodeValues, vmId?: string): string {
  return filesThenRun(nodeFiles(v), INSTALL_SCRIPT_PATH, vmId, INSTALL_SWITCHED_MARKER);
}

/**
 * A Run Command script: wait for first boot, rewrite `files` exactly as cloud-init wrote them, run `command`.
 * `vmId` (the VM instance's id) makes the script differ on a rebuilt VM, so it is converged again: the
 * rebuild boots with the custom data of the first creation (ignored since), possibly an older version's.
 * With `switchedMarker`, a command that fails before it creates that file (a failed download, a wrong
 * checksum: nothing switched yet) gets the previous files back: the running version stays, and its
 * next start (a reboot) must not meet a newer version's relay.yaml and unit drop-in.
 */
function filesThenRun(files: NodeFile[], command: string, vmId?: string, switchedMarker?: string): string {
  const writes = files.map((f) => {
    const b64 = Buffer.from(f.content, 'utf8').toString('base64');
    return `install -d -m 0755 ${path.posix.dirname(f.path)}\necho '${b64}' | base64 -d > ${f.path}.new\nchmod ${f.permissions} ${f.path}.new\nmv ${f.path}.new ${f.path}`;
  });
  const head = [
    '#!/bin/bash',
    ...(vmId ? [`# Converges VM ${vmId}.`] : []),
    'set -euo pipefail',
    '# Let first-boot provisioning finish before converging (it runs the same command).',
    'cloud-init status --wait >/dev/null 2>&1 || true',
  ];
  if (!switchedMarker) return [...head, ...writes, `exec ${command}`, ''].join('\n');
  const list = files.map((f) => ` ${f.path}`).join('');
  return [
    ...head,
    '# Keep the files the running version was installed with, in case the install fails before switching versions.',
    `files=(${list} )`,
    'for f in "${files[@]}"; do if [ -e "$f" ]; then cp -p "$f" "$f.prev"; else rm -f "$f.prev"; fi; done',
    `rm -f ${switchedMarker}`,
    ...writes,
    'status=0',
    `${command} || status=$?`,
    `if [ "$status" -ne 0 ] && [ ! -e ${switchedMarker} ]; then`,
    '  for f in "${files[@]}"; do if [ -e "$f.prev" ]; then mv "$f.prev" "$f"; else rm -f "$f"; fi; done',
    '  systemctl daemon-reload || true',
    '  echo "signet-converge: the install failed before switching to the new files; the running version\'s are back in place" >&2',
    'fi',
    'for f in "${files[@]}"; do rm -f "$f.prev"; done',
    'exit "$status"',
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
  /**
   * The Front Door profile's id (`frontDoorId`), when Grafana is published
   * through Front Door: the origin port is then a reverse proxy that admits
   * only requests carrying it in X-Azure-FDID. Absent: no proxy, Grafana
   * listens on the origin port itself (private, on the VNet).
   */
  frontDoorId?: string;
  /**
   * Grafana's origin certificate, required with `frontDoorId` (Front Door reaches the origin over HTTPS only):
   * the vault secret holding its PEM chain and key, which the VM reads with its identity, and the SHA-1
   * thumbprint the stack registered for it. A new thumbprint re-runs the converge: the VM fetches the
   * secret again and reloads nginx.
   */
  originTls?: { secretName: string; thumbprint: string };
}

/** Grafana's port on the VM: Front Door's origin port (the NSG admits it only from AzureFrontDoor.Backend), or the private one. */
export const GRAFANA_ORIGIN_PORT = 3000;
/** Behind the proxy, Grafana listens on the loopback interface only, here. */
export const GRAFANA_LOOPBACK_PORT = 3001;
/** The proxy's site (Ubuntu's nginx includes conf.d/*.conf in its http block). */
export const GRAFANA_PROXY_CONF_PATH = '/etc/nginx/conf.d/signet-grafana.conf';
/**
 * Where cloud-init and the converge leave the site: the setup script moves it into conf.d once its
 * certificate is in place. Written straight into conf.d at first boot, it would name a certificate that
 * does not exist yet when the nginx package starts nginx, and the package's installation would fail.
 */
export const GRAFANA_PROXY_STAGED_PATH = '/etc/signet-monitoring/nginx/signet-grafana.conf';
/** The origin's certificate chain and key, fetched from the vault; the folder is root's alone (nginx reads them as root). */
export const GRAFANA_ORIGIN_TLS = { dir: '/etc/nginx/signet-tls', certificate: '/etc/nginx/signet-tls/origin.crt', key: '/etc/nginx/signet-tls/origin.key' } as const;
const THUMBPRINT = /^[0-9A-F]{40}$/;

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The Front Door id the proxy must check, refused unless it is a GUID (an empty one would admit requests without the header). */
function frontDoorIdOf(v: MonitoringValues): string | undefined {
  if (v.frontDoorId === undefined) return undefined;
  if (!GUID.test(v.frontDoorId)) throw new Error(`monitoring: the Front Door profile's id must be a GUID, got ${JSON.stringify(v.frontDoorId)}`);
  return v.frontDoorId;
}

/** The origin certificate behind Front Door: never an origin without one (Front Door forwards over HTTPS only). */
function originTlsOf(v: MonitoringValues): { secretName: string; thumbprint: string } {
  const tls = v.originTls;
  if (!tls) throw new Error('monitoring: Grafana\'s Front Door origin needs its certificate (originTls)');
  if (!/^[0-9a-zA-Z-]{1,127}$/.test(tls.secretName)) throw new Error(`monitoring: ${JSON.stringify(tls.secretName)} is not a Key Vault secret name`);
  if (!THUMBPRINT.test(tls.thumbprint)) throw new Error(`monitoring: the origin certificate's thumbprint must be 40 upper-case hex digits, got ${JSON.stringify(tls.thumbprint)}`);
  return tls;
}

/**
 * nginx in front of Grafana on Front Door's origin port, over TLS: Front Door's
 * leg to the origin crosses the internet, and Grafana's logins and session
 * cookies ride on it. The AzureFrontDoor.Backend service tag admits every
 * customer's Front Door, so anyone could point a profile of their own at this
 * origin: only requests whose X-Azure-FDID is our profile's id (Front Door adds
 * it to every request it forwards, health probes included) reach Grafana;
 * everything else gets 403. `tls` names the certificate files (tests point it
 * at throwaway ones).
 */
export function grafanaProxyConfig(frontDoorId: string, tls: { certificate: string; key: string } = GRAFANA_ORIGIN_TLS): string {
  if (!GUID.test(frontDoorId)) throw new Error(`monitoring: the Front Door profile's id must be a GUID, got ${JSON.stringify(frontDoorId)}`);
  return `# Written by the tenant's Pulumi stack: Grafana's Front Door origin.
# Only our Front Door profile's requests pass (X-Azure-FDID); other profiles
# reach this port through the same AzureFrontDoor.Backend service tag.
map $http_upgrade $signet_grafana_connection {
    default upgrade;
    '' close;
}

server {
    listen ${GRAFANA_ORIGIN_PORT} ssl default_server;
    server_name _;
    server_tokens off;

    # Front Door connects with TLS 1.2 or 1.3 and checks the certificate's name (the origin host).
    ssl_certificate ${tls.certificate};
    ssl_certificate_key ${tls.key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:signet_grafana_tls:1m;

    # Several X-Azure-FDID headers arrive joined into one value (nginx 1.23+), so they never match.
    if ($http_x_azure_fdid != "${frontDoorId}") {
        return 403;
    }

    location / {
        proxy_pass http://127.0.0.1:${GRAFANA_LOOPBACK_PORT};
        proxy_set_header Host $http_host;
        # Grafana Live (WebSocket)
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $signet_grafana_connection;
    }
}
`;
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
  const frontDoorId = frontDoorIdOf(v);
  return [
    { path: '/etc/prometheus/prometheus.yml', content: prometheusConfig(v), permissions: '0644' },
    { path: '/etc/signet-monitoring/grafana/provisioning/datasources/prometheus.yaml', content: datasource, permissions: '0644' },
    { path: '/etc/signet-monitoring/grafana/provisioning/dashboards/signet.yaml', content: dashboards, permissions: '0644' },
    ...(frontDoorId ? [{ path: GRAFANA_PROXY_STAGED_PATH, content: grafanaProxyConfig(frontDoorId), permissions: '0644' }] : []),
    { path: MONITORING_SETUP_PATH, content: monitoringSetupScript(v), permissions: '0755' },
  ];
}

/** Fetches the repository's dashboard and alert rules with the VM's identity, then (re)starts Prometheus, Grafana and, behind Front Door, its origin proxy. */
function monitoringSetupScript(v: MonitoringValues): string {
  const q = shellQuote;
  const frontDoorId = frontDoorIdOf(v);
  // Behind Front Door Grafana listens on loopback only, the proxy holding the origin port.
  const grafanaListen = frontDoorId ? `GF_SERVER_HTTP_ADDR=127.0.0.1\\nGF_SERVER_HTTP_PORT=${GRAFANA_LOOPBACK_PORT}\\n` : '';
  const grafanaPort = frontDoorId ? '' : `# No Front Door (any more): Grafana takes its port back from a proxy an earlier deployment set up.
if [ -e ${GRAFANA_PROXY_CONF_PATH} ]; then
  rm -f ${GRAFANA_PROXY_CONF_PATH}
  [ ! -x /usr/sbin/nginx ] || systemctl disable --now nginx
fi
rm -rf ${GRAFANA_ORIGIN_TLS.dir} ${GRAFANA_PROXY_STAGED_PATH}
`;
  const tls = frontDoorId ? originTlsOf(v) : undefined;
  const tlsUrl = tls ? `${v.vaultUri.replace(/\/+$/, '')}/secrets/${tls.secretName}?api-version=7.4` : '';
  const proxy = frontDoorId && tls ? `# Front Door's origin: nginx admits only our profile's requests (X-Azure-FDID) and proxies to Grafana.
# Installed here as well as at first boot, so a VM provisioned before the proxy existed gets it on its next converge
# (after Grafana has left the origin port, which the package starts nginx on).
umask 022
if [ ! -x /usr/sbin/nginx ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get -q -o DPkg::Lock::Timeout=600 update
  apt-get install -y -q -o DPkg::Lock::Timeout=600 nginx
fi
# The origin's certificate (chain + key) from the vault, the one secret this identity may read besides
# Grafana's password. Kept only if it is the certificate the stack registered and the key is its own.
umask 077
install -d -m 0700 -o root -g root ${GRAFANA_ORIGIN_TLS.dir}
tls_secret=$(mktemp)
get https://vault.azure.net ${q(tlsUrl)} "$tls_secret"
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["value"])' "$tls_secret" > "$tls_secret.pem"
rm -f "$tls_secret"
awk '/-----BEGIN CERTIFICATE-----/{p=1} p{print} /-----END CERTIFICATE-----/{p=0}' "$tls_secret.pem" > ${GRAFANA_ORIGIN_TLS.certificate}.new
awk '/-----BEGIN .*PRIVATE KEY-----/{p=1} p{print} /-----END .*PRIVATE KEY-----/{p=0}' "$tls_secret.pem" > ${GRAFANA_ORIGIN_TLS.key}.new
rm -f "$tls_secret.pem"
thumbprint=$(openssl x509 -noout -fingerprint -sha1 -in ${GRAFANA_ORIGIN_TLS.certificate}.new | cut -d= -f2 | tr -d ':' | tr 'a-f' 'A-F')
if [ "$thumbprint" != ${q(tls.thumbprint)} ]; then
  rm -f ${GRAFANA_ORIGIN_TLS.dir}/*.new
  echo "secret ${tls.secretName} holds certificate $thumbprint, but the stack registered ${tls.thumbprint} for Grafana's origin" >&2
  exit 1
fi
if [ "$(openssl x509 -noout -pubkey -in ${GRAFANA_ORIGIN_TLS.certificate}.new)" != "$(openssl pkey -pubout -in ${GRAFANA_ORIGIN_TLS.key}.new)" ]; then
  rm -f ${GRAFANA_ORIGIN_TLS.dir}/*.new
  echo "secret ${tls.secretName}: the private key is not the certificate's" >&2
  exit 1
fi
mv ${GRAFANA_ORIGIN_TLS.certificate}.new ${GRAFANA_ORIGIN_TLS.certificate}
mv ${GRAFANA_ORIGIN_TLS.key}.new ${GRAFANA_ORIGIN_TLS.key}
umask 022
rm -f /etc/nginx/sites-enabled/default
# The site goes live only with its certificate in place; a site nginx refuses gives the previous one back.
if [ -e ${GRAFANA_PROXY_CONF_PATH} ]; then cp -p ${GRAFANA_PROXY_CONF_PATH} ${GRAFANA_PROXY_CONF_PATH}.prev; else rm -f ${GRAFANA_PROXY_CONF_PATH}.prev; fi
install -m 0644 ${GRAFANA_PROXY_STAGED_PATH} ${GRAFANA_PROXY_CONF_PATH}
if ! /usr/sbin/nginx -t -q; then
  if [ -e ${GRAFANA_PROXY_CONF_PATH}.prev ]; then mv ${GRAFANA_PROXY_CONF_PATH}.prev ${GRAFANA_PROXY_CONF_PATH}; else rm -f ${GRAFANA_PROXY_CONF_PATH}; fi
  exit 1
fi
rm -f ${GRAFANA_PROXY_CONF_PATH}.prev
systemctl enable nginx
systemctl reload-or-restart nginx
` : '';
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
printf 'GF_SECURITY_ADMIN_PASSWORD=%s\\nGF_SERVER_ROOT_URL=%s\\n${grafanaListen}GF_AUTH_ANONYMOUS_ENABLED=false\\nGF_USERS_ALLOW_SIGN_UP=false\\nGF_ANALYTICS_REPORTING_ENABLED=false\\n' "$password" ${q(v.grafanaRootUrl)} > /etc/signet-monitoring/grafana.env
${grafanaPort}docker rm -f grafana >/dev/null 2>&1 || true
docker run -d --name grafana --restart unless-stopped --network host --env-file /etc/signet-monitoring/grafana.env \\
  -v /etc/signet-monitoring/grafana/provisioning:/etc/grafana/provisioning:ro \\
  -v /var/lib/signet-monitoring/dashboards:/var/lib/signet-monitoring/dashboards:ro \\
  ${q(v.grafanaImage)}
${proxy}`;
}

export const MONITORING_SETUP_PATH = '/usr/local/sbin/signet-monitoring-setup';

/** Re-applies the monitoring files (new dashboard, rules, scrape targets) on the running VM. */
export function renderMonitoringConvergeScript(v: MonitoringValues, vmId?: string): string {
  return filesThenRun(monitoringFiles(v), MONITORING_SETUP_PATH, vmId);
}

export function renderMonitoringCloudInit(v: MonitoringValues): string {
  const doc = {
    package_update: true,
    // Ubuntu's prometheus package (with promtool) and Ubuntu's Docker engine package (named docker.io);
    // Grafana runs as a pinned container image. Behind Front Door, Ubuntu's nginx guards Grafana's origin port.
    packages: ['curl', 'ca-certificates', 'openssl', 'python3', 'prometheus', 'docker.io', ...(frontDoorIdOf(v) ? ['nginx'] : [])],
    ssh_pwauth: false,
    disable_root: true,
    write_files: monitoringFiles(v).map((f) => ({ path: f.path, content: f.content, permissions: f.permissions, owner: f.owner ?? 'root:root' })),
    runcmd: [[MONITORING_SETUP_PATH]],
  };
  return `#cloud-config\n${stringify(doc, { lineWidth: 0 })}`;
}
