// `signet config validate DIR`: checks an organization folder (and its local
// directory file, if any) and prints every problem as `file:line path: message`.
// Exit 1 when there is any problem, else one OK line with what was found.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import {
  ConfigError,
  DIRECTORY_FILE,
  formatIssue,
  loadOrgFromFiles,
  readOrgFolder,
  sortIssues,
  type ConfigIssue,
  type OrgConfig,
} from '../../config';
import { parseDirectoryFile, type DirectorySnapshot } from '../../directory';

/** The `config` command group; created on first use, shared by every `config` subcommand. */
export function configCommand(program: Command): Command {
  const existing = program.commands.find((command) => command.name() === 'config');
  if (existing) return existing;
  return program.command('config').description('organization configuration: validate, seal, inspect, publish');
}

const plural = (count: number, one: string, many = `${one}s`) => `${count} ${count === 1 ? one : many}`;

async function validate(dir: string): Promise<{ issues: ConfigIssue[]; org?: OrgConfig; directory?: DirectorySnapshot }> {
  const issues: ConfigIssue[] = [];
  const collect = (error: unknown) => {
    if (error instanceof ConfigError) issues.push(...error.issues);
    else throw error;
  };
  let org: OrgConfig | undefined;
  let directory: DirectorySnapshot | undefined;
  const files = await readOrgFolder(dir).catch(collect);
  if (files) {
    try {
      org = loadOrgFromFiles(files, { version: 'local', label: dir });
    } catch (error) {
      collect(error);
    }
  }
  const directoryBytes = await fs.readFile(path.join(dir, DIRECTORY_FILE)).catch(() => undefined);
  if (directoryBytes) {
    try {
      directory = parseDirectoryFile(directoryBytes, DIRECTORY_FILE);
    } catch (error) {
      collect(error);
    }
  }
  return { issues: sortIssues(issues), org, directory };
}

export function register(program: Command): void {
  configCommand(program)
    .command('validate')
    .description('check an organization folder; print every problem (file:line path: message), exit 1 if any')
    .argument('<dir>', 'organization folder (org.yaml, rules.yaml, templates/, …)')
    .action(async (dir: string) => {
      const { issues, org, directory } = await validate(dir);
      if (issues.length > 0) {
        const lines = issues.map((issue) => formatIssue(issue, path.join(dir, issue.file)));
        process.stdout.write(`${lines.join('\n')}\n${plural(issues.length, 'problem')} in ${dir}\n`);
        process.exitCode = 1;
        return;
      }
      const parts = [
        plural(org!.rules.length, 'rule'),
        plural(org!.templates.size, 'template'),
        plural(org!.addons.size, 'add-on'),
        plural(org!.images.size, 'image'),
        plural(org!.userAttributes.size, 'user override'),
      ];
      if (directory) parts.push(plural(directory.size, 'directory user'));
      const name = org!.displayName ? ` (${org!.displayName})` : '';
      process.stdout.write(`OK ${org!.orgId}${name}: ${parts.join(', ')}\n`);
    });
}
