// `signet status`: one line per node of a tenant: ready (and why not),
// config version, earliest certificate expiry, and messages, tempfails and
// downstream errors over an interval. Exits 1 if any node is not ready.
import type { Command } from 'commander';
import { collectStatus, formatStatusTable, loadStackOutputs, nodeHealthUrl, normalizeNodeUrl, type NodeTarget } from '../../fleet';

interface StatusOptions {
  stackOutputs?: string;
  node: string[];
  interval: string;
  via: string;
  json?: boolean;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function register(program: Command): void {
  program
    .command('status')
    .description("status of a tenant's nodes from their /readyz and /metrics; exits 1 if any node is not ready")
    .option('--stack-outputs <file>', 'output of `pulumi stack output --json` (nodes and their health URLs)')
    .option('--via <address>', "with --stack-outputs: reach nodes by their private address (private) or public name (fqdn)", 'private')
    .option('--node <url>', "a node's HTTP base URL, e.g. http://node-1:8080; repeat for several", collect, [])
    .option('--interval <seconds>', 'seconds between the two /metrics scrapes', '10')
    .option('--json', 'print JSON instead of a table')
    .action(async (options: StatusOptions) => {
      const interval = Number(options.interval);
      if (!Number.isFinite(interval) || interval < 0 || interval > 3600) throw new Error(`--interval: ${options.interval} is not a number of seconds between 0 and 3600`);
      const targets: NodeTarget[] = [];
      if (options.stackOutputs) {
        if (options.via !== 'private' && options.via !== 'fqdn') throw new Error(`--via: ${options.via} is not private or fqdn`);
        const outputs = loadStackOutputs(options.stackOutputs);
        for (const node of outputs.nodes) targets.push({ name: node.name, url: normalizeNodeUrl(nodeHealthUrl(outputs, node, options.via)) });
      }
      for (const url of options.node) {
        const normalized = normalizeNodeUrl(url);
        targets.push({ name: new URL(normalized).host, url: normalized });
      }
      if (!targets.length) throw new Error('name the nodes: --stack-outputs FILE or --node URL (repeatable)');
      const statuses = await collectStatus(targets, { intervalSeconds: interval });
      process.stdout.write(options.json ? `${JSON.stringify(statuses, null, 2)}\n` : formatStatusTable(statuses, interval));
      if (statuses.some((s) => !s.ready)) process.exitCode = 1;
    });
}
