// Random rule sets against a plain reference model of the documented
// semantics: matching in order, stop, most specific assignment with ties to
// the earlier rule, add-ons stacked without duplicates.
import { expect } from 'chai';
import fc from 'fast-check';
import type { MessageKind, RuleMatch, RuleSource } from '../../appliance/src/config';
import { compileRules, type AssignmentLevel } from '../../appliance/src/rules';
import { addon, makeOrg, rule, template } from './helpers';

const SENDERS = ['a@contoso.com', 'b@contoso.com', 'c@fabrikam.example'];
const GROUPS = ['Sales', 'Legal'];
const DOMAINS = ['contoso.com', 'fabrikam.example'];
const TEMPLATES = ['t1', 't2', 't3'];
const ADDONS = ['x', 'y', 'z'];
const KINDS: MessageKind[] = ['new', 'reply', 'forward'];

const subset = <T>(pool: T[]) => fc.subarray(pool, { minLength: 0, maxLength: pool.length });

const matchArb: fc.Arbitrary<RuleMatch> = fc.record(
  { senders: subset(SENDERS), groups: subset(GROUPS), senderDomains: subset(DOMAINS), kinds: subset(KINDS) },
  { requiredKeys: [] },
);

const ruleArb = fc.record({
  match: matchArb,
  enabled: fc.boolean(),
  template: fc.option(fc.constantFrom(...TEMPLATES), { nil: undefined }),
  replyTemplate: fc.option(fc.constantFrom(...TEMPLATES), { nil: undefined }),
  addons: subset(ADDONS),
  stop: fc.boolean(),
  noSignature: fc.boolean(),
  skipIfInThread: fc.boolean(),
});

const LEVEL_RANK: Record<AssignmentLevel, number> = { user: 3, group: 2, domain: 1, default: 0 };

describe('rules: random rule sets against the reference model', () => {
  it('selection, assignment and add-ons follow the documented semantics', () => {
    fc.assert(
      fc.property(
        fc.array(ruleArb, { maxLength: 8 }),
        fc.constantFrom(...SENDERS),
        subset(GROUPS),
        fc.constantFrom(...KINDS),
        (specs, sender, groups, kind) => {
          const rules: RuleSource[] = specs.map((s, i) => rule(`r${i}`, { ...s, match: s.match }));
          const org = makeOrg({ rules, templates: TEMPLATES.map((t) => template(t)), addons: ADDONS.map((a) => addon(a)) });
          const user = { mail: sender, aliases: [], attributes: {}, groups };
          const sel = compileRules(org).select({ sender, user, recipients: ['r@contoso.com'], subject: '', body: '', kind, now: new Date('2026-01-01') });

          // Reference model.
          const matched: RuleSource[] = [];
          for (const r of rules) {
            if (!r.enabled) continue;
            const m = r.match;
            const ok =
              (!m.senders?.length || m.senders.includes(sender)) &&
              (!m.groups?.length || m.groups.some((g) => groups.includes(g))) &&
              (!m.senderDomains?.length || m.senderDomains.includes(sender.split('@')[1])) &&
              (!m.kinds?.length || m.kinds.includes(kind));
            if (!ok) continue;
            matched.push(r);
            if (r.stop) break;
          }
          const level = (r: RuleSource): AssignmentLevel => (r.match.senders?.length ? 'user' : r.match.groups?.length ? 'group' : r.match.senderDomains?.length ? 'domain' : 'default');
          const assigned = (r: RuleSource) => (kind === 'new' ? r.template : (r.replyTemplate ?? r.template));
          const candidates = matched.filter((r) => assigned(r) !== undefined || r.noSignature);
          const best = Math.max(-1, ...candidates.map((r) => LEVEL_RANK[level(r)]));
          const winner = candidates.find((r) => LEVEL_RANK[level(r)] === best);
          const addons = [...new Set(matched.flatMap((r) => r.addons ?? []))];

          expect(sel.matchedRules).to.deep.equal(matched.map((r) => r.id));
          expect(sel.templateRule).to.equal(winner?.id);
          expect(sel.level).to.equal(winner ? level(winner) : undefined);
          expect(sel.noSignature).to.equal(winner?.noSignature === true);
          expect(sel.templateId).to.equal(winner && !winner.noSignature ? assigned(winner) : undefined);
          expect(sel.skipIfInThread).to.equal(winner?.skipIfInThread === true);
          expect(sel.addons).to.deep.equal(addons);
          expect(sel.trace.map((t) => t.ruleId)).to.deep.equal(rules.map((r) => r.id));
          expect(sel.trace.filter((t) => t.matched).map((t) => t.ruleId)).to.deep.equal(sel.matchedRules);
          expect(sel.trace.every((t) => t.reasons.length > 0)).to.equal(true);
        },
      ),
      { numRuns: 500 },
    );
  });
});
