import { expect } from 'chai';
import { mkdtempSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createDirectoryFileSource, type DirectoryFileSource } from '../../appliance/src/directory';
import { createMetrics, type SignetMetrics } from '../../appliance/src/observability';

const EXAMPLE = readFileSync(resolve(__dirname, '../../config/examples/contoso/directory.yaml'), 'utf8');
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
  });

  it('starts without the file (senders unknown) and loads it when it appears, by itself on the timer', async () => {
    source = createDirectoryFileSource({ file, pollSeconds: 0.05 });
    await source.start();
    expect(source.current()).to.equal(undefined);
    replace(EXAMPLE);
    for (let i = 0; i < 100 && !source.current(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(source.current()?.lookup(TOM)?.groups).to.include('Sales');
  });
});
