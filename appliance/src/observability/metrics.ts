// Every metric Signet exposes, defined once. Dashboards, alert rules and
// `signet status` read these names; change them here and there together.
import { performance } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * What became of a transaction: delivered (signed, passed), refused for good (rejected),
 * deferred (tempfailed), or ended by the client before DATA (abandoned).
 */
export type Outcome = 'signed' | 'passed' | 'rejected' | 'tempfailed' | 'abandoned';

export interface SignetMetrics {
  registry: Registry;
  messages: Counter<'outcome' | 'reason'>;
  engineSeconds: Histogram<'outcome'>;
  transactionSeconds: Histogram<'outcome'>;
  messageBytes: Histogram<'direction'>;
  downstreamErrors: Counter<'reason'>;
  downstreamUp: Gauge<'cause'>;
  tlsErrors: Counter<'reason'>;
  activeSessions: Gauge;
  sessionsRefused: Counter<'reason'>;
  recipientsRefused: Counter<'outcome' | 'reason'>;
  ready: Gauge;
  configInfo: Gauge<'org' | 'version'>;
  configLoadedTimestamp: Gauge;
  configReloads: Counter<'result'>;
  configRefused: Gauge;
  certificateExpiry: Gauge<'certificate' | 'subject'>;
  certificateReloads: Counter<'certificate' | 'result'>;
  certificateRefused: Gauge<'certificate'>;
  directoryLastSync: Gauge<'source'>;
  directoryUsers: Gauge<'source'>;
  directoryPhotos: Gauge<'source'>;
  directoryPhotoRequests: Counter<'source' | 'result'>;
  directorySyncs: Counter<'source' | 'result'>;
  eventLoopBusy: Counter;
}

const SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const BYTES_BUCKETS = [1024, 10 * 1024, 100 * 1024, 1024 ** 2, 5 * 1024 ** 2, 10 * 1024 ** 2, 25 * 1024 ** 2, 50 * 1024 ** 2, 150 * 1024 ** 2];

/** A fresh registry with all Signet metrics (one per relay process; tests make their own). */
export function createMetrics(options: { processMetrics?: boolean } = {}): SignetMetrics {
  const registry = new Registry();
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry });
  const r = [registry];
  return {
    registry,
    messages: new Counter({ name: 'signet_messages_total', help: 'Messages (transactions) by outcome (signed, passed, rejected, tempfailed, abandoned) and reason, each counted once when it ends, wherever it ended (MAIL, RCPT or DATA).', labelNames: ['outcome', 'reason'], registers: r }),
    engineSeconds: new Histogram({ name: 'signet_engine_duration_seconds', help: 'Time spent in the signature engine per message.', labelNames: ['outcome'], buckets: SECONDS_BUCKETS, registers: r }),
    transactionSeconds: new Histogram({ name: 'signet_transaction_duration_seconds', help: 'End-to-end time of a transaction, from the upstream MAIL FROM to the answer given upstream at the end of DATA.', labelNames: ['outcome'], buckets: SECONDS_BUCKETS, registers: r }),
    messageBytes: new Histogram({ name: 'signet_message_size_bytes', help: 'Message sizes received (in) and relayed (out).', labelNames: ['direction'], buckets: BYTES_BUCKETS, registers: r }),
    downstreamErrors: new Counter({ name: 'signet_downstream_errors_total', help: 'Downstream (Exchange Online) failures by reason.', labelNames: ['reason'], registers: r }),
    downstreamUp: new Gauge({ name: 'signet_downstream_up', help: '1 when the downstream answered recently; 0 with the cause (e.g. port25-blocked, tls, refused, timeout).', labelNames: ['cause'], registers: r }),
    tlsErrors: new Counter({ name: 'signet_tls_errors_total', help: 'Inbound TLS and client-certificate failures by reason.', labelNames: ['reason'], registers: r }),
    activeSessions: new Gauge({ name: 'signet_active_sessions', help: 'Open upstream SMTP sessions.', registers: r }),
    sessionsRefused: new Counter({ name: 'signet_sessions_refused_total', help: 'Upstream sessions refused (draining, limits, source not allowed).', labelNames: ['reason'], registers: r }),
    recipientsRefused: new Counter({ name: 'signet_recipients_refused_total', help: 'Recipients refused at RCPT by outcome (rejected, tempfailed) and reason (downstream-rcpt: as the downstream answered; too-many-recipients; non-ascii-address).', labelNames: ['outcome', 'reason'], registers: r }),
    ready: new Gauge({ name: 'signet_ready', help: '1 when /readyz answers 200.', registers: r }),
    configInfo: new Gauge({ name: 'signet_config_info', help: 'The organization config version this node runs (value 1).', labelNames: ['org', 'version'], registers: r }),
    configLoadedTimestamp: new Gauge({ name: 'signet_config_loaded_timestamp_seconds', help: 'When the running config was loaded.', registers: r }),
    configReloads: new Counter({ name: 'signet_config_reloads_total', help: 'Config load attempts by result (loaded, refused, unchanged).', labelNames: ['result'], registers: r }),
    configRefused: new Gauge({ name: 'signet_config_refused', help: '1 while the published config is one this node refused (it runs an older one); 0 once the published one is loaded or is the running one.', registers: r }),
    certificateExpiry: new Gauge({ name: 'signet_certificate_expiry_timestamp_seconds', help: 'notAfter of the certificates in use (server, downstream-client, and the last upstream client seen).', labelNames: ['certificate', 'subject'], registers: r }),
    certificateReloads: new Counter({ name: 'signet_certificate_reloads_total', help: 'Changes to the certificate files on disk by certificate (server, downstream-client) and result (reloaded, refused).', labelNames: ['certificate', 'result'], registers: r }),
    certificateRefused: new Gauge({ name: 'signet_certificate_refused', help: '1 while the certificate files on disk are ones this node refused (it keeps presenting the previous certificate); 0 once they load.', labelNames: ['certificate'], registers: r }),
    directoryLastSync: new Gauge({ name: 'signet_directory_last_sync_timestamp_seconds', help: 'When the directory snapshot was last refreshed successfully.', labelNames: ['source'], registers: r }),
    directoryUsers: new Gauge({ name: 'signet_directory_users', help: 'Users in the directory snapshot.', labelNames: ['source'], registers: r }),
    directoryPhotos: new Gauge({ name: 'signet_directory_photos', help: "Users in the directory snapshot with a photo (held only while a template calls photo()).", labelNames: ['source'], registers: r }),
    directoryPhotoRequests: new Counter({ name: 'signet_directory_photo_requests_total', help: 'Photo requests to Microsoft Graph by result (loaded, missing: the user has none, refused: not a usable image, failed).', labelNames: ['source', 'result'], registers: r }),
    directorySyncs: new Counter({ name: 'signet_directory_syncs_total', help: 'Directory refreshes by result (ok, failed).', labelNames: ['source', 'result'], registers: r }),
    eventLoopBusy: eventLoopBusyCounter(r),
  };
}

/**
 * The relay's mail path runs on one thread, so how much of that thread is in
 * use, not the CPU of the whole VM, says how close a node is to its capacity.
 * A counter of busy seconds (Node's event-loop utilization: time not spent
 * waiting for I/O) rather than a ratio, so that every scraper can take its own
 * rate() over its own window.
 */
function eventLoopBusyCounter(registers: Registry[]): Counter {
  const since = performance.eventLoopUtilization();
  let counted = 0;
  return new Counter({
    name: 'signet_event_loop_busy_seconds_total',
    help: "Time the relay's thread was busy (not waiting for I/O), from Node's event-loop utilization; rate() of it is the share of that thread in use, 0 to 1. Near 1, work waits for its turn and latency climbs: the node is at capacity.",
    registers,
    collect() {
      const busy = performance.eventLoopUtilization(since).active / 1000;
      if (busy > counted) {
        this.inc(busy - counted);
        counted = busy;
      }
    },
  });
}

export type DirectorySyncResult = 'ok' | 'failed';

/**
 * Counts one directory source's refreshes; both results start at 0, because
 * rate() and increase() cannot see the first failure of a series that appears at 1.
 */
export function directorySyncCounter(metrics: SignetMetrics | undefined, source: 'file' | 'graph'): (result: DirectorySyncResult) => void {
  for (const result of ['ok', 'failed'] as const) metrics?.directorySyncs.inc({ source, result }, 0);
  return (result) => metrics?.directorySyncs.inc({ source, result });
}
