// The relay: a before-queue SMTP proxy (in the sense of Postfix's
// SMTPD_PROXY_README). For each upstream transaction it opens a downstream
// session at MAIL, passes MAIL and every RCPT on and mirrors each answer,
// streams DATA through the signature engine to the downstream, and answers
// the upstream's end of DATA only after the downstream answered it. Any
// failure answers the upstream with a 4xx and cuts the downstream before the
// final dot: no queue, no disk, nothing half-delivered, nothing lost.
// Every transaction, from MAIL to its end wherever it ends (a refused MAIL, a
// RSET, QUIT, dropped or idle connection before DATA, every recipient refused,
// the answer to DATA, a drain), is counted once in signet_messages_total and
// logged once as a `transaction` line, both by record().
import { isAscii } from 'node:buffer';
import { BlockList, isIPv4, isIPv6, type AddressInfo } from 'node:net';
import { domainToASCII } from 'node:url';
import type { TLSSocket } from 'node:tls';
import type { SMTPServerAddress, SMTPServerDataStream, SMTPServerOptions, SMTPServerSession } from 'smtp-server';
import { ASCII, FAST_START_AVAILABLE, RelayServer, STARTTLS_FIRST, type ServerConnection } from './fast-server';
import { recordCertificateExpiry, type Logger, type SignetMetrics, type Outcome } from '../observability';
import type { Engine, EngineResult } from '../signature';
import { checkClientIdentity } from './client-identity';
import { DownstreamError, DownstreamSession, offers, type DownstreamOptions, type SmtpReply } from './downstream';
import { HopGate, HopLimitError, TenantMismatchError, Utf8HeadersError } from './hop-gate';
import { exportCountersAtZero, type DownstreamFailureReason, type MessageReason, type SessionRefusal } from './outcomes';

export { SESSION_REFUSALS } from './outcomes';

/** The organization the relay serves right now: its engine (one config version) and accepted domains. */
export interface ActiveOrg {
  engine: Engine;
  acceptedDomains: readonly string[];
}

export interface RelayTlsMaterial {
  key: Buffer | string;
  cert: Buffer | string;
  /** CA bundle(s) client certificates must chain to. */
  ca: Array<Buffer | string>;
}

export interface RelayLimits {
  maxMessageBytes: number;
  maxRecipients: number;
  maxLineLength: number;
  sessionMs: number;
  idleMs: number;
  maxSessions: number;
  maxSessionsPerSource: number;
  maxSignetHops: number;
}

export interface RelayOptions {
  hostname: string;
  tls: RelayTlsMaterial & { minVersion: 'TLSv1.2' | 'TLSv1.3'; acceptedClientNames: string[] };
  allowNetworks?: string[];
  /**
   * The customer's Microsoft Entra tenant id. Every Microsoft 365 tenant presents the same client
   * certificate; a message must carry this id in X-MS-Exchange-CrossTenant-Id, or it is not the tenant's.
   */
  tenantId?: string;
  downstream: DownstreamOptions;
  limits: RelayLimits;
  /** The loaded organization; undefined while none is loaded (transactions get 451 4.3.0). */
  org: () => ActiveOrg | undefined;
  metrics: SignetMetrics;
  logger: Logger;
  /** Keyed hash for Message-IDs in logs. */
  hashId: (messageId: string | undefined) => string | undefined;
  /** Keep downstream sessions open after a completed transaction for the next one (default: off). */
  downstreamReuse?: { maxIdle: number; idleMs: number };
}

/**
 * Idle downstream sessions, each after a transaction the downstream answered
 * 2xx (so its state is clean: RFC 5321 4.1.4, a completed DATA ends the
 * transaction). Sessions that failed in any way are never pooled. An idle
 * session is closed when it gets older than idleMs, or when the server closes
 * it (then it is no longer `usable`).
 */
class DownstreamPool {
  private idle: Array<{ session: DownstreamSession; since: number }> = [];
  private closed = false;
  /** Bumped by flush(): a session opened before it (a busy one, then) is not taken back. */
  private generation = 0;
  private readonly openedIn = new WeakMap<DownstreamSession, number>();
  private readonly timer?: NodeJS.Timeout;

  constructor(
    private readonly open: () => Promise<DownstreamSession>,
    private readonly limits: { maxIdle: number; idleMs: number },
  ) {
    if (limits.maxIdle > 0) {
      this.timer = setInterval(() => this.prune(), Math.max(1000, Math.min(limits.idleMs, 10_000)));
      this.timer.unref();
    }
  }

  /** An idle session, or a new one; always a new one with `fresh` (a retry after a reused one failed: its idle siblings may be as stale). */
  async acquire(fresh = false): Promise<{ session: DownstreamSession; reused: boolean }> {
    this.prune();
    const entry = fresh ? undefined : this.idle.pop();
    if (entry) return { session: entry.session, reused: true };
    const generation = this.generation;
    const session = await this.open();
    this.openedIn.set(session, generation);
    return { session, reused: false };
  }

  release(session: DownstreamSession): void {
    if (this.closed || !session.usable || this.openedIn.get(session) !== this.generation || this.idle.length >= this.limits.maxIdle) return session.quit();
    this.idle.push({ session, since: Date.now() });
  }

  flush(): void {
    this.generation++;
    for (const { session } of this.idle.splice(0)) session.quit();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.flush();
  }

  private prune(): void {
    const now = Date.now();
    this.idle = this.idle.filter(({ session, since }) => {
      if (session.usable && now - since < this.limits.idleMs) return true;
      session.quit();
      return false;
    });
  }
}

/** An SMTP reply carried as an error through smtp-server's callbacks; its message starts with the enhanced code. */
export class SmtpReplyError extends Error {
  constructor(
    readonly responseCode: number,
    message: string,
  ) {
    super(message);
  }
}

const reply = (code: number, enhanced: string, text: string) => new SmtpReplyError(code, `${enhanced} ${text}`);

/** Mirrors a downstream refusal upstream: same code (421 becomes 451: only this transaction ends), same enhanced code. */
function mirror(downstream: SmtpReply): SmtpReplyError {
  let code = downstream.code;
  if (code === 421) code = 451;
  if (code < 400 || code > 599) return reply(451, '4.4.0', 'Unexpected answer from the downstream; try again later');
  const enhanced = downstream.enhanced && downstream.enhanced[0] === String(code)[0] ? downstream.enhanced : code < 500 ? '4.0.0' : '5.0.0';
  return reply(code, enhanced, sanitize(downstream.text) || 'Refused by the downstream');
}

function sanitize(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f]/g, ' ').slice(0, 400);
}

interface Transaction {
  sessionId: string;
  org: ActiveOrg;
  downstream: DownstreamSession;
  startedAt: bigint;
  accepted: string[];
  /** Recipients refused at RCPT (by the downstream or the relay). */
  refusedCount: number;
  /**
   * The worst refusal a recipient got, from the downstream or the relay itself (a 4xx
   * outranks a 5xx: Exchange Online retries). A transaction that ends with no recipient
   * accepted never reaches DATA; it is counted as a message with this outcome and reason.
   */
  refused?: { outcome: 'tempfailed' | 'rejected'; reason: 'downstream-rcpt' | 'non-ascii-address'; code: number; downstreamCode?: number };
  inData: boolean;
  /**
   * Ends a transaction in DATA from outside: its client is gone or went silent, or the relay is
   * shutting down. Whatever ends a transaction records it (counter and log line) exactly once.
   */
  cancel?: (why: 'upstream-dropped' | 'upstream-timeout' | 'shutdown') => void;
  /** The downstream answered the end of DATA with 2xx: its session may go back to the pool. */
  reusable?: boolean;
  /** Counted and logged (once per transaction, wherever it ends). */
  recorded: boolean;
}

/** How a transaction ended, for its count and its `transaction` log line. */
interface TransactionEnd {
  outcome: Outcome;
  reason: MessageReason;
  /** The answer the relay gave upstream to the transaction (or would have: see upstreamAnswered); none when the client ended it. */
  upstreamCode?: number;
  /** The downstream's answer that decided the outcome, if one did. */
  downstreamCode?: number;
  /** false: the client was gone before the answer could reach it. */
  upstreamAnswered?: boolean;
}

/** What a transaction's log line says beyond its end: only ids, counts, sizes and durations, never addresses or content. */
interface TransactionFacts {
  /** Where it ended: at MAIL (refused, or nothing after it), in the RCPT phase, or in DATA. */
  stage: 'mail' | 'rcpt' | 'data';
  org?: ActiveOrg;
  startedAt: bigint;
  recipientCount?: number;
  recipientsRefused?: number;
  messageIdHash?: string;
  bytesIn?: number;
  bytesOut?: number;
  engine?: EngineResult;
  hops?: number;
  /** The final dot went downstream but no answer to it came: the downstream may have delivered the message. */
  deliveryUnknown?: boolean;
}

const RESET: TransactionEnd = { outcome: 'abandoned', reason: 'upstream-reset' };
const QUIT: TransactionEnd = { outcome: 'abandoned', reason: 'upstream-quit' };
const DROPPED: TransactionEnd = { outcome: 'tempfailed', reason: 'upstream-dropped', upstreamAnswered: false };
// smtp-server's idle timeout (limits.idleMs) ended the session with its own 421
const TIMED_OUT: TransactionEnd = { outcome: 'tempfailed', reason: 'upstream-timeout', upstreamCode: 421 };
const SHUTDOWN: TransactionEnd = { outcome: 'tempfailed', reason: 'shutdown', upstreamCode: 421 };
const SESSION_LIMIT: TransactionEnd = { outcome: 'tempfailed', reason: 'session-limit', upstreamCode: 421 };

interface SessionState {
  source: string;
  counted: boolean;
  tx?: Transaction;
  closeAfterTransaction: boolean;
  sessionTimer?: NodeJS.Timeout;
}

/** The parts of smtp-server's connection the relay drives (see RelayServer). */
type Connection = ServerConnection;

/** IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are their IPv4 address. */
function normalizeAddress(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1] : address;
}

function buildBlockList(cidrs: readonly string[]): BlockList | undefined {
  if (!cidrs.length) return undefined;
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [network, prefix] = cidr.split('/');
    const type = isIPv6(network) ? 'ipv6' : 'ipv4';
    list.addSubnet(network, Number(prefix ?? (type === 'ipv4' ? 32 : 128)), type);
  }
  return list;
}

export interface RelayStatus {
  draining: boolean;
  sessions: number;
  transactions: number;
}

export class Relay {
  private readonly servers: RelayServer[] = [];
  private readonly states = new WeakMap<SMTPServerSession, SessionState>();
  private readonly connections = new Map<SMTPServerSession, Connection>();
  private readonly perSource = new Map<string, number>();
  private readonly allowList?: BlockList;
  private readonly certSubjects = new Map<string, string>();
  private sessions = 0;
  /** Transactions between MAIL and their end, with their session's state (a drain or stop ends each). */
  private readonly open = new Map<Transaction, SessionState>();
  private draining = false;
  private tls: RelayOptions['tls'];
  private idleWaiters: Array<() => void> = [];
  private readonly pool: DownstreamPool;

  constructor(private readonly options: RelayOptions) {
    this.tls = options.tls;
    this.allowList = buildBlockList(options.allowNetworks ?? []);
    this.pool = new DownstreamPool(() => DownstreamSession.open(options.downstream), options.downstreamReuse ?? { maxIdle: 0, idleMs: 0 });
    // Every series of the fixed-label counters exists at 0 from the start: a series that first
    // appears at 1 has no earlier sample, and its first increment is invisible to rate()/increase().
    exportCountersAtZero(options.metrics);
  }

  /** Closes idle downstream sessions, and busy ones when their transaction ends (e.g. after the client certificate changed). */
  flushDownstream(): void {
    this.pool.flush();
  }

  /** Starts one SMTP listener; call once per configured address. */
  async listen(host: string, port: number): Promise<AddressInfo> {
    const server = new RelayServer(
      this.serverOptions(),
      (connection) => this.connections.set(connection.session, connection),
      (session) => {
        const state = this.states.get(session);
        if (state?.tx && !state.tx.inData) {
          this.endTransaction(state, RESET);
          // a session past its time limit waited for this transaction: it ends after this command's reply
          if (state.closeAfterTransaction) setImmediate(() => this.endSession(session, '4.4.2 Session time limit reached'));
        }
      },
      // a declared SIZE over the limit is refused by smtp-server itself; counted like one found while streaming
      (session) => this.record(session.id, { outcome: 'rejected', reason: 'size', upstreamCode: 552 }, { stage: 'mail', org: this.options.org(), startedAt: process.hrtime.bigint() }),
      (session) => {
        const state = this.states.get(session);
        // QUIT comes between commands: a transaction still in DATA (never, smtp-server reads no command then) is left to onClose
        if (state?.tx && !state.tx.inData) this.endTransaction(state, QUIT);
      },
      (session) => {
        // ended here, before onClose could count a silent client as a dropped connection
        const state = this.states.get(session);
        if (state?.tx?.inData) state.tx.cancel?.('upstream-timeout');
        else this.endTransaction(state, TIMED_OUT);
      },
    );
    server.on('error', (error: Error & { code?: string }) => {
      // TLS handshake failures surface here (protocol version, no shared cipher, a peer that hung up mid-handshake)
      const code = `${error.code ?? ''} ${error.message}`;
      if (/SSL|TLS|handshake|alert/i.test(code)) this.options.metrics.tlsErrors.inc({ reason: 'handshake' });
      this.options.logger.debug({ event: 'smtp-error', code: error.code }, 'smtp connection error');
    });
    this.servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(port, host, () => {
        server.server.removeListener('error', reject);
        resolve();
      });
    });
    return server.server.address() as AddressInfo;
  }

  /** True when connections start without smtp-server's early-talker pause. */
  get fastStart(): boolean {
    return FAST_START_AVAILABLE;
  }

  status(): RelayStatus {
    return { draining: this.draining, sessions: this.sessions, transactions: this.open.size };
  }

  /** New server certificate/key/CA bundle: applies to every new TLS session. */
  updateTls(material: RelayTlsMaterial): void {
    this.tls = { ...this.tls, ...material };
    for (const server of this.servers) server.updateSecureContext({ key: material.key, cert: material.cert, ca: material.ca });
  }

  /**
   * Stops taking work: new sessions and new transactions get 421 4.3.2; in-flight
   * transactions may finish. Resolves when none is left or after `boundMs`, when
   * the remaining ones are cut (their downstream aborted before the final dot,
   * their upstream told 421), then the listeners close.
   */
  async drain(boundMs: number): Promise<{ finished: boolean; cut: number }> {
    this.draining = true;
    const idle = this.open.size === 0 ? Promise.resolve(true) : new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true)));
    const finished = await Promise.race([idle, new Promise<boolean>((resolve) => setTimeout(() => resolve(false), boundMs).unref())]);
    const cut = finished ? 0 : this.open.size;
    await this.close();
    return { finished, cut };
  }

  /** Closes the listeners and every session (in-flight transactions are aborted, never half-delivered). */
  async close(): Promise<void> {
    this.draining = true;
    this.pool.close();
    // every transaction still open is cut and counted as such (reason shutdown), one whose client has
    // already left (waiting for the downstream's answer to its final dot) included
    for (const [tx, state] of [...this.open]) {
      if (tx.inData) tx.cancel?.('shutdown');
      else this.endTransaction(state, SHUTDOWN);
    }
    for (const connection of this.connections.values()) {
      try {
        connection.send(421, '4.3.2 Service shutting down; try again later');
      } catch {
        // socket already gone
      }
      connection.close();
    }
    // clients normally hang up on 421; one that does not is cut after a short grace
    const grace = setTimeout(() => {
      for (const connection of this.connections.values()) (connection as unknown as { _socket?: { destroy(): void } })._socket?.destroy();
    }, 2000);
    grace.unref();
    await Promise.all(this.servers.map((server) => new Promise<void>((resolve) => server.server.close(() => resolve()))));
    clearTimeout(grace);
  }

  private serverOptions(): SMTPServerOptions {
    const limits = this.options.limits;
    return {
      name: this.options.hostname,
      banner: 'Signet relay',
      key: this.tls.key,
      cert: this.tls.cert,
      ca: this.tls.ca,
      minVersion: this.tls.minVersion,
      // OpenSSL verifies the chain against `ca`; the verdict is read in onSecure so the
      // client gets an SMTP answer and the failure is counted by reason (a handshake
      // abort would leave both blind). No session proceeds past onSecure unverified.
      requestCert: true,
      rejectUnauthorized: false,
      disabledCommands: ['AUTH'],
      authOptional: true,
      hideENHANCEDSTATUSCODES: false,
      // DSN requests (RFC 3461) are passed on when the downstream supports DSN (Exchange Online does)
      hideDSN: false,
      hideREQUIRETLS: true,
      size: limits.maxMessageBytes,
      maxCommandLength: limits.maxLineLength,
      socketTimeout: limits.idleMs,
      closeTimeout: 1000,
      disableReverseLookup: true,
      logger: false,
      onConnect: (session, callback) => this.onConnect(session, callback),
      onSecure: (socket, session, callback) => this.onSecure(socket as TLSSocket, session, callback),
      onMailFrom: (address, session, callback) => void this.onMailFrom(address, session, callback),
      onRcptTo: (address, session, callback) => void this.onRcptTo(address, session, callback),
      onData: (stream, session, callback) => void this.onData(stream, session, callback),
      onClose: (session) => this.onClose(session),
    };
  }

  private refuseSession(reason: SessionRefusal, callback: (err?: Error | null) => void, error: SmtpReplyError): void {
    this.options.metrics.sessionsRefused.inc({ reason });
    callback(error);
  }

  private onConnect(session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const source = normalizeAddress(session.remoteAddress);
    const state: SessionState = { source, counted: false, closeAfterTransaction: false };
    this.states.set(session, state);
    const limits = this.options.limits;
    if (this.draining) return this.refuseSession('draining', callback, reply(421, '4.3.2', 'Service shutting down; try another host'));
    if (this.allowList && !this.allowList.check(source, isIPv4(source) ? 'ipv4' : 'ipv6')) {
      // 4xx, not 5xx: while Exchange Online's ranges change, the NSG admits a new range before every
      // node's list has it, and a permanent refusal there could bounce mail. Others are refused alike.
      return this.refuseSession('source-not-allowed', callback, reply(421, '4.7.1', 'Source address not allowed'));
    }
    if (this.sessions >= limits.maxSessions) return this.refuseSession('max-sessions', callback, reply(421, '4.7.0', 'Too many sessions; try again later'));
    if ((this.perSource.get(source) ?? 0) >= limits.maxSessionsPerSource) {
      return this.refuseSession('max-sessions-per-source', callback, reply(421, '4.7.0', 'Too many sessions from your address; try again later'));
    }
    state.counted = true;
    this.sessions++;
    this.perSource.set(source, (this.perSource.get(source) ?? 0) + 1);
    this.options.metrics.activeSessions.set(this.sessions);
    state.sessionTimer = setTimeout(() => this.endSession(session, '4.4.2 Session time limit reached'), limits.sessionMs);
    state.sessionTimer.unref();
    callback();
  }

  /** Ends a session now, or after its transaction in progress (between MAIL and the end of DATA). */
  private endSession(session: SMTPServerSession, text: string): void {
    const state = this.states.get(session);
    const connection = this.connections.get(session);
    if (!state || !connection) return;
    if (state.tx && (state.tx.inData || !state.closeAfterTransaction)) {
      // A transaction that is not in DATA gets one idle period more to get there: a client that
      // keeps one open without sending DATA (NOOPs) must not outlive the limit for good.
      if (!state.tx.inData && !state.closeAfterTransaction && state.sessionTimer) {
        state.sessionTimer = setTimeout(() => this.endSession(session, text), this.options.limits.idleMs);
        state.sessionTimer.unref();
      }
      state.closeAfterTransaction = true;
      return;
    }
    this.endTransaction(state, SESSION_LIMIT);
    connection.send(421, text);
  }

  private onSecure(socket: TLSSocket, session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const identity = checkClientIdentity(socket, this.tls.acceptedClientNames);
    if (identity.notAfter && identity.ok) {
      recordCertificateExpiry(this.options.metrics.certificateExpiry, this.certSubjects, 'upstream-client', {
        subject: identity.commonName ?? identity.dnsNames[0] ?? 'unknown',
        notAfter: identity.notAfter,
      });
    }
    if (identity.ok) return callback();
    this.options.metrics.tlsErrors.inc({ reason: identity.reason ?? 'invalid' });
    this.options.logger.warn({ event: 'client-certificate-refused', session: session.id, reason: identity.reason, certificateName: identity.commonName }, 'client certificate refused');
    if (identity.reason === 'no-certificate') return callback(reply(530, '5.7.1', 'A client certificate is required'));
    const why = identity.reason === 'name-mismatch' ? 'Client certificate name not accepted' : `Client certificate not accepted (${identity.reason})`;
    callback(reply(554, '5.7.1', why));
  }

  private async onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void): Promise<void> {
    const state = this.states.get(session);
    if (!state) return callback(reply(451, '4.3.0', 'Session state lost; try again'));
    if (!session.secure) return callback(new SmtpReplyError(530, STARTTLS_FIRST));
    // a new MAIL after an unfinished one: drop the old downstream transaction
    this.endTransaction(state, RESET);
    if (state.closeAfterTransaction) return callback(reply(421, '4.4.2', 'Session time limit reached'));
    if (this.draining) {
      this.options.metrics.sessionsRefused.inc({ reason: 'draining' });
      return callback(reply(421, '4.3.2', 'Service shutting down; try another host'));
    }
    const startedAt = process.hrtime.bigint();
    const org = this.options.org();
    // a transaction that ends at MAIL (refused, or its client gone before the answer): counted and logged here
    const endAtMail = (end: TransactionEnd, error?: SmtpReplyError) => {
      this.record(session.id, end, { stage: 'mail', org, startedAt });
      callback(error);
    };
    if (!org) return endAtMail({ outcome: 'tempfailed', reason: 'no-config', upstreamCode: 451 }, reply(451, '4.3.0', 'No configuration loaded; try again later'));
    // smtp-server hands over IDN domains in Unicode; accepted domains are A-labels
    const sender = address.address;
    const domain = sender.includes('@') ? asciiDomain(sender.slice(sender.lastIndexOf('@') + 1)) : '';
    // the null sender (delivery reports, some auto-replies) has no domain to check: it passes through,
    // never refused, since a refused report cannot be reported back and would be lost
    if (sender !== '' && (!domain || !org.acceptedDomains.some((d) => d.toLowerCase() === domain))) {
      return endAtMail({ outcome: 'rejected', reason: 'sender-domain', upstreamCode: 550 }, reply(550, '5.7.1', 'Sender domain not accepted by this relay'));
    }
    // A reused downstream session may have been closed by the server while idle: then, and only
    // then (nothing of this transaction has been accepted downstream yet), try once more on a new one.
    for (let attempt = 0; ; attempt++) {
      let downstream: DownstreamSession;
      let reused: boolean;
      try {
        ({ session: downstream, reused } = await this.pool.acquire(attempt > 0));
      } catch (error) {
        const failure = this.downstreamFailure(error, 'connect');
        return endAtMail({ outcome: 'tempfailed', reason: failure.reason, upstreamCode: failure.reply.responseCode }, failure.reply);
      }
      if (!this.connections.has(session)) {
        // the client left while the downstream was being opened
        this.pool.release(downstream);
        return endAtMail(DROPPED, reply(451, '4.4.2', 'Connection lost'));
      }
      const downstreamSender = downstreamAddress(sender, address, downstream.extensions);
      if (downstreamSender === undefined) {
        this.pool.release(downstream);
        return endAtMail({ outcome: 'rejected', reason: 'non-ascii-address', upstreamCode: 553 }, NON_ASCII_REFUSED());
      }
      try {
        const answer = await downstream.mail(downstreamSender, mailParams(address, downstream.extensions));
        if (!this.connections.has(session) || this.states.get(session) !== state) {
          // the client left (or the session was ended) while the downstream answered MAIL
          downstream.abort();
          return endAtMail(DROPPED, reply(451, '4.4.2', 'Connection lost'));
        }
        if (answer.code === 421 && reused && attempt === 0) {
          downstream.abort();
          continue;
        }
        if (answer.code >= 200 && answer.code < 300) {
          state.tx = { sessionId: session.id, org, downstream, startedAt, accepted: [], refusedCount: 0, inData: false, recorded: false };
          this.open.set(state.tx, state);
          return callback();
        }
        downstream.quit();
        const refusal = mirror(answer);
        return endAtMail({ outcome: refusal.responseCode >= 500 ? 'rejected' : 'tempfailed', reason: 'downstream-mail', upstreamCode: refusal.responseCode, downstreamCode: answer.code }, refusal);
      } catch (error) {
        downstream.abort();
        if (!this.connections.has(session)) return endAtMail(DROPPED, reply(451, '4.4.2', 'Connection lost')); // not the downstream's fault
        if (reused && attempt === 0) continue;
        const failure = this.downstreamFailure(error, 'mail');
        return endAtMail({ outcome: 'tempfailed', reason: failure.reason, upstreamCode: failure.reply.responseCode }, failure.reply);
      }
    }
  }

  private async onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void): Promise<void> {
    const state = this.states.get(session);
    const tx = state?.tx;
    if (!tx) return callback(reply(451, '4.4.2', 'Downstream session lost; start over'));
    // smtp-server keeps a repeated recipient once (compared case-insensitively); the downstream already has it.
    const repeated = address.address.toLowerCase();
    if (session.envelope.rcptTo.some((r) => r.address.toLowerCase() === repeated)) return callback();
    const recipients = this.options.metrics.recipientsRefused;
    if (session.envelope.rcptTo.length >= this.options.limits.maxRecipients) {
      recipients.inc({ outcome: 'tempfailed', reason: 'too-many-recipients' });
      tx.refusedCount++;
      return callback(reply(452, '4.5.3', 'Too many recipients'));
    }
    const recipient = downstreamAddress(address.address, session.envelope.mailFrom || undefined, tx.downstream.extensions);
    if (recipient === undefined) {
      recipients.inc({ outcome: 'rejected', reason: 'non-ascii-address' });
      tx.refusedCount++;
      if (!tx.refused) tx.refused = { outcome: 'rejected', reason: 'non-ascii-address', code: 553 };
      return callback(NON_ASCII_REFUSED());
    }
    try {
      const answer = await tx.downstream.rcpt(recipient, rcptParams(address, tx.downstream.extensions));
      if (answer.code >= 200 && answer.code < 300) {
        tx.accepted.push(recipient);
        return callback();
      }
      const refusal = mirror(answer);
      const outcome = refusal.responseCode >= 500 ? 'rejected' : 'tempfailed';
      recipients.inc({ outcome, reason: 'downstream-rcpt' });
      tx.refusedCount++;
      // a 4xx among them outranks a 5xx: Exchange Online retries
      if (tx.refused?.outcome !== 'tempfailed') tx.refused = { outcome, reason: 'downstream-rcpt', code: refusal.responseCode, downstreamCode: answer.code };
      return callback(refusal);
    } catch (error) {
      // the transaction already ended here (client gone, RSET, session end): not a downstream failure
      if (state.tx !== tx) return callback(reply(451, '4.4.2', 'Transaction ended; start over'));
      const failure = this.downstreamFailure(error, 'rcpt');
      tx.refused = undefined; // the failure decides this message, not the refusals before it
      this.endTransaction(state, { outcome: 'tempfailed', reason: failure.reason, upstreamCode: failure.reply.responseCode });
      if (state.closeAfterTransaction) setImmediate(() => this.endSession(session, '4.4.2 Session time limit reached'));
      return callback(failure.reply);
    }
  }

  private async onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null, message?: string) => void): Promise<void> {
    const state = this.states.get(session);
    const tx = state?.tx;
    if (!state || !tx) {
      stream.resume();
      return callback(reply(451, '4.4.2', 'Downstream session lost; start over'));
    }
    tx.inData = true;
    const metrics = this.options.metrics;
    let bytesOut = 0;
    // set below, once the pipeline is built; fail() stops it
    let run: ReturnType<Engine['process']> | undefined;
    // What the downstream cannot carry (never the case with Exchange Online, which offers both; a
    // misconfigured downstream): UTF-8 header fields without SMTPUTF8 (RFC 6531), 8-bit data without
    // 8BITMIME (RFC 6152). The relay does not downgrade a message: it is deferred, never sent mangled.
    const mailArgs = ((session.envelope.mailFrom && session.envelope.mailFrom.args) || {}) as Record<string, unknown>;
    const utf8Declared = Boolean(mailArgs.SMTPUTF8);
    const asciiHeadersOnly = utf8Declared && !offers(tx.downstream.extensions, 'SMTPUTF8');
    const sevenBitOnly = !offers(tx.downstream.extensions, '8BITMIME');
    const gate = new HopGate(
      this.options.limits.maxSignetHops,
      () => {
        if (stream.sizeExceeded) fail('rejected', 'size', reply(552, '5.3.4', 'Message too big'));
      },
      undefined,
      this.options.tenantId,
      asciiHeadersOnly,
    );
    let engineResult: EngineResult | undefined;
    let finished = false;
    let downstreamCode: number | undefined;
    // the final dot has gone downstream: from here the message is the downstream's to deliver
    let finalDotSent = false;
    // the client is gone: whatever the answer, it will not read it
    let upstreamGone = false;

    const finish = (outcome: Outcome, reason: MessageReason, error?: SmtpReplyError, message?: string) => {
      if (finished) return;
      finished = true;
      const seconds = Number(process.hrtime.bigint() - tx.startedAt) / 1e9;
      metrics.transactionSeconds.observe({ outcome }, seconds);
      const bytesIn = gate.bytes;
      metrics.messageBytes.observe({ direction: 'in' }, bytesIn);
      if (outcome === 'signed' || outcome === 'passed') metrics.messageBytes.observe({ direction: 'out' }, bytesOut);
      if (engineResult) metrics.engineSeconds.observe({ outcome: engineResult.outcome }, engineResult.engineSeconds);
      tx.recorded = true;
      this.record(
        session.id,
        { outcome, reason, upstreamCode: error ? error.responseCode : 250, downstreamCode, upstreamAnswered: upstreamGone || !this.connections.has(session) ? false : undefined },
        {
          stage: 'data',
          org: tx.org,
          startedAt: tx.startedAt,
          recipientCount: tx.accepted.length,
          recipientsRefused: tx.refusedCount,
          messageIdHash: this.options.hashId(gate.messageId),
          bytesIn,
          bytesOut,
          engine: engineResult,
          hops: gate.stamps,
          deliveryUnknown: finalDotSent && downstreamCode === undefined ? true : undefined,
        },
      );
      if (error) callback(error);
      else callback(null, message);
      // smtp-server sends this answer only after the client's final dot. A refusal decided mid-stream
      // (size, loop, tenant) leaves the transaction open until then: ended earlier, a drain or the
      // session limit would send 421 first and turn a 5xx into a retry.
      const settle = () => {
        if (state.tx !== tx) return;
        this.endTransaction(state); // recorded above
        if (state.closeAfterTransaction) setImmediate(() => this.endSession(session, '4.4.2 Session time limit reached'));
      };
      if (stream.readableEnded || stream.destroyed) settle();
      else stream.once('close', settle);
    };

    // On any failure: cut the downstream before its final dot, stop the pipeline,
    // keep reading the upstream to its end (smtp-server answers after it), answer 4xx/5xx.
    const fail = (outcome: Outcome, reason: MessageReason, error: SmtpReplyError) => {
      if (finished) return;
      tx.downstream.abort();
      stream.unpipe();
      stream.on('data', () => undefined);
      stream.resume();
      setImmediate(() => stream.resume());
      if (run) {
        run.output.unpipe();
        run.output.destroy();
      }
      gate.destroy();
      finish(outcome, reason, error);
    };
    const upstreamDropped = () => {
      upstreamGone = true;
      fail('tempfailed', 'upstream-dropped', reply(451, '4.4.2', 'Connection lost'));
    };
    const refuseUnsupported = (extension: '8BITMIME' | 'SMTPUTF8') => {
      this.options.logger.warn({ event: 'downstream-unsupported', session: session.id, extension }, `message needs ${extension}, which the downstream does not offer`);
      if (extension === '8BITMIME') fail('tempfailed', 'downstream-no-8bitmime', reply(451, '4.6.3', '8-bit data not supported by the next hop; try again later'));
      else fail('tempfailed', 'downstream-no-smtputf8', reply(451, '4.6.9', 'UTF-8 header fields not supported by the next hop; try again later'));
    };
    tx.cancel = (why) => {
      if (finished) return;
      if (why === 'shutdown') return fail('tempfailed', 'shutdown', reply(421, '4.3.2', 'Service shutting down; try again later'));
      // A client that leaves after its final dot, once that dot has gone downstream, leaves a message
      // the downstream holds (RFC 1047): cutting the downstream now would not take it back, only lose
      // its answer. Wait for that answer and count what it says (delivered, most often; the client
      // never saw it, so Exchange Online retries, and the retry is a duplicate no proxy can prevent).
      if (finalDotSent) {
        upstreamGone = true;
        return;
      }
      // smtp-server has already sent its 421 and is closing the session: this answer is only recorded
      if (why === 'upstream-timeout') return fail('tempfailed', 'upstream-timeout', reply(421, '4.4.2', 'Idle timeout'));
      upstreamDropped();
    };

    stream.on('error', upstreamDropped);

    let body: NonNullable<Awaited<ReturnType<DownstreamSession['data']>>['body']>;
    let result: Promise<SmtpReply>;
    try {
      const started = await tx.downstream.data();
      if (!started.body || !started.result) {
        downstreamCode = started.reply.code;
        return fail(started.reply.code >= 500 ? 'rejected' : 'tempfailed', 'downstream-data', mirror(started.reply));
      }
      body = started.body;
      result = started.result;
    } catch (error) {
      // already ended (client gone, shutdown): the abort rejected DATA, not the downstream's fault
      if (finished) return;
      const failure = this.downstreamFailure(error, 'data');
      return fail('tempfailed', failure.reason, failure.reply);
    }
    if (finished) return;

    let engineRun: ReturnType<Engine['process']>;
    try {
      engineRun = run = tx.org.engine.process(gate, { mailFrom: session.envelope.mailFrom ? asciiAddress(session.envelope.mailFrom.address) : '', rcptTo: tx.accepted.map(asciiAddress) });
    } catch (error) {
      this.options.logger.error({ event: 'engine-error', session: session.id, error: (error as Error).message }, 'engine failed to start');
      return fail('tempfailed', 'engine-error', reply(451, '4.3.0', 'Local error in processing; try again later'));
    }
    const engineFailed = (error: unknown) => {
      if (finished) return;
      if (error instanceof HopLimitError || (error as { cause?: unknown })?.cause instanceof HopLimitError || gate.stamps > this.options.limits.maxSignetHops) {
        return fail('rejected', 'loop', reply(554, '5.4.6', `Mail loop detected: ${gate.stamps} Signet hops`));
      }
      const tenant = error instanceof TenantMismatchError ? error : (error as { cause?: unknown })?.cause instanceof TenantMismatchError ? ((error as { cause: TenantMismatchError }).cause) : undefined;
      if (tenant) {
        // Only another tenant's mail is refused for good. A message without the header, or with another
        // tenant's beside ours, is deferred: should Exchange Online stamp mail differently, it queues
        // (and the tempfail alert fires) instead of bouncing; a sender from another tenant gains nothing.
        this.options.logger.warn({ event: 'tenant-refused', session: session.id, kind: tenant.kind }, 'message not from this organization\'s Microsoft 365 tenant');
        if (tenant.kind === 'other') return fail('rejected', 'other-tenant', reply(550, '5.7.1', 'Message is not from this organization\'s Microsoft 365 tenant'));
        return fail('tempfailed', tenant.kind === 'none' ? 'no-tenant-header' : 'mixed-tenant-header', reply(451, '4.7.1', 'Message does not carry exactly this organization\'s Microsoft 365 tenant id; try again later'));
      }
      if (stream.sizeExceeded) return fail('rejected', 'size', reply(552, '5.3.4', 'Message too big'));
      if (error instanceof Utf8HeadersError || (error as { cause?: unknown })?.cause instanceof Utf8HeadersError) return refuseUnsupported('SMTPUTF8');
      this.options.logger.error({ event: 'engine-error', session: session.id, error: (error as Error)?.message }, 'engine failed');
      fail('tempfailed', 'engine-error', reply(451, '4.3.0', 'Local error in processing; try again later'));
    };
    gate.on('error', engineFailed);
    engineRun.output.on('error', engineFailed);
    engineRun.result.catch(engineFailed);
    result.catch((error: unknown) => {
      if (finished) return;
      const failure = this.downstreamFailure(error, 'data');
      fail('tempfailed', failure.reason, failure.reply);
    });
    engineRun.output.on('data', (chunk: Buffer) => {
      bytesOut += chunk.length;
      // the chunk may still reach the aborted downstream connection, but never a final dot
      if (sevenBitOnly && !finished && !isAscii(chunk)) refuseUnsupported('8BITMIME');
    });
    engineRun.output.pipe(body, { end: false });
    engineRun.output.on('end', () => {
      void (async () => {
        try {
          engineResult = await engineRun.result;
        } catch (error) {
          return engineFailed(error);
        }
        // the upstream must have ended cleanly and within the size limit before the final dot goes out
        if (finished || stream.sizeExceeded) return;
        if (!stream.readableEnded) await new Promise<void>((resolve) => stream.once('end', resolve));
        if (finished || stream.sizeExceeded) return;
        finalDotSent = true;
        body.end();
        let answer: SmtpReply;
        try {
          answer = await result;
        } catch {
          return; // handled by result.catch above
        }
        if (finished) return;
        downstreamCode = answer.code;
        if (answer.code >= 200 && answer.code < 300) {
          // the transaction is complete downstream: the session is clean and may carry the next one
          tx.reusable = true;
          return finish(engineResult.outcome, engineResult.reason ?? 'signed', undefined, `${answer.enhanced ?? '2.6.0'} ${sanitize(answer.text) || 'Ok'}`);
        }
        tx.downstream.quit();
        const upstream = mirror(answer);
        finish(upstream.responseCode >= 500 ? 'rejected' : 'tempfailed', 'downstream-data', upstream);
      })();
    });
    stream.pipe(gate);
  }

  private onClose(session: SMTPServerSession): void {
    const state = this.states.get(session);
    this.connections.delete(session);
    if (!state) return;
    if (state.sessionTimer) clearTimeout(state.sessionTimer);
    if (state.tx?.inData) state.tx.cancel?.('upstream-dropped');
    else this.endTransaction(state, DROPPED);
    if (state.counted) {
      state.counted = false;
      this.sessions--;
      const n = (this.perSource.get(state.source) ?? 1) - 1;
      if (n <= 0) this.perSource.delete(state.source);
      else this.perSource.set(state.source, n);
      this.options.metrics.activeSessions.set(this.sessions);
    }
  }

  /**
   * Ends the session's transaction, if it has one. One that was not recorded yet (it did not get
   * to answer DATA) is recorded here with `end`, unless every recipient was refused: then the
   * refusals decided the message, whatever ended the transaction afterwards.
   */
  private endTransaction(state: SessionState | undefined, end: TransactionEnd = RESET): void {
    if (!state?.tx) return;
    const tx = state.tx;
    state.tx = undefined;
    if (!tx.recorded) {
      tx.recorded = true;
      const refused = tx.refused && tx.accepted.length === 0 ? tx.refused : undefined;
      this.record(tx.sessionId, refused ? { outcome: refused.outcome, reason: refused.reason, upstreamCode: refused.code, downstreamCode: refused.downstreamCode } : end, {
        stage: tx.inData ? 'data' : tx.accepted.length + tx.refusedCount > 0 ? 'rcpt' : 'mail',
        org: tx.org,
        startedAt: tx.startedAt,
        recipientCount: tx.accepted.length,
        recipientsRefused: tx.refusedCount,
      });
    }
    if (tx.reusable) this.pool.release(tx.downstream);
    else if (tx.downstream.usable) tx.downstream.abort();
    this.open.delete(tx);
    if (this.open.size === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Counts and logs a downstream failure; the caller records the transaction it ended with the reason and reply returned. */
  private downstreamFailure(error: unknown, stage: string): { reason: DownstreamFailureReason; reply: SmtpReplyError } {
    const cause = error instanceof DownstreamError ? error.kind : 'protocol';
    this.options.metrics.downstreamErrors.inc({ reason: cause });
    this.options.logger.warn({ event: 'downstream-error', stage, cause, error: (error as Error)?.message }, 'downstream failed');
    const answer = stage === 'connect' ? reply(451, '4.4.1', 'Downstream unavailable; try again later') : reply(451, '4.4.2', 'Downstream connection lost; try again later');
    return { reason: `downstream-${cause}`, reply: answer };
  }

  /**
   * The one place a transaction is counted and logged: signet_messages_total and the
   * `transaction` line agree, one each per transaction. Ids, counts, sizes, codes and
   * durations only: never an address, a subject or content.
   */
  private record(sessionId: string, end: TransactionEnd, facts: TransactionFacts): void {
    this.options.metrics.messages.inc({ outcome: end.outcome, reason: end.reason });
    const engine = facts.engine;
    this.options.logger.info(
      {
        event: 'transaction',
        session: sessionId,
        stage: facts.stage,
        messageIdHash: facts.messageIdHash,
        recipientCount: facts.recipientCount ?? 0,
        recipientsRefused: facts.recipientsRefused ?? 0,
        bytesIn: facts.bytesIn,
        bytesOut: facts.bytesOut,
        outcome: end.outcome,
        reason: end.reason,
        orgId: facts.org?.engine.orgId,
        configVersion: facts.org?.engine.configVersion,
        ruleIds: engine?.ruleIds,
        templateId: engine?.templateId,
        addons: engine?.addons,
        // where only: the error's own message may quote the sender's directory values
        templateError: engine?.templateError ? `${engine.templateError.where} (${engine.templateError.errorName})` : undefined,
        engineSeconds: engine?.engineSeconds,
        seconds: Number(process.hrtime.bigint() - facts.startedAt) / 1e9,
        upstreamCode: end.upstreamCode,
        downstreamCode: end.downstreamCode,
        upstreamAnswered: end.upstreamAnswered,
        deliveryUnknown: facts.deliveryUnknown,
        hops: facts.hops,
      },
      'transaction',
    );
  }
}


/** A domain as ASCII (IDN A-labels), lower case; '' if it is not a valid domain. */
export function asciiDomain(domain: string): string {
  return ASCII.test(domain) ? domain.toLowerCase() : domainToASCII(domain);
}

/** An address with its domain as ASCII (smtp-server turns IDN domains into Unicode); ASCII domains keep their case. */
export function asciiAddress(address: string): string {
  const at = address.lastIndexOf('@');
  const domain = address.slice(at + 1);
  if (at < 0 || ASCII.test(domain)) return address;
  const ascii = asciiDomain(domain);
  return ascii ? `${address.slice(0, at)}@${ascii}` : address;
}

/**
 * The address as it goes downstream: in UTF-8 only when the transaction is SMTPUTF8 and the
 * downstream supports it; otherwise with an IDN domain back in its ASCII form (as the client sent it).
 * Undefined when it cannot be carried: a UTF-8 local part without SMTPUTF8 downstream.
 */
function downstreamAddress(address: string, mailFrom: SMTPServerAddress | undefined, extensions: string[]): string | undefined {
  const args = (mailFrom?.args || {}) as Record<string, unknown>;
  if (Boolean(args.SMTPUTF8) && offers(extensions, 'SMTPUTF8')) return address;
  const ascii = asciiAddress(address);
  return ASCII.test(ascii) ? ascii : undefined;
}

/** RFC 6531: an address that needs SMTPUTF8 where the next hop does not offer it. */
const NON_ASCII_REFUSED = () => reply(553, '5.6.7', 'Non-ASCII address not supported by the next hop');

/**
 * RFC 3461 xtext: smtp-server hands over decoded values, where "+XX" became the character U+00XX;
 * they go downstream encoded again as the same bytes (only a character past U+00FF, which can only
 * have come unencoded, goes as its UTF-8 bytes). Re-encoding every character as UTF-8 would turn
 * "+E9" into "+C3+A9" and change the ENVID that comes back in the sender's DSN.
 */
export function xtext(value: string): string {
  let out = '';
  for (const ch of value) {
    const code = ch.codePointAt(0)!;
    if (code > 0x20 && code < 0x7f && ch !== '+' && ch !== '=') out += ch;
    else for (const byte of code <= 0xff ? [code] : Buffer.from(ch, 'utf8')) out += `+${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** MAIL parameters passed on when the downstream supports them (SIZE, BODY, SMTPUTF8, DSN's RET and ENVID). */
function mailParams(address: SMTPServerAddress, extensions: string[]): string[] {
  const args = (address.args || {}) as Record<string, string | true>;
  const out: string[] = [];
  if (typeof args.SIZE === 'string' && offers(extensions, 'SIZE')) out.push(`SIZE=${args.SIZE}`);
  if (typeof args.BODY === 'string' && offers(extensions, '8BITMIME')) out.push(`BODY=${args.BODY.toUpperCase()}`);
  if (args.SMTPUTF8 && offers(extensions, 'SMTPUTF8')) out.push('SMTPUTF8');
  if (offers(extensions, 'DSN')) {
    if (typeof args.RET === 'string') out.push(`RET=${args.RET.toUpperCase()}`);
    if (typeof args.ENVID === 'string') out.push(`ENVID=${xtext(args.ENVID)}`);
  }
  return out;
}

/** RCPT parameters passed on when the downstream supports DSN (NOTIFY, ORCPT). */
function rcptParams(address: SMTPServerAddress, extensions: string[]): string[] {
  const args = (address.args || {}) as Record<string, string | true>;
  if (!offers(extensions, 'DSN')) return [];
  const out: string[] = [];
  if (typeof args.NOTIFY === 'string') out.push(`NOTIFY=${args.NOTIFY.toUpperCase()}`);
  if (typeof args.ORCPT === 'string') out.push(`ORCPT=${xtext(args.ORCPT)}`);
  return out;
}

export function createRelay(options: RelayOptions): Relay {
  return new Relay(options);
}
