// Typed, validated stack configuration for one customer tenant.
//
// Every value lives under the `signet:` namespace of the tenant's stack file
// (Pulumi.<tenant>.yaml). A bad value stops `pulumi preview` before any
// resource is planned, with a message that names the key, e.g.
// `signet:nodeCount: must be at least 2 ...`.
import * as pulumi from '@pulumi/pulumi';
import { isIP } from 'node:net';
import { z } from 'zod';

export const CONFIG_NAMESPACE = 'signet';

/**
 * Exchange Online Protection's published ranges for SMTP (Microsoft 365 URLs
 * and IP address ranges, Exchange Online endpoint set ID 10, TCP 25).
 * Microsoft changes them through its endpoints web service: operators should
 * refresh `signet:exchangeOnlineRanges` from there rather than rely on this default.
 */
export const EXCHANGE_ONLINE_RANGES: readonly string[] = [
  '40.92.0.0/15',
  '40.107.0.0/16',
  '52.100.0.0/14',
  '104.47.0.0/17',
  '2a01:111:f400::/48',
  '2a01:111:f403::/48',
];

const dnsName = /^(?=.{1,253}$)(?!-)([a-z0-9-]{1,63}(?<!-)\.)+[a-z]{2,63}$/;

function isCidr(value: string): boolean {
  const [address, prefix, ...rest] = value.split('/');
  if (rest.length > 0 || address === undefined) return false;
  const family = isIP(address);
  if (family === 0) return false;
  if (prefix === undefined) return true; // a single address
  if (!/^\d{1,3}$/.test(prefix)) return false;
  const bits = Number(prefix);
  return family === 4 ? bits >= 0 && bits <= 32 : bits >= 0 && bits <= 128;
}

const cidr = z.string().refine(isCidr, { message: 'must be an IPv4/IPv6 address or CIDR range' });
const ipv4Cidr = z.string().refine((v) => isCidr(v) && isIP(v.split('/')[0] ?? '') === 4, { message: 'must be an IPv4 CIDR range' });

/** Private and local IPv4 blocks (RFC 1918, shared CGNAT space, loopback, link-local, "this network"): never an operator's public egress. */
const NON_PUBLIC_IPV4 = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '0.0.0.0/8'];

/**
 * Private IPv4 space a VPN, a Bastion or a jump host brings operators in from: RFC 1918, and the shared
 * (CGNAT) range 100.64.0.0/10 some VPNs give their clients. What `privateOperatorRanges` opens answers plain
 * HTTP (a private Grafana, the nodes' health port), so it is never opened to an address that could be on
 * the internet.
 */
const PRIVATE_IPV4 = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10'];

function ipv4Overlaps(a: string, b: string): boolean {
  const x = ipv4Range(a);
  const y = ipv4Range(b);
  return x.first <= y.last && y.first <= x.last;
}

/** Ranges that would open a port to the whole internet. */
const ANY_SOURCE = new Set(['*', '0.0.0.0/0', '::/0', 'internet', 'any']);
/** An Azure subnet's resource id. */
const SUBNET_ID = /^\/subscriptions\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\/resourceGroups\/[-\w.()]{1,90}\/providers\/Microsoft\.Network\/virtualNetworks\/[-\w.]{2,64}\/subnets\/[-\w.]{1,80}$/i;

const certificatesSchema = z.discriminatedUnion('mode', [
  z.strictObject({
    /** Development: a self-signed chain from @pulumi/tls. Exchange Online will not trust it. */
    mode: z.literal('selfSigned'),
    validityDays: z.number().int().min(7).max(825).default(90),
  }),
  z.strictObject({
    /**
     * Production: the runbook imports each node's public-CA certificate (PEM chain + key,
     * content type application/x-pem-file) into the vault under `secretName`; the stack only
     * reads the public certificate (to publish the thumbprint and expiry) from `certificateFile`.
     */
    mode: z.literal('imported'),
    nodes: z.array(z.strictObject({
      secretName: z.string().regex(/^[0-9a-zA-Z-]{1,127}$/, 'must be a Key Vault secret name (letters, digits, dashes)'),
      certificateFile: z.string().min(1),
    })).min(2),
  }),
]);

export const stackConfigSchema = z.strictObject({
  /** Microsoft Entra tenant id (GUID) of the customer. */
  tenantId: z.guid(),
  /** Short slug that names every resource of this tenant: lowercase letters, digits, dashes. */
  tenantName: z.string().regex(/^[a-z][a-z0-9-]{1,14}[a-z0-9]$/, 'must be 3-16 lowercase letters, digits or dashes, starting with a letter'),
  orgId: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be lowercase letters, digits and dashes'),
  acceptedDomains: z.array(z.string().toLowerCase().regex(dnsName, 'must be a DNS domain name')).min(1),
  /** Azure region, e.g. westeurope. */
  location: z.string().regex(/^[a-z0-9]+$/, 'must be an Azure region name such as westeurope'),
  zones: z.array(z.enum(['1', '2', '3'])).min(2, 'needs at least two availability zones').default(['1', '2', '3']),
  nodeCount: z.number({ error: 'must be a number' }).int('must be a whole number').min(2, 'must be at least 2 (one node per zone survives a zone or node loss)').max(20),
  nodeSize: z.string().regex(/^Standard_[A-Za-z0-9_]+$/, 'must be an Azure VM size such as Standard_B2s').default('Standard_B2s'),
  /** The tenant's unique certificate domain: what the inbound connector's TlsSenderCertificateName names. */
  certificateDomain: z.string().toLowerCase().regex(dnsName, 'must be a DNS name'),
  /**
   * What Exchange Online's outbound connector uses as its smart host; a CNAME to the Traffic Manager name.
   * Default: smtp.<certificateDomain>. Not the certificate domain itself: the tenant verifies that name with
   * a TXT record, and DNS allows no other record beside a CNAME.
   */
  smartHostName: z.string().toLowerCase().regex(dnsName, 'must be a DNS name').optional(),
  downstreamSmartHost: z.string().toLowerCase().regex(/^[a-z0-9-]+\.mail\.protection\.outlook\.com$/, 'must be <tenant>.mail.protection.outlook.com'),
  exchangeOnlineRanges: z.array(cidr).min(1).default([...EXCHANGE_ONLINE_RANGES])
    .refine((list) => !list.some((r) => ANY_SOURCE.has(r.toLowerCase())), { message: 'must not contain an any-source range' }),
  /**
   * Relay only mail stamped with this tenant's id (X-MS-Exchange-CrossTenant-Id): every Microsoft 365 tenant
   * presents the same client certificate. Turn off only as a stopgap if Exchange Online stops stamping it
   * (mail is then deferred with reason no-tenant-header, never bounced).
   */
  tenantCheck: z.boolean({ error: 'must be true or false' }).default(true),
  /**
   * Operators' public ranges: allowed through the Key Vault and storage firewalls (the machine running `pulumi up`
   * must be in them) and to the nodes' health port (`signet status --via fqdn`). Private ones (a VPN, a Bastion
   * subnet, a jump host's subnet) go in `privateOperatorRanges`.
   */
  operatorRanges: z.array(ipv4Cidr).default([])
    .refine((list) => !list.some((r) => r === '0.0.0.0/0'), { message: 'must not contain 0.0.0.0/0' })
    // the vault and storage firewalls take public addresses only (a private one is refused at deploy time)
    .refine((list) => !list.some((r) => r !== '0.0.0.0/0' && NON_PUBLIC_IPV4.some((p) => ipv4Overlaps(r, p))), { message: 'must be public addresses (the Key Vault and storage firewalls refuse private ranges such as 10.0.0.0/8; a VPN\'s or jump host\'s private range goes in signet:privateOperatorRanges)' }),
  /**
   * Where operators come in privately: the private source ranges of a VPN (its client pool, or the on-premises
   * ranges of a site-to-site connection), of an Azure Bastion subnet (Standard SKU, `az network bastion tunnel`)
   * or of a jump host's subnet, in a network that reaches the tenant's VNet (a peering to the operator's hub;
   * the stack creates neither). Two NSG rules admit them, each to one read-only HTTP port and nothing else (no
   * SMTP, no SSH):
   * - the node NSG to the health/metrics port (`httpPort`: /readyz, /metrics), on the nodes' private addresses:
   *   what `signet status --via private` reads; always;
   * - the monitoring NSG to Grafana's port (TCP 3000, plain HTTP on its private address, `dashboardUrl`), only
   *   while Grafana is private (not published through Front Door, whose origin answers only this stack's
   *   profile; a published Grafana is reached at its Front Door address from anywhere).
   * Private IPv4 only (RFC 1918, 100.64.0.0/10), outside the node subnet; unlike `operatorRanges` they open no
   * Key Vault or storage firewall. Empty (the default): nothing reaches the nodes or a private Grafana privately.
   */
  privateOperatorRanges: z.array(ipv4Cidr
    .refine((r) => !isCidr(r) || isIP(r.split('/')[0] ?? '') !== 4 || PRIVATE_IPV4.some((p) => within(ipv4Range(r), ipv4Range(p))), {
      message: 'must be a private range (inside 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 or 100.64.0.0/10: a VPN\'s client or on-premises range, a Bastion or jump host subnet); the ports it opens answer plain HTTP and are never opened to internet addresses (public ones go in signet:operatorRanges)',
    })).default([]),
  /**
   * Subnets of a Kubernetes cluster that runs this tenant's relay (`infra/k8s`), by resource id: the Key Vault and
   * storage firewalls admit them as they admit the node subnet, so the pods can read the node certificate and the
   * config bundle. Each needs the Microsoft.KeyVault and Microsoft.Storage service endpoints (without them the
   * deployment fails and says so). IP rules cannot stand in: the storage firewall ignores them for callers in the
   * account's own region. Empty (the default): only the stack's own subnets.
   */
  clusterSubnetIds: z.array(z.string().regex(SUBNET_ID, 'must be a subnet resource id: /subscriptions/<subscription id>/resourceGroups/<group>/providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>')).default([])
    .refine((list) => new Set(list.map((id) => id.toLowerCase())).size === list.length, { message: 'lists a subnet twice' }),
  /**
   * Operators (users, groups or a CI service principal) who seal and publish the org config and
   * import certificates: Crypto User on the org key and its signing key, Secrets Officer on the vault, Blob Data
   * Contributor on the config container. Nothing else; no subscription-wide grant.
   */
  operatorPrincipals: z.array(z.strictObject({
    objectId: z.guid(),
    type: z.enum(['User', 'Group', 'ServicePrincipal']),
  })).default([]),
  applianceVersion: z.string().regex(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/, 'must be a semantic version such as 0.1.0'),
  /** The packaged appliance built by `npm run package`. */
  applianceArtifactPath: z.string().min(1),
  sshPublicKey: z.string().regex(/^(ssh-rsa|ssh-ed25519|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+( .*)?$/, 'must be an OpenSSH public key line'),
  adminUsername: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/).refine((u) => !['root', 'admin', 'administrator'].includes(u), { message: 'is reserved on Azure' }).default('signetops'),
  /** The relay's HTTP port for /metrics, /healthz, /readyz. */
  httpPort: z.number().int().min(1024).max(65535).default(9025),
  vnetCidr: ipv4Cidr.default('10.40.0.0/24'),
  nodeSubnetCidr: ipv4Cidr.default('10.40.0.0/26'),
  monitoringSubnetCidr: ipv4Cidr.default('10.40.0.64/27'),
  keyVaultSku: z.enum(['premium', 'standard']).default('premium'),
  certificates: certificatesSchema.default({ mode: 'selfSigned', validityDays: 90 }),
  monitoring: z.strictObject({
    enabled: z.boolean().default(true),
    vmSize: z.string().regex(/^Standard_[A-Za-z0-9_]+$/).default('Standard_B2s'),
    /**
     * Front Door (HTTPS) in front of Grafana; off → Grafana has no public listener (reach it privately, from
     * `privateOperatorRanges`). Takes effect only with `originCertificate` (see grafanaFrontDoorOrigin): without
     * one, a selfSigned stack keeps Grafana private and `pulumi up` warns.
     */
    frontDoor: z.boolean().default(true),
    grafanaImage: z.string().default('grafana/grafana-oss:11.6.0'),
    /**
     * The name Front Door connects to (TLS server name, Host header, certificate name check) on Grafana's
     * origin: a CNAME to the monitoring VM's DNS name, in a zone the operator controls (a public CA certifies
     * that name, not Azure's). Required with `originCertificate`, the name that certificate is for.
     */
    originHostName: z.string().toLowerCase().regex(dnsName, 'must be a DNS name').optional(),
    /**
     * Grafana's origin certificate from a public CA (Front Door trusts no other on an origin), imported by the
     * runbook like the node certificates: PEM chain + key in the vault secret `secretName`, the public
     * certificate in `certificateFile`. Required with imported certificates and Front Door; optional with
     * selfSigned ones (the development CA issues none, as Front Door would refuse it).
     */
    originCertificate: z.strictObject({
      secretName: z.string().regex(/^[0-9a-zA-Z-]{1,127}$/, 'must be a Key Vault secret name (letters, digits, dashes)').default('monitoring-tls'),
      certificateFile: z.string().min(1),
    }).optional(),
  }).default({ enabled: true, vmSize: 'Standard_B2s', frontDoor: true, grafanaImage: 'grafana/grafana-oss:11.6.0' }),
  /**
   * Where Azure Monitor sends its alerts on the VMs' availability (email addresses, compared without case, each
   * once). Non-empty: one action group (`ag-signet-<tenant>`) with these addresses, one metric alert per VM
   * (every relay node, and the monitoring VM) on the platform metric VmAvailabilityMetric, one more per burstable
   * (B-series) VM on its CPU credits running out, and one activity log alert on those VMs for a power-off, deallocation or deletion through Azure (which leaves no metric value).
   * Azure evaluates them, not the monitoring VM's Prometheus: they still fire when that VM (or its Prometheus) is
   * down. Empty (the default): none of these, and `pulumi up` warns that nothing outside the monitoring VM
   * watches the VMs.
   */
  alertEmails: z.array(z.string().trim().toLowerCase().pipe(z.email({ error: 'must be an email address such as ops@msp.example' })))
    .max(100, 'must list at most 100 addresses')
    .default([])
    .transform((list) => [...new Set(list)]),
  /**
   * The tenant's Log Analytics workspace, which keeps the Key Vault's audit log (every secret, key and
   * certificate operation, who did it and from where). PerGB2018: billed by ingestion, the first 31 days
   * of retention included; longer retention is billed per GB a month.
   */
  auditLogs: z.strictObject({
    retentionDays: z.number({ error: 'must be a number of days' }).int('must be a whole number').min(30, 'must be at least 30 days').max(730, 'must be at most 730 days').default(90),
  }).default({ retentionDays: 90 }),
  directory: z.strictObject({
    /** How often the relay refreshes the directory from Microsoft Graph (delta query). */
    refreshMinutes: z.number().int().min(1).max(1440).default(15),
    /**
     * The Graph app the customer consented to (application id), when the nodes'
     * managed identities live in another tenant than the customer's (an MSP
     * subscription): nodes then read Graph as this app, with its client secret
     * from the vault secret `graphAppSecretName` (stored by the onboarding runbook).
     */
    graphAppClientId: z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'an application (client) id GUID').optional(),
    graphAppSecretName: z.string().regex(/^[A-Za-z0-9-]{1,127}$/).default('graph-app-secret'),
  }).default({ refreshMinutes: 15, graphAppSecretName: 'graph-app-secret' }),
  tags: z.record(z.string(), z.string()).default({}),
}).superRefine((c, ctx) => {
  if (c.certificates.mode === 'imported' && c.certificates.nodes.length !== c.nodeCount) {
    ctx.addIssue({ code: 'custom', path: ['certificates'], message: `lists ${c.certificates.nodes.length} node certificates but nodeCount is ${c.nodeCount}` });
  }
  const vnet = ipv4Range(c.vnetCidr);
  const nodes = ipv4Range(c.nodeSubnetCidr);
  const monitoring = ipv4Range(c.monitoringSubnetCidr);
  if (!within(nodes, vnet)) ctx.addIssue({ code: 'custom', path: ['nodeSubnetCidr'], message: `is not inside vnetCidr ${c.vnetCidr}` });
  if (!within(monitoring, vnet)) ctx.addIssue({ code: 'custom', path: ['monitoringSubnetCidr'], message: `is not inside vnetCidr ${c.vnetCidr}` });
  if (nodes.first <= monitoring.last && monitoring.first <= nodes.last) ctx.addIssue({ code: 'custom', path: ['monitoringSubnetCidr'], message: `overlaps nodeSubnetCidr ${c.nodeSubnetCidr}` });
  // Azure keeps 5 addresses of every subnet; nodes take fixed addresses from .4 on.
  if (nodes.last - nodes.first + 1 < c.nodeCount + 5) ctx.addIssue({ code: 'custom', path: ['nodeSubnetCidr'], message: `is too small for ${c.nodeCount} nodes` });
  const m = c.monitoring;
  if (m.enabled && m.frontDoor && c.certificates.mode === 'imported' && !m.originCertificate) {
    ctx.addIssue({ code: 'custom', path: ['monitoring', 'originCertificate'], message: 'is required with imported certificates and Front Door: Front Door accepts only a public CA\'s certificate on Grafana\'s origin' });
  }
  c.privateOperatorRanges.forEach((range, i) => {
    // the relay nodes are not operators: they must not reach Grafana, nor each other's health port through this rule
    if (ipv4Overlaps(range, c.nodeSubnetCidr)) ctx.addIssue({ code: 'custom', path: ['privateOperatorRanges', i], message: `${range} overlaps nodeSubnetCidr ${c.nodeSubnetCidr}: the relay nodes are not operators (they must not reach Grafana, and their health port needs no rule for them)` });
  });
  if (new Set(c.privateOperatorRanges).size !== c.privateOperatorRanges.length) {
    ctx.addIssue({ code: 'custom', path: ['privateOperatorRanges'], message: 'lists a range twice' });
  }
  if (m.originCertificate && !m.originHostName) {
    ctx.addIssue({ code: 'custom', path: ['monitoring', 'originHostName'], message: 'is required with monitoring.originCertificate: the name the certificate is for (a CNAME to the monitoring VM)' });
  }
  if (new Set(c.zones).size !== c.zones.length) {
    ctx.addIssue({ code: 'custom', path: ['zones'], message: 'lists a zone twice' });
  }
});

export type StackConfig = z.infer<typeof stackConfigSchema>;

/** First and last address of an IPv4 CIDR, as numbers (the schema has already checked the syntax). */
function ipv4Range(cidr: string): { first: number; last: number } {
  const [base, bits] = cidr.split('/');
  const value = (base ?? '0.0.0.0').split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
  const size = 2 ** (32 - Number(bits ?? 32));
  const first = value - (value % size);
  return { first, last: first + size - 1 };
}

function within(inner: { first: number; last: number }, outer: { first: number; last: number }): boolean {
  return inner.first >= outer.first && inner.last <= outer.last;
}

/** Keys read from the stack; objects and lists are YAML values in the stack file. */
const KEYS = Object.keys(stackConfigSchema.shape) as (keyof typeof stackConfigSchema.shape)[];

/** Validates raw values; throws a RunError naming the first bad key (`signet:<key>`). */
export function parseStackConfig(raw: Record<string, unknown>): StackConfig {
  const result = stackConfigSchema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const [key, ...rest] = issue.path.map(String);
    const where = key === undefined ? CONFIG_NAMESPACE : `${CONFIG_NAMESPACE}:${key}${rest.length ? ` (at ${rest.join('.')})` : ''}`;
    const missing = issue.code === 'invalid_type' && rest.length === 0 && key !== undefined && raw[key] === undefined;
    // a misspelt or retired setting would otherwise be dropped without a word, its default taking its place
    const unknown = issue.code === 'unrecognized_keys' ? `unknown ${issue.keys.length === 1 ? 'key' : 'keys'} ${issue.keys.map((k) => `"${k}"`).join(', ')} (misspelt, or a setting this version does not have: infra/config.ts lists them)` : undefined;
    const message = missing ? 'is required' : (unknown ?? issue.message);
    return `${where}: ${message}`;
  });
  throw new pulumi.RunError(`invalid stack configuration:\n  ${problems.join('\n  ')}`);
}

/** Reads every `signet:*` key of the current stack and validates it; a key the schema does not have is refused. */
export function loadStackConfig(config: pulumi.Config = new pulumi.Config(CONFIG_NAMESPACE)): StackConfig {
  const raw: Record<string, unknown> = {};
  const known = new Set<string>(KEYS);
  const prefix = `${CONFIG_NAMESPACE}:`;
  const unknown = Object.keys(pulumi.runtime.allConfig()).filter((k) => k.startsWith(prefix) && !known.has(k.slice(prefix.length)));
  for (const key of [...KEYS, ...unknown.map((k) => k.slice(prefix.length))]) {
    const text = config.get(key);
    if (text === undefined) continue;
    raw[key] = parseValue(text);
  }
  return parseStackConfig(raw);
}

/** Config values arrive as strings; structured values (lists, objects, numbers, booleans) as JSON. */
function parseValue(text: string): unknown {
  const trimmed = text.trim();
  if (/^[[{]/.test(trimmed) || /^-?\d+(\.\d+)?$/.test(trimmed) || trimmed === 'true' || trimmed === 'false') {
    try {
      return JSON.parse(trimmed) as unknown;
    } catch {
      return text; // left for the schema to refuse with the key's name
    }
  }
  return text;
}

/** Where Front Door reaches Grafana: the origin host it connects to and the operator's certificate for it. */
export interface GrafanaFrontDoorOrigin {
  hostName: string;
  /** The vault secret holding the certificate's PEM chain and key. */
  secretName: string;
  /** The public certificate, relative to the project root. */
  certificateFile: string;
}

/**
 * Whether (and where) the stack publishes Grafana through Front Door: monitoring and `frontDoor` on, with
 * an imported origin certificate. Front Door accepts only a publicly trusted certificate on an origin, so
 * without one a published dashboard would always fail; Grafana stays private instead. The one answer the
 * monitoring NSG, the origin certificate and the Monitoring component all follow.
 */
export function grafanaFrontDoorOrigin(config: Pick<StackConfig, 'monitoring'>): GrafanaFrontDoorOrigin | undefined {
  const m = config.monitoring;
  // originHostName comes with originCertificate (validation requires it)
  if (!m.enabled || !m.frontDoor || !m.originCertificate || !m.originHostName) return undefined;
  return { hostName: m.originHostName, secretName: m.originCertificate.secretName, certificateFile: m.originCertificate.certificateFile };
}

/**
 * The private source ranges the monitoring NSG admits to Grafana's port: `privateOperatorRanges` while Grafana
 * is private (monitoring on, not published through Front Door), none otherwise. Behind Front Door the origin
 * port answers only this stack's profile (every other request gets 403), so a rule for these ranges would open
 * a port that serves them nothing; they reach the published Grafana at its Front Door address like anyone. The
 * node NSG admits the same ranges to the health port whatever Grafana does.
 */
export function grafanaPrivateOperatorRanges(config: Pick<StackConfig, 'monitoring' | 'privateOperatorRanges'>): string[] {
  if (!config.monitoring.enabled || grafanaFrontDoorOrigin(config)) return [];
  return [...config.privateOperatorRanges];
}

/** How a private Grafana is reached, for the warning: from the configured ranges, or (none) not at all yet. */
function privateAccessHint(config: Pick<StackConfig, 'privateOperatorRanges'>): string {
  const ranges = config.privateOperatorRanges;
  return ranges.length
    ? `Meanwhile Grafana answers at dashboardUrl (its private address, plain HTTP) to signet:privateOperatorRanges only (${ranges.join(', ')}: a VPN, a Bastion or a jump host subnet)`
    : 'Meanwhile nothing reaches Grafana: to reach it privately, list the private source ranges of your VPN (client pool or on-premises ranges), of an Azure Bastion subnet or of a jump host\'s subnet in signet:privateOperatorRanges, and the monitoring NSG admits them to Grafana\'s port (the node NSG to the nodes\' health port)';
}

/** What `pulumi up` warns when Front Door is asked for but cannot work (no origin certificate); undefined otherwise. */
export function grafanaFrontDoorWarning(config: Pick<StackConfig, 'monitoring' | 'privateOperatorRanges'>): string | undefined {
  const m = config.monitoring;
  if (!m.enabled || !m.frontDoor || grafanaFrontDoorOrigin(config)) return undefined;
  return 'signet:monitoring: Grafana is not published through Front Door, and dashboardUrl is its private address: '
    + 'Front Door accepts only a public CA\'s certificate on its origin, and this stack has no signet:monitoring.originCertificate '
    + '(the development CA\'s would be refused). To publish the dashboard, import a public CA\'s certificate for '
    + 'signet:monitoring.originHostName (a CNAME to the monitoring VM\'s monitoringFqdn output) and name it in signet:monitoring.originCertificate '
    + `(runbooks/onboard-tenant.md, step 4). ${privateAccessHint(config)}; `
    + 'signet:monitoring.frontDoor: false keeps Grafana private on purpose and silences this warning.';
}

/**
 * What `pulumi up` warns when no address receives Azure Monitor's VM availability alerts (`alertEmails` empty):
 * every alert then comes from the monitoring VM's Prometheus, and nothing outside that VM watches the VMs.
 * Undefined when addresses are listed.
 */
export function vmAvailabilityAlertsWarning(config: Pick<StackConfig, 'alertEmails' | 'monitoring'>): string | undefined {
  if (config.alertEmails.length > 0) return undefined;
  const now = config.monitoring.enabled
    ? 'every alert comes from Prometheus on the monitoring VM, so if that VM (or its Prometheus) stops, no alert fires at all, and nothing outside it watches the relay nodes\' VMs'
    : 'monitoring is off, so nothing watches the relay nodes\' VMs at all';
  return `signet:alertEmails is empty: ${now}. List where alerts go (e.g. signet:alertEmails: [ops@msp.example]) and the stack `
    + 'adds an Azure Monitor action group, a VM availability alert (VmAvailabilityMetric) on every VM, a CPU-credit alert on '
    + 'every burstable one and an activity log alert '
    + 'on a VM powered off, deallocated or deleted through Azure, evaluated by Azure; '
    + 'route the SignetWatchdog alert to a dead man\'s switch as well (runbooks/README.md, "Where alerts link").';
}

/** The smart-host name Exchange Online connects to. */
export function smartHostOf(config: Pick<StackConfig, 'smartHostName' | 'certificateDomain'>): string {
  return config.smartHostName ?? `smtp.${config.certificateDomain}`;
}
