// Builds OrgConfig objects for rule tests.
import type { AddonSource, OrgConfig, RuleSource, TemplateSource } from '../../appliance/src/config';
import type { DirectoryUser } from '../../appliance/src/directory';

export function template(id: string, html = `<p>${id}</p>`, text?: string): TemplateSource {
  return { id, html, text, file: `templates/${id}.html.ejs` };
}

export function addon(id: string, extra: Partial<AddonSource> = {}): AddonSource {
  return { id, kind: 'banner', position: 'top', html: `<p>${id}</p>`, file: `addons/${id}.html.ejs`, ...extra };
}

export function rule(id: string, extra: Partial<RuleSource> = {}): RuleSource {
  return { id, enabled: true, match: {}, ...extra };
}

export function makeOrg(parts: { rules: RuleSource[]; templates?: TemplateSource[]; addons?: AddonSource[]; acceptedDomains?: string[] }): OrgConfig {
  const templates = parts.templates ?? ['default', 'reply', 'sales', 'alice', 'contoso', 'short'].map((id) => template(id));
  return {
    orgId: 'contoso',
    version: 'test-1',
    displayName: 'Contoso Ltd',
    acceptedDomains: parts.acceptedDomains ?? ['contoso.com', 'Contoso.co.uk'],
    options: { placeholder: '{{signature}}', dkim: 'remove', maxEditablePartBytes: 1 << 20, signAutoReplies: false, calendar: 'leave', separators: [], replaceSignOffs: false, signOffs: [], plainTextToHtml: false, extraHeaders: {} },
    templates: new Map(templates.map((t) => [t.id, t])),
    addons: new Map((parts.addons ?? []).map((a) => [a.id, a])),
    rules: parts.rules,
    images: new Map(),
    userAttributes: new Map(),
  };
}

export const alice: DirectoryUser = {
  id: 'u-alice',
  mail: 'alice@contoso.com',
  aliases: ['alice.smith@contoso.co.uk', 'a.smith@contoso.com'],
  attributes: { displayName: 'Alice Smith' },
  groups: ['g-sales-id', 'Sales EMEA', 'All Staff'],
};
