// The `signet` command line: one commander program; each command lives in
// its own file under commands/ and registers itself here.
import { Command } from 'commander';
import { registerCommands } from './commands';
import { ENGINE_VERSION } from '../version';

export function buildProgram(): Command {
  const program = new Command('signet')
    .description('Signet: server-side email signatures for Microsoft 365')
    .version(ENGINE_VERSION)
    .showHelpAfterError()
    .configureOutput({ outputError: (str, write) => write(str) });
  registerCommands(program);
  return program;
}
