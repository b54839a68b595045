import { expect } from 'chai';
import { compileRules, type RuleInput } from '../../appliance/src/rules';
import { addon, alice, makeOrg, rule } from './helpers';

const NOW = new Date('2026-03-15T12:00:00Z');

function input(extra: Partial<RuleInput> = {}): RuleInput {
  return {
    sender: 'alice@contoso.com',
    user: alice,
    recipients: ['bob@contoso.com'],
    subject: 'Quarterly numbers',
    body: 'Hello Bob, see attached.',
    kind: 'new',
    now: NOW,
    ...extra,
  };
}

function reasonsOf(sel: ReturnType<ReturnType<typeof compileRules>['select']>, id: string): string[] {
  const entry = sel.trace.find((t) => t.ruleId === id);
  expect(entry, `trace entry for ${id}`).to.not.equal(undefined);
  return entry!.reasons;
}

describe('rules: selection', () => {
  it('a rule without conditions matches every message and assigns the default template', () => {
    const rules = compileRules(makeOrg({ rules: [rule('default', { template: 'default' })] }));
    const sel = rules.select(input({ user: undefined, sender: 'unknown@elsewhere.example' }));
    expect(sel.matchedRules).to.deep.equal(['default']);
    expect(sel.templateId).to.equal('default');
    expect(sel.templateRule).to.equal('default');
    expect(sel.level).to.equal('default');
    expect(sel.noSignature).to.equal(false);
    expect(reasonsOf(sel, 'default')).to.deep.equal(['no conditions: matches every message', 'assignment: template default at level default: chosen']);
  });

  it('no matching rule → no template, no add-ons', () => {
    const rules = compileRules(makeOrg({ rules: [rule('sales', { match: { groups: ['Marketing'] }, template: 'sales' })] }));
    const sel = rules.select(input());
    expect(sel.matchedRules).to.deep.equal([]);
    expect(sel.templateId).to.equal(undefined);
    expect(sel.templateRule).to.equal(undefined);
    expect(sel.addons).to.deep.equal([]);
    expect(sel.trace).to.have.length(1);
    expect(sel.trace[0].matched).to.equal(false);
  });

  it('the most specific assignment wins whatever the rule order: user > group > domain > default', () => {
    const all = [
      rule('default', { template: 'default' }),
      rule('domain', { match: { senderDomains: ['contoso.com'] }, template: 'contoso' }),
      rule('group', { match: { groups: ['sales emea'] }, template: 'sales' }),
      rule('user', { match: { senders: ['ALICE@contoso.com'] }, template: 'alice' }),
    ];
    for (const order of [all, [...all].reverse(), [all[2], all[0], all[3], all[1]]]) {
      const sel = compileRules(makeOrg({ rules: order })).select(input());
      expect(sel.templateId).to.equal('alice');
      expect(sel.level).to.equal('user');
      expect(sel.matchedRules).to.have.members(['default', 'domain', 'group', 'user']);
      expect(reasonsOf(sel, 'group')).to.include('assignment: template sales at level group: not used, outranked by rule user (level user)');
    }
    // Without the user rule, the group wins; without it, the domain; then the default.
    expect(compileRules(makeOrg({ rules: all.slice(0, 3) })).select(input()).templateId).to.equal('sales');
    expect(compileRules(makeOrg({ rules: all.slice(0, 2) })).select(input()).templateId).to.equal('contoso');
    const levels = compileRules(makeOrg({ rules: all })).select(input()).trace.map((t) => t.level);
    expect(levels).to.deep.equal(['default', 'domain', 'group', 'user']);
  });

  it('ties at the same level go to the earlier rule', () => {
    const rules = compileRules(
      makeOrg({
        rules: [
          rule('first', { match: { groups: ['All Staff'] }, template: 'sales' }),
          rule('second', { match: { groups: ['Sales EMEA'] }, template: 'contoso' }),
        ],
      }),
    );
    const sel = rules.select(input());
    expect(sel.templateId).to.equal('sales');
    expect(sel.templateRule).to.equal('first');
    expect(reasonsOf(sel, 'second')).to.include('assignment: template contoso at level group: not used, rule first at the same level comes first');
  });

  it('a rule with senders and groups counts as a user-level assignment', () => {
    const rules = compileRules(
      makeOrg({
        rules: [
          rule('group', { match: { groups: ['All Staff'] }, template: 'sales' }),
          rule('both', { match: { senders: ['alice@contoso.com'], groups: ['All Staff'] }, template: 'alice' }),
        ],
      }),
    );
    expect(rules.select(input()).level).to.equal('user');
    expect(rules.select(input()).templateId).to.equal('alice');
  });
});

describe('rules: conditions', () => {
  it('senders: case-insensitive, and matched through the directory user\'s aliases', () => {
    const rules = compileRules(makeOrg({ rules: [rule('r', { match: { senders: ['Alice.Smith@CONTOSO.co.uk'] }, template: 'alice' })] }));
    const viaAlias = rules.select(input({ sender: 'ALICE@contoso.com' }));
    expect(viaAlias.matchedRules).to.deep.equal(['r']);
    expect(reasonsOf(viaAlias, 'r')[0]).to.equal('senders: yes, alice.smith@contoso.co.uk (directory address of alice@contoso.com) is listed');
    const direct = rules.select(input({ sender: '<alice.smith@contoso.co.uk>', user: undefined }));
    expect(reasonsOf(direct, 'r')[0]).to.equal('senders: yes, alice.smith@contoso.co.uk is listed');
    const other = rules.select(input({ sender: 'bob@contoso.com', user: undefined }));
    expect(other.matchedRules).to.deep.equal([]);
    expect(reasonsOf(other, 'r')[0]).to.equal('senders: no, bob@contoso.com is not among [alice.smith@contoso.co.uk]');
  });

  it('senders: an envelope sender with a Unicode domain is the listed xn-- address, also without a directory entry', () => {
    const rules = compileRules(makeOrg({ rules: [rule('r', { match: { senders: ['anna@xn--mller-kva.example'] }, template: 'alice' })] }));
    expect(rules.select(input({ sender: 'Anna@MÜLLER.example', user: undefined })).matchedRules).to.deep.equal(['r']);
    expect(rules.select(input({ sender: 'anna@xn--mller-kva.example', user: undefined })).matchedRules).to.deep.equal(['r']);
    expect(rules.select(input({ sender: 'anna@mueller.example', user: undefined })).matchedRules).to.deep.equal([]);
  });

  it('groups: ids or display names, case-insensitive; an unknown sender belongs to no group', () => {
    const byName = compileRules(makeOrg({ rules: [rule('r', { match: { groups: ['SALES emea'] }, template: 'sales' })] }));
    expect(reasonsOf(byName.select(input()), 'r')[0]).to.equal('groups: yes, sender is a member of Sales EMEA');
    const byId = compileRules(makeOrg({ rules: [rule('r', { match: { groups: ['G-SALES-ID'] }, template: 'sales' })] }));
    expect(byId.select(input()).matchedRules).to.deep.equal(['r']);
    const noUser = byId.select(input({ user: undefined, sender: 'ghost@contoso.com' }));
    expect(noUser.matchedRules).to.deep.equal([]);
    expect(reasonsOf(noUser, 'r')[0]).to.equal('groups: no, sender ghost@contoso.com is not in the directory, so belongs to none of [G-SALES-ID]');
    const notMember = compileRules(makeOrg({ rules: [rule('r', { match: { groups: ['Legal'] } })] })).select(input());
    expect(reasonsOf(notMember, 'r')[0]).to.equal('groups: no, sender is a member of none of [Legal]');
  });

  it('senderDomains: exact domain, or *.domain for subdomains only', () => {
    const rules = compileRules(makeOrg({ rules: [rule('exact', { match: { senderDomains: ['Contoso.com'] } }), rule('sub', { match: { senderDomains: ['*.contoso.com'] } })] }));
    expect(rules.select(input({ sender: 'x@contoso.com', user: undefined })).matchedRules).to.deep.equal(['exact']);
    expect(rules.select(input({ sender: 'x@eu.contoso.com', user: undefined })).matchedRules).to.deep.equal(['sub']);
    expect(rules.select(input({ sender: 'x@a.eu.contoso.com', user: undefined })).matchedRules).to.deep.equal(['sub']);
    expect(rules.select(input({ sender: 'x@notcontoso.com', user: undefined })).matchedRules).to.deep.equal([]);
    const sel = rules.select(input({ sender: 'x@eu.contoso.com', user: undefined }));
    expect(reasonsOf(sel, 'exact')[0]).to.equal('sender domain: no, eu.contoso.com is not among [contoso.com]');
    expect(reasonsOf(sel, 'sub')[0]).to.equal('sender domain: yes, eu.contoso.com matches *.contoso.com');
  });

  it('direction: internal when every recipient is in an accepted domain, external when any is outside', () => {
    const rules = compileRules(
      makeOrg({ rules: [rule('int', { match: { direction: 'internal' } }), rule('ext', { match: { direction: 'external' } }), rule('any', { match: { direction: 'any' } })] }),
    );
    const internal = rules.select(input({ recipients: ['bob@contoso.com', 'Carol@CONTOSO.CO.UK'] }));
    expect(internal.matchedRules).to.deep.equal(['int', 'any']);
    expect(reasonsOf(internal, 'ext')[0]).to.equal('direction external: no, every recipient is in an accepted domain [contoso.com, contoso.co.uk]');
    const mixed = rules.select(input({ recipients: ['bob@contoso.com', 'dan@partner.example'] }));
    expect(mixed.matchedRules).to.deep.equal(['ext', 'any']);
    expect(reasonsOf(mixed, 'int')[0]).to.equal('direction internal: no, recipient domain partner.example is not an accepted domain [contoso.com, contoso.co.uk]');
    expect(reasonsOf(mixed, 'ext')[0]).to.equal('direction external: yes, recipient domain partner.example is outside the accepted domains [contoso.com, contoso.co.uk]');
    // A subdomain of an accepted domain is not that domain.
    expect(rules.select(input({ recipients: ['x@mail.contoso.com'] })).matchedRules).to.deep.equal(['ext', 'any']);
    // No recipients at all: nothing external.
    expect(rules.select(input({ recipients: [] })).matchedRules).to.deep.equal(['int', 'any']);
  });

  it('recipientDomains: any recipient in the listed domains (exact or *.wildcard)', () => {
    const rules = compileRules(makeOrg({ rules: [rule('partner', { match: { recipientDomains: ['partner.example', '*.bank.example'] } })] }));
    expect(rules.select(input({ recipients: ['bob@contoso.com', 'Dan@Partner.Example'] })).matchedRules).to.deep.equal(['partner']);
    expect(rules.select(input({ recipients: ['x@eu.bank.example'] })).matchedRules).to.deep.equal(['partner']);
    expect(rules.select(input({ recipients: ['x@bank.example'] })).matchedRules).to.deep.equal([]);
    expect(rules.select(input({ recipients: ['x@sub.partner.example'] })).matchedRules).to.deep.equal([]);
    const sel = rules.select(input({ recipients: ['x@eu.bank.example'] }));
    expect(reasonsOf(sel, 'partner')[0]).to.equal('recipient domains: yes, eu.bank.example matches *.bank.example');
    expect(reasonsOf(rules.select(input()), 'partner')[0]).to.equal("recipient domains: no, none of the recipients' domains [contoso.com] is among [partner.example, *.bank.example]");
  });

  it('subjectContains / bodyContains: case-insensitive substrings, any of', () => {
    const rules = compileRules(
      makeOrg({ rules: [rule('subj', { match: { subjectContains: ['INVOICE', 'quarterly'] } }), rule('body', { match: { bodyContains: ['Confidential'] } })] }),
    );
    expect(rules.needsBody).to.equal(true);
    const sel = rules.select(input({ subject: 'Re: QUARTERLY numbers', body: 'this is CONFIDENTIAL' }));
    expect(sel.matchedRules).to.deep.equal(['subj', 'body']);
    expect(reasonsOf(sel, 'subj')[0]).to.equal('subject: yes, contains "quarterly"');
    const none = rules.select(input({ subject: 'Lunch?', body: 'pizza' }));
    expect(none.matchedRules).to.deep.equal([]);
    expect(reasonsOf(none, 'subj')[0]).to.equal('subject: no, contains none of ["INVOICE", "quarterly"]');
    expect(reasonsOf(none, 'body')[0]).to.equal('body: no, contains none of ["Confidential"]');
    expect(compileRules(makeOrg({ rules: [rule('subj', { match: { subjectContains: ['x'] } })] })).needsBody).to.equal(false);
  });

  it('keywords match however the text is laid out: Unicode forms, wrapped lines, no-break spaces, full-width letters', () => {
    const rules = compileRules(
      makeOrg({ rules: [rule('subj', { match: { subjectContains: ['Café', 'RE: Order'] } }), rule('body', { match: { bodyContains: ['special offer', 'Größe'] } })] }),
    );
    const matched = (subject: string, body: string) => rules.select(input({ subject, body })).matchedRules;
    // A decomposed é (e + combining accent, as macOS may send it) is the é of the rule.
    expect(matched('Lunch at the cafe\u0301', 'x')).to.deep.equal(['subj']);
    // Full-width letters and colon (an East Asian keyboard's) are their ASCII twins.
    expect(matched('ＲＥ： Order 42', 'x')).to.deep.equal(['subj']);
    // A phrase wrapped over two lines of a text part, or held together by a no-break space.
    expect(matched('x', 'Our special\r\noffer ends Friday')).to.deep.equal(['body']);
    expect(matched('x', 'Our special\u00a0 offer')).to.deep.equal(['body']);
    expect(matched('x', 'Die GRO\u0308SSE')).to.deep.equal([]);
    expect(matched('x', 'Die Gro\u0308\u00dfe')).to.deep.equal(['body']);
    // A soft hyphen or zero-width space inside a word does not hide it.
    expect(matched('x', 'a spe\u00adcial of\u200bfer')).to.deep.equal(['body']);
    // The trace names the keyword as the rule writes it.
    expect(reasonsOf(rules.select(input({ subject: 'cafe\u0301' })), 'subj')[0]).to.equal('subject: yes, contains "Café"');
  });

  it('keywords: letters whose Unicode form is an upper-case letter (mathematical bold, ℌ) match case-insensitively too', () => {
    const rules = compileRules(makeOrg({ rules: [rule('subj', { match: { subjectContains: ['black friday', 'HELLO'] } })] }));
    // NFKC turns 𝐁 into B and ℌ into H, which have no lower-case form of their own to be folded from.
    expect(rules.select(input({ subject: '𝐁𝐋𝐀𝐂𝐊 𝐅𝐑𝐈𝐃𝐀𝐘 deals' })).matchedRules).to.deep.equal(['subj']);
    expect(rules.select(input({ subject: 'ℌello there' })).matchedRules).to.deep.equal(['subj']);
  });

  it('internationalized domains: a recipient written in Unicode is its punycode domain', () => {
    const rules = compileRules(
      makeOrg({
        acceptedDomains: ['contoso.com', 'xn--mller-kva.example'],
        rules: [rule('int', { match: { direction: 'internal' } }), rule('partner', { match: { recipientDomains: ['xn--bcher-kva.example', '*.xn--caf-dma.example'] } })],
      }),
    );
    expect(rules.select(input({ recipients: ['anna@MÜLLER.example'] })).matchedRules).to.deep.equal(['int']);
    expect(rules.select(input({ recipients: ['x@bücher.example'] })).matchedRules).to.deep.equal(['partner']);
    expect(rules.select(input({ recipients: ['x@eu.café.example'] })).matchedRules).to.deep.equal(['partner']);
    expect(rules.select(input({ recipients: ['x@xn--bcher-kva.example'] })).matchedRules).to.deep.equal(['partner']);
  });

  it('kinds, and the reply/forward template variant', () => {
    const rules = compileRules(
      makeOrg({
        rules: [
          rule('replies-only', { match: { kinds: ['reply'] } }),
          rule('default', { template: 'default', replyTemplate: 'short' }),
        ],
      }),
    );
    const newMsg = rules.select(input({ kind: 'new' }));
    expect(newMsg.matchedRules).to.deep.equal(['default']);
    expect(newMsg.templateId).to.equal('default');
    expect(reasonsOf(newMsg, 'replies-only')[0]).to.equal('kind: no, new is not one of [reply]');
    const reply = rules.select(input({ kind: 'reply' }));
    expect(reply.matchedRules).to.deep.equal(['replies-only', 'default']);
    expect(reply.templateId).to.equal('short');
    expect(reasonsOf(reply, 'default')).to.include('assignment: template short (reply/forward variant) at level default: chosen');
    expect(rules.select(input({ kind: 'forward' })).templateId).to.equal('short');
    // Without a replyTemplate, replies use the template.
    const plain = compileRules(makeOrg({ rules: [rule('default', { template: 'default' })] }));
    expect(plain.select(input({ kind: 'forward' })).templateId).to.equal('default');
  });

  it('a rule with only a replyTemplate assigns nothing to a new message', () => {
    const rules = compileRules(
      makeOrg({
        rules: [
          rule('user-reply', { match: { senders: ['alice@contoso.com'] }, replyTemplate: 'short' }),
          rule('default', { template: 'default' }),
        ],
      }),
    );
    const sel = rules.select(input({ kind: 'new' }));
    expect(sel.templateId).to.equal('default');
    expect(reasonsOf(sel, 'user-reply')).to.include('assignment: none for a new message (only replyTemplate is set)');
    expect(rules.select(input({ kind: 'reply' })).templateId).to.equal('short');
  });

  it('date window: from inclusive, until exclusive; date-only and zone-less values are UTC', () => {
    const rules = compileRules(makeOrg({ rules: [rule('march', { match: { from: '2026-03-01', until: '2026-04-01T00:00' } })] }));
    const at = (iso: string) => rules.select(input({ now: new Date(iso) })).matchedRules.length === 1;
    expect(at('2026-02-28T23:59:59.999Z')).to.equal(false);
    expect(at('2026-03-01T00:00:00.000Z')).to.equal(true);
    expect(at('2026-03-31T23:59:59.999Z')).to.equal(true);
    expect(at('2026-04-01T00:00:00.000Z')).to.equal(false);
    const before = rules.select(input({ now: new Date('2026-02-01T00:00:00Z') }));
    expect(reasonsOf(before, 'march')[0]).to.equal('date window: no, 2026-02-01T00:00:00.000Z is before the start 2026-03-01');
    const after = rules.select(input({ now: new Date('2026-04-01T00:00:00Z') }));
    expect(reasonsOf(after, 'march')[0]).to.equal('date window: no, 2026-04-01T00:00:00.000Z is not before the end 2026-04-01T00:00');
    const offset = compileRules(makeOrg({ rules: [rule('r', { match: { from: '2026-03-01T10:00:00+02:00' } })] }));
    expect(offset.select(input({ now: new Date('2026-03-01T07:59:59Z') })).matchedRules).to.deep.equal([]);
    expect(offset.select(input({ now: new Date('2026-03-01T08:00:00Z') })).matchedRules).to.deep.equal(['r']);
  });

  it('except: any matching exception excludes the rule, and the trace says which', () => {
    const rules = compileRules(
      makeOrg({
        rules: [
          rule('disclaimer', {
            match: { direction: 'external' },
            except: [{ recipientDomains: ['lawfirm.example'] }, { senders: ['ceo@contoso.com'], kinds: ['reply'] }],
          }),
        ],
      }),
    );
    const plain = rules.select(input({ recipients: ['x@partner.example'], kind: 'reply' }));
    expect(plain.matchedRules).to.deep.equal(['disclaimer']);
    expect(reasonsOf(plain, 'disclaimer')).to.deep.equal([
      'direction external: yes, recipient domain partner.example is outside the accepted domains [contoso.com, contoso.co.uk]',
      "except #1 does not apply: recipient domains: no, none of the recipients' domains [partner.example] is among [lawfirm.example]",
      'except #2 does not apply: senders: no, alice@contoso.com (nor any of its 2 other directory addresses) is not among [ceo@contoso.com]',
    ]);
    expect(reasonsOf(rules.select(input({ recipients: ['x@partner.example'] })), 'disclaimer')[2]).to.equal('except #2 does not apply: kind: no, new is not one of [reply]');
    const lawyer = rules.select(input({ recipients: ['x@partner.example', 'y@LawFirm.example'] }));
    expect(lawyer.matchedRules).to.deep.equal([]);
    expect(reasonsOf(lawyer, 'disclaimer')[1]).to.equal('except #1 applies, so the rule does not match: recipient domains: yes, lawfirm.example matches lawfirm.example');
    // Every condition of an exception must hold for it to apply.
    const ceoNew = rules.select(input({ sender: 'ceo@contoso.com', user: undefined, recipients: ['x@partner.example'], kind: 'new' }));
    expect(ceoNew.matchedRules).to.deep.equal(['disclaimer']);
    expect(reasonsOf(ceoNew, 'disclaimer')[2]).to.equal('except #2 does not apply: kind: no, new is not one of [reply]');
    const ceoReply = rules.select(input({ sender: 'ceo@contoso.com', user: undefined, recipients: ['x@partner.example'], kind: 'reply' }));
    expect(ceoReply.matchedRules).to.deep.equal([]);
  });

  it('every present condition must hold', () => {
    const rules = compileRules(makeOrg({ rules: [rule('r', { match: { groups: ['Sales EMEA'], direction: 'external', subjectContains: ['offer'] } })] }));
    expect(rules.select(input({ recipients: ['x@partner.example'], subject: 'Your offer' })).matchedRules).to.deep.equal(['r']);
    expect(rules.select(input({ recipients: ['x@contoso.com'], subject: 'Your offer' })).matchedRules).to.deep.equal([]);
    expect(rules.select(input({ recipients: ['x@partner.example'], subject: 'Hello' })).matchedRules).to.deep.equal([]);
    const sel = rules.select(input({ recipients: ['x@contoso.com'], subject: 'Your offer' }));
    // Evaluation stops at the first failing condition.
    expect(reasonsOf(sel, 'r')).to.have.length(2);
  });
});

describe('rules: disabled, stop, add-ons, noSignature', () => {
  it('disabled rules are skipped and traced', () => {
    const rules = compileRules(makeOrg({ rules: [rule('old', { enabled: false, template: 'alice' }), rule('default', { template: 'default' })] }));
    const sel = rules.select(input());
    expect(sel.templateId).to.equal('default');
    expect(sel.trace[0]).to.deep.equal({ ruleId: 'old', matched: false, reasons: ['disabled'] });
  });

  it('stop: no later rule is evaluated once a stop rule matched', () => {
    const rules = compileRules(
      makeOrg({
        addons: [addon('banner'), addon('legal', { kind: 'disclaimer', position: 'bottom' })],
        rules: [
          rule('not-matching-stop', { match: { groups: ['Legal'] }, stop: true }),
          rule('stopper', { match: { senderDomains: ['contoso.com'] }, template: 'contoso', addons: ['banner'], stop: true }),
          rule('later', { match: { senders: ['alice@contoso.com'] }, template: 'alice', addons: ['legal'] }),
          rule('later-disabled', { enabled: false }),
        ],
      }),
    );
    const sel = rules.select(input());
    expect(sel.matchedRules).to.deep.equal(['stopper']);
    expect(sel.templateId).to.equal('contoso');
    expect(sel.addons).to.deep.equal(['banner']);
    expect(sel.trace.map((t) => t.ruleId)).to.deep.equal(['not-matching-stop', 'stopper', 'later', 'later-disabled']);
    expect(reasonsOf(sel, 'stopper')).to.include('stop: later rules are not evaluated');
    expect(reasonsOf(sel, 'later')).to.deep.equal(['not evaluated: rule stopper stopped']);
    expect(reasonsOf(sel, 'later-disabled')).to.deep.equal(['not evaluated: rule stopper stopped']);
    // When the stop rule does not match, evaluation continues.
    const other = rules.select(input({ sender: 'alice@fabrikam.example', user: undefined }));
    expect(other.trace.every((t) => !t.reasons[0].startsWith('not evaluated'))).to.equal(true);
  });

  it('add-ons of all matching rules stack in rule order without duplicates; out-of-window campaigns are dropped', () => {
    const rules = compileRules(
      makeOrg({
        addons: [
          addon('spring', { kind: 'campaign', from: '2026-03-01', until: '2026-04-01' }),
          addon('summer', { kind: 'campaign', from: '2026-06-01', until: '2026-09-01' }),
          addon('legal', { kind: 'disclaimer', position: 'bottom' }),
          addon('eco', { kind: 'disclaimer', position: 'bottom' }),
        ],
        rules: [
          rule('campaigns', { match: { direction: 'external' }, addons: ['summer', 'spring'] }),
          rule('external', { match: { direction: 'external' }, addons: ['legal', 'spring'] }),
          rule('default', { template: 'default', addons: ['eco', 'legal'] }),
        ],
      }),
    );
    const sel = rules.select(input({ recipients: ['x@partner.example'] }));
    expect(sel.addons).to.deep.equal(['spring', 'legal', 'eco']);
    expect(reasonsOf(sel, 'campaigns')).to.include('add-on summer: dropped, campaign outside its window (2026-03-15T12:00:00.000Z is before the start 2026-06-01)');
    expect(reasonsOf(sel, 'campaigns')).to.include('add-on spring: added (campaign, top)');
    expect(reasonsOf(sel, 'external')).to.include('add-on spring: already added by rule campaigns');
    expect(reasonsOf(sel, 'default')).to.include('add-on legal: already added by rule external');
    const later = rules.select(input({ recipients: ['x@partner.example'], now: new Date('2026-04-01T00:00:00Z') }));
    expect(later.addons).to.deep.equal(['legal', 'eco']);
    expect(reasonsOf(later, 'campaigns')).to.include('add-on spring: dropped, campaign outside its window (2026-04-01T00:00:00.000Z is not before the end 2026-04-01)');
    const internal = rules.select(input());
    expect(internal.addons).to.deep.equal(['eco', 'legal']);
  });

  it('noSignature: the winning assignment suppresses the signature, add-ons still apply', () => {
    const org = makeOrg({
      addons: [addon('legal', { kind: 'disclaimer', position: 'bottom' })],
      rules: [
        rule('sales-none', { match: { groups: ['Sales EMEA'] }, noSignature: true, skipIfInThread: true }),
        rule('default', { template: 'default', addons: ['legal'] }),
      ],
    });
    const sel = compileRules(org).select(input());
    expect(sel.noSignature).to.equal(true);
    expect(sel.templateId).to.equal(undefined);
    expect(sel.templateRule).to.equal('sales-none');
    expect(sel.level).to.equal('group');
    expect(sel.addons).to.deep.equal(['legal']);
    expect(sel.skipIfInThread).to.equal(true);
    expect(reasonsOf(sel, 'sales-none')).to.include('assignment: no signature at level group: chosen');
    // Outranked by a user-level template, noSignature does not apply.
    org.rules.push(rule('alice', { match: { senders: ['alice@contoso.com'] }, template: 'alice' }));
    const outranked = compileRules(org).select(input());
    expect(outranked.noSignature).to.equal(false);
    expect(outranked.templateId).to.equal('alice');
    expect(outranked.skipIfInThread).to.equal(false);
  });

  it('skipIfInThread comes from the winning rule only', () => {
    const rules = compileRules(
      makeOrg({
        rules: [rule('default', { template: 'default', skipIfInThread: true }), rule('alice', { match: { senders: ['alice@contoso.com'] }, template: 'alice' })],
      }),
    );
    expect(rules.select(input()).skipIfInThread).to.equal(false);
    expect(rules.select(input({ sender: 'bob@contoso.com', user: undefined })).skipIfInThread).to.equal(true);
  });

  it('every rule gets exactly one trace entry, in rule order', () => {
    const ids = ['a', 'b', 'c', 'd', 'e'];
    const rules = compileRules(
      makeOrg({ rules: [rule('a', { enabled: false }), rule('b', { match: { kinds: ['reply'] } }), rule('c'), rule('d', { stop: true }), rule('e')] }),
    );
    const sel = rules.select(input());
    expect(sel.trace.map((t) => t.ruleId)).to.deep.equal(ids);
    expect(sel.trace.map((t) => t.matched)).to.deep.equal([false, false, true, true, false]);
    expect(sel.trace.every((t) => t.reasons.length > 0)).to.equal(true);
  });
});

describe('rules: compile-time errors', () => {
  it('refuses unknown templates and add-ons, duplicate ids and bad dates, naming the rule', () => {
    expect(() => compileRules(makeOrg({ rules: [rule('r1', { template: 'nope' })] }))).to.throw(/rule "r1" \(rules\[0\]\): template "nope" is not defined/);
    expect(() => compileRules(makeOrg({ rules: [rule('r1'), rule('r2', { replyTemplate: 'gone' })] }))).to.throw(/rule "r2" \(rules\[1\]\): replyTemplate "gone"/);
    expect(() => compileRules(makeOrg({ rules: [rule('r1', { addons: ['missing'] })] }))).to.throw(/rule "r1" \(rules\[0\]\): add-on "missing" is not defined/);
    expect(() => compileRules(makeOrg({ rules: [rule('r1'), rule('r1')] }))).to.throw(/rule "r1" \(rules\[1\]\): duplicate rule id/);
    expect(() => compileRules(makeOrg({ rules: [rule('r1', { match: { from: 'next tuesday' } })] }))).to.throw(/rule "r1" \(rules\[0\]\)\.match\.from: "next tuesday" is not an ISO 8601 date/);
    expect(() => compileRules(makeOrg({ rules: [rule('r1', { except: [{ until: '2026-13-45' }] })] }))).to.throw(/rules\[0\]\)\.except\[0\]\.until/);
    expect(() => compileRules(makeOrg({ rules: [rule('r1', { match: { from: '2026-05-01', until: '2026-04-01' } })] }))).to.throw(/until 2026-04-01 is not after from 2026-05-01/);
    expect(() => compileRules(makeOrg({ rules: [], addons: [addon('c', { kind: 'campaign', from: 'soon' })] }))).to.throw(/add-on "c" \(addons\/c\.html\.ejs\) from: "soon"/);
  });

  it('keeps the config version', () => {
    expect(compileRules(makeOrg({ rules: [] })).version).to.equal('test-1');
  });
});
