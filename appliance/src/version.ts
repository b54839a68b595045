// Engine version written into the X-Signet-Processed stamp and reported by
// --version: the package version, read at run time so that the compiled
// appliance (dist/) and a source checkout report the same thing.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

function findPackageVersion(): string {
  for (const up of ['..', '../..', '../../..']) {
    try {
      const pkg = JSON.parse(readFileSync(join(__dirname, up, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'signet' && pkg.version) return pkg.version;
    } catch {
      // not at this level; try the next one up
    }
  }
  return '0.0.0';
}

export const ENGINE_VERSION: string = findPackageVersion();
