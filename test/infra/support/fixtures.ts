// Stack configs for the tests: the example tenant's file (Pulumi.fabrikam.yaml)
// as the baseline, a second tenant, and a placeholder appliance artifact
// (the real one is built by `npm run package`, not by the tests).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from './harness';
import { createCertificateAuthority, type CertificateAuthority } from '../../support/certs';

export interface ArtifactFixture { dir: string; path: string; cleanup(): void }

export function placeholderArtifact(): ArtifactFixture {
  const dir = mkdtempSync(path.join(tmpdir(), 'signet-infra-'));
  const file = path.join(dir, 'signet-appliance-placeholder.tar.gz');
  writeFileSync(file, 'placeholder appliance artifact for infrastructure tests\n');
  return { dir, path: file, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The `signet:*` values of the example stack file, keys without the namespace. */
export function exampleStackValues(): Record<string, unknown> {
  const doc = parse(readFileSync(path.join(REPO_ROOT, 'Pulumi.fabrikam.yaml'), 'utf8')) as { config: Record<string, unknown> };
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(doc.config)) {
    if (key.startsWith('signet:')) out[key.slice('signet:'.length)] = value;
  }
  return out;
}

export function fabrikam(artifactPath: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...exampleStackValues(), applianceArtifactPath: artifactPath, ...overrides };
}

export function northwind(artifactPath: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return fabrikam(artifactPath, {
    tenantName: 'northwind',
    tenantId: '0b7d3c52-6e1f-4a8b-9c2d-3e4f5a6b7c8d',
    orgId: 'northwind',
    acceptedDomains: ['northwindtraders.com'],
    certificateDomain: 'northwind.relay.signet-msp.example',
    downstreamSmartHost: 'northwindtraders-com.mail.protection.outlook.com',
    nodeCount: 3,
    tags: { customer: 'Northwind' },
    ...overrides,
  });
}

/** The example tenant's name for Grafana's Front Door origin (a CNAME to the monitoring VM), in its certificate domain's zone. */
export const EXAMPLE_ORIGIN_HOST = 'grafana-origin.fabrikam.relay.signet-msp.example';

/**
 * Grafana's origin certificate for `names` from `ca` (standing in for a public CA), written as the public
 * PEM file `signet:monitoring.originCertificate.certificateFile` names; returns its path.
 */
export async function writeOriginCertificate(ca: CertificateAuthority, dir: string, names: string[] = [EXAMPLE_ORIGIN_HOST]): Promise<string> {
  const cert = await ca.issue({ commonName: names[0] ?? EXAMPLE_ORIGIN_HOST, dnsNames: names, usage: ['server'] });
  const file = path.join(dir, `origin-${Math.random().toString(36).slice(2)}.pem`);
  writeFileSync(file, cert.cert);
  return file;
}

/**
 * The example's `signet:monitoring` with Grafana published through Front Door: an origin certificate for
 * EXAMPLE_ORIGIN_HOST from a stand-in public CA, written into `dir`, plus `extra` settings.
 */
export async function publishedMonitoring(dir: string, extra: Record<string, unknown> = {}): Promise<{ monitoring: Record<string, unknown>; certificateFile: string }> {
  const certificateFile = await writeOriginCertificate(await createCertificateAuthority('Signet Test Public CA'), dir);
  const monitoring = { ...(exampleStackValues().monitoring as Record<string, unknown>), originHostName: EXAMPLE_ORIGIN_HOST, originCertificate: { certificateFile }, ...extra };
  return { monitoring, certificateFile };
}
