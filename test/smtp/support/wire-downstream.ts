// A scriptable downstream that records the exact command lines the relay sends
// (smtp-server, like the dev sink, rewrites IDN domains to Unicode before a
// handler sees them, so only the wire shows what went out), with answers that
// may be delayed. STARTTLS with the relay's client certificate, as the tenant's
// inbound side requires. Loopback only; close() ends every socket.
import { createServer, type Socket } from 'node:net';
import { createSecureContext, TLSSocket } from 'node:tls';
import type { TestPki } from '../../support/certs';

export interface WireSession {
  /** Command lines as received (UTF-8 decoded), without DATA content. */
  commands: string[];
  /** Messages whose final dot arrived (dot-stuffed wire bytes). */
  messages: Buffer[];
  closed: boolean;
}

/** An answer line (or lines, CRLF-joined); CLOSE drops the connection instead of answering. */
export type WireAnswer = (line: string) => string | Promise<string>;

export const CLOSE = '<close>';

export interface WireDownstream {
  port: number;
  sessions: WireSession[];
  /** Answers for MAIL, RCPT, DATA and the final dot (default 250, 250, 354, 250); `dot` gets '.'. */
  answers: { mail?: WireAnswer; rcpt?: WireAnswer; data?: WireAnswer; dot?: WireAnswer };
  close(): Promise<void>;
}

export async function startWireDownstream(
  pki: TestPki,
  extensions = ['PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES', 'SIZE 200000000'],
  options: { offerStartTls?: boolean } = {},
): Promise<WireDownstream> {
  const sockets = new Set<Socket>();
  const ds: WireDownstream = { port: 0, sessions: [], answers: {}, close: async () => undefined };
  const context = createSecureContext({ key: pki.sinkServer.key, cert: pki.sinkServer.cert, ca: pki.ca.cert });
  const server = createServer((raw) => {
    sockets.add(raw);
    const session: WireSession = { commands: [], messages: [], closed: false };
    ds.sessions.push(session);
    let socket: Socket | TLSSocket = raw;
    let input: Buffer = Buffer.alloc(0);
    let data: Buffer | undefined; // collecting DATA when set
    let busy = false;
    const write = (text: string) => {
      if (text === CLOSE) socket.destroy();
      else if (!socket.destroyed) socket.write(`${text}\r\n`);
    };
    const pump = async () => {
      if (busy) return;
      busy = true;
      try {
        for (;;) {
          if (data) {
            data = Buffer.concat([data, input]);
            input = Buffer.alloc(0);
            const end = data.indexOf('\r\n.\r\n');
            if (end < 0) return;
            input = data.subarray(end + 5);
            session.messages.push(data.subarray(0, end + 2));
            data = undefined;
            write(await (ds.answers.dot?.('.') ?? '250 2.0.0 queued'));
            continue;
          }
          const eol = input.indexOf('\r\n');
          if (eol < 0) return;
          const line = input.subarray(0, eol).toString('utf8');
          input = input.subarray(eol + 2);
          session.commands.push(line);
          const verb = line.split(/[ :]/)[0]!.toUpperCase();
          if (verb === 'EHLO') {
            const lines = ['downstream.test.invalid', ...(socket instanceof TLSSocket || options.offerStartTls === false ? extensions : ['STARTTLS', ...extensions])];
            write(lines.map((l, i) => `250${i === lines.length - 1 ? ' ' : '-'}${l}`).join('\r\n'));
          } else if (verb === 'STARTTLS' && options.offerStartTls === false) write('502 5.5.1 STARTTLS not available');
          else if (verb === 'STARTTLS') {
            write('220 2.0.0 ready');
            raw.removeAllListeners('data');
            socket = new TLSSocket(raw, { isServer: true, secureContext: context, requestCert: true, rejectUnauthorized: true });
            socket.on('data', onData);
            socket.on('error', () => undefined);
            return;
          } else if (verb === 'MAIL') write(await (ds.answers.mail?.(line) ?? '250 2.1.0 OK'));
          else if (verb === 'RCPT') write(await (ds.answers.rcpt?.(line) ?? '250 2.1.5 OK'));
          else if (verb === 'DATA') {
            const answer = await (ds.answers.data?.(line) ?? '354 go ahead');
            write(answer);
            if (answer.startsWith('354')) data = Buffer.alloc(0);
          } else if (verb === 'RSET' || verb === 'NOOP') write('250 2.0.0 OK');
          else if (verb === 'QUIT') {
            write('221 2.0.0 bye');
            socket.end();
            return;
          } else write('500 5.5.2 unknown command');
        }
      } finally {
        busy = false;
      }
    };
    const onData = (chunk: Buffer) => {
      input = Buffer.concat([input, chunk]);
      void pump();
    };
    raw.on('data', onData);
    raw.on('error', () => undefined);
    raw.on('close', () => {
      session.closed = true;
      sockets.delete(raw);
    });
    write('220 downstream.test.invalid ESMTP');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  ds.port = (server.address() as { port: number }).port;
  ds.close = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
  return ds;
}
