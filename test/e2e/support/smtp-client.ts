// A hand-driven SMTP client over STARTTLS with a client certificate, for
// tests that must stop in the middle of DATA (which no ready-made client does).
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

export class ManualSmtp {
  private buffer = '';
  private waiters: Array<() => void> = [];
  closed = false;
  private socket!: Socket | TLSSocket;

  private attach(socket: Socket | TLSSocket): void {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.buffer += d.toString('latin1');
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Connects, greets, upgrades with STARTTLS presenting `client`, greets again. */
  static async open(port: number, tls: { key: string; cert: string; ca: string; servername: string }): Promise<ManualSmtp> {
    const smtp = new ManualSmtp();
    const raw = netConnect(port, '127.0.0.1');
    smtp.attach(raw);
    await smtp.expect(/^220/);
    await smtp.command('EHLO exo.test', /^250/);
    await smtp.command('STARTTLS', /^220/);
    raw.removeAllListeners('data');
    const secure = tlsConnect({ socket: raw, ...tls });
    await new Promise<void>((resolve, reject) => secure.once('secureConnect', () => resolve()).once('error', reject));
    smtp.attach(secure);
    await smtp.command('EHLO exo.test', /^250/);
    return smtp;
  }

  /** A plain connection, nothing sent yet (to read the greeting or a refusal). */
  static plain(port: number): ManualSmtp {
    const smtp = new ManualSmtp();
    smtp.attach(netConnect(port, '127.0.0.1'));
    return smtp;
  }

  /** Next complete reply (multi-line aware); '' if the connection closed first. */
  async reply(): Promise<string> {
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\r?\n/.exec(this.buffer);
      if (m) {
        this.buffer = this.buffer.slice(m[0].length);
        return m[0].trim();
      }
      if (this.closed) return '';
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  async expect(pattern: RegExp): Promise<string> {
    const r = await this.reply();
    if (!pattern.test(r)) throw new Error(`expected ${pattern}, got ${JSON.stringify(r)}`);
    return r;
  }

  async command(line: string, pattern?: RegExp): Promise<string> {
    this.socket.write(line + '\r\n');
    return pattern ? this.expect(pattern) : this.reply();
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  destroy(): void {
    this.socket.destroy();
  }
}
