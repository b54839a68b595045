// The preview gallery: every user's signature as the engine would add it to a
// message to an external recipient (new and reply variants, add-ons per the
// rules), on one self-contained HTML page. Embedded images become data: URIs;
// each rendered signature sits in its own sandboxed <iframe srcdoc> so its
// styles neither leak into the page nor pick up the page's; the text forms are
// shown escaped in <pre>. The page's Content-Security-Policy (inherited by the
// frames) allows no script and no network: linked images show as their alt
// text and are listed, so opening a preview contacts no server.
import type { OrgConfig } from '../config';
import { applyUserOverrides, type DirectorySnapshot, type DirectoryUser } from '../directory';
import { escapeHtml, type InlineImage, type MessageKind } from '../mime';
import { compileRules, normalizeAddress } from '../rules';
import { compileTemplates, type RenderedSnippet } from '../signature';

/** The recipient used to evaluate rules: outside every accepted domain (RFC 2606 reserved name). */
export const PREVIEW_RECIPIENT = 'recipient@external.example';

export interface PreviewVariant {
  kind: MessageKind;
  templateId?: string;
  rules: string[];
  addons: string[];
  /** HTML as it would be inserted (cid: references), or undefined when nothing is added. */
  html?: string;
  text?: string;
  images: InlineImage[];
  /** Why nothing is added, or the render error. */
  note?: string;
  error?: string;
}

export interface UserPreview {
  address: string;
  displayName?: string;
  variants: PreviewVariant[];
}

export interface Gallery {
  html: string;
  users: UserPreview[];
  /** Number of renders that failed (their error is shown in the gallery). */
  errors: number;
  /** Height in CSS pixels of the laid-out page (fixed-size blocks), for screenshots. */
  height: number;
}

export interface GalleryOptions {
  /** Only this user (any of their addresses). */
  user?: string;
  now?: Date;
}

const KINDS: MessageKind[] = ['new', 'reply'];

function knownUsers(org: OrgConfig, directory: DirectorySnapshot | undefined): DirectoryUser[] {
  const users = directory ? [...applyUserOverrides(directory, org.userAttributes).users()] : [];
  const seen = new Set(users.flatMap((u) => [u.mail, ...u.aliases]));
  // People known only from the org's per-user attributes are senders too (as in the engine).
  for (const [address, attributes] of org.userAttributes) {
    const a = normalizeAddress(address);
    if (!seen.has(a)) users.push({ mail: a, aliases: [], attributes: { ...attributes }, groups: [] });
  }
  return users.sort((a, b) => a.mail.localeCompare(b.mail));
}

function join(snippets: RenderedSnippet[]): { html: string; text: string; images: InlineImage[] } {
  const images = new Map<string, InlineImage>();
  for (const s of snippets) for (const i of s.images) images.set(i.cid, i);
  return { html: snippets.map((s) => s.html).join(''), text: snippets.map((s) => s.text).filter(Boolean).join('\n\n'), images: [...images.values()] };
}

export function renderPreviews(org: OrgConfig, directory: DirectorySnapshot | undefined, options: GalleryOptions = {}): UserPreview[] {
  const rules = compileRules(org);
  const templates = compileTemplates(org);
  const now = options.now ?? new Date();
  let users = knownUsers(org, directory);
  if (options.user) {
    const wanted = normalizeAddress(options.user);
    users = users.filter((u) => u.mail === wanted || u.aliases.includes(wanted));
    if (!users.length) throw new Error(`--user: ${options.user} is neither in the directory nor in the organization's user attributes`);
  }
  return users.map((user) => ({
    address: user.mail,
    displayName: user.attributes.displayName,
    variants: KINDS.map((kind): PreviewVariant => {
      const selection = rules.select({ sender: user.mail, user, recipients: [PREVIEW_RECIPIENT], subject: '', body: '', kind, now });
      const templateId = selection.noSignature ? undefined : selection.templateId;
      const variant: PreviewVariant = { kind, templateId, rules: selection.matchedRules, addons: selection.addons, images: [] };
      if (!selection.matchedRules.length) {
        variant.note = 'no rule matches: the message is relayed unchanged';
        return variant;
      }
      try {
        const ctx = { user, sender: user.mail, org, now, kind };
        const addons = selection.addons.map((id) => ({ position: org.addons.get(id)?.position ?? 'bottom', snippet: templates.renderAddon(id, ctx) }));
        const parts = [
          ...addons.filter((a) => a.position === 'top').map((a) => a.snippet),
          ...(templateId ? [templates.render(templateId, ctx)] : []),
          ...addons.filter((a) => a.position === 'bottom').map((a) => a.snippet),
        ];
        if (!parts.length) {
          variant.note = 'the winning rule adds no signature and no add-on';
          return variant;
        }
        Object.assign(variant, join(parts));
      } catch (error) {
        variant.error = (error as Error).message;
      }
      return variant;
    }),
  }));
}

/** cid: references → data: URIs of the same bytes, so the page needs nothing else. */
export function inlineImages(html: string, images: InlineImage[]): string {
  let out = html;
  for (const image of images) out = out.split(`cid:${image.cid}`).join(`data:${image.contentType};base64,${image.data.toString('base64')}`);
  return out;
}

const FRAME_HEIGHT = 340;
const TEXT_HEIGHT = 220;
const SECTION_HEIGHT = 60 + 28 + FRAME_HEIGHT + 12 + TEXT_HEIGHT + 48;
const HEADER_HEIGHT = 120;
const CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-src 'self' about:";

function linkedImages(html: string): string[] {
  return [...new Set([...html.matchAll(/<img\b[^>]*\bsrc\s*=\s*["']?(https?:[^"'\s>]+)/gi)].map((m) => m[1]!))];
}

function frameDocument(html: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="${CSP}"></head><body style="margin:12px;background:#fff;">${html}</body></html>`;
}

function variantCell(v: PreviewVariant): string {
  const title = `${v.kind === 'new' ? 'New message' : 'Reply'}${v.templateId ? ` · template ${v.templateId}` : ''}${v.addons.length ? ` · add-ons ${v.addons.join(', ')}` : ''}`;
  let body: string;
  if (v.error) {
    body = `<div class="frame error"><strong>Render failed:</strong><pre>${escapeHtml(v.error)}</pre></div><pre class="text"></pre>`;
  } else if (v.html === undefined) {
    body = `<div class="frame empty">${escapeHtml(v.note ?? 'nothing is added')}</div><pre class="text"></pre>`;
  } else {
    const html = inlineImages(v.html, v.images);
    const linked = linkedImages(html);
    body =
      `<iframe sandbox="" title="${escapeHtml(title)}" srcdoc="${escapeHtml(frameDocument(html))}"></iframe>` +
      `<pre class="text">${escapeHtml(v.text ?? '')}</pre>` +
      (linked.length ? `<p class="linked">Linked images (not loaded here): ${linked.map(escapeHtml).join(', ')}</p>` : '');
  }
  return `<div class="variant"><h3>${escapeHtml(title)}</h3><p class="rules">Rules: ${escapeHtml(v.rules.join(', ') || 'none')}</p>${body}</div>`;
}

export function buildGallery(org: OrgConfig, directory: DirectorySnapshot | undefined, options: GalleryOptions = {}): Gallery {
  const now = options.now ?? new Date();
  const users = renderPreviews(org, directory, { ...options, now });
  const errors = users.reduce((n, u) => n + u.variants.filter((v) => v.error).length, 0);
  const sections = users.map(
    (u) =>
      `<section class="user" data-user="${escapeHtml(u.address)}"><h2>${escapeHtml(u.displayName ?? u.address)} <span>&lt;${escapeHtml(u.address)}&gt;</span></h2><div class="variants">${u.variants.map(variantCell).join('')}</div></section>`,
  );
  const title = `Signature preview: ${org.displayName ?? org.orgId} (config ${org.version})`;
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<title>${escapeHtml(title)}</title>
<style>
  body { margin: 0; padding: 24px 32px; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: #1f2933; background: #eef1f4; }
  header { height: ${HEADER_HEIGHT - 24}px; }
  header h1 { font-size: 20px; margin: 0 0 6px; }
  header p { margin: 0; color: #52606d; }
  section.user { box-sizing: border-box; height: ${SECTION_HEIGHT - 16}px; margin: 0 0 16px; padding: 12px 16px; background: #fff; border: 1px solid #cbd2d9; border-radius: 6px; overflow: hidden; }
  section.user h2 { font-size: 16px; margin: 0 0 8px; height: 24px; }
  section.user h2 span { color: #7b8794; font-weight: normal; }
  .variants { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
  .variant h3 { font-size: 13px; margin: 0; height: 18px; overflow: hidden; white-space: nowrap; text-overflow: ellipsis; }
  .variant p.rules { font-size: 12px; color: #7b8794; margin: 0 0 6px; height: 16px; overflow: hidden; }
  iframe, .frame { box-sizing: border-box; width: 100%; height: ${FRAME_HEIGHT}px; border: 1px solid #d9e2ec; background: #fff; }
  .frame { padding: 12px; color: #7b8794; }
  .frame.error { color: #ab091e; background: #ffe3e3; }
  pre.text { box-sizing: border-box; height: ${TEXT_HEIGHT}px; margin: 12px 0 0; padding: 8px; overflow: auto; background: #f5f7fa; border: 1px solid #d9e2ec; font: 12px/1.35 ui-monospace, "DejaVu Sans Mono", monospace; white-space: pre-wrap; }
  p.linked { font-size: 11px; color: #7b8794; margin: 4px 0 0; }
</style>
</head>
<body>
<header><h1>${escapeHtml(title)}</h1><p>${users.length} user(s); rules evaluated for a message to an external recipient (${PREVIEW_RECIPIENT}) at ${escapeHtml(now.toISOString())}. HTML above, text form below.${errors ? ` <strong>${errors} render error(s).</strong>` : ''}</p></header>
${sections.join('\n')}
</body>
</html>
`;
  return { html, users, errors, height: HEADER_HEIGHT + users.length * SECTION_HEIGHT + 24 };
}
