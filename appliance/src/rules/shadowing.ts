// Rules no message can reach: an earlier rule with `stop: true` matches every
// message the later one matches, so the later one is never evaluated. A
// warning for `signet config validate` (a catch-all stop rule placed above
// the specific ones is the usual cause); the engine runs the rules as written.
import type { OrgConfig } from '../config';
import { impliedBy, windowOf } from './implication';

export interface ShadowWarning {
  /** Index of the rule that never takes effect, in rules.yaml. */
  rule: number;
  /** Index of the earlier rule that stops before it. */
  stoppedBy: number;
  message: string;
}

/** Enabled rules that an earlier enabled stop rule (without exceptions) always stops before. */
export function shadowedRules(org: OrgConfig): ShadowWarning[] {
  const warnings: ShadowWarning[] = [];
  org.rules.forEach((rule, r) => {
    if (!rule.enabled) return;
    const during = windowOf(rule.match.from, rule.match.until, `rules[${r}].match`);
    // an exception on the stop rule lets some messages past it: not reasoned about, so no warning
    const s = org.rules.findIndex((earlier, i) => i < r && earlier.enabled && earlier.stop === true && !earlier.except?.length && impliedBy(earlier.match, rule.match, during));
    if (s < 0) return;
    warnings.push({
      rule: r,
      stoppedBy: s,
      message: `rule "${rule.id}" never takes effect: the earlier rule "${org.rules[s]!.id}" matches every message it matches and stops (stop: true); move it above, or narrow the earlier rule`,
    });
  });
  return warnings;
}
