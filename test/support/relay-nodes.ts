// Real relay nodes on loopback with the example organization's engine, a
// development sink as their downstream, and the test PKI: for tests of what a
// running node shows on its HTTP side (readiness, metrics, signet status).
import { EventEmitter } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import type { OrgConfig } from '../../appliance/src/config';
import type { DirectorySnapshot } from '../../appliance/src/directory';
import { createLogger, createMetrics } from '../../appliance/src/observability';
import { createEngine } from '../../appliance/src/signature';
import { parseRelayConfig } from '../../appliance/src/smtp';
import { startSink, type DevSink } from '../../appliance/src/smtp/dev/sink';
import { startRelayNode, type OrgSourceLike, type RelayNode } from '../../appliance/src/smtp/node';
import { testPki, writePemFiles } from './certs';

/** An org source that always has `config` (or none) and never changes. */
export function staticSource(config: OrgConfig | undefined): OrgSourceLike {
  const emitter = new EventEmitter();
  return { start: async () => undefined, stop: () => undefined, current: () => config, on: (e, l) => emitter.on(e, l) };
}

/** A loopback port nothing listens on (a downstream that refuses connections). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

export interface RelayNodes {
  sink: DevSink;
  /** Starts a node sending to `downstreamPort`, with `config` loaded (or none) and `directory`; probes it once. */
  start(downstreamPort: number, config: OrgConfig | undefined, directory?: DirectorySnapshot): Promise<RelayNode>;
  /** Stops every node started, the sink, and removes the certificate files. */
  close(): Promise<void>;
}

export async function startRelayNodes(): Promise<RelayNodes> {
  const pki = await testPki();
  const sink = await startSink({ key: pki.sinkServer.key, cert: pki.sinkServer.cert, clientCa: pki.ca.cert });
  const files = writePemFiles({ 'server.crt': pki.relayServer.cert, 'server.key': pki.relayServer.key, 'ca.crt': pki.ca.cert, 'client.crt': pki.relayClient.cert, 'client.key': pki.relayClient.key });
  const nodes: RelayNode[] = [];
  return {
    sink,
    async start(downstreamPort, config, directory) {
      const relayConfig = parseRelayConfig(
        {
          hostname: 'relay.test.invalid',
          listen: [{ host: '127.0.0.1', port: 0 }],
          tls: { cert: 'server.crt', key: 'server.key', ca: 'ca.crt' },
          downstream: { host: '127.0.0.1', port: downstreamPort, tls: { cert: 'client.crt', key: 'client.key', ca: 'ca.crt', servername: 'sink.test.invalid' }, probeSeconds: 3600 },
          limits: { drainSeconds: 5 },
          http: { listen: '127.0.0.1', port: 0 },
          org: { source: 'unused' },
        },
        'test',
        files.dir,
      );
      const node = await startRelayNode(relayConfig, {
        createEngine: (options) => createEngine({ org: options.org, directory: options.directory }),
        orgSource: staticSource(config),
        directory: () => directory,
        metrics: createMetrics({ processMetrics: false }),
        logger: createLogger({ level: 'silent' }),
      });
      nodes.push(node);
      await node.probe();
      return node;
    },
    async close() {
      for (const node of nodes) await node.stop();
      await sink.close();
      files.cleanup();
    },
  };
}
