// What follows from a rule's conditions, for `signet config validate`: whether
// every message one set of conditions matches is also matched by another (an
// exception that keeps a rule's messages out, a stop rule above another rule).
// Sound but partial: only conditions whose implication is plain are read, and
// anything else counts as "does not follow", so a warning is never held back
// (or raised) on a guess.
import type { RuleMatch } from '../config';
import { parseInstant } from './engine';

/** A date window in epoch ms: from inclusive, until exclusive; unbounded sides are ±Infinity. */
export interface Window {
  from: number;
  until: number;
}

export const ALWAYS: Window = { from: -Infinity, until: Infinity };

/** The window of a rule's (or an add-on's) from/until; the config is loaded, so the dates parse. */
export function windowOf(from: string | undefined, until: string | undefined, where: string): Window {
  return {
    from: from === undefined ? -Infinity : parseInstant(from, `${where}.from`),
    until: until === undefined ? Infinity : parseInstant(until, `${where}.until`),
  };
}

export const meet = (a: Window, b: Window): Window => ({ from: Math.max(a.from, b.from), until: Math.min(a.until, b.until) });

const lower = (list: string[]) => list.map((v) => v.toLowerCase());
/** Whether every value of `some` is one of `all` (compared without case, as the rules compare them); false when `some` is empty (no condition). */
const within = (some: string[] | undefined, all: string[]): boolean => Boolean(some?.length) && lower(some!).every((v) => lower(all).includes(v));

/**
 * Whether `conditions` hold for every message `match` matches while `during`: each present condition
 * follows from `match` (kinds, direction, senders, groups, sender domains, the date window). Conditions
 * on recipient domains, subject or body are not reasoned about and make the answer false.
 */
export function impliedBy(conditions: RuleMatch, match: RuleMatch, during: Window): boolean {
  if (conditions.recipientDomains?.length || conditions.subjectContains?.length || conditions.bodyContains?.length) return false;
  if (conditions.kinds?.length && !within(match.kinds, conditions.kinds)) return false;
  if (conditions.direction && conditions.direction !== 'any' && conditions.direction !== match.direction) return false;
  if (conditions.senders?.length && !within(match.senders, conditions.senders)) return false;
  if (conditions.groups?.length && !within(match.groups, conditions.groups)) return false;
  if (conditions.senderDomains?.length && !within(match.senderDomains, conditions.senderDomains)) return false;
  const window = windowOf(conditions.from, conditions.until, 'conditions');
  return window.from <= during.from && window.until >= during.until;
}
