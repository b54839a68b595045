// smtp-server, started the way a relay needs it. See RelayServer.
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { SMTPConnection as ServerConnection } from 'smtp-server/lib/smtp-connection.js';

export type { ServerConnection };

const OWN_ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;

/** smtp-server internals needed to start a connection without the early-talker pause are present. */
export const FAST_START_AVAILABLE = typeof ServerConnection.prototype._setListeners === 'function' && typeof ServerConnection.prototype.connectionReady === 'function';

/**
 * smtp-server with two deliberate changes to how a connection starts:
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
 *
 * Reverse DNS is off (disableReverseLookup): identity is the certificate, PTR
 * data is controlled by the peer, and a lookup per connection is latency and a
 * dependency on DNS for nothing.
 */
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
      // MESSAGE_TOO_BIG is smtp-server's own SIZE= check at MAIL (its oversize check after DATA is off)
      if (code === 552 && context === 'MESSAGE_TOO_BIG') this.onSizeRefused(connection.session);
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

