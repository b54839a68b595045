// The node's /etc/signet/relay.yaml: where the relay listens, its TLS
// identity, who may connect, where it delivers, where its org config and key
// live, and how it reads the directory. Built as data, serialized by `yaml`.
import { stringify } from 'yaml';

export interface RelayConfigValues {
  /** The tenant's certificate domain: the name in the greeting and the EHLO toward Exchange Online. */
  certificateDomain: string;
  httpPort: number;
  downstreamHost: string;
  configBundleUrl: string;
  orgKeyId: string;
  identityClientId: string;
  /** The customer's Entra tenant (directory reads through Microsoft Graph). */
  azureTenantId: string;
  exchangeOnlineRanges: string[];
  /** Check that mail left the customer's tenant (its id in X-MS-Exchange-CrossTenant-Id); default on. */
  tenantCheck?: boolean;
  directoryRefreshMinutes: number;
  /** Read Graph as this app (client secret in the vault) instead of the node identity. */
  graphApp?: { clientId: string; secretUrl: string };
}

export const TLS_DIR = '/etc/signet/tls';
/** Debian/Ubuntu's system trust store: Exchange Online's certificates chain to public roots. */
export const SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** The relay config in the shape appliance/src/smtp/config.ts validates (strict). */
export function buildRelayConfig(v: RelayConfigValues): Record<string, unknown> {
  return {
    hostname: v.certificateDomain,
    listen: [{ host: '0.0.0.0', port: 25 }],
    tls: {
      cert: `${TLS_DIR}/node.crt`,
      key: `${TLS_DIR}/node.key`,
      ca: SYSTEM_CA_BUNDLE,
      // Exchange Online presents a certificate for this name on its outbound connections.
      acceptedClientNames: ['mail.protection.outlook.com'],
      minVersion: 'TLSv1.2',
    },
    // the shared Exchange Online certificate does not tell tenants apart; the stamped tenant id does
    ...(v.tenantCheck === false ? {} : { tenantId: v.azureTenantId }),
    allowNetworks: v.exchangeOnlineRanges,
    downstream: {
      host: v.downstreamHost,
      port: 25,
      // The node's certificate is also its client identity toward the inbound connector.
      tls: { cert: `${TLS_DIR}/node.crt`, key: `${TLS_DIR}/node.key`, minVersion: 'TLSv1.2' },
    },
    // On all interfaces: Traffic Manager probes /readyz on the public IP, Prometheus scrapes the private one; the NSG decides who.
    http: { listen: '0.0.0.0', port: v.httpPort },
    org: { source: v.configBundleUrl, keyRef: v.orgKeyId, pollSeconds: 60 },
    directory: {
      graph: {
        tenantId: v.azureTenantId,
        clientId: v.identityClientId,
        ...(v.graphApp ? { app: { clientId: v.graphApp.clientId, secret: v.graphApp.secretUrl } } : {}),
        refreshSeconds: v.directoryRefreshMinutes * 60,
      },
    },
  };
}

export function renderRelayConfig(v: RelayConfigValues): string {
  return `# Written by the tenant's Pulumi stack (infra/); local edits are overwritten on the next converge.\n${stringify(buildRelayConfig(v))}`;
}
