// `signet directory sync --dry-run`: read the directory from Microsoft Graph
// once, as a node would, and report what was found (counts per group, errors),
// to check the Graph app's permissions and the group names rules use; with
// --photos also the users' photos, before a template starts calling photo().
// Nothing is written anywhere; attributes are not printed. With --app-client-id
// it signs in as the customer-consented Graph app the way an MSP-hosted node
// does (its secret from Key Vault or a file), which is what needs checking there.
import type { Command } from 'commander';
import { createGraphDirectorySource, GRAPH_CLOUD_NAMES, otherCloudOf, type GraphCloud } from '../../directory';
import { createLogger } from '../../observability';
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
  photos?: boolean;
}

/** What the photo pass logged: its counts, and the reasons or the first error of what was not used. */
interface PhotoReport {
  loaded?: { photos: number; missing: number; refused: number; failed: number };
  refusedReasons?: string[];
  failure?: { status?: number; code?: string; err?: string; skipped?: number };
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
    .option('--photos', 'also load every user\'s photo (96x96), as nodes do when a template calls photo(), and report counts')
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
      // The photo pass reports through the log (counts and reasons only); read here, never printed as a log.
      const photos: PhotoReport = {};
      const logger = createLogger({
        level: 'info',
        destination: {
          write(line: string) {
            const entry = JSON.parse(line) as { event?: string; photos?: number; missing?: number; refused?: number; failed?: number; reasons?: string[]; status?: number; code?: string; err?: string; skipped?: number };
            if (entry.event === 'directory_photos_loaded') photos.loaded = { photos: entry.photos ?? 0, missing: entry.missing ?? 0, refused: entry.refused ?? 0, failed: entry.failed ?? 0 };
            if (entry.event === 'directory_photos_refused') photos.refusedReasons = entry.reasons ?? [];
            if (entry.event === 'directory_photos_failed') photos.failure = { status: entry.status, code: entry.code, err: entry.err, skipped: entry.skipped };
          },
        },
      });
      const source = createGraphDirectorySource({
        credential, groups: options.group, baseUrl: options.graphUrl ?? endpoints.baseUrl, scope: endpoints.scope, refreshSeconds: 0, maxRefreshSeconds: 300,
        photos: options.photos === true, logger,
      });
      const result = await source.refresh();
      if (result === 'failed') {
        process.stderr.write(`${source.status().lastError}\n`);
        process.exitCode = 1;
        return;
      }
      await source.photosSettled(); // a node loads them in the background; here they are the point
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
      if (options.photos) lines.push(...photoLines(photos));
      process.stdout.write(`${lines.join('\n')}\n`);
      // photos that could not be loaded (a permission, the service) would be missing from every signature
      if ((photos.loaded?.failed ?? 0) > 0) process.exitCode = 1;
    });
}

function photoLines(report: PhotoReport): string[] {
  const { loaded, refusedReasons, failure } = report;
  if (!loaded) return ['photos: none asked for (no user with a mail address)'];
  const lines = [`photos: ${loaded.photos} loaded, ${loaded.missing} ${loaded.missing === 1 ? 'user has' : 'users have'} none`];
  if (loaded.refused > 0) lines.push(`photos: ${loaded.refused} not used: ${(refusedReasons ?? []).join('; ')}`);
  if (loaded.failed > 0) {
    const why = [failure?.status ? `HTTP ${failure.status}` : undefined, failure?.code, failure?.err].filter(Boolean).join(' ');
    lines.push(`photos: ${loaded.failed} failed${why ? ` (first: ${why})` : ''}${failure?.skipped ? `; stopped after repeated failures, ${failure.skipped} users not asked` : ''}`);
  }
  return lines;
}
