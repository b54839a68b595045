// `signet sign`: run one message through the engine, as the relay would, from
// a file or stdin to a file or stdout. For trying an org config by hand and
// for scripts; exit status is 0 whether the message was signed or passed.
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { ConfigError, formatIssue, loadOrgFolder, type OrgConfig } from '../../config';
import { loadDirectoryFile } from '../../directory';
import { createEngine } from '../../signature';

interface SignOptions {
  org: string;
  from: string;
  to: string[];
  directory?: string;
  in?: string;
  out?: string;
  explain?: boolean;
  date?: string;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function register(program: Command): void {
  program
    .command('sign')
    .description('sign one message with an organization config: reads a message (stdin by default), writes the result (stdout by default)')
    .requiredOption('--org <dir>', 'organization config folder')
    .requiredOption('--from <address>', 'envelope sender (MAIL FROM), used to find the user')
    .option('--to <address>', 'envelope recipient (RCPT TO); repeat for several', collect, [])
    .option('--directory <file>', 'directory file (default: directory.yaml in the org folder)')
    .option('--in <file>', 'message file (default: stdin)')
    .option('--out <file>', 'output file (default: stdout)')
    .option('--date <iso>', 'evaluate date windows at this time instead of now')
    .option('--explain', 'write the decision as JSON to stderr')
    .action(async (options: SignOptions) => {
      if (!/^[^@\s]+@[^@\s]+$/.test(options.from)) throw new Error(`--from: not an email address: ${options.from}`);
      for (const to of options.to) if (!/^[^@\s]+@[^@\s]+$/.test(to)) throw new Error(`--to: not an email address: ${to}`);
      const now = options.date ? new Date(options.date) : undefined;
      if (now && Number.isNaN(now.getTime())) throw new Error(`--date: not an ISO 8601 date: ${options.date}`);
      const org = await loadOrgOneLine(options.org);
      const directoryFile = options.directory ?? join(options.org, 'directory.yaml');
      const directory = existsSync(directoryFile) ? await loadDirectoryFile(directoryFile) : undefined;
      if (options.directory && !directory) throw new Error(`--directory: no such file: ${options.directory}`);
      if (options.in && !existsSync(options.in)) throw new Error(`--in: no such file: ${options.in}`);

      const engine = createEngine({ org, directory: () => directory, now: now ? () => now : undefined });
      const input = options.in ? createReadStream(options.in) : process.stdin;
      const run = engine.process(input, { mailFrom: options.from, rcptTo: options.to });
      const output = options.out ? createWriteStream(options.out) : process.stdout;
      await pipeline(run.output, output, { end: output !== process.stdout });
      const result = await run.result;
      if (options.explain) process.stderr.write(`${JSON.stringify(result, null, 2)}\n`);
    });
}

/** The org folder, or one line naming the first problem (`signet config validate` lists them all). */
async function loadOrgOneLine(dir: string): Promise<OrgConfig> {
  try {
    return await loadOrgFolder(dir);
  } catch (error) {
    if (!(error instanceof ConfigError) || error.issues.length === 0) throw error;
    const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more: signet config validate ${dir})` : '';
    throw new Error(`configuration ${dir}: ${formatIssue(error.issues[0]!)}${more}`);
  }
}
