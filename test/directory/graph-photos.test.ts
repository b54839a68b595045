import { expect } from 'chai';
import { createGraphDirectorySource, type GraphDirectoryOptions, type GraphDirectorySource } from '../../appliance/src/directory/graph';
import { MAX_PHOTO_BYTES } from '../../appliance/src/directory/photo';
import type { DirectoryUser } from '../../appliance/src/directory/types';
import { createLogger, createMetrics, type Logger } from '../../appliance/src/observability';
import { createAzureCredential, type TokenCredential } from '../../appliance/src/secrets';
import { startAzureStandin, trustTestCa, useStandinManagedIdentity, type AzureStandin } from '../support/azure-standin';
import { startGraphStandin, type GraphStandin } from '../support/graph-standin';

const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Enough of a PNG for readPhoto (it judges the magic bytes), told apart by `tag`. */
const png = (tag: string) => Buffer.concat([PNG_SIGNATURE, Buffer.from(`IHDR photo ${tag}`)]);
const jpeg = (tag: string) => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from(`JFIF photo ${tag}`)]);

function person(n: number, extra: Record<string, unknown> = {}) {
  return {
    id: id(n),
    mail: `User${n}@Contoso.com`,
    proxyAddresses: [`SMTP:User${n}@Contoso.com`, `smtp:u${n}@contoso.co.uk`],
    displayName: `User ${n}`,
    jobTitle: 'Engineer',
    ...extra,
  };
}

/** A logger that keeps what it logs, parsed. */
function capturingLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return { logger: createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } }), lines };
}

const PHOTO_PATH = /^\/v1\.0\/users\/([^/]+)\/photos\/96x96\/\$value$/;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What a call answered, once the photo pass it started in the background has ended. */
async function settled<T>(source: GraphDirectorySource, call: Promise<T>): Promise<T> {
  const result = await call;
  await source.photosSettled();
  return result;
}

describe('directory from Microsoft Graph: user photos', () => {
  let azure: AzureStandin;
  let graph: GraphStandin;
  let credential: TokenCredential;
  let restore: Array<() => void>;
  let sources: GraphDirectorySource[];

  /** The 96x96 photo requests since request number `from`, in order, each with the user it asked for. */
  const photoRequests = (from: number) =>
    graph.requests
      .slice(from)
      .map((r) => ({ ...r, user: PHOTO_PATH.exec(decodeURIComponent(r.path))?.[1] }))
      .filter((r) => r.user !== undefined);
  /** Every request about a photo since request number `from`: 96x96, and a photo's metadata and bytes as stored. */
  const anyPhotoRequests = (from: number) => graph.requests.slice(from).filter((r) => r.path.includes('/photo'));
  const photoOf = (source: GraphDirectorySource, n: number): DirectoryUser['photo'] => source.current()!.lookup(`user${n}@contoso.com`)!.photo;
  const create = (extra: Partial<GraphDirectoryOptions> = {}) => {
    const source = createGraphDirectorySource({ credential, baseUrl: graph.baseUrl, refreshSeconds: 0, retryDelaySeconds: 1, ...extra });
    sources.push(source);
    return source;
  };
  /** Users 10 to 39, each with a photo: 35 senders in all, for passes that take a while. */
  const addThirtyWithPhotos = () => {
    for (let n = 10; n < 40; n++) {
      graph.upsertUser(person(n));
      graph.setPhoto(id(n), png(String(n)));
    }
  };
  /** Every user has a photo except user 4 (404); the meeting room has no address, so its photo is never asked for. */
  const SENDERS = [1, 2, 3, 4, 5].map(id);

  before(async () => {
    azure = await startAzureStandin();
    restore = [trustTestCa(azure.caPem), useStandinManagedIdentity(azure)];
    credential = createAzureCredential({ kind: 'node', managedIdentityClientId: 'graph-reader' });
  });
  after(async () => {
    for (const undo of restore.reverse()) undo();
    await azure.close();
  });
  beforeEach(async () => {
    sources = [];
    graph = await startGraphStandin();
    graph.pageSize = 2;
    for (let n = 1; n <= 5; n++) graph.upsertUser(person(n));
    graph.upsertUser({ id: id(9), mail: null, proxyAddresses: [], displayName: 'Meeting Room' });
    for (const n of [1, 2, 3, 5]) graph.setPhoto(id(n), png(String(n)));
    graph.setPhoto(id(9), png('room'));
  });
  afterEach(async () => {
    for (const source of sources) source.stop();
    await graph.close();
  });

  it('loads no photos unless asked: not one photo request', async () => {
    const source = create();
    expect(await settled(source, source.refresh())).to.equal('full');
    expect(await settled(source, source.setPhotos(false))).to.equal('unchanged');
    graph.upsertUser(person(2, { jobTitle: 'Changed' }));
    expect(await settled(source, source.refresh())).to.equal('delta');
    expect(anyPhotoRequests(0)).to.deep.equal([]);
    for (const user of source.current()!.users()) expect(user).to.not.have.property('photo');
  });

  it("setPhotos(true) loads every sender's 96x96 photo through the SDK client (404: none); the same value again costs nothing", async () => {
    const { logger, lines } = capturingLogger();
    const source = create({ logger });
    expect(await settled(source, source.refresh())).to.equal('full');
    const before = graph.requests.length;
    expect(await settled(source, source.setPhotos(true))).to.equal('photos');
    // photos only: the users are not listed again, and the room (no address, never a sender) is not asked for
    expect(graph.requests.slice(before).every((r) => r.path.includes('/photo'))).to.equal(true);
    const asked = photoRequests(before);
    expect(asked.map((r) => r.user)).to.have.members(SENDERS);
    expect(asked.every((r) => r.clientId === 'graph-reader')).to.equal(true);
    const photo = photoOf(source, 1)!;
    expect(photo.contentType).to.equal('image/png'); // by its bytes, not Graph's content-type (image/jpeg)
    expect(photo.data.equals(png('1'))).to.equal(true);
    expect(photoOf(source, 5)!.data.equals(png('5'))).to.equal(true);
    expect(source.current()!.lookup('user4@contoso.com')).to.not.have.property('photo');
    expect(source.current()!.lookup('u3@contoso.co.uk')!.photo!.data.equals(png('3'))).to.equal(true);
    const loaded = lines.filter((l) => l.event === 'directory_photos_loaded');
    expect(loaded).to.have.length(1);
    expect(loaded[0]).to.include({ level: 30, source: 'graph', photos: 4, missing: 1, refused: 0, failed: 0 });
    expect(lines.filter((l) => (l.level as number) >= 40)).to.deep.equal([]);

    const again = graph.requests.length;
    expect(await settled(source, source.setPhotos(true))).to.equal('unchanged');
    expect(graph.requests.length).to.equal(again);
  });

  it('a user whose photo is smaller than 96x96 gets the photo as stored; a user without one costs one request more', async () => {
    graph.setPhoto(id(2), png('2 small'), 64); // e.g. from an on-premises directory
    graph.setPhoto(id(3), png('3'), 1); // Graph describes 1x1 when it has no photo of a size
    const source = create({ photos: true });
    expect(await settled(source, source.refresh())).to.equal('full');
    expect(photoOf(source, 1)!.data.equals(png('1'))).to.equal(true);
    expect(photoOf(source, 2)!.data.equals(png('2 small'))).to.equal(true);
    expect(source.current()!.lookup('user3@contoso.com')).to.not.have.property('photo');
    expect(source.current()!.lookup('user4@contoso.com')).to.not.have.property('photo');
    const asked = (n: number) => anyPhotoRequests(0).map((r) => decodeURIComponent(r.path)).filter((path) => path.includes(id(n)));
    expect(asked(1)).to.deep.equal([`/v1.0/users/${id(1)}/photos/96x96/$value`]);
    expect(asked(2)).to.deep.equal([`/v1.0/users/${id(2)}/photos/96x96/$value`, `/v1.0/users/${id(2)}/photo`, `/v1.0/users/${id(2)}/photo/$value`]);
    expect(asked(3)).to.deep.equal([`/v1.0/users/${id(3)}/photos/96x96/$value`, `/v1.0/users/${id(3)}/photo`]);
    expect(asked(4)).to.deep.equal([`/v1.0/users/${id(4)}/photos/96x96/$value`, `/v1.0/users/${id(4)}/photo`]);
  });

  it('counts the photos held and the photo requests by result on /metrics', async () => {
    const metrics = createMetrics({ processMetrics: false });
    graph.setPhoto(id(2), Buffer.from('not an image'));
    graph.failPhoto(id(3), 500);
    const source = create({ photos: true, metrics });
    expect(await settled(source, source.refresh())).to.equal('full');
    const value = async (metric: { get(): Promise<{ values: Array<{ labels: Record<string, string | number>; value: number }> }> }, labels: Record<string, string>) =>
      (await metric.get()).values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;
    expect(await value(metrics.directoryPhotos, { source: 'graph' })).to.equal(2); // users 1 and 5
    for (const [result, n] of [['loaded', 2], ['missing', 1], ['refused', 1], ['failed', 1]] as const) {
      expect(await value(metrics.directoryPhotoRequests, { source: 'graph', result }), result).to.equal(n);
    }
    expect(await settled(source, source.setPhotos(false))).to.equal('photos');
    expect(await value(metrics.directoryPhotos, { source: 'graph' })).to.equal(0);
  });

  it('photos: true loads them with the first full load, and all again with a full load after the delta link expired', async () => {
    const source = create({ photos: true });
    expect(await settled(source, source.refresh())).to.equal('full');
    expect(photoRequests(0).map((r) => r.user)).to.have.members(SENDERS);
    expect(photoOf(source, 2)!.data.equals(png('2'))).to.equal(true);

    graph.setPhoto(id(2), jpeg('2 new'));
    graph.expireDeltaTokens();
    const before = graph.requests.length;
    expect(await settled(source, source.refresh())).to.equal('full');
    expect(photoRequests(before).map((r) => r.user)).to.have.members(SENDERS);
    expect(photoOf(source, 2)).to.deep.include({ contentType: 'image/jpeg' });
    expect(photoOf(source, 2)!.data.equals(jpeg('2 new'))).to.equal(true);
  });

  it('uses no photo that is not an image or is too large, and says how many (never whose) in one warning', async () => {
    graph.setPhoto(id(1), Buffer.from('<html>Sign in to continue</html>'));
    graph.setPhoto(id(2), Buffer.concat([PNG_SIGNATURE, Buffer.alloc(MAX_PHOTO_BYTES)]));
    const { logger, lines } = capturingLogger();
    const source = create({ photos: true, logger });
    expect(await settled(source, source.refresh())).to.equal('full');
    expect(source.status().lastError).to.equal(undefined);
    expect(source.current()!.lookup('user1@contoso.com')).to.not.have.property('photo');
    expect(source.current()!.lookup('user2@contoso.com')).to.not.have.property('photo');
    expect(photoOf(source, 3)!.data.equals(png('3'))).to.equal(true);
    const warnings = lines.filter((l) => l.level === 40);
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.include({ event: 'directory_photos_refused', source: 'graph', refused: 2 });
    expect(warnings[0].reasons).to.have.length(2);
    expect(lines.find((l) => l.event === 'directory_photos_loaded')).to.include({ photos: 2, missing: 1, refused: 2, failed: 0 });
    // no address, name or object id in any line
    expect(JSON.stringify(lines)).to.not.match(/contoso|User \d|00000000-0000/i);

    // a held photo that turns into something else is dropped, not kept
    graph.setPhoto(id(3), Buffer.from('GIF8 but not quite'));
    graph.upsertUser(person(3, { jobTitle: 'New photo' }));
    expect(await settled(source, source.refresh())).to.equal('delta');
    expect(source.current()!.lookup('user3@contoso.com')).to.not.have.property('photo');
    expect(lines.filter((l) => l.event === 'directory_photos_refused').map((l) => l.refused)).to.deep.equal([2, 1]);
  });

  it('a photo request that fails keeps the photo held, does not fail the refresh, and is asked again at the next; 429 is waited for', async () => {
    const { logger, lines } = capturingLogger();
    const source = create({ photos: true, logger });
    expect(await settled(source, source.refresh())).to.equal('full');
    graph.setPhoto(id(1), png('1 new'));
    graph.failPhoto(id(1), 500);
    graph.upsertUser(person(1, { jobTitle: 'Promoted' }));
    graph.setPhoto(id(2), png('2 new'));
    graph.upsertUser(person(2, { jobTitle: 'Moved' }));
    expect(await settled(source, source.refresh())).to.equal('delta');
    expect(source.status().lastError).to.equal(undefined);
    const u1 = source.current()!.lookup('user1@contoso.com')!;
    expect(u1.attributes.jobTitle).to.equal('Promoted'); // the refresh was published
    expect(u1.photo!.data.equals(png('1'))).to.equal(true); // with the photo held before
    expect(photoOf(source, 2)!.data.equals(png('2 new'))).to.equal(true);
    const failed = lines.filter((l) => l.event === 'directory_photos_failed');
    expect(failed).to.have.length(1);
    expect(failed[0]).to.include({ level: 40, source: 'graph', failed: 1, status: 500, code: 'generalException' });
    expect(lines.filter((l) => l.event === 'directory_photos_loaded').at(-1)).to.include({ photos: 1, failed: 1 });
    expect(JSON.stringify(lines)).to.not.match(/contoso|User \d/i);

    // the next refresh asks for it again (nothing else changed)
    let before = graph.requests.length;
    expect(await settled(source, source.refresh())).to.equal('delta');
    expect(photoRequests(before).map((r) => r.user)).to.deep.equal([id(1)]);
    expect(photoOf(source, 1)!.data.equals(png('1 new'))).to.equal(true);

    // throttled: the client's retry handler waits for Retry-After, and the photo comes
    graph.setPhoto(id(3), png('3 new'));
    graph.failPhoto(id(3), 429, 1, 1);
    graph.upsertUser(person(3, { jobTitle: 'Throttled' }));
    before = graph.requests.length;
    expect(await settled(source, source.refresh())).to.equal('delta');
    expect(photoRequests(before).map((r) => r.status)).to.deep.equal([429, 200]);
    expect(photoOf(source, 3)!.data.equals(png('3 new'))).to.equal(true);
    expect(lines.filter((l) => l.event === 'directory_photos_failed')).to.have.length(1);
  });

  it("a delta refresh asks only for the changed users' photos; a removed user's photo is dropped", async () => {
    const source = create({ photos: true });
    expect(await settled(source, source.refresh())).to.equal('full');
    graph.setPhoto(id(2), png('2 new'));
    graph.upsertUser(person(2, { jobTitle: 'Head of Engineering' }));
    graph.upsertUser(person(6));
    graph.setPhoto(id(6), jpeg('6'));
    graph.setPhoto(id(5), png('5 new')); // no change the users delta query shows: not asked for
    graph.removeUser(id(3));
    const before = graph.requests.length;
    expect(await settled(source, source.refresh())).to.equal('delta');
    expect(photoRequests(before).map((r) => r.user)).to.have.members([id(2), id(6)]);
    expect(photoOf(source, 2)!.data.equals(png('2 new'))).to.equal(true);
    expect(photoOf(source, 6)!.data.equals(jpeg('6'))).to.equal(true);
    expect(photoOf(source, 5)!.data.equals(png('5'))).to.equal(true);
    expect(source.current()!.lookup('user3@contoso.com')).to.equal(undefined);

    // back again, its photo request failing: it has no photo, not the one it had before it was removed
    graph.upsertUser(person(3));
    graph.failPhoto(id(3), 500);
    expect(await settled(source, source.refresh())).to.equal('delta');
    expect(source.current()!.lookup('user3@contoso.com')).to.not.have.property('photo');

    // its failed request is asked again at the next refresh; after that, nothing changed: no photo request
    const quiet = graph.requests.length;
    expect(await settled(source, source.refresh())).to.equal('delta');
    expect(photoRequests(quiet).map((r) => r.user)).to.deep.equal([id(3)]);
    expect(photoOf(source, 3)!.data.equals(png('3'))).to.equal(true);
    const idle = graph.requests.length;
    expect(await settled(source, source.refresh())).to.equal('delta');
    expect(anyPhotoRequests(idle)).to.deep.equal([]);
  });

  it('asks for every photo again photoRefreshHours after the last pass over all (a photo change is not a user change); 0: never', async () => {
    const never = create({ photos: true, photoRefreshHours: 0 });
    expect(await settled(never, never.refresh())).to.equal('full');
    const source = create({ photos: true, photoRefreshHours: 1.5 / 3600 });
    expect(await settled(source, source.refresh())).to.equal('full');
    graph.setPhoto(id(1), png('1 new'));
    let before = graph.requests.length;
    expect(await settled(source, source.refresh())).to.equal('delta');
    expect(anyPhotoRequests(before)).to.deep.equal([]);
    expect(photoOf(source, 1)!.data.equals(png('1'))).to.equal(true);

    await sleep(1600);
    before = graph.requests.length;
    expect(await settled(source, source.refresh())).to.equal('delta');
    expect(photoRequests(before).map((r) => r.user)).to.have.members(SENDERS);
    expect(photoOf(source, 1)!.data.equals(png('1 new'))).to.equal(true);

    before = graph.requests.length;
    expect(await settled(never, never.refresh())).to.equal('delta');
    expect(anyPhotoRequests(before)).to.deep.equal([]);
    expect(photoOf(never, 1)!.data.equals(png('1'))).to.equal(true);
  });

  it('setPhotos(false) drops the photos without a request, and later refreshes ask for none', async () => {
    const source = create({ photos: true });
    expect(await settled(source, source.refresh())).to.equal('full');
    expect(photoOf(source, 1)).to.not.equal(undefined);
    let before = graph.requests.length;
    expect(await settled(source, source.setPhotos(false))).to.equal('photos');
    expect(graph.requests.length).to.equal(before);
    for (const user of source.current()!.users()) expect(user).to.not.have.property('photo');
    graph.upsertUser(person(2, { jobTitle: 'Changed' }));
    expect(await settled(source, source.refresh())).to.equal('delta');
    expect(anyPhotoRequests(before)).to.deep.equal([]);
    expect(source.current()!.lookup('user2@contoso.com')).to.not.have.property('photo');

    // on again: every photo is asked for now; the photos dropped are gone (a failed request has none to keep)
    graph.failPhoto(id(1), 500);
    before = graph.requests.length;
    expect(await settled(source, source.setPhotos(true))).to.equal('photos');
    expect(photoRequests(before).map((r) => r.user)).to.have.members(SENDERS);
    expect(photoOf(source, 2)!.data.equals(png('2'))).to.equal(true);
    expect(source.current()!.lookup('user1@contoso.com')).to.not.have.property('photo');
  });

  it('asks for at most 4 photos at a time', async () => {
    addThirtyWithPhotos();
    graph.photoDelayMs = 20;
    graph.maxPhotosInFlight = 0;
    const source = create({ photos: true });
    expect(await settled(source, source.refresh())).to.equal('full');
    expect(photoRequests(0)).to.have.length(35);
    expect(graph.maxPhotosInFlight).to.equal(4);
    expect(photoOf(source, 39)!.data.equals(png('39'))).to.equal(true);
  });

  it('stops a pass after 20 failures in a row (the rest keep their photos and are asked for at the next refresh)', async () => {
    addThirtyWithPhotos();
    const { logger, lines } = capturingLogger();
    const source = create({ photos: true, logger });
    for (const n of [1, 2, 3, 4, 5, ...Array.from({ length: 30 }, (_, i) => 10 + i)]) graph.failPhoto(id(n), 403);
    expect(await settled(source, source.refresh())).to.equal('full');
    expect(source.status().lastError).to.equal(undefined);
    const first = photoRequests(0).length;
    expect(first).to.be.within(20, 23);
    const warning = lines.find((l) => l.event === 'directory_photos_failed')!;
    expect(warning).to.include({ level: 40, status: 403 });
    expect(warning.skipped).to.equal(35 - first);
    // the next refresh asks for every photo not yet loaded: the failed ones (their failure was used up) and the rest
    let before = graph.requests.length;
    expect(await settled(source, source.refresh())).to.equal('delta');
    expect(photoRequests(before)).to.have.length(35);
    before = graph.requests.length;
    expect(await settled(source, source.refresh())).to.equal('delta');
    expect(photoRequests(before).length).to.equal(35 - first); // the skipped ones failed once each on the second
    for (const n of [1, 2, 3, 5, 10, 39]) expect(photoOf(source, n), `user ${n}`).to.not.equal(undefined);
    before = graph.requests.length;
    expect(await settled(source, source.refresh())).to.equal('delta');
    expect(anyPhotoRequests(before)).to.deep.equal([]);
  });

  it('start and refreshes do not wait for photos: the first snapshot is out before them (a node without one signs nothing)', async () => {
    graph.photoDelayMs = 200;
    const source = create({ photos: true, refreshSeconds: 300 });
    await source.start();
    expect(source.current()!.size).to.equal(5);
    expect(photoOf(source, 1)).to.equal(undefined);
    await source.photosSettled();
    expect(photoOf(source, 1)!.data.equals(png('1'))).to.equal(true);
    expect(source.current()!.lookup('user4@contoso.com')).to.not.have.property('photo');
  });

  it('a long photo pass holds up no refresh, and a user changed while it runs has the photo asked for again', async () => {
    addThirtyWithPhotos();
    graph.photoDelayMs = 60; // 35 photos, 4 at a time: a pass of about half a second
    const { logger, lines } = capturingLogger();
    const source = create({ photos: true, logger });
    const synced = source.refresh();
    expect(await synced).to.equal('full');
    const syncedAt = source.current()!.syncedAt;
    // user 1 changes, photo and all, while the pass runs: the delta refresh is not queued behind it
    graph.setPhoto(id(1), png('1 new'));
    graph.upsertUser(person(1, { jobTitle: 'Changed mid-pass' }));
    let passEnded = false;
    const pass = source.photosSettled().then(() => (passEnded = true));
    expect(await source.refresh()).to.equal('delta');
    expect(source.current()!.lookup('user1@contoso.com')!.attributes.jobTitle).to.equal('Changed mid-pass');
    expect(passEnded, 'the refresh was published while the pass still ran').to.equal(false);
    await pass;
    expect(photoOf(source, 1)!.data.equals(png('1 new'))).to.equal(true);
    expect(photoOf(source, 39)!.data.equals(png('39'))).to.equal(true);
    // publishing photos is not a directory sync: the snapshot keeps the time of the refresh it came from
    expect(source.current()!.syncedAt.getTime()).to.be.at.least(syncedAt.getTime());
    const asked = photoRequests(0).map((r) => r.user);
    expect(asked.filter((u) => u === id(1)).length).to.be.within(1, 2);
    expect(lines.filter((l) => (l.level as number) >= 40)).to.deep.equal([]);
  });

  it('photos turned off during a pass: the pass stops and stores nothing; on again, a new pass', async () => {
    addThirtyWithPhotos();
    graph.photoDelayMs = 60;
    const source = create({ photos: true });
    expect(await source.refresh()).to.equal('full');
    while (photoRequests(0).length < 6) await sleep(5);
    expect(await source.setPhotos(false)).to.equal('photos');
    await source.photosSettled();
    expect(photoRequests(0).length).to.be.below(20);
    for (const user of source.current()!.users()) expect(user).to.not.have.property('photo');
    const mark = graph.requests.length;
    expect(await settled(source, source.setPhotos(true))).to.equal('photos');
    expect(photoRequests(mark).length).to.equal(35);
    expect(photoOf(source, 10)!.data.equals(png('10'))).to.equal(true);
  });

  it('reads a photo no further than 100 KB: a longer answer without a Content-Length is cut off and not used', async () => {
    graph.streamPhoto(id(1), 64 * 1024 * 1024);
    graph.streamPhoto(id(2), MAX_PHOTO_BYTES); // just fits
    const { logger, lines } = capturingLogger();
    const source = create({ photos: true, logger });
    expect(await settled(source, source.refresh())).to.equal('full');
    expect(source.current()!.lookup('user1@contoso.com')).to.not.have.property('photo');
    expect(photoOf(source, 2)!.data.length).to.equal(MAX_PHOTO_BYTES);
    expect(photoOf(source, 3)!.data.equals(png('3'))).to.equal(true);
    for (let i = 0; i < 200 && graph.streamedPhotoBytes.length < 2; i++) await sleep(10);
    // the endless one was given up on: a few socket buffers were written, not 64 MB
    expect(Math.max(...graph.streamedPhotoBytes)).to.be.below(8 * 1024 * 1024);
    const refused = lines.find((l) => l.event === 'directory_photos_refused')!;
    expect(refused).to.include({ refused: 1 });
    expect(refused.reasons).to.deep.equal([`the photo has more than ${MAX_PHOTO_BYTES} bytes`]);
  });

  it('keeps the photos when per-user attribute overrides are applied', async () => {
    const source = create({ photos: true });
    expect(await settled(source, source.refresh())).to.equal('full');
    source.setOverrides(new Map([['u1@contoso.co.uk', { jobTitle: 'Chief Example Officer' }]]));
    const u1 = source.current()!.lookup('user1@contoso.com')!;
    expect(u1.attributes.jobTitle).to.equal('Chief Example Officer');
    expect(u1.photo!.data.equals(png('1'))).to.equal(true);
    expect(photoOf(source, 2)!.data.equals(png('2'))).to.equal(true);
    // and a refresh after it still has both
    graph.upsertUser(person(2, { jobTitle: 'Changed' }));
    expect(await settled(source, source.refresh())).to.equal('delta');
    expect(source.current()!.lookup('user1@contoso.com')!.attributes.jobTitle).to.equal('Chief Example Officer');
    expect(photoOf(source, 1)!.data.equals(png('1'))).to.equal(true);
  });

  it('when to load: after a refresh in progress; with the first full load; while stopped only remembered', async () => {
    // during a refresh: that refresh loads none (it began without them), then every photo is loaded
    const source = create();
    expect(await settled(source, source.refresh())).to.equal('full');
    graph.upsertUser(person(2, { jobTitle: 'Changed' }));
    graph.delayMs = 20;
    const before = graph.requests.length;
    const refreshing = source.refresh();
    while (graph.requests.length === before) await sleep(5); // the refresh is under way
    const turning = source.setPhotos(true);
    expect(await refreshing).to.equal('delta');
    expect(photoOf(source, 1)).to.equal(undefined);
    expect(await settled(source, turning)).to.equal('photos');
    graph.delayMs = 0;
    const after = graph.requests.slice(before);
    const lastDelta = after.map((r) => r.path).lastIndexOf('/v1.0/users/delta');
    const firstPhoto = after.findIndex((r) => PHOTO_PATH.test(decodeURIComponent(r.path)));
    expect(firstPhoto).to.be.greaterThan(lastDelta);
    expect(photoRequests(before).map((r) => r.user)).to.have.members(SENDERS);
    expect(photoOf(source, 2)!.data.equals(png('2'))).to.equal(true);

    // nothing loaded yet: a full load, with the photos
    const fresh = create();
    expect(await settled(fresh, fresh.setPhotos(true))).to.equal('full');
    expect(photoOf(fresh, 3)!.data.equals(png('3'))).to.equal(true);

    // stopped: remembered, loaded at the next start
    const stopped = create();
    stopped.stop();
    const quiet = graph.requests.length;
    expect(await settled(stopped, stopped.setPhotos(true))).to.equal('unchanged');
    expect(graph.requests.length).to.equal(quiet);
    await settled(stopped, stopped.start());
    expect(photoOf(stopped, 5)!.data.equals(png('5'))).to.equal(true);
    stopped.stop();
    expect(await settled(stopped, stopped.setPhotos(false))).to.equal('unchanged');
    await settled(stopped, stopped.start());
    expect(photoOf(stopped, 5)).to.equal(undefined);
  });
});
