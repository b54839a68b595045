// A relay on loopback between a nodemailer client (Exchange Online's role)
// and a sink downstream (the tenant's inbound side), all with real TLS and
// client certificates from the test PKI.
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import nodemailer from 'nodemailer';
import { createLogger, createMetrics, createIdHasher, type SignetMetrics } from '../../../appliance/src/observability';
import type { Engine } from '../../../appliance/src/signature';
import { createRelay, type ActiveOrg, type Relay, type RelayLimits } from '../../../appliance/src/smtp';
import { startSink, type DevSink, type SinkFaults } from '../../../appliance/src/smtp/dev/sink';
import { testPki, type IssuedCertificate, type TestPki } from '../../support/certs';
import { stampEngine } from './engines';

export interface Harness {
  pki: TestPki;
  relay: Relay;
  sink: DevSink;
  port: number;
  metrics: SignetMetrics;
  logs: Array<Record<string, unknown>>;
  org: { current: ActiveOrg | undefined };
  close(): Promise<void>;
}

export const DEFAULT_LIMITS: RelayLimits = {
  maxMessageBytes: 10 * 1024 * 1024,
  maxRecipients: 50,
  maxLineLength: 4096,
  sessionMs: 60_000,
  idleMs: 30_000,
  maxSessions: 200,
  maxSessionsPerSource: 200,
  maxSignetHops: 3,
};

export async function startHarness(options: { engine?: Engine; limits?: Partial<RelayLimits>; faults?: SinkFaults; downstreamPort?: number; allowNetworks?: string[]; acceptedDomains?: string[]; reuse?: number; tenantId?: string; downstreamTimeouts?: Partial<Record<'connectTimeoutMs' | 'greetingTimeoutMs' | 'commandTimeoutMs' | 'dataTimeoutMs', number>> } = {}): Promise<Harness> {
  const pki = await testPki();
  const sink = await startSink({ key: pki.sinkServer.key, cert: pki.sinkServer.cert, clientCa: pki.ca.cert, faults: options.faults });
  const metrics = createMetrics({ processMetrics: false });
  const logs: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, callback) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  const logger = createLogger({ level: 'debug', destination });
  const org = { current: { engine: options.engine ?? stampEngine(), acceptedDomains: options.acceptedDomains ?? ['contoso.com'] } as ActiveOrg | undefined };
  const relay = createRelay({
    hostname: 'relay.test.invalid',
    tls: { key: pki.relayServer.key, cert: pki.relayServer.cert, ca: [pki.ca.cert], minVersion: 'TLSv1.2', acceptedClientNames: ['mail.protection.outlook.com'] },
    allowNetworks: options.allowNetworks,
    tenantId: options.tenantId,
    downstream: {
      host: '127.0.0.1',
      port: options.downstreamPort ?? sink.port,
      name: 'relay.test.invalid',
      tls: () => ({ key: pki.relayClient.key, cert: pki.relayClient.cert, ca: pki.ca.cert, servername: 'sink.test.invalid' }),
      connectTimeoutMs: 5000,
      greetingTimeoutMs: 5000,
      commandTimeoutMs: 10_000,
      dataTimeoutMs: 10_000,
      ...options.downstreamTimeouts,
    },
    limits: { ...DEFAULT_LIMITS, ...options.limits },
    org: () => org.current,
    metrics,
    logger,
    hashId: createIdHasher(),
    downstreamReuse: { maxIdle: options.reuse ?? 0, idleMs: 30_000 },
  });
  const address: AddressInfo = await relay.listen('127.0.0.1', 0);
  return {
    pki,
    relay,
    sink,
    port: address.port,
    metrics,
    logs,
    org,
    async close() {
      await relay.close();
      await sink.close();
    },
  };
}

/** Exchange Online's side: nodemailer over STARTTLS with a client certificate. */
export function exoTransport(port: number, client: IssuedCertificate | undefined, extra: { pool?: boolean; maxConnections?: number; ignoreTLS?: boolean; ca?: string } = {}) {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    requireTLS: !extra.ignoreTLS,
    ignoreTLS: extra.ignoreTLS,
    pool: extra.pool,
    maxConnections: extra.maxConnections,
    maxMessages: Infinity,
    tls: { key: client?.key, cert: client?.cert, ca: extra.ca, rejectUnauthorized: true, servername: 'relay.test.invalid' },
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
    logger: false,
  } as Parameters<typeof nodemailer.createTransport>[0]);
}

export function sampleMessage(options: { from?: string; to?: string[]; subject?: string; extraHeaders?: string; body?: string; messageId?: string } = {}): string {
  const from = options.from ?? 'adele@contoso.com';
  const to = options.to ?? ['bob@fabrikam.com'];
  return [
    `From: Adele <${from}>`,
    `To: ${to.join(', ')}`,
    `Subject: ${options.subject ?? 'Quarterly numbers'}`,
    `Message-ID: <${options.messageId ?? `${Math.random().toString(36).slice(2)}@contoso.com`}>`,
    'Date: Mon, 23 Nov 2026 10:00:00 +0000',
    'MIME-Version: 1.0',
    ...(options.extraHeaders ? [options.extraHeaders] : []),
    'Content-Type: text/plain; charset=utf-8',
    '',
    options.body ?? 'Hello Bob,\r\n\r\nthe numbers are attached.\r\n.\r\nA line with a lone dot above.\r\n',
  ].join('\r\n');
}

/** Sends one message; resolves with the outcome instead of throwing. */
export async function send(
  port: number,
  client: IssuedCertificate | undefined,
  message: { from?: string; to?: string[]; raw: string | Buffer },
): Promise<{ ok: boolean; code?: number; response?: string; accepted: string[]; rejected: string[]; rejectedResponses: string[] }> {
  const transport = exoTransport(port, client, { ca: (await testPki()).ca.cert });
  try {
    const info = (await transport.sendMail({ envelope: { from: message.from ?? 'adele@contoso.com', to: message.to ?? ['bob@fabrikam.com'] }, raw: message.raw })) as {
      accepted: string[];
      rejected: string[];
      response: string;
      rejectedErrors?: Array<{ response?: string }>;
    };
    return { ok: true, code: Number(info.response.slice(0, 3)), response: info.response, accepted: info.accepted, rejected: info.rejected, rejectedResponses: (info.rejectedErrors ?? []).map((e) => e.response ?? '') };
  } catch (error) {
    const e = error as { responseCode?: number; response?: string; rejected?: string[]; rejectedErrors?: Array<{ response?: string }> };
    return { ok: false, code: e.responseCode, response: e.response ?? (error as Error).message, accepted: [], rejected: e.rejected ?? [], rejectedResponses: (e.rejectedErrors ?? []).map((x) => x.response ?? '') };
  } finally {
    transport.close();
  }
}
