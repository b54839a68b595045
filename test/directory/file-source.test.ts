import { expect } from 'chai';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createDirectoryFileSource, type DirectoryFileSource } from '../../appliance/src/directory';
import { createLogger, createMetrics, type SignetMetrics } from '../../appliance/src/observability';

const EXAMPLE_DIR = resolve(__dirname, '../../config/examples/contoso');
const EXAMPLE = readFileSync(join(EXAMPLE_DIR, 'directory.yaml'), 'utf8');
const TOM = 'tom.okafor@contoso.com';

/** The count of file refreshes with that result; undefined while the series does not exist. */
async function syncs(metrics: SignetMetrics, result: string): Promise<number | undefined> {
  return (await metrics.directorySyncs.get()).values.find((v) => v.labels.source === 'file' && v.labels.result === result)?.value;
}

describe('directory file as a live source (the relay without Microsoft Graph)', () => {
  let dir: string;
  let file: string;
  let source: DirectoryFileSource | undefined;
  let n = 0;
  /** Replaces the file the way editors and config tools do: a new file renamed over the old one. */
  const replace = (text: string) => {
    const tmp = join(dir, `.directory-${n++}.yaml`);
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'signet-dirfile-'));
    file = join(dir, 'directory.yaml');
    // the photos the example directory names
    cpSync(join(EXAMPLE_DIR, 'photos'), join(dir, 'photos'), { recursive: true });
  });
  afterEach(() => {
    source?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('re-reads the file when it changes, and keeps the running directory while the file is broken or gone', async () => {
    const metrics = createMetrics({ processMetrics: false });
    replace(EXAMPLE);
    source = createDirectoryFileSource({ file, pollSeconds: 0, metrics });
    // both results exist at 0 before the first read, so the first failure is an increase alerts can see
    expect([await syncs(metrics, 'ok'), await syncs(metrics, 'failed')]).to.deep.equal([0, 0]);
    await source.start();
    expect(source.current()!.lookup(TOM)!.attributes.jobTitle).to.equal('Account Executive');
    expect(await source.check()).to.equal('unchanged');

    replace(EXAMPLE.replace('jobTitle: Account Executive', 'jobTitle: Head of Sales'));
    expect(await source.check()).to.equal('loaded');
    const good = source.current()!;
    expect(good.lookup(TOM)!.attributes.jobTitle).to.equal('Head of Sales');

    // invalid: refused once, not again until it changes; the running snapshot stays
    replace(EXAMPLE.replace('groups: [sales]', 'groups: [no-such-group]'));
    expect(await source.check()).to.equal('failed');
    expect(await source.check()).to.equal('unchanged');
    expect(source.current()).to.equal(good);

    unlinkSync(file);
    expect(await source.check()).to.equal('failed');
    expect(source.current()).to.equal(good);

    replace(EXAMPLE);
    expect(await source.check()).to.equal('loaded');
    expect(source.current()!.lookup(TOM)!.attributes.jobTitle).to.equal('Account Executive');
    expect(await syncs(metrics, 'ok')).to.equal(3);
    expect(await syncs(metrics, 'failed')).to.equal(2);
    expect((await metrics.directoryUsers.get()).values.find((v) => v.labels.source === 'file')?.value).to.equal(source.current()!.size);
    // the example directory gives Ingrid a photo, and no one else
    expect((await metrics.directoryPhotos.get()).values.find((v) => v.labels.source === 'file')?.value).to.equal(1);
  });

  it('starts without the file (senders unknown) and loads it when it appears, by itself on the timer', async () => {
    source = createDirectoryFileSource({ file, pollSeconds: 0.05 });
    await source.start();
    expect(source.current()).to.equal(undefined);
    replace(EXAMPLE);
    for (let i = 0; i < 100 && !source.current(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(source.current()?.lookup(TOM)?.groups).to.include('Sales');
  });

  it('re-reads the directory when a photo it names changes on disk, and keeps the running directory while a photo is gone', async () => {
    const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]);
    const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 4, 5, 6, 7, 8]);
    const photo = join(dir, 'photos', 'tom.jpg');
    mkdirSync(join(dir, 'photos'), { recursive: true });
    writeFileSync(photo, JPEG);
    replace(EXAMPLE.replace('  - mail: tom.okafor@contoso.com\n', '  - mail: tom.okafor@contoso.com\n    photo: photos/tom.jpg\n'));
    const logged: string[] = [];
    const logger = createLogger({ level: 'debug', destination: { write: (line: string) => void logged.push(line) } });
    source = createDirectoryFileSource({ file, pollSeconds: 0, logger });
    await source.start();
    expect(source.current()!.lookup(TOM)!.photo).to.deep.equal({ data: JPEG, contentType: 'image/jpeg' });
    expect(await source.check()).to.equal('unchanged');

    // the same directory.yaml, another photo in the same file
    writeFileSync(photo, PNG);
    expect(await source.check()).to.equal('loaded');
    const good = source.current()!;
    expect(good.lookup(TOM)!.photo).to.deep.equal({ data: PNG, contentType: 'image/png' });
    expect(await source.check()).to.equal('unchanged');

    unlinkSync(photo);
    expect(await source.check()).to.equal('failed');
    expect(await source.check()).to.equal('unchanged');
    expect(source.current()).to.equal(good);

    // back, by a rename as tools do
    writeFileSync(join(dir, 'photos', '.tom.jpg'), JPEG);
    renameSync(join(dir, 'photos', '.tom.jpg'), photo);
    expect(await source.check()).to.equal('loaded');
    expect(source.current()!.lookup(TOM)!.photo!.data.equals(JPEG)).to.equal(true);

    // photos are never logged: only the path, and why
    const text = logged.join('');
    expect(text).to.include('photos/tom.jpg: no such file');
    for (const bytes of [JPEG, PNG]) {
      expect(text).not.to.include(JSON.stringify(bytes.toJSON().data).slice(1, -1));
      expect(text).not.to.include(bytes.toString('base64'));
    }
  });
});
