// `signet serve` as a child process (the real CLI, the real engine, the
// example organization), with certificates from the test PKI and a sink
// downstream in the test process.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { testPki, writePemFiles } from '../../support/certs';
import { closedPort } from '../../support/relay-nodes';

export const REPO_ROOT = resolve(__dirname, '../../..');
export const EXAMPLE_ORG = join(REPO_ROOT, 'config/examples/contoso');

/** A loopback port nothing listens on yet. */
export const freePort = closedPort;

export interface RelayProcess {
  child: ChildProcess;
  smtpPort: number;
  httpPort: number;
  dir: string;
  path: (name: string) => string;
  output: () => string;
  exited: Promise<number | null>;
  waitReady(): Promise<void>;
  stop(): Promise<void>;
}

export async function writeRelayConfig(downstreamPort: number, options: { drainSeconds?: number; smtpPort?: number; httpPort?: number } = {}) {
  const pki = await testPki();
  const files = writePemFiles({
    'server.crt': pki.relayServer.cert,
    'server.key': pki.relayServer.key,
    'ca.crt': pki.ca.cert,
    'client.crt': pki.relayClient.cert,
    'client.key': pki.relayClient.key,
    'exo.crt': pki.exoClient.cert,
    'exo.key': pki.exoClient.key,
  });
  const smtpPort = options.smtpPort ?? (await freePort());
  const httpPort = options.httpPort ?? (await freePort());
  const config = {
    hostname: 'relay.test.invalid',
    listen: [{ host: '127.0.0.1', port: smtpPort }],
    tls: { cert: 'server.crt', key: 'server.key', ca: 'ca.crt', acceptedClientNames: ['mail.protection.outlook.com'] },
    downstream: { host: '127.0.0.1', port: downstreamPort, tls: { cert: 'client.crt', key: 'client.key', ca: 'ca.crt', servername: 'sink.test.invalid' }, probeSeconds: 1 },
    limits: { drainSeconds: options.drainSeconds ?? 20 },
    http: { listen: '127.0.0.1', port: httpPort },
    org: { source: EXAMPLE_ORG, pollSeconds: 60 },
    logging: { level: 'info' },
  };
  writeFileSync(files.path('relay.yaml'), stringify(config));
  return { files, smtpPort, httpPort, configPath: files.path('relay.yaml') };
}

/** Spawns `node <bin> serve --config relay.yaml`; `command` lets the packaging test run the unpacked artifact instead. */
export async function startRelayProcess(downstreamPort: number, options: { drainSeconds?: number; command?: { file: string; args: string[] } } = {}): Promise<RelayProcess> {
  const { files, smtpPort, httpPort, configPath } = await writeRelayConfig(downstreamPort, options);
  const command = options.command ?? { file: process.execPath, args: [join(REPO_ROOT, 'bin/signet.js')] };
  const child = spawn(command.file, [...command.args, 'serve', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SIGNET_LOG_LEVEL: 'info' } });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let done = false;
  void exited.then(() => (done = true));
  return {
    child,
    smtpPort,
    httpPort,
    dir: files.dir,
    path: files.path,
    output: () => output,
    exited,
    async waitReady() {
      for (let i = 0; i < 300; i++) {
        if (done) throw new Error(`relay exited early:\n${output}`);
        try {
          const res = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
          if (res.status === 200) return;
        } catch {
          // not listening yet
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`relay not ready in time:\n${output}`);
    },
    async stop() {
      if (!done && child.pid) process.kill(child.pid, 'SIGKILL');
      await exited;
      files.cleanup();
    },
  };
}
