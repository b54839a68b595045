// Seal the example organization (or a copy of it with edits) for tests: the
// relay's end-to-end tests publish these and watch nodes hot-reload them.
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { seal } from '../../appliance/src/config/bundle';
import { readOrgFolder } from '../../appliance/src/config';
import { createLocalKeyFile, createLocalKeyProvider, type OrgKeyProvider } from '../../appliance/src/secrets';

export const EXAMPLE_ORG_DIR = path.resolve(__dirname, '../../config/examples/contoso');

/** A scratch directory with a fresh local org key (`key`, `keyFile`) and a copy of the example org (`orgDir`). */
export interface SealedOrgKit {
  dir: string;
  keyFile: string;
  key: OrgKeyProvider;
  orgDir: string;
  /** Seal the current contents of `orgDir` (after optional edits: file → new content). */
  seal(version: number, edits?: Record<string, string | Buffer>): Promise<Buffer>;
  cleanup(): Promise<void>;
}

export async function createSealedOrgKit(source = EXAMPLE_ORG_DIR): Promise<SealedOrgKit> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'signet-sealed-org-'));
  const keyFile = path.join(dir, 'org.key');
  await createLocalKeyFile(keyFile);
  const key = createLocalKeyProvider(keyFile);
  const orgDir = path.join(dir, 'org');
  await cp(source, orgDir, { recursive: true });
  return {
    dir,
    keyFile,
    key,
    orgDir,
    async seal(version, edits = {}) {
      for (const [file, content] of Object.entries(edits)) await writeFile(path.join(orgDir, file), content);
      const files = await readOrgFolder(orgDir);
      return seal(files, { orgId: 'contoso', version, author: 'test@signet.invalid', keyProvider: key });
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
