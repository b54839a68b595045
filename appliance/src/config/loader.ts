// Loads an organization's configuration. Two steps with a clean seam between
// them: readOrgFolder() collects the files that belong to the format into a
// map (relative path → bytes); loadOrgFromFiles() turns such a map into a
// validated OrgConfig without touching the file system, so a sealed bundle
// that carries the same map loads through exactly the same checks.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { AddonSource, ImageAsset, OrgConfig, RuleSource, TemplateSource } from './types';
import { ConfigError, formatPath, type ConfigIssue } from './errors';
import { checkEjsTemplate } from './ejs-check';
import { lintHtmlTemplate } from './template-lint';
import { describeContent, imageTypeFromName, sniffImageType } from './images';
import {
  addonFileSchema,
  DATE_PATTERN,
  ID_PATTERN,
  instantOf,
  isRealDate,
  MAX_EMBEDDED_IMAGE_BYTES,
  MAX_FILE_BYTES,
  orgFileSchema,
  RELATIVE_FILE_PATTERN,
  RESERVED_ATTRIBUTE_NAMES,
  rulesFileSchema,
  STANDARD_ATTRIBUTES,
  usersFileSchema,
  type AddonFile,
  type OrgFile,
  type RulesFile,
} from './schema';
import { didYouMean, editDistance } from './suggest';
import { decodeUtf8, readYamlWithSchema, type PathSegment, type YamlFile } from './yaml-file';

export const ORG_FILE = 'org.yaml';
export const RULES_FILE = 'rules.yaml';
export const USERS_FILE = 'users.yaml';
/** The local directory lives next to the config but is not part of it (Graph replaces it in production). */
export const DIRECTORY_FILE = 'directory.yaml';
const ROOT_FILES = [ORG_FILE, RULES_FILE, USERS_FILE] as const;
const FOLDERS = ['templates', 'addons', 'images'] as const;
/** Bounds on what a folder read may pull in: a config folder is small. */
const MAX_FILES = 2000;
const MAX_DEPTH = 3;

export interface OrgOrigin {
  /** Version label of this configuration (`local` for a folder, the bundle version for a bundle). */
  version: string;
  /** Where it came from, for error messages (a folder path, a bundle name). */
  label: string;
}

function isInside(root: string, candidate: string): boolean {
  const relative = path.relative(root, candidate);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/**
 * Reads the files of an organization folder that belong to the format
 * (org.yaml, rules.yaml, users.yaml, templates/, addons/, images/). Symbolic
 * links are followed only while they stay inside the folder.
 */
export async function readOrgFolder(dir: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const issues: ConfigIssue[] = [];
  let root: string;
  try {
    root = await fs.realpath(dir);
    if (!(await fs.stat(root)).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const problem = code === 'ENOENT' ? 'no such folder' : code === 'ENOTDIR' ? 'not a folder' : String(error);
    throw new ConfigError([{ file: '.', path: '', message: `cannot read the organization folder: ${problem}` }], dir);
  }

  // Resolves one entry: follows a symbolic link only when its target stays inside the folder.
  const resolve = async (relative: string) => {
    const absolute = path.join(root, relative);
    const info = await fs.lstat(absolute).catch(() => undefined);
    if (!info) return undefined;
    if (!info.isSymbolicLink()) return { absolute, info };
    const target = await fs.realpath(absolute).catch(() => undefined);
    if (!target) {
      issues.push({ file: relative, path: '', message: 'symbolic link to nothing (broken link)' });
      return undefined;
    }
    if (!isInside(root, target)) {
      issues.push({ file: relative, path: '', message: 'symbolic link points outside the organization folder; refused' });
      return undefined;
    }
    return { absolute: target, info: await fs.stat(target) };
  };

  const readFile = async (relative: string, absolute: string, size: number) => {
    if (files.size >= MAX_FILES) {
      issues.push({ file: relative, path: '', message: `too many files (the limit is ${MAX_FILES})` });
      return;
    }
    if (size > MAX_FILE_BYTES) {
      issues.push({ file: relative, path: '', message: `file is ${formatBytes(size)}; the limit is ${formatBytes(MAX_FILE_BYTES)}` });
      return;
    }
    files.set(relative, await fs.readFile(absolute));
  };

  const walk = async (relative: string, depth: number): Promise<void> => {
    const entry = await resolve(relative);
    if (!entry) return;
    if (entry.info.isFile()) return readFile(relative, entry.absolute, entry.info.size);
    if (!entry.info.isDirectory() || depth > MAX_DEPTH) return;
    const names = (await fs.readdir(entry.absolute)).filter((name) => !name.startsWith('.')).sort();
    for (const name of names) await walk(`${relative}/${name}`, depth + 1);
  };

  for (const name of ROOT_FILES) {
    const entry = await resolve(name);
    if (entry?.info.isFile()) await readFile(name, entry.absolute, entry.info.size);
  }
  for (const folder of FOLDERS) await walk(folder, 0);
  if (issues.length > 0) throw new ConfigError(issues, dir);
  return files;
}

/** Reads and validates an organization folder (version `local`). */
export async function loadOrgFolder(dir: string): Promise<OrgConfig> {
  return loadOrgFromFiles(await readOrgFolder(dir), { version: 'local', label: dir });
}

function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1).replace(/\.0$/, '')} MiB`;
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${bytes} bytes`;
}

// Defensive readers of raw YAML data: the cross-file checks also run on files
// whose schema check failed, so that one pass reports every problem.
const isRecord = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value);
const asArray = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
const asString = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/** Headers Signet or the message itself owns; an organization may not add them. */
const RESERVED_HEADERS = new Set(
  [
    'x-signet-processed', 'content-type', 'content-transfer-encoding', 'content-disposition', 'mime-version',
    'from', 'sender', 'reply-to', 'to', 'cc', 'bcc', 'subject', 'date', 'message-id', 'in-reply-to',
    'references', 'return-path', 'received', 'dkim-signature', 'arc-seal', 'arc-message-signature',
    'arc-authentication-results', 'authentication-results',
  ],
);

interface TemplateFiles {
  html?: { file: string; source: string };
  text?: { file: string; source: string };
}

/**
 * Validates a map of org-folder files and builds the OrgConfig. Pure: no file
 * system access. Throws a ConfigError carrying every problem found.
 */
export function loadOrgFromFiles(files: ReadonlyMap<string, Buffer>, origin: OrgOrigin): OrgConfig {
  const issues: ConfigIssue[] = [];
  const issue = (file: string, p: readonly PathSegment[], message: string, line?: number) =>
    issues.push({ file, path: formatPath(p), message, line });

  // ---- which files are there
  const templateFiles = new Map<string, TemplateFiles>();
  const addonFiles: string[] = [];
  const addonSideFiles = new Set<string>();
  for (const [file, bytes] of files) {
    if ((ROOT_FILES as readonly string[]).includes(file) || file === DIRECTORY_FILE) continue;
    const parts = file.split('/');
    if (parts[0] === 'templates' && parts.length === 2) {
      const named = /^(.+)\.(html|txt)\.ejs$/.exec(parts[1]);
      if (!named) {
        issue(file, [], 'not a template file: templates are named <id>.html.ejs (HTML) and <id>.txt.ejs (text)');
        continue;
      }
      const [, id, form] = named;
      if (!ID_PATTERN.test(id)) {
        issue(file, [], `"${id}" is not a valid template id (1-64 letters, digits, '-' or '_')`);
        continue;
      }
      const source = decodeUtf8(bytes, file, issues);
      if (source === undefined) continue;
      const entry = templateFiles.get(id) ?? {};
      entry[form === 'html' ? 'html' : 'text'] = { file, source };
      templateFiles.set(id, entry);
    } else if (parts[0] === 'addons' && parts.length >= 2) {
      if (parts.length === 2 && parts[1].endsWith('.yaml')) addonFiles.push(file);
      else addonSideFiles.add(file);
    } else if (parts[0] === 'images' && parts.length >= 2) {
      // declared in org.yaml; checked there
    } else {
      issue(file, [], 'not part of the organization folder format (org.yaml, rules.yaml, users.yaml, templates/, addons/, images/)');
    }
  }

  // ---- org.yaml
  const orgBytes = files.get(ORG_FILE);
  let org: OrgFile | undefined;
  const acceptedDomains: string[] = [];
  const images = new Map<string, ImageAsset>();
  // When org.yaml is missing or unreadable, its images are unknown: do not blame every template for them.
  let imagesKnown = false;
  if (!orgBytes) {
    issue(ORG_FILE, [], 'missing: every organization folder has an org.yaml (orgId, acceptedDomains)');
  } else {
    const read = readYamlWithSchema(orgBytes, ORG_FILE, orgFileSchema);
    issues.push(...read.issues);
    org = read.value;
    const raw = isRecord(read.yaml.data) ? read.yaml.data : {};
    imagesKnown = isRecord(read.yaml.data);
    const seenDomains = new Map<string, number>();
    asArray(raw.acceptedDomains).forEach((value, i) => {
      const domain = asString(value)?.toLowerCase();
      if (!domain) return;
      if (seenDomains.has(domain)) issue(ORG_FILE, ['acceptedDomains', i], `duplicate accepted domain "${domain}"`, read.yaml.lineOf(['acceptedDomains', i]));
      else seenDomains.set(domain, i);
      acceptedDomains.push(domain);
    });
    const options = isRecord(raw.options) ? raw.options : {};
    if (isRecord(options.extraHeaders)) {
      for (const name of Object.keys(options.extraHeaders)) {
        if (RESERVED_HEADERS.has(name.toLowerCase())) {
          const p = ['options', 'extraHeaders', name];
          issue(ORG_FILE, p, `"${name}" cannot be set here: Signet or the message owns this header`, read.yaml.lineOfKey(p.slice(0, -1), name));
        }
      }
    }
    checkImages(raw, read.yaml, files, images, issue);
  }

  // ---- templates
  const templates = new Map<string, TemplateSource>();
  const imageRefs: Array<{ file: string; id: string; line: number }> = [];
  const attributeRefs: Array<{ file: string; name: string; line: number }> = [];
  const checkTemplateSource = (file: string, source: string, firstLine = 1, p: readonly PathSegment[] = [], form: 'html' | 'text' = file.endsWith('.txt.ejs') ? 'text' : 'html') => {
    const check = checkEjsTemplate(source);
    for (const problem of check.problems) issue(file, p, problem.message, firstLine + problem.line - 1);
    // what a node's template compiler refuses, refused here too (validate and seal agree with the node)
    const unsafe = form === 'html' ? lintHtmlTemplate(source) : undefined;
    if (unsafe && !check.problems.some((problem) => problem.line === unsafe.line)) issue(file, p, unsafe.message, firstLine + unsafe.line - 1);
    for (const ref of check.imageRefs) imageRefs.push({ file, id: ref.id, line: firstLine + ref.line - 1 });
    for (const ref of check.attributeRefs) attributeRefs.push({ file, name: ref.name, line: firstLine + ref.line - 1 });
  };
  for (const [id, forms] of [...templateFiles].sort(([a], [b]) => a.localeCompare(b))) {
    if (!forms.html) {
      issue(forms.text!.file, [], `text form without an HTML form: add templates/${id}.html.ejs`);
      continue;
    }
    checkTemplateSource(forms.html.file, forms.html.source);
    if (forms.text) checkTemplateSource(forms.text.file, forms.text.source);
    templates.set(id, { id, html: forms.html.source, text: forms.text?.source, file: forms.html.file });
  }

  // ---- addons/<id>.yaml
  const addons = new Map<string, AddonSource>();
  const usedSideFiles = new Set<string>();
  for (const file of addonFiles.sort()) {
    const id = file.slice('addons/'.length, -'.yaml'.length);
    if (!ID_PATTERN.test(id)) {
      issue(file, [], `"${id}" is not a valid add-on id (1-64 letters, digits, '-' or '_')`);
      continue;
    }
    const read = readYamlWithSchema(files.get(file)!, file, addonFileSchema);
    issues.push(...read.issues);
    const raw = isRecord(read.yaml.data) ? read.yaml.data : {};
    const sideFile = (key: 'htmlFile' | 'textFile'): string | undefined => {
      const name = asString(raw[key]);
      // a path leaving addons/ (absolute, "..") is reported by the schema; "not found" beside it would only confuse
      if (name === undefined || !RELATIVE_FILE_PATTERN.test(name)) return undefined;
      const resolved = path.posix.normalize(`addons/${name}`);
      const bytes = resolved.startsWith('addons/') ? files.get(resolved) : undefined;
      if (!bytes) {
        issue(file, [key], `file not found: ${resolved} (${key} is relative to addons/)`, read.yaml.lineOf([key]));
        return undefined;
      }
      usedSideFiles.add(resolved);
      return decodeUtf8(bytes, resolved, issues);
    };
    for (const form of ['html', 'text'] as const) {
      const fileKey = form === 'html' ? 'htmlFile' : 'textFile';
      if (raw[form] !== undefined && raw[fileKey] !== undefined) {
        issue(file, [fileKey], `give the ${form === 'html' ? 'HTML' : 'text'} either inline (${form}) or in a file (${fileKey}), not both`, read.yaml.lineOf([fileKey]));
      }
    }
    if (raw.html === undefined && raw.htmlFile === undefined && isRecord(read.yaml.data)) {
      issue(file, [], 'missing the add-on content: give html (inline) or htmlFile', 1);
    }
    checkWindow(raw, [], file, read.yaml, issue);
    const htmlFromFile = sideFile('htmlFile');
    const textFromFile = sideFile('textFile');
    if (typeof raw.html === 'string') checkTemplateSource(file, raw.html, read.yaml.contentLineOf(['html']), ['html'], 'html');
    if (typeof raw.text === 'string') checkTemplateSource(file, raw.text, read.yaml.contentLineOf(['text']), ['text'], 'text');
    if (htmlFromFile !== undefined) checkTemplateSource(`addons/${path.posix.normalize(String(raw.htmlFile))}`, htmlFromFile, 1, [], 'html');
    if (textFromFile !== undefined) checkTemplateSource(`addons/${path.posix.normalize(String(raw.textFile))}`, textFromFile, 1, [], 'text');
    const value: AddonFile | undefined = read.value;
    const html = value?.html ?? htmlFromFile;
    if (value && html !== undefined) {
      addons.set(id, {
        id,
        kind: value.kind,
        position: value.position ?? (value.kind === 'disclaimer' ? 'bottom' : 'top'),
        html,
        text: value.text ?? textFromFile,
        from: value.from,
        until: value.until,
        file,
      });
    } else {
      // The add-on exists (its own problems are reported): rules naming it are not wrong too.
      addons.set(id, { id, kind: 'banner', position: 'top', html: '', file });
    }
  }
  for (const side of [...addonSideFiles].sort()) {
    if (!usedSideFiles.has(side)) {
      issue(side, [], 'not used: add-ons are addons/<id>.yaml; other files there must be named by an htmlFile or textFile');
    }
  }

  // ---- images named by templates and add-ons
  for (const ref of imageRefs) {
    if (!imagesKnown || images.has(ref.id)) continue;
    const declared = [...images.keys()];
    const hint = didYouMean(ref.id, declared);
    const onDisk = [...files.keys()].find((f) => f.startsWith('images/') && path.posix.parse(f).name === ref.id);
    const more = hint
      ? `; did you mean "${hint}"?`
      : onDisk
        ? `; ${onDisk} exists but is not declared under images: in org.yaml`
        : declared.length
          ? ` (declared images: ${declared.join(', ')})`
          : ' (org.yaml declares no images)';
    issue(ref.file, [], `unknown image "${ref.id}"${more}`, ref.line);
  }

  // ---- rules.yaml
  const rulesBytes = files.get(RULES_FILE);
  let rules: RulesFile | undefined;
  if (!rulesBytes) {
    issue(RULES_FILE, [], 'missing: every organization folder has a rules.yaml (`rules: []` signs nothing)');
  } else {
    const read = readYamlWithSchema(rulesBytes, RULES_FILE, rulesFileSchema);
    issues.push(...read.issues);
    rules = read.value;
    checkRules(read.yaml, templates, addons, acceptedDomains, issue);
  }

  // ---- users.yaml
  const userAttributes = new Map<string, Record<string, string>>();
  const usersBytes = files.get(USERS_FILE);
  // When users.yaml does not read, its custom attribute names are unknown: do not blame templates for them.
  let usersKnown = true;
  if (usersBytes) {
    const read = readYamlWithSchema(usersBytes, USERS_FILE, usersFileSchema);
    usersKnown = read.value !== undefined;
    issues.push(...read.issues);
    const raw = isRecord(read.yaml.data) && isRecord(read.yaml.data.users) ? read.yaml.data.users : {};
    const seen = new Set<string>();
    for (const address of Object.keys(raw)) {
      const lower = address.toLowerCase();
      if (seen.has(lower)) {
        issue(USERS_FILE, ['users', address], `"${address}" is listed twice (addresses are case-insensitive)`, read.yaml.lineOfKey(['users'], address));
      }
      seen.add(lower);
      // zod's record drops a `__proto__` key silently; say so instead.
      const attributes = raw[address];
      if (isRecord(attributes) && Object.prototype.hasOwnProperty.call(attributes, '__proto__')) {
        issue(USERS_FILE, ['users', address, '__proto__'], 'attribute names are letters, digits and _, starting with a letter', read.yaml.lineOfKey(['users', address], '__proto__'));
      }
    }
    for (const [address, attributes] of Object.entries(read.value?.users ?? {})) {
      const values: Record<string, string> = {};
      for (const [name, value] of Object.entries(attributes)) values[name] = value ?? '';
      userAttributes.set(address.toLowerCase(), values);
    }
  }

  // ---- attributes named by templates and add-ons: a misspelt one is empty in every signature
  if (usersKnown) {
    const known = new Set<string>([...STANDARD_ATTRIBUTES, ...RESERVED_ATTRIBUTE_NAMES, ...[...userAttributes.values()].flatMap((a) => Object.keys(a))]);
    for (const ref of attributeRefs) {
      if (known.has(ref.name)) continue;
      const hint = misspeltAttribute(ref.name, known);
      if (hint) issue(ref.file, [], `user.${ref.name} is not an attribute, so it would be empty in every signature; did you mean user.${hint}?`, ref.line);
    }
  }

  if (issues.length > 0 || !org || !rules) throw new ConfigError(issues, origin.label);
  return {
    orgId: org.orgId,
    version: origin.version,
    displayName: org.displayName,
    acceptedDomains,
    options: org.options,
    templates,
    addons,
    rules: rules.rules.map(normalizeRule),
    images,
    userAttributes,
  };
}

/**
 * The known attribute a template's unknown `user.<name>` was probably meant to
 * be: the same name in other letter case, or (names of 5 letters or more) at
 * most two edits away. Other unknown names may be custom attributes of a local
 * directory file, which the configuration does not see.
 */
function misspeltAttribute(name: string, known: ReadonlySet<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = editDistance(name, candidate);
    if (distance === 0) return candidate;
    if (name.length >= 5 && distance <= 2 && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function normalizeRule(rule: RulesFile['rules'][number]): RuleSource {
  const lowerMatch = (match: RuleSource['match']): RuleSource['match'] => ({
    ...match,
    senders: match.senders?.map((s) => s.toLowerCase()),
    senderDomains: match.senderDomains?.map((s) => s.toLowerCase()),
    recipientDomains: match.recipientDomains?.map((s) => s.toLowerCase()),
  });
  const clean = <T extends object>(value: T): T =>
    Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
  return clean({
    ...rule,
    match: clean(lowerMatch(rule.match)),
    except: rule.except?.map((m) => clean(lowerMatch(m))),
  });
}

type IssueSink = (file: string, p: readonly PathSegment[], message: string, line?: number) => void;

function checkWindow(raw: Record<string, unknown>, at: readonly PathSegment[], file: string, yaml: YamlFile, issue: IssueSink) {
  const from = asString(raw.from);
  const until = asString(raw.until);
  if (from === undefined || until === undefined) return;
  const start = validInstant(from);
  const end = validInstant(until);
  if (Number.isNaN(start) || Number.isNaN(end)) return;
  if (start >= end) {
    issue(file, [...at, 'until'], `date window is reversed or empty: from ${from} is not before until ${until}`, yaml.lineOf([...at, 'until']));
  }
}

/** The instant of a valid date value (see schema), else NaN: values the schema refused are reported there. */
function validInstant(value: unknown): number {
  return typeof value === 'string' && DATE_PATTERN.test(value) && isRealDate(value) ? instantOf(value) : Number.NaN;
}

/** A date window's bounds in milliseconds (open ends infinite), or undefined when it has no usable bound. */
function windowOf(from: unknown, until: unknown): { start: number; end: number; text: string } | undefined {
  const f = validInstant(from);
  const u = validInstant(until);
  if (Number.isNaN(f) && Number.isNaN(u)) return undefined;
  const text = [Number.isNaN(f) ? '' : `from ${String(from)}`, Number.isNaN(u) ? '' : `until ${String(until)}`].filter(Boolean).join(' ');
  return { start: Number.isNaN(f) ? -Infinity : f, end: Number.isNaN(u) ? Infinity : u, text };
}

/** When a rule's own date window and its add-on's window have no instant in common, both described; else undefined. */
function windowsNeverMeet(match: Record<string, unknown>, addon: AddonSource): { rule: string; addon: string } | undefined {
  const rule = windowOf(match.from, match.until);
  const shown = windowOf(addon.from, addon.until);
  // a reversed window is reported on its own
  if (!rule || !shown || rule.start >= rule.end || shown.start >= shown.end) return undefined;
  if (Math.max(rule.start, shown.start) < Math.min(rule.end, shown.end)) return undefined;
  return { rule: rule.text, addon: shown.text };
}

function checkImages(
  raw: Record<string, unknown>,
  yaml: YamlFile,
  files: ReadonlyMap<string, Buffer>,
  images: Map<string, ImageAsset>,
  issue: IssueSink,
) {
  const firstLine = new Map<string, number | undefined>();
  asArray(raw.images).forEach((entry, i) => {
    if (!isRecord(entry)) return;
    const at = (key?: string): PathSegment[] => (key ? ['images', i, key] : ['images', i]);
    const report = (key: string | undefined, message: string) => issue(ORG_FILE, at(key), message, yaml.lineOf(at(key)));
    const id = asString(entry.id);
    const mode = entry.mode === undefined ? 'embed' : asString(entry.mode);
    const file = asString(entry.file);
    const url = asString(entry.url);
    if (id !== undefined) {
      if (firstLine.has(id)) report('id', `duplicate image id "${id}" (first declared at line ${firstLine.get(id)})`);
      else firstLine.set(id, yaml.lineOf(at('id')));
    }
    if (mode === 'embed' && url !== undefined) report('url', 'url is only used with mode: link (an embedded image travels inside the message)');
    if (mode === 'link' && url === undefined && entry.url === undefined) report(undefined, 'mode: link needs a url');
    if (mode === 'embed' && file === undefined && entry.file === undefined) report(undefined, 'mode: embed needs a file (relative to images/)');
    let data: Buffer | undefined;
    let contentType: string | undefined;
    // a path leaving images/ (absolute, "..") is reported by the schema; "not found" beside it would only confuse
    if (file !== undefined && RELATIVE_FILE_PATTERN.test(file)) {
      const relative = path.posix.normalize(`images/${file}`);
      data = relative.startsWith('images/') ? files.get(relative) : undefined;
      if (!data) {
        report('file', `file not found: ${relative} (file is relative to images/)`);
      } else {
        const sniffed = sniffImageType(data);
        const named = imageTypeFromName(relative);
        if (!sniffed) {
          report('file', `image type not allowed: ${relative} is ${describeContent(data)}; use PNG, JPEG or GIF`);
          data = undefined;
        } else if (named && named !== sniffed) {
          report('file', `${relative} is named like ${named} but its content is ${sniffed}; rename it`);
        } else if (!named) {
          report('file', `${relative}: name the file .png, .jpg, .jpeg or .gif (its content is ${sniffed})`);
        }
        if (data && mode === 'embed' && data.length > MAX_EMBEDDED_IMAGE_BYTES) {
          report('file', `embedded image is too large: ${relative} is ${formatBytes(data.length)}; the limit is ${formatBytes(MAX_EMBEDDED_IMAGE_BYTES)} (shrink it or use mode: link)`);
        }
        contentType = sniffed;
      }
    }
    // Registered even when the entry has problems of its own, so templates using it are not reported too.
    if (id !== undefined && !images.has(id)) {
      images.set(id, {
        id,
        contentType: contentType ?? imageTypeFromName(url ?? '') ?? 'application/octet-stream',
        data: data ?? Buffer.alloc(0),
        mode: mode === 'link' ? 'link' : 'embed',
        url,
        file: file !== undefined ? path.posix.normalize(`images/${file}`) : ORG_FILE,
      });
    }
  });
}

function checkRules(
  yaml: YamlFile,
  templates: ReadonlyMap<string, TemplateSource>,
  addons: ReadonlyMap<string, AddonSource>,
  acceptedDomains: readonly string[],
  issue: IssueSink,
) {
  const raw = isRecord(yaml.data) ? yaml.data : {};
  const firstLine = new Map<string, number | undefined>();
  const inAcceptedDomain = (domain: string) =>
    acceptedDomains.length === 0 || acceptedDomains.some((d) => domain === d || domain.endsWith(`.${d}`));
  asArray(raw.rules).forEach((rule, i) => {
    if (!isRecord(rule)) return;
    const report = (p: PathSegment[], message: string) => issue(RULES_FILE, ['rules', i, ...p], message, yaml.lineOf(['rules', i, ...p]));
    const id = asString(rule.id);
    if (id !== undefined) {
      if (firstLine.has(id)) report(['id'], `duplicate rule id "${id}" (first used at line ${firstLine.get(id)})`);
      else firstLine.set(id, yaml.lineOf(['rules', i, 'id']));
    }
    for (const key of ['template', 'replyTemplate'] as const) {
      const name = asString(rule[key]);
      if (name === undefined || templates.has(name)) continue;
      const hint = didYouMean(name, [...templates.keys()]);
      report([key], `unknown template "${name}": there is no templates/${name}.html.ejs${hint ? `; did you mean "${hint}"?` : ''}`);
    }
    const seenAddons = new Set<string>();
    asArray(rule.addons).forEach((value, j) => {
      const name = asString(value);
      if (name === undefined) return;
      if (seenAddons.has(name)) report(['addons', j], `add-on "${name}" is listed twice`);
      seenAddons.add(name);
      const addon = addons.get(name);
      if (addon) {
        const never = windowsNeverMeet(isRecord(rule.match) ? rule.match : {}, addon);
        if (never) report(['addons', j], `add-on "${name}" is shown only ${never.addon}, never while this rule applies (${never.rule}): it can never be added`);
        return;
      }
      const hint = didYouMean(name, [...addons.keys()]);
      report(['addons', j], `unknown add-on "${name}": there is no addons/${name}.yaml${hint ? `; did you mean "${hint}"?` : ''}`);
    });
    const assigns = rule.template !== undefined || rule.replyTemplate !== undefined;
    if (!assigns && rule.noSignature !== true && asArray(rule.addons).length === 0) {
      report([], 'the rule does nothing: give it a template, addons, or noSignature: true');
    }
    if (rule.noSignature === true && assigns) {
      report(['noSignature'], 'noSignature: true contradicts template/replyTemplate in the same rule');
    }
    const later = asArray(raw.rules).length - i - 1;
    const matchesAll = (rule.match === undefined || (isRecord(rule.match) && Object.keys(rule.match).length === 0)) && asArray(rule.except).length === 0;
    if (rule.stop === true && rule.enabled !== false && matchesAll && later > 0) {
      report(['stop'], `the rule matches every message, so with stop: true the ${later === 1 ? 'rule' : `${later} rules`} after it ${later === 1 ? 'is' : 'are'} never evaluated`);
    }
    const checkMatch = (match: unknown, at: PathSegment[]) => {
      if (!isRecord(match)) return;
      checkWindow(match, ['rules', i, ...at], RULES_FILE, yaml, issue);
      asArray(match.senders).forEach((value, j) => {
        const sender = asString(value)?.toLowerCase();
        const domain = sender?.split('@')[1];
        if (domain && sender!.split('@').length === 2 && !inAcceptedDomain(domain)) {
          report([...at, 'senders', j], `sender ${sender} is not in an accepted domain (${acceptedDomains.join(', ')}); it can never match`);
        }
      });
      asArray(match.senderDomains).forEach((value, j) => {
        const domain = asString(value)?.toLowerCase().replace(/^\*\./, '');
        if (domain && !inAcceptedDomain(domain)) {
          report([...at, 'senderDomains', j], `sender domain ${domain} is not an accepted domain (${acceptedDomains.join(', ')}); it can never match`);
        }
      });
    };
    checkMatch(rule.match, ['match']);
    asArray(rule.except).forEach((match, k) => {
      checkMatch(match, ['except', k]);
      if (isRecord(match) && Object.keys(match).length === 0) {
        report(['except', k], 'an empty exception matches every message, so the rule would never apply');
      }
    });
  });
}
