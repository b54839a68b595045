// Shared by the config tests: the example organization as a files map, and a
// way to run the loader and get its issues.
import * as path from 'node:path';
import { expect } from 'chai';
import { ConfigError, loadOrgFromFiles, readOrgFolder, type ConfigIssue } from '../../appliance/src/config';

export const REPO_ROOT = path.resolve(__dirname, '../..');
export const EXAMPLE_DIR = path.join(REPO_ROOT, 'config/examples/contoso');

let cached: Map<string, Buffer> | undefined;

/** A fresh copy of the example's files map (the cache is read once). */
export async function exampleFiles(): Promise<Map<string, Buffer>> {
  cached ??= await readOrgFolder(EXAMPLE_DIR);
  return new Map(cached);
}

export function withFile(files: Map<string, Buffer>, name: string, text: string | Buffer): Map<string, Buffer> {
  const copy = new Map(files);
  copy.set(name, typeof text === 'string' ? Buffer.from(text) : text);
  return copy;
}

export function issuesOf(files: ReadonlyMap<string, Buffer>): ConfigIssue[] {
  try {
    loadOrgFromFiles(files, { version: 'test', label: 'test' });
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
  return [];
}

/** Asserts one issue matches file, path, line and message, and returns it. */
export function expectIssue(
  issues: readonly ConfigIssue[],
  want: { file: string; path: string; line?: number; message: RegExp },
): ConfigIssue {
  const found = issues.find((i) => i.file === want.file && i.path === want.path && want.message.test(i.message));
  expect(found, `no issue ${JSON.stringify({ ...want, message: String(want.message) })} in\n${issues.map((i) => JSON.stringify(i)).join('\n')}`).to.not.equal(undefined);
  if (want.line !== undefined) expect(found!.line, `line of ${found!.path}: ${found!.message}`).to.equal(want.line);
  return found!;
}
