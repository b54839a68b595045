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

  it('says nothing when one rule\'s exception keeps out every message the other rule matches', () => {
    const sale = (match: Record<string, unknown>) => rule('b', { match, addons: ['sale'] });
    const winterExcept = (...except: Array<Record<string, unknown>>) => rule('a', { addons: ['winter'], except });
    expect(messages([winterExcept({ kinds: ['reply', 'forward'] }), sale({ kinds: ['reply'] })])).to.deep.equal([]);
    expect(messages([winterExcept({ direction: 'internal' }), sale({ direction: 'internal' })])).to.deep.equal([]);
    expect(messages([winterExcept({ senderDomains: ['Contoso.com', 'fabrikam.com'] }), sale({ senderDomains: ['contoso.com'] })])).to.deep.equal([]);
    expect(messages([winterExcept({ groups: ['sales'] }), sale({ groups: ['sales'] })])).to.deep.equal([]);
    expect(messages([winterExcept({ senders: ['ceo@contoso.com'] }), sale({ senders: ['ceo@contoso.com'] })])).to.deep.equal([]);
    // an exception on the later rule counts as well, and one of several is enough
    expect(messages([rule('a', { match: { kinds: ['new'] }, addons: ['winter'] }), rule('b', { addons: ['sale'], except: [{ subjectContains: ['x'] }, { kinds: ['new'] }] })])).to.deep.equal([]);
    // an exception whose window covers the days both campaigns run
    expect(messages([winterExcept({ from: '2026-12-10', until: '2026-12-13' }), sale({})])).to.deep.equal([]);
  });

  it('still warns when an exception leaves some of the other rule\'s messages in', () => {
    const sale = (match: Record<string, unknown>) => rule('b', { match, addons: ['sale'] });
    const winterExcept = (...except: Array<Record<string, unknown>>) => rule('a', { addons: ['winter'], except });
    // the other rule matches new messages too, or any kind
    expect(messages([winterExcept({ kinds: ['reply'] }), sale({ kinds: ['reply', 'new'] })])).to.have.length(1);
    expect(messages([winterExcept({ kinds: ['reply'] }), sale({})])).to.have.length(1);
    // two conditions in one exception must both follow: the kind does, the direction does not
    expect(messages([winterExcept({ kinds: ['reply'], direction: 'internal' }), sale({ kinds: ['reply'] })])).to.have.length(1);
    // conditions the check cannot reason about (subject, body, recipients) never hold a warning back
    expect(messages([winterExcept({ subjectContains: ['sale'] }), sale({ subjectContains: ['sale'] })])).to.have.length(1);
    expect(messages([winterExcept({ recipientDomains: ['fabrikam.com'] }), sale({ recipientDomains: ['fabrikam.com'] })])).to.have.length(1);
    // an exception window that covers only part of the overlap
    expect(messages([winterExcept({ from: '2026-12-11', until: '2026-12-13' }), sale({})])).to.have.length(1);
    // a rule's own exception does not separate two campaigns it adds itself
    expect(messages([rule('a', { addons: ['winter', 'sale'], except: [{ kinds: ['reply'] }] })])).to.have.length(1);
  });

  it('warns about a campaign whose window, narrowed by its rule, is over', () => {
    expect(messages([rule('a', { match: { until: '2026-11-20' }, addons: ['winter'] }), rule('b', { match: { from: '2026-11-01' }, addons: ['winter'] })])).to.deep.equal([
      '0/0 campaign "winter" ended on 2026-11-20 for rule "a": no message gets it any more',
    ]);
  });
});
