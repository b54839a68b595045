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
  ORG_FILE,
  readOrgFolder,
  readYamlWithSchema,
  RULES_FILE,
  sortIssues,
  type ConfigIssue,
  type OrgConfig,
} from '../../config';
import { loadDirectoryFile, type DirectorySnapshot } from '../../directory';
import { loadStackOutputs, type StackOutputs } from '../../fleet';
import { asciiDomain, campaignWarnings, parseInstant, shadowedRules } from '../../rules';
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

/**
 * Rules that do not work as written: one an earlier stop rule always stops before (at the rule), and
 * campaign windows never shown, over, or two at once (at their rule's add-on).
 */
function ruleProblems(org: OrgConfig, rulesBytes: Buffer | undefined, now: Date): ConfigIssue[] {
  const yaml = rulesBytes ? readYamlWithSchema(rulesBytes, RULES_FILE, z.unknown()) : undefined;
  const at = (path: Array<string | number>, message: string): ConfigIssue => ({ file: RULES_FILE, path: formatPath(path), line: yaml?.yaml.lineOf(path), message });
  return [
    ...shadowedRules(org).map(({ rule, message }) => at(['rules', rule], message)),
    ...campaignWarnings(org, now).map(({ rule, addon, message }) => at(['rules', rule, 'addons', addon], message)),
  ];
}

/**
 * The stack and the organization each list the accepted domains: the stack's go into the
 * transport rule (whose senders Exchange Online routes to the relay), the organization's are
 * what the relay accepts. A stack domain the organization lacks bounces (the relay answers 550);
 * an organization domain the stack lacks is never routed (its mail goes out unsigned).
 */
export function stackMismatches(org: OrgConfig, outputs: StackOutputs, orgYaml: Buffer | undefined): { issues: ConfigIssue[]; warnings: ConfigIssue[] } {
  const yaml = orgYaml ? readYamlWithSchema(orgYaml, ORG_FILE, z.unknown()) : undefined;
  const at = (key: string) => ({ file: ORG_FILE, path: key, line: yaml?.yaml.lineOf([key]) });
  const issues: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  if (org.orgId !== outputs.orgId) issues.push({ ...at('orgId'), message: `is "${org.orgId}", the stack's is "${outputs.orgId}": the transport rule's loop exception looks for the stack's id in the stamp, and the nodes refuse another organization's bundle` });
  // compared as the relay compares them: an internationalized domain in either form is one domain
  const ours = new Set(org.acceptedDomains.map(asciiDomain));
  const theirs = new Set(outputs.acceptedDomains.map(asciiDomain));
  for (const domain of theirs) {
    if (!ours.has(domain)) issues.push({ ...at('acceptedDomains'), message: `lacks ${domain}, which the stack's signet:acceptedDomains has: Exchange Online routes its senders' mail to the relay, which refuses it (550, a bounce); add it here or remove it from the stack` });
  }
  for (const domain of ours) {
    if (!theirs.has(domain)) warnings.push({ ...at('acceptedDomains'), message: `${domain} is not in the stack's signet:acceptedDomains: the transport rule does not route its senders to Signet, so their mail goes out unsigned` });
  }
  return { issues, warnings };
}

async function validate(dir: string, now: Date, outputs?: StackOutputs): Promise<{ issues: ConfigIssue[]; warnings: ConfigIssue[]; org?: OrgConfig; directory?: DirectorySnapshot }> {
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
  // read as the relay reads it, with the photos it names (relative to the org folder)
  const directoryFile = path.join(dir, DIRECTORY_FILE);
  if (await fs.stat(directoryFile).then((stats) => stats.isFile(), () => false)) {
    try {
      directory = await loadDirectoryFile(directoryFile);
    } catch (error) {
      collect(error);
    }
  }
  const warnings = org && directory && issues.length === 0 ? groupsMatchingNobody(org, directory, files?.get(RULES_FILE)) : [];
  if (org && issues.length === 0) warnings.push(...ruleProblems(org, files?.get(RULES_FILE), now));
  if (org && outputs) {
    const stack = stackMismatches(org, outputs, files?.get(ORG_FILE));
    issues.push(...stack.issues);
    warnings.push(...stack.warnings);
  }
  return { issues: sortIssues(issues), warnings: sortIssues(warnings), org, directory };
}

export function register(program: Command): void {
  configCommand(program)
    .command('validate')
    .description('check an organization folder; print every problem (file:line path: message), exit 1 if any')
    .argument('<dir>', 'organization folder (org.yaml, rules.yaml, templates/, …)')
    .option('--stack-outputs <file>', 'also check the organization against its tenant stack (`pulumi stack output --json`): same organization id and accepted domains')
    .option('--at <date>', 'check campaign windows as of this ISO 8601 date or date-time instead of now (e.g. before a campaign starts)')
    .action(async (dir: string, options: { stackOutputs?: string; at?: string }) => {
      const outputs = options.stackOutputs ? loadStackOutputs(options.stackOutputs) : undefined;
      const now = options.at === undefined ? new Date() : new Date(parseInstant(options.at, '--at'));
      const { issues, warnings, org, directory } = await validate(dir, now, outputs);
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
