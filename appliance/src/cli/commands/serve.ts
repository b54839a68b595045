// `signet serve --config relay.yaml`: run the relay node. SIGTERM (and SIGINT)
// drain it: /readyz turns 503, new sessions get 421 4.3.2, in-flight
// transactions finish within limits.drainSeconds, then the process exits.
import { statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { SecretClientOptions } from '@azure/keyvault-secrets';
import type { Command } from 'commander';
import { createOrgSource, DIRECTORY_FILE, type OrgConfig, type OrgSource } from '../../config';
import { createDirectoryFileSource, createGraphDirectorySource, type DirectorySnapshot, type GraphDirectorySource } from '../../directory';
import { createLogger, createMetrics, type Logger, type SignetMetrics } from '../../observability';
import { createAppCredential, createAzureCredential, createFileSecretProvider, createKeyVaultSecretProvider, type TokenCredential } from '../../secrets';
import { createEngine } from '../../signature';
import { loadRelayConfig, type RelayConfig } from '../../smtp';
import { startRelayNode, type RelayNode } from '../../smtp/node';

/** Groups the organization's rules name (the Graph source resolves only these memberships). */
export function ruleGroups(org: OrgConfig | undefined): string[] {
  const groups = new Set<string>();
  for (const rule of org?.rules ?? []) for (const m of [rule.match, ...(rule.except ?? [])]) for (const g of m.groups ?? []) groups.add(g);
  return [...groups];
}

/**
 * A new configuration (or the first, when the node started without one) may
 * name other groups: their memberships are loaded at once, so a new group rule
 * applies within seconds instead of after a restart. The configuration may
 * also have changed while the directory's first load ran: synced once now
 * (free when the groups are the same).
 */
export function followRuleGroups(orgSource: Pick<OrgSource, 'on' | 'current'>, graph: Pick<GraphDirectorySource, 'setGroups'>): void {
  orgSource.on('config', (org: OrgConfig) => void graph.setGroups(ruleGroups(org)));
  if (orgSource.current()) void graph.setGroups(ruleGroups(orgSource.current()));
}

/**
 * Who reads Graph: the node's managed identity, or, when the nodes run outside
 * the customer's tenant, the customer-consented app with its client secret
 * (kept in Key Vault and read with the node's identity, or in a file).
 */
export async function graphCredential(
  graph: NonNullable<RelayConfig['directory']['graph']>,
  nodeCredential: () => TokenCredential,
  options: { secretClientOptions?: SecretClientOptions } = {},
): Promise<TokenCredential> {
  if (!graph.app) return nodeCredential();
  const { secret } = graph.app;
  const source = secret.startsWith('file:')
    ? { secrets: createFileSecretProvider(dirname(secret.slice(5))), secretName: basename(secret.slice(5)) }
    : (() => {
        const url = new URL(secret);
        return { secrets: createKeyVaultSecretProvider(url.origin, { credential: nodeCredential(), clientOptions: options.secretClientOptions }), secretName: url.pathname.split('/')[2]! };
      })();
  return createAppCredential({ tenantId: graph.tenantId, clientId: graph.app.clientId, authorityHost: graph.app.authorityHost, ...source });
}

function isFolder(location: string): boolean {
  try {
    return statSync(location).isDirectory();
  } catch {
    return false;
  }
}

/** The directory: Microsoft Graph when configured, else the configured file, else the org folder's directory file. */
async function startDirectory(
  config: RelayConfig,
  orgSource: Pick<OrgSource, 'current' | 'on'>,
  credential: () => TokenCredential,
  metrics: SignetMetrics,
  logger: Logger,
): Promise<{ current: () => DirectorySnapshot | undefined; stop: () => void }> {
  if (config.directory.graph && !config.directory.file) {
    const graph = createGraphDirectorySource({ credential: await graphCredential(config.directory.graph, credential), groups: ruleGroups(orgSource.current()), refreshSeconds: config.directory.graph.refreshSeconds, metrics, logger });
    await graph.start(); // never throws: a failed first load leaves senders unknown (messages pass unsigned) and is retried
    followRuleGroups(orgSource, graph);
    return { current: () => graph.current(), stop: () => graph.stop() };
  }
  // an org folder's directory file is followed even when it is created after start
  const file = config.directory.file ?? (isFolder(config.org.source) ? join(config.org.source, DIRECTORY_FILE) : undefined);
  if (!file) return { current: () => undefined, stop: () => undefined };
  // re-read when it changes, at the interval the org configuration is checked
  const source = createDirectoryFileSource({ file, pollSeconds: config.org.pollSeconds, metrics, logger });
  await source.start();
  return { current: () => source.current(), stop: () => source.stop() };
}

/** Starts a relay node from a validated relay config (used by `serve` and `dev`). */
export async function startFromConfig(config: RelayConfig, options: { logger?: Logger } = {}): Promise<RelayNode> {
  const logger = options.logger ?? createLogger({ level: config.logging.level });
  const metrics = createMetrics();
  // the node's managed identity (bundle blobs, Key Vault key, Graph), created only when something needs it
  let credential: TokenCredential | undefined;
  const nodeCredential = () => (credential ??= createAzureCredential({ kind: 'node', managedIdentityClientId: config.directory.graph?.clientId }));
  const needsAzure = /^https:\/\//.test(config.org.source) || /^https:\/\//.test(config.org.keyRef ?? '');
  const orgSource = createOrgSource({
    location: config.org.source,
    keyRef: config.org.keyRef,
    credential: needsAzure ? nodeCredential() : undefined,
    pollSeconds: config.org.pollSeconds,
    // rollback protection across restarts: systemd's StateDirectory= (the packaged unit's /var/lib/signet) unless configured
    stateDir: config.stateDir ?? (process.env.STATE_DIRECTORY?.split(':')[0] || undefined),
    metrics,
    logger,
  });
  // the org config is loaded by the node (start); the directory needs the rules' groups first when it is Graph
  let directory: { current: () => DirectorySnapshot | undefined; stop: () => void } | undefined;
  const node = await startRelayNode(config, {
    createEngine,
    orgSource: {
      start: async () => {
        await orgSource.start();
        directory = await startDirectory(config, orgSource, nodeCredential, metrics, logger);
      },
      stop: () => {
        orgSource.stop();
        directory?.stop();
      },
      current: () => orgSource.current(),
      on: (event, listener) => orgSource.on(event, listener),
    },
    directory: () => directory?.current(),
    metrics,
    logger,
  });
  return node;
}

/** SIGTERM/SIGINT → drain → exit. A second signal exits at once. */
export function drainOnSignals(node: RelayNode, onDone: (code: number) => void = (code) => process.exit(code)): void {
  let draining = false;
  const handler = (signal: NodeJS.Signals) => {
    if (draining) {
      node.logger.warn({ event: 'drain-aborted', signal }, 'second signal: exiting now');
      return onDone(1);
    }
    draining = true;
    node.logger.info({ event: 'signal', signal }, 'signal received: draining');
    node
      .drain()
      .then(() => onDone(0))
      .catch(() => onDone(1));
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('run the relay: SMTP in (mutual TLS) → signature engine → SMTP out, with /metrics, /healthz, /readyz')
    .requiredOption('-c, --config <file>', 'relay configuration (YAML)')
    .action(async (options: { config: string }) => {
      const config = loadRelayConfig(options.config);
      const node = await startFromConfig(config);
      drainOnSignals(node);
    });
}
