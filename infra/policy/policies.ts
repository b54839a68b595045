// Signet's guard rails as @pulumi/policy policies. Kept apart from the
// PolicyPack (index.ts) because constructing a PolicyPack starts the
// analyzer; tests call these validate functions directly.
import type { ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, StackValidationArgs, StackValidationPolicy } from '@pulumi/policy';

type Props = Record<string, unknown>;

const INTERNET_SOURCES = new Set(['*', 'internet', 'any', '0.0.0.0/0', '::/0', '0.0.0.0']);
const ADMIN_PORTS = [22, 3389];

/** Does an NSG port expression ("22", "20-30", "*") cover `port`? */
export function portRangeCovers(range: string, port: number): boolean {
  const trimmed = range.trim();
  if (trimmed === '*') return true;
  const [from, to] = trimmed.split('-').map((p) => Number(p.trim()));
  if (from === undefined || Number.isNaN(from)) return false;
  return to === undefined ? from === port : from <= port && port <= (Number.isNaN(to) ? from : to);
}

interface RuleLike {
  name?: string;
  direction?: string;
  access?: string;
  sourceAddressPrefix?: string;
  sourceAddressPrefixes?: string[];
  destinationPortRange?: string;
  destinationPortRanges?: string[];
}

/** The first of `candidates` that an inbound allow rule opens to the whole internet. */
function internetExposed(rule: RuleLike, candidates: number[]): number | undefined {
  if ((rule.direction ?? '').toLowerCase() !== 'inbound' || (rule.access ?? '').toLowerCase() !== 'allow') return undefined;
  const sources = [rule.sourceAddressPrefix, ...(rule.sourceAddressPrefixes ?? [])].filter((s): s is string => !!s);
  if (!sources.some((s) => INTERNET_SOURCES.has(s.toLowerCase()))) return undefined;
  const ports = [rule.destinationPortRange, ...(rule.destinationPortRanges ?? [])].filter((p): p is string => !!p);
  return candidates.find((port) => ports.some((range) => portRangeCovers(range, port)));
}

function exposesAdminPort(rule: RuleLike): number | undefined {
  return internetExposed(rule, ADMIN_PORTS);
}

function nsgRules(args: ResourceValidationArgs): RuleLike[] {
  return args.type === 'azure-native:network:NetworkSecurityGroup'
    ? ((args.props.securityRules as RuleLike[] | undefined) ?? [])
    : args.type === 'azure-native:network:SecurityRule' ? [args.props as RuleLike] : [];
}

export const noInternetSshRdp: ResourceValidationPolicy = {
  name: 'signet-no-internet-ssh-rdp',
  description: 'No NSG rule admits SSH (22) or RDP (3389) from the internet; operators use Run Command or Bastion.',
  enforcementLevel: 'mandatory',
  validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
    for (const rule of nsgRules(args)) {
      const port = exposesAdminPort(rule);
      if (port !== undefined) report(`rule ${rule.name ?? args.name} admits port ${port} from the internet`);
    }
  },
};

export const smtpNotFromInternet: ResourceValidationPolicy = {
  name: 'signet-smtp-exchange-online-only',
  description: 'No NSG rule admits SMTP (25) from the whole internet: only Exchange Online\'s published ranges may reach the relay.',
  enforcementLevel: 'mandatory',
  validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
    for (const rule of nsgRules(args)) {
      if (internetExposed(rule, [25]) !== undefined) report(`rule ${rule.name ?? args.name} admits SMTP (25) from the internet; allow only the Exchange Online ranges`);
    }
  },
};

export const keyVaultProtected: ResourceValidationPolicy = {
  name: 'signet-keyvault-purge-protection-rbac',
  description: 'Key Vaults use RBAC authorization, soft delete and purge protection, and deny network access by default.',
  enforcementLevel: 'mandatory',
  validateResource: (args, report) => {
    if (args.type !== 'azure-native:keyvault:Vault') return;
    const p = (args.props.properties ?? {}) as Props & { networkAcls?: { defaultAction?: string } };
    if (p.enableRbacAuthorization !== true) report('enableRbacAuthorization must be set to true (access policies are not used)');
    if (p.enablePurgeProtection !== true) report('enablePurgeProtection must be true: deleted keys stay recoverable, so config cannot be destroyed by mistake');
    if (p.enableSoftDelete === false) report('enableSoftDelete must not be false');
    if (Array.isArray(p.accessPolicies) && p.accessPolicies.length > 0) report('access policies are not allowed; use RBAC role assignments');
    if (p.networkAcls?.defaultAction !== 'Deny') report('networkAcls.defaultAction must be Deny');
  },
};

const TLS_SETTINGS: Record<string, { path: string[]; allowed: string[] }[]> = {
  'azure-native:storage:StorageAccount': [{ path: ['minimumTlsVersion'], allowed: ['TLS1_2', 'TLS1_3'] }],
  'azure-native:web:WebApp': [{ path: ['siteConfig', 'minTlsVersion'], allowed: ['1.2', '1.3'] }],
  'azure-native:redis:Redis': [{ path: ['minimumTlsVersion'], allowed: ['1.2', '1.3'] }],
  'azure-native:sql:Server': [{ path: ['minimalTlsVersion'], allowed: ['1.2', '1.3'] }],
  'azure-native:eventhub:Namespace': [{ path: ['minimumTlsVersion'], allowed: ['1.2', '1.3'] }],
  'azure-native:servicebus:Namespace': [{ path: ['minimumTlsVersion'], allowed: ['1.2', '1.3'] }],
};

export const tls12Minimum: ResourceValidationPolicy = {
  name: 'signet-tls12-minimum',
  description: 'Resources that have a minimum TLS version setting set it to TLS 1.2 or later (and storage accepts HTTPS only).',
  enforcementLevel: 'mandatory',
  validateResource: (args, report) => {
    for (const setting of TLS_SETTINGS[args.type] ?? []) {
      const value = setting.path.reduce<unknown>((node, key) => (node && typeof node === 'object' ? (node as Props)[key] : undefined), args.props);
      if (typeof value !== 'string' || !setting.allowed.includes(value)) {
        report(`${setting.path.join('.')} is ${value === undefined ? 'not set (the service default may allow TLS 1.0)' : JSON.stringify(value)}; set ${setting.allowed[0]} or later`);
      }
    }
    if (args.type === 'azure-native:storage:StorageAccount' && args.props.enableHttpsTrafficOnly === false) report('enableHttpsTrafficOnly must not be false');
  },
};

function vmViolations(kind: string, props: Props): string[] {
  const problems: string[] = [];
  const identity = props.identity as { type?: string } | undefined;
  if (!identity?.type || identity.type === 'None') problems.push(`${kind} has no managed identity`);
  const os = (props.osProfile ?? (props.virtualMachineProfile as Props | undefined)?.osProfile) as Props | undefined;
  if (os) {
    if (os.adminPassword !== undefined) problems.push(`${kind} sets an admin password`);
    if (os.windowsConfiguration !== undefined) problems.push(`${kind} is a Windows VM (password login); Signet nodes are Linux`);
    const linux = os.linuxConfiguration as { disablePasswordAuthentication?: boolean } | undefined;
    if (linux?.disablePasswordAuthentication !== true) problems.push(`${kind} must set linuxConfiguration.disablePasswordAuthentication: true`);
  } else if (kind === 'VM' && !props.virtualMachineScaleSet) {
    problems.push('VM has no osProfile to check (password login cannot be ruled out)');
  }
  return problems;
}

export const vmIdentityNoPassword: ResourceValidationPolicy = {
  name: 'signet-vm-identity-no-password',
  description: 'Virtual machines and scale sets run with a managed identity and allow no password login.',
  enforcementLevel: 'mandatory',
  validateResource: (args, report) => {
    if (args.type === 'azure-native:compute:VirtualMachine') vmViolations('VM', args.props).forEach((m) => report(m));
    if (args.type === 'azure-native:compute:VirtualMachineScaleSet') vmViolations('scale set', args.props).forEach((m) => report(m));
  },
};

const lower = (value: unknown): string | undefined => (typeof value === 'string' ? value.toLowerCase() : undefined);

/**
 * Front Door (Standard/Premium) keeps Grafana's logins off plain HTTP on both legs: a route forwards to its
 * origin over HTTPS only and serves clients HTTPS (plain HTTP at most as a redirect to HTTPS), and an origin
 * is reached with its certificate's name checked. Unset values are read as the provider fills them in
 * (forwardingProtocol MatchRequest, httpsRedirect Disabled, enforceCertificateNameCheck true) and as Azure
 * does (supportedProtocols Http and Https).
 */
export const frontDoorHttpsOnly: ResourceValidationPolicy = {
  name: 'signet-front-door-https-only',
  description: 'Front Door routes forward to their origin over HTTPS only and accept plain HTTP only to redirect it to HTTPS; origins are reached with the certificate name checked.',
  enforcementLevel: 'mandatory',
  validateResource: (args, report) => {
    if (args.type === 'azure-native:cdn:Route') {
      const forwarding = args.props.forwardingProtocol;
      if (lower(forwarding) !== 'httpsonly') {
        report(`forwardingProtocol is ${forwarding === undefined ? 'not set (Front Door then matches the request, plain HTTP included)' : JSON.stringify(forwarding)}; set HttpsOnly: the leg from Front Door to the origin crosses the internet`);
      }
      const declared = args.props.supportedProtocols;
      const protocols = Array.isArray(declared) ? declared.map(lower) : ['http', 'https'];
      const redirect = lower(args.props.httpsRedirect) === 'enabled';
      if (!protocols.includes('https')) report('supportedProtocols must include Https');
      if (protocols.includes('http') && !redirect) {
        report(`supportedProtocols ${Array.isArray(declared) ? JSON.stringify(declared) : 'is not set (Azure then serves Http and Https)'} serves plain HTTP without redirecting it: set supportedProtocols to [Https], or httpsRedirect: Enabled`);
      }
    }
    if (args.type === 'azure-native:cdn:AFDOrigin' && args.props.enforceCertificateNameCheck === false) {
      report('enforceCertificateNameCheck must not be false: Front Door would accept any certificate on the origin');
    }
  },
};

/** Types that are not placed in a resource group by a `resourceGroupName` input but belong to the tenant anyway. */
const SCOPED_BY_SCOPE = 'azure-native:authorization:RoleAssignment';
/**
 * Alert rules name what they watch (scopes) and the action groups they notify by id: a metric alert as
 * `actions: [{ actionGroupId }]`, an activity log alert as `actions: { actionGroups: [{ actionGroupId }] }`.
 */
const ALERT_RULES: Record<string, { kind: string; actionGroupIds: (props: Props) => unknown[] }> = {
  'azure-native:monitor:MetricAlert': {
    kind: 'metric alert',
    actionGroupIds: (p) => ((p.actions as { actionGroupId?: unknown }[] | undefined) ?? []).map((a) => a.actionGroupId),
  },
  'azure-native:monitor:ActivityLogAlert': {
    kind: 'activity log alert',
    actionGroupIds: (p) => ((p.actions as { actionGroups?: { actionGroupId?: unknown }[] } | undefined)?.actionGroups ?? []).map((a) => a.actionGroupId),
  },
};

/** The subscription and resource group an ARM id names (lower case), and whether it names something inside the group. */
function armGroupOf(id: string): { subscription: string; group: string; rest: boolean } | undefined {
  const m = /^\/subscriptions\/([^/]+)\/resourcegroups\/([^/]+)(\/.+)?$/i.exec(id);
  return m ? { subscription: m[1]!.toLowerCase(), group: m[2]!.toLowerCase(), rest: Boolean(m[3]) } : undefined;
}

export const tenantResourceGroupOnly: StackValidationPolicy = {
  name: 'signet-tenant-resource-group-only',
  description: 'A tenant stack creates exactly one resource group and places every Azure resource (and role assignment scope, and what a metric or activity log alert watches and notifies) inside it.',
  enforcementLevel: 'mandatory',
  validateStack: (args: StackValidationArgs, report: ReportViolation) => {
    const groups = args.resources.filter((r) => r.type === 'azure-native:resources:ResourceGroup');
    if (groups.length !== 1) {
      report(`a tenant stack must create exactly one resource group, found ${groups.length}`);
      if (groups.length === 0) return;
    }
    const group = groups[0];
    const rgName = group?.props.resourceGroupName as string | undefined;
    if (!rgName || !/^rg-signet-[a-z][a-z0-9-]+$/.test(rgName)) report(`resource group name ${rgName ?? '(unnamed)'} is not rg-signet-<tenant>`, group?.urn);
    // Every id the stack points at (role assignment scopes, what alerts watch and notify) must be the
    // tenant's group or in it, in the tenant's subscription: the one nearly all of them name (the stack
    // does not know its subscription id before Azure answers), so an id in another subscription stands out.
    const referenced: string[] = args.resources.flatMap((r) => [
      ...(r.type === SCOPED_BY_SCOPE ? [String(r.props.scope ?? '')] : []),
      ...(ALERT_RULES[r.type] ? [...((r.props.scopes as unknown[] | undefined) ?? []), ...ALERT_RULES[r.type]!.actionGroupIds(r.props)].map((i) => String(i ?? '')) : []),
    ]);
    const counts = new Map<string, number>();
    for (const id of referenced) {
      const at = armGroupOf(id);
      if (at) counts.set(at.subscription, (counts.get(at.subscription) ?? 0) + 1);
    }
    const subscription = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
    const where = (id: string): 'group' | 'in-group' | undefined => {
      const at = armGroupOf(id);
      if (!at || at.group !== (rgName ?? '').toLowerCase() || at.subscription !== subscription) return undefined;
      return at.rest ? 'in-group' : 'group';
    };
    const inGroup = (id: string) => where(id) === 'in-group';
    // an alert's scope may also be the group itself (every resource in it), never its subscription
    const groupOrInGroup = (id: string) => where(id) !== undefined;
    for (const r of args.resources) {
      if (!r.type.startsWith('azure-native:') || r.type === 'azure-native:resources:ResourceGroup') continue;
      if (r.type === SCOPED_BY_SCOPE) {
        const scope = String(r.props.scope ?? '');
        if (!inGroup(scope)) report(`role assignment ${r.name} is scoped outside ${rgName}: ${scope || '(no scope)'}`, r.urn);
        continue;
      }
      const alert = ALERT_RULES[r.type];
      if (alert) {
        // an alert in the group could still watch (or notify through) another group's resources, or the whole subscription
        for (const id of ((r.props.scopes as unknown[] | undefined) ?? []).map((i) => String(i ?? ''))) {
          if (!groupOrInGroup(id)) report(`${alert.kind} ${r.name} watches ${id || '(no id)'}, outside ${rgName}`, r.urn);
        }
        for (const id of alert.actionGroupIds(r.props).map((i) => String(i ?? ''))) {
          if (!inGroup(id)) report(`${alert.kind} ${r.name} notifies ${id || '(no id)'}, outside ${rgName}`, r.urn);
        }
      }
      if (!('resourceGroupName' in r.props)) continue; // e.g. provider-level resources
      if (r.props.resourceGroupName !== rgName) report(`${r.type} ${r.name} is in resource group ${String(r.props.resourceGroupName)}, not the tenant's ${rgName}`, r.urn);
    }
  },
};

export const signetPolicies = [noInternetSshRdp, smtpNotFromInternet, keyVaultProtected, tls12Minimum, frontDoorHttpsOnly, vmIdentityNoPassword, tenantResourceGroupOnly];
