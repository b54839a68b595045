// A client's own sign-off: the line a mail app ends a message with when its
// user has set no signature ("Sent from my iPhone", "Get Outlook for
// Android"). With the organization's signature under it, the message ends
// twice. When the organization asks for it (options.replaceSignOffs), the
// signature takes the sign-off's place — only when the sign-off is the last
// line of the new text, so a sentence that happens to read the same in the
// middle of a message, or in the quoted thread, is never touched.
//
// Wordings: the defaults of iOS Mail, Outlook for iOS/Android, Samsung Email,
// Windows Mail and Yahoo Mail in the languages the reply separators cover,
// as collected by reply parsers (talon, email_reply_parser and others).
import { foldLine, isBlank } from './patterns';

/** A device or app name after "Sent from my": a few words, no sentence punctuation. */
const DEVICE = "[^,;:!?<>()\\[\\]]{1,40}";
const MOBILE_OUTLOOK = '(?:iOS|Android)';

const BUILT_IN: RegExp[] = [
  // English
  new RegExp(`^Sent from my ${DEVICE}$`, 'i'),
  new RegExp(`^Sent from (?:Mail|Outlook|Yahoo Mail)(?: (?:for|on) ${DEVICE})?$`, 'i'),
  new RegExp(`^Get Outlook for ${MOBILE_OUTLOOK}$`, 'i'),
  // German
  new RegExp(`^Von meinem ${DEVICE} gesendet$`, 'i'),
  new RegExp(`^Gesendet von (?:meinem ${DEVICE}|(?:Outlook|Mail) für ${DEVICE})$`, 'i'),
  new RegExp(`^Outlook für ${MOBILE_OUTLOOK} beziehen$`, 'i'),
  // French
  new RegExp(`^Envoyé (?:de|depuis) mon ${DEVICE}$`, 'i'),
  new RegExp(`^Obtenir Outlook pour ${MOBILE_OUTLOOK}$`, 'i'),
  // Spanish
  new RegExp(`^Enviado desde mi ${DEVICE}$`, 'i'),
  new RegExp(`^Obtener Outlook para ${MOBILE_OUTLOOK}$`, 'i'),
  // Italian ("Inviato da" alone is too common a phrase: only the device names)
  /^Inviato da (?:iPhone|iPad)$/i,
  new RegExp(`^Inviato dal mio ${DEVICE}$`, 'i'),
  // Dutch
  new RegExp(`^(?:Verstuurd|Verzonden) vanaf mijn ${DEVICE}$`, 'i'),
  // Portuguese
  new RegExp(`^Enviado do meu ${DEVICE}$`, 'i'),
  // Polish
  new RegExp(`^Wysłane z (?:mojego )?${DEVICE}$`, 'i'),
  // Swedish, Danish, Norwegian
  new RegExp(`^Skickat från min ${DEVICE}$`, 'i'),
  new RegExp(`^Sendt fra min ${DEVICE}$`, 'i'),
  // Japanese, Chinese (iOS)
  /^(?:iPhone|iPad)から送信$/i,
  /^发自我的 ?(?:iPhone|iPad)$/i,
];

/** At most this many words in a built-in sign-off: a longer line is a sentence the sender wrote. */
const MAX_WORDS = 8;

/** Outlook for iOS/Android writes its link after the words in the text part: "Get Outlook for iOS<https://aka.ms/o0ukef>". */
const TRAILING_LINK = /\s*<https?:\/\/[^\s<>]*>$/i;

/** Compares lines the way a reader does: blanks collapsed, case ignored, Outlook's link left out. */
function comparable(line: string): string {
  return foldLine(line).replace(TRAILING_LINK, '');
}

export interface SignOffs {
  /** Whether a whole line of the new text is a client's sign-off. */
  matches(line: string): boolean;
}

/**
 * The sign-offs to replace: the built-in ones and the organization's own
 * (`options.signOffs`, exact text; case and blanks do not matter). Compiled
 * once per configuration version.
 */
export function compileSignOffs(custom: readonly string[]): SignOffs {
  const exact = new Set(custom.map(comparable).filter((s) => s.length > 0));
  return {
    matches(line: string): boolean {
      if (line.length > 400) return false;
      const s = comparable(line);
      if (s.length === 0 || s.length > 120) return false;
      if (exact.has(s)) return true;
      if (s.split(' ').length > MAX_WORDS) return false;
      return BUILT_IN.some((re) => re.test(s));
    },
  };
}

/**
 * The last non-blank line of `text` before `limit`, or undefined when there
 * is only blank text: `lineStart`/`lineEnd` span the whole line with its line
 * break (when it has one before `limit`), `start`/`end` its first and last
 * non-blank characters (end exclusive).
 */
export function lastLineBefore(text: string, limit: number): { lineStart: number; lineEnd: number; start: number; end: number } | undefined {
  let end = limit;
  while (end > 0) {
    let contentEnd = end;
    if (text[contentEnd - 1] === '\n') contentEnd--;
    if (text[contentEnd - 1] === '\r') contentEnd--;
    const lineStart = contentEnd > 0 ? text.lastIndexOf('\n', contentEnd - 1) + 1 : 0;
    const line = text.slice(lineStart, contentEnd);
    if (!isBlank(line)) {
      const lead = /^[\s\u200b\ufeff]*/.exec(line)![0].length;
      let last = contentEnd;
      // by hand: an end-anchored regex would try every position of a long line
      while (last > lineStart + lead && isBlank(text[last - 1]!)) last--;
      return { lineStart, lineEnd: end, start: lineStart + lead, end: last };
    }
    end = lineStart;
  }
  return undefined;
}
