// Contract of the MIME surgery. Nothing here knows about SMTP, rules or
// templates: the caller gives a decision function and gets back a stream whose
// bytes equal the input's outside the edited body parts and added headers.
import type { Readable } from 'node:stream';
import type { Separators } from './placement/separators';
import type { SignOffs } from './placement/sign-off';

export type MessageKind = 'new' | 'reply' | 'forward';

/** Top-level header access; values are unfolded raw strings (encoded-words not decoded). */
export interface HeaderView {
  get(name: string): string[];
  first(name: string): string | undefined;
  has(name: string): boolean;
}

/** What the splitter learned about the message's structure. */
export interface StructureFacts {
  /** Top-level media type, lower-case, e.g. `multipart/alternative`. */
  contentType: string;
  /** multipart/signed, multipart/encrypted, application/(x-)pkcs7-mime, PGP/MIME or inline PGP armour. */
  signedOrEncrypted?: 'smime' | 'pgp';
  /** multipart/report (DSN, MDN/read receipt) or message/disposition-notification. */
  report: boolean;
  /** A text/calendar body part exists (an attached .ics file is none); its METHOD when known (REQUEST, REPLY, CANCEL, COUNTER…). */
  calendar?: { method?: string };
  /** application/ms-tnef (winmail.dat) is the only content. */
  tnefOnly: boolean;
  /**
   * No editable main body part (text/plain or text/html) was found: none exists, or none
   * decodes without loss (unknown transfer encoding, bytes that do not match the charset)
   * within the size cap. The decoded `html`/`text` may still be given for rules.
   */
  noBody: boolean;
  /** Which main body parts an edit would change (noBody: neither), so a decision never counts on one that stays as it is. */
  editable: { html: boolean; text: boolean };
  /**
   * The body is plain text alone: a main text/plain part at the top or only
   * inside multipart/mixed, and no text/html main part (none can follow it).
   * Only such a body can be given an HTML alternative (BodyInsertion.textToHtml).
   */
  plainTextOnly: boolean;
  /** A main body part exceeded `maxEditablePartBytes`. */
  tooLarge: boolean;
  /**
   * A main body part names its Content-Type, Content-Transfer-Encoding or
   * Content-Disposition twice with different values (or sits in a multipart
   * whose Content-Type is given twice so): mailsplit reads the first, other
   * readers the last. Such a part is not editable (nor decoded for `decide`).
   */
  ambiguous: boolean;
}

/** Everything `decide` may look at. Body texts are decoded to JS strings. */
export interface MessageFacts {
  headers: HeaderView;
  structure: StructureFacts;
  /** Decoded first main text/html part, if any. */
  html?: string;
  /** Decoded first main text/plain part, if any. */
  text?: string;
  /**
   * Where the quoted thread starts in that part's decoded text, if it has one.
   * Computed on first ask and kept for placing the signature, so the part is
   * scanned once.
   */
  quoteStart(part: 'html' | 'text'): number | undefined;
}

/** An image to embed as a CID part next to the edited HTML. */
export interface InlineImage {
  cid: string;
  contentType: string;
  filename: string;
  data: Buffer;
}

/** What to insert into the main body parts. Snippets are already rendered and escaped. */
export interface BodyInsertion {
  /** Signature (+ bottom add-ons) for HTML parts. */
  html: string;
  /** Signature (+ bottom add-ons) for text parts. */
  text: string;
  /** Top banners, inserted at the start of the body. Empty string → nothing. */
  topHtml: string;
  topText: string;
  /** Text the sender may have typed to place the signature; replaced when found. */
  placeholder: string;
  /** A client's own sign-off ("Sent from my iPhone") ending the new text is replaced by the signature; absent → left alone. */
  signOffs?: SignOffs;
  images: InlineImage[];
  /**
   * A plain-text-only body (StructureFacts.plainTextOnly) becomes
   * multipart/alternative: the text part edited as usual, then an HTML part
   * made from the same text with `topHtml` and `html` in the same places.
   */
  textToHtml?: boolean;
  /** Sign the text/html part of a calendar invitation only (never text/calendar, never text/plain). */
  htmlOnly?: boolean;
}

export interface Edit {
  /** Header fields added at the very top of the header block, in order. */
  addHeaders: Array<[name: string, value: string]>;
  /** Header field names removed from the top-level header block (e.g. DKIM-Signature). */
  removeHeaders: string[];
  /** Absent → body left byte-identical. */
  body?: BodyInsertion;
}

export type Placement = 'placeholder' | 'sign-off' | 'above-quote' | 'end';

export interface PartReport {
  contentType: 'text/html' | 'text/plain';
  placement: Placement;
  /** Re-encoded as UTF-8 because the original charset or encoding could not carry the signature. */
  reencoded: boolean;
  /** An HTML part made from the text part (BodyInsertion.textToHtml), not one the message had. */
  converted?: boolean;
  charset: string;
  transferEncoding: string;
}

export interface TransformReport {
  bytesIn: number;
  bytesOut: number;
  /**
   * Input bytes copied as they came without being split: what follows the last
   * part an edit could touch (attachments, mostly), or a message the splitter
   * lost track of.
   */
  unsplitBytes: number;
  /** Body parts that were edited (empty when the body passed through). */
  parts: PartReport[];
  /** Main body parts left unchanged because their header fields can be read two ways (see StructureFacts.ambiguous). */
  ambiguousParts: Array<PartReport['contentType']>;
  /** Whether `decide` was called and what it returned (for logs/explain). */
  edit: Edit;
}

export interface TransformOptions {
  /** Cap on the decoded size of an edited body part; above it facts.structure.tooLarge is set. */
  maxEditablePartBytes: number;
  /**
   * Cap on other bytes held before `decide` is called (headers, boundaries, parts that come
   * before the main body). Above it `decide` is called with what is known (structure.tooLarge)
   * and main parts that arrive later are still edited as they stream. Default: maxEditablePartBytes.
   */
  maxHeldBytes?: number;
  /** The organization's own reply separators (options.separators), besides the built-in ones. */
  separators?: Separators;
}

export type Decide = (facts: MessageFacts) => Edit | Promise<Edit>;

export interface TransformHandle {
  output: Readable;
  /** Resolves when the output has been fully produced; rejects on malformed input that cannot be relayed or on an error in `decide`. */
  report: Promise<TransformReport>;
}
