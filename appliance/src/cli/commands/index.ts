import type { Command } from 'commander';
import { register as connectors } from './connectors';

// One line per command module; each exports `register(program)`.
const commands: Array<(program: Command) => void> = [
  connectors,
];

export function registerCommands(program: Command): void {
  for (const register of commands) register(program);
}
