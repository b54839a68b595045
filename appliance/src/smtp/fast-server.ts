// smtp-server, started the way a relay needs it. See RelayServer.
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { SMTPConnection as ServerConnection } from 'smtp-server/lib/smtp-connection.js';

export type { ServerConnection };

const OWN_ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;
/** The answer to MAIL before STARTTLS, from the relay's onMailFrom and from the SIZE= check ahead of it. */
export const STARTTLS_FIRST = '5.7.0 Must issue a STARTTLS command first';

/** smtp-server internals needed to start a connection without the early-talker pause are present. */
export const FAST_START_AVAILABLE = typeof ServerConnection.prototype._setListeners === 'function' && typeof ServerConnection.prototype.connectionReady === 'function';

/**
 * smtp-server with deliberate changes to how a connection starts and reads commands:
 *
 * - No 100 ms early-talker pause. smtp-server 3.x waits a fixed 100 ms before
 *   greeting every connection (not configurable) to catch spam bots that talk
 *   before the greeting. Every client of this relay must present a certificate
 *   from the configured CA (and may be limited to Exchange Online's networks),
 *   so the pause only adds latency to every connection. A client talking
 *   before the greeting is still refused: smtp-server ignores input until the
 *   greeting is sent. If a future smtp-server lacks the internals used here,
 *   the connection falls back to its normal start (with the pause).
 * - Replies whose text already starts with an enhanced status code are sent as
 *   is, so the relay's own codes (5.7.1, 4.4.1, 5.4.6, mirrored downstream
 *   codes) are not overridden by smtp-server's generic per-code mapping.
 * - The idle timeout (socketTimeout) ending a session is reported (onIdleTimeout):
 *   smtp-server then only calls onClose, as for a connection that broke.
 * - MAIL and RCPT addresses keep an ASCII domain as the client wrote it (see
 *   addressAsSent): smtp-server decodes `xn--` labels, and a malformed one
 *   would otherwise become another domain.
 *
 * Reverse DNS is off (disableReverseLookup): identity is the certificate, PTR
 * data is controlled by the peer, and a lookup per connection is latency and a
 * dependency on DNS for nothing.
 */
type AddressParser = (name: string, command: Buffer | string) => { address?: unknown } | false;

/** A string of ASCII characters only (a domain in its A-label form). */
// eslint-disable-next-line no-control-regex
export const ASCII = /^[\x00-\x7f]*$/;

/**
 * The address of a MAIL or RCPT command with its domain as the client wrote it. smtp-server
 * decodes every `xn--` label to Unicode (punycode.js toUnicode) before a handler sees it, and
 * no encoding recovers the original from that: a malformed label decodes to plain ASCII
 * (`xn--contoso-` to `contoso`) or to characters that normalise onto another domain
 * (`xn--contoso-nka`, a soft hyphen, onto `contoso.com`), and the relay would check and
 * forward a different address than the one sent. An ASCII domain is taken from the command
 * itself; a Unicode one (SMTPUTF8) was not decoded and is kept.
 */
export function addressAsSent(parsed: string, command: Buffer | string): string {
  const raw = /<([^<>]*)>/.exec(command.toString())?.[1]?.replace(/^@[^\s,:@]+(?:,@[^\s,:@]+)*:/, '');
  if (raw === undefined) return parsed;
  const at = raw.lastIndexOf('@');
  const parsedAt = parsed.lastIndexOf('@');
  if (at < 0 || parsedAt < 0 || raw.slice(0, at) !== parsed.slice(0, parsedAt)) return parsed;
  const domain = raw.slice(at + 1);
  return ASCII.test(domain) ? raw : parsed;
}

export class RelayServer extends SMTPServer {
  constructor(
    options: SMTPServerOptions,
    private readonly onConnection: (connection: ServerConnection) => void = () => undefined,
    /** An RSET, EHLO or HELO ended the transaction in progress; smtp-server has no hook for them. */
    private readonly onReset: (session: SMTPServerSession) => void = () => undefined,
    /** smtp-server refused a MAIL for its SIZE= (552) before any onMailFrom ran. */
    private readonly onSizeRefused: (session: SMTPServerSession) => void = () => undefined,
    /** The client sent QUIT (told apart from a dropped connection, which onClose alone cannot). */
    private readonly onQuit: (session: SMTPServerSession) => void = () => undefined,
    /** The client stayed silent past socketTimeout and the session is being closed (421); onClose follows. */
    private readonly onIdleTimeout: (session: SMTPServerSession) => void = () => undefined,
  ) {
    super(options);
  }

  override connect(socket: Parameters<SMTPServer['connect']>[0], socketOptions?: Parameters<SMTPServer['connect']>[1]): void {
    const connection = new ServerConnection(this, socket, socketOptions);
    const send = connection.send.bind(connection);
    // smtp-server's _onTimeout also re-arms the timer (the client waits for the relay) or destroys a socket
    // already closing: only the 421 it sends ends an idle session. Should a later smtp-server lack
    // _onTimeout, an idle timeout is counted as a dropped connection again.
    let timingOut = false;
    connection.send = (code: number, data?: string | string[] | null, context?: string | false) => {
      // MESSAGE_TOO_BIG is smtp-server's own SIZE= check at MAIL (its oversize check after DATA is off).
      // It runs before onMailFrom, where STARTTLS is required: a client still in the clear gets the 530
      // any MAIL of its gets, and no transaction is counted (it has shown no certificate).
      if (code === 552 && context === 'MESSAGE_TOO_BIG') {
        if (!connection.session.secure) return send(530, STARTTLS_FIRST, false);
        this.onSizeRefused(connection.session);
      }
      send(code, data, typeof data === 'string' && OWN_ENHANCED.test(data) ? false : context);
      if (code === 421 && timingOut) this.onIdleTimeout(connection.session);
    };
    const onTimeout = connection._onTimeout;
    if (typeof onTimeout === 'function') {
      connection._onTimeout = () => {
        timingOut = true;
        try {
          onTimeout.call(connection);
        } finally {
          timingOut = false;
        }
      };
    }
    type Handler = (command: Buffer, callback: () => void) => void;
    const handlers = connection as unknown as Record<string, Handler | undefined>;
    for (const name of ['handler_RSET', 'handler_EHLO', 'handler_HELO']) {
      const original = handlers[name];
      if (typeof original !== 'function') continue;
      handlers[name] = (command, callback) => {
        // only when the command did reset the envelope: an EHLO or HELO refused for its syntax (501) leaves the transaction open
        const envelope = connection.session.envelope;
        original.call(connection, command, callback);
        if (connection.session.envelope !== envelope) this.onReset(connection.session);
      };
    }
    const parseAddress = (connection as unknown as { _parseAddressCommand?: AddressParser })._parseAddressCommand;
    if (typeof parseAddress === 'function') {
      (connection as unknown as { _parseAddressCommand: AddressParser })._parseAddressCommand = (name, command) => {
        const parsed = parseAddress.call(connection, name, command);
        if (parsed && typeof parsed.address === 'string') parsed.address = addressAsSent(parsed.address, command);
        return parsed;
      };
    }
    const quit = handlers.handler_QUIT;
    if (typeof quit === 'function') {
      handlers.handler_QUIT = (command, callback) => {
        this.onQuit(connection.session);
        quit.call(connection, command, callback);
      };
    }
    this.connections.add(connection);
    connection.on('error', (err: Error) => this._onError(err));
    connection.on('connect', (data: Parameters<SMTPServer['_onClientConnect']>[0]) => this._onClientConnect(data));
    this.onConnection(connection);
    if (FAST_START_AVAILABLE) {
      connection._setListeners(() => connection.connectionReady());
    } else {
      connection.init();
    }
  }
}

