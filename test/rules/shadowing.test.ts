import { expect } from 'chai';
import { campaignWarnings, shadowedRules } from '../../appliance/src/rules';
import { addon, makeOrg, rule } from './helpers';

const shadows = (rules: Parameters<typeof makeOrg>[0]['rules']) => shadowedRules(makeOrg({ rules })).map((w) => `${w.rule}<${w.stoppedBy}`);

describe('rules an earlier stop rule always stops before (config validate warnings)', () => {
  it('warns at a rule whose every message an earlier stop rule matches', () => {
    // the usual mistake: a catch-all stop rule above the specific ones
    expect(shadows([rule('everyone', { stop: true }), rule('sales', { match: { groups: ['Sales'] } }), rule('replies', { match: { kinds: ['reply'] } })])).to.deep.equal(['1<0', '2<0']);
    const [first] = shadowedRules(makeOrg({ rules: [rule('everyone', { stop: true }), rule('sales', { match: { groups: ['Sales'] } })] }));
    expect(first!.message).to.equal('rule "sales" never takes effect: the earlier rule "everyone" matches every message it matches and stops (stop: true); move it above, or narrow the earlier rule');
    // narrower stop rules that still cover the later rule's messages
    expect(shadows([rule('domain', { match: { senderDomains: ['Contoso.com'] }, stop: true }), rule('tom', { match: { senders: ['tom@contoso.com'], senderDomains: ['contoso.com'] } })])).to.deep.equal(['1<0']);
    expect(shadows([rule('external', { match: { direction: 'external', kinds: ['new', 'reply'] }, stop: true }), rule('new-external', { match: { direction: 'external', kinds: ['new'] } })])).to.deep.equal(['1<0']);
    expect(shadows([rule('winter', { match: { from: '2026-12-01', until: '2027-01-01' }, stop: true }), rule('sale', { match: { from: '2026-12-10', until: '2026-12-12' } })])).to.deep.equal(['1<0']);
  });

  it('says nothing when some of the later rule\'s messages get past the stop rule', () => {
    // a stop rule that matches fewer messages, or other ones
    expect(shadows([rule('sales', { match: { groups: ['Sales'] }, stop: true }), rule('everyone')])).to.deep.equal([]);
    expect(shadows([rule('replies', { match: { kinds: ['reply'] }, stop: true }), rule('replies-and-new', { match: { kinds: ['reply', 'new'] } })])).to.deep.equal([]);
    expect(shadows([rule('internal', { match: { direction: 'internal' }, stop: true }), rule('any', { match: { direction: 'any' } })])).to.deep.equal([]);
    // a window that covers only part of the later rule's
    expect(shadows([rule('december', { match: { from: '2026-12-01', until: '2027-01-01' }, stop: true }), rule('always')])).to.deep.equal([]);
    // conditions not reasoned about (subject, body, recipients) never raise the warning
    expect(shadows([rule('subject', { match: { subjectContains: ['invoice'] }, stop: true }), rule('same-subject', { match: { subjectContains: ['invoice'] } })])).to.deep.equal([]);
    // an exception lets messages past the stop rule; a disabled one stops nothing; no stop, no shadow; the later rule above it
    expect(shadows([rule('everyone', { stop: true, except: [{ kinds: ['reply'] }] }), rule('sales', { match: { groups: ['Sales'] } })])).to.deep.equal([]);
    expect(shadows([rule('everyone', { stop: true, enabled: false }), rule('sales', { match: { groups: ['Sales'] } })])).to.deep.equal([]);
    expect(shadows([rule('everyone'), rule('sales', { match: { groups: ['Sales'] } })])).to.deep.equal([]);
    expect(shadows([rule('sales', { match: { groups: ['Sales'] } }), rule('everyone', { stop: true })])).to.deep.equal([]);
  });

  it('a shadowed rule\'s campaign is not reported as overlapping another (it is never added)', () => {
    const addons = [addon('winter', { kind: 'campaign', from: '2026-11-16', until: '2027-01-01' }), addon('sale', { kind: 'campaign', from: '2026-12-10', until: '2026-12-12' })];
    // the stop rule sits between the two campaigns' rules: a message gets the winter banner, then evaluation stops
    const rules = [rule('winter-all', { addons: ['winter'] }), rule('everyone', { stop: true }), rule('sales', { match: { groups: ['Sales'] }, addons: ['sale'] })];
    const org = makeOrg({ rules, addons });
    expect(campaignWarnings(org, new Date('2026-12-01T00:00:00Z'))).to.deep.equal([]);
    expect(shadowedRules(org).map((w) => w.rule)).to.deep.equal([2]);
    // without the stop rule the two banners do meet
    expect(campaignWarnings(makeOrg({ rules: [rules[0]!, rules[2]!], addons }), new Date('2026-12-01T00:00:00Z'))).to.have.length(1);
  });
});
