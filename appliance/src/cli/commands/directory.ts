// `signet directory sync --dry-run`: read the directory from Microsoft Graph
// once, as a node would, and report what was found (counts per group, errors),
// to check the Graph app's permissions and the group names rules use.
// Nothing is written anywhere; attributes are not printed. With --app-client-id
// it signs in as the customer-consented Graph app the way an MSP-hosted node
// does (its secret from Key Vault or a file), which is what needs checking there.
import type { Command } from 'commander';
import { createGraphDirectorySource, GRAPH_CLOUD_NAMES, otherCloudOf, type GraphCloud } from '../../directory';
import { createAzureCredential } from '../../secrets';
import { graphCredential, graphEndpoints } from './serve';

interface SyncOptions {
  dryRun?: boolean;
  group: string[];
  graphUrl?: string;
  cloud: string;
  identity: 'managed' | 'operator';
  clientId?: string;
  tenantId?: string;
  appClientId?: string;
  appSecret?: string;
  authorityHost?: string;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function register(program: Command): void {
  const directory = program.commands.find((command) => command.name() === 'directory') ?? program.command('directory').description('directory of users and their attributes');
  directory
    .command('sync')
    .description('load users and group memberships from Microsoft Graph once and report counts')
    .option('--dry-run', 'only report (the only mode: Signet keeps the directory in memory)')
    .option('--group <name-or-id>', 'a group the rules reference; repeat for several', collect, [])
    .option('--cloud <name>', `where the tenant lives: ${GRAPH_CLOUD_NAMES.join(', ')} (sets the Graph URL, token scope and sign-in host)`, 'global')
    .option('--graph-url <url>', 'Microsoft Graph base URL (default: the cloud\'s)')
    .option('--identity <kind>', 'managed (the machine\'s managed identity) or operator (DefaultAzureCredential)', 'operator')
    .option('--client-id <id>', 'client id of a user-assigned managed identity')
    .option('--app-client-id <id>', 'sign in as this Graph app registration (the stack\'s graphAppClientId) instead of --identity')
    .option('--tenant-id <id>', 'with --app-client-id: the customer\'s Entra tenant id')
    .option('--app-secret <ref>', 'with --app-client-id: the app\'s client secret, a Key Vault secret URL (read with --identity) or file:PATH')
    .option('--authority-host <url>', 'with --app-client-id: Entra ID sign-in host (default: the cloud\'s own)')
    .action(async (options: SyncOptions) => {
      if (options.identity !== 'managed' && options.identity !== 'operator') throw new Error(`--identity: managed or operator, got ${options.identity}`);
      if (!(GRAPH_CLOUD_NAMES as string[]).includes(options.cloud)) throw new Error(`--cloud: one of ${GRAPH_CLOUD_NAMES.join(', ')}, got ${options.cloud}`);
      const cloud = options.cloud as GraphCloud;
      for (const [option, url] of [['--graph-url', options.graphUrl], ['--authority-host', options.authorityHost]] as const) {
        const other = url ? otherCloudOf(url, cloud) : undefined;
        if (other) throw new Error(`${option} ${url} belongs to ${other.join(' or ')}, not to --cloud ${cloud}: give --cloud ${other[0]} (it sets the Graph URL, token scope and sign-in host)`);
      }
      const identity = () => createAzureCredential({ kind: options.identity === 'managed' ? 'node' : 'operator', managedIdentityClientId: options.clientId });
      let credential;
      if (options.appClientId) {
        if (!options.tenantId || !options.appSecret) throw new Error('--app-client-id needs --tenant-id and --app-secret');
        if (!/^(file:.+|https:\/\/[^/]+\/secrets\/[A-Za-z0-9-]+)$/.test(options.appSecret)) throw new Error('--app-secret: a Key Vault secret URL https://<vault>.vault.azure.net/secrets/<name> or file:PATH');
        credential = await graphCredential(
          { tenantId: options.tenantId, refreshSeconds: 0, cloud, app: { clientId: options.appClientId, secret: options.appSecret, authorityHost: options.authorityHost } },
          identity,
        );
      } else {
        if (options.tenantId || options.appSecret || options.authorityHost) throw new Error('--tenant-id, --app-secret and --authority-host go with --app-client-id');
        credential = identity();
      }
      const endpoints = graphEndpoints({ cloud });
      const source = createGraphDirectorySource({ credential, groups: options.group, baseUrl: options.graphUrl ?? endpoints.baseUrl, scope: endpoints.scope, refreshSeconds: 0, maxRefreshSeconds: 300 });
      const result = await source.refresh();
      if (result === 'failed') {
        process.stderr.write(`${source.status().lastError}\n`);
        process.exitCode = 1;
        return;
      }
      const snapshot = source.current()!;
      const lines = [`${snapshot.size} users with a mail address`];
      const { unmatched } = source.status();
      for (const group of options.group) {
        // "0 members" would hide the reason a rule naming this group would match nobody
        const why = unmatched.get(group);
        if (why === 'not found') lines.push(`group ${JSON.stringify(group)}: not found in the directory (matches nobody)`);
        if (why === 'ambiguous') lines.push(`group ${JSON.stringify(group)}: several groups have this display name (matches nobody; name the group by its object id)`);
        if (why) continue;
        let members = 0;
        for (const user of snapshot.users()) if (user.groups.includes(group)) members++;
        lines.push(`group ${JSON.stringify(group)}: ${members} members (transitive)`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
