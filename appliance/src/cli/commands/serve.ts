// `signet serve --config relay.yaml`: run the relay node. SIGTERM (and SIGINT)
// drain it: /readyz turns 503, new sessions get 421 4.3.2, in-flight
// transactions finish within limits.drainSeconds, then the process exits.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { DIRECTORY_FILE, loadOrgFolder, type OrgConfig } from '../../config';
import { loadDirectoryFile, type DirectorySnapshot } from '../../directory';
import { createLogger, type Logger } from '../../observability';
import { createEngine } from '../../signature';
import { loadRelayConfig, type RelayConfig } from '../../smtp';
import { startRelayNode, type OrgSourceLike, type RelayNode } from '../../smtp/node';

/**
 * A folder source: loads the org folder once at start. Sealed bundles and
 * polling come from the config module's source (createOrgSource) once it is
 * exported from the config module; the relay node takes any OrgSourceLike.
 */
function folderSource(folder: string, logger: Logger): OrgSourceLike {
  let current: OrgConfig | undefined;
  const listeners: Array<(c: OrgConfig) => void> = [];
  return {
    async start() {
      try {
        current = await loadOrgFolder(folder);
        for (const l of listeners) l(current);
      } catch (error) {
        logger.error({ event: 'config_refused', location: folder, err: (error as Error).message }, 'organization configuration refused');
      }
    },
    stop() {},
    current: () => current,
    on(_event, listener) {
      listeners.push(listener);
      return this;
    },
  };
}

/** Directory for local mode: the configured file, else the org folder's directory file when present. */
async function loadDirectory(config: RelayConfig, logger: Logger): Promise<DirectorySnapshot | undefined> {
  const file = config.directory.file ?? (existsSync(join(config.org.source, DIRECTORY_FILE)) ? join(config.org.source, DIRECTORY_FILE) : undefined);
  if (config.directory.graph && !config.directory.file) {
    logger.error({ event: 'directory-unavailable', source: 'graph' }, 'directory.graph is not wired into this build: senders are unknown and their messages pass through unsigned');
  }
  if (!file) return undefined;
  try {
    const snapshot = await loadDirectoryFile(file);
    logger.info({ event: 'directory-loaded', source: 'file', users: snapshot.size }, 'directory loaded');
    return snapshot;
  } catch (error) {
    logger.error({ event: 'directory-failed', source: 'file', err: (error as Error).message }, 'directory file could not be loaded');
    return undefined;
  }
}

/** Starts a relay node from a validated relay config (used by `serve` and `dev`). */
export async function startFromConfig(config: RelayConfig, options: { logger?: Logger } = {}): Promise<RelayNode> {
  const logger = options.logger ?? createLogger({ level: config.logging.level });
  const directory = await loadDirectory(config, logger);
  const node = await startRelayNode(config, {
    createEngine,
    orgSource: folderSource(config.org.source, logger),
    directory: () => directory,
    logger,
  });
  if (directory) {
    node.metrics.directoryUsers.set({ source: 'file' }, directory.size);
    node.metrics.directoryLastSync.set({ source: 'file' }, directory.syncedAt.getTime() / 1000);
  }
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
