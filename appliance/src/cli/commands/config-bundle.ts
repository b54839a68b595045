// `signet config seal | inspect | unseal | reseal | diff | publish` and
// `signet keys create-local`: the operator's tools for sealed configuration
// bundles. A key is named by REF: `file:PATH` (local key file) or a Key Vault
// key URL `https://<vault>.vault.azure.net/keys/<name>[/<version>]`; Azure is
// reached as the operator (DefaultAzureCredential), or as the machine's
// managed identity with SIGNET_AZURE_IDENTITY=managed. Bundles sealed under a
// Key Vault key are signed with `<name>-signing` of the same vault (or
// --signing-key), and every command that opens one checks that signature as
// the nodes do.
import { readdir, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import {
  ConfigError,
  defaultBundleVersion,
  diffFiles,
  formatDiff,
  formatIssue,
  inspect,
  loadOrgFromFiles,
  publishBundle,
  readOrgFolder,
  reseal,
  seal,
  unseal,
  writeFileAtomic,
  writeUnsealedFolder,
  type BundleHeader,
} from '../../config';
import { createAzureCredential, createLocalKeyFile, isAzureKeyRef, keyProviderFromRef, signingKeyRefFor, type OrgKeyProvider, type TokenCredential } from '../../secrets';
import { configCommand, templateProblems } from './config-validate';

let credential: TokenCredential | undefined;
/** One credential per command run, made only if a Key Vault or blob URL needs it. */
export function cliCredential(): TokenCredential {
  credential ??= createAzureCredential({ kind: process.env.SIGNET_AZURE_IDENTITY === 'managed' ? 'node' : 'operator' });
  return credential;
}

function keyFromRef(ref: string, signingKeyRef?: string): OrgKeyProvider {
  const versionless = (keyUrl: string) => keyUrl.replace(/\/+$/, '').replace(/(\/keys\/[^/]+)\/[^/]+$/, '$1').toLowerCase();
  if (signingKeyRef && isAzureKeyRef(ref) && versionless(signingKeyRef) !== versionless(signingKeyRefFor(ref))) {
    process.stderr.write(`warning: nodes accept only bundles signed by ${signingKeyRefFor(ref)}; a bundle signed by ${signingKeyRef} will be refused by them\n`);
  }
  return keyProviderFromRef(ref, { credential: cliCredential, signingKeyRef });
}

function defaultAuthor(): string {
  if (process.env.SIGNET_AUTHOR) return process.env.SIGNET_AUTHOR;
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    // no passwd entry (containers): keep "unknown"
  }
  return `${user}@${os.hostname()}`;
}

/**
 * A header string as one inert line: `inspect` reads bundles of any origin, and
 * a header field with control characters (escape sequences, CR, bidi
 * overrides) could redraw the operator's terminal, e.g. fake a signature line.
 */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function describeHeader(header: BundleHeader, file: string): string {
  const p = printable;
  return [
    `bundle       ${file}`,
    `format       ${header.format}`,
    `organization ${p(header.orgId)}`,
    `version      ${header.version}`,
    `created      ${p(header.createdAt)}`,
    `author       ${p(header.author)}`,
    `content      ${header.contentHash} (${header.files} files, ${header.size} bytes packed)`,
    `key          ${p(header.key.ref)} (${p(header.key.alg)})`,
    `signature    ${header.signature ? `${p(header.signature.kid)} (${p(header.signature.alg)})` : 'none'}`,
    '',
  ].join('\n');
}

/** A bundle file or an organization folder, as a files map (for diff). */
async function openEither(location: string, key: () => OrgKeyProvider): Promise<{ files: Map<string, Buffer>; label: string }> {
  if ((await stat(location)).isDirectory()) return { files: await readOrgFolder(location), label: location };
  const bytes = await readFile(location);
  const { header, files } = await unseal(bytes, key());
  return { files, label: `${location} (${header.orgId} version ${header.version})` };
}

function parseVersion(value: string): number {
  if (!/^[1-9][0-9]{0,15}$/.test(value) || !Number.isSafeInteger(Number(value))) throw new Error(`--version: a positive integer, got ${value}`);
  return Number(value);
}

export function register(program: Command): void {
  // `seal --version N` must reach the subcommand, not print the program version:
  // root options (only --version/--help) are then recognised before a subcommand only.
  program.enablePositionalOptions();
  const config = configCommand(program);

  config
    .command('seal')
    .description('validate an organization folder and seal it into one encrypted bundle')
    .argument('<dir>', 'organization folder')
    .requiredOption('--key <ref>', 'organization key: file:PATH or https://<vault>.vault.azure.net/keys/<name>')
    .requiredOption('--out <file>', 'bundle file to write')
    .option('--version <n>', 'bundle version, a positive integer that only goes up (default: UTC time as YYYYMMDDhhmmss)', parseVersion)
    .option('--author <name>', 'who seals it (default: SIGNET_AUTHOR or user@host)')
    .option('--signing-key <ref>', 'Key Vault key that signs the bundle (default: <key name>-signing in the key\'s vault, the only one nodes accept)')
    .action(async (dir: string, options: { key: string; out: string; version?: number; author?: string; signingKey?: string }) => {
      const files = await readOrgFolder(dir).catch((error: unknown) => {
        if (error instanceof ConfigError) return error;
        throw error;
      });
      let org;
      let problems: ConfigError | undefined = files instanceof ConfigError ? files : undefined;
      if (!problems) {
        try {
          org = loadOrgFromFiles(files as Map<string, Buffer>, { version: 'local', label: dir });
        } catch (error) {
          if (!(error instanceof ConfigError)) throw error;
          problems = error;
        }
      }
      // a bundle every node would refuse at its trial render is not sealed either
      if (!problems && org) {
        const rendering = templateProblems(org);
        if (rendering.length > 0) problems = new ConfigError(rendering, dir);
      }
      if (problems) {
        process.stdout.write(`${problems.issues.map((issue) => formatIssue(issue, path.join(dir, issue.file))).join('\n')}\nnot sealed: ${problems.issues.length} problem(s) in ${dir}\n`);
        process.exitCode = 1;
        return;
      }
      const bundle = await seal(files as Map<string, Buffer>, {
        orgId: org!.orgId,
        version: options.version ?? defaultBundleVersion(),
        author: options.author ?? defaultAuthor(),
        keyProvider: keyFromRef(options.key, options.signingKey),
      });
      await writeFileAtomic(options.out, bundle);
      process.stdout.write(describeHeader(inspect(bundle), options.out));
    });

  config
    .command('inspect')
    .description('show a bundle\'s metadata (organization, version, author, content hash, key) without decrypting it')
    .argument('<file>', 'bundle file')
    .option('--json', 'print the header as JSON')
    .action(async (file: string, options: { json?: boolean }) => {
      const header = inspect(await readFile(file));
      const summary = { ...header, key: { ref: header.key.ref, alg: header.key.alg }, ...(header.signature ? { signature: { kid: header.signature.kid, alg: header.signature.alg } } : {}) };
      process.stdout.write(options.json ? `${JSON.stringify(summary, null, 2)}\n` : describeHeader(header, file));
    });

  config
    .command('unseal')
    .description('decrypt a bundle into a folder (operators with access to the key)')
    .argument('<file>', 'bundle file')
    .requiredOption('--key <ref>', 'organization key reference')
    .requiredOption('--out <dir>', 'folder to create (must not exist or be empty)')
    .option('--org <id>', 'refuse unless the bundle is for this organization')
    .action(async (file: string, options: { key: string; out: string; org?: string }) => {
      const existing = await readdir(options.out).catch(() => []);
      if (existing.length > 0) throw new Error(`${options.out} is not empty; unseal into a new folder`);
      const { header, files } = await unseal(await readFile(file), keyFromRef(options.key), { expectOrgId: options.org });
      await writeUnsealedFolder(options.out, files);
      process.stdout.write(`unsealed ${header.orgId} version ${header.version}: ${files.size} files into ${options.out}\n`);
    });

  config
    .command('reseal')
    .description('move a bundle to the key\'s current version (after a rotation): same version and content, under a fresh data key')
    .argument('<file>', 'bundle file (rewritten in place unless --out)')
    .requiredOption('--key <ref>', 'organization key to wrap under (its current version)')
    .option('--from <ref>', 'the key that opens it now, when it is another key (e.g. a replaced key file)')
    .option('--out <file>', 'write here instead of in place')
    .option('--signing-key <ref>', 'Key Vault key that signs the resealed bundle (default: <key name>-signing in the key\'s vault, the only one nodes accept)')
    .action(async (file: string, options: { key: string; from?: string; out?: string; signingKey?: string }) => {
      const before = await readFile(file);
      const after = await reseal(before, keyFromRef(options.key, options.signingKey), options.from ? { from: keyFromRef(options.from) } : {});
      const out = options.out ?? file;
      await writeFileAtomic(out, after);
      process.stdout.write(`resealed ${inspect(after).orgId} version ${inspect(after).version}: ${inspect(before).key.ref} → ${inspect(after).key.ref}\n`);
    });

  config
    .command('diff')
    .description('what changed between two configurations (bundles or folders): files added, removed, changed, with a unified diff')
    .argument('<old>', 'bundle file or organization folder')
    .argument('<new>', 'bundle file or organization folder')
    .option('--key <ref>', 'organization key (needed for bundles)')
    .action(async (oldPath: string, newPath: string, options: { key?: string }) => {
      const key = () => {
        if (!options.key) throw new Error('--key is needed to open a bundle');
        return keyFromRef(options.key);
      };
      const [a, b] = [await openEither(oldPath, key), await openEither(newPath, key)];
      process.stdout.write(`--- ${a.label}\n+++ ${b.label}\n${formatDiff(diffFiles(a.files, b.files))}`);
    });

  config
    .command('publish')
    .description('put a sealed bundle where the nodes poll for it: a file path or an Azure Blob Storage URL')
    .argument('<file>', 'bundle file')
    .requiredOption('--to <location>', 'a path, or https://<account>.blob.core.windows.net/<container>/<blob>')
    .option('--force', 'replace even a newer version or another organization\'s bundle')
    .action(async (file: string, options: { to: string; force?: boolean }) => {
      const result = await publishBundle(await readFile(file), options.to, { blob: () => ({ credential: cliCredential() }), force: options.force });
      const replaced = result.replaced !== undefined ? ` (replacing version ${result.replaced})` : '';
      process.stdout.write(`published ${printable(result.header.orgId)} version ${result.header.version} to ${result.location}${replaced}\n`);
    });

  const keys = program.commands.find((command) => command.name() === 'keys') ?? program.command('keys').description('organization keys');
  keys
    .command('create-local')
    .description('create a local organization key file (32 random bytes, mode 0600) for development and tests')
    .argument('<file>', 'key file to create (refuses to overwrite)')
    .action(async (file: string) => {
      const { version } = await createLocalKeyFile(file);
      process.stdout.write(`created ${file} (key version ${version}); use --key file:${file}\n`);
    });
}
