// The directory from Microsoft Graph, app-only with User.Read.All and
// GroupMember.Read.All and nothing more. A full load of the users (the users
// delta query's first round, paged), then incremental refreshes from its delta
// link; transitive membership of the groups the rules name. The snapshot lives
// in memory only. A refresh that fails keeps the last good snapshot, and is
// counted.
// Users' 96x96 photos, loaded only while templates use them, need no further
// permission: User.Read.All lets an application read them (ProfilePhoto.Read.All
// is the least privileged permission for that, not one more the app needs).
// Photos load in the background, after the users are published: a node starts
// signing without waiting for thousands of photo requests, and refreshes of
// users and memberships never wait behind them.
import { createHash } from 'node:crypto';
import type { Client } from '@microsoft/microsoft-graph-client';
import type { TokenCredential } from '@azure/identity';
import { directorySyncCounter, type Logger, type SignetMetrics } from '../../observability';
import type { DirectorySnapshot, DirectoryUser, UserPhoto } from '../types';
import { MAX_PHOTO_BYTES, readPhoto } from '../photo';
import { applyUserOverrides, createDirectorySnapshot, normalizeAddress } from '../snapshot';
import { createGraphClient } from './client';

// The Graph SDK, loaded with the client on first use (already in memory once a client exists).
const graphSdk = () => require('@microsoft/microsoft-graph-client') as typeof import('@microsoft/microsoft-graph-client');

export const USER_SELECT = [
  'id', 'mail', 'proxyAddresses', 'displayName', 'givenName', 'surname', 'jobTitle', 'department', 'companyName',
  'mobilePhone', 'businessPhones', 'officeLocation', 'streetAddress', 'city', 'state', 'postalCode', 'country',
  'employeeId', 'faxNumber', 'onPremisesExtensionAttributes',
];
const STRING_ATTRIBUTES = USER_SELECT.filter((name) => !['id', 'mail', 'proxyAddresses', 'businessPhones', 'onPremisesExtensionAttributes'].includes(name));
/**
 * Bound on pages followed in one listing, against a next link that never ends.
 * Users come from the users delta query, whose page size is Graph's own ($top
 * is not supported there; a few hundred users a page at most): 10,000 pages are
 * a million users or more. Group members come 999 a page ($top=999).
 */
const MAX_PAGES = 10_000;
/** The longest delay a Node.js timer takes; a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Photo requests in flight at once: a tenant of thousands must not open thousands of requests. */
const PHOTO_CONCURRENCY = 4;
/**
 * A photo pass stops after this many failed requests in a row (Graph's photo service down, or
 * refusing the app): the users it did not reach keep what they had and are asked at the next refresh.
 */
const MAX_PHOTO_FAILURES_IN_A_ROW = 20;
/** An error answer is read this far at most (its JSON names Graph's error code). */
const ERROR_BODY_BYTES = 64 * 1024;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface GraphUser {
  id: string;
  mail?: string | null;
  proxyAddresses?: string[] | null;
  businessPhones?: string[] | null;
  onPremisesExtensionAttributes?: Record<string, string | null> | null;
  '@removed'?: { reason: string };
  [attribute: string]: unknown;
}

interface Page<T> {
  value: T[];
  '@odata.nextLink'?: string;
  '@odata.deltaLink'?: string;
}

export interface GraphDirectoryOptions {
  credential: TokenCredential;
  /** Groups the rules reference: object ids or display names. */
  groups?: string[];
  /** Seconds between delta refreshes; default 300. 0 = no timer (call refresh()). */
  refreshSeconds?: number;
  /** After a failed refresh the next one comes this much sooner: default 30 s, doubling per failure up to refreshSeconds. */
  failedRetrySeconds?: number;
  /** Default https://graph.microsoft.com/. */
  baseUrl?: string;
  /** Token scope; default https://graph.microsoft.com/.default (see GRAPH_CLOUDS). */
  scope?: string;
  /**
   * Retries (throttling) are waited for only until this long after the refresh last made progress (began, or
   * was answered a page); default 120 s. A large listing that keeps moving may take longer as a whole.
   */
  maxRefreshSeconds?: number;
  /** Longest one Graph request may take (each attempt); default 60 s. A request that times out fails the refresh. */
  requestTimeoutSeconds?: number;
  maxRetries?: number;
  retryDelaySeconds?: number;
  /**
   * Load users' photos (96x96) for templates' photo(); default false. Held in memory while on;
   * see setPhotos().
   */
  photos?: boolean;
  /**
   * Hours after which every user's photo is fetched again (a changed photo does not reliably show in the
   * users delta query); default 24. 0 = only at a full load. Changed users' photos are fetched at every refresh.
   */
  photoRefreshHours?: number;
  metrics?: SignetMetrics;
  logger?: Logger;
}

export interface GraphDirectorySource {
  /** Full load (never throws; see status), then refreshes on a timer. */
  start(): Promise<void>;
  stop(): void;
  /** The last good snapshot, with the config's per-user overrides applied; undefined before the first load. */
  current(): DirectorySnapshot | undefined;
  /** Per-user attributes from the org config (address → attributes); they win over Graph. */
  setOverrides(overrides: ReadonlyMap<string, Readonly<Record<string, string>>>): void;
  /**
   * The groups a new configuration's rules name. When they differ from the
   * ones loaded, memberships are loaded again now (after a refresh in
   * progress), not at the next refresh; the same groups cost nothing.
   */
  setGroups(groups: readonly string[]): Promise<'unchanged' | 'groups' | 'full' | 'delta' | 'failed'>;
  /**
   * Whether a new configuration's templates use photos. Turned on, a pass over every user's photo starts now
   * in the background (after a refresh in progress; a full load first when nothing is loaded yet); turned off, the photos are
   * dropped at once (no Graph request); the same value costs nothing ('unchanged', also when a refresh that
   * began after the call applied it first). While stopped, read at the next start.
   */
  setPhotos(enabled: boolean): Promise<'unchanged' | 'photos' | 'full' | 'delta' | 'failed'>;
  /**
   * Resolves when no photo pass runs (photos load in the background after a refresh or setPhotos, which
   * do not wait for them). Never rejects.
   */
  photosSettled(): Promise<void>;
  /** One refresh now: full load the first time (or when the delta link expired), delta after. */
  refresh(): Promise<'full' | 'delta' | 'failed'>;
  /** `unmatched`: the groups of the last membership load that match nobody, and why. */
  status(): { syncedAt?: Date; users: number; lastError?: string; unmatched: ReadonlyMap<string, 'not found' | 'ambiguous'> };
}

/** OData string literal content: a quote is doubled. (The Graph SDK does not encode query values; callers do.) */
function escapeOData(value: string): string {
  return value.replace(/'/g, "''");
}

/**
 * Graph's answer that a delta link is no longer valid, so change tracking must
 * start over with a full load: 410 Gone, or (as Graph answers an expired
 * directory delta token) a 4xx with the error code syncStateNotFound or
 * resyncRequired.
 */
function isDeltaReset(error: unknown): boolean {
  if (!(error instanceof graphSdk().GraphError)) return false;
  if (error.statusCode === 410) return true;
  return error.statusCode >= 400 && error.statusCode < 500 && /^(syncstatenotfound|resyncrequired)$/i.test(String(error.code ?? ''));
}

/** Status, Graph error code (read from the body of a binary request's error too) and, for no answer at all, why. */
function describeError(error: unknown): { status?: number; code?: string; err?: string } {
  if (!(error instanceof graphSdk().GraphError)) return { err: error instanceof Error ? error.message : String(error) };
  let code = error.code ?? undefined;
  const body: unknown = error.body;
  if (!code && (body instanceof ArrayBuffer || Buffer.isBuffer(body)) && body.byteLength <= ERROR_BODY_BYTES) {
    try {
      const parsed = JSON.parse(Buffer.from(body as ArrayBuffer).toString('utf8')) as { error?: { code?: unknown } };
      if (typeof parsed.error?.code === 'string') code = parsed.error.code;
    } catch {
      // not a Graph error body
    }
  }
  // Graph's own messages may name the user (a UPN); only a request that got no answer says why (a timeout, the network).
  return { status: error.statusCode, ...(code ? { code } : {}), ...(error.statusCode > 0 ? {} : { err: error.message }) };
}

/**
 * The body of an answer, unless it is longer than `limit` bytes (by its Content-Length, or once that
 * many have come): then the rest is not read, the connection's stream is cancelled, and undefined.
 */
async function readAtMost(response: Response, limit: number): Promise<Buffer | undefined> {
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (declared > limit) {
    await response.body?.cancel().catch(() => undefined);
    return undefined;
  }
  if (!response.body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let size = 0;
  // leaving the loop early cancels the stream
  for await (const chunk of response.body) {
    size += chunk.byteLength;
    if (size > limit) return undefined;
    chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  }
  return Buffer.concat(chunks, size);
}

/** Graph's 404: the object does not exist (any more). */
function isNotFound(error: unknown): boolean {
  return error instanceof graphSdk().GraphError && error.statusCode === 404;
}

export function createGraphDirectorySource(options: GraphDirectoryOptions): GraphDirectorySource {
  const maxRefreshMs = (options.maxRefreshSeconds ?? 120) * 1000;
  let deadline = 0;
  const client: Client = createGraphClient({
    credential: options.credential,
    baseUrl: options.baseUrl,
    scope: options.scope,
    maxRetries: options.maxRetries,
    retryDelaySeconds: options.retryDelaySeconds,
    requestTimeoutSeconds: options.requestTimeoutSeconds,
    deadline: () => deadline,
  });
  const users = new Map<string, GraphUser>(); // by object id
  const memberships = new Map<string, Set<string>>(); // user id → group labels (ids and names)
  let deltaLink: string | undefined;
  let snapshot: DirectorySnapshot | undefined;
  let overrides: ReadonlyMap<string, Readonly<Record<string, string>>> = new Map();
  let view: DirectorySnapshot | undefined;
  let lastError: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<'full' | 'delta' | 'failed'> | undefined;
  let groupRefs: readonly string[] = [...(options.groups ?? [])];
  let groupsReload: Promise<'groups' | 'full' | 'delta' | 'failed'> | undefined;
  let lock: Promise<unknown> = Promise.resolve();
  let stopped = false;
  let failures = 0; // refreshes failed in a row
  let unmatched: ReadonlyMap<string, 'not found' | 'ambiguous'> = new Map();
  const photoRefreshMs = (options.photoRefreshHours ?? 24) * 3_600_000;
  let photosWanted = options.photos ?? false; // what the configuration asks for
  let photosOn = false; // what the maps hold: set by the refresh or reload that applies photosWanted
  const photos = new Map<string, UserPhoto>(); // by user object id, only while photosOn
  // user ids whose photo is to be fetched (changed, or failed before), each with a number that says when it became due
  const photosPending = new Map<string, number>();
  let dueCount = 0;
  const photosDue = { add: (id: string) => void photosPending.set(id, ++dueCount), delete: (id: string) => void photosPending.delete(id) };
  let photoPassAt: number | undefined; // when the last pass over every user began; undefined: one is due
  let photosReload: Promise<'unchanged' | 'photos' | 'full' | 'delta' | 'failed'> | undefined;
  let photoSetting = 0; // counts photos turned on or off: a pass begun under an earlier setting stores nothing more
  let photoRun: Promise<void> | undefined; // the background photo pass, while one runs
  let photoRunAgain = false; // more became due while it ran: it goes round once more
  // Until the first good load the last sync is 0 ("never"), so a node that never loads is seen (and alerted on).
  options.metrics?.directoryLastSync.set({ source: 'graph' }, 0);
  const countSync = directorySyncCounter(options.metrics, 'graph');

  async function* pages<T>(first: string, headers: Record<string, string> = {}): AsyncGenerator<Page<T>> {
    let next: string | undefined = first;
    // Digests of the next links given so far: a link given twice would lead round the same pages until MAX_PAGES.
    const given = new Set<string>();
    for (let n = 0; next && n < MAX_PAGES; n++) {
      const page: Page<T> = await client.api(next).headers(headers).get();
      // Progress: a throttle late in a long listing (a large tenant's first load) may still be waited for.
      deadline = Date.now() + maxRefreshMs;
      yield page;
      next = page['@odata.nextLink'];
      if (next === undefined) break;
      const digest = createHash('sha256').update(next).digest('base64');
      if (given.has(digest)) throw new Error('Microsoft Graph gave a next link it had given before in the same listing; refusing to go round in circles');
      given.add(digest);
    }
    if (next) throw new Error(`more than ${MAX_PAGES} pages in one listing; refusing to go on`);
  }

  /** The user as the snapshot holds it, and whether its mail address is one of its own proxy addresses (one Exchange routes). */
  function toDirectoryUser(user: GraphUser): { user: DirectoryUser; routed: boolean } | undefined {
    const aliases = new Set<string>();
    let primary: string | undefined;
    for (const proxy of Array.isArray(user.proxyAddresses) ? user.proxyAddresses : []) {
      const m = typeof proxy === 'string' ? /^smtp:(.+)$/i.exec(proxy) : null;
      if (!m || !m[1].trim()) continue;
      const address = normalizeAddress(m[1]);
      aliases.add(address);
      // The upper-case prefix marks the primary address.
      if (proxy.startsWith('SMTP:')) primary ??= address;
    }
    const mail = (typeof user.mail === 'string' && user.mail.trim() ? normalizeAddress(user.mail) : undefined) ?? primary ?? [...aliases][0];
    if (!mail) return undefined; // no mailbox address: never a sender
    const routed = aliases.delete(mail);
    const attributes: Record<string, string | undefined> = {};
    for (const name of STRING_ATTRIBUTES) {
      const value = user[name];
      attributes[name] = typeof value === 'string' ? value : undefined;
    }
    const phones = Array.isArray(user.businessPhones) ? user.businessPhones.filter((p): p is string => typeof p === 'string' && p !== '') : [];
    attributes.businessPhones = phones.length > 0 ? phones.join(', ') : undefined;
    for (let i = 1; i <= 15; i++) {
      const value = user.onPremisesExtensionAttributes?.[`extensionAttribute${i}`];
      attributes[`extensionAttribute${i}`] = typeof value === 'string' ? value : undefined;
    }
    const photo = photosOn ? photos.get(user.id) : undefined;
    return { user: { id: user.id, mail, aliases: [...aliases], attributes, groups: [...(memberships.get(user.id) ?? [])], ...(photo ? { photo } : {}) }, routed };
  }

  function rebuild(syncedAt = new Date()): void {
    const list: Array<{ user: DirectoryUser; routed: boolean }> = [];
    for (const user of users.values()) {
      const converted = toDirectoryUser(user);
      if (converted) list.push(converted);
    }
    // Two users may claim one address: Exchange keeps proxy addresses unique, not `mail` (a user without a mailbox,
    // e.g. synced from on-premises, may carry anyone's). The snapshot gives an address to its first claimant, so the
    // mailbox that routes it comes first, then the lower object id: every node decides alike, in any listing order.
    list.sort((a, b) => Number(b.routed) - Number(a.routed) || (a.user.id! < b.user.id! ? -1 : a.user.id! > b.user.id! ? 1 : 0));
    snapshot = createDirectorySnapshot(list.map((entry) => entry.user), syncedAt);
    view = applyUserOverrides(snapshot, overrides);
    options.metrics?.directoryPhotos.set({ source: 'graph' }, list.reduce((n, entry) => n + (entry.user.photo ? 1 : 0), 0));
  }

  async function loadGroups(): Promise<void> {
    // First which groups the references mean (object id → labels: its id, the references and its display name).
    const wanted = new Map<string, Set<string>>();
    const ambiguous = new Set<string>(); // lower-cased display names more than one group has
    const missing = new Map<string, 'not found' | 'ambiguous'>();
    const notFound = (ref: string) => {
      missing.set(ref, 'not found');
      options.logger?.warn({ event: 'directory_group_not_found', group: ref }, 'a group named in the rules does not exist in the directory');
    };
    for (const ref of groupRefs) {
      let groups: Array<{ id: string; displayName?: string }>;
      if (GUID.test(ref)) {
        // Named by id: fetch its display name too, so rules may use either. A deleted group is skipped, not fatal.
        try {
          groups = [(await client.api(`/groups/${encodeURIComponent(ref.toLowerCase())}?$select=id,displayName`).get()) as { id: string; displayName?: string }];
        } catch (error) {
          if (!isNotFound(error)) throw error;
          notFound(ref);
          continue;
        }
      } else {
        groups = [];
        for await (const page of pages<{ id: string; displayName?: string }>(`/groups?$filter=${encodeURIComponent(`displayName eq '${escapeOData(ref)}'`)}&$select=id,displayName`)) groups.push(...page.value);
        if (groups.length === 0) {
          notFound(ref);
          continue;
        }
        if (groups.length > 1) {
          // Anyone may create a Microsoft 365 group with a name that is taken: a shared name means none of them.
          ambiguous.add(ref.trim().toLowerCase());
          missing.set(ref, 'ambiguous');
          options.logger?.warn(
            { event: 'directory_group_ambiguous', group: ref, ids: groups.map((g) => g.id) },
            'several groups have the display name the rules name: none of them is used; name the group by its object id',
          );
          continue;
        }
      }
      for (const group of groups) {
        const labels = wanted.get(group.id) ?? new Set<string>();
        for (const label of [group.id, ref, ...(group.displayName ? [group.displayName] : [])]) labels.add(label);
        wanted.set(group.id, labels);
      }
    }
    const next = new Map<string, Set<string>>();
    for (const [id, all] of wanted) {
      // An ambiguous name labels no group, also not one the rules name by id.
      const labels = [...all].filter((label) => !ambiguous.has(label.trim().toLowerCase()));
      // An OData cast (only users) is an advanced query: ConsistencyLevel eventual and $count=true, on every page.
      const url = `/groups/${encodeURIComponent(id)}/transitiveMembers/microsoft.graph.user?$select=id&$count=true&$top=999`;
      const members: string[] = [];
      try {
        for await (const page of pages<{ id: string }>(url, { ConsistencyLevel: 'eventual' })) for (const member of page.value) members.push(member.id);
      } catch (error) {
        if (!isNotFound(error)) throw error;
        notFound(id); // deleted since it was looked up
        continue;
      }
      for (const member of members) {
        const set = next.get(member) ?? new Set<string>();
        for (const label of labels) set.add(label);
        next.set(member, set);
      }
    }
    memberships.clear();
    for (const [id, set] of next) memberships.set(id, set);
    unmatched = missing;
  }

  /** Applies one page of a delta round to `target`: removals delete, the rest merge over what is held (and are added to `changed`). */
  function applyDeltaPage(target: Map<string, GraphUser>, page: Page<GraphUser>, changed?: { add(id: string): void; delete(id: string): void }): void {
    for (const change of page.value) {
      if (change['@removed']) {
        target.delete(change.id);
        changed?.delete(change.id);
        continue;
      }
      changed?.add(change.id);
      // Delta answers carry at least the changed properties: merge over what we hold. Annotations (@…) are not kept.
      const merged = { ...(target.get(change.id) ?? { id: change.id }) } as GraphUser;
      for (const [key, value] of Object.entries(change)) if (key !== '__proto__' && !key.startsWith('@')) merged[key] = value;
      target.set(change.id, merged);
    }
  }

  async function full(): Promise<void> {
    // The first round of the users delta query lists every user once (with the selected properties) and ends
    // with the delta link later rounds continue from. It may also list users as @removed (deleted while the round
    // ran, or a user that appeared on an earlier page): they are dropped, like in any later round.
    const fresh = new Map<string, GraphUser>();
    let link: string | undefined;
    for await (const page of pages<GraphUser>(`/users/delta?$select=${USER_SELECT.join(',')}`)) {
      applyDeltaPage(fresh, page);
      link = page['@odata.deltaLink'] ?? link;
    }
    if (!link) throw new Error('the users delta query ended without a delta link');
    users.clear();
    for (const [id, user] of fresh) users.set(id, user);
    deltaLink = link;
    photoPassAt = undefined; // every user's photo, with the users
  }

  async function delta(): Promise<void> {
    // The round is applied once it is read to the end: one that fails half-way changes nothing (a reload of the
    // groups in the meantime must not publish half of it), and the next refresh reads it again from the same link.
    const round: Array<Page<GraphUser>> = [];
    let link: string | undefined;
    for await (const page of pages<GraphUser>(deltaLink!)) {
      round.push({ value: page.value });
      link = page['@odata.deltaLink'] ?? link;
    }
    if (!link) throw new Error('the users delta query ended without a delta link');
    // Changed users' photos are fetched in this refresh, or (it fails later) the next: the link moves on now.
    for (const page of round) applyDeltaPage(users, page, photosOn ? photosDue : undefined);
    deltaLink = link;
  }

  /** Makes the maps hold what the configuration asks for: turned on, a pass over every user is due; off, photos are dropped. */
  function applyPhotoSetting(): boolean {
    if (photosOn === photosWanted) return false;
    photosOn = photosWanted;
    photoSetting++;
    photos.clear();
    photosPending.clear();
    photoPassAt = undefined;
    return true;
  }

  /**
   * A photo's bytes at `path`: undefined when there is none (404), 'too large' past 100 KB (not read
   * further). Throws when the request failed.
   */
  async function photoBytes(path: string): Promise<Buffer | 'too large' | undefined> {
    const { GraphError, ResponseType } = graphSdk();
    // RAW: the body is read here, and never further than a photo may be long
    const response: Response = await client.api(path).responseType(ResponseType.RAW).get();
    if (response.status === 404) {
      await response.body?.cancel().catch(() => undefined);
      return undefined;
    }
    if (!response.ok) {
      const error = new GraphError(response.status, `Microsoft Graph answered ${response.status} ${response.statusText}`.trim());
      error.body = await readAtMost(response, ERROR_BODY_BYTES).catch(() => undefined);
      throw error;
    }
    return (await readAtMost(response, MAX_PHOTO_BYTES)) ?? 'too large';
  }

  /**
   * One user's photo, why it is not used, or undefined when the user has none. Throws when a request
   * failed. 96x96 first; without that size, the photo as stored when there is one: Microsoft 365 keeps
   * the sizes up to the one uploaded, and a photo from an on-premises directory is often smaller.
   */
  async function fetchPhoto(id: string): Promise<UserPhoto | { refused: string } | undefined> {
    const user = `/users/${encodeURIComponent(id)}`;
    let bytes = await photoBytes(`${user}/photos/96x96/$value`);
    if (bytes === undefined) {
      let meta: { width?: unknown; height?: unknown };
      try {
        meta = await client.api(`${user}/photo`).get();
      } catch (error) {
        if (isNotFound(error)) return undefined; // no photo at all
        throw error;
      }
      // 1x1 is what Graph describes when it has no photo of a size
      if (!(Number(meta.width) > 1 && Number(meta.height) > 1)) return undefined;
      bytes = await photoBytes(`${user}/photo/$value`);
      if (bytes === undefined) return undefined;
    }
    return bytes === 'too large' ? { refused: `the photo has more than ${MAX_PHOTO_BYTES} bytes` } : readPhoto(bytes);
  }

  /**
   * Fetches the photos due: every user's when a pass is due (after a full load, when turned on, or
   * photoRefreshHours after the last), else those of the users changed since. Never throws: a photo
   * that cannot be fetched keeps what was held and is asked for again at the next refresh. Whether
   * the photos held changed (to publish them).
   */
  async function loadPhotos(): Promise<boolean> {
    if (!photosOn) return false;
    const setting = photoSetting;
    let changed = false;
    for (const id of photos.keys()) {
      if (users.has(id)) continue;
      photos.delete(id);
      changed = true;
    }
    const started = Date.now();
    const pass = photoPassAt === undefined || (photoRefreshMs > 0 && started - photoPassAt >= photoRefreshMs);
    if (pass) for (const id of users.keys()) photosDue.add(id);
    // Only users that can be senders (they have an address): a room or a user without a mailbox is no one's photo.
    const due: Array<[string, number]> = [];
    for (const [id, since] of photosPending) {
      const user = users.get(id);
      if (user && toDirectoryUser(user)) {
        due.push([id, since]);
        continue;
      }
      photosPending.delete(id);
      changed = photos.delete(id) || changed;
    }
    if (pass) photoPassAt = started;
    if (due.length === 0) return changed;
    const counts = { photos: 0, missing: 0, refused: 0, failed: 0 };
    const reasons = new Set<string>();
    let firstError: ReturnType<typeof describeError> | undefined;
    let failuresInARow = 0;
    let next = 0;
    // photos turned off (or off and on again) or the source stopped: this pass stores nothing more
    const current = () => setting === photoSetting && !stopped;
    deadline = Date.now() + maxRefreshMs;
    const worker = async () => {
      while (next < due.length && failuresInARow < MAX_PHOTO_FAILURES_IN_A_ROW && current()) {
        const [id, since] = due[next++];
        let answer: UserPhoto | { refused: string } | undefined;
        try {
          answer = await fetchPhoto(id);
        } catch (error) {
          // Kept as it was (also for a user turned sender since), and asked for again at the next refresh.
          counts.failed++;
          failuresInARow++;
          firstError ??= describeError(error);
          options.metrics?.directoryPhotoRequests.inc({ source: 'graph', result: 'failed' });
          continue;
        }
        failuresInARow = 0;
        deadline = Date.now() + maxRefreshMs; // progress: a throttle later in a long pass may still be waited for
        if (!current()) break;
        // due again if the user changed after it was asked for
        if (photosPending.get(id) === since) photosPending.delete(id);
        if (!users.has(id)) continue; // removed while it was asked for: never hold a photo without its user
        changed = true;
        if (answer === undefined) {
          counts.missing++;
          photos.delete(id);
        } else if ('refused' in answer) {
          counts.refused++;
          reasons.add(answer.refused.replace(/^the photo has \d+ bytes, more than (\d+)$/, 'the photo has more than $1 bytes')); // one reason per kind, not per size
          photos.delete(id);
        } else {
          counts.photos++;
          photos.set(id, answer);
        }
        options.metrics?.directoryPhotoRequests.inc({ source: 'graph', result: answer === undefined ? 'missing' : 'refused' in answer ? 'refused' : 'loaded' });
      }
    };
    await Promise.all(Array.from({ length: Math.min(PHOTO_CONCURRENCY, due.length) }, worker));
    if (!current()) return false;
    const skipped = due.length - next;
    if (counts.refused > 0) {
      options.logger?.warn({ event: 'directory_photos_refused', source: 'graph', refused: counts.refused, reasons: [...reasons] }, 'photos from Microsoft Graph that are not used (not a JPEG, PNG or GIF image, or too large)');
    }
    if (counts.failed > 0) {
      options.logger?.warn(
        { event: 'directory_photos_failed', source: 'graph', failed: counts.failed, ...(skipped > 0 ? { skipped } : {}), ...firstError },
        skipped > 0 ? 'photos could not be loaded from Microsoft Graph; stopped after repeated failures; the users keep their photos and are retried at the next refresh' : 'photos could not be loaded from Microsoft Graph; those users keep their photos and are retried at the next refresh',
      );
    }
    options.logger?.info({ event: 'directory_photos_loaded', source: 'graph', pass: pass ? 'all' : 'changed', ...counts }, 'user photos loaded from Microsoft Graph');
    return changed;
  }

  /**
   * Starts a photo pass in the background, or, while one runs, has it go round once more. What it
   * loaded is published under the lock (after a refresh in progress, which publishes it too), with
   * the snapshot's own sync time: photos are not a directory sync.
   */
  function startPhotos(): void {
    if (!photosOn || stopped) return;
    if (photoRun) {
      photoRunAgain = true;
      return;
    }
    photoRun = (async () => {
      try {
        do {
          photoRunAgain = false;
          const setting = photoSetting;
          if ((await loadPhotos()) && setting === photoSetting) await exclusive(async () => snapshot && rebuild(snapshot.syncedAt));
        } while (photoRunAgain && photosOn && !stopped);
      } catch (error) {
        // loadPhotos answers for every request; this would be a fault of its own
        options.logger?.error({ event: 'directory_photos_failed', source: 'graph', err: error instanceof Error ? error.message : String(error) }, 'the photo pass failed; retried at the next refresh');
      } finally {
        photoRun = undefined;
      }
    })();
  }

  async function refreshOnce(): Promise<'full' | 'delta' | 'failed'> {
    deadline = Date.now() + maxRefreshMs;
    applyPhotoSetting();
    let kind: 'full' | 'delta' = deltaLink ? 'delta' : 'full';
    try {
      if (kind === 'delta') {
        try {
          await delta();
        } catch (error) {
          // The delta token expired (400 syncStateNotFound after 7 days for users) or Graph wants a resync: start over.
          if (!isDeltaReset(error)) throw error;
          options.logger?.warn({ event: 'directory_delta_reset', source: 'graph', status: (error as { statusCode?: number }).statusCode }, 'the users delta link is no longer valid; loading the directory in full');
          deltaLink = undefined;
          kind = 'full';
          await full();
        }
      } else {
        await full();
      }
      await loadGroups();
      rebuild();
      lastError = undefined;
      failures = 0;
      countSync('ok');
      options.metrics?.directoryLastSync.set({ source: 'graph' }, snapshot!.syncedAt.getTime() / 1000);
      options.metrics?.directoryUsers.set({ source: 'graph' }, snapshot!.size);
      options.logger?.info({ event: 'directory_synced', source: 'graph', kind, users: snapshot!.size }, 'directory refreshed from Microsoft Graph');
      // after the users are published: a node without a snapshot signs nothing, one without photos signs without them
      startPhotos();
      return kind;
    } catch (error) {
      const status = error instanceof graphSdk().GraphError ? ` (${error.statusCode}${error.code ? ` ${error.code}` : ''})` : '';
      lastError = `${kind} refresh from Microsoft Graph failed${status}: ${error instanceof Error ? error.message : String(error)}`;
      if (kind === 'full') deltaLink = undefined;
      failures++;
      countSync('failed');
      options.logger?.error({ event: 'directory_sync_failed', source: 'graph', kind, err: lastError }, 'directory refresh failed; keeping the last good snapshot');
      return 'failed';
    }
  }

  /** Refreshes and membership reloads run one at a time: both rebuild the snapshot from the same maps. */
  function exclusive<T>(job: () => Promise<T>): Promise<T> {
    const run = lock.then(job);
    lock = run.catch(() => undefined);
    return run;
  }

  /** Memberships only, for groups a new configuration names: the users are current already. */
  async function groupsOnce(): Promise<'groups' | 'failed'> {
    deadline = Date.now() + maxRefreshMs;
    try {
      await loadGroups();
      rebuild();
      countSync('ok');
      options.logger?.info({ event: 'directory_groups_loaded', source: 'graph', groups: groupRefs.length, users: snapshot!.size }, 'group memberships loaded for the groups the new configuration names');
      return 'groups';
    } catch (error) {
      const status = error instanceof graphSdk().GraphError ? ` (${error.statusCode}${error.code ? ` ${error.code}` : ''})` : '';
      lastError = `loading the memberships of the configuration's groups from Microsoft Graph failed${status}: ${error instanceof Error ? error.message : String(error)}`;
      countSync('failed');
      options.logger?.error({ event: 'directory_sync_failed', source: 'graph', kind: 'groups', err: lastError }, 'group memberships could not be loaded; retried at the next refresh');
      return 'failed';
    }
  }

  /** Photos turned on (a pass over every user starts) or off (dropped, no request), for a new configuration. */
  async function photosOnce(): Promise<'unchanged' | 'photos'> {
    if (!applyPhotoSetting()) return 'unchanged'; // turned back before this ran
    rebuild(snapshot!.syncedAt);
    startPhotos();
    return 'photos';
  }

  function schedule(): void {
    const seconds = options.refreshSeconds ?? 300;
    if (stopped || seconds <= 0) return;
    // After a failure sooner, backing off: a node whose first load failed has no directory at all (every sender
    // unknown, messages unsigned) and must not wait a whole interval for the next try.
    const wait = failures > 0 ? Math.min(seconds, (options.failedRetrySeconds ?? 30) * 2 ** Math.min(failures - 1, 20)) : seconds;
    timer = setTimeout(() => void source.refresh().finally(schedule), Math.min(wait * 1000, MAX_TIMER_MS));
    timer.unref();
  }

  const source: GraphDirectorySource = {
    async start() {
      stopped = false;
      await source.refresh();
      if (!timer) schedule();
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
    current: () => view,
    setOverrides(next) {
      overrides = next;
      if (snapshot) view = applyUserOverrides(snapshot, overrides);
    },
    refresh() {
      running ??= exclusive(refreshOnce).finally(() => (running = undefined));
      return running;
    },
    setGroups(next) {
      const wanted = new Set(next);
      if (wanted.size === new Set(groupRefs).size && [...wanted].every((g) => groupRefs.includes(g))) return Promise.resolve('unchanged');
      groupRefs = [...wanted];
      if (stopped) return Promise.resolve('unchanged'); // read at the next start
      // After any refresh in progress (it may have read the old groups). A change while this
      // reload waits is picked up by it: it reads groupRefs when it runs.
      groupsReload ??= exclusive(async () => {
        groupsReload = undefined;
        // Before the first good load there is nothing to add memberships to: a full load reads the new groups.
        return snapshot ? groupsOnce() : refreshOnce();
      });
      return groupsReload;
    },
    setPhotos(enabled) {
      if (enabled === photosWanted) return Promise.resolve('unchanged');
      photosWanted = enabled;
      if (stopped) return Promise.resolve('unchanged'); // applied at the next start
      // After any refresh in progress (it loads what it began with); reads photosWanted when it runs.
      photosReload ??= exclusive(async () => {
        photosReload = undefined;
        return snapshot ? photosOnce() : refreshOnce();
      });
      return photosReload;
    },
    async photosSettled() {
      while (photoRun) await photoRun;
    },
    status: () => ({ syncedAt: snapshot?.syncedAt, users: snapshot?.size ?? 0, lastError, unmatched }),
  };
  return source;
}
