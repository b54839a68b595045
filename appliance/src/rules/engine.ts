// Rule evaluation: which rules match a message, which signature assignment
// wins, which add-ons stack. Everything that depends only on the org config
// (lower-cased sets, domain patterns, parsed dates, specificity levels) is
// computed once in compileRules; select() does only the per-message checks,
// cheapest first, and stops at a rule's first failing condition.
import type { AddonSource, OrgConfig, RuleMatch, RuleSource } from '../config';
import type { DirectoryUser } from '../directory';
import type { MessageKind } from '../mime';
import { asciiAddress, asciiDomain, DomainMatcher, domainOf, normalizeAddress } from './domains';

export interface RuleInput {
  /** Envelope sender (MAIL FROM). */
  sender: string;
  /** The sender's directory entry, when found. */
  user?: DirectoryUser;
  /** Envelope recipients (RCPT TO). */
  recipients: string[];
  subject: string;
  /** Text of the new part of the body; only read when a rule has `bodyContains` (see RuleSet.needsBody). */
  body: string;
  kind: MessageKind;
  now: Date;
}

export type AssignmentLevel = 'user' | 'group' | 'domain' | 'default';

export interface RuleTrace {
  ruleId: string;
  matched: boolean;
  /** Specificity of the rule's sender condition; set on matching rules. */
  level?: AssignmentLevel;
  /** Human-readable: what matched, or why not. May name addresses: for `explain`, never for logs. */
  reasons: string[];
}

export interface Selection {
  /** Ids of the matching rules, in rule order. */
  matchedRules: string[];
  /** The signature template to render; absent when no rule assigns one or the winner says noSignature. */
  templateId?: string;
  /** The rule whose assignment won. */
  templateRule?: string;
  level?: AssignmentLevel;
  /** Add-ons of every matching rule, in rule order, without duplicates, outside-window ones dropped. */
  addons: string[];
  skipIfInThread: boolean;
  noSignature: boolean;
  /** One entry per rule, in rule order. */
  trace: RuleTrace[];
}

export interface RuleSet {
  select(input: RuleInput): Selection;
  /** The config version these rules were compiled from. */
  readonly version: string;
  /** Whether any rule looks at the body (callers may skip extracting body text otherwise). */
  readonly needsBody: boolean;
}

const LEVEL_RANK: Record<AssignmentLevel, number> = { user: 3, group: 2, domain: 1, default: 0 };

/** Result of one condition: holds or not, and the sentence saying why. */
type Outcome = [ok: boolean, reason: string];
type Check = (m: MessageView) => Outcome;

/** Per-message facts, each derived at most once and only when a rule asks for it. */
class MessageView {
  readonly sender: string;
  readonly senderDomain: string;
  readonly nowMs: number;
  private identitiesCache?: string[];
  private recipientDomainsCache?: string[];
  private externalDomainsCache?: string[];
  private subjectCache?: string;
  private bodyCache?: string;

  constructor(
    readonly input: RuleInput,
    private readonly accepted: ReadonlySet<string>,
    private readonly groupCache: WeakMap<DirectoryUser, Map<string, string>>,
  ) {
    this.sender = normalizeAddress(input.sender);
    this.senderDomain = domainOf(this.sender);
    this.nowMs = input.now.getTime();
  }

  /** The sender's address, then the directory user's primary address and aliases, lower-case with ASCII domains, unique. */
  get identities(): string[] {
    if (!this.identitiesCache) {
      // Rules write domains in their xn-- form; an SMTPUTF8 sender may write them in Unicode.
      const all = new Set<string>([asciiAddress(this.sender)]);
      const user = this.input.user;
      if (user) {
        all.add(asciiAddress(user.mail));
        for (const alias of user.aliases) all.add(asciiAddress(alias.replace(/^smtp:/i, '')));
      }
      this.identitiesCache = [...all];
    }
    return this.identitiesCache;
  }

  /** lower-case group id/name → as written in the directory. Cached per directory user object. */
  get groups(): Map<string, string> | undefined {
    const user = this.input.user;
    if (!user) return undefined;
    let groups = this.groupCache.get(user);
    if (!groups) {
      groups = new Map(user.groups.map((g) => [g.trim().toLowerCase(), g]));
      this.groupCache.set(user, groups);
    }
    return groups;
  }

  get recipientDomains(): string[] {
    this.recipientDomainsCache ??= [...new Set(this.input.recipients.map((r) => domainOf(normalizeAddress(r))))];
    return this.recipientDomainsCache;
  }

  /** Recipient domains that are not accepted domains of the organization ('' for an address without domain). */
  get externalDomains(): string[] {
    this.externalDomainsCache ??= this.recipientDomains.filter((d) => !this.accepted.has(d));
    return this.externalDomainsCache;
  }

  get subject(): string {
    this.subjectCache ??= foldText(this.input.subject);
    return this.subjectCache;
  }

  get body(): string {
    this.bodyCache ??= foldText(this.input.body);
    return this.bodyCache;
  }
}

// Invisible characters that split a word without showing: soft hyphen, zero-width space and joiners, word joiner, BOM.
const INVISIBLE = /[\u00AD\u200B-\u200D\u2060\uFEFF]/g;
// White space other than one plain space (replacing every single space would cost a match each).
const OTHER_WHITE_SPACE = /\s{2,}|[^\S ]/g;

/**
 * Text as keyword conditions compare it: one Unicode form (NFKC: a composed
 * "é" and "e" + combining accent are the same, as are full-width letters and
 * their ASCII twins), lower case, invisible characters dropped and every run
 * of white space (line breaks of a wrapped text part, no-break spaces) one
 * space, so a phrase matches however the sender's client laid it out.
 */
export function foldText(text: string): string {
  // NFKC before lower case: it maps some letters (mathematical bold 𝐁, ℌ) to upper-case ones.
  // eslint-disable-next-line no-control-regex
  const normal = !/[^\x00-\x7f]/.test(text) ? text.toLowerCase() : text.normalize('NFKC').toLowerCase().replace(INVISIBLE, '');
  return normal.replace(OTHER_WHITE_SPACE, ' ');
}

/** `[a, b, c]`, at most `max` items then `… and N more`. */
function list(items: readonly string[], max = 6): string {
  const shown = items.slice(0, max).join(', ');
  return items.length > max ? `[${shown}, … and ${items.length - max} more]` : `[${shown}]`;
}

function quoted(items: readonly string[]): string[] {
  return items.map((s) => JSON.stringify(s));
}

const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * Parses an ISO 8601 date or date-time. A date alone means midnight UTC, and a
 * date-time without offset is read as UTC too, so a window means the same
 * thing on every node whatever its local time zone.
 */
export function parseInstant(value: string, where: string): number {
  const text = value.trim();
  const m = ISO_8601.exec(text);
  let ms = Number.NaN;
  if (m) {
    const hasTime = /[T ]/i.test(text);
    ms = Date.parse(hasTime && !m[1] ? `${text.replace(' ', 'T')}Z` : text.replace(' ', 'T'));
  }
  if (Number.isNaN(ms)) throw new Error(`${where}: "${value}" is not an ISO 8601 date (e.g. 2026-03-01 or 2026-03-01T08:00:00Z)`);
  return ms;
}

/** The window check shared by rules and add-ons: from inclusive, until exclusive. */
function windowCheck(from: number | undefined, until: number | undefined, fromText: string, untilText: string): Check {
  const shown = `[${fromText || '…'}, ${untilText || '…'})`;
  return (m) => {
    const now = new Date(m.nowMs).toISOString();
    if (from !== undefined && m.nowMs < from) return [false, `date window: no, ${now} is before the start ${fromText}`];
    if (until !== undefined && m.nowMs >= until) return [false, `date window: no, ${now} is not before the end ${untilText}`];
    return [true, `date window: yes, ${now} is within ${shown}`];
  };
}

/** Compiles one RuleMatch into its checks, cheapest first. `where` names it in errors. */
function compileMatch(match: RuleMatch, acceptedList: string, where: string): Check[] {
  const checks: Check[] = [];

  if (match.kinds?.length) {
    const kinds = new Set(match.kinds);
    const shown = list(match.kinds);
    checks.push((m) =>
      kinds.has(m.input.kind) ? [true, `kind: yes, ${m.input.kind} is one of ${shown}`] : [false, `kind: no, ${m.input.kind} is not one of ${shown}`],
    );
  }

  if (match.from !== undefined || match.until !== undefined) {
    const from = match.from !== undefined ? parseInstant(match.from, `${where}.from`) : undefined;
    const until = match.until !== undefined ? parseInstant(match.until, `${where}.until`) : undefined;
    if (from !== undefined && until !== undefined && until <= from) {
      throw new Error(`${where}: until ${match.until} is not after from ${match.from}`);
    }
    checks.push(windowCheck(from, until, match.from ?? '', match.until ?? ''));
  }

  if (match.senders?.length) {
    const senders = new Set(match.senders.map(asciiAddress));
    const shown = list([...senders]);
    checks.push((m) => {
      const hit = m.identities.find((a) => senders.has(a));
      if (hit === undefined) {
        const others = m.identities.length - 1;
        const extra = others === 1 ? ' (nor its other directory address)' : others > 1 ? ` (nor any of its ${others} other directory addresses)` : '';
        return [false, `senders: no, ${m.sender}${extra} is not among ${shown}`];
      }
      return [true, hit === m.identities[0] ? `senders: yes, ${hit} is listed` : `senders: yes, ${hit} (directory address of ${m.sender}) is listed`];
    });
  }

  if (match.senderDomains?.length) {
    const domains = new DomainMatcher(match.senderDomains);
    const shown = list(domains.patterns);
    checks.push((m) => {
      const hit = domains.match(m.senderDomain);
      return hit
        ? [true, `sender domain: yes, ${m.senderDomain || '(none)'} matches ${hit}`]
        : [false, `sender domain: no, ${m.senderDomain || '(none)'} is not among ${shown}`];
    });
  }

  if (match.groups?.length) {
    const groups = new Set(match.groups.map((g) => g.trim().toLowerCase()));
    const shown = list(match.groups);
    checks.push((m) => {
      const userGroups = m.groups;
      if (!userGroups) return [false, `groups: no, sender ${m.sender} is not in the directory, so belongs to none of ${shown}`];
      for (const g of groups) {
        const name = userGroups.get(g);
        if (name !== undefined) return [true, `groups: yes, sender is a member of ${name}`];
      }
      return [false, `groups: no, sender is a member of none of ${shown}`];
    });
  }

  if (match.direction === 'internal') {
    checks.push((m) => {
      const ext = m.externalDomains;
      if (ext.length === 0) {
        return [true, m.recipientDomains.length ? `direction internal: yes, every recipient is in an accepted domain ${acceptedList}` : 'direction internal: yes, there are no recipients outside the organization (no recipients)'];
      }
      return [false, `direction internal: no, recipient domain ${ext[0] || '(none)'} is not an accepted domain ${acceptedList}`];
    });
  } else if (match.direction === 'external') {
    checks.push((m) => {
      const ext = m.externalDomains;
      if (ext.length > 0) return [true, `direction external: yes, recipient domain ${ext[0] || '(none)'} is outside the accepted domains ${acceptedList}`];
      return [false, m.recipientDomains.length ? `direction external: no, every recipient is in an accepted domain ${acceptedList}` : 'direction external: no, there are no recipients'];
    });
  }

  if (match.recipientDomains?.length) {
    const domains = new DomainMatcher(match.recipientDomains);
    const shown = list(domains.patterns);
    checks.push((m) => {
      for (const d of m.recipientDomains) {
        const hit = domains.match(d);
        if (hit) return [true, `recipient domains: yes, ${d} matches ${hit}`];
      }
      return [false, `recipient domains: no, none of the recipients' domains ${list(m.recipientDomains)} is among ${shown}`];
    });
  }

  if (match.subjectContains?.length) {
    const words = match.subjectContains.map((w) => [foldText(w), w] as const).filter(([w]) => w.length > 0);
    const shown = list(quoted(match.subjectContains));
    checks.push((m) => {
      const hit = words.find(([w]) => m.subject.includes(w));
      return hit !== undefined ? [true, `subject: yes, contains ${JSON.stringify(hit[1])}`] : [false, `subject: no, contains none of ${shown}`];
    });
  }

  if (match.bodyContains?.length) {
    const words = match.bodyContains.map((w) => [foldText(w), w] as const).filter(([w]) => w.length > 0);
    const shown = list(quoted(match.bodyContains));
    checks.push((m) => {
      const hit = words.find(([w]) => m.body.includes(w));
      return hit !== undefined ? [true, `body: yes, contains ${JSON.stringify(hit[1])}`] : [false, `body: no, contains none of ${shown}`];
    });
  }

  return checks;
}

/** Runs the checks in order, recording each outcome, up to the first that fails. */
function runChecks(checks: readonly Check[], m: MessageView, reasons: string[], prefix = ''): boolean {
  for (const check of checks) {
    const [ok, reason] = check(m);
    reasons.push(prefix + reason);
    if (!ok) return false;
  }
  return true;
}

interface CompiledAddon {
  source: AddonSource;
  window?: Check;
}

interface CompiledRule {
  source: RuleSource;
  checks: Check[];
  excepts: Check[][];
  level: AssignmentLevel;
  addons: CompiledAddon[];
}

/** The specificity of a rule's sender condition: the most specific one present. */
function levelOf(match: RuleMatch): AssignmentLevel {
  if (match.senders?.length) return 'user';
  if (match.groups?.length) return 'group';
  if (match.senderDomains?.length) return 'domain';
  return 'default';
}

class CompiledRuleSet implements RuleSet {
  readonly version: string;
  readonly needsBody: boolean;
  private readonly rules: CompiledRule[];
  private readonly accepted: ReadonlySet<string>;
  // Lower-cased groups per directory user, computed on first use and dropped with the snapshot.
  private readonly groupCache = new WeakMap<DirectoryUser, Map<string, string>>();

  constructor(org: OrgConfig) {
    this.version = org.version;
    this.accepted = new Set(org.acceptedDomains.map(asciiDomain));
    const acceptedList = list([...this.accepted]);
    const addons = new Map<string, CompiledAddon>();
    for (const [id, source] of org.addons) {
      const where = `add-on "${id}" (${source.file})`;
      const from = source.from !== undefined ? parseInstant(source.from, `${where} from`) : undefined;
      const until = source.until !== undefined ? parseInstant(source.until, `${where} until`) : undefined;
      addons.set(id, {
        source,
        window: from !== undefined || until !== undefined ? windowCheck(from, until, source.from ?? '', source.until ?? '') : undefined,
      });
    }

    const seen = new Set<string>();
    let needsBody = false;
    this.rules = org.rules.map((rule, index) => {
      const where = `rule "${rule.id}" (rules[${index}])`;
      if (seen.has(rule.id)) throw new Error(`${where}: duplicate rule id`);
      seen.add(rule.id);
      for (const [field, id] of [['template', rule.template], ['replyTemplate', rule.replyTemplate]] as const) {
        if (id !== undefined && !org.templates.has(id)) {
          throw new Error(`${where}: ${field} "${id}" is not defined; templates: ${list([...org.templates.keys()], 20)}`);
        }
      }
      const ruleAddons = (rule.addons ?? []).map((id) => {
        const addon = addons.get(id);
        if (!addon) throw new Error(`${where}: add-on "${id}" is not defined; add-ons: ${list([...org.addons.keys()], 20)}`);
        return addon;
      });
      if (rule.match.bodyContains?.length || rule.except?.some((e) => e.bodyContains?.length)) needsBody = true;
      return {
        source: rule,
        checks: compileMatch(rule.match, acceptedList, `${where}.match`),
        excepts: (rule.except ?? []).map((e, i) => compileMatch(e, acceptedList, `${where}.except[${i}]`)),
        level: levelOf(rule.match),
        addons: ruleAddons,
      };
    });
    this.needsBody = needsBody;
  }

  select(input: RuleInput): Selection {
    const view = new MessageView(input, this.accepted, this.groupCache);
    const trace: RuleTrace[] = [];
    const matched: Array<{ rule: CompiledRule; entry: RuleTrace }> = [];
    let stoppedBy: string | undefined;

    for (const rule of this.rules) {
      const id = rule.source.id;
      if (stoppedBy !== undefined) {
        trace.push({ ruleId: id, matched: false, reasons: [`not evaluated: rule ${stoppedBy} stopped`] });
        continue;
      }
      if (!rule.source.enabled) {
        trace.push({ ruleId: id, matched: false, reasons: ['disabled'] });
        continue;
      }
      const reasons: string[] = [];
      if (rule.checks.length === 0) reasons.push('no conditions: matches every message');
      let ok = runChecks(rule.checks, view, reasons);
      if (ok) {
        for (let i = 0; i < rule.excepts.length; i++) {
          const exceptReasons: string[] = [];
          const hit = runChecks(rule.excepts[i], view, exceptReasons);
          if (hit) {
            reasons.push(`except #${i + 1} applies, so the rule does not match: ${exceptReasons.join('; ') || 'no conditions'}`);
            ok = false;
            break;
          }
          reasons.push(`except #${i + 1} does not apply: ${exceptReasons[exceptReasons.length - 1]}`);
        }
      }
      const entry: RuleTrace = { ruleId: id, matched: ok, reasons };
      trace.push(entry);
      if (!ok) continue;
      entry.level = rule.level;
      matched.push({ rule, entry });
      if (rule.source.stop) {
        stoppedBy = id;
        reasons.push('stop: later rules are not evaluated');
      }
    }

    // The signature assignment: most specific level wins, ties go to the earlier rule.
    const kind = input.kind;
    const assignmentOf = (r: RuleSource): string | undefined => (kind === 'new' ? r.template : (r.replyTemplate ?? r.template));
    let winner: CompiledRule | undefined;
    for (const { rule } of matched) {
      const assigns = assignmentOf(rule.source) !== undefined || rule.source.noSignature === true;
      if (assigns && (!winner || LEVEL_RANK[rule.level] > LEVEL_RANK[winner.level])) winner = rule;
    }
    for (const { rule, entry } of matched) {
      const src = rule.source;
      const template = assignmentOf(src);
      const what = src.noSignature ? 'no signature' : template !== undefined ? `template ${template}` : undefined;
      if (what === undefined) {
        if (src.replyTemplate !== undefined && kind === 'new') entry.reasons.push('assignment: none for a new message (only replyTemplate is set)');
        continue;
      }
      const variant = template !== undefined && kind !== 'new' && src.replyTemplate !== undefined ? ` (reply/forward variant)` : '';
      if (rule === winner) {
        entry.reasons.push(`assignment: ${what}${variant} at level ${rule.level}: chosen`);
      } else if (winner) {
        const why = LEVEL_RANK[winner.level] > LEVEL_RANK[rule.level]
          ? `outranked by rule ${winner.source.id} (level ${winner.level})`
          : `rule ${winner.source.id} at the same level comes first`;
        entry.reasons.push(`assignment: ${what}${variant} at level ${rule.level}: not used, ${why}`);
      }
    }

    // Add-ons of every matching rule stack in rule order.
    const addonIds: string[] = [];
    const added = new Map<string, string>();
    for (const { rule, entry } of matched) {
      for (const addon of rule.addons) {
        const id = addon.source.id;
        const by = added.get(id);
        if (by !== undefined) {
          entry.reasons.push(`add-on ${id}: already added by rule ${by}`);
          continue;
        }
        if (addon.window) {
          const [inside, why] = addon.window(view);
          if (!inside) {
            entry.reasons.push(`add-on ${id}: dropped, ${addon.source.kind} outside its window (${why.replace(/^date window: no, /, '')})`);
            continue;
          }
        }
        added.set(id, rule.source.id);
        addonIds.push(id);
        entry.reasons.push(`add-on ${id}: added (${addon.source.kind}, ${addon.source.position})`);
      }
    }

    const noSignature = winner?.source.noSignature === true;
    return {
      matchedRules: matched.map(({ rule }) => rule.source.id),
      templateId: winner && !noSignature ? assignmentOf(winner.source) : undefined,
      templateRule: winner?.source.id,
      level: winner?.level,
      addons: addonIds,
      skipIfInThread: winner?.source.skipIfInThread === true,
      noSignature,
      trace,
    };
  }
}

/** Compiles an organization's rules once per config version. Throws on unknown template/add-on ids, duplicate rule ids and bad dates. */
export function compileRules(org: OrgConfig): RuleSet {
  return new CompiledRuleSet(org);
}
