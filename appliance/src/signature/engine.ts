// The engine: one message in, the same message with the right signature out,
// or unchanged with the reason. Rules and templates are compiled once, when
// the engine is created for a config version; per message it only decides,
// renders and hands the snippets to the MIME surgery.
import { createHash } from 'node:crypto';
import { Parser } from 'htmlparser2';
import type { Readable } from 'node:stream';
import type { OrgConfig } from '../config/types';
import type { DirectorySnapshot, DirectoryUser } from '../directory/types';
import { compileSeparators, compileSignOffs, transformMessage } from '../mime';
import type { Edit, MessageFacts, MessageKind, TransformReport } from '../mime/types';
import { compileRules, type Selection } from '../rules';
import { ENGINE_VERSION } from '../version';
import { STAMP_HEADER, decodedSubject, detectKind, formatStamp, isAutoReply, parseStamps } from './classify';
import { compileTemplates, TemplateRenderError, type RenderContext, type RenderedSnippet } from './templates';
import type { Engine, EngineResult, Envelope, PassReason, TemplateErrorReport } from './types';

export interface EngineOptions {
  org: OrgConfig;
  /** The current directory snapshot; undefined while none is loaded (senders are then unknown). */
  directory: () => DirectorySnapshot | undefined;
  now?: () => Date;
}

/** What the engine decided for one message, kept for the result and `--explain`. */
export interface Decision {
  outcome: 'sign' | 'pass';
  reason?: PassReason;
  kind?: MessageKind;
  selection?: Selection;
  templateId?: string;
  addons: string[];
  templateError?: TemplateErrorReport;
}

/**
 * The marker that lets the engine recognise this organization's signature in a
 * quoted thread, and with `sender` (the sender's primary address) that
 * sender's own: `signet-<org hash>-<sender hash>`.
 */
export function signatureMarker(orgId: string, sender?: string): string {
  const org = `signet-${createHash('sha256').update(orgId).digest('hex').slice(0, 12)}`;
  return sender === undefined ? org : senderMarkerOf(org, orgId, sender);
}

/** The sender's marker from the organization's (computed once per engine). */
function senderMarkerOf(orgMarker: string, orgId: string, sender: string): string {
  return `${orgMarker}-${createHash('sha256').update(`${orgId}\0${sender.trim().toLowerCase()}`).digest('hex').slice(0, 8)}`;
}

export function createEngine(options: EngineOptions): Engine {
  const { org } = options;
  const now = options.now ?? (() => new Date());
  const rules = compileRules(org);
  const templates = compileTemplates(org);
  const marker = signatureMarker(org.orgId);
  const signOffs = org.options.replaceSignOffs ? compileSignOffs(org.options.signOffs) : undefined;
  const separators = compileSeparators(org.options.separators);

  function stamp(decision: Decision, result: 'signed' | 'passed'): [string, string] {
    return [
      STAMP_HEADER,
      formatStamp([
        ['org', org.orgId],
        ['result', result],
        ['reason', decision.reason],
        ['rule', decision.selection?.matchedRules.join(',')],
        ['template', decision.templateId],
        ['config', org.version],
        ['v', ENGINE_VERSION],
      ]),
    ];
  }

  function pass(decision: Decision, reason: PassReason, stampIt = true): Edit {
    decision.outcome = 'pass';
    decision.reason = reason;
    return { addHeaders: stampIt ? [stamp(decision, 'passed')] : [], removeHeaders: [] };
  }

  // Users merged with the org's attribute overrides, kept so the same inputs give
  // the same object (renders are cached per user object): directory users by
  // their object (a refresh brings new ones), senders known only from the
  // overrides by address (at most one entry per override).
  const mergedUsers = new WeakMap<DirectoryUser, { overrides: Record<string, string>; merged: DirectoryUser }>();
  const overrideOnlyUsers = new Map<string, DirectoryUser>();

  function lookupUser(sender: string): DirectoryUser | undefined {
    const address = sender.toLowerCase();
    const found = options.directory()?.lookup(address);
    const overrides = org.userAttributes.get(address) ?? (found ? org.userAttributes.get(found.mail) : undefined);
    if (!found && !overrides) return undefined;
    if (!overrides) return found;
    if (!found) {
      let merged = overrideOnlyUsers.get(address);
      if (!merged) overrideOnlyUsers.set(address, (merged = { mail: address, aliases: [], attributes: { ...overrides }, groups: [] }));
      return merged;
    }
    const known = mergedUsers.get(found);
    if (known?.overrides === overrides) return known.merged;
    const merged = { ...found, attributes: { ...found.attributes, ...overrides } };
    mergedUsers.set(found, { overrides, merged });
    return merged;
  }

  function decide(facts: MessageFacts, envelope: Envelope, decision: Decision): Edit {
    const { headers, structure } = facts;
    if (parseStamps(headers).some((s) => s.org === org.orgId)) return pass(decision, 'already-processed', false);
    if (structure.signedOrEncrypted) return pass(decision, structure.signedOrEncrypted);
    if (structure.report) return pass(decision, 'report');
    if (structure.tnefOnly) return pass(decision, 'tnef');
    // the null reverse-path is for notifications (RFC 5321 4.5.5): no sender to sign for, and no banner belongs on one
    if (envelope.mailFrom === '') return pass(decision, 'null-sender');
    const calendarMethod = structure.calendar ? (structure.calendar.method ?? '').toUpperCase() : undefined;
    const htmlOnly = calendarMethod !== undefined;
    // html-only edits nothing unless the HTML part itself can be edited: the stamp must not say signed
    if (calendarMethod !== undefined && (org.options.calendar !== 'html-only' || calendarMethod !== 'REQUEST' || !structure.editable.html)) {
      return pass(decision, 'calendar');
    }
    const subject = decodedSubject(headers);
    if (!org.options.signAutoReplies && isAutoReply(headers, subject)) return pass(decision, 'auto-reply');
    if (structure.tooLarge) return pass(decision, 'too-large');
    if (structure.noBody || (facts.html === undefined && facts.text === undefined)) return pass(decision, structure.ambiguous ? 'ambiguous-part' : 'no-body');

    const htmlQuote = facts.quoteStart('html');
    const textQuote = facts.quoteStart('text');
    const kind = detectKind(headers, subject, htmlQuote !== undefined || textQuote !== undefined);
    decision.kind = kind;

    const user = lookupUser(envelope.mailFrom);
    const at = now();
    const selection = rules.select({
      sender: envelope.mailFrom.toLowerCase(),
      user,
      recipients: envelope.rcptTo.map((r) => r.toLowerCase()),
      subject,
      body: rules.needsBody ? newText(facts, htmlQuote, textQuote) : '',
      kind,
      now: at,
    });
    decision.selection = selection;
    if (selection.matchedRules.length === 0) return pass(decision, 'no-rule');

    let templateId = selection.noSignature ? undefined : selection.templateId;
    let skipped: PassReason | undefined = selection.noSignature ? 'no-signature' : undefined;
    if (templateId && !user) {
      // A template without the person's attributes would print empty names.
      templateId = undefined;
      skipped = 'unknown-sender';
    }
    // The sender's own marker: a colleague's signature in the thread (they wrote
    // earlier, or their message is being forwarded) does not stand for this sender's.
    const senderMarker = senderMarkerOf(marker, org.orgId, user?.mail ?? envelope.mailFrom);
    if (templateId && selection.skipIfInThread && signatureInThread(facts, htmlQuote, textQuote, senderMarker)) {
      templateId = undefined;
      skipped = 'in-thread';
    }
    const context: RenderContext = { user, sender: envelope.mailFrom.toLowerCase(), org, now: at, kind };
    let signature: RenderedSnippet | undefined;
    let addons: Array<{ id: string; position: 'top' | 'bottom'; snippet: RenderedSnippet }>;
    try {
      signature = templateId ? templates.render(templateId, context) : undefined;
      addons = selection.addons.map((id) => ({ id, position: org.addons.get(id)?.position ?? 'bottom', snippet: templates.renderAddon(id, context) }));
    } catch (error) {
      // A template that fails for this sender's values fails the same way on every retry:
      // deferred, the message would wait until Exchange Online bounces it. It goes unsigned.
      if (!(error instanceof TemplateRenderError)) throw error;
      decision.templateError = { where: error.where, errorName: error.errorName, message: error.message };
      return pass(decision, 'template-error');
    }
    if (!signature && addons.length === 0) return pass(decision, skipped ?? 'no-signature');

    decision.outcome = 'sign';
    decision.templateId = templateId;
    decision.addons = addons.map((a) => a.id);
    const top = addons.filter((a) => a.position === 'top').map((a) => a.snippet);
    const bottom = [...(signature ? [signature] : []), ...addons.filter((a) => a.position === 'bottom').map((a) => a.snippet)];
    const images = new Map<string, RenderedSnippet['images'][number]>();
    for (const snippet of [...top, ...bottom]) for (const image of snippet.images) images.set(image.cid, image);
    return {
      addHeaders: [stamp(decision, 'signed')],
      removeHeaders: org.options.dkim === 'remove' ? ['DKIM-Signature'] : [],
      body: {
        // The markers say "this organization's signature, this sender's, is here"
        // (skipIfInThread looks for them in quoted threads): only a block holding the
        // signature carries them, so a thread whose messages got only a disclaimer
        // does not count as signed.
        html: bottom.length ? `<div${signature ? ` class="${marker} ${senderMarker}" id="${senderMarker}"` : ''}>${bottom.map((s) => s.html).join('')}</div>` : '',
        // In text, a blank line sets the signature apart from the new text
        // above it, and the top banners from the new text below them.
        text: blankLineAround(bottom.map((s) => s.text.trim()).filter(Boolean).join('\n\n'), 'before'),
        topHtml: top.map((s) => s.html).join(''),
        topText: blankLineAround(top.map((s) => s.text.trim()).filter(Boolean).join('\n\n'), 'after'),
        placeholder: org.options.placeholder,
        // only a signature takes a sign-off's place: a disclaimer alone leaves it be
        ...(signature && signOffs ? { signOffs } : {}),
        // plain text alone gets an HTML alternative for the signature's sake (not for add-ons alone)
        ...(signature && org.options.plainTextToHtml && structure.plainTextOnly && structure.editable.text ? { textToHtml: true } : {}),
        images: [...images.values()],
        htmlOnly,
      },
    };
  }

  function signatureInThread(facts: MessageFacts, htmlQuote: number | undefined, textQuote: number | undefined, wanted: string): boolean {
    if (facts.html !== undefined && htmlQuote !== undefined && facts.html.indexOf(wanted, htmlQuote) >= 0) return true;
    // Text-only threads carry no markup: look for the marker word the HTML would carry,
    // which survives when a client quotes the HTML part as text.
    return facts.text !== undefined && textQuote !== undefined && facts.text.indexOf(wanted, textQuote) >= 0;
  }

  return {
    orgId: org.orgId,
    configVersion: org.version,
    process(input: Readable, envelope: Envelope) {
      let decideNanos = 0n;
      let inputEnded: bigint | undefined;
      let outputEnded: bigint | undefined;
      input.once('end', () => (inputEnded = process.hrtime.bigint()));
      const decision: Decision = { outcome: 'pass', addons: [] };
      const handle = transformMessage(
        input,
        (facts) => {
          const t = process.hrtime.bigint();
          try {
            return decide(facts, envelope, decision);
          } finally {
            decideNanos += process.hrtime.bigint() - t;
          }
        },
        { maxEditablePartBytes: org.options.maxEditablePartBytes, ...(separators ? { separators } : {}) },
      );
      handle.output.once('end', () => (outputEnded = process.hrtime.bigint()));
      const result = handle.report.then((report): EngineResult => {
        // The engine's own cost: deciding and rendering, plus the time the
        // output trailed the input (the surgery on held parts).
        const tail = inputEnded !== undefined && outputEnded !== undefined && outputEnded > inputEnded ? outputEnded - inputEnded : 0n;
        return toResult(report, decision, Number(decideNanos + tail) / 1e9);
      });
      return { output: handle.output, result };
    },
  };

  function toResult(report: TransformReport, decision: Decision, engineSeconds: number): EngineResult {
    const signed = decision.outcome === 'sign' && report.parts.length > 0;
    return {
      outcome: signed ? 'signed' : 'passed',
      reason: signed ? undefined : (decision.reason ?? (report.ambiguousParts.length ? 'ambiguous-part' : 'no-body')),
      orgId: org.orgId,
      configVersion: org.version,
      kind: decision.kind,
      ruleIds: decision.selection?.matchedRules ?? [],
      templateId: signed ? decision.templateId : undefined,
      addons: signed ? decision.addons : [],
      parts: report.parts,
      ...(report.ambiguousParts.length ? { ambiguousParts: report.ambiguousParts } : {}),
      bytesIn: report.bytesIn,
      bytesOut: report.bytesOut,
      engineSeconds,
      trace: decision.selection?.trace,
      templateError: decision.templateError,
    };
  }
}

function blankLineAround(text: string, where: 'before' | 'after'): string {
  if (!text) return '';
  return where === 'before' ? `\n${text}` : `${text}\n\n`;
}

/** The new text of the body (above any quoted thread) for keyword rules: the text part, else the HTML's text content. */
function newText(facts: MessageFacts, htmlQuote: number | undefined, textQuote: number | undefined): string {
  if (facts.text !== undefined) return facts.text.slice(0, textQuote);
  if (facts.html === undefined) return '';
  return htmlTextContent(facts.html.slice(0, htmlQuote));
}

// Elements that sit inside a line of text: they do not separate words ("<b>Spe</b>cial").
const INLINE_ELEMENTS = new Set([
  'a', 'abbr', 'b', 'bdi', 'bdo', 'big', 'cite', 'code', 'data', 'del', 'dfn', 'em', 'font', 'i', 'ins', 'kbd', 'mark',
  'o:p', 'q', 's', 'samp', 'small', 'span', 'strike', 'strong', 'sub', 'sup', 'time', 'tt', 'u', 'var', 'wbr',
]);
const HIDDEN_ELEMENTS = new Set(['style', 'script', 'title', 'template']);

/** The text a reader sees in an HTML fragment: entities decoded (`R&amp;D`, `caf&eacute;`), style and script skipped, blocks apart. */
function htmlTextContent(html: string): string {
  const out: string[] = [];
  let hidden = 0;
  const parser = new Parser(
    {
      onopentag(name) {
        if (HIDDEN_ELEMENTS.has(name)) hidden++;
        else if (!INLINE_ELEMENTS.has(name)) out.push(' ');
      },
      onclosetag(name) {
        if (HIDDEN_ELEMENTS.has(name)) hidden = Math.max(0, hidden - 1);
        else if (!INLINE_ELEMENTS.has(name)) out.push(' ');
      },
      ontext(text) {
        if (hidden === 0) out.push(text);
      },
    },
    { decodeEntities: true },
  );
  parser.write(html);
  parser.end();
  return out.join('');
}
