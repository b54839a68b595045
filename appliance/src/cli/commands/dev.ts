// `signet dev` (npm start): the relay in DEVELOPMENT MODE on loopback, with the
// example organization, development certificates generated on first start
// into .signet-dev/, and a development downstream (an in-memory SMTP server
// standing in for Exchange Online) whose received messages are shown over
// HTTP on loopback. `signet send-sample` (npm run send-sample) sends a sample
// message through it. Nothing here is used by `signet serve`.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { Command } from 'commander';
import nodemailer from 'nodemailer';
import { createLogger } from '../../observability';
import { loadRelayConfig } from '../../smtp';
import { startSink } from '../../smtp/dev/sink';
import { drainOnSignals, startFromConfig } from './serve';

interface DevOptions {
  config: string;
  stateDir: string;
  org?: string;
  port?: string;
  httpPort?: string;
  downstreamPort?: string;
  messagesPort: string;
}

interface DevState {
  smtpPort: number;
  httpPort: number;
  messagesUrl: string;
}

const CERT_FILES = ['ca.crt', 'relay-server.crt', 'relay-server.key', 'relay-client.crt', 'relay-client.key', 'exo-client.crt', 'exo-client.key', 'downstream.crt', 'downstream.key'];

/** Names the relay's development server certificate must cover: loopback and relay.dev.yaml's hostname. */
const RELAY_SERVER_NAMES = ['localhost', 'signet-dev.contoso.com'];
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Why the development certificates in `dir` cannot be used as they are, or
 * undefined when they can: a state folder from an older version may lack a
 * name the relay now needs, and a certificate expires (or is edited) in time.
 */
export function devCertificatesProblem(dir: string): string | undefined {
  const missing = CERT_FILES.filter((f) => !existsSync(join(dir, f)));
  if (missing.length > 0) return `missing ${missing.join(', ')}`;
  try {
    const ca = new X509Certificate(readFileSync(join(dir, 'ca.crt')));
    const soon = Date.now() + DAY_MS;
    let server: X509Certificate | undefined;
    for (const name of ['relay-server', 'relay-client', 'exo-client', 'downstream']) {
      const cert = new X509Certificate(readFileSync(join(dir, `${name}.crt`)));
      if (name === 'relay-server') server = cert;
      if (Date.parse(cert.validTo) < soon) return `${name}.crt expires ${cert.validTo}`;
      if (!cert.verify(ca.publicKey)) return `${name}.crt is not issued by ca.crt`;
      if (!cert.checkPrivateKey(createPrivateKey(readFileSync(join(dir, `${name}.key`))))) return `${name}.key does not belong to ${name}.crt`;
    }
    if (Date.parse(ca.validTo) < soon) return `ca.crt expires ${ca.validTo}`;
    const uncovered = RELAY_SERVER_NAMES.filter((n) => server!.checkHost(n) === undefined);
    if (uncovered.length > 0) return `relay-server.crt does not cover ${uncovered.join(', ')}`;
  } catch (err) {
    return `unreadable: ${(err as Error).message}`;
  }
  return undefined;
}

/**
 * Development PKI: a dev CA and the four leaf certificates of the mail path,
 * generated on first start and again whenever the kept ones cannot serve.
 * Returns what was done, for the banner.
 */
export async function ensureDevCertificates(dir: string): Promise<'reused' | 'generated' | `regenerated (${string})`> {
  const problem = devCertificatesProblem(dir);
  if (problem === undefined) return 'reused';
  const first = !existsSync(join(dir, 'ca.crt'));
  // loaded lazily: certificate generation is a development tool (and needs a development dependency)
  const { createCertificateAuthority } = require('../../smtp/dev/certs') as typeof import('../../smtp/dev/certs');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = await createCertificateAuthority('Signet Development CA (not for production)');
  const local = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] };
  const files: Record<string, string> = { 'ca.crt': ca.cert };
  const put = (name: string, c: { cert: string; key: string }) => {
    files[`${name}.crt`] = c.cert;
    files[`${name}.key`] = c.key;
  };
  // also the relay's own name in relay.dev.yaml (hostname), which `serve --check` holds it to
  put('relay-server', await ca.issue({ commonName: 'localhost', dnsNames: RELAY_SERVER_NAMES, ipAddresses: local.ipAddresses, usage: ['server'] }));
  put('relay-client', await ca.issue({ commonName: 'signet-dev.contoso.com', usage: ['client'] }));
  // the sending side, in Exchange Online's role: it presents a certificate for mail.protection.outlook.com
  put('exo-client', await ca.issue({ commonName: 'mail.protection.outlook.com', usage: ['client'] }));
  put('downstream', await ca.issue({ commonName: 'localhost', ...local, usage: ['server'] }));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content, { mode: name.endsWith('.key') ? 0o600 : 0o644 });
  return first ? 'generated' : `regenerated (${problem})`;
}

const SAMPLE_SENDER = 'ingrid.halvorsen@contoso.com';

/** What went wrong sending the sample, in the terms of the development relay. */
export function sendSampleError(error: unknown, smtpPort: number): string {
  const e = error as { code?: string; syscall?: string; message?: string; response?: string; responseCode?: number };
  if (e.syscall === 'connect' || /ECONNREFUSED/.test(e.message ?? '')) {
    return `no development relay answers on 127.0.0.1:${smtpPort}: start it with \`npm start\` (in another terminal) and keep it running`;
  }
  if (typeof e.responseCode === 'number' && e.response) {
    const hint = /sender domain/i.test(e.response) ? ' (--from must be in an accepted domain of the organization the relay runs)' : '';
    return `the relay refused the sample: ${e.response}${hint}`;
  }
  return e.message ?? String(error);
}

function banner(lines: string[]): string {
  const width = Math.max(...lines.map((l) => l.length)) + 4;
  const bar = '='.repeat(width);
  return ['', bar, ...lines.map((l) => `  ${l}`), bar, ''].join('\n');
}

export function register(program: Command): void {
  program
    .command('dev')
    .description('DEVELOPMENT MODE: relay on loopback with the example organization, dev certificates and an in-memory downstream')
    .option('--config <file>', 'development relay configuration', 'config/relay.dev.yaml')
    .option('--state-dir <dir>', 'where development certificates are kept', '.signet-dev')
    .option('--org <dir>', 'organization config folder (default: the one in the config)')
    .option('--port <n>', 'relay SMTP port on 127.0.0.1 (default: the one in the config)')
    .option('--http-port <n>', 'relay /metrics /healthz /readyz port (default: the one in the config)')
    .option('--downstream-port <n>', 'development downstream SMTP port (default: downstream.port of the config)')
    .option('--messages-port <n>', 'port showing what the downstream received', '8025')
    .action(async (options: DevOptions) => {
      const stateDir = resolve(options.stateDir);
      const certificates = await ensureDevCertificates(stateDir);
      const file = (name: string) => join(stateDir, name);
      const config = loadRelayConfig(options.config);
      // development mode stays on loopback whatever the file says, and uses the generated certificates
      const inState = (p: string) => file(basename(p));
      config.listen = [{ host: '127.0.0.1', port: options.port !== undefined ? Number(options.port) : config.listen[0].port }];
      config.http = { listen: '127.0.0.1', port: options.httpPort !== undefined ? Number(options.httpPort) : config.http.port };
      config.tls = { ...config.tls, cert: inState(config.tls.cert), key: inState(config.tls.key), ca: file('ca.crt') };
      config.downstream.tls = { ...config.downstream.tls, cert: inState(config.downstream.tls.cert), key: inState(config.downstream.tls.key), ca: file('ca.crt') };
      if (options.org) config.org.source = resolve(options.org);
      const sink = await startSink({
        key: readFileSync(file('downstream.key')),
        cert: readFileSync(file('downstream.crt')),
        clientCa: readFileSync(file('ca.crt')),
        host: '127.0.0.1',
        port: options.downstreamPort !== undefined ? Number(options.downstreamPort) : config.downstream.port,
        keep: 200,
      });
      config.downstream.host = '127.0.0.1';
      config.downstream.port = sink.port;
      const messages = await sink.serveHttp(Number(options.messagesPort), '127.0.0.1');
      const logger = createLogger({ level: 'info' });
      const node = await startFromConfig(config, { logger });
      await node.probe();
      const state: DevState = { smtpPort: node.smtpPorts[0], httpPort: node.httpPort, messagesUrl: `http://127.0.0.1:${messages.port}/messages` };
      writeFileSync(join(stateDir, 'dev.json'), `${JSON.stringify(state, null, 2)}\n`);
      process.stderr.write(
        banner([
          'SIGNET RELAY: DEVELOPMENT MODE (loopback only, development certificates, NOT for production)',
          '',
          `certificates   ${certificates} in ${stateDir}`,
          `configuration  ${resolve(options.config)}`,
          `organization   ${config.org.source}`,
          `relay SMTP     127.0.0.1:${node.smtpPorts[0]}  (STARTTLS + client certificate exo-client.crt)`,
          `health         http://127.0.0.1:${node.httpPort}/readyz   metrics: /metrics`,
          `downstream     127.0.0.1:${sink.port}  (in memory, stands in for Exchange Online)`,
          '',
          'Send a sample:  npm run send-sample',
          `See the result: ${state.messagesUrl}   (each as /messages/N.eml)`,
          '',
          'Ctrl-C drains and stops.',
        ]),
      );
      drainOnSignals(node, (code) => {
        void Promise.all([messages.close(), sink.close()]).finally(() => process.exit(code));
      });
    });

  program
    .command('send-sample')
    .description('DEVELOPMENT MODE: send a sample message from the example organization through the running `signet dev` relay')
    .option('--state-dir <dir>', 'development state folder', '.signet-dev')
    .option('--from <address>', 'sender (a user of the example organization)', SAMPLE_SENDER)
    .option('--to <address>', 'recipient', 'partner@fabrikam.example')
    .action(async (options: { stateDir: string; from: string; to: string }) => {
      const stateDir = resolve(options.stateDir);
      const statePath = join(stateDir, 'dev.json');
      if (!existsSync(statePath)) throw new Error(`no development relay found (${statePath} is missing): start it first with \`npm start\``);
      const state = JSON.parse(readFileSync(statePath, 'utf8')) as DevState;
      const transport = nodemailer.createTransport({
        host: '127.0.0.1',
        port: state.smtpPort,
        secure: false,
        requireTLS: true,
        tls: { key: readFileSync(join(stateDir, 'exo-client.key')), cert: readFileSync(join(stateDir, 'exo-client.crt')), ca: readFileSync(join(stateDir, 'ca.crt')), servername: 'localhost' },
      });
      try {
        const info = await transport.sendMail({
          // the display name is the example sender's only: another --from is written as it is
          from: options.from === SAMPLE_SENDER ? `Ingrid Halvorsen <${options.from}>` : options.from,
          to: options.to,
          subject: 'Signet sample: quarterly planning',
          text: 'Hello,\n\nhere are the dates for the quarterly planning.\n\nBest regards,\nIngrid\n',
          html: '<html><body><p>Hello,</p><p>here are the dates for the quarterly planning.</p><p>Best regards,<br>Ingrid</p></body></html>',
        });
        process.stdout.write(`relay answered: ${info.response}\nsee the signed result: ${state.messagesUrl}\n`);
      } catch (error) {
        throw new Error(sendSampleError(error, state.smtpPort), { cause: error });
      } finally {
        transport.close();
      }
    });
}
