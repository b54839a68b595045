// Templates and add-ons: compiled with ejs once per config version, rendered
// per message with the sender's directory attributes. Templates are trusted
// admin content; attribute values are not: `<%=` escapes them (& < > " ') in
// HTML forms, url()/tel() decide what may become a link.
import { createHash } from 'node:crypto';
import path from 'node:path';
import vm from 'node:vm';
import ejs from 'ejs';
import type { AddonSource, ImageAsset, OrgConfig, TemplateSource } from '../../config';
import type { DirectoryUser, UserPhoto } from '../../directory';
import type { InlineImage, MessageKind } from '../../mime';
import { safeUrl, telHref, textEscape } from './helpers';
import { lintHtmlTemplate, STANDARD_ATTRIBUTES } from '../../config';
import { htmlToText, tidyText } from './text';

export interface RenderContext {
  user?: DirectoryUser;
  /** Envelope sender; `user.mail` when the sender is not in the directory. */
  sender: string;
  org: OrgConfig;
  now: Date;
  kind: MessageKind;
  /**
   * The trial render when a config is loaded: an attribute no standard name and no
   * users.yaml entry has reads undefined there, so `user.manger.displayName` fails the
   * load instead of printing nothing in every signature.
   */
  trial?: boolean;
}

export interface RenderedSnippet {
  html: string;
  /** Plain text, lines separated by \n, no trailing or doubled blank lines. */
  text: string;
  /** Embedded images the HTML refers to (cid:), in order of first use. */
  images: InlineImage[];
}

export interface TemplateSet {
  /** The config version these templates were compiled from. */
  readonly version: string;
  /** Whether a signature template with this id exists (add-ons: hasAddon). */
  has(id: string): boolean;
  hasAddon(id: string): boolean;
  /** Renders a signature template; throws a TemplateRenderError (`file:line: message`) if the template fails (unknown id: an Error naming it). */
  render(templateId: string, ctx: RenderContext): RenderedSnippet;
  renderAddon(addonId: string, ctx: RenderContext): RenderedSnippet;
}

/** Names a template sees. Destructured once per render instead of `with`, which strict mode forbids. */
const LOCALS = ['user', 'sender', 'org', 'now', 'kind', 'image', 'images', 'photo', 'url', 'tel'] as const;
type Locals = Record<(typeof LOCALS)[number], unknown>;
type RenderFn = (locals: Locals) => string;

interface CompiledImage {
  readonly id: string;
  readonly src: string;
  readonly inline?: InlineImage;
}

interface CompiledSnippet {
  readonly html: RenderFn;
  readonly text?: RenderFn;
  /** Output depends only on the user, the sender, the kind and the config: renders may be reused. */
  readonly reusable: boolean;
}

/** Where a compile error happened, as `file:line`, from ejs's generated source. */
function locateSyntaxError(source: string, options: ejs.Options): { line: number; detail: string } | undefined {
  // generateSource and source are ejs internals that @types/ejs does not declare.
  const template = new ejs.Template(source, options) as unknown as { generateSource(): void; source: string };
  try {
    template.generateSource();
  } catch (err) {
    // The parser's own errors (an unclosed `<%`): point at the last opening tag without a close.
    const lastOpen = source.lastIndexOf('<%');
    const lastClose = source.lastIndexOf('%>');
    const at = lastOpen > lastClose ? lastOpen : 0;
    return { line: source.slice(0, at).split('\n').length, detail: (err as Error).message };
  }
  // Re-parse the generated body with vm only to learn the line of the syntax
  // error (Function() does not say); ejs writes `__line = N` before each template line's code.
  const generated = `(function (locals, escapeFn, include, rethrow) {\n"use strict";\n${template.source}\n})`;
  try {
    new vm.Script(generated, { filename: 'template' });
  } catch (err) {
    const at = /^template:(\d+)/.exec(String((err as Error).stack ?? ''));
    if (!at) return undefined;
    const generatedLines = generated.split('\n').slice(0, Number(at[1]));
    let line = 1;
    for (const l of generatedLines) {
      const m = /__line = (\d+)/.exec(l);
      if (m) line = Number(m[1]);
    }
    return { line, detail: (err as Error).message };
  }
  return undefined;
}

function compileEjs(source: string, file: string, form: 'html' | 'text'): RenderFn {
  const options: ejs.Options = {
    filename: file,
    strict: true,
    destructuredLocals: [...LOCALS],
    // HTML: ejs's default escape (& < > " '); text: values as they are.
    escape: form === 'text' ? textEscape : undefined,
    // include() would read files at render time; a template is one self-contained file.
    includer: (name: string) => {
      throw new Error(`include("${name}") is not supported: a template is one self-contained file`);
    },
  };
  if (form === 'html') {
    const problem = lintHtmlTemplate(source);
    if (problem) throw new Error(`${file}:${problem.line}: ${problem.message}`);
  }
  try {
    return ejs.compile(source, options) as unknown as RenderFn;
  } catch (err) {
    const where = locateSyntaxError(source, options);
    const lineText = where ? source.split('\n')[where.line - 1]?.trim() : undefined;
    const detail = where?.detail ?? (err as Error).message.split('\n')[0];
    throw new Error(
      `${file}${where ? `:${where.line}` : ''}: ${form} template does not compile: ${detail}${lineText ? ` (line: ${JSON.stringify(lineText.slice(0, 120))})` : ''}`,
      { cause: err },
    );
  }
}

/** A Content-ID that is stable for one image content: `<id>.<sha256 prefix>@signet`. */
function contentId(asset: ImageAsset): string {
  const safeId = asset.id.replace(/[^A-Za-z0-9._-]/g, '_');
  return `${safeId}.${createHash('sha256').update(asset.data).digest('hex').slice(0, 8)}@signet`;
}

function compileImage(asset: ImageAsset): CompiledImage {
  if (asset.mode === 'link') {
    const url = safeUrl(asset.url);
    if (!/^https?:/i.test(url)) throw new Error(`${asset.file}: image "${asset.id}" is linked but its url ${JSON.stringify(asset.url ?? '')} is not an http(s) URL`);
    return { id: asset.id, src: url };
  }
  const cid = contentId(asset);
  return {
    id: asset.id,
    src: `cid:${cid}`,
    inline: { cid, contentType: asset.contentType, filename: path.basename(asset.file), data: asset.data },
  };
}

// C0 and C1 control characters but tab, line feed and carriage return: no use in a signature, a
// NUL is not allowed in a mail body at all (RFC 5322), whatever the part's transfer encoding, and
// U+009B introduces a terminal's escape sequences.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/g;

/** An attribute value as templates see it: text, '' when missing, control characters dropped. */
function attributeValue(value: unknown): string {
  return value === undefined || value === null ? '' : String(value).replace(CONTROL_CHARS, '');
}

/** The `user` a template sees: every standard attribute present ('' when missing), plus `mail`. */
function userLocals(user: DirectoryUser | undefined, sender: string, overrides: Map<string, Record<string, string>>, trial = false): Readonly<Record<string, string>> {
  // No prototype: an attribute named `__proto__` or `constructor` is just a value.
  const out: Record<string, string> = Object.create(null);
  for (const key of STANDARD_ATTRIBUTES) out[key] = '';
  if (trial) for (const attributes of overrides.values()) for (const key of Object.keys(attributes)) out[key] = '';
  if (user) {
    for (const [key, value] of Object.entries(user.attributes)) out[key] = attributeValue(value);
  }
  const mail = (user?.mail ?? sender).trim().toLowerCase();
  // With a directory user, the lookup depends on the user only (the result is cached per user).
  const keys = user ? [mail, ...user.aliases.map((a) => a.trim().toLowerCase())] : [mail];
  const override = keys.map((k) => overrides.get(k)).find((o) => o !== undefined);
  if (override) for (const [key, value] of Object.entries(override)) out[key] = attributeValue(value);
  out.mail = mail;
  // Frozen: a cached object shared by every message of this user must not carry one message's changes to the next.
  // Read through MISSING_IS_EMPTY: a custom attribute this user lacks reads '' as a standard one does, not "undefined".
  return trial ? Object.freeze(out) : new Proxy(Object.freeze(out), MISSING_IS_EMPTY);
}

const MISSING_IS_EMPTY: ProxyHandler<Record<string, string>> = {
  get: (target, key) => (typeof key !== 'string' ? undefined : key in target ? target[key] : ''),
};

/**
 * A template or add-on that failed while rendering for one sender. `where`
 * (file:line) and `errorName` (the error's class) hold no directory value and
 * may be logged; the message may quote one (a JSON.parse of an attribute).
 */
export class TemplateRenderError extends Error {
  constructor(
    message: string,
    readonly where: string,
    readonly errorName: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'TemplateRenderError';
  }
}

/**
 * ejs reports a render error as `file:line`, a few lines of template around
 * it, a blank line, then the JavaScript message; logs and command lines want
 * one line: `file:line: message`, and the place on its own.
 */
function renderError(err: unknown, file: string): TemplateRenderError {
  const message = err instanceof Error ? err.message : String(err);
  const errorName = err instanceof Error ? err.name : typeof err;
  const framed = /^(.*):(\d+)\n[\s\S]*?\n\n([\s\S]*)$/.exec(message);
  const where = framed ? `${framed[1]}:${framed[2]}` : file;
  const text = (framed ? framed[3] : message).replace(/\s*\n\s*/g, ' ');
  return new TemplateRenderError(`${where}: ${text}`, where, errorName, { cause: err });
}

const RECORDER = Symbol('image recorder');

/** Bound of the text-form cache: a few hundred senders' signatures, a few KB each. */
const TEXT_CACHE_ENTRIES = 512;
/** Bound of the rendered-snippet cache, same reasoning. */
const RENDER_CACHE_ENTRIES = 512;

/**
 * Whether a template's output may depend on more than the sender, the message
 * kind and the config: code (inside `<% … %>`) that reads the time (`now`,
 * `Date`, `Intl`, whose date formats default to now) or chance (`Math`,
 * `crypto`). Such templates are rendered for every message. Any
 * mention in code counts, even in a comment: a needless render is cheap, a
 * stale one is wrong. Literal text ("register now") cannot change.
 */
function dependsOnTime(source: TemplateSource | AddonSource): boolean {
  return /\bnow\b|\bDate\b|\bMath\b|\bIntl\b|\bcrypto\b/.test(codeOf(source));
}

/** The code (inside `<% … %>`) of both forms of a template or add-on. */
function codeOf(source: TemplateSource | AddonSource): string {
  return [source.html, source.text ?? ''].flatMap((form) => [...form.matchAll(/<%([\s\S]*?)(?:%>|$)/g)].map((m) => m[1])).join('\n');
}

/**
 * Whether a template or add-on of the configuration may call `photo()`: the
 * directory then loads the users' photos (held in memory, so only when used).
 * Any call in code counts, even in a comment, as for dependsOnTime.
 */
export function templatesUsePhotos(org: Pick<OrgConfig, 'templates' | 'addons'> | undefined): boolean {
  if (!org) return false;
  // a call, not a property of the same name (`user.photo`)
  return [...org.templates.values(), ...org.addons.values()].some((source) => /(?<![\w$.])photo\s*\(/.test(codeOf(source)));
}

/** Least-recently-used lookup in a Map used as an LRU (insertion order = age). */
function lruGet<K, V>(cache: Map<K, V>, key: K): V | undefined {
  const value = cache.get(key);
  if (value !== undefined) {
    cache.delete(key);
    cache.set(key, value);
  }
  return value;
}

function lruSet<K, V>(cache: Map<K, V>, key: K, value: V, max: number): void {
  if (!cache.has(key) && cache.size >= max) cache.delete(cache.keys().next().value!);
  cache.set(key, value);
}

const PHOTO_EXTENSIONS: Record<UserPhoto['contentType'], string> = { 'image/jpeg': 'jpg', 'image/png': 'png', 'image/gif': 'gif' };
/** One compiled image per photo object: a directory refresh brings new ones, the hash is taken once per photo. */
const compiledPhotos = new WeakMap<UserPhoto, CompiledImage>();

function compilePhoto(photo: UserPhoto): CompiledImage {
  let image = compiledPhotos.get(photo);
  if (!image) {
    // By content, like an org image: a changed photo gets a new Content-ID, the same bytes the same one.
    const cid = `photo.${createHash('sha256').update(photo.data).digest('hex').slice(0, 16)}@signet`;
    const inline: InlineImage = { cid, contentType: photo.contentType, filename: `photo.${PHOTO_EXTENSIONS[photo.contentType]}`, data: photo.data };
    compiledPhotos.set(photo, (image = { id: 'photo', src: `cid:${cid}`, inline }));
  }
  return image;
}

class ImageRecorder {
  readonly used: CompiledImage[] = [];
  constructor(private readonly images: ReadonlyMap<string, CompiledImage>) {}
  use(id: string): string {
    const image = this.images.get(String(id));
    if (!image) throw new Error(`unknown image ${JSON.stringify(id)}; images: ${[...this.images.keys()].join(', ') || '(none)'}`);
    return this.record(image);
  }
  /** The sender's photo, embedded; '' when the directory has none for them, so `<% if (photo()) { %>` drops it. */
  usePhoto(user: DirectoryUser | undefined): string {
    return user?.photo ? this.record(compilePhoto(user.photo)) : '';
  }
  private record(image: CompiledImage): string {
    if (!this.used.includes(image)) this.used.push(image);
    return image.src;
  }
}

class CompiledTemplateSet implements TemplateSet {
  readonly version: string;
  private readonly templates = new Map<string, CompiledSnippet>();
  private readonly addons = new Map<string, CompiledSnippet>();
  private readonly images = new Map<string, CompiledImage>();
  /** `images.logo` as well as `image('logo')`: getters on a prototype built once, reading the per-render recorder. */
  private readonly imagesProto: object;
  private readonly orgLocals: Readonly<{ id: string; displayName: string }>;
  private readonly overrides = new Map<string, Record<string, string>>();
  /**
   * Automatic text forms by rendered HTML: html-to-text costs several times the
   * ejs render, and the same sender's signature renders to the same HTML
   * message after message. The conversion is a pure function of the HTML, so
   * a hit is always right; least recently used entries go first.
   */
  private readonly textCache = new Map<string, string>();
  /** Attributes per directory user object (snapshots replace users rather than mutate them). */
  private readonly userCache = new WeakMap<DirectoryUser, Readonly<Record<string, string>>>();
  /**
   * Rendered snippets of time-independent templates, per (snippet, kind,
   * sender), valid for the same directory user object only: a directory
   * refresh replaces the objects, so a changed title is never served stale.
   * A config version compiles a new set, so its cache starts empty.
   */
  private readonly renderCache = new Map<string, { user: DirectoryUser; snippet: RenderedSnippet }>();

  constructor(private readonly org: OrgConfig) {
    this.version = org.version;
    this.orgLocals = Object.freeze({ id: org.orgId, displayName: org.displayName ?? org.orgId });
    for (const [address, attrs] of org.userAttributes) this.overrides.set(address.trim().toLowerCase(), attrs);
    for (const [id, asset] of org.images) this.images.set(id, compileImage(asset));
    const proto: Record<string, unknown> = Object.create(null);
    for (const id of this.images.keys()) {
      Object.defineProperty(proto, id, {
        get(this: { [RECORDER]: ImageRecorder }) {
          return this[RECORDER].use(id);
        },
        enumerable: true,
      });
    }
    this.imagesProto = Object.freeze(proto);

    for (const [id, source] of org.templates) this.templates.set(id, this.compileSnippet(source));
    for (const [id, source] of org.addons) this.addons.set(id, this.compileSnippet(source));

    // One render of each with an empty user, for every message kind (a template
    // may branch on `kind`): catches typos (ReferenceError), unknown images and
    // include() when the config is loaded, not on a message.
    for (const kind of ['new', 'reply', 'forward'] as const) {
      const probe: RenderContext = { sender: `postmaster@${org.acceptedDomains[0] ?? 'example.invalid'}`, org, now: new Date(), kind, trial: true };
      for (const [id, source] of org.templates) this.renderWith(this.templates.get(id)!, source, probe);
      for (const [id, source] of org.addons) this.renderWith(this.addons.get(id)!, source, probe);
    }
  }

  private compileSnippet(source: TemplateSource | AddonSource): CompiledSnippet {
    return {
      html: compileEjs(source.html, source.file, 'html'),
      text: source.text !== undefined ? compileEjs(source.text, `${source.file} (text form)`, 'text') : undefined,
      reusable: !dependsOnTime(source),
    };
  }

  has(id: string): boolean {
    return this.templates.has(id);
  }

  hasAddon(id: string): boolean {
    return this.addons.has(id);
  }

  render(templateId: string, ctx: RenderContext): RenderedSnippet {
    const compiled = this.templates.get(templateId);
    if (!compiled) throw new Error(`unknown template "${templateId}" in config ${this.version}`);
    return this.renderCached(`t\0${templateId}`, compiled, this.org.templates.get(templateId)!, ctx);
  }

  renderAddon(addonId: string, ctx: RenderContext): RenderedSnippet {
    const compiled = this.addons.get(addonId);
    if (!compiled) throw new Error(`unknown add-on "${addonId}" in config ${this.version}`);
    return this.renderCached(`a\0${addonId}`, compiled, this.org.addons.get(addonId)!, ctx);
  }

  private renderCached(id: string, compiled: CompiledSnippet, source: TemplateSource | AddonSource, ctx: RenderContext): RenderedSnippet {
    const user = ctx.user;
    if (!compiled.reusable || !user) return this.renderWith(compiled, source, ctx);
    const key = `${id}\0${ctx.kind}\0${ctx.sender}`;
    const hit = lruGet(this.renderCache, key);
    if (hit && hit.user === user) return hit.snippet;
    const rendered = this.renderWith(compiled, source, ctx);
    // frozen: one message's handling must not change what the next one gets
    const snippet: RenderedSnippet = Object.freeze({ ...rendered, images: Object.freeze([...rendered.images]) as InlineImage[] });
    lruSet(this.renderCache, key, { user, snippet }, RENDER_CACHE_ENTRIES);
    return snippet;
  }

  private userFor(ctx: RenderContext): Readonly<Record<string, string>> {
    if (!ctx.user) return userLocals(undefined, ctx.sender, this.overrides, ctx.trial);
    let cached = this.userCache.get(ctx.user);
    if (!cached) {
      cached = userLocals(ctx.user, ctx.sender, this.overrides);
      this.userCache.set(ctx.user, cached);
    }
    return cached;
  }

  private locals(ctx: RenderContext, recorder: ImageRecorder): Locals {
    const images = Object.create(this.imagesProto, { [RECORDER]: { value: recorder } }) as object;
    return {
      user: this.userFor(ctx),
      sender: ctx.sender,
      org: this.orgLocals,
      now: ctx.now,
      kind: ctx.kind,
      image: (id: string) => recorder.use(id),
      images,
      photo: () => recorder.usePhoto(ctx.user),
      url: safeUrl,
      tel: telHref,
    };
  }

  private textOf(html: string): string {
    let text = lruGet(this.textCache, html);
    if (text === undefined) lruSet(this.textCache, html, (text = htmlToText(html)), TEXT_CACHE_ENTRIES);
    return text;
  }

  private renderWith(compiled: CompiledSnippet, source: TemplateSource | AddonSource, ctx: RenderContext): RenderedSnippet {
    const recorder = new ImageRecorder(this.images);
    let html: string;
    let text: string;
    try {
      html = compiled.html(this.locals(ctx, recorder)).trim();
      // Images a text form asks for are not attached: a text part cannot show them.
      text = compiled.text ? tidyText(compiled.text(this.locals(ctx, new ImageRecorder(this.images)))) : this.textOf(html);
    } catch (err) {
      throw renderError(err, source.file);
    }
    return { html, text, images: recorder.used.flatMap((i) => (i.inline ? [i.inline] : [])) };
  }
}

/** Compiles every template and add-on of the config once. Throws naming file and line on a template that does not compile or fails a trial render. */
export function compileTemplates(org: OrgConfig): TemplateSet {
  return new CompiledTemplateSet(org);
}
