// Fleet status: what each node says about itself on /readyz and /metrics.
// Metrics are scraped twice, `intervalSeconds` apart, so counters become
// "in the last interval" figures (the same way Prometheus' increase() reads them),
// and the relay thread's busy seconds the share of that time it was in use.
import parsePrometheusTextFormat from 'parse-prometheus-text-format';

export interface NodeTarget {
  name: string;
  /** Base URL of the node's HTTP port, e.g. http://node-1:8080 (no path). */
  url: string;
}

export interface NodeStatus {
  name: string;
  url: string;
  ready: boolean;
  /** Why not ready (from /readyz's JSON body), or why the node could not be read. */
  reason?: string;
  reachable: boolean;
  configOrg?: string;
  configVersion?: string;
  /** Earliest notAfter of the certificates the node reports. */
  certificateExpiry?: Date;
  certificateName?: string;
  /** Counters' increase between the two scrapes (undefined when a scrape failed). */
  messages?: number;
  tempfails?: number;
  downstreamErrors?: number;
  /** Share of the interval the relay's thread was busy, 0 to 1 (undefined when a scrape failed or the node does not export it). */
  busy?: number;
  /** Causes of signet_downstream_up series that are 0. */
  downstreamDown: string[];
}

/** One scrape's samples, reduced to what the status needs. */
export interface MetricsSnapshot {
  messagesTotal: number;
  tempfailsTotal: number;
  downstreamErrorsTotal: number;
  /** signet_event_loop_busy_seconds_total (absent from relays older than the metric). */
  busySeconds?: number;
  configOrg?: string;
  configVersion?: string;
  certificateExpiry?: { at: Date; name: string };
  downstreamDown: string[];
}

export function readMetrics(text: string): MetricsSnapshot {
  const families = parsePrometheusTextFormat(text);
  const family = (name: string) => families.find((f) => f.name === name)?.metrics ?? [];
  const num = (v: string | undefined) => (v === undefined ? 0 : Number(v));
  const snapshot: MetricsSnapshot = { messagesTotal: 0, tempfailsTotal: 0, downstreamErrorsTotal: 0, downstreamDown: [] };
  for (const s of family('signet_messages_total')) {
    snapshot.messagesTotal += num(s.value);
    if (s.labels?.outcome === 'tempfailed') snapshot.tempfailsTotal += num(s.value);
  }
  for (const s of family('signet_downstream_errors_total')) snapshot.downstreamErrorsTotal += num(s.value);
  const busy = family('signet_event_loop_busy_seconds_total')[0];
  if (busy) snapshot.busySeconds = num(busy.value);
  const info = family('signet_config_info').find((s) => num(s.value) === 1);
  if (info) {
    snapshot.configOrg = info.labels?.org;
    snapshot.configVersion = info.labels?.version;
  }
  for (const s of family('signet_certificate_expiry_timestamp_seconds')) {
    // the node's own certificates only: Exchange Online's client certificate is Microsoft's to renew
    if (s.labels?.certificate === 'upstream-client') continue;
    const seconds = num(s.value);
    if (!Number.isFinite(seconds) || seconds <= 0) continue;
    if (!snapshot.certificateExpiry || seconds * 1000 < snapshot.certificateExpiry.at.getTime()) {
      snapshot.certificateExpiry = { at: new Date(seconds * 1000), name: [s.labels?.certificate, s.labels?.subject].filter(Boolean).join(' ') };
    }
  }
  for (const s of family('signet_downstream_up')) if (num(s.value) === 0) snapshot.downstreamDown.push(s.labels?.cause ?? 'unknown');
  return snapshot;
}

// A counter that went down was reset (process restart): its current value is the increase since.
const increase = (before: number, after: number) => (after >= before ? after - before : after);

const TIMEOUT_MS = 5000;

/**
 * One request with a hard deadline on the whole answer, body included: a node (or a
 * proxy in front of it) that answers and then sends its body slowly must not hold the
 * command, nor keep its connection (and so the process) alive afterwards. The body is
 * read by hand so that it can be cancelled; the controller and its timer are our own
 * (an AbortSignal.timeout() nothing else references may be collected before it fires).
 */
async function get(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  const controller = new AbortController();
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new Error(`no complete answer within ${timeoutMs / 1000} s`);
      controller.abort(error);
      reader?.cancel(error).catch(() => undefined);
      reject(error);
    }, timeoutMs);
  });
  const exchange = (async () => {
    const response = await fetch(url, { signal: controller.signal, redirect: 'error', headers: { accept: 'text/plain, application/json' } });
    const chunks: Uint8Array[] = [];
    let size = 0;
    if (response.body) {
      reader = response.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.length;
        if (size > MAX_ANSWER_BYTES) {
          await reader.cancel();
          throw new Error(`answer larger than ${MAX_ANSWER_BYTES / 1024 / 1024} MB`);
        }
        chunks.push(value);
      }
    }
    return { status: response.status, body: Buffer.concat(chunks).toString('utf8') };
  })();
  exchange.catch(() => undefined); // settled by the deadline instead
  try {
    return await Promise.race([exchange, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** A node's /metrics is some tens of KB; far more is not a node. */
const MAX_ANSWER_BYTES = 8 * 1024 * 1024;

/** A scrape and when it was read (ms, monotonic), to turn busy seconds into a share of the time between two. */
async function scrape(target: NodeTarget, timeoutMs: number): Promise<MetricsSnapshot & { at: number }> {
  const { status, body } = await get(`${target.url}/metrics`, timeoutMs);
  if (status !== 200) throw new Error(`/metrics answered ${status}`);
  // counts read as 0 when absent: a page that is not a relay's metrics must not read as an idle node
  if (!/^# TYPE signet_messages_total counter$/m.test(body)) throw new Error('/metrics is not a Signet relay\'s (no signet_messages_total)');
  return { ...readMetrics(body), at: performance.now() };
}

async function readiness(target: NodeTarget, timeoutMs: number): Promise<{ ready: boolean; reason?: string }> {
  const { status, body } = await get(`${target.url}/readyz`, timeoutMs);
  let reason: string | undefined;
  let said: unknown;
  try {
    const json = JSON.parse(body) as { status?: unknown; reason?: unknown; reasons?: unknown };
    said = json.status;
    if (typeof json.reason === 'string') reason = json.reason;
    else if (Array.isArray(json.reasons)) reason = json.reasons.map(String).join(', ');
  } catch {
    reason = body.trim().slice(0, 200) || undefined;
  }
  // ready is what a relay says, not any 200: a web server or proxy answering every path is no node
  if (status === 200 && said !== 'ready') return { ready: false, reason: 'not a Signet relay: /readyz answered 200 without {"status":"ready"}' };
  return { ready: status === 200, reason: status === 200 ? undefined : (reason ?? `HTTP ${status}`) };
}

function message(error: unknown): string {
  const e = error as Error & { cause?: { code?: string; message?: string } };
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(error);
}

export function normalizeNodeUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`node URL ${JSON.stringify(raw)} is not a URL (expected e.g. http://node-1:8080)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`node URL ${raw}: only http and https`);
  // A /readyz or /metrics path given by habit is dropped: both live at the root.
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/(readyz|metrics|healthz)\/?$/, '').replace(/\/$/, '')}`;
}

export async function collectStatus(targets: NodeTarget[], options: { intervalSeconds: number; sleep?: (ms: number) => Promise<void>; timeoutMs?: number }): Promise<NodeStatus[]> {
  const timeoutMs = options.timeoutMs ?? TIMEOUT_MS;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const first = await Promise.all(targets.map((t) => scrape(t, timeoutMs).then((s) => ({ s }), (error: unknown) => ({ error: message(error) }))));
  await sleep(options.intervalSeconds * 1000);
  return Promise.all(
    targets.map(async (target, i): Promise<NodeStatus> => {
      const status: NodeStatus = { name: target.name, url: target.url, ready: false, reachable: false, downstreamDown: [] };
      try {
        const r = await readiness(target, timeoutMs);
        status.reachable = true;
        status.ready = r.ready;
        status.reason = r.reason;
      } catch (error) {
        status.reason = `unreachable: ${message(error)}`;
        return status;
      }
      const before = first[i]!;
      let after: MetricsSnapshot & { at: number };
      try {
        after = await scrape(target, timeoutMs);
      } catch (error) {
        status.reason = [status.reason, `metrics: ${message(error)}`].filter(Boolean).join('; ');
        return status;
      }
      status.configOrg = after.configOrg;
      status.configVersion = after.configVersion;
      status.certificateExpiry = after.certificateExpiry?.at;
      status.certificateName = after.certificateExpiry?.name;
      status.downstreamDown = after.downstreamDown;
      if ('s' in before) {
        status.messages = increase(before.s.messagesTotal, after.messagesTotal);
        status.tempfails = increase(before.s.tempfailsTotal, after.tempfailsTotal);
        status.downstreamErrors = increase(before.s.downstreamErrorsTotal, after.downstreamErrorsTotal);
        const elapsed = (after.at - before.s.at) / 1000;
        if (before.s.busySeconds !== undefined && after.busySeconds !== undefined && elapsed > 0) {
          status.busy = Math.min(1, increase(before.s.busySeconds, after.busySeconds) / elapsed);
        }
      }
      return status;
    }),
  );
}

function cell(value: string | number | undefined): string {
  return value === undefined ? '-' : String(value);
}

function daysLeft(at: Date | undefined, now: Date): string {
  if (!at) return '-';
  const days = Math.floor((at.getTime() - now.getTime()) / 86_400_000);
  return `${at.toISOString().slice(0, 10)} (${days}d)`;
}

/** A plain-text table, one row per node. */
export function formatStatusTable(statuses: NodeStatus[], intervalSeconds: number, now = new Date()): string {
  const header = ['NODE', 'READY', 'CONFIG', 'CERT EXPIRY', `MSGS/${intervalSeconds}s`, `TEMPFAILS/${intervalSeconds}s`, `DOWNSTREAM ERR/${intervalSeconds}s`, 'BUSY', 'REASON'];
  const rows = statuses.map((s) => [
    s.name,
    s.ready ? 'yes' : 'NO',
    s.configVersion ? `${s.configOrg ?? '?'}@${s.configVersion}` : '-',
    daysLeft(s.certificateExpiry, now),
    cell(s.messages),
    cell(s.tempfails),
    cell(s.downstreamErrors),
    s.busy === undefined ? '-' : `${Math.round(s.busy * 100)}%`,
    [s.reason, s.downstreamDown.length ? `downstream down: ${s.downstreamDown.join(', ')}` : undefined].filter(Boolean).join('; ') || '-',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  const versions = new Set(statuses.map((s) => s.configVersion).filter(Boolean));
  const notes: string[] = [];
  if (versions.size > 1) notes.push(`note: nodes run different config versions (${[...versions].join(', ')})`);
  return [line(header), ...rows.map(line), ...notes].join('\n') + '\n';
}
