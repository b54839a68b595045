// Process entry point of `signet`: run the program, turn a thrown usage or
// config error into one line on stderr and a non-zero exit.
import { scrubLogValue } from '../observability/log';
import { formatCliError } from './errors';
import { buildProgram } from './program';

buildProgram(process.argv.slice(2))
  .parseAsync(process.argv)
  .catch((error: unknown) => {
    const line = formatCliError(error);
    // `serve` writes into the journal: scrubbed as its logs are
    process.stderr.write(`signet: ${process.argv[2] === 'serve' ? String(scrubLogValue(line)) : line}\n`);
    process.exitCode = process.exitCode && process.exitCode !== 0 ? process.exitCode : 2;
  });
