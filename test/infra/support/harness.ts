// Runs the tenant stack program under Pulumi's mock monitor (no CLI, no
// provider plugins, no cloud) and records every resource it registers with
// its inputs and URN. The mocks answer like Azure would where the program
// reads a value back: identities' principal/client ids, public IPs, ARM ids
// built from the physical names, and real X.509 certificates for the
// @pulumi/tls resources so thumbprints can be checked independently.
import * as pulumi from '@pulumi/pulumi';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '../../..');
export const SUBSCRIPTION_ID = '11111111-2222-3333-4444-555555555555';
export const AZURE_TENANT_ID = '99999999-8888-7777-6666-555555555555';

export interface RecordedResource {
  type: string;
  name: string;
  urn: string;
  id: string;
  inputs: Record<string, unknown>;
  /** What the mocks answered (inputs plus computed values such as a certificate's PEM). */
  state: Record<string, unknown>;
  /** URNs this resource explicitly depends on (dependsOn). */
  dependsOn: string[];
  /** The deleteBeforeReplace resource option, as the engine receives it. */
  deleteBeforeReplace: boolean;
  /** The ignoreChanges resource option (property paths). */
  ignoreChanges: string[];
}

export interface StackRun<T> {
  resources: RecordedResource[];
  outputs: T;
  /** What the program said with pulumi.log.warn, in order (captured, not printed). */
  warnings: string[];
  ofType(type: string): RecordedResource[];
  one(type: string, nameIncludes: string): RecordedResource;
}

function hex(input: string, length: number): string {
  return createHash('sha256').update(input).digest('hex').slice(0, length);
}

/** A GUID derived from a name: stable across runs, distinct per resource. */
export function fakeGuid(seed: string): string {
  const h = hex(seed, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** A real self-signed certificate from OpenSSL (key discarded), so thumbprints and expiries are real. */
async function makeCertificate(commonName: string, dnsNames: string[], days: number): Promise<string> {
  const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', '/dev/null',
    '-subj', `/CN=${commonName}`, '-days', String(Math.max(1, Math.round(days)))];
  if (dnsNames.length) args.push('-addext', `subjectAltName=${dnsNames.map((d) => `DNS:${d}`).join(',')}`);
  return execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

const RG_PREFIX = `/subscriptions/${SUBSCRIPTION_ID}/resourceGroups`;

/** ARM ids the way Azure forms them, from the physical names in the inputs. */
function armId(type: string, inputs: Record<string, string>, name: string): string {
  const rg = `${RG_PREFIX}/${inputs.resourceGroupName}`;
  switch (type) {
    case 'azure-native:resources:ResourceGroup': return `${RG_PREFIX}/${inputs.resourceGroupName}`;
    case 'azure-native:keyvault:Vault': return `${rg}/providers/Microsoft.KeyVault/vaults/${inputs.vaultName}`;
    case 'azure-native:keyvault:Key': return `${rg}/providers/Microsoft.KeyVault/vaults/${inputs.vaultName}/keys/${inputs.keyName}`;
    case 'azure-native:keyvault:Secret': return `${rg}/providers/Microsoft.KeyVault/vaults/${inputs.vaultName}/secrets/${inputs.secretName}`;
    case 'azure-native:storage:StorageAccount': return `${rg}/providers/Microsoft.Storage/storageAccounts/${inputs.accountName}`;
    case 'azure-native:storage:BlobContainer': return `${rg}/providers/Microsoft.Storage/storageAccounts/${inputs.accountName}/blobServices/default/containers/${inputs.containerName}`;
    case 'azure-native:network:VirtualNetwork': return `${rg}/providers/Microsoft.Network/virtualNetworks/${inputs.virtualNetworkName}`;
    case 'azure-native:network:NetworkSecurityGroup': return `${rg}/providers/Microsoft.Network/networkSecurityGroups/${inputs.networkSecurityGroupName}`;
    case 'azure-native:network:PublicIPAddress': return `${rg}/providers/Microsoft.Network/publicIPAddresses/${inputs.publicIpAddressName}`;
    case 'azure-native:network:NetworkInterface': return `${rg}/providers/Microsoft.Network/networkInterfaces/${inputs.networkInterfaceName}`;
    case 'azure-native:managedidentity:UserAssignedIdentity': return `${rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${inputs.resourceName}`;
    case 'azure-native:compute:VirtualMachine': return `${rg}/providers/Microsoft.Compute/virtualMachines/${inputs.vmName}`;
    case 'azure-native:trafficmanager:Profile': return `${rg}/providers/Microsoft.Network/trafficManagerProfiles/${inputs.profileName}`;
    case 'azure-native:cdn:Profile': return `${rg}/providers/Microsoft.Cdn/profiles/${inputs.profileName}`;
    case 'azure-native:cdn:AFDOriginGroup': return `${rg}/providers/Microsoft.Cdn/profiles/${inputs.profileName}/originGroups/${inputs.originGroupName}`;
    case 'azure-native:monitor:ActionGroup': return `${rg}/providers/Microsoft.Insights/actionGroups/${inputs.actionGroupName}`;
    case 'azure-native:monitor:MetricAlert': return `${rg}/providers/Microsoft.Insights/metricAlerts/${inputs.ruleName}`;
    case 'azure-native:monitor:ActivityLogAlert': return `${rg}/providers/Microsoft.Insights/activityLogAlerts/${inputs.activityLogAlertName}`;
    case 'azure-native:authorization:RoleAssignment': return `${inputs.scope}/providers/Microsoft.Authorization/roleAssignments/${fakeGuid(name)}`;
    default: return `${name}-id`;
  }
}

/** The physical name Azure would report as `name`. */
function physicalName(type: string, inputs: Record<string, string>, name: string): string {
  const key = ({
    'azure-native:resources:ResourceGroup': 'resourceGroupName', 'azure-native:keyvault:Vault': 'vaultName', 'azure-native:keyvault:Key': 'keyName',
    'azure-native:keyvault:Secret': 'secretName', 'azure-native:storage:StorageAccount': 'accountName', 'azure-native:storage:BlobContainer': 'containerName',
    'azure-native:network:VirtualNetwork': 'virtualNetworkName', 'azure-native:network:NetworkSecurityGroup': 'networkSecurityGroupName',
    'azure-native:network:PublicIPAddress': 'publicIpAddressName', 'azure-native:network:NetworkInterface': 'networkInterfaceName',
    'azure-native:managedidentity:UserAssignedIdentity': 'resourceName', 'azure-native:compute:VirtualMachine': 'vmName',
    'azure-native:trafficmanager:Profile': 'profileName', 'azure-native:cdn:Profile': 'profileName', 'azure-native:cdn:AFDEndpoint': 'endpointName',
    'azure-native:cdn:AFDOriginGroup': 'originGroupName', 'azure-native:monitor:ActionGroup': 'actionGroupName', 'azure-native:monitor:MetricAlert': 'ruleName',
    'azure-native:monitor:ActivityLogAlert': 'activityLogAlertName',
  } as Record<string, string>)[type];
  return (key && inputs[key]) || name;
}

interface RegisterRequest { getType(): string; getName(): string; getDependenciesList(): string[]; getDeletebeforereplace(): boolean; getIgnorechangesList(): string[] }

let publicIpCounter = 0;

export const mocks: pulumi.runtime.Mocks = {
  async newResource(args) {
    const inputs = args.inputs as Record<string, string>;
    const id = armId(args.type, inputs, args.name);
    const state: Record<string, unknown> = { ...args.inputs, name: physicalName(args.type, inputs, args.name) };
    switch (args.type) {
      case 'azure-native:managedidentity:UserAssignedIdentity':
        state.principalId = fakeGuid(`principal:${args.name}`);
        state.clientId = fakeGuid(`client:${args.name}`);
        break;
      case 'azure-native:compute:VirtualMachine':
        // Azure's id of the VM instance: a rebuilt VM gets a new one
        state.vmId = fakeGuid(`vm-instance:${args.name}`);
        break;
      case 'azure-native:network:PublicIPAddress':
        publicIpCounter += 1;
        state.ipAddress = `20.50.${Math.floor(publicIpCounter / 250)}.${(publicIpCounter % 250) + 1}`;
        break;
      case 'kubernetes:core/v1:Service':
        // the cloud provider reports a LoadBalancer's public address in the status
        if ((inputs.spec as { type?: string } | undefined)?.type === 'LoadBalancer') state.status = { loadBalancer: { ingress: [{ ip: '20.60.0.10' }] } };
        break;
      case 'azure-native:keyvault:Key':
        state.keyUri = `https://${inputs.vaultName}.vault.azure.net/keys/${inputs.keyName}`;
        break;
      case 'azure-native:cdn:Profile':
        // the id Front Door sends its origins in X-Azure-FDID
        state.frontDoorId = fakeGuid(`frontdoor:${args.name}`);
        break;
      case 'azure-native:cdn:AFDEndpoint':
        state.hostName = `${inputs.endpointName}-abcdef.z01.azurefd.net`;
        break;
      case 'random:index/randomString:RandomString':
        state.result = hex(args.name, Number(inputs.length ?? 6)).replace(/^[0-9]/, 'a');
        break;
      case 'random:index/randomPassword:RandomPassword':
        state.result = hex(`password:${args.name}`, 32);
        break;
      case 'tls:index/privateKey:PrivateKey':
        state.privateKeyPem = `-----BEGIN PRIVATE KEY-----\n${Buffer.from(hex(args.name, 48)).toString('base64')}\n-----END PRIVATE KEY-----\n`;
        break;
      case 'tls:index/certRequest:CertRequest':
        state.certRequestPem = `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.from(JSON.stringify({ cn: (args.inputs as { subject?: { commonName?: string } }).subject?.commonName, dns: args.inputs.dnsNames })).toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
        break;
      case 'tls:index/selfSignedCert:SelfSignedCert':
        state.certPem = await makeCertificate((args.inputs as { subject?: { commonName?: string } }).subject?.commonName ?? 'ca', [], Number(inputs.validityPeriodHours) / 24);
        break;
      case 'tls:index/locallySignedCert:LocallySignedCert': {
        // Recover the names the program asked for from the (mock) CSR.
        const csr = String(inputs.certRequestPem).split('\n')[1] ?? '';
        const asked = JSON.parse(Buffer.from(csr, 'base64').toString('utf8')) as { cn: string; dns: string[] };
        state.certPem = await makeCertificate(asked.cn, asked.dns, Number(inputs.validityPeriodHours) / 24);
        break;
      }
    }
    return { id: args.custom === false ? undefined : id, state };
  },
  call(args) {
    if (args.token === 'azure-native:authorization:getClientConfig') {
      return { clientId: fakeGuid('deployer-client'), objectId: fakeGuid('deployer-object'), subscriptionId: SUBSCRIPTION_ID, tenantId: AZURE_TENANT_ID };
    }
    throw new Error(`unexpected invoke ${args.token}`);
  },
};

/** Resolves an Output (mocks run with preview=false, so values are known). */
export function valueOf<T>(output: pulumi.Input<T>): Promise<T> {
  return new Promise((resolve) => { pulumi.output(output).apply((v) => { resolve(v as T); return v; }); });
}

/**
 * Sets the mocks for `stack`, runs `program`, waits for every registration
 * RPC to finish, and returns what was registered. One stack per call: the
 * mock monitor is process-global, so callers run these sequentially.
 */
export async function runUnderMocks<T>(stack: string, program: () => Promise<T> | T): Promise<StackRun<T>> {
  const recorded = new Map<string, { type: string; name: string; inputs: Record<string, unknown>; state: Record<string, unknown> }>();
  // Wrap newResource to keep the inputs exactly as the program gave them.
  const recordingMocks: pulumi.runtime.Mocks = {
    call: mocks.call.bind(mocks),
    async newResource(args) {
      const result = await mocks.newResource(args);
      recorded.set(`${args.type}::${args.name}`, { type: args.type, name: args.name, inputs: args.inputs as Record<string, unknown>, state: result.state });
      return result;
    },
  };
  await pulumi.runtime.setMocks(recordingMocks, 'signet', stack, false);
  const monitor = pulumi.runtime.getMonitor() as unknown as {
    resources: Map<string, { urn: string; id: string | null }>;
    registerResource(req: RegisterRequest, callback: unknown): Promise<void>;
  };
  // The mock args carry no dependencies; the registration request does.
  const dependencies = new Map<string, string[]>();
  const deleteBeforeReplace = new Map<string, boolean>();
  const ignoreChanges = new Map<string, string[]>();
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, callback) => {
    dependencies.set(`${req.getType()}::${req.getName()}`, req.getDependenciesList());
    deleteBeforeReplace.set(`${req.getType()}::${req.getName()}`, req.getDeletebeforereplace());
    ignoreChanges.set(`${req.getType()}::${req.getName()}`, req.getIgnorechangesList());
    return register(req, callback);
  };
  // Under mocks there is no engine to take warnings (they would go to the console): keep them for the tests.
  const warnings: string[] = [];
  const log = pulumi.log as { warn: typeof pulumi.log.warn };
  const warn = log.warn;
  log.warn = (message) => { warnings.push(message); return Promise.resolve(); };
  let result: T;
  try {
    result = await program();
  } finally {
    log.warn = warn;
  }
  const outputs = await valueOf(pulumi.output(result as pulumi.Input<T>)) as T;
  await pulumi.runtime.disconnect();
  const urns = [...monitor.resources.values()];
  const resources: RecordedResource[] = [...recorded.values()].map((r) => {
    const entry = urns.find((u) => u.urn.endsWith(`${r.type}::${r.name}`));
    return { ...r, urn: entry?.urn ?? '', id: entry?.id ?? '', dependsOn: dependencies.get(`${r.type}::${r.name}`) ?? [], deleteBeforeReplace: deleteBeforeReplace.get(`${r.type}::${r.name}`) ?? false,
      ignoreChanges: ignoreChanges.get(`${r.type}::${r.name}`) ?? [] };
  });
  const ofType = (type: string) => resources.filter((r) => r.type === type);
  return {
    resources,
    outputs,
    warnings,
    ofType,
    one(type, nameIncludes) {
      const found = ofType(type).filter((r) => r.name.includes(nameIncludes));
      if (found.length !== 1) throw new Error(`expected one ${type} named *${nameIncludes}*, found ${found.map((r) => r.name).join(', ') || 'none'}`);
      return found[0] as RecordedResource;
    },
  };
}

/** The error `fn` throws (a config refusal, say); fails the test when it throws none. */
export function failureOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a failure, got none');
}
