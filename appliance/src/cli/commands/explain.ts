// `signet explain`: which rule, template and add-ons a message would get, and
// why every other rule did not match, from the org folder and its directory
// file alone (no message file). What only a message can tell (S/MIME, calendar,
// auto-reply, an earlier stamp) is listed as such; `signet sign --explain`
// answers with a real message.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { DIRECTORY_FILE, loadOrgFolder, parseInstant, type OrgConfig } from '../../config';
import { applyUserOverrides, loadDirectoryFile, type DirectorySnapshot, type DirectoryUser } from '../../directory';
import type { MessageKind } from '../../mime';
import { compileRules, domainOf, normalizeAddress, type Selection } from '../../rules';

export interface ExplainInput {
  from: string;
  to: string[];
  subject: string;
  body: string;
  kind: MessageKind;
  now: Date;
}

export interface Explanation {
  org: string;
  configVersion: string;
  /** inDirectory: found in the directory; overridesOnly: not there, but listed in users.yaml (signed with those attributes alone). */
  sender: { address: string; inDirectory: boolean; overridesOnly: boolean; displayName?: string; groups: string[] };
  recipients: Array<{ address: string; external: boolean }>;
  kind: MessageKind;
  at: string;
  /** What the engine would do. */
  outcome: 'sign' | 'pass';
  passReason?: 'no-rule' | 'no-signature' | 'unknown-sender' | 'sender-domain';
  templateId?: string;
  templateRule?: string;
  level?: string;
  addons: string[];
  /** Signature skipped when this org's signature is already in the quoted thread (replies). */
  skipIfInThread: boolean;
  rules: Selection['trace'];
  notEvaluated: string[];
}

const NOT_EVALUATED = [
  'an X-Signet-Processed stamp of this organization (already processed: passed unchanged)',
  'S/MIME or PGP signature or encryption, delivery reports and read receipts, TNEF (passed unchanged)',
  'calendar invitations and answers (per options.calendar), automatic replies (per options.signAutoReplies)',
  "the sender's typed placeholder, a mail app's sign-off (per options.replaceSignOffs) and where the quoted thread starts (placement)",
  'body parts whose Content-Type, Content-Transfer-Encoding or Content-Disposition is given twice with different values (ambiguous-part: passed unchanged)',
];

export function explainMessage(org: OrgConfig, directory: DirectorySnapshot | undefined, input: ExplainInput): Explanation {
  const sender = normalizeAddress(input.from);
  const withOverrides = directory ? applyUserOverrides(directory, org.userAttributes) : undefined;
  let user: DirectoryUser | undefined = withOverrides?.lookup(sender);
  const inDirectory = user !== undefined;
  // Overrides for someone the directory does not know still make them a known sender (as in the engine).
  const overrides = org.userAttributes.get(sender);
  if (!user && overrides) user = { mail: sender, aliases: [], attributes: { ...overrides }, groups: [] };
  const accepted = new Set(org.acceptedDomains.map((d) => d.toLowerCase()));
  const recipients = input.to.map((r) => normalizeAddress(r));
  const selection = compileRules(org).select({ sender, user, recipients, subject: input.subject, body: input.body, kind: input.kind, now: input.now });

  let outcome: Explanation['outcome'] = 'sign';
  let passReason: Explanation['passReason'];
  let templateId = selection.noSignature ? undefined : selection.templateId;
  if (!accepted.has(domainOf(sender))) {
    // the transport rule routes only these senders, and the relay refuses any other at MAIL FROM
    outcome = 'pass';
    passReason = 'sender-domain';
    templateId = undefined;
  } else if (selection.matchedRules.length === 0) {
    outcome = 'pass';
    passReason = 'no-rule';
  } else {
    if (templateId && !user) {
      templateId = undefined;
      passReason = 'unknown-sender';
    }
    if (!templateId && selection.addons.length === 0) {
      outcome = 'pass';
      passReason ??= 'no-signature';
    }
  }
  return {
    org: org.orgId,
    configVersion: org.version,
    sender: { address: sender, inDirectory, overridesOnly: !inDirectory && user !== undefined, displayName: user?.attributes.displayName, groups: user?.groups ?? [] },
    recipients: recipients.map((address) => ({ address, external: !accepted.has(domainOf(address)) })),
    kind: input.kind,
    at: input.now.toISOString(),
    outcome,
    passReason,
    templateId,
    templateRule: templateId ? selection.templateRule : undefined,
    level: templateId ? selection.level : undefined,
    addons: outcome === 'sign' ? selection.addons : [],
    skipIfInThread: selection.skipIfInThread,
    rules: selection.trace,
    notEvaluated: NOT_EVALUATED,
  };
}

const PASS_TEXT: Record<NonNullable<Explanation['passReason']>, string> = {
  'no-rule': 'no rule matches: relayed unchanged (stamped, reason no-rule)',
  'no-signature': 'the winning rule says noSignature and no add-on applies: relayed unchanged (stamped, reason no-signature)',
  'unknown-sender': 'the sender is not in the directory, so no signature (add-ons only)',
  'sender-domain': "the sender's domain is not one of the organization's accepted domains: Exchange Online's transport rule does not send such mail to Signet, and the relay would refuse it (550 5.7.1)",
};

export function formatExplanation(e: Explanation): string {
  const out: string[] = [];
  const to = e.recipients.map((r) => `${r.address} (${r.external ? 'external' : 'internal'})`).join(', ');
  out.push(`Organization ${e.org}, config ${e.configVersion}; a ${e.kind} message at ${e.at}`);
  const known = e.sender.inDirectory
    ? `in the directory${e.sender.displayName ? ` as ${e.sender.displayName}` : ''}${e.sender.groups.length ? `, groups ${e.sender.groups.join(', ')}` : ''}`
    : e.sender.overridesOnly
      ? `NOT in the directory, but listed in users.yaml: signed with those attributes alone${e.sender.displayName ? ` (as ${e.sender.displayName})` : ' (no displayName there)'}`
      : 'NOT in the directory';
  out.push(`From ${e.sender.address}: ${known}`);
  out.push(`To ${to}`);
  out.push('');
  if (e.outcome === 'pass') {
    out.push(`Result: no signature: ${PASS_TEXT[e.passReason ?? 'no-signature']}`);
  } else {
    out.push(`Result: ${e.templateId ? `template ${e.templateId} (rule ${e.templateRule}, ${e.level} assignment)` : `no signature template${e.passReason ? ` (${PASS_TEXT[e.passReason]})` : ''}`}`);
    out.push(`        add-ons: ${e.addons.length ? e.addons.join(', ') : 'none'}`);
    if (e.templateId && e.skipIfInThread && e.kind !== 'new') out.push("        (left out of a reply whose quoted thread already holds this organization's signature)");
  }
  out.push('');
  out.push('Rules, in order:');
  for (const rule of e.rules) {
    out.push(`  ${rule.matched ? 'MATCH' : 'no   '}  ${rule.ruleId}${rule.level ? ` (${rule.level})` : ''}`);
    for (const reason of rule.reasons) out.push(`           - ${reason}`);
  }
  out.push('');
  out.push('Not evaluated without a message (use `signet sign --explain --in MESSAGE` for these):');
  for (const item of e.notEvaluated) out.push(`  - ${item}`);
  return `${out.join('\n')}\n`;
}

interface ExplainOptions {
  org: string;
  directory?: string;
  from: string;
  to?: string[];
  subject: string;
  body: string;
  kind: string;
  date?: string;
  json?: boolean;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];
const ADDRESS = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

export function register(program: Command): void {
  program
    .command('explain')
    .description('which rule, template and add-ons a message would get, and why the other rules did not match (no message file needed)')
    .requiredOption('--org <dir>', 'organization config folder')
    .requiredOption('--from <address>', 'sender address')
    .option('--to <address>', 'recipient (at least one); repeat for several', collect)
    .option('--subject <text>', 'subject', '')
    .option('--body <text>', 'text of the new part of the body (for bodyContains rules)', '')
    .option('--kind <kind>', 'new, reply or forward', 'new')
    .option('--date <iso>', 'evaluate date windows at this time instead of now')
    .option('--directory <file>', `directory file (default: ${DIRECTORY_FILE} in the org folder)`)
    .option('--json', 'print the explanation as JSON')
    .action(async (options: ExplainOptions) => {
      if (!ADDRESS.test(options.from)) throw new Error(`--from: not an email address: ${options.from}`);
      if (!options.to?.length) throw new Error('--to: give at least one recipient');
      for (const to of options.to) if (!ADDRESS.test(to)) throw new Error(`--to: not an email address: ${to}`);
      if (!['new', 'reply', 'forward'].includes(options.kind)) throw new Error(`--kind: ${options.kind} is not new, reply or forward`);
      // read as the rules read their dates: without Z or an offset, UTC (not this machine's time zone)
      const at = options.date === undefined ? Date.now() : parseInstant(options.date);
      if (at === undefined) throw new Error(`--date: not an ISO 8601 date: ${options.date} (YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS], UTC unless it ends in Z or an offset)`);
      const now = new Date(at);
      const org = await loadOrgFolder(options.org);
      const directoryFile = options.directory ?? join(options.org, DIRECTORY_FILE);
      if (options.directory && !existsSync(directoryFile)) throw new Error(`--directory: no such file: ${options.directory}`);
      const directory = existsSync(directoryFile) ? await loadDirectoryFile(directoryFile) : undefined;
      const explanation = explainMessage(org, directory, {
        from: options.from,
        to: options.to,
        subject: options.subject,
        body: options.body,
        kind: options.kind as MessageKind,
        now,
      });
      process.stdout.write(options.json ? `${JSON.stringify(explanation, null, 2)}\n` : formatExplanation(explanation));
    });
}
