// Process entry point of `signet`: run the program, turn a thrown usage or
// config error into one line on stderr and a non-zero exit.
import { formatCliError } from './errors';
import { buildProgram } from './program';

buildProgram(process.argv.slice(2))
  .parseAsync(process.argv)
  .catch((error: unknown) => {
    process.stderr.write(`signet: ${formatCliError(error)}\n`);
    process.exitCode = process.exitCode && process.exitCode !== 0 ? process.exitCode : 2;
  });
