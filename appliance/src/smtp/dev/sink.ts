// Development downstream: an SMTP server on loopback that stands in for
// Exchange Online in development mode and in tests. It requires STARTTLS and
// a client certificate from the given CA (as the tenant's inbound connector
// does), keeps what it receives IN MEMORY ONLY (a bounded list), and can show
// it over HTTP on loopback. It is not part of the mail path.
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { SMTPServerSession } from 'smtp-server';
import { RelayServer } from '../fast-server';

export interface SinkMessage {
  id: number;
  mailFrom: string;
  rcptTo: string[];
  raw: Buffer;
  receivedAt: Date;
  /** CN of the client certificate that delivered it. */
  clientCertificate?: string;
  /** DSN parameters received (RET, ENVID; NOTIFY and ORCPT per recipient). */
  dsn?: { ret?: string | null; envid?: string | null; recipients: Array<{ notify?: string[]; orcpt?: string }> };
}

/** Fault hooks (tests, and trying out refusals in development). Return a reply to refuse. */
export interface SinkFaults {
  mail?: (from: string) => { code: number; message: string } | undefined;
  rcpt?: (to: string) => { code: number; message: string } | undefined;
  /** Decide the end-of-DATA answer for a received message. */
  data?: (message: { mailFrom: string; rcptTo: string[]; raw: Buffer }) => { code: number; message: string } | undefined;
  /** Cut the connection after this many bytes of DATA (a drop mid-DATA). */
  dropAfterBytes?: (session: { mailFrom: string; rcptTo: string[] }) => number | undefined;
}

export interface SinkOptions {
  key: string | Buffer;
  cert: string | Buffer;
  /** CA the sending side's client certificate must chain to. */
  clientCa: string | Buffer | Array<string | Buffer>;
  host?: string;
  port?: number;
  /** Most messages kept (oldest dropped first). */
  keep?: number;
  faults?: SinkFaults;
}

export interface DevSink {
  port: number;
  host: string;
  messages: SinkMessage[];
  /** Every session that ended a DATA early (dropped) or got refused. */
  stats: { sessions: number; tlsSessions: number; dropped: number; refusedData: number };
  faults: SinkFaults;
  close(): Promise<void>;
  /** Serves /messages (JSON list) and /messages/N.eml on loopback. */
  serveHttp(port?: number, host?: string): Promise<{ port: number; close(): Promise<void> }>;
}

export async function startSink(options: SinkOptions): Promise<DevSink> {
  const messages: SinkMessage[] = [];
  const stats = { sessions: 0, tlsSessions: 0, dropped: 0, refusedData: 0 };
  const faults: SinkFaults = options.faults ?? {};
  const keep = options.keep ?? 1000;
  let nextId = 1;
  const replyError = (r: { code: number; message: string }) => Object.assign(new Error(r.message), { responseCode: r.code });
  const sockets = new WeakMap<SMTPServerSession, TLSSocket>();

  // started without smtp-server's 100 ms early-talker pause, like the relay (see fast-server.ts)
  const server = new RelayServer({
    name: 'sink.test.invalid',
    key: options.key,
    cert: options.cert,
    ca: options.clientCa,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    disabledCommands: ['AUTH'],
    authOptional: true,
    // replies carry their own enhanced codes (as given by the fault hooks), like Exchange Online's
    hideENHANCEDSTATUSCODES: true,
    hideDSN: false, // Exchange Online offers DSN
    disableReverseLookup: true,
    size: 200 * 1024 * 1024,
    logger: false,
    onConnect(_session, callback) {
      stats.sessions++;
      callback();
    },
    onSecure(socket, session, callback) {
      const tls = socket as TLSSocket;
      if (!tls.authorized) return callback(replyError({ code: 554, message: '5.7.1 client certificate required' }));
      stats.tlsSessions++;
      sockets.set(session, tls);
      callback();
    },
    onMailFrom(address, session, callback) {
      if (!session.secure) return callback(replyError({ code: 530, message: '5.7.0 STARTTLS first' }));
      const refusal = faults.mail?.(address.address);
      callback(refusal ? replyError(refusal) : undefined);
    },
    onRcptTo(address, _session, callback) {
      const refusal = faults.rcpt?.(address.address);
      callback(refusal ? replyError(refusal) : undefined);
    },
    onData(stream, session, callback) {
      const envelope = {
        mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
        rcptTo: session.envelope.rcptTo.map((r) => r.address),
      };
      const dropAt = faults.dropAfterBytes?.(envelope);
      const chunks: Buffer[] = [];
      let size = 0;
      let dropped = false;
      stream.on('data', (chunk: Buffer) => {
        if (dropped) return;
        chunks.push(chunk);
        size += chunk.length;
        if (dropAt !== undefined && size >= dropAt) {
          dropped = true;
          stats.dropped++;
          sockets.get(session)?.destroy();
        }
      });
      stream.on('error', () => undefined);
      stream.on('end', () => {
        if (dropped) return;
        const raw = Buffer.concat(chunks, size);
        const refusal = faults.data?.({ ...envelope, raw });
        if (refusal) {
          stats.refusedData++;
          return callback(replyError(refusal));
        }
        const cert = sockets.get(session)?.getPeerCertificate();
        const message: SinkMessage = {
          id: nextId++,
          ...envelope,
          raw,
          receivedAt: new Date(),
          clientCertificate: typeof cert?.subject?.CN === 'string' ? cert.subject.CN : undefined,
          dsn: { ret: session.envelope.dsn?.ret, envid: session.envelope.dsn?.envid, recipients: session.envelope.rcptTo.map((r) => ({ notify: r.dsn?.notify, orcpt: r.dsn?.orcpt })) },
        };
        messages.push(message);
        while (messages.length > keep) messages.shift();
        callback(null, `2.6.0 Queued as sink-${message.id}`);
      });
    },
  });
  server.on('error', () => undefined);
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, host, resolve));
  const port = (server.server.address() as AddressInfo).port;

  return {
    port,
    host,
    messages,
    stats,
    faults,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // close() waits for sessions; sinks in tests end with the test
        for (const connection of server.connections) (connection as unknown as { _socket?: { destroy(): void } })._socket?.destroy();
      }),
    async serveHttp(httpPort = 0, httpHost = '127.0.0.1') {
      const http: HttpServer = createHttpServer((req, res) => {
        const url = new URL(req.url ?? '/', 'http://localhost');
        const eml = /^\/messages\/(\d+)\.eml$/.exec(url.pathname);
        if (url.pathname === '/messages') {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify(messages.map((m) => ({ id: m.id, mailFrom: m.mailFrom, rcptTo: m.rcptTo, size: m.raw.length, receivedAt: m.receivedAt, url: `/messages/${m.id}.eml` })), null, 2));
          return;
        }
        if (eml) {
          const message = messages.find((m) => m.id === Number(eml[1]));
          if (!message) {
            res.statusCode = 404;
            res.end('no such message\n');
            return;
          }
          res.setHeader('content-type', 'message/rfc822');
          res.end(message.raw);
          return;
        }
        res.statusCode = 404;
        res.end('try /messages\n');
      });
      await new Promise<void>((resolve) => http.listen(httpPort, httpHost, resolve));
      return {
        port: (http.address() as AddressInfo).port,
        close: () => new Promise<void>((resolve) => http.close(() => resolve())),
      };
    },
  };
}
