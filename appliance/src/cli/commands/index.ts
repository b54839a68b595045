import type { Command } from 'commander';

// One line per command module; each exports `register(program)`.
const commands: Array<(program: Command) => void> = [
];

export function registerCommands(program: Command): void {
  for (const register of commands) register(program);
}
