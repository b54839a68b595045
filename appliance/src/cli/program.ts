// The `signet` command line: one commander program; each command lives in
// its own file under commands/ and registers itself here.
import { Command } from 'commander';
import { registerCommands } from './commands';
import { ENGINE_VERSION } from '../version';

/** The program; with the command line's arguments, only the command they name is loaded. */
export function buildProgram(args: readonly string[] = []): Command {
  const program = new Command('signet')
    .description('Signet: server-side email signatures for Microsoft 365')
    .version(ENGINE_VERSION)
    .showHelpAfterError()
    .configureOutput({ outputError: (str, write) => write(str) });
  registerCommands(program, args);
  return program;
}
