// The outputs of one tenant's Pulumi stack (`pulumi stack output --json`),
// which the operator commands read instead of asking Azure: smart host,
// certificate domain, nodes and where their health endpoints are.
import { readFileSync } from 'node:fs';
import { z } from 'zod';

// A DNS name: labels of letters, digits and hyphens (not at the ends), 1..63
// each, at least two labels. Exchange connectors and TLS names take nothing else.
const DNS_NAME = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

export const dnsName = z.string().trim().toLowerCase().regex(DNS_NAME, 'must be a DNS name such as smtp.example.net');

// Mirrors the stack's outputs (infra/outputs.ts); unknown outputs are ignored,
// so newer stacks still load. Only what the operator commands use is required.
const node = z.object({
  name: z.string().min(1).regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be letters, digits, dot, dash or underscore'),
  zone: z.string().optional(),
  fqdn: dnsName,
  publicIp: z.string().min(1).optional(),
  privateIp: z.string().min(1).optional(),
  certificateThumbprint: z.string().regex(/^[0-9A-Fa-f:]{40,95}$/, 'must be a hex thumbprint').optional(),
  certificateExpiresAt: z.iso.datetime({ offset: true }).optional(),
  tlsSecretName: z.string().optional(),
  /** Not a stack output: a way to point a node at another health address (tests, port forwards). */
  healthUrl: z.url({ protocol: /^https?$/ }).optional(),
});

const urlOrEmpty = z.union([z.url(), z.literal('')]);

export const stackOutputsSchema = z.object({
  tenantName: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be lower-case letters, digits and dashes'),
  orgId: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be lower-case letters, digits and dashes'),
  tenantId: z.string().optional(),
  location: z.string().optional(),
  resourceGroupName: z.string().optional(),
  smartHostFqdn: dnsName,
  trafficManagerFqdn: z.string().optional(),
  certificateDomain: dnsName,
  downstreamSmartHost: dnsName.optional(),
  acceptedDomains: z.array(dnsName).min(1),
  nodes: z.array(node).min(1),
  vaultUri: z.url().optional(),
  vaultName: z.string().optional(),
  orgKeyId: z.string().optional(),
  configBundleUrl: urlOrEmpty.optional(),
  storageAccountName: z.string().optional(),
  applianceVersion: z.string().optional(),
  /** Relay HTTP port on every node (/metrics, /healthz, /readyz). */
  httpPort: z.number().int().min(1).max(65535),
  dashboardUrl: urlOrEmpty.optional(),
});

export type StackOutputs = z.infer<typeof stackOutputsSchema>;
export type StackNode = StackOutputs['nodes'][number];

/** Validates parsed JSON; errors name the source and the path of each problem. */
export function parseStackOutputs(data: unknown, source = 'stack outputs'): StackOutputs {
  const result = stackOutputsSchema.safeParse(data);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.length ? issue.path.join('.') : '(top level)'}: ${issue.message}`);
    throw new Error(`${source}: not valid stack outputs (pulumi stack output --json):\n  ${problems.join('\n  ')}`);
  }
  return result.data;
}

/**
 * Where a node answers /readyz and /metrics: its private address by default
 * (what Prometheus scrapes; run from inside the network or a jump host), its
 * public name with `via: 'fqdn'`. An explicit healthUrl wins.
 */
export function nodeHealthUrl(outputs: StackOutputs, node: StackNode, via: 'private' | 'fqdn' = 'private'): string {
  if (node.healthUrl) return node.healthUrl.replace(/\/$/, '');
  const host = via === 'private' && node.privateIp ? node.privateIp : node.fqdn;
  return `http://${host.includes(':') ? `[${host}]` : host}:${outputs.httpPort}`;
}

export function loadStackOutputs(file: string): StackOutputs {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`${file}: cannot read stack outputs: ${(error as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file}: not JSON (expected the output of \`pulumi stack output --json\`): ${(error as Error).message}`);
  }
  return parseStackOutputs(data, file);
}
