import { expect } from 'chai';
import { campaignWarnings } from '../../appliance/src/rules';
import { addon, makeOrg, rule } from './helpers';

const NOW = new Date('2026-12-01T00:00:00Z');
const campaign = (id: string, from: string, until: string) => addon(id, { kind: 'campaign', from, until });
const addons = [campaign('winter', '2026-11-16', '2027-01-01'), campaign('sale', '2026-12-10T08:00', '2026-12-12'), addon('notice', { kind: 'banner' })];
const messages = (rules: Parameters<typeof makeOrg>[0]['rules']) => campaignWarnings(makeOrg({ rules, addons }), NOW).map((w) => `${w.rule}/${w.addon} ${w.message}`);

describe('campaign windows (config validate warnings)', () => {
  it('warns once per pair of campaigns one message can get at once, at the rule that adds the second', () => {
    expect(messages([rule('a', { addons: ['winter'] }), rule('b', { addons: ['notice', 'sale'] }), rule('c', { addons: ['sale'] })])).to.deep.equal([
      '1/1 campaigns "winter" and "sale" overlap in [2026-12-10T08:00:00Z, 2026-12-12): a message that rules "a" and "b" both match gets both',
    ]);
  });

  it('says nothing when no message can match both rules, or an earlier one stops, or a rule is disabled', () => {
    expect(messages([rule('a', { match: { kinds: ['new'] }, addons: ['winter'] }), rule('b', { match: { kinds: ['reply', 'forward'] }, addons: ['sale'] })])).to.deep.equal([]);
    expect(messages([rule('a', { match: { direction: 'internal' }, addons: ['winter'] }), rule('b', { match: { direction: 'external' }, addons: ['sale'] })])).to.deep.equal([]);
    expect(messages([rule('a', { addons: ['winter'], stop: true }), rule('b', { addons: ['sale'] })])).to.deep.equal([]);
    expect(messages([rule('a', { addons: ['winter'], enabled: false }), rule('b', { addons: ['sale'] })])).to.deep.equal([]);
    // a rule window that ends before the other campaign starts
    expect(messages([rule('a', { match: { until: '2026-12-05' }, addons: ['winter'] }), rule('b', { addons: ['sale'] })])).to.deep.equal([]);
    // a stop after the other campaign's rule does not keep the earlier one out
    expect(messages([rule('a', { addons: ['winter'] }), rule('b', { addons: ['sale'], stop: true })])).to.have.length(1);
  });

  it('warns about a campaign whose window, narrowed by its rule, is over', () => {
    expect(messages([rule('a', { match: { until: '2026-11-20' }, addons: ['winter'] }), rule('b', { match: { from: '2026-11-01' }, addons: ['winter'] })])).to.deep.equal([
      '0/0 campaign "winter" ended on 2026-11-20 for rule "a": no message gets it any more',
    ]);
  });
});
