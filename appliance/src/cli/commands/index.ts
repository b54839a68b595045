import type { Command } from 'commander';

type Register = (program: Command) => void;

// Each command module exports `register(program)`. A module is loaded only
// when its command runs (or for the full help): `signet serve` on a node does
// not carry the operator tools' modules in memory, and each command starts
// faster. `names` are the top-level command names a module registers.
const commands: Array<{ names: string[]; load: () => Register }> = [
  { names: ['connectors'], load: () => (require('./connectors') as typeof import('./connectors')).register },
  { names: ['status'], load: () => (require('./status') as typeof import('./status')).register },
  { names: ['explain'], load: () => (require('./explain') as typeof import('./explain')).register },
  { names: ['preview'], load: () => (require('./preview') as typeof import('./preview')).register },
  { names: ['config'], load: () => (require('./config-validate') as typeof import('./config-validate')).register },
  { names: ['config', 'keys'], load: () => (require('./config-bundle') as typeof import('./config-bundle')).register },
  { names: ['directory'], load: () => (require('./directory') as typeof import('./directory')).register },
  { names: ['sign'], load: () => (require('./sign') as typeof import('./sign')).register },
  { names: ['serve'], load: () => (require('./serve') as typeof import('./serve')).register },
  { names: ['dev', 'send-sample'], load: () => (require('./dev') as typeof import('./dev')).register },
];

/** Registers the command that `args` names, or every command when it names none we know (help, typos). */
export function registerCommands(program: Command, args: readonly string[] = []): void {
  const wanted = args.find((arg) => !arg.startsWith('-'));
  const matching = commands.filter((command) => wanted !== undefined && command.names.includes(wanted));
  for (const command of matching.length ? matching : commands) command.load()(program);
}
