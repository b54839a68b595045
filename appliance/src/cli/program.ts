// The `signet` command line: one commander program; each command lives in
// its own file under commands/ and registers itself here.
import { Command } from 'commander';
import { registerCommands } from './commands';
import { ENGINE_VERSION } from '../version';

/**
 * Commander's usage error (`error: …`, then a "Did you mean" line) as the one
 * line signet prints for any error that ends a command, with where to look.
 */
export function usageErrorLine(text: string, command: string): string {
  const [first = '', ...rest] = text.trim().split('\n').map((line) => line.trim()).filter(Boolean);
  const hints = rest.map((line) => line.replace(/^\((.*)\)$/, '$1').replace(/^Did/, 'did'));
  return `signet: ${first.replace(/^error: /, '')}${hints.length ? ` (${hints.join('; ')})` : ''}; see ${command} --help\n`;
}

function oneLineUsageErrors(command: Command, name: string): void {
  command.configureOutput({ outputError: (text, write) => write(usageErrorLine(text, name)) });
  for (const sub of command.commands) oneLineUsageErrors(sub, `${name} ${sub.name()}`);
}

/** The program; with the command line's arguments, only the command they name is loaded. */
export function buildProgram(args: readonly string[] = []): Command {
  const program = new Command('signet').description('Signet: server-side email signatures for Microsoft 365').version(ENGINE_VERSION);
  registerCommands(program, args);
  oneLineUsageErrors(program, 'signet');
  return program;
}
