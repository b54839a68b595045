// `signet serve`'s node started in the test process from a relay config (the
// real config parsing and startFromConfig), with certificates from the test
// PKI and a sink downstream: for tests that drive the org source.
import { parseRelayConfig } from '../../../appliance/src/smtp';
import { createLogger } from '../../../appliance/src/observability';
import { startFromConfig } from '../../../appliance/src/cli/commands/serve';
import type { RelayNode } from '../../../appliance/src/smtp/node';
import { startSink, type DevSink } from '../../../appliance/src/smtp/dev/sink';
import { testPki, writePemFiles, type TestPki } from '../../support/certs';

export interface InProcessNode {
  pki: TestPki;
  sink: DevSink;
  node: RelayNode;
  /** Stops the node and the sink and removes the certificate files. */
  close(): Promise<void>;
}

/** `org` and `directory` are the relay config's sections of those names. */
export async function startInProcessNode(org: { source: string; keyRef?: string; pollSeconds?: number }, directory?: { file: string }): Promise<InProcessNode> {
  const pki = await testPki();
  const sink = await startSink({ key: pki.sinkServer.key, cert: pki.sinkServer.cert, clientCa: pki.ca.cert });
  const certs = writePemFiles({ 's.crt': pki.relayServer.cert, 's.key': pki.relayServer.key, 'ca.crt': pki.ca.cert, 'c.crt': pki.relayClient.cert, 'c.key': pki.relayClient.key });
  try {
    const config = parseRelayConfig(
      {
        hostname: 'relay.test.invalid',
        listen: [{ host: '127.0.0.1', port: 0 }],
        tls: { cert: 's.crt', key: 's.key', ca: 'ca.crt' },
        downstream: { host: '127.0.0.1', port: sink.port, tls: { cert: 'c.crt', key: 'c.key', ca: 'ca.crt', servername: 'sink.test.invalid' }, probeSeconds: 3600 },
        http: { listen: '127.0.0.1', port: 0 },
        org,
        ...(directory ? { directory } : {}),
      },
      'test',
      certs.dir,
    );
    const node = await startFromConfig(config, { logger: createLogger({ level: 'silent' }) });
    return {
      pki,
      sink,
      node,
      async close() {
        await node.stop();
        await sink.close();
        certs.cleanup();
      },
    };
  } catch (error) {
    await sink.close();
    certs.cleanup();
    throw error;
  }
}
