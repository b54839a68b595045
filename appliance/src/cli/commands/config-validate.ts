// `signet config validate DIR`: checks an organization folder (and its local
// directory file, if any) and prints every problem as `file:line path: message`.
// Exit 1 when there is any problem, else one OK line with what was found.
// Rule groups no user of the local directory file is in are warnings, not
// problems: with Microsoft Graph as the directory the local file is only a sample.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import {
  ConfigError,
  DIRECTORY_FILE,
  formatIssue,
  formatPath,
  loadOrgFromFiles,
  readOrgFolder,
  readYamlWithSchema,
  RULES_FILE,
  sortIssues,
  type ConfigIssue,
  type OrgConfig,
} from '../../config';
import { parseDirectoryFile, type DirectorySnapshot } from '../../directory';
import { compileTemplates } from '../../signature';

/** The `config` command group; created on first use, shared by every `config` subcommand. */
export function configCommand(program: Command): Command {
  const existing = program.commands.find((command) => command.name() === 'config');
  if (existing) return existing;
  return program.command('config').description('organization configuration: validate, seal, inspect, publish');
}

const plural = (count: number, one: string, many = `${one}s`) => `${count} ${count === 1 ? one : many}`;

/**
 * What a node's engine refuses that the loader cannot see: it compiles every template and add-on
 * and renders each once with an empty user (a misspelt name, a helper used wrongly).
 */
export function templateProblems(org: OrgConfig): ConfigIssue[] {
  try {
    compileTemplates(org);
    return [];
  } catch (error) {
    const message = (error as Error).message;
    const at = /^((?:templates|addons)\/[^:]+):(\d+): ([\s\S]*)$/.exec(message);
    return [at ? { file: at[1]!, path: '', line: Number(at[2]), message: at[3]! } : { file: '', path: '', message }];
  }
}

/** Groups named by rules (and their exceptions) that no user of the directory is a member of. */
function groupsMatchingNobody(org: OrgConfig, directory: DirectorySnapshot, rulesBytes: Buffer | undefined): ConfigIssue[] {
  const known = new Set<string>();
  for (const user of directory.users()) for (const g of user.groups) known.add(g.toLowerCase());
  const yaml = rulesBytes ? readYamlWithSchema(rulesBytes, RULES_FILE, z.unknown()) : undefined;
  const warnings: ConfigIssue[] = [];
  org.rules.forEach((rule, i) => {
    const conditions: Array<[Array<string | number>, { groups?: string[] }]> = [[['match'], rule.match], ...(rule.except ?? []).map((m, k): [Array<string | number>, { groups?: string[] }] => [['except', k], m])];
    for (const [at, condition] of conditions) {
      (condition.groups ?? []).forEach((group, j) => {
        if (known.has(group.toLowerCase())) return;
        const path = ['rules', i, ...at, 'groups', j];
        warnings.push({ file: RULES_FILE, path: formatPath(path), line: yaml?.yaml.lineOf(path), message: `no user in ${DIRECTORY_FILE} is in group "${group}" (by id or name), so this matches nobody there` });
      });
    }
  });
  return sortIssues(warnings);
}

async function validate(dir: string): Promise<{ issues: ConfigIssue[]; warnings: ConfigIssue[]; org?: OrgConfig; directory?: DirectorySnapshot }> {
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
    if (org) issues.push(...templateProblems(org));
  }
  const directoryBytes = await fs.readFile(path.join(dir, DIRECTORY_FILE)).catch(() => undefined);
  if (directoryBytes) {
    try {
      directory = parseDirectoryFile(directoryBytes, DIRECTORY_FILE);
    } catch (error) {
      collect(error);
    }
  }
  const warnings = org && directory && issues.length === 0 ? groupsMatchingNobody(org, directory, files?.get(RULES_FILE)) : [];
  return { issues: sortIssues(issues), warnings, org, directory };
}

export function register(program: Command): void {
  configCommand(program)
    .command('validate')
    .description('check an organization folder; print every problem (file:line path: message), exit 1 if any')
    .argument('<dir>', 'organization folder (org.yaml, rules.yaml, templates/, …)')
    .action(async (dir: string) => {
      const { issues, warnings, org, directory } = await validate(dir);
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
      for (const warning of warnings) process.stdout.write(`warning: ${formatIssue(warning, path.join(dir, warning.file))}\n`);
      process.stdout.write(`OK ${org!.orgId}${name}: ${parts.join(', ')}${warnings.length ? ` (${plural(warnings.length, 'warning')})` : ''}\n`);
    });
}
