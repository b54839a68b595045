// `signet directory sync --dry-run`: read the directory from Microsoft Graph
// once, as a node would, and report what was found (counts per group, errors),
// to check the Graph app's permissions and the group names rules use.
// Nothing is written anywhere; attributes are not printed.
import type { Command } from 'commander';
import { createGraphDirectorySource } from '../../directory';
import { createAzureCredential } from '../../secrets';

interface SyncOptions {
  dryRun?: boolean;
  group: string[];
  graphUrl?: string;
  identity: 'managed' | 'operator';
  clientId?: string;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function register(program: Command): void {
  const directory = program.commands.find((command) => command.name() === 'directory') ?? program.command('directory').description('directory of users and their attributes');
  directory
    .command('sync')
    .description('load users and group memberships from Microsoft Graph once and report counts')
    .option('--dry-run', 'only report (the only mode: Signet keeps the directory in memory)')
    .option('--group <name-or-id>', 'a group the rules reference; repeat for several', collect, [])
    .option('--graph-url <url>', 'Microsoft Graph base URL', 'https://graph.microsoft.com/')
    .option('--identity <kind>', 'managed (the machine\'s managed identity) or operator (DefaultAzureCredential)', 'operator')
    .option('--client-id <id>', 'client id of a user-assigned managed identity')
    .action(async (options: SyncOptions) => {
      if (options.identity !== 'managed' && options.identity !== 'operator') throw new Error(`--identity: managed or operator, got ${options.identity}`);
      const credential = createAzureCredential({ kind: options.identity === 'managed' ? 'node' : 'operator', managedIdentityClientId: options.clientId });
      const source = createGraphDirectorySource({ credential, groups: options.group, baseUrl: options.graphUrl, refreshSeconds: 0, maxRefreshSeconds: 300 });
      const result = await source.refresh();
      if (result === 'failed') {
        process.stderr.write(`${source.status().lastError}\n`);
        process.exitCode = 1;
        return;
      }
      const snapshot = source.current()!;
      const lines = [`${snapshot.size} users with a mail address`];
      for (const group of options.group) {
        let members = 0;
        for (const user of snapshot.users()) if (user.groups.includes(group)) members++;
        lines.push(`group ${JSON.stringify(group)}: ${members} members (transitive)`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
