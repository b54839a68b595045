// Line classifiers shared by the plain-text and HTML detectors. A "line" is a
// text line in text/plain, or the text between two block boundaries (block
// tags, <br>) in HTML. Every pattern is anchored at the start of the line so a
// word like "wrote:" inside a sentence never counts.
//
// Sources of the wordings: the reply/forward templates of Outlook, OWA, Gmail,
// Apple Mail and Thunderbird in the languages they ship, as collected by
// mailgun/talon, crisp-oss/email-reply-parser and email-forward-parser (per
// client and locale), checked against real replies in public mailing lists.

/** Characters that render as blank: whitespace, NBSP, zero-width space, BOM. */
const BLANK_RE = /^[\s\u00a0\u200b\ufeff]*$/;

export function isBlank(line: string): boolean {
  return BLANK_RE.test(line);
}

// The line classifiers below run one after another on the same line: the last
// result is kept so the line is normalised once. The scans call
// forgetLastLine() when they finish, so no line of a message stays in memory.
let lastLine = '';
let lastNormalised = '';

export function forgetLastLine(): void {
  lastLine = '';
  lastNormalised = '';
}

/** Normalises a line for matching: NBSP and zero-width characters → space, then trims. */
export function normaliseLine(line: string): string {
  if (line !== lastLine) {
    lastLine = line;
    lastNormalised = line.replace(/[\u00a0\u200b\ufeff]/g, ' ').trim();
  }
  return lastNormalised;
}

/** A line as a reader compares it with a configured one: normalised, blanks collapsed, case ignored. */
export function foldLine(line: string): string {
  return normaliseLine(line).replace(/\s+/g, ' ').toLowerCase();
}

/** Removes leading `>` quote markers ("> > text" → "text"). */
export function stripQuoteMarkers(line: string): string {
  return line.replace(/^(?:>[ \t]?)+/, '').trim();
}

export function isQuotedLine(line: string): boolean {
  return /^[ \t]*>/.test(line);
}

// "-----Original Message-----" and its translations, any run of hyphens (or
// none on the right) around the words.
const ORIGINAL_WORDS = [
  'Original Message',
  'Reply Message',
  'Ursprüngliche Nachricht',
  "Message d'origine",
  'Message d’origine',
  'Mensaje original',
  'Oorspronkelijk bericht',
  'Oryginalna wiadomość',
  'Wiadomość oryginalna',
  'Oprindelig meddelelse',
  'Oprindelig besked',
  'Opprinnelig melding',
  'Messaggio originale',
  'Mensagem original',
  'Ursprungligt meddelande',
  'Alkuperäinen viesti',
];
const FORWARD_WORDS = [
  'Forwarded message',
  'Forwarded Message',
  'Weitergeleitete Nachricht',
  'Message transféré',
  'Mensaje reenviado',
  'Doorgestuurd bericht',
  'Przekazana wiadomość',
  'Wiadomość przekazana',
  'Messaggio inoltrato',
  'Mensagem encaminhada',
  'Mensagem reencaminhada',
  'Treść przekazanej wiadomości',
  'Videresendt meddelelse',
  'Videresendt melding',
  'Vidarebefordrat meddelande',
];
const APPLE_FORWARD_WORDS = [
  'Begin forwarded message',
  'Anfang der weitergeleiteten Nachricht',
  'Début du message réexpédié',
  'Début du message transféré',
  'Inicio del mensaje reenviado',
  'Begin doorgestuurd bericht',
  'Początek przekazywanej wiadomości',
  'Inizio messaggio inoltrato',
  'Início da mensagem reencaminhada',
  'Início da mensagem encaminhada',
  'Start på videresendt besked',
  'Videresendt melding',
  'Vidarebefordrat mejl',
  'Välitetty viesti alkaa',
];

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
function wordsRe(words: string[]): string {
  return words.map((w) => escapeRe(w).replace(/ /g, '\\s+').replace(/'/g, "['’]")).join('|');
}

const DASH_BANNER_RE = new RegExp(`^-{2,}\\s*(?:${wordsRe(ORIGINAL_WORDS)})\\s*-*$`, 'i');
const FORWARD_BANNER_RE = new RegExp(`^-{2,}\\s*(?:${wordsRe(FORWARD_WORDS)})\\s*-*$`, 'i');
const APPLE_FORWARD_RE = new RegExp(`^(?:${wordsRe(APPLE_FORWARD_WORDS)})\\s*:$`, 'i');

/** "-----Original Message-----", "----- Ursprüngliche Nachricht -----", "---------- Forwarded message ---------", "Begin forwarded message:". */
export function isBannerLine(line: string): boolean {
  const s = normaliseLine(line);
  if (s.length > 120) return false;
  // every banner starts with a dash or ends with a colon: most lines are ruled out without a regex
  if (s.charCodeAt(0) !== 0x2d && s.charCodeAt(s.length - 1) !== 0x3a) return false;
  return DASH_BANNER_RE.test(s) || FORWARD_BANNER_RE.test(s) || APPLE_FORWARD_RE.test(s);
}

/** Outlook's plain-text ruler above the header block. */
export function isUnderscoreRuler(line: string): boolean {
  const s = normaliseLine(line);
  return s.charCodeAt(0) === 0x5f && /^_{10,}$/.test(s);
}

export type HeaderKey = 'from' | 'sent' | 'to' | 'cc' | 'subject';

// Header names of the quoted header block (Outlook, OWA, Gmail forwards,
// Samsung, Apple) in the locales the product supports. Outlook desktop's
// Sent label is two words in some locales: Spanish "Enviado el:", Brazilian
// Portuguese "Enviada em:" (a block is cut short by the first line whose name
// is not listed here, so each label of a locale must be).
const HEADER_KEYS: Array<[HeaderKey, string[]]> = [
  ['from', ['From', 'Von', 'De', 'Van', 'Od', 'Da', 'Fra', 'Från', 'Lähettäjä', 'Feladó', '发件人', '寄件者', '差出人', '보낸 사람']],
  ['sent', ['Sent', 'Date', 'Gesendet', 'Datum', 'Envoyé', 'Enviado', 'Enviado el', 'Enviada em', 'Enviado em', 'Fecha', 'Verzonden', 'Wysłano', 'Data', 'Inviato', 'Sendt', 'Dato', 'Skickat', 'Lähetetty', 'Päivämäärä', '发送时间', '寄件日期', '送信日時', '日付', '보낸 날짜']],
  ['to', ['To', 'An', 'À', 'A', 'Para', 'Aan', 'Do', 'Til', 'Till', 'Vastaanottaja', '收件人', '收件者', '宛先', '받는 사람']],
  ['cc', ['Cc', 'Kopie', 'Copie à', 'CC', 'DW', 'Kopia', 'Kopi', 'Kopia do', '抄送']],
  ['subject', ['Subject', 'Betreff', 'Objet', 'Asunto', 'Onderwerp', 'Temat', 'Oggetto', 'Assunto', 'Emne', 'Ämne', 'Aihe', 'Tárgy', '主题', '主旨', '件名', '제목']],
];
const HEADER_KEY_LOOKUP = new Map<string, HeaderKey>();
for (const [key, names] of HEADER_KEYS) for (const n of names) HEADER_KEY_LOOKUP.set(n.toLowerCase(), key);
const HEADER_LINE_RE = new RegExp(
  `^\\*?(${[...HEADER_KEY_LOOKUP.keys()].sort((a, b) => b.length - a.length).map(escapeRe).join('|')})\\*?\\s*[:：]\\*?(?:\\s|$)`,
  'i',
);

/** The header name a line starts with ("From: …", "*Von:* …", "De : …"), after removing `>` markers. */
export function headerKeyOf(line: string): HeaderKey | undefined {
  const n = normaliseLine(line);
  const s = n.charCodeAt(0) === 0x3e ? stripQuoteMarkers(n) : n;
  if (s.length > 2000) return undefined;
  // the colon (or a full-width one) follows a name of at most 13 letters: most lines are ruled out without the regex
  const head = s.slice(0, 64);
  if (!head.includes(':') && !head.includes('：')) return undefined;
  const m = HEADER_LINE_RE.exec(s);
  if (!m) return undefined;
  return HEADER_KEY_LOOKUP.get(m[1]!.toLowerCase());
}

// Attribution lines ("On <date>, <name> wrote:") per language: the leading
// word (or, for the date-first Scandinavian form, a date and a time) and the
// verb at the end are both required.
const ATTRIBUTION_RES: RegExp[] = [
  /^On\s.+\swrote\s*:$/i,
  /^Le\s.+\sa\s+écrit\s*:$/i,
  /^El\s.+\sescribió\s*:$/i,
  /^Am\s.+\sschrieb(?:\s.*)?:$/i,
  // Gmail/Thunderbird "Op … schreef X:"; Apple Mail "Op … heeft X het volgende geschreven:"; Outlook "Op … heeft X geschreven:"
  /^Op\s.+\s(?:schreef(?:\s.*)?|geschreven\s*):$/i,
  /^(?:W dniu|Dnia)\s.+\s(?:napisał\(a\)|napisała|napisał|pisze)\s*:$/i,
  // Apple Mail: "Wiadomość napisana przez X <x@…> w dniu 3 sty 2022, o godz. 10:00:"
  /^Wiadomość\s+napisana\s+przez\s.+\sw\s+dniu\s.+:$/i,
  /^(?:Il|In data)\s.+\sha\s+scritto\s*:$/i,
  // Apple Mail (pt-PT) "A 3/01/2022, às 10:00, X escreveu:"; Thunderbird (pt-PT) "Às 10:00 de 03/01/2022, X escreveu:"
  /^(?:Em|No dia|A|Às)\s.+\sescreveu\s*:$/i,
  /^(?:Den|På)\s.+\sskrev(?:\s.*)?:$/i,
  // Apple Mail (sv, nb), Gmail (da, nb), date first: "3 jan. 2022 kl. 10:00 skrev X <x@…>:",
  // "søn. 30. apr. 2017 kl. 00.26 skrev X <x@…>:"; with no leading word, a time and an address are required
  /^(?:[^\s\d]{2,5}\s+)?\d{1,2}\.?\s.*\d[.:]\d\d,?\s+skrev\s.*@.*:$/i,
];
const ATTRIBUTION_LEAD_RE =
  /^(?:On|Le|El|Am|Op|W dniu|Dnia|Wiadomość napisana przez|Il|In data|Em|No dia|A|Às|Den|På|(?:[^\s\d]{2,5}\s+)?\d{1,2}\.?)\s/i;

/** Whether a (quote-marker-free) line is a complete attribution line. */
export function isAttribution(line: string): boolean {
  const s = normaliseLine(line);
  // every attribution ends with a colon: most lines are ruled out without the regexes
  if (s.length > 600 || s.charCodeAt(s.length - 1) !== 0x3a) return false;
  return ATTRIBUTION_RES.some((re) => re.test(s));
}

/** Whether a line could be the first half of an attribution that the client wrapped (Gmail wraps at ~80 columns). */
export function startsAttribution(line: string): boolean {
  const s = normaliseLine(line);
  return s.length <= 600 && ATTRIBUTION_LEAD_RE.test(s);
}

/** An attribution that is unlikely to be typed prose: it names a date/time or an address. */
export function attributionLooksGenerated(line: string): boolean {
  return /\d|@/.test(line);
}

// The verb that ends an attribution in languages whose attribution does not
// start with a fixed word (Russian, Finnish, Chinese, Japanese) or whose
// client puts the date first ("02.04.2012 14:20 … написал:"). Only trusted
// when a `>` quoted block follows.
const ATTRIBUTION_VERB_END_RE =
  /(?:\swrote|\sschrieb|\sschreef|\sgeschreven|\sa\s+écrit|\sescribió|\sha\s+scritto|\sescreveu|\sskrev|\snapisał\(a\)|\snapisała|\snapisał|\spisze|\sнаписал\(а\)|\sнаписала|\sнаписал|\sпишет|\skirjoitti|写道|のメッセージ|작성)\s*[:：]$/i;

function colonAtEnd(s: string): boolean {
  const last = s.charCodeAt(s.length - 1);
  return last === 0x3a || last === 0xff1a;
}

/**
 * Whether a line ends with a colon (or a full-width one) before any trailing
 * blanks, as every attribution does: the check to make before joining lines.
 * Reads the raw line from its end, without normalising it.
 */
export function endsWithColon(line: string): boolean {
  let k = line.length - 1;
  for (; k >= 0; k--) {
    const c = line.charCodeAt(k);
    // anything trim() or normaliseLine removes (and a few control characters): never a colon
    if (!(c <= 0x20 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200b) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff)) break;
  }
  const last = line.charCodeAt(k);
  return last === 0x3a || last === 0xff1a;
}

/** Whether a line ends like an attribution ("… wrote:", "… написал:", "…写道："). */
export function endsWithAttributionVerb(line: string): boolean {
  const s = normaliseLine(line);
  if (s.length > 600) return false;
  // the regex is not anchored at the start (it is tried at every position): check the colon first
  return colonAtEnd(s) && ATTRIBUTION_VERB_END_RE.test(s);
}

// Attributions whose verb is not at the end, only trusted when a `>` quoted
// block follows: the name first, then the verb and the date (Gmail for Android
// "X <x@…> schrieb am Mo., 3. Jan. 2022, 10:00:", Gmail pt-PT "X <x@…> escreveu
// no dia segunda, 3/01/2022 à(s) 10:00:", Outlook nb "X <x@…> skrev følgende
// den 3. januar 2022 10:00:"), and talon's "On <date>, X sent:" and
// "Op <date> verzond X:" (a verb too common in prose to trust alone).
const ATTRIBUTION_VERB_INSIDE_RE =
  /^(?:.+\s(?:schrieb\s+am|escreveu\s+no\s+dia|skrev\s+følgende\s+den)\s.+|On\s.+,.+\ssent\s*|Op\s.+\sverzond(?:\s.*)?):$/i;

/** Whether a line is an attribution with the verb before the date, or with "sent"/"verzond" (see above): only trusted when a quote follows. */
export function isWeakAttribution(line: string): boolean {
  const s = normaliseLine(line);
  if (s.length > 600 || s.charCodeAt(s.length - 1) !== 0x3a) return false;
  return ATTRIBUTION_VERB_INSIDE_RE.test(s);
}
