// Engine benchmark (a measurement, not a test): the whole engine — decision,
// rules, rendering with the example organization, MIME surgery — against a
// plain mailsplit split+join of the same message (the floor), on one core,
// with peak RSS growth while the 150 MB message goes through.
// Run: npm run bench -- engine
import { cpus } from 'node:os';
import path from 'node:path';
import { loadOrgFolder } from '../appliance/src/config';
import { loadDirectoryFile } from '../appliance/src/directory';
import { createEngine } from '../appliance/src/signature';
import type { Engine } from '../appliance/src/signature/types';
import { benchOrgFolder } from './example-org';
import { buildBenchMessages, compareRates, drain, floorOnce, fmt, peakRssGrowth, type BenchMessage } from './mime';

async function main(): Promise<void> {
  const bench = benchOrgFolder();
  const org = await loadOrgFolder(bench.dir);
  const directory = await loadDirectoryFile(path.join(bench.dir, 'directory.yaml'));
  bench.cleanup();
  const engine: Engine = createEngine({ org, directory: () => directory });
  const envelope = { mailFrom: 'tom.okafor@contoso.com', rcptTo: ['buyer@fabrikam.example'] };
  const engineOnce = async (msg: BenchMessage): Promise<number> => {
    const run = engine.process(msg.open(), envelope);
    const n = await drain(run.output);
    const result = await run.result;
    if (result.outcome !== 'signed') throw new Error(`${msg.name} was not signed: ${result.reason}`);
    // the campaign is for new external mail (the example's rule): the 10 KB message gets the banner
    if (result.kind === 'new' && !result.addons.includes('winter-campaign')) throw new Error(`${msg.name} did not get the campaign banner`);
    return n;
  };

  console.log(`Engine (example org, sales signature + disclaimer + campaign) vs. split+join floor — node ${process.version}, os.cpus().length = ${cpus().length}, one core (rates use this process's CPU time)`);
  console.log(`${'message'.padEnd(32)} ${'floor msg/s'.padStart(12)} ${'floor MB/s'.padStart(11)} ${'engine msg/s'.padStart(13)} ${'engine MB/s'.padStart(12)} ${'ratio'.padStart(7)}`);
  const messages = buildBenchMessages();
  for (const msg of messages.slice(0, 3)) {
    const seconds = msg.size > 1024 * 1024 ? 3 : 2;
    const [floor, signed] = await compareRates(floorOnce, engineOnce, msg, seconds);
    console.log(
      `${msg.name.padEnd(32)} ${fmt(floor.perSecond).padStart(12)} ${fmt(floor.mbPerSecond).padStart(11)} ${fmt(signed.perSecond).padStart(13)} ${fmt(signed.mbPerSecond).padStart(12)} ${(floor.perSecond / signed.perSecond).toFixed(2).padStart(6)}×`,
    );
  }
  const big = messages[3]!;
  const floorRss = await peakRssGrowth(floorOnce, big);
  const engineRss = await peakRssGrowth(engineOnce, big);
  console.log(
    `${big.name.padEnd(32)} ${fmt(1 / floorRss.seconds, 3).padStart(12)} ${fmt(big.size / floorRss.seconds / 1e6).padStart(11)} ${fmt(1 / engineRss.seconds, 3).padStart(13)} ${fmt(big.size / engineRss.seconds / 1e6).padStart(12)} ${(engineRss.seconds / floorRss.seconds).toFixed(2).padStart(6)}×`,
  );
  console.log(`peak RSS growth while the 150 MB message goes through: floor ${floorRss.mb.toFixed(1)} MB, engine ${engineRss.mb.toFixed(1)} MB (target ≤ 64 MB)`);
  console.log('targets: engine ≤ 1.5× the floor for the 10 KB and 60 KB messages');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
