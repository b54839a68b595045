// The example organization as the benchmarks run it: a copy whose winter
// campaign window is moved to run from a month ago to a year from now, so that
// every run, whatever its date, measures the same work (signature, disclaimer
// and campaign banner) instead of silently losing the banner once the example's
// dates have passed.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const EXAMPLE = resolve(__dirname, '../config/examples/contoso');
const WINDOW = { from: 'from: 2026-11-16', until: 'until: 2027-01-01' };

export interface BenchOrg {
  dir: string;
  cleanup(): void;
}

export function benchOrgFolder(now = new Date()): BenchOrg {
  const dir = mkdtempSync(join(tmpdir(), 'signet-bench-org-'));
  cpSync(EXAMPLE, dir, { recursive: true });
  const day = (offsetDays: number) => new Date(now.getTime() + offsetDays * 86_400_000).toISOString().slice(0, 10);
  for (const file of ['rules.yaml', 'addons/winter-campaign.yaml']) {
    const path = join(dir, file);
    const text = readFileSync(path, 'utf8');
    // the example's window is written once in each file; a change to the example must be made here too
    if (!text.includes(WINDOW.from) || !text.includes(WINDOW.until)) throw new Error(`${file}: the example's campaign window is no longer ${WINDOW.from} … ${WINDOW.until}`);
    writeFileSync(path, text.replace(WINDOW.from, `from: ${day(-30)}`).replace(WINDOW.until, `until: ${day(365)}`));
  }
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
