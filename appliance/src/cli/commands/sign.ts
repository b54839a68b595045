// `signet sign`: run one message through the engine, as the relay would, from
// a file or stdin to a file or stdout. For trying an org config by hand and
// for scripts; exit status is 0 whether the message was signed or passed.
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, realpathSync, statSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { ConfigError, formatIssue, loadOrgFolder, parseInstant } from '../../config';
import { loadDirectoryFile } from '../../directory';
import { createEngine, type EngineResult } from '../../signature';

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
      // read as the rules read their dates: without Z or an offset, UTC (not this machine's time zone)
      const at = options.date === undefined ? undefined : parseInstant(options.date);
      if (options.date !== undefined && at === undefined) throw new Error(`--date: not an ISO 8601 date: ${options.date} (YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS], UTC unless it ends in Z or an offset)`);
      const now = at === undefined ? undefined : new Date(at);
      if (options.in !== undefined) {
        const info = statSync(options.in, { throwIfNoEntry: false });
        if (!info) throw new Error(`--in: no such file: ${options.in}`);
        if (info.isDirectory()) throw new Error(`--in: ${options.in} is a folder, not a message file`);
      }
      // a device or pipe (/dev/null, /dev/stdout) is written as it is, and a link's target replaced: never renamed over
      const outInfo = options.out === undefined ? undefined : statSync(options.out, { throwIfNoEntry: false });
      if (options.out !== undefined) {
        if (outInfo?.isDirectory()) throw new Error(`--out: ${options.out} is a folder, not a file`);
        if (!statSync(dirname(options.out), { throwIfNoEntry: false })?.isDirectory()) throw new Error(`--out: no such folder: ${dirname(options.out)}`);
      }
      const org = await oneLine(`configuration ${options.org}`, () => loadOrgFolder(options.org), `signet config validate ${options.org}`);
      const directoryFile = options.directory ?? join(options.org, 'directory.yaml');
      if (options.directory && !existsSync(directoryFile)) throw new Error(`--directory: no such file: ${options.directory}`);
      const directory = existsSync(directoryFile) ? await oneLine(`directory ${directoryFile}`, () => loadDirectoryFile(directoryFile)) : undefined;

      const engine = createEngine({ org, directory: () => directory, now: now ? () => now : undefined });
      const input = options.in ? createReadStream(options.in) : process.stdin;
      const run = engine.process(input, { mailFrom: options.from, rcptTo: options.to });
      // A failure rejects both the output and the result: the output's error is the one reported.
      run.result.catch(() => undefined);
      const result =
        options.out === undefined
          ? await pipeline(run.output, process.stdout, { end: false }).then(() => run.result)
          : outInfo && !outInfo.isFile()
            ? await pipeline(run.output, createWriteStream(options.out)).then(() => run.result)
            : await writeWhole(outInfo ? realpathSync(options.out) : options.out, run.output, run.result, outInfo?.mode);
      if (options.explain) process.stderr.write(`${JSON.stringify(result, null, 2)}\n`);
    });
}

/**
 * Writes beside `file` and renames it into place once the whole message is out: a failure
 * leaves no half-written file, and `--out` naming the `--in` file does not truncate the
 * message before it has been read.
 */
async function writeWhole(file: string, output: Readable, result: Promise<EngineResult>, mode = 0o666): Promise<EngineResult> {
  const temporary = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    // a replaced file keeps its permissions: a message kept private (0600) stays private
    await pipeline(output, createWriteStream(temporary, { flags: 'wx', mode: mode & 0o777 }));
    const done = await result;
    await rename(temporary, file);
    return done;
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/** What `load` returns, or one line naming the first problem (`more` lists them all). */
async function oneLine<T>(label: string, load: () => Promise<T>, more?: string): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if (!(error instanceof ConfigError) || error.issues.length === 0) throw error;
    const rest = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more${more ? `: ${more}` : ''})` : '';
    throw new Error(`${label}: ${formatIssue(error.issues[0]!)}${rest}`);
  }
}
