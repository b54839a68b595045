// The organization's configuration as the engine consumes it: plain, validated
// data. Where it comes from (a folder of files, a sealed bundle) is the config
// module's business; everything downstream only sees an OrgConfig.

/** How the engine treats a DKIM-Signature that its edit invalidates. */
export type DkimPolicy = 'remove' | 'keep';

export interface OrgOptions {
  /** Text a sender may type to place the signature by hand. Default `{{signature}}`. */
  placeholder: string;
  /** Default `remove`: Exchange Online signs again after the message comes back. */
  dkim: DkimPolicy;
  /** An edited body part larger than this (decoded bytes) makes the message pass through unchanged. */
  maxEditablePartBytes: number;
  /** Sign auto-replies (Auto-Submitted other than `no`, OOF markers). Default false. */
  signAutoReplies: boolean;
  /** Calendar messages: never touched, or invitations signed in their text/html part only. */
  calendar: 'leave' | 'html-only';
  /** More lines that start a quoted thread (whole line; `*` any text); empty by default. */
  separators: string[];
  /** Replace a mail app's own sign-off that ends the new text by the signature. Default false. */
  replaceSignOffs: boolean;
  /** More sign-offs to replace besides the built-in ones (exact line text); empty by default. */
  signOffs: string[];
  /** Give a plain-text-only message an HTML alternative that carries the HTML signature. Default false. */
  plainTextToHtml: boolean;
  /** Extra headers to add besides the stamp (name → value); empty by default. */
  extraHeaders: Record<string, string>;
}

export interface TemplateSource {
  id: string;
  /** EJS source of the HTML form (trusted admin content). */
  html: string;
  /** EJS source of the text form; absent → rendered from the HTML with html-to-text. */
  text?: string;
  /** Where it came from, for error messages: e.g. `templates/default.html.ejs`. */
  file: string;
}

export type AddonKind = 'banner' | 'disclaimer' | 'campaign';

export interface AddonSource {
  id: string;
  kind: AddonKind;
  /** `top` (above the new text) or `bottom` (below the signature). Banners default to top, disclaimers to bottom. */
  position: 'top' | 'bottom';
  html: string;
  text?: string;
  /** Campaign window, inclusive start / exclusive end (ISO 8601). */
  from?: string;
  until?: string;
  file: string;
}

export interface ImageAsset {
  /** Name used in templates: `<%= image('logo') %>` (or `images.logo`). */
  id: string;
  contentType: string;
  data: Buffer;
  /** `embed` → CID part; `link` → `url` is used. */
  mode: 'embed' | 'link';
  url?: string;
  file: string;
}

export type MessageKind = 'new' | 'reply' | 'forward';

/** Conditions of a rule; every present condition must hold. Lists are OR within themselves. */
export interface RuleMatch {
  senders?: string[];          // addresses
  groups?: string[];           // group ids or display names from the directory
  senderDomains?: string[];
  direction?: 'internal' | 'external' | 'any'; // internal = all recipients internal; external = any recipient external
  recipientDomains?: string[];
  subjectContains?: string[];
  bodyContains?: string[];
  kinds?: MessageKind[];
  from?: string;               // date window (ISO 8601), inclusive
  until?: string;              // exclusive
}

export interface RuleSource {
  id: string;
  description?: string;
  enabled: boolean;
  match: RuleMatch;
  except?: RuleMatch[];
  /** Signature template for new messages. */
  template?: string;
  /** Variant for replies and forwards (e.g. a short one); defaults to `template`. */
  replyTemplate?: string;
  /** Add-ons that stack. */
  addons?: string[];
  /** Do not add the signature again when the sender's own signature (this org's) is already in the quoted thread. */
  skipIfInThread?: boolean;
  /** Stop evaluating later rules once this one matched. */
  stop?: boolean;
  /** No signature at all for matching messages (still stamped). */
  noSignature?: boolean;
}

export interface OrgConfig {
  orgId: string;
  /** Monotonic version label of this configuration (a bundle's version, or `local` for a folder). */
  version: string;
  displayName?: string;
  acceptedDomains: string[];
  options: OrgOptions;
  templates: Map<string, TemplateSource>;
  addons: Map<string, AddonSource>;
  rules: RuleSource[];
  images: Map<string, ImageAsset>;
  /** Per-user attribute overrides (address → attribute → value), applied over the directory. */
  userAttributes: Map<string, Record<string, string>>;
}
