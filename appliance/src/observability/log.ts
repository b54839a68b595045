// Structured logs without message content. Message-IDs are logged only as a
// keyed hash, so a log line can be correlated with a message trace by someone
// who holds the key, and by no one else.
import { createHmac, randomBytes } from 'node:crypto';
import pino, { type Logger, type DestinationStream } from 'pino';

export type { Logger };

// An address-like token (local@domain.tld; a quoted local part, a domain in
// Unicode as SMTPUTF8 carries it, an address literal local@[192.0.2.1], an
// IDN top-level domain in its xn-- form, and `@` percent-encoded as in a
// Graph request URL). Error texts from libraries quote what they were given —
// a server's reply naming a recipient, a config path naming a user, a
// request's URL or body — so every string of a log line, its message included,
// is scrubbed of addresses, URL query strings (a SAS token is a secret) and
// other secret-shaped values before it is written.
const ADDRESS = /(?:"[^"\r\n]*"|[^\s<>"@:;,()[\]]+)(?:@|%40)(?:[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)*\.(?:xn--[a-z0-9-]+|\p{L}{2,})|\[[^\s\]]+\])/giu;
const URL_QUERY = /(https?:\/\/[^\s?#"'<>]+)\?[^\s"'<>]*/g;
const SECRETS: Array<[RegExp, string]> = [
  [/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g, '<private key>'],
  // JWTs (Entra ID access and id tokens) wherever they appear
  [/\beyJ[\w-]*\.[\w-]+\.[\w-]*/g, '<token>'],
  [/\b(Bearer|Basic)\s+[\w\-.~+/]{16,}=*/gi, '$1 <secret>'],
  // connection strings, SAS parameters and OAuth form fields: key=value up to ; & or a quote
  [/\b(AccountKey|SharedAccessKey|SharedAccessSignature|Password|Pwd|client_secret|client_assertion|access_token|refresh_token|id_token|sig)=[^;&\s"'<>]*/gi, '$1=<secret>'],
  // the same fields in a JSON text quoted inside an error message
  [/("(?:client_secret|client_assertion|access_token|refresh_token|id_token|password)"\s*:\s*")[^"]*/gi, '$1<secret>'],
];
// Fields whose value is never logged, at any depth (a caller that slips).
const SECRET_KEYS = /^(?:password|passphrase|secret|client_?secret|token|access_?token|refresh_?token|authorization|cookie|api_?key|private_?key|key|sas(?:_?token)?|connection_?string)$/i;
const CONTENT_KEYS = /^(?:subject|from|to|cc|bcc|reply_?to|rcpt|rcpt_?to|recipients?|sender|mail_?from|body|html|text|headers?)$/i;
const MAX_DEPTH = 6;

// A string with none of these holds nothing the patterns above would change (most log strings: ids, outcomes).
const MAYBE_SENSITIVE = /[@?=]|%40|eyJ|bearer|basic|-----BEGIN|secret|token|assertion|password/i;

function scrubString(value: string): string {
  if (!MAYBE_SENSITIVE.test(value)) return value;
  let out = value.replace(ADDRESS, '<address>').replace(URL_QUERY, '$1?<query removed>');
  for (const [pattern, replacement] of SECRETS) out = out.replace(pattern, replacement);
  return out;
}

/**
 * A log value with addresses, URL query strings and secrets removed: strings, arrays and objects
 * (plain or not: what JSON would write of them) a few levels deep; anything deeper is dropped.
 */
export function scrubLogValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrubString(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (value instanceof Error) return { type: value.name, message: scrubString(value.message) };
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return `[${value.byteLength} bytes]`;
  if (Array.isArray(value)) return value.map((v) => scrubLogValue(v, depth + 1));
  if (value instanceof Map) return scrubLogValue(Object.fromEntries(value), depth + 1);
  if (value instanceof Set) return scrubLogValue([...value], depth + 1);
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') {
    // a URL, a Date, a library's own class: what JSON.stringify would have written, scrubbed
    try {
      return scrubLogValue(toJSON.call(value), depth + 1);
    } catch {
      return '[unserializable]';
    }
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEYS.test(k) || CONTENT_KEYS.test(k) ? '[redacted]' : scrubLogValue(v, depth + 1);
  return out;
}

export function createLogger(options: { level?: string; name?: string; destination?: DestinationStream } = {}): Logger {
  const logger = pino(
    {
      name: options.name ?? 'signet',
      level: options.level ?? process.env.SIGNET_LOG_LEVEL ?? 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        log: (object) => scrubLogValue(object) as Record<string, unknown>,
        bindings: (bindings) => scrubLogValue(bindings) as Record<string, unknown>,
      },
      serializers: {
        // the message too (an Error logged as such lends it its own message; printf arguments land here)
        msg: (msg: unknown) => scrubLogValue(msg),
        // errors are already { type, message } here; pino's own serializer would relabel them "Object"
        err: (err: unknown) => err,
      },
    },
    options.destination,
  );
  // pino applies formatters.bindings to the base only, not to a child's bindings; children inherit this.
  const child = logger.child;
  logger.child = function (this: Logger, bindings, childOptions) {
    return child.call(this, scrubLogValue(bindings) as typeof bindings, childOptions);
  } as typeof logger.child;
  return logger;
}

/** Keyed hash of a Message-ID (HMAC-SHA256, first 16 hex chars). */
export function createIdHasher(key: Buffer = randomBytes(32)): (messageId: string | undefined) => string | undefined {
  return (messageId) => (messageId ? createHmac('sha256', key).update(messageId.trim()).digest('hex').slice(0, 16) : undefined);
}
