// The label values of the relay's counters, in one place. The relay exports
// every combination at 0 when it starts: rate() and increase() need a sample
// before an event to see it, so a series that first appears at 1 would hide
// its first event from every alert. The types keep the relay from counting
// anything else (bounded label sets); the monitoring tests read the lists.
import type { Outcome, SignetMetrics } from '../observability';
import type { PassReason } from '../signature';
import { CLIENT_CERT_REASONS } from './client-identity';
import { DOWNSTREAM_CAUSES, type DownstreamCause } from './downstream';

/** Why the engine passed a message unchanged. */
export const PASS_REASONS = [
  'already-processed',
  'smime',
  'pgp',
  'report',
  'calendar',
  'auto-reply',
  'null-sender',
  'tnef',
  'no-body',
  'ambiguous-part',
  'too-large',
  'no-rule',
  'no-signature',
  'in-thread',
  'unknown-sender',
  'template-error',
  'pass-through',
] as const satisfies readonly PassReason[];
// A pass reason the engine gains must be listed above (or this line stops compiling).
type UnlistedPassReason = Exclude<PassReason, (typeof PASS_REASONS)[number]>;
export const EVERY_PASS_REASON_LISTED: [UnlistedPassReason] extends [never] ? true : UnlistedPassReason = true;

/** A downstream failure that ended a transaction, by its cause. */
export type DownstreamFailureReason = `downstream-${DownstreamCause}`;
const DOWNSTREAM_FAILURES = DOWNSTREAM_CAUSES.map((cause): DownstreamFailureReason => `downstream-${cause}`);

/**
 * signet_messages_total's reasons by outcome: one count (and one `transaction`
 * log line) per transaction, wherever it ended.
 */
export const MESSAGE_REASONS = {
  // delivered with a signature
  signed: ['signed'],
  // delivered unchanged
  passed: PASS_REASONS,
  // refused for good (5xx): the sender gets a non-delivery report
  rejected: ['sender-domain', 'size', 'non-ascii-address', 'downstream-mail', 'downstream-rcpt', 'downstream-data', 'loop', 'other-tenant'],
  // deferred (4xx, or no answer): Exchange Online keeps the message and retries
  tempfailed: [
    'no-config',
    ...DOWNSTREAM_FAILURES,
    'downstream-mail',
    'downstream-rcpt',
    'downstream-data',
    // the message needs an extension the downstream does not offer (8-bit data, UTF-8 header fields): 451 4.6.3 / 4.6.9
    'downstream-no-8bitmime',
    'downstream-no-smtputf8',
    'engine-error',
    'no-tenant-header',
    'mixed-tenant-header',
    // the client's connection went away mid-transaction (network, client restart)
    'upstream-dropped',
    // the client went silent mid-transaction past limits.idleSeconds (smtp-server's 421): a slow or stuck sender, not a broken network
    'upstream-timeout',
    // cut by a drain (SIGTERM) or a stop: 421 4.3.2
    'shutdown',
    // the session's time limit ended a transaction that did not reach DATA in time: 421 4.4.2
    'session-limit',
  ],
  // ended by the client itself before DATA: RSET (or a new EHLO/HELO), or QUIT
  abandoned: ['upstream-reset', 'upstream-quit'],
} as const satisfies Record<Outcome, readonly string[]>;

export type MessageReason<O extends Outcome = Outcome> = (typeof MESSAGE_REASONS)[O][number];

/** signet_recipients_refused_total's (outcome, reason) pairs. */
export const RECIPIENT_REFUSALS = [
  ['tempfailed', 'too-many-recipients'],
  ['tempfailed', 'downstream-rcpt'],
  ['rejected', 'downstream-rcpt'],
  ['rejected', 'non-ascii-address'],
] as const;

/** signet_downstream_errors_total's reasons: a transaction's failure, one address of several, the readiness probe. */
export const DOWNSTREAM_ERROR_REASONS = [...DOWNSTREAM_CAUSES, ...DOWNSTREAM_CAUSES.map((c) => `address-${c}` as const), ...DOWNSTREAM_CAUSES.map((c) => `probe-${c}` as const)];

/** signet_tls_errors_total's reasons: a failed handshake, or the client certificate's verdict. */
export const TLS_ERROR_REASONS = ['handshake', ...CLIENT_CERT_REASONS] as const;

/** Why a session is refused before it starts (signet_sessions_refused_total's reasons). */
export const SESSION_REFUSALS = ['draining', 'source-not-allowed', 'max-sessions', 'max-sessions-per-source'] as const;
export type SessionRefusal = (typeof SESSION_REFUSALS)[number];

/** Exports every known series of the relay's fixed-label counters at 0 (idempotent: inc by 0). */
export function exportCountersAtZero(metrics: SignetMetrics): void {
  for (const [outcome, reasons] of Object.entries(MESSAGE_REASONS)) for (const reason of reasons) metrics.messages.inc({ outcome, reason }, 0);
  for (const [outcome, reason] of RECIPIENT_REFUSALS) metrics.recipientsRefused.inc({ outcome, reason }, 0);
  for (const reason of DOWNSTREAM_ERROR_REASONS) metrics.downstreamErrors.inc({ reason }, 0);
  for (const reason of TLS_ERROR_REASONS) metrics.tlsErrors.inc({ reason }, 0);
  for (const reason of SESSION_REFUSALS) metrics.sessionsRefused.inc({ reason }, 0);
}
