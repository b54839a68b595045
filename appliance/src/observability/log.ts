// Structured logs without message content. Message-IDs are logged only as a
// keyed hash, so a log line can be correlated with a message trace by someone
// who holds the key, and by no one else.
import { createHmac, randomBytes } from 'node:crypto';
import pino, { type Logger, type DestinationStream } from 'pino';

export type { Logger };

// An address-like token (local@domain.tld; a quoted local part, a domain in
// Unicode as SMTPUTF8 carries it, an address literal local@[192.0.2.1]) and a
// URL's query string (a SAS token is a secret). Error texts from libraries
// quote what they were given — a server's reply naming a recipient, a config
// path naming a user — so every string field of a log line is scrubbed of both
// before it is written.
const ADDRESS = /(?:"[^"\r\n]*"|[^\s<>"'`@:;,()[\]{}]+)@(?:[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)*\.[\p{L}]{2,}|\[[^\s\]]+\])/gu;
const URL_QUERY = /(https?:\/\/[^\s?#"'<>]+)\?[^\s"'<>]*/g;

/** A log value with addresses and URL query strings removed (strings, arrays and plain objects, a few levels deep). */
export function scrubLogValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') {
    return value.includes('@') || value.includes('?') ? value.replace(ADDRESS, '<address>').replace(URL_QUERY, '$1?<query removed>') : value;
  }
  if (depth >= 4 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return { type: value.name, message: scrubLogValue(value.message, depth + 1) };
  if (Array.isArray(value)) return value.map((v) => scrubLogValue(v, depth + 1));
  if (Object.getPrototypeOf(value) !== Object.prototype) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = scrubLogValue(v, depth + 1);
  return out;
}

export function createLogger(options: { level?: string; name?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      name: options.name ?? 'signet',
      level: options.level ?? process.env.SIGNET_LOG_LEVEL ?? 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { log: (object) => scrubLogValue(object) as Record<string, unknown> },
      // Belt and braces: these fields must never be logged; redact if a caller slips.
      redact: { paths: ['subject', 'from', 'to', 'rcpt', 'recipients', 'body', 'mailFrom', 'rcptTo', '*.subject', '*.password', '*.key', '*.secret'], censor: '[redacted]' },
    },
    options.destination,
  );
}

/** Keyed hash of a Message-ID (HMAC-SHA256, first 16 hex chars). */
export function createIdHasher(key: Buffer = randomBytes(32)): (messageId: string | undefined) => string | undefined {
  return (messageId) => (messageId ? createHmac('sha256', key).update(messageId.trim()).digest('hex').slice(0, 16) : undefined);
}
