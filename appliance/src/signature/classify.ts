// Facts about a message that decide whether and how it is signed: which kind
// it is (new, reply, forward), whether it is an automatic reply, and whether
// this organization has already processed it. Header-based and cheap; the body
// is only consulted through the quote position the placement module found.
// libmime's functions are methods of its default export: called detached, they lose `this` and throw.
import libmime from 'libmime';
import type { HeaderView, MessageKind } from '../mime/types';

export const STAMP_HEADER = 'X-Signet-Processed';

// Subject prefixes clients add, in the languages the reply separators cover
// and a few more scripts (Greek, Hebrew, Chinese, Japanese, Korean).
// Order matters only for readability: the first prefix decides the kind.
const REPLY_PREFIX = /^(re|aw|antw|antwort|sv|vs|rif|odp|res|ynt|atb|vá|απ|σχετ|השב|回复|答复|回覆|返信|회신)\s*(\[\d+\])?\s*[:：]/i;
const FORWARD_PREFIX = /^(fw|fwd|wg|tr|rv|enc|doorst|pd|vl|fs|trs|vb|πρθ|İlt|ilt|הועבר|转发|轉寄|転送|전달)\s*(\[\d+\])?\s*[:：]/i;
// Italian Outlook's one-letter prefixes ("R: …" reply, "I: …" forward) also
// begin ordinary subjects ("R: new package", "I: Introduction"): they count
// only for a message that is part of a thread.
const WEAK_REPLY_PREFIX = /^r\s*(\[\d+\])?\s*[:：]/i;
const WEAK_FORWARD_PREFIX = /^i\s*(\[\d+\])?\s*[:：]/i;

// Subjects Exchange and common clients give out-of-office answers.
const AUTO_REPLY_SUBJECT = /^(automatic reply|auto(matic)?[- ]?reply|out of (the )?office|abwesenheitsnotiz|automatische antwort|réponse automatique|respuesta automática|automatisch antwoord|odpowiedź automatyczna|risposta automatica|resposta automática)\s*[:：]/i;

export function decodedSubject(headers: HeaderView): string {
  const raw = headers.first('subject') ?? '';
  try {
    return libmime.decodeWords(raw).trim();
  } catch {
    return raw.trim();
  }
}

/**
 * New, reply or forward. The subject prefix is the sender's client's own
 * statement; threading headers come next; a quoted thread in a message
 * without either is treated as a reply (the signature goes above it anyway).
 */
export function detectKind(headers: HeaderView, subject: string, hasQuote: boolean): MessageKind {
  const inThread = hasQuote || headers.has('in-reply-to') || headers.has('references');
  const reply = REPLY_PREFIX.test(subject) || (inThread && WEAK_REPLY_PREFIX.test(subject));
  const forward = FORWARD_PREFIX.test(subject) || (inThread && WEAK_FORWARD_PREFIX.test(subject));
  if (forward && !reply) return 'forward';
  if (reply) return 'reply';
  if (headers.has('in-reply-to')) return 'reply';
  if (headers.has('references')) return hasQuote ? 'reply' : 'new';
  return hasQuote ? 'reply' : 'new';
}

/** Automatic replies: RFC 3834 Auto-Submitted, the de-facto markers, and Exchange's OOF subjects. */
export function isAutoReply(headers: HeaderView, subject: string): boolean {
  const autoSubmitted = headers.first('auto-submitted');
  if (autoSubmitted && autoSubmitted.trim().toLowerCase().split(/[;\s]/)[0] !== 'no') return true;
  const precedence = (headers.first('precedence') ?? '').trim().toLowerCase();
  if (precedence === 'auto_reply') return true;
  if (headers.has('x-autoreply') || headers.has('x-autorespond')) return true;
  return AUTO_REPLY_SUBJECT.test(subject);
}

export interface Stamp {
  org?: string;
  fields: Record<string, string>;
}

/** Parses `org=contoso; result=signed; …` stamps; unknown shapes yield no org. */
export function parseStamps(headers: HeaderView): Stamp[] {
  return headers.get(STAMP_HEADER).map((value) => {
    const fields: Record<string, string> = {};
    for (const pair of value.split(';')) {
      const eq = pair.indexOf('=');
      if (eq > 0) fields[pair.slice(0, eq).trim().toLowerCase()] = pair.slice(eq + 1).trim();
    }
    return { org: fields.org, fields };
  });
}

export function formatStamp(fields: Array<[string, string | undefined]>): string {
  return fields
    .filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== '')
    .map(([key, value]) => `${key}=${value.replace(/[;\r\n]/g, ' ')}`)
    .join('; ');
}
