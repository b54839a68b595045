// One downstream SMTP session (toward Exchange Online) driven one command at a
// time, so the relay can mirror each answer to its upstream as it comes.
//
// Connection set-up (TCP, greeting, EHLO, mandatory STARTTLS with this node's
// client certificate and verification of the server's certificate and name,
// EHLO again) are nodemailer's SMTPConnection. Its public send() issues MAIL,
// every RCPT and DATA in one go; a before-queue proxy must answer each upstream
// RCPT before the next arrives, so MAIL/RCPT/DATA go through its command
// primitives (`_sendCommand` + `_responseActions`, the same ones send() uses),
// and the message is written to its socket the way its own send stream does,
// through DotStuffer (dot-stuffing.ts) instead of nodemailer's byte-by-byte
// DataStream. `assertNodemailerInternals` checks they exist, and the tests
// exercise them, so an upgrade that changes them fails loudly instead of
// silently.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Writable } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { DotStuffer } from './dot-stuffing';

export interface DownstreamTls {
  key: string | Buffer;
  cert: string | Buffer;
  ca?: string | Buffer | Array<string | Buffer>;
  servername?: string;
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
}

export interface DownstreamOptions {
  host: string;
  port: number;
  /** Name sent in EHLO. */
  name: string;
  /** Current TLS material (re-read on each connection so rotated files take effect). */
  tls: () => DownstreamTls;
  connectTimeoutMs: number;
  greetingTimeoutMs: number;
  commandTimeoutMs: number;
  dataTimeoutMs: number;
  /** How many of the host's addresses a new session tries in turn before it fails (default 1). */
  maxAddresses?: number;
  /** The host's addresses, in the order to try them; default: the system resolver (getaddrinfo, /etc/hosts included). */
  resolve?: (host: string) => Promise<string[]>;
  /** Addresses that failed lately, shared by the sessions and the probe: tried after the others. */
  failedAddresses?: FailedAddresses;
  /** An address failed and the next one is tried (not called for the last failure, which open() throws). */
  onAddressFailure?: (address: string, error: DownstreamError) => void;
}

/**
 * Downstream addresses that failed within the last `holdMs`. A name like
 * `<tenant>.mail.protection.outlook.com` has several addresses; when one stops
 * answering, new sessions try it last instead of waiting for its connect
 * timeout every time. After `holdMs` it is tried in its DNS place again.
 */
export class FailedAddresses {
  private readonly failedAt = new Map<string, number>();

  constructor(
    private readonly holdMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  record(address: string): void {
    this.failedAt.delete(address);
    this.failedAt.set(address, this.now());
    // a host has a handful of addresses; a long list means names changed, forget the oldest
    if (this.failedAt.size > 64) this.failedAt.delete(this.failedAt.keys().next().value!);
  }

  clear(address: string): void {
    this.failedAt.delete(address);
  }

  /** `addresses` with the recent failures moved to the end, the longest-ago failure first among them. */
  order(addresses: string[]): string[] {
    const now = this.now();
    const fresh: string[] = [];
    const failed: Array<[string, number]> = [];
    for (const address of addresses) {
      const at = this.failedAt.get(address);
      if (at === undefined || now - at >= this.holdMs) fresh.push(address);
      else failed.push([address, at]);
    }
    return [...fresh, ...failed.sort((a, b) => a[1] - b[1]).map(([address]) => address)];
  }
}

export interface SmtpReply {
  code: number;
  /** Enhanced status code (RFC 3463), when the server gave one. */
  enhanced?: string;
  /** Text of the last line, without code and enhanced code. */
  text: string;
}

/** Why the downstream could not be used, as reported by signet_downstream_up{cause}. */
export type DownstreamCause = 'port25-blocked' | 'refused' | 'unreachable' | 'tls' | 'timeout' | 'dns' | 'dropped' | 'protocol';

export class DownstreamError extends Error {
  constructor(
    message: string,
    readonly kind: DownstreamCause,
    readonly reply?: SmtpReply,
  ) {
    super(message);
    this.name = 'DownstreamError';
  }
}

interface NodemailerInternals {
  _sendCommand(line: string): void;
  _responseActions: Array<(str: string) => void>;
  /** The connection's socket (the TLS socket once STARTTLS is done). */
  _socket?: Writable;
  /** The DATA stream piped to the socket; close() unpipes it. */
  _currentDataStream: Writable | false;
  _supportedExtensions: string[];
  _maxAllowedSize: number;
}

type Connection = SMTPConnection & NodemailerInternals;

export function assertNodemailerInternals(connection: unknown): asserts connection is NodemailerInternals {
  const c = connection as Partial<NodemailerInternals>;
  if (typeof c._sendCommand !== 'function' || !Array.isArray(c._responseActions) || !('_currentDataStream' in c)) {
    throw new Error('nodemailer SMTPConnection no longer exposes the command primitives the relay uses; pin nodemailer or adapt downstream.ts');
  }
}

export function parseReply(str: string): SmtpReply {
  const lines = str.replace(/\r?\n$/, '').split(/\r?\n/);
  const last = lines[lines.length - 1] ?? '';
  // the enhanced code may be all a reply says ("550 5.1.10"): it is still the code to mirror
  const m = /^(\d{3})[ -]?(?:([245]\.\d{1,3}\.\d{1,3})(?:\s+|$))?(.*)$/.exec(last);
  if (!m) return { code: 0, text: last };
  return { code: Number(m[1]), enhanced: m[2], text: m[3] ?? '' };
}

/** Maps a nodemailer/socket error to the cause operators act on. */
export function classifyError(error: unknown, port: number): DownstreamCause {
  const e = error as { code?: string; originalCode?: string; message?: string; timeoutType?: string };
  const codes = `${e.code ?? ''} ${e.originalCode ?? ''}`;
  const message = e.message ?? '';
  if (/EDNS|ENOTFOUND|EAI_AGAIN|ENODATA/.test(codes)) return 'dns';
  if (/ECONNREFUSED/.test(codes) || /ECONNREFUSED/.test(message)) return 'refused';
  // No route from this node: a subnet route or firewall, or an IPv6 address on a node without IPv6.
  if (/ENETUNREACH|EHOSTUNREACH|EADDRNOTAVAIL/.test(codes) || /ENETUNREACH|EHOSTUNREACH|EADDRNOTAVAIL/.test(message)) return 'unreachable';
  if (e.timeoutType === 'CONNECT_TIMEOUT' || /Connection timeout/.test(message)) {
    // Azure (and many clouds) silently drop outbound SYNs to port 25: a connect timeout there is that block.
    return port === 25 ? 'port25-blocked' : 'timeout';
  }
  if (/ETLS|CERT|SSL|ERR_TLS|ALTNAME|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/.test(codes) || /TLS|certificate|SSL/i.test(message)) return 'tls';
  if (/ETIMEDOUT/.test(codes) || e.timeoutType) return 'timeout';
  if (/ECONNRESET|EPIPE|ECONNECTION|ESOCKET/.test(codes)) return 'dropped';
  return 'protocol';
}

export const CAUSE_HINTS: Record<DownstreamCause, string> = {
  'port25-blocked':
    'outbound TCP port 25 seems blocked (connection attempts time out): Azure blocks port 25 from most subscription types; send via the tenant\'s inbound connector from an allowed subscription or request the unblock',
  refused: 'the downstream host refused the connection: check downstream.host and downstream.port',
  unreachable:
    'no network route from this node to the downstream address: check the subnet\'s route table and firewall, and IPv6 routing if the host resolves to IPv6 addresses',
  tls: 'TLS with the downstream failed: check the node client certificate/key, downstream.tls.ca and downstream.tls.servername',
  timeout: 'the downstream did not answer in time',
  dns: 'the downstream host name does not resolve: check downstream.host and the node\'s DNS',
  dropped: 'the downstream closed the connection',
  protocol: 'the downstream answered something unexpected',
};

/** An open downstream session, after EHLO over TLS. */
export class DownstreamSession {
  private waiting?: { reject: (error: DownstreamError) => void; timer?: NodeJS.Timeout };
  private failure?: DownstreamError;
  private closed = false;

  private constructor(
    private readonly connection: Connection,
    private readonly options: DownstreamOptions,
  ) {
    connection.on('error', (error: Error) => this.fail(new DownstreamError(`downstream: ${error.message}`, classifyError(error, options.port))));
    connection.on('end', () => this.fail(new DownstreamError('downstream closed the connection', 'dropped')));
  }

  /**
   * Connects, greets, upgrades with STARTTLS (required) and greets again. A
   * host name is resolved here and its addresses are tried in turn (up to
   * `maxAddresses`, recent failures last), as an MTA tries the next address
   * when one does not answer, refuses, greets with an error or fails TLS; the
   * certificate is still checked against the name, never the address.
   */
  static async open(options: DownstreamOptions): Promise<DownstreamSession> {
    const addresses = await resolveAddresses(options);
    const failed = options.failedAddresses;
    const tried = (failed ? failed.order(addresses) : addresses).slice(0, Math.max(1, options.maxAddresses ?? 1));
    const errors: Array<[string, DownstreamError]> = [];
    for (const [i, address] of tried.entries()) {
      try {
        const session = await DownstreamSession.openAt(options, address);
        failed?.clear(address);
        return session;
      } catch (error) {
        const failure = error instanceof DownstreamError ? error : new DownstreamError(`downstream ${address}: ${(error as Error).message}`, classifyError(error, options.port));
        failed?.record(address);
        errors.push([address, failure]);
        if (i < tried.length - 1) options.onAddressFailure?.(address, failure);
      }
    }
    if (errors.length === 1) throw errors[0][1];
    // every address failed: report the cause an operator acts on first (an
    // unreachable IPv6 address next to a blocked port 25 is the port's problem)
    const [, worst] = errors.reduce((a, b) => (CAUSE_ORDER.indexOf(b[1].kind) < CAUSE_ORDER.indexOf(a[1].kind) ? b : a));
    throw new DownstreamError(
      `downstream ${options.host}:${options.port}: all ${errors.length} addresses failed: ${errors.map(([a, e]) => `${a}: ${e.message}`).join('; ')}`,
      worst.kind,
      worst.reply,
    );
  }

  private static openAt(options: DownstreamOptions, address: string): Promise<DownstreamSession> {
    const tls = options.tls();
    const tlsOptions: ConnectionOptions = {
      key: tls.key,
      cert: tls.cert,
      ca: tls.ca,
      servername: tls.servername ?? options.host,
      minVersion: tls.minVersion ?? 'TLSv1.2',
      rejectUnauthorized: true,
    };
    const connection = new SMTPConnection({
      host: address,
      port: options.port,
      name: options.name,
      secure: false,
      requireTLS: true,
      tls: tlsOptions,
      servername: tlsOptions.servername,
      connectionTimeout: options.connectTimeoutMs + options.greetingTimeoutMs,
      greetingTimeout: options.greetingTimeoutMs,
      // per-command deadlines are ours (see command()); this only guards a silent socket
      socketTimeout: Math.max(options.commandTimeoutMs, options.dataTimeoutMs) + 1000,
      // abort must drop the socket at once, never flush a half-written message
      socketCloseTimeout: 0,
      logger: false,
      debug: false,
    } as ConstructorParameters<typeof SMTPConnection>[0]) as Connection;
    assertNodemailerInternals(connection);
    // The connect timeout proper: nodemailer's connectionTimeout spans the whole set-up.
    return new Promise((resolve, reject) => {
      let settled = false;
      const onEarlyError = (error: Error) => {
        if (settled) return;
        settled = true;
        const where = address === options.host ? address : `${options.host} (${address})`;
        reject(new DownstreamError(`downstream ${where}:${options.port}: ${error.message}`, classifyError(error, options.port)));
      };
      connection.once('error', onEarlyError);
      connection.connect((error?: Error) => {
        if (settled) return;
        if (error) return onEarlyError(error);
        if (!connection.secure) {
          connection.close();
          return onEarlyError(Object.assign(new Error('downstream did not offer STARTTLS'), { code: 'ETLS' }));
        }
        settled = true;
        connection.removeListener('error', onEarlyError);
        resolve(new DownstreamSession(connection, options));
      });
    });
  }

  /** Extensions the downstream announced over TLS (upper case keywords). */
  get extensions(): string[] {
    return this.connection._supportedExtensions.map((e) => e.toUpperCase());
  }

  get usable(): boolean {
    return !this.closed && !this.failure;
  }

  mail(from: string, params: string[] = []): Promise<SmtpReply> {
    return this.command(`MAIL FROM:<${from}>${params.length ? ' ' + params.join(' ') : ''}`, this.options.commandTimeoutMs);
  }

  rcpt(to: string, params: string[] = []): Promise<SmtpReply> {
    return this.command(`RCPT TO:<${to}>${params.length ? ' ' + params.join(' ') : ''}`, this.options.commandTimeoutMs);
  }

  /**
   * Sends DATA; on 354 returns a writable for the message (dot-stuffed on
   * its way to the socket). Ending it sends the final dot; `reply` then resolves with the
   * downstream's answer. Never end it for a message that must not be delivered:
   * call abort() instead.
   */
  async data(): Promise<{ reply: SmtpReply; body?: Writable; result?: Promise<SmtpReply> }> {
    const reply = await this.command('DATA', this.options.commandTimeoutMs);
    if (reply.code !== 354) return { reply };
    let resolveResult!: (reply: SmtpReply) => void;
    let rejectResult!: (error: DownstreamError) => void;
    const result = new Promise<SmtpReply>((resolve, reject) => {
      resolveResult = resolve;
      rejectResult = reject;
    });
    result.catch(() => undefined); // observed by the caller; avoid an unhandled rejection if it never looks
    const connection = this.connection;
    const socket = connection._socket;
    if (!socket) throw new DownstreamError('downstream connection has no socket', 'dropped');
    // what nodemailer's _createSendStream does, with DotStuffer in place of its DataStream
    const body = new DotStuffer();
    connection._responseActions.push((str: string) => {
      this.clearWaiting();
      resolveResult(parseReply(str));
    });
    connection._currentDataStream = body;
    body.pipe(socket, { end: false });
    body.once('end', () => {
      if (connection._currentDataStream === body) connection._currentDataStream = false;
    });
    this.waiting = { reject: rejectResult };
    // The deadline for the final answer starts when the body has been written out.
    body.once('finish', () => {
      if (this.waiting && !this.waiting.timer) {
        this.waiting.timer = setTimeout(() => this.fail(new DownstreamError('downstream did not answer the end of DATA in time', 'timeout')), this.options.dataTimeoutMs);
      }
    });
    if (this.failure) rejectResult(this.failure);
    return { reply, body, result };
  }

  /** Ends the session politely (after a completed transaction). */
  quit(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearWaiting();
    if (this.failure) return this.connection.close();
    try {
      this.connection.quit();
    } catch {
      this.connection.close();
    }
  }

  /**
   * Drops the connection at once. Used on any failure: a DATA in progress is
   * cut before its terminating dot, so the downstream discards it.
   */
  abort(): void {
    if (this.closed) return;
    this.closed = true;
    const waiting = this.waiting;
    this.clearWaiting();
    this.connection.close();
    waiting?.reject(new DownstreamError('downstream transaction aborted', 'dropped'));
  }

  private command(line: string, timeoutMs: number): Promise<SmtpReply> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new DownstreamError('downstream session already closed', 'dropped'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new DownstreamError(`downstream did not answer ${line.split(/[ :]/)[0]} in time`, 'timeout')), timeoutMs);
      this.waiting = { reject, timer };
      this.connection._responseActions.push((str: string) => {
        this.clearWaiting();
        const reply = parseReply(str);
        if (reply.code === 421) this.fail(new DownstreamError('downstream is closing the connection', 'dropped', reply));
        resolve(reply);
      });
      this.connection._sendCommand(line);
    });
  }

  private clearWaiting(): void {
    if (this.waiting?.timer) clearTimeout(this.waiting.timer);
    this.waiting = undefined;
  }

  private fail(error: DownstreamError): void {
    if (this.failure) return;
    this.failure = error;
    const waiting = this.waiting;
    this.clearWaiting();
    waiting?.reject(error);
    if (!this.closed) {
      this.closed = true;
      this.connection.close();
    }
  }
}

/** Which cause names a failure of several addresses: the most specific first. */
const CAUSE_ORDER: readonly DownstreamCause[] = ['tls', 'port25-blocked', 'refused', 'unreachable', 'timeout', 'dropped', 'dns', 'protocol'];

/** Every cause (the keys of CAUSE_HINTS, which the compiler checks against the type). */
export const DOWNSTREAM_CAUSES = Object.keys(CAUSE_HINTS) as DownstreamCause[];

/** The addresses of the downstream host, in the resolver's order; an IP address is its own. */
async function resolveAddresses(options: DownstreamOptions): Promise<string[]> {
  if (isIP(options.host)) return [options.host];
  let addresses: string[];
  try {
    addresses = options.resolve ? await options.resolve(options.host) : (await lookup(options.host, { all: true, order: 'verbatim' })).map((a) => a.address);
  } catch (error) {
    throw new DownstreamError(`downstream ${options.host}: ${(error as Error).message}`, 'dns');
  }
  if (addresses.length === 0) throw new DownstreamError(`downstream ${options.host}: no addresses`, 'dns');
  return [...new Set(addresses)];
}

/** Whether an EHLO keyword list (as DownstreamSession.extensions gives it) offers `extension`, alone or with parameters. */
export const offers = (extensions: readonly string[], extension: string): boolean => extensions.some((e) => e === extension || e.startsWith(`${extension} `));

/** Extensions a message may need that the relay passes on but never converts for: without them such a message is deferred. */
export const NEEDED_EXTENSIONS = ['8BITMIME', 'SMTPUTF8'] as const;

export interface ProbeResult {
  ok: boolean;
  /** Of NEEDED_EXTENSIONS, those the downstream did not offer over TLS (when it answered). */
  missing?: string[];
  cause?: DownstreamCause;
  message?: string;
  seconds: number;
}

/** Readiness probe: connect, EHLO, STARTTLS, EHLO, QUIT. Never sends MAIL. */
export async function probeDownstream(options: DownstreamOptions): Promise<ProbeResult> {
  const started = process.hrtime.bigint();
  const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
  try {
    const session = await DownstreamSession.open(options);
    const missing = NEEDED_EXTENSIONS.filter((e) => !offers(session.extensions, e));
    session.quit();
    return { ok: true, missing, seconds: seconds() };
  } catch (error) {
    const cause = error instanceof DownstreamError ? error.kind : classifyError(error, options.port);
    return { ok: false, cause, message: (error as Error).message, seconds: seconds() };
  }
}
