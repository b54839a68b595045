// The node's /etc/signet/relay.yaml: where the relay listens, its TLS
// identity, who may connect, where it delivers, where its org config and key
// live, and how it reads the directory. Built as data, serialized by `yaml`.
import { stringify } from 'yaml';

export interface RelayConfigValues {
  nodeFqdn: string;
  httpPort: number;
  downstreamHost: string;
  configBundleUrl: string;
  orgKeyId: string;
  identityClientId: string;
  azureTenantId: string;
  orgId: string;
  acceptedDomains: string[];
  exchangeOnlineRanges: string[];
  directoryRefreshMinutes: number;
}

export const TLS_DIR = '/etc/signet/tls';
/** Debian/Ubuntu's system trust store: Exchange Online's certificates chain to public roots. */
export const SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

export function buildRelayConfig(v: RelayConfigValues): Record<string, unknown> {
  return {
    hostname: v.nodeFqdn,
    listen: { host: '0.0.0.0', port: 25 },
    tls: {
      cert: `${TLS_DIR}/node.crt`,
      key: `${TLS_DIR}/node.key`,
      caBundle: SYSTEM_CA_BUNDLE,
      requireClientCertificate: true,
      // Exchange Online presents a certificate for this name on its outbound connections.
      acceptedClientNames: ['mail.protection.outlook.com'],
    },
    sourceRanges: v.exchangeOnlineRanges,
    downstream: {
      host: v.downstreamHost,
      port: 25,
      requireTls: true,
      clientCert: { cert: `${TLS_DIR}/node.crt`, key: `${TLS_DIR}/node.key` },
      caBundle: SYSTEM_CA_BUNDLE,
    },
    http: { host: '0.0.0.0', port: v.httpPort },
    org: {
      id: v.orgId,
      acceptedDomains: v.acceptedDomains,
      source: { type: 'blob', url: v.configBundleUrl, pollSeconds: 60 },
      key: v.orgKeyId,
    },
    azure: { tenantId: v.azureTenantId, managedIdentityClientId: v.identityClientId },
    directory: {
      source: 'graph',
      tenantId: v.azureTenantId,
      managedIdentityClientId: v.identityClientId,
      refreshMinutes: v.directoryRefreshMinutes,
    },
  };
}

export function renderRelayConfig(v: RelayConfigValues): string {
  return `# Written by the tenant's Pulumi stack (infra/); local edits are overwritten on the next converge.\n${stringify(buildRelayConfig(v))}`;
}
