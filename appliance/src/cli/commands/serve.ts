// `signet serve --config relay.yaml`: run the relay node. SIGTERM (and SIGINT)
// drain it: /readyz turns 503, new sessions get 421 4.3.2, in-flight
// transactions finish within limits.drainSeconds, then the process exits.
// `--check` checks the file and everything it names with the functions the
// node uses at start-up, without binding a port, contacting the downstream,
// Azure or Graph, or writing anything.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { SecretClientOptions } from '@azure/keyvault-secrets';
import type { Command } from 'commander';
import { ConfigError, createOrgSource, DIRECTORY_FILE, formatIssue, inspect, type OrgConfig, type OrgSource } from '../../config';
import { isBlobUrl } from '../../config/source';
import { createDirectoryFileSource, createGraphDirectorySource, GRAPH_CLOUDS, loadDirectoryFile, type DirectorySnapshot, type GraphCloud, type GraphDirectorySource } from '../../directory';
import { certificateFacts, createLogger, createMetrics, type Logger, type SignetMetrics } from '../../observability';
import { createAppCredential, createAzureCredential, createFileSecretProvider, createKeyVaultSecretProvider, isAzureKeyRef, keyProviderFromRef, type OrgKeyProvider, type TokenCredential } from '../../secrets';
import { createEngine, templatesUsePhotos, type Engine } from '../../signature';
import { loadRelayConfig, type RelayConfig } from '../../smtp';
import { formatRelayProblem, pathLabel, readRelayConfig, RelayConfigError } from '../../smtp/config';
import { startRelayNode, type RelayNode } from '../../smtp/node';
import { CLOCK_SKEW_MS, hostnameProblem, pemCertificates, readTlsFiles, validateIdentity, type CertificateRole } from '../../smtp/tls-files';
import { formatCliError } from '../errors';

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
 * Photos are loaded from Graph only while a template or add-on calls `photo()`
 * (they are held in memory): a configuration that starts or stops using them
 * turns the loading on or off at once, like the groups above.
 */
export function followPhotos(orgSource: Pick<OrgSource, 'on' | 'current'>, graph: Pick<GraphDirectorySource, 'setPhotos'>): void {
  orgSource.on('config', (org: OrgConfig) => void graph.setPhotos(templatesUsePhotos(org)));
  if (orgSource.current()) void graph.setPhotos(templatesUsePhotos(orgSource.current()));
}

/**
 * Where Graph is read for the configured cloud: its root, the token scope (which names that
 * cloud's Graph host) and the sign-in host for the app (undefined: the global default).
 */
export function graphEndpoints(graph: { cloud?: GraphCloud; app?: { clientId?: string; authorityHost?: string } }): { baseUrl: string; scope: string; authorityHost?: string } {
  const cloud = graph.cloud ?? 'global';
  const { graph: baseUrl, scope, login } = GRAPH_CLOUDS[cloud];
  return { baseUrl, scope, authorityHost: graph.app?.authorityHost ?? (cloud === 'global' ? undefined : login) };
}

/**
 * Who reads Graph: the node's managed identity, or, when the nodes run outside
 * the customer's tenant, the customer-consented app with its client secret
 * (kept in Key Vault and read with the node's identity, or in a file).
 */
export async function graphCredential(
  graph: Omit<NonNullable<RelayConfig['directory']['graph']>, 'cloud'> & { cloud?: GraphCloud },
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
  return createAppCredential({ tenantId: graph.tenantId, clientId: graph.app.clientId, authorityHost: graphEndpoints(graph).authorityHost, ...source });
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
    const { baseUrl, scope } = graphEndpoints(config.directory.graph);
    const graph = createGraphDirectorySource({
      credential: await graphCredential(config.directory.graph, credential),
      baseUrl,
      scope,
      groups: ruleGroups(orgSource.current()),
      photos: templatesUsePhotos(orgSource.current()),
      refreshSeconds: config.directory.graph.refreshSeconds,
      metrics,
      logger,
    });
    await graph.start(); // never throws: a failed first load leaves senders unknown (messages pass unsigned) and is retried
    followRuleGroups(orgSource, graph);
    followPhotos(orgSource, graph);
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
    // a version whose rules or templates the engine refuses is refused by the source too: not announced, no
    // rollback floor; the engine built to check it is the one the node then runs (compiled once per version)
    accept: config.passThrough ? undefined : (org) => void checked.set(org, createEngine({ org, directory: currentDirectory })),
  });
  // the org config is loaded by the node (start); the directory needs the rules' groups first when it is Graph
  let directory: { current: () => DirectorySnapshot | undefined; stop: () => void } | undefined;
  const currentDirectory = () => directory?.current();
  const checked = new WeakMap<OrgConfig, Engine>();
  const node = await startRelayNode(config, {
    createEngine: (options) => checked.get(options.org) ?? createEngine(options),
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
    directory: currentDirectory,
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

// --- `serve --check`

/** What the check leaves to the node: anything that needs its Azure identity (Key Vault, blob storage, Graph). */
class NotContacted extends Error {
  constructor() {
    super('not contacted: the check does not use Azure');
    this.name = 'NotContacted';
  }
}

/** A credential that never gets a token (key references need one to be built; the check never uses it). */
const OFFLINE: TokenCredential = { getToken: () => Promise.reject(new NotContacted()) };

function notContacted(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 10; e = e.cause, depth++) if (e instanceof NotContacted) return true;
  return false;
}

/**
 * A Key Vault org key for the check: everything the node checks without the
 * vault still runs (the bundle parses, names this key, is signed), and the
 * signature check and the unwrap stop there, before any request.
 */
function offlineKey(key: OrgKeyProvider): OrgKeyProvider {
  const stop = () => Promise.reject(new NotContacted());
  return {
    keyRef: key.keyRef,
    wrap: stop,
    async unwrap(_wrapped, ref, alg) {
      key.checkKeyRef?.(ref, alg); // another key's bundle says so, as the node would
      return stop();
    },
    checkKeyRef: key.checkKeyRef,
    verifier: key.verifier && { keyRef: key.verifier.keyRef, verify: stop },
  };
}

/** Every certificate of a PEM file (a chain, a CA bundle), none when it has none; throws on one that is cut short or does not parse. */
function certificatesIn(pem: Buffer): X509Certificate[] {
  return pem.includes('-----BEGIN CERTIFICATE-----') ? pemCertificates(pem) : [];
}

const day = (date: Date) => date.toISOString().slice(0, 10);
const plural = (count: number, one: string, many = `${one}s`) => `${count} ${count === 1 ? one : many}`;
/** A certificate expiring within this many days is worth a warning. */
const EXPIRY_WARNING_DAYS = 30;

export interface RelayCheck {
  /** One line per problem (`file:line setting: problem`); none means the node can start with this file. */
  problems: string[];
  /** `warning: …` and `not checked: …` lines (not problems). */
  notes: string[];
  /** What was found, for the closing line. */
  checked: string[];
}

/**
 * Checks a relay config file and what it names, with the functions the node
 * uses at start-up: the file itself; the TLS certificates and keys (readable,
 * parsed, key matching the certificate, in date, the server certificate and
 * the downstream client certificate covering `hostname`) and CA bundles; the
 * organization config (a folder loads, a bundle file opens with a local key
 * file); the directory file; the Message-ID hash key. Binds nothing, contacts
 * nothing, writes nothing: what needs the node's Azure identity (Key Vault keys
 * and secrets, blob URLs, Graph) is reported as not checked.
 */
export async function checkRelayConfigFile(file: string, options: { now?: Date } = {}): Promise<RelayCheck> {
  const now = options.now ?? new Date();
  const result: RelayCheck = { problems: [], notes: [], checked: [] };
  let config: RelayConfig;
  let lineOf: (path: ReadonlyArray<PropertyKey>) => number | undefined;
  try {
    ({ config, lineOf } = readRelayConfig(file));
  } catch (error) {
    if (!(error instanceof RelayConfigError)) throw error;
    result.problems.push(...error.problems.map((p) => formatRelayProblem(file, p)));
    return result;
  }
  // lines of the relay file read top to bottom; problems in other files (organization, directory) come after
  const problems: Array<{ line: number; text: string }> = [];
  const notes: Array<{ line: number; text: string }> = [];
  const where = (path: ReadonlyArray<PropertyKey>) => ({ path: pathLabel(path), line: lineOf(path) });
  const problem = (path: ReadonlyArray<PropertyKey>, message: string) => problems.push({ line: lineOf(path) ?? 0, text: formatRelayProblem(file, { ...where(path), message }) });
  const elsewhere = (text: string) => problems.push({ line: Infinity, text });
  const note = (kind: 'warning' | 'not checked', path: ReadonlyArray<PropertyKey>, message: string) => notes.push({ line: lineOf(path) ?? 0, text: `${kind}: ${formatRelayProblem(file, { ...where(path), message })}` });
  const read = (path: ReadonlyArray<PropertyKey>, location: string): Buffer | undefined => {
    try {
      return readTlsFiles([location]).files.get(location);
    } catch (error) {
      problem(path, formatCliError(error));
      return undefined;
    }
  };
  const certificates = (path: ReadonlyArray<PropertyKey>, location: string, bytes: Buffer, what: string): X509Certificate[] => {
    try {
      const found = certificatesIn(bytes);
      if (found.length === 0) problem(path, `${location}: no PEM certificate in it (-----BEGIN CERTIFICATE-----); ${what}`);
      return found;
    } catch (error) {
      problem(path, `${location}: ${(error as Error).message}`);
      return [];
    }
  };
  const caFiles = (path: ReadonlyArray<PropertyKey>, value: string | string[] | undefined): Buffer[] | undefined => {
    if (value === undefined) return undefined;
    const list = Array.isArray(value) ? value : [value];
    const bundles: Buffer[] = [];
    list.forEach((location, i) => {
      const at = Array.isArray(value) ? [...path, i] : path;
      const bytes = read(at, location);
      if (bytes && certificates(at, location, bytes, 'expected a PEM CA bundle').length > 0) bundles.push(bytes);
    });
    return bundles.length === list.length ? bundles : undefined;
  };

  /** A certificate (chain) and its key as the node loads them, covering `hostname` as its role needs; returns the leaf, if it is usable. */
  const identity = (section: ReadonlyArray<PropertyKey>, paths: { cert: string; key: string }, ca: Buffer[] | undefined, role: CertificateRole): X509Certificate | undefined => {
    const before = problems.length;
    const certBytes = read([...section, 'cert'], paths.cert);
    const keyBytes = read([...section, 'key'], paths.key);
    const chain = certBytes ? certificates([...section, 'cert'], paths.cert, certBytes, 'expected the PEM certificate (chain)') : [];
    chain.forEach((certificate, i) => {
      const which = i === 0 ? 'the certificate' : `certificate ${i + 1} of the chain (${certificate.subject.replace(/\n/g, ', ')})`;
      const from = new Date(certificate.validFrom);
      const to = new Date(certificate.validTo);
      // the node's own allowance: a certificate from a CA whose clock runs a little ahead is fine
      if (from.getTime() - now.getTime() > CLOCK_SKEW_MS) problem([...section, 'cert'], `${paths.cert}: ${which} is not valid before ${from.toISOString()}`);
      else if (now > to) problem([...section, 'cert'], `${paths.cert}: ${which} expired on ${to.toISOString()}`);
      else if (to.getTime() - now.getTime() < EXPIRY_WARNING_DAYS * 86_400_000) note('warning', [...section, 'cert'], `${paths.cert}: ${which} expires on ${to.toISOString()} (in ${plural(Math.ceil((to.getTime() - now.getTime()) / 86_400_000), 'day')})`);
    });
    const leaf = chain[0];
    const uncovered = leaf && hostnameProblem(leaf, config.hostname, role);
    if (uncovered) problem([...section, 'cert'], `${paths.cert}: ${uncovered}`);
    let key: KeyObject | undefined;
    if (keyBytes) {
      try {
        key = createPrivateKey(keyBytes);
      } catch (error) {
        problem([...section, 'key'], `${paths.key}: not a usable PEM private key (${(error as Error).message})`);
      }
    }
    if (leaf && key && !leaf.checkPrivateKey(key)) problem([...section, 'key'], `${paths.key}: the key does not match the certificate ${paths.cert}`);
    if (problems.length > before || !certBytes || !keyBytes) return undefined;
    try {
      validateIdentity(keyBytes, certBytes, ca); // what the node does at start-up
    } catch (error) {
      problem(section, `${paths.cert} with ${paths.key}: not a usable TLS identity (${(error as Error).message})`);
      return undefined;
    }
    return leaf;
  };

  // --- TLS: the inbound server identity and its client CA bundle(s), the downstream client identity
  const inboundCa = caFiles(['tls', 'ca'], config.tls.ca);
  const server = identity(['tls'], config.tls, inboundCa, 'server');
  caFiles(['downstream', 'tls', 'ca'], config.downstream.tls.ca);
  const client = identity(['downstream', 'tls'], config.downstream.tls, undefined, 'downstream-client');
  const until = (leaf: X509Certificate) => `${certificateFacts(leaf.toString()).subject} valid until ${day(new Date(leaf.validTo))}`;
  if (server && client && config.tls.cert === config.downstream.tls.cert) result.checked.push(`certificate ${until(server)} (server and downstream client)`);
  else {
    if (server) result.checked.push(`certificate ${until(server)}`);
    if (client) result.checked.push(`client certificate ${until(client)}`);
  }

  // --- the organization config, through the source the node polls (no state directory: nothing is recorded)
  const { source, keyRef } = config.org;
  let key: OrgKeyProvider | undefined;
  let keyUsable = true;
  if (keyRef) {
    try {
      key = keyProviderFromRef(keyRef, { credential: () => OFFLINE });
      if (isAzureKeyRef(keyRef)) key = offlineKey(key);
    } catch (error) {
      keyUsable = false;
      problem(['org', 'keyRef'], (error as Error).message);
    }
  }
  const folder = !isBlobUrl(source) && existsSync(source) && statSync(source).isDirectory();
  if (isBlobUrl(source)) {
    note('not checked', ['org', 'source'], `${source}: not downloaded (a blob is read with the node's managed identity, which the check does not use); the node logs config_loaded or config_refused when it starts`);
  } else if (keyUsable) {
    const orgSource = createOrgSource({ location: source, key, pollSeconds: 0 });
    let failure: unknown;
    orgSource.on('error', (error: Error) => (failure = error));
    const loaded = await orgSource.reload();
    orgSource.stop();
    const org = orgSource.current();
    if (loaded === 'loaded' && org) {
      result.checked.push(folder ? `org ${org.orgId} (folder)` : `org ${org.orgId} v${org.version}`);
      if (!config.passThrough) {
        try {
          createEngine({ org, directory: () => undefined }); // compiles rules and templates, as the node does for each version
        } catch (error) {
          problem(['org', 'source'], `${source}: the signature engine refuses this configuration: ${(error as Error).message}`);
        }
      }
    } else if (notContacted(failure)) {
      let sealed = '';
      try {
        const header = inspect(readFileSync(source));
        sealed = ` (org ${header.orgId} v${header.version}, sealed under ${header.key.ref}${header.signature ? `, signed by ${header.signature.kid}` : ''})`;
      } catch {
        // the source read the header already; say less rather than fail here
      }
      note('not checked', ['org', 'keyRef'], `${source}${sealed}: signature and decryption not checked — they need Key Vault, which the check does not use; the node does both with its managed identity when it starts`);
    } else if (failure instanceof ConfigError) {
      for (const issue of failure.issues) elsewhere(formatIssue(issue, folder ? join(source, issue.file) : `${source}: ${issue.file}`));
    } else {
      problem(['org', 'source'], failure === undefined ? `${source}: not loaded` : formatCliError(failure));
    }
  }

  // --- the directory the node reads senders from
  const { graph } = config.directory;
  const directoryFile = config.directory.file ?? (!graph && folder && existsSync(join(source, DIRECTORY_FILE)) ? join(source, DIRECTORY_FILE) : undefined);
  if (directoryFile) {
    try {
      const directory = await loadDirectoryFile(directoryFile);
      result.checked.push(`directory ${plural(directory.size, 'user')}`);
    } catch (error) {
      if (error instanceof ConfigError) for (const issue of error.issues) elsewhere(formatIssue(issue, directoryFile)); // issues name the file by its base name
      else problem(['directory', 'file'], formatCliError(error));
    }
  } else if (graph) {
    if (graph.app?.secret.startsWith('file:')) {
      try {
        await graphCredential(graph, () => OFFLINE); // reads the secret file, as the node does
      } catch (error) {
        problem(['directory', 'graph', 'app', 'secret'], (error as Error).message);
      }
    } else if (graph.app) {
      note('not checked', ['directory', 'graph', 'app', 'secret'], `${graph.app.secret}: not read (a Key Vault secret is read with the node's managed identity, which the check does not use)`);
    }
    note('not checked', ['directory', 'graph'], `Microsoft Graph (tenant ${graph.tenantId}${graph.cloud === 'global' ? '' : `, ${graphEndpoints(graph).baseUrl}`}) not contacted; the node logs directory-loaded when it has read it`);
  } else if (!folder) {
    note('warning', ['directory'], 'no directory (neither directory.file nor directory.graph): no sender is found, so messages get add-ons but no personal signature');
  }

  // --- the Message-ID hash key
  if (config.logging.idHashKeyFile) read(['logging', 'idHashKeyFile'], config.logging.idHashKeyFile); // the node reads it at start-up
  const byLine = (a: { line: number }, b: { line: number }) => a.line - b.line;
  result.problems = problems.sort(byLine).map((p) => p.text);
  result.notes = notes.sort(byLine).map((n) => n.text);
  return result;
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('run the relay: SMTP in (mutual TLS) → signature engine → SMTP out, with /metrics, /healthz, /readyz')
    .requiredOption('-c, --config <file>', 'relay configuration (YAML)')
    .option('--check', 'check the configuration and the files it names (certificates, keys, organization config, directory) without starting the relay; one line per problem, exit 1 if any')
    .action(async (options: { config: string; check?: boolean }) => {
      if (options.check) {
        const { problems, notes, checked } = await checkRelayConfigFile(options.config);
        const lines = [...problems, ...notes, problems.length ? `${options.config}: ${plural(problems.length, 'problem')}` : `${options.config}: ok (${checked.join(', ')})`];
        process.stdout.write(`${lines.join('\n')}\n`);
        if (problems.length) process.exitCode = 1;
        return;
      }
      const config = loadRelayConfig(options.config);
      const node = await startFromConfig(config);
      drainOnSignals(node);
    });
}
