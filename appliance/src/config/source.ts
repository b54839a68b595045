// Where the relay's organization configuration comes from, kept current: a
// folder (development), a sealed bundle file, or a sealed bundle in Azure Blob
// Storage. The source polls; a new version is opened (the data key unwrapped
// once per version), validated, and swapped in whole; anything that fails to
// open or validate is refused, logged and counted while the running
// configuration stays. An older version than the running one is refused
// (rollback); with a state directory, the highest version loaded per
// organization is kept on disk, so a restarted node refuses it too.
// Readiness ("no config yet") is for the relay to derive from status().
import { EventEmitter } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { StoragePipelineOptions } from '@azure/storage-blob';
import { z } from 'zod';
import type { CryptographyClientOptions } from '@azure/keyvault-keys';
import type { Logger } from '../observability';
import type { SignetMetrics } from '../observability';
import { createAzureCredential, keyProviderFromRef, type OrgKeyProvider, type TokenCredential } from '../secrets';
import { BundleError, inspect, unseal, contentHash } from './bundle';
import { ConfigError } from './errors';
import { loadOrgFromFiles, readOrgFolder } from './loader';
import type { OrgConfig } from './types';
import { fetchBlob, isBlobUrl, MAX_BUNDLE_BYTES } from './source/blob';

export { publishBundle, writeFileAtomic, type PublishResult } from './source/publish';
export { fetchBlob, uploadBlob, isBlobUrl, MAX_BUNDLE_BYTES } from './source/blob';

export interface OrgSourceOptions {
  /** A folder, a bundle file, or an https blob URL of a bundle. */
  location: string;
  /** Opens bundles (required unless the location is a folder). */
  key?: OrgKeyProvider;
  /** Or the key by reference (`file:PATH` or a Key Vault key URL), opened with `credential`. */
  keyRef?: string;
  /** Key Vault client options for `keyRef` (retries; a loopback stand-in in tests). */
  keyClientOptions?: CryptographyClientOptions;
  /** Seconds between polls; default 30. 0 = no polling (load once). */
  pollSeconds?: number;
  /** Refuse bundles of any other organization. Default: once loaded, the loaded one's. */
  expectOrgId?: string;
  /**
   * The node's state directory (the packaged unit's StateDirectory, /var/lib/signet).
   * The highest bundle version loaded (and its content hash) per organization is
   * kept there in VERSION_STATE_FILE, so that after a restart an older bundle is
   * still refused as a rollback. Without one, that floor lives in memory only.
   */
  stateDir?: string;
  /** For blob URLs; default: the node's managed identity. */
  credential?: TokenCredential;
  blobClientOptions?: StoragePipelineOptions;
  metrics?: SignetMetrics;
  logger?: Logger;
  /**
   * Throws when the node cannot run a configuration that is otherwise valid (the
   * engine compiles its templates). Such a version is refused like an invalid
   * bundle: not announced, not recorded as the rollback floor.
   */
  accept?: (org: OrgConfig) => void;
  /** How long one poll (download, key operations, checks) may take before it counts as failed; default 120. */
  pollTimeoutSeconds?: number;
}

export interface OrgSourceStatus {
  loaded: boolean;
  orgId?: string;
  version?: string;
  loadedAt?: Date;
  /** Why the last attempt was refused or failed; cleared by the next successful load. */
  lastError?: string;
}

export type ReloadResult = 'loaded' | 'unchanged' | 'refused' | 'failed';
/** The result label of signet_config_reloads_total (a transient failure counts as refused). */
export const CONFIG_RELOAD_RESULTS = ['loaded', 'unchanged', 'refused'] as const satisfies ReadonlyArray<ReloadResult>;

export interface OrgSource extends EventEmitter {
  /** Loads once (never throws), then polls. Resolves after the first attempt. */
  start(): Promise<void>;
  stop(): void;
  current(): OrgConfig | undefined;
  status(): OrgSourceStatus;
  /** One poll now (what the timer does). */
  reload(): Promise<ReloadResult>;
}

type Kind = 'folder' | 'bundle-file' | 'blob';

/** The rollback floor's file in the state directory. */
export const VERSION_STATE_FILE = 'config-versions.json';
const VERSION_STATE_FORMAT = 'signet-config-versions/1';
const versionStateSchema = z.strictObject({
  format: z.literal(VERSION_STATE_FORMAT),
  orgs: z.record(z.string().min(1), z.strictObject({ version: z.number().int().positive(), contentHash: z.string().min(1) })),
});
type VersionFloor = { version: number; contentHash: string };

/** Write a private file so that a crash leaves the old content or the new, never a mix: temporary file (0600), fsync, rename. */
async function writePrivateFileAtomic(file: string, text: string): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temporary = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  try {
    const directory = await open(dir, 'r');
    try {
      await directory.sync(); // the rename itself survives a power loss
    } finally {
      await directory.close();
    }
  } catch {
    // not every file system syncs a directory; the file is written either way
  }
}

/** The highest version loaded per organization, in `<stateDir>/config-versions.json`. */
function createVersionState(stateDir: string) {
  const file = path.join(stateDir, VERSION_STATE_FILE);
  let floors: Map<string, VersionFloor> | undefined;
  async function load(): Promise<Map<string, VersionFloor>> {
    if (floors) return floors;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return (floors = new Map());
      throw new Error(`cannot read ${file} (the highest configuration version this node loaded, for rollback protection): ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
    }
    let parsed;
    try {
      parsed = versionStateSchema.parse(JSON.parse(text));
    } catch (error) {
      // Fail closed: without the floor an older bundle could be put back. Nothing loads until the file is fixed or removed.
      throw new Error(`${file} is garbled: it keeps the highest configuration version this node loaded (rollback protection); nothing is loaded until it is repaired or deleted (the next bundle loaded then sets the floor again)`, { cause: error });
    }
    return (floors = new Map(Object.entries(parsed.orgs)));
  }
  return {
    file,
    floor: async (orgId: string) => (await load()).get(orgId),
    /** The organizations this node has loaded a bundle of. */
    orgs: async () => [...(await load()).keys()],
    async record(orgId: string, floor: VersionFloor): Promise<void> {
      const next = new Map(await load());
      const before = next.get(orgId);
      if (before && before.version === floor.version && before.contentHash === floor.contentHash) return;
      next.set(orgId, floor);
      const orgs = Object.fromEntries([...next].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
      await writePrivateFileAtomic(file, `${JSON.stringify({ format: VERSION_STATE_FORMAT, orgs }, null, 2)}\n`);
      floors = next;
    },
  };
}

/** Failures worth retrying on the next poll rather than remembering as refused. */
function isTransient(error: unknown): boolean {
  return !(error instanceof BundleError || error instanceof ConfigError) || (error instanceof BundleError && error.code === 'key-unavailable');
}

export function createOrgSource(options: OrgSourceOptions): OrgSource {
  const emitter = new EventEmitter() as OrgSource;
  const pollMs = Math.max(0, (options.pollSeconds ?? 30) * 1000);
  const log = options.logger;
  let kind: Kind | undefined;
  let config: OrgConfig | undefined;
  let loadedAt: Date | undefined;
  let loadedHash: string | undefined; // content hash of the running config
  let loadedVersion: number | undefined; // bundle version of the running config
  let loadedBundle: string | undefined; // sha256 of the running bundle's bytes
  // Bumped when a poll overruns its deadline: a poll that finishes after that changes nothing.
  let generation = 0;
  let lastError: string | undefined;
  let seen: string | undefined; // fingerprint of the last thing examined (file stat / bytes hash / etag)
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<ReloadResult> | undefined;
  let stopped = false;
  let credential = options.credential;
  const nodeCredential = () => (credential ??= createAzureCredential({ kind: 'node' }));
  const key = options.key ?? (options.keyRef ? keyProviderFromRef(options.keyRef, { credential: nodeCredential, clientOptions: options.keyClientOptions }) : undefined);
  const versionState = options.stateDir ? createVersionState(options.stateDir) : undefined;

  const count = (result: ReloadResult) => options.metrics?.configReloads.inc({ result: result === 'failed' ? 'refused' : result });
  // at 0 from the start: the alert's increase() cannot see a series whose first sample is already 1
  for (const result of CONFIG_RELOAD_RESULTS) options.metrics?.configReloads.inc({ result }, 0);
  // the counter says a refusal happened; this says whether the published config is still the refused one
  const publishedRefused = (refused: boolean) => options.metrics?.configRefused.set(refused ? 1 : 0);
  publishedRefused(false);

  function swap(next: OrgConfig, hash: string, version: number | undefined, bundle?: string): void {
    config = next;
    loadedAt = new Date();
    loadedHash = hash;
    loadedVersion = version;
    loadedBundle = bundle;
    lastError = undefined;
    publishedRefused(false);
    if (options.metrics) {
      options.metrics.configInfo.reset();
      options.metrics.configInfo.set({ org: next.orgId, version: next.version }, 1);
      options.metrics.configLoadedTimestamp.set(loadedAt.getTime() / 1000);
    }
    log?.info({ event: 'config_loaded', org: next.orgId, version: next.version, contentHash: hash, location: options.location }, 'configuration loaded');
    emitter.emit('config', next);
  }

  function refuse(error: unknown, fingerprint: string | undefined): ReloadResult {
    const message = error instanceof Error ? error.message : String(error);
    lastError = message;
    const transient = isTransient(error);
    // A refused version is remembered so it is reported once, not at every poll; transient failures are retried.
    if (!transient) seen = fingerprint;
    log?.error({ event: transient ? 'config_load_failed' : 'config_refused', location: options.location, running: config?.version, err: message }, transient ? 'configuration could not be loaded; keeping the running one' : 'configuration refused; keeping the running one');
    if (emitter.listenerCount('error') > 0) emitter.emit('error', error instanceof Error ? error : new Error(message));
    const result: ReloadResult = transient ? 'failed' : 'refused';
    // a transient failure says nothing of the published config
    if (!transient) publishedRefused(true);
    count(result);
    return result;
  }

  async function detectKind(): Promise<Kind> {
    if (isBlobUrl(options.location)) return 'blob';
    const info = await stat(options.location);
    return info.isDirectory() ? 'folder' : 'bundle-file';
  }

  async function openBundle(bytes: Buffer, fingerprint: string, current: () => boolean): Promise<ReloadResult> {
    const header = inspect(bytes);
    const expectOrgId = options.expectOrgId ?? config?.orgId;
    const bundleHash = createHash('sha256').update(bytes).digest('hex');
    if (loadedVersion !== undefined && header.version === loadedVersion) {
      if (header.contentHash !== loadedHash) {
        throw new BundleError('rollback', `bundle refused: version ${header.version} is already running with other content; a new configuration needs a higher version`);
      }
      // The header is clear text: other bytes under the running version's header (resealed under a new
      // key version, or altered) are the running configuration only once they open as it.
      if (bundleHash !== loadedBundle) {
        if (!key) throw new BundleError('key-unavailable', `${options.location} is a sealed bundle but no organization key is configured`);
        await unseal(bytes, key, { expectOrgId, minVersion: header.version });
        if (!current()) return 'unchanged';
        loadedBundle = bundleHash;
      }
      seen = fingerprint;
      publishedRefused(false); // the running one published again (a refused one taken back)
      count('unchanged');
      return 'unchanged';
    }
    // The floor kept across restarts (the header's orgId is authenticated by unseal below; a relabelled bundle fails there).
    if (versionState && !expectOrgId) {
      // a node that has run an organization's configuration runs no other's, even after a restart
      const known = await versionState.orgs();
      if (known.length > 0 && !known.includes(header.orgId)) {
        throw new BundleError('wrong-org', `bundle refused: it is organization ${JSON.stringify(header.orgId)}, but this node has run ${known.map((o) => JSON.stringify(o)).join(', ')} (${versionState.file}; remove the file to move the node to another organization)`);
      }
    }
    const persisted = versionState ? await versionState.floor(header.orgId) : undefined;
    if (persisted && header.version === persisted.version && header.contentHash !== persisted.contentHash) {
      throw new BundleError('rollback', `bundle refused: version ${header.version} was loaded before with other content (${versionState!.file}); a new configuration needs a higher version`);
    }
    const floor = Math.max(loadedVersion ?? 0, persisted?.version ?? 0);
    if (!key) throw new BundleError('key-unavailable', `${options.location} is a sealed bundle but no organization key is configured`);
    const { files } = await unseal(bytes, key, { expectOrgId, minVersion: floor > 0 ? floor : undefined });
    const next = loadOrgFromFiles(files, { version: String(header.version), label: `${options.location} (version ${header.version})` });
    if (next.orgId !== header.orgId) {
      throw new BundleError('wrong-org', `bundle refused: its header says organization ${JSON.stringify(header.orgId)} but its org.yaml says ${JSON.stringify(next.orgId)}`);
    }
    acceptable(next);
    // a poll that overran its deadline neither records nor swaps: a later one may already have loaded a newer version
    if (!current()) return 'unchanged';
    if (versionState) {
      try {
        await versionState.record(header.orgId, { version: header.version, contentHash: header.contentHash });
      } catch (error) {
        // The configuration is valid and stays loaded; only the floor's persistence is missing (retried at the next load).
        log?.error({ event: 'config_state_write_failed', file: versionState.file, err: error instanceof Error ? error.message : String(error) }, 'could not record the loaded version; rollback protection across restarts is degraded');
      }
    }
    seen = fingerprint;
    swap(next, header.contentHash, header.version, bundleHash);
    count('loaded');
    return 'loaded';
  }

  function acceptable(next: OrgConfig): void {
    if (!options.accept) return;
    try {
      options.accept(next);
    } catch (error) {
      throw new BundleError('unusable', `configuration version ${next.version} refused by the engine: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }

  async function poll(current: () => boolean): Promise<ReloadResult> {
    let fingerprint: string | undefined;
    try {
      kind ??= await detectKind();
      if (kind === 'folder') {
        const files = await readOrgFolder(options.location);
        const hash = contentHash(files);
        fingerprint = hash;
        if (hash === loadedHash || hash === seen) {
          if (hash === loadedHash) publishedRefused(false);
          count('unchanged');
          return 'unchanged';
        }
        const next = loadOrgFromFiles(files, { version: 'local', label: options.location });
        if (options.expectOrgId && next.orgId !== options.expectOrgId) {
          throw new BundleError('wrong-org', `configuration refused: ${options.location} is organization ${JSON.stringify(next.orgId)}, expected ${JSON.stringify(options.expectOrgId)}`);
        }
        acceptable(next);
        if (!current()) return 'unchanged';
        seen = hash;
        swap(next, hash, undefined);
        count('loaded');
        return 'loaded';
      }
      if (kind === 'bundle-file') {
        const info = await stat(options.location);
        const statPrint = `stat:${info.ino}:${info.size}:${info.mtimeMs}`;
        if (statPrint === seen) {
          count('unchanged');
          return 'unchanged';
        }
        fingerprint = statPrint;
        if (info.size > MAX_BUNDLE_BYTES) throw new BundleError('not-a-bundle', `${options.location}: ${info.size} bytes, not a config bundle`);
        const bytes = await readFile(options.location);
        return await openBundle(bytes, statPrint, current);
      }
      const fetched = await fetchBlob(options.location, { credential: nodeCredential(), clientOptions: options.blobClientOptions, etag: seen?.startsWith('etag:') ? seen.slice(5) : undefined });
      if (fetched.status === 'unchanged') {
        count('unchanged');
        return 'unchanged';
      }
      fingerprint = fetched.etag ? `etag:${fetched.etag}` : `sha256:${createHash('sha256').update(fetched.data).digest('hex')}`;
      return await openBundle(fetched.data, fingerprint, current);
    } catch (error) {
      if (!current()) return 'failed';
      return refuse(error, fingerprint);
    }
  }

  function schedule(): void {
    if (stopped || pollMs === 0) return;
    timer = setTimeout(() => {
      void emitter.reload().finally(schedule);
    }, pollMs);
    timer.unref();
  }

  const pollTimeoutMs = Math.max(1, (options.pollTimeoutSeconds ?? 120) * 1000);
  emitter.reload = () => {
    // One poll at a time: a slow download must not overlap the next tick. A poll that
    // hangs (a storage or Key Vault request never answered) fails at its deadline, so
    // polling goes on and a starting node gets to listen; it changes nothing if it ends later.
    running ??= new Promise<ReloadResult>((resolve) => {
      const mine = generation;
      const deadline = setTimeout(() => {
        generation++;
        resolve(refuse(new Error(`loading ${options.location} took longer than ${pollTimeoutMs / 1000} s`), undefined));
      }, pollTimeoutMs);
      deadline.unref();
      void poll(() => generation === mine).then((result) => {
        clearTimeout(deadline);
        resolve(result);
      });
    }).finally(() => (running = undefined));
    return running;
  };
  emitter.start = async () => {
    stopped = false;
    await emitter.reload();
    if (!timer) schedule();
  };
  emitter.stop = () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    timer = undefined;
  };
  emitter.current = () => config;
  emitter.status = () => ({ loaded: config !== undefined, orgId: config?.orgId, version: config?.version, loadedAt, lastError });
  return emitter;
}
