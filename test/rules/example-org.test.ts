// The example organization end to end through rules and templates: the files
// an administrator copies must select and render what their comments promise.
import { expect } from 'chai';
import path from 'node:path';
import { Parser } from 'htmlparser2';
import { loadOrgFolder, type OrgConfig } from '../../appliance/src/config';
import { applyUserOverrides, loadDirectoryFile, type DirectorySnapshot } from '../../appliance/src/directory';
import { compileRules, type RuleInput, type RuleSet } from '../../appliance/src/rules';
import { compileTemplates, type TemplateSet } from '../../appliance/src/signature/templates';

const EXAMPLE = path.resolve(__dirname, '../../config/examples/contoso');
const IN_CAMPAIGN = new Date('2026-12-01T09:00:00Z');
const AFTER_CAMPAIGN = new Date('2027-01-05T09:00:00Z');

describe('rules and templates over the example organization', () => {
  let org: OrgConfig;
  let directory: DirectorySnapshot;
  let rules: RuleSet;
  let templates: TemplateSet;

  before(async () => {
    org = await loadOrgFolder(EXAMPLE);
    directory = applyUserOverrides(await loadDirectoryFile(path.join(EXAMPLE, 'directory.yaml')), org.userAttributes);
    rules = compileRules(org);
    templates = compileTemplates(org);
  });

  function select(sender: string, extra: Partial<RuleInput> = {}) {
    return rules.select({ sender, user: directory.lookup(sender), recipients: ['client@fabrikam.example'], subject: 'Proposal', body: '', kind: 'new', now: IN_CAMPAIGN, ...extra });
  }

  it('the CEO gets her own signature, the legal notice and the campaign on new external mail', () => {
    const sel = select('ingrid.halvorsen@contoso.com');
    expect(sel.templateId).to.equal('ceo');
    expect(sel.templateRule).to.equal('ceo');
    expect(sel.level).to.equal('user');
    expect(sel.addons).to.deep.equal(['legal-disclaimer', 'winter-campaign']);
    expect(sel.skipIfInThread).to.equal(true);
    // Through an alias, too; replies get the short signature and no campaign.
    expect(select('CEO@contoso.com').templateId).to.equal('ceo');
    const reply = select('ingrid.halvorsen@contoso.com', { kind: 'reply' });
    expect(reply.templateId).to.equal('reply');
    expect(reply.addons).to.deep.equal(['legal-disclaimer']);
    expect(select('ingrid.halvorsen@contoso.com', { now: AFTER_CAMPAIGN }).addons).to.deep.equal(['legal-disclaimer']);
  });

  it('sales (also through a nested group) beats the domain and default rules', () => {
    for (const sender of ['tom.okafor@contoso.com', 'priya.natarajan@contoso.co.uk']) {
      const sel = select(sender);
      expect(sel.templateId, sender).to.equal('sales');
      expect(sel.level).to.equal('group');
    }
  });

  it('UK senders outside sales get the domain rule, others the default; Legal gets no campaign', () => {
    const uk = select('sophie.laurent@contoso.co.uk');
    expect([uk.templateRule, uk.templateId, uk.level]).to.deep.equal(['uk-domain', 'default', 'domain']);
    const it = select('daniel.kim@contoso.com');
    expect([it.templateRule, it.templateId, it.level]).to.deep.equal(['default', 'default', 'default']);
    const legal = select('elena.rossi@contoso.com');
    expect(legal.addons).to.deep.equal(['legal-disclaimer']);
    expect(legal.trace.find((t) => t.ruleId === 'winter-campaign')?.reasons.at(-1)).to.match(/^except #1 applies, so the rule does not match: groups: yes, sender is a member of Legal/);
  });

  it('the scanner and internal UK mail stay unsigned, and stop evaluation', () => {
    const scanner = select('scanner@contoso.com');
    expect(scanner.noSignature).to.equal(true);
    expect(scanner.templateId).to.equal(undefined);
    expect(scanner.addons).to.deep.equal([]);
    expect(scanner.trace.slice(1).every((t) => t.reasons[0] === 'not evaluated: rule scanner-no-signature stopped')).to.equal(true);
    const ukInternal = select('daniel.kim@contoso.com', { recipients: ['sophie.laurent@contoso.co.uk'] });
    expect(ukInternal.noSignature).to.equal(true);
    expect(ukInternal.matchedRules).to.deep.equal(['uk-internal-no-signature']);
  });

  it('every user renders every template and add-on without markup from their attributes', () => {
    let rendered = 0;
    for (const user of directory.users()) {
      for (const kind of ['new', 'reply'] as const) {
        const sel = select(user.mail, { kind });
        const context = { user, sender: user.mail, org, now: IN_CAMPAIGN, kind };
        const snippets = [...(sel.templateId ? [templates.render(sel.templateId, context)] : []), ...sel.addons.map((a) => templates.renderAddon(a, context))];
        for (const snippet of snippets) {
          const tags: string[] = [];
          new Parser({ onopentag: (name, attribs) => tags.push(name, ...Object.keys(attribs).filter((a) => a.startsWith('on'))) }).end(snippet.html);
          expect(tags).to.not.include('script');
          expect(tags.filter((t) => t.startsWith('on'))).to.deep.equal([]);
          expect(snippet.text).to.not.match(/\n\s*\n\s*\n|\s$/);
          rendered++;
        }
        if (sel.templateId) {
          const sig = templates.render(sel.templateId, context);
          expect(sig.html).to.contain(String(user.attributes.displayName).replace(/&/g, '&amp;'));
          expect(sig.text).to.contain(String(user.attributes.displayName));
        }
      }
    }
    expect(rendered).to.be.greaterThan(10);
  });

  it('the default signature: embedded logo, overrides applied, empty lines gone', () => {
    const user = directory.lookup('tom.okafor@contoso.com')!;
    const out = templates.render('sales', { user, sender: user.mail, org, now: IN_CAMPAIGN, kind: 'new' });
    expect(out.images.map((i) => i.cid)).to.have.length(1);
    expect(out.images[0].cid).to.match(/^logo\.[0-9a-f]{8}@signet$/);
    expect(out.html).to.contain(`src="cid:${out.images[0].cid}"`);
    expect(out.html).to.contain('href="https://outlook.office.com/bookwithme/user/tom.okafor@contoso.com"');
    const banner = templates.renderAddon('winter-campaign', { user, sender: user.mail, org, now: IN_CAMPAIGN, kind: 'new' });
    expect(banner.images).to.deep.equal([]);
    expect(banner.html).to.contain('src="https://www.contoso.com/assets/email/winter-2026.png"');
  });
});
