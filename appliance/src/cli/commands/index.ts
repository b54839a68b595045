import type { Command } from 'commander';
import { register as connectors } from './connectors';
import { register as status } from './status';
import { register as explain } from './explain';
import { register as preview } from './preview';
import { register as configValidate } from './config-validate';
import { register as configBundle } from './config-bundle';
import { register as directory } from './directory';
import { register as sign } from './sign';
import { register as serve } from './serve';
import { register as dev } from './dev';

// One line per command module; each exports `register(program)`.
const commands: Array<(program: Command) => void> = [
  connectors,
  status,
  explain,
  preview,
  configValidate,
  configBundle,
  directory,
  sign,
  serve,
  dev,
];

export function registerCommands(program: Command): void {
  for (const register of commands) register(program);
}
