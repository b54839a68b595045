// `npm run bench`: runs each benchmark in its own process (so peak RSS is
// measured per benchmark, not accumulated) and prints their figures. These are
// measurements, never pass/fail checks.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { didYouMean } from '../appliance/src/config/suggest';

const KNOWN = ['mime', 'engine', 'relay'];
const benches = process.argv.slice(2).length ? process.argv.slice(2) : KNOWN;
const unknown = benches.filter((name) => !KNOWN.includes(name));
if (unknown.length) {
  for (const name of unknown) {
    const hint = didYouMean(name, KNOWN);
    console.error(`unknown benchmark "${name}"${hint ? `; did you mean "${hint}"?` : ''}`);
  }
  console.error(`known benchmarks: ${KNOWN.join(', ')} (npm run bench -- NAME…; none runs them all)`);
  process.exit(2);
}
console.log(`Signet benchmarks — node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), ${Math.round(totalmem() / 1024 ** 3)} GiB`);
let failed = false;
for (const name of benches) {
  const file = join(__dirname, `${name}.ts`);
  if (!existsSync(file)) {
    console.log(`\n== ${name}: not present`);
    continue;
  }
  console.log(`\n== ${name}`);
  const run = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', file], { stdio: 'inherit' });
  if (run.status !== 0) failed = true;
}
process.exitCode = failed ? 1 : 0;
