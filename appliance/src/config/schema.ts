// The on-disk format of an organization folder, one strict zod schema per file.
// These schemas check each file on its own (types, shapes, formats, unknown
// keys); checks that need several files (a rule naming a template, an image
// used by a template) live in the loader. `npm run schema` exports them as
// JSON Schema into config/schema/ so editors validate YAML as it is typed.
import { z } from 'zod';

export const KIB = 1024;
export const MIB = 1024 * KIB;

/** An embedded image travels in every signed message: keep it small. */
export const MAX_EMBEDDED_IMAGE_BYTES = 500 * KIB;
/** A linked image's file is only a local copy; still refuse absurd files. */
export const MAX_FILE_BYTES = 10 * MIB;
export const DEFAULT_MAX_EDITABLE_PART_BYTES = 4 * MIB;
export const DEFAULT_PLACEHOLDER = '{{signature}}';

// Ids end up in the X-Signet-Processed header and in file names: keep them to a safe alphabet.
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
export const ORG_ID_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
// Host names: dot-separated labels of letters, digits and inner hyphens; the
// last label is alphabetic or an IDN (punycode) label.
export const DOMAIN_PATTERN =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})$/;
// RFC 5322 dot-atom local part (no quoted local parts: Exchange Online does not issue them).
export const ADDRESS_PATTERN =
  /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})$/;
// A date, or a date and time with an optional offset (the rules engine reads
// both without an offset as UTC, never in the node's own time zone).
export const DATE_PATTERN = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})?)?$/;
// Attribute names are used as `user.<name>` in templates; a leading letter also rules out `__proto__`.
export const ATTRIBUTE_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
/** Attributes every template can test without a ReferenceError or "undefined" in the output (empty when the directory has none). */
export const STANDARD_ATTRIBUTES: readonly string[] = [
  'displayName', 'givenName', 'surname', 'jobTitle', 'department', 'companyName',
  'mobilePhone', 'businessPhones', 'officeLocation', 'streetAddress', 'city', 'state',
  'postalCode', 'country', 'employeeId', 'faxNumber',
  ...Array.from({ length: 15 }, (_, i) => `extensionAttribute${i + 1}`),
];
/** Names a template sees on `user` besides the attributes; an attribute must not shadow them. */
export const RESERVED_ATTRIBUTE_NAMES = ['mail', 'aliases', 'groups', 'id', 'attributes'] as const;
// RFC 5322 field name: printable ASCII except the colon.
export const HEADER_NAME_PATTERN = /^[!-9;-~]{1,76}$/;
export const HEADER_VALUE_PATTERN = /^[^\r\n\0]*$/;
// no user name before the host: https://www.contoso.com@cdn.example/ reads as contoso and loads from cdn.example
export const HTTP_URL_PATTERN = /^https?:\/\/[^\s"'<>\\/?#@]+(?:[/?#][^\s"'<>\\]*)?$/;
// A file inside the org folder: relative, no parent steps, no backslashes.
export const RELATIVE_FILE_PATTERN = /^(?!\/)(?!.*(?:^|\/)\.\.(?:\/|$))[^\\\0]+$/;

/**
 * The instant a DATE_PATTERN value names, as the rules engine reads it: a date
 * alone is midnight UTC and a time without offset is UTC too (Date.parse would
 * read the latter in the local time zone of whoever runs the check).
 */
export function instantOf(value: string): number {
  const zoned = value.length === 10 || /(?:Z|[+-]\d{2}:\d{2})$/i.test(value);
  return Date.parse(zoned ? value : `${value}Z`);
}

/** The instant of a date as rules read it (DATE_PATTERN, a real calendar day, UTC without an offset), else undefined. */
export function parseInstant(value: string): number | undefined {
  return DATE_PATTERN.test(value) && isRealDate(value) ? instantOf(value) : undefined;
}

/** True when an ISO date string names a real calendar date (Date.parse accepts 2026-02-30). */
export function isRealDate(value: string): boolean {
  // zod runs every check, so a value that failed the pattern arrives here too.
  if (!DATE_PATTERN.test(value)) return true;
  const time = Date.parse(value);
  if (Number.isNaN(time)) return false;
  const day = value.slice(0, 10);
  if (value.length === 10) return new Date(time).toISOString().slice(0, 10) === day;
  // With an offset the UTC day may differ; check the written day on its own.
  return new Date(`${day}T00:00:00Z`).toISOString().slice(0, 10) === day;
}

const id = (what: string) =>
  z
    .string()
    .regex(ID_PATTERN, `${what} ids are 1-64 letters, digits, '-' or '_', starting with a letter or digit`);

const domain = z.string().max(253).regex(DOMAIN_PATTERN, 'malformed domain name');

// In rule conditions `*.contoso.com` stands for the subdomains of contoso.com.
export const DOMAIN_OR_WILDCARD_PATTERN = new RegExp(`^(?:\\*\\.)?${DOMAIN_PATTERN.source.slice(1)}`);
const domainCondition = z
  .string()
  .max(255)
  .regex(DOMAIN_OR_WILDCARD_PATTERN, 'malformed domain name (a domain, or *.domain for its subdomains)');

const address = z.string().max(254).regex(ADDRESS_PATTERN, 'malformed email address');

const isoDate = z
  .string()
  .regex(DATE_PATTERN, 'dates are YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS] with an optional Z or offset like +01:00')
  .refine(isRealDate, 'not a real calendar date');

const text = z.string().refine((value) => value.trim().length > 0, 'must not be empty');

const relativeFile = z
  .string()
  .min(1)
  .regex(RELATIVE_FILE_PATTERN, 'must be a relative path inside the organization folder (no "..")');

const attributeName = z
  .string()
  .regex(ATTRIBUTE_NAME_PATTERN, 'attribute names are letters, digits and _, starting with a letter')
  .refine(
    (name) => !(RESERVED_ATTRIBUTE_NAMES as readonly string[]).includes(name),
    `reserved name (${RESERVED_ATTRIBUTE_NAMES.join(', ')} are not attributes)`,
  );

// ---------------------------------------------------------------- org.yaml

export const imageSchema = z
  .strictObject({
    id: id('image').describe("Name used in templates: image('logo')."),
    file: relativeFile
      .optional()
      .describe('The image file, relative to images/ (PNG, JPEG or GIF). Required for mode embed.'),
    mode: z
      .enum(['embed', 'link'])
      .default('embed')
      .describe('embed: sent inside each message as a CID part (at most 500 KB); link: the url is used.'),
    url: z
      .string()
      .regex(HTTP_URL_PATTERN, 'must be an http:// or https:// URL, with no user name before the host')
      .optional()
      .describe('Public URL of the image, for mode link.'),
  })
  .describe('An image templates can use.');

/**
 * A placeholder a sender types on purpose and nobody writes by chance: a plain
 * word ("signature"), a short mark ("--") or a letter would put the signature
 * wherever it first occurs in an ordinary message.
 */
export function isDistinctivePlaceholder(value: string): boolean {
  const text = value.trim();
  return [...text].length >= 5 && /[\p{L}\p{N}]/u.test(text) && /[^\p{L}\p{N}\s]/u.test(text);
}

export const optionsSchema = z
  .strictObject({
    placeholder: z
      .string()
      .max(200)
      .refine((value) => value.trim().length > 0, 'the placeholder must not be empty')
      .refine(
        (value) => value.trim().length === 0 || isDistinctivePlaceholder(value),
        'the placeholder must never turn up in ordinary text (the first one in a message is replaced by the signature): at least 5 characters, letters or digits with brackets or other marks, like {{signature}} or [[sig]]',
      )
      .default(DEFAULT_PLACEHOLDER)
      .describe('Text a sender may type to place the signature by hand.'),
    dkim: z
      .enum(['remove', 'keep'])
      .default('remove')
      .describe('What to do with a DKIM-Signature the edit invalidates. Exchange Online signs again on the way out.'),
    maxEditablePartBytes: z
      .number()
      .int()
      .min(KIB)
      .max(256 * MIB)
      .default(DEFAULT_MAX_EDITABLE_PART_BYTES)
      .describe('A body part larger than this (decoded bytes) makes the message pass through unchanged.'),
    signAutoReplies: z.boolean().default(false).describe('Sign automatic replies (out of office).'),
    calendar: z
      .enum(['leave', 'html-only'])
      .default('leave')
      .describe('Calendar messages: never touched, or invitations signed in their text/html part only.'),
    separators: z
      .array(
        z
          .string()
          .max(200)
          .refine((value) => !/[\r\n]/.test(value), 'a separator is one line')
          .refine(
            (value) => value.replace(/[\s*]/g, '').length >= 6,
            'a separator needs at least 6 characters besides blanks and * (a shorter one would cut ordinary messages)',
          )
          .refine((value) => (value.match(/\*/g) ?? []).length <= 3, 'at most three * in a separator'),
      )
      .default([])
      .describe(
        'More lines that start the quoted thread of a reply or forward, besides the built-in ones: the whole line, case and blanks aside; * stands for any text (e.g. "Dne * napsal(a):").',
      ),
    replaceSignOffs: z
      .boolean()
      .default(false)
      .describe(
        'Replace a mail app\'s own sign-off ("Sent from my iPhone", "Get Outlook for Android"…) by the signature when it is the last line of the new text.',
      ),
    signOffs: z
      .array(
        z
          .string()
          .max(120)
          .refine((value) => value.trim().length > 0, 'a sign-off must not be empty')
          .refine((value) => !/[\r\n]/.test(value), 'a sign-off is one line'),
      )
      .default([])
      .describe('More sign-offs to replace (exact text of the whole line, case and blanks aside), e.g. an app\'s or an add-in\'s; needs replaceSignOffs.'),
    plainTextToHtml: z
      .boolean()
      .default(false)
      .describe(
        'Turn a message written in plain text only into plain text and HTML, so it gets the HTML signature (logo, links) as well as the text one; the text part stays as it was, with the text signature.',
      ),
    extraHeaders: z
      .record(
        z.string().regex(HEADER_NAME_PATTERN, 'header names are printable ASCII without ":" or spaces'),
        z.string().max(900).regex(HEADER_VALUE_PATTERN, 'header values must be one line'),
      )
      .default({})
      .describe('Headers to add to every processed message besides the stamp.'),
  })
  .refine((options) => options.replaceSignOffs || options.signOffs.length === 0, {
    message: 'signOffs are only replaced with replaceSignOffs: true',
    path: ['signOffs'],
  })
  .describe('How the engine treats messages of this organization.');

export const orgFileSchema = z
  .strictObject({
    orgId: z
      .string()
      .regex(ORG_ID_PATTERN, 'org ids are lower-case letters, digits and inner hyphens (at most 63)')
      .describe('Stable id of the organization; stamped on every processed message.'),
    displayName: text.optional().describe('Human-readable name of the organization.'),
    acceptedDomains: z
      .array(domain)
      .min(1)
      .describe("The organization's accepted domains; mail from other domains is refused."),
    options: optionsSchema.prefault({}),
    images: z.array(imageSchema).default([]).describe('Images templates may use, by id.'),
  })
  .meta({ title: 'Signet organization (org.yaml)' });

// -------------------------------------------------------------- rules.yaml

export const matchSchema = z
  .strictObject({
    senders: z.array(address).min(1).optional().describe('Sender addresses (any of them).'),
    groups: z.array(text).min(1).optional().describe('Directory groups, by id or display name, transitively.'),
    senderDomains: z.array(domainCondition).min(1).optional().describe("Sender's domain (any of them); *.domain: its subdomains."),
    direction: z
      .enum(['internal', 'external', 'any'])
      .optional()
      .describe('internal: every recipient is internal; external: at least one recipient is external.'),
    recipientDomains: z
      .array(domainCondition)
      .min(1)
      .optional()
      .describe('At least one recipient in one of these domains; *.domain: its subdomains.'),
    subjectContains: z.array(text).min(1).optional().describe('Subject contains one of these (case-insensitive).'),
    bodyContains: z.array(text).min(1).optional().describe('Body contains one of these (case-insensitive).'),
    kinds: z
      .array(z.enum(['new', 'reply', 'forward']))
      .min(1)
      .optional()
      .describe('Kind of message: new, reply, forward.'),
    from: isoDate.optional().describe('Start of the date window (inclusive); without an offset: UTC.'),
    until: isoDate.optional().describe('End of the date window (exclusive); without an offset: UTC.'),
  })
  .describe('Conditions; every condition present must hold, a list matches when any of its values does.');

export const ruleSchema = z
  .strictObject({
    id: id('rule').describe('Unique id of the rule; it appears in the processed-message stamp.'),
    description: z.string().optional(),
    enabled: z.boolean().default(true),
    match: matchSchema.prefault({}).describe('Conditions; absent or {} matches every message.'),
    except: z.array(matchSchema).optional().describe('The rule does not apply when any of these match.'),
    template: id('template').optional().describe('Signature template for new messages (templates/<id>.html.ejs).'),
    replyTemplate: id('template').optional().describe('Template for replies and forwards; defaults to template.'),
    addons: z.array(id('add-on')).min(1).optional().describe('Add-ons (addons/<id>.yaml) that stack.'),
    skipIfInThread: z.boolean().optional().describe("Do not sign again when the quoted thread already holds the sender's own signature from this organization."),
    stop: z.boolean().optional().describe('Do not evaluate later rules once this one matched.'),
    noSignature: z.boolean().optional().describe('No signature for matching messages.'),
  })
  .describe('One rule; rules are evaluated in order.');

export const rulesFileSchema = z
  .strictObject({
    rules: z.array(ruleSchema).describe('Ordered rules.'),
  })
  .meta({ title: 'Signet rules (rules.yaml)' });

// ------------------------------------------------------- addons/<id>.yaml

export const addonFileSchema = z
  .strictObject({
    kind: z.enum(['banner', 'disclaimer', 'campaign']),
    description: z.string().optional(),
    position: z
      .enum(['top', 'bottom'])
      .optional()
      .describe('top: above the new text; bottom: below the signature. Banners and campaigns default to top, disclaimers to bottom.'),
    from: isoDate.optional().describe('Start of the window in which the add-on is shown (inclusive).'),
    until: isoDate.optional().describe('End of the window (exclusive).'),
    html: text.optional().describe('HTML (EJS) of the add-on, inline.'),
    htmlFile: relativeFile.optional().describe('HTML (EJS) of the add-on in a file, relative to addons/.'),
    text: text.optional().describe('Plain-text form; absent: rendered from the HTML.'),
    textFile: relativeFile.optional().describe('Plain-text form in a file, relative to addons/.'),
  })
  .meta({ title: 'Signet add-on (addons/<id>.yaml)' });

// -------------------------------------------------------------- users.yaml

const overrideValue = z.string().max(2000).nullable();

export const attributeOverridesSchema = z.record(attributeName, overrideValue);

export const usersFileSchema = z
  .strictObject({
    users: z
      .record(address, attributeOverridesSchema)
      .describe('Address → attributes that override the directory (null or "" clears one).'),
  })
  .meta({ title: 'Signet per-user attributes (users.yaml)' });

// ---------------------------------------------------------- directory.yaml

export const directoryGroupSchema = z.strictObject({
  id: text.describe('Group id (a Graph object id or a short name).'),
  name: text.describe('Display name; rules may name a group by id or by name.'),
  memberOf: z.array(text).optional().describe('Groups this group is a member of (ids or names); resolved transitively.'),
});

export const directoryUserSchema = z.strictObject({
  mail: address.describe('Primary SMTP address.'),
  id: text.optional().describe('Directory object id, when known.'),
  aliases: z.array(address).default([]).describe('Other addresses of the same person.'),
  groups: z.array(text).default([]).describe('Groups the user is a direct member of (ids or names).'),
  attributes: z
    .record(attributeName, z.string().max(2000).nullable())
    .default({})
    .describe('displayName, jobTitle, department, mobilePhone, … (empty or null: not set).'),
  photo: z
    .string()
    .min(1)
    .regex(/^(?!\/)/, 'must be a path relative to the folder of directory.yaml, not an absolute one')
    .regex(/^[^\\]*$/, 'must separate folders with /, not a backslash')
    .regex(/^(?!(?:[\s\S]*\/)?\.\.(?:\/|$))/, 'must not step out of the folder of directory.yaml with ".."')
    .regex(/^[^\0]*$/, 'must not contain a NUL character')
    .optional()
    .describe('The user\'s photo (JPEG, PNG or GIF, at most 100 KB), relative to the folder of directory.yaml: photos/ingrid.jpg.'),
});

export const directoryFileSchema = z
  .strictObject({
    groups: z.array(directoryGroupSchema).default([]),
    users: z.array(directoryUserSchema),
  })
  .meta({ title: 'Signet local directory (directory.yaml)' });

export type OrgFile = z.output<typeof orgFileSchema>;
export type RulesFile = z.output<typeof rulesFileSchema>;
export type AddonFile = z.output<typeof addonFileSchema>;
export type UsersFile = z.output<typeof usersFileSchema>;
export type DirectoryFile = z.output<typeof directoryFileSchema>;

/** File name in config/schema/ → schema; the YAML files point at these. */
export const FILE_SCHEMAS = {
  'org.schema.json': orgFileSchema,
  'rules.schema.json': rulesFileSchema,
  'addon.schema.json': addonFileSchema,
  'users.schema.json': usersFileSchema,
  'directory.schema.json': directoryFileSchema,
} as const;
