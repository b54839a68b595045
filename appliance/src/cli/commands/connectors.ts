// `signet connectors script|pause|resume|remove`: the Exchange Online
// PowerShell that connects a tenant to its Signet relay, generated from the
// stack outputs. Writes the script (stdout by default); never talks to Exchange.
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { connectorsScript, parseMessageTypes, parseScope, pauseScript, removeScript, resumeScript } from '../../exchange';
import { loadStackOutputs, type StackOutputs } from '../../fleet';

interface CommonOptions {
  stackOutputs: string;
  out?: string;
}

interface ScriptOptions extends CommonOptions {
  scope: string;
  internal?: boolean;
  routeMessageTypes?: string;
  disabled?: boolean;
}

function emit(text: string, out: string | undefined): void {
  if (out) {
    writeFileSync(out, text, { encoding: 'utf8', mode: 0o644 });
    process.stderr.write(`signet: wrote ${out}\n`);
  } else {
    process.stdout.write(text);
  }
}

export function register(program: Command): void {
  const connectors = program
    .command('connectors')
    .description('Exchange Online PowerShell for the connectors and transport rules of a tenant (from its stack outputs)');

  connectors
    .command('script')
    .description('create or update the outbound connector, inbound connector and transport rules (idempotent, supports -WhatIf)')
    .requiredOption('--stack-outputs <file>', 'output of `pulumi stack output --json` for the tenant')
    .option('--scope <scope>', 'senders: all | groups:NAME[,NAME…] | users:ADDRESS[,ADDRESS…]', 'all')
    .option('--internal', 'also sign mail whose recipients are all inside the organization')
    .option('--route-message-types <types>', 'message types to send to Signet anyway, e.g. OOF (default: none)')
    .option('--disabled', 'create the routing rule disabled (start later with `connectors resume`)')
    .option('--out <file>', 'write the script to a file (default: stdout)')
    .action((options: ScriptOptions) => {
      const outputs = loadStackOutputs(options.stackOutputs);
      const script = connectorsScript(outputs, {
        scope: parseScope(options.scope),
        internal: options.internal === true,
        routeMessageTypes: options.routeMessageTypes ? parseMessageTypes(options.routeMessageTypes) : [],
        disabled: options.disabled === true,
      });
      emit(script, options.out);
    });

  const simple: Array<[name: string, description: string, make: (outputs: StackOutputs) => string]> = [
    ['pause', 'disable the Signet transport rules: mail is delivered without signatures, connectors stay', pauseScript],
    ['resume', 'enable the Signet transport rules again', resumeScript],
    ['remove', 'remove the Signet transport rules, then both connectors', removeScript],
  ];
  for (const [name, description, make] of simple) {
    connectors
      .command(name)
      .description(description)
      .requiredOption('--stack-outputs <file>', 'output of `pulumi stack output --json` for the tenant')
      .option('--out <file>', 'write the script to a file (default: stdout)')
      .action((options: CommonOptions) => emit(make(loadStackOutputs(options.stackOutputs)), options.out));
  }
}
