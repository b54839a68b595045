// Structured logs without message content. Message-IDs are logged only as a
// keyed hash, so a log line can be correlated with a message trace by someone
// who holds the key, and by no one else.
import { createHmac, randomBytes } from 'node:crypto';
import pino, { type Logger, type DestinationStream } from 'pino';

export type { Logger };

export function createLogger(options: { level?: string; name?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      name: options.name ?? 'signet',
      level: options.level ?? process.env.SIGNET_LOG_LEVEL ?? 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
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
