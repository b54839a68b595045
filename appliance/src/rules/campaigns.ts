// Campaign windows that may not work as their author meant: one whose window
// is over, and two campaigns that one message can get at once (add-ons of every
// matching rule stack, so it gets both banners). Warnings for `signet config
// validate`; the engine applies the windows as written, and windows that never
// meet are refused when the config loads.
import type { OrgConfig, RuleMatch } from '../config';
import { impliedBy, meet, windowOf, type Window } from './implication';
import { shadowedRules } from './shadowing';

export interface CampaignWarning {
  /** Index of the rule in rules.yaml. */
  rule: number;
  /** Index of the add-on in that rule's `addons`. */
  addon: number;
  message: string;
}

interface Use {
  rule: number;
  addon: number;
  id: string;
  ruleId: string;
  match: RuleMatch;
  window: Window;
}

const day = (ms: number): string => (Number.isFinite(ms) ? new Date(ms).toISOString().replace(/T00:00:00\.000Z$/, '').replace(/\.000Z$/, 'Z') : '…');
const shown = (w: Window): string => `[${day(w.from)}, ${day(w.until)})`;

/** Whether no message can match both: different kinds, or one rule for internal mail and one for external. */
function exclusive(a: RuleMatch, b: RuleMatch): boolean {
  if (a.kinds?.length && b.kinds?.length && !a.kinds.some((k) => b.kinds!.includes(k))) return true;
  const directions = new Set([a.direction, b.direction]);
  return directions.has('internal') && directions.has('external');
}

/** Whether one rule's exceptions keep out every message the other rule matches while both campaigns run. */
const exceptedAway = (a: Use, b: Use, during: Window, org: OrgConfig): boolean =>
  (org.rules[a.rule]!.except ?? []).some((e) => impliedBy(e, b.match, during)) || (org.rules[b.rule]!.except ?? []).some((e) => impliedBy(e, a.match, during));

/** The organization's campaign windows checked as of `now` (config already loaded, so dates parse). */
export function campaignWarnings(org: OrgConfig, now: Date): CampaignWarning[] {
  const warnings: CampaignWarning[] = [];
  const uses: Use[] = [];
  // a rule an earlier stop rule always stops before adds nothing (its own warning says so)
  const shadowed = new Set(shadowedRules(org).map((w) => w.rule));
  org.rules.forEach((rule, r) => {
    if (!rule.enabled || shadowed.has(r)) return;
    const ruleWindow = windowOf(rule.match.from, rule.match.until, `rules[${r}].match`);
    (rule.addons ?? []).forEach((id, a) => {
      const addon = org.addons.get(id);
      if (addon?.kind !== 'campaign') return;
      const addonWindow = windowOf(addon.from, addon.until, addon.file);
      const window = meet(ruleWindow, addonWindow);
      if (window.until <= now.getTime()) {
        warnings.push({ rule: r, addon: a, message: `campaign "${id}" ended on ${day(window.until)} for rule "${rule.id}": no message gets it any more` });
      } else {
        uses.push({ rule: r, addon: a, id, ruleId: rule.id, match: rule.match, window });
      }
    });
  });
  // Each pair of campaigns once, at the first use that adds the second banner.
  const reported = new Set<string>();
  for (let j = 0; j < uses.length; j++) {
    for (let i = 0; i < j; i++) {
      const [a, b] = [uses[i]!, uses[j]!];
      // a rule that stops keeps the later rule from adding its campaign to the same message
      const stopped = a.rule < b.rule && org.rules[a.rule]!.stop === true;
      if (a.id === b.id || stopped || exclusive(a.match, b.match)) continue;
      const pair = [a.id, b.id].sort().join('\0');
      const both = meet(a.window, b.window);
      if (reported.has(pair) || both.from >= both.until || both.until <= now.getTime()) continue;
      if (a.rule !== b.rule && exceptedAway(a, b, both, org)) continue;
      reported.add(pair);
      const who = a.rule === b.rule ? `rule "${b.ruleId}" adds both` : `a message that rules "${a.ruleId}" and "${b.ruleId}" both match gets both`;
      warnings.push({ rule: b.rule, addon: b.addon, message: `campaigns "${a.id}" and "${b.id}" overlap in ${shown(both)}: ${who}` });
    }
  }
  return warnings;
}
