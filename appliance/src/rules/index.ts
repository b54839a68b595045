// Rules: which signature, add-ons and options apply to a message.
export { compileRules, parseInstant } from './engine';
export type { AssignmentLevel, RuleInput, RuleSet, RuleTrace, Selection } from './engine';
export { campaignWarnings, type CampaignWarning } from './campaigns';
export { shadowedRules, type ShadowWarning } from './shadowing';
export { asciiDomain, DomainMatcher, domainOf, normalizeAddress } from './domains';
