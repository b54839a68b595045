// The stack outputs, by name. The operator CLI (`signet connectors script
// --stack-outputs FILE`, `signet status`) and the runbooks read
// `pulumi stack output --json --show-secrets` with these names: keep them stable.

export interface NodeOutput {
  /** node0, node1, ... (also the Traffic Manager endpoint name). */
  name: string;
  /** Availability zone ("1", "2", "3"). */
  zone: string;
  /** Public DNS name of the node (its DNS label in the region's cloudapp.azure.com zone). */
  fqdn: string;
  /** Static Standard public IP: SMTP endpoint and the node's egress for outbound TCP 25. */
  publicIp: string;
  /** Private address in the node subnet (what Prometheus scrapes). */
  privateIp: string;
  /** SHA-1 thumbprint (upper-case hex) of the node's certificate: the registry of nodes allowed to deliver. */
  certificateThumbprint: string;
  /** Certificate notAfter, ISO 8601. */
  certificateExpiresAt: string;
  /** Key Vault secret holding the node's PEM chain + key. */
  tlsSecretName: string;
}

export interface StackOutputs {
  tenantName: string;
  orgId: string;
  /** The customer's Microsoft Entra tenant id. */
  tenantId: string;
  /** Azure region. */
  location: string;
  resourceGroupName: string;
  /** Exchange Online outbound connector: -SmartHosts and -TlsDomain. */
  smartHostFqdn: string;
  /** The Traffic Manager name the smart host must be a CNAME to. */
  trafficManagerFqdn: string;
  /** The DNS record the operator creates in the certificate domain's zone. */
  smartHostCname: { name: string; type: 'CNAME'; target: string; ttl: number };
  /** Inbound connector -TlsSenderCertificateName; also added as an accepted domain in the tenant. */
  certificateDomain: string;
  /** Where the nodes deliver: <tenant>.mail.protection.outlook.com, TCP 25. */
  downstreamSmartHost: string;
  acceptedDomains: string[];
  nodes: NodeOutput[];
  /** Key Vault URI (https://<name>.vault.azure.net/). */
  vaultUri: string;
  vaultName: string;
  /** Versionless URI of the organization key: `signet config seal --key <orgKeyId>`. */
  orgKeyId: string;
  /** Versionless URI of the key that signs sealed bundles: `<orgKeyId>-signing`, the only signer nodes accept. */
  configSigningKeyId: string;
  /** ARM ids for granting another workload (the Kubernetes target's identity) a node's roles. */
  vaultResourceId: string;
  orgKeyResourceId: string;
  /** ARM id of the config signing key (another workload's identity needs Key Vault Reader on it). */
  configSigningKeyResourceId: string;
  configContainerResourceId: string;
  /** Blob URL the sealed org config bundle is published to and the nodes poll. */
  configBundleUrl: string;
  storageAccountName: string;
  applianceVersion: string;
  artifactUrl: string;
  artifactSha256: string;
  /** Relay HTTP port (/metrics, /healthz, /readyz). */
  httpPort: number;
  /** Grafana dashboard (through Front Door), or the private address without it (frontDoor off, or no origin certificate); empty when monitoring is off. */
  dashboardUrl: string;
  /**
   * The monitoring VM's public DNS name (`<label>.<location>.cloudapp.azure.com`): the target of the CNAME the
   * operator creates at `signet:monitoring.originHostName`, the name Front Door connects to (and the origin
   * certificate names). Empty when monitoring is off.
   */
  monitoringFqdn: string;
  /** Development stacks only: the self-signed CA that issued the node certificates. */
  devCaCertificatePem: string;
}

/** The output names, in one list, for tests and readers of `pulumi stack output --json`. */
export const STACK_OUTPUT_NAMES = [
  'tenantName', 'orgId', 'tenantId', 'location', 'resourceGroupName',
  'smartHostFqdn', 'trafficManagerFqdn', 'smartHostCname', 'certificateDomain', 'downstreamSmartHost', 'acceptedDomains',
  'nodes', 'vaultUri', 'vaultName', 'orgKeyId', 'configSigningKeyId', 'vaultResourceId', 'orgKeyResourceId', 'configSigningKeyResourceId', 'configContainerResourceId', 'configBundleUrl', 'storageAccountName',
  'applianceVersion', 'artifactUrl', 'artifactSha256', 'httpPort', 'dashboardUrl', 'monitoringFqdn', 'devCaCertificatePem',
] as const satisfies readonly (keyof StackOutputs)[];
