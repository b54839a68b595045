// One relay node as `signet serve` runs it: the relay config turned into a
// running relay, with the organization config source (hot swap of engines),
// the directory, the HTTP side (/metrics /healthz /readyz), the downstream
// readiness probe, certificate reloads and the SIGTERM drain.
import { readFileSync } from 'node:fs';
import { createIdHasher, createLogger, createMetrics, certificateFacts, recordCertificateExpiry, startHealthServer, type HealthServer, type Logger, type Readiness, type SignetMetrics } from '../observability';
import type { OrgConfig } from '../config';
import type { DirectorySnapshot } from '../directory';
import { createPassThroughEngine, type Engine } from '../signature';
import type { RelayConfig } from './config';
import { CAUSE_HINTS, FailedAddresses, probeDownstream, type DownstreamCause, type DownstreamOptions, type DownstreamTls } from './downstream';
import { createRelay, type ActiveOrg, type Relay } from './relay';
import { checkTlsMaterial, readTlsFiles, watchTlsFiles, type TlsWatcher } from './tls-files';

/** What the node needs from the organization config source (config module's createOrgSource satisfies it). */
export interface OrgSourceLike {
  start(): Promise<void>;
  stop(): void;
  current(): OrgConfig | undefined;
  on(event: 'config', listener: (config: OrgConfig) => void): unknown;
}

export interface RelayNodeDependencies {
  /** Builds the engine for one config version (signature's createEngine). */
  createEngine: (options: { org: OrgConfig; directory: () => DirectorySnapshot | undefined }) => Engine;
  /** The organization config source for `config.org` (config's createOrgSource). */
  orgSource: OrgSourceLike;
  /** The directory; undefined until one is loaded. */
  directory: () => DirectorySnapshot | undefined;
  metrics?: SignetMetrics;
  logger?: Logger;
  /** Resolves the downstream host to its addresses; default: the system resolver. */
  resolveDownstream?: (host: string) => Promise<string[]>;
}

export interface RelayNode {
  relay: Relay;
  smtpPorts: number[];
  httpPort: number;
  metrics: SignetMetrics;
  logger: Logger;
  readiness(): Readiness;
  /** Runs the downstream probe now. */
  probe(): Promise<void>;
  /** Swaps in an engine for a new config version (what the org source's 'config' event does). */
  applyOrg(org: OrgConfig): boolean;
  /**
   * Before a planned restart (`POST /leave` on the HTTP port, from the node itself): /readyz turns
   * 503 so health routing sends new sessions elsewhere, while this node still serves every session
   * it gets. Ends with the process.
   */
  leave(): void;
  /** SIGTERM: not ready, new sessions 421, in-flight finish (bounded), everything closed. */
  drain(): Promise<{ finished: boolean; cut: number }>;
  /** Immediate stop (tests). */
  stop(): Promise<void>;
}

function asList(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

export async function startRelayNode(config: RelayConfig, deps: RelayNodeDependencies): Promise<RelayNode> {
  const logger = deps.logger ?? createLogger({ level: config.logging.level });
  const metrics = deps.metrics ?? createMetrics();
  const hashId = createIdHasher(config.logging.idHashKeyFile ? readFileSync(config.logging.idHashKeyFile) : undefined);
  const certRoles = new Map<string, string>();

  // --- TLS material (inbound server identity + CA bundle, downstream client identity)
  const inboundPaths = [config.tls.cert, config.tls.key, ...asList(config.tls.ca)];
  const downstreamPaths = [config.downstream.tls.cert, config.downstream.tls.key, ...asList(config.downstream.tls.ca)];
  const inbound = readTlsFiles(inboundPaths).files;
  const inboundMaterial = () => ({
    cert: inbound.get(config.tls.cert)!,
    key: inbound.get(config.tls.key)!,
    ca: asList(config.tls.ca).map((p) => inbound.get(p)!),
  });
  const named = (files: Map<string, Buffer>, path: string) => ({ path, pem: files.get(path)! });
  // At start and on every reload: a certificate not valid yet (beyond a few minutes of clock skew) is
  // refused, and both the server certificate and the downstream client certificate must cover
  // `hostname` (the certificate domain the node greets with, and what the inbound connector's
  // TlsSenderCertificateName names; `signet serve --check` checks the same). A refused replacement
  // leaves the running set in place. `reload` refuses an expired replacement too (one older than the running one).
  const checkInbound = (files: Map<string, Buffer>, reload = false) =>
    checkTlsMaterial({ cert: named(files, config.tls.cert), key: named(files, config.tls.key), ca: asList(config.tls.ca).map((p) => named(files, p)) }, { refuseExpired: reload, hostname: { name: config.hostname, role: 'server' } });
  checkInbound(inbound);
  let downstreamTls: DownstreamTls;
  const loadDownstreamTls = (files: Map<string, Buffer>, reload = false): DownstreamTls => {
    const ca = config.downstream.tls.ca ? asList(config.downstream.tls.ca).map((p) => named(files, p)) : undefined;
    checkTlsMaterial({ cert: named(files, config.downstream.tls.cert), key: named(files, config.downstream.tls.key), ca }, { refuseExpired: reload, hostname: { name: config.hostname, role: 'downstream-client' } });
    return {
      cert: files.get(config.downstream.tls.cert)!,
      key: files.get(config.downstream.tls.key)!,
      ca: ca?.map((c) => c.pem),
      servername: config.downstream.tls.servername,
      minVersion: config.downstream.tls.minVersion,
    };
  };
  downstreamTls = loadDownstreamTls(readTlsFiles(downstreamPaths).files);
  const recordExpiry = () => {
    try {
      recordCertificateExpiry(metrics.certificateExpiry, certRoles, 'server', certificateFacts(inboundMaterial().cert));
      recordCertificateExpiry(metrics.certificateExpiry, certRoles, 'downstream-client', certificateFacts(downstreamTls.cert));
    } catch (error) {
      logger.warn({ event: 'certificate-unreadable', error: (error as Error).message }, 'cannot read certificate expiry');
    }
  };
  recordExpiry();

  // --- organization: one engine per config version, swapped atomically (a transaction keeps the engine it started with)
  let active: ActiveOrg | undefined;
  const applyOrg = (org: OrgConfig): boolean => {
    try {
      const engine = config.passThrough ? createPassThroughEngine(org.orgId, org.version) : deps.createEngine({ org, directory: deps.directory });
      active = { engine, acceptedDomains: org.acceptedDomains };
      metrics.configInfo.reset();
      metrics.configInfo.set({ org: org.orgId, version: org.version }, 1);
      logger.info({ event: 'engine-ready', org: org.orgId, version: org.version }, 'engine ready for configuration version');
      return true;
    } catch (error) {
      metrics.configReloads.inc({ result: 'refused' });
      // the source already announced this version: say again which one runs
      metrics.configInfo.reset();
      if (active) metrics.configInfo.set({ org: active.engine.orgId, version: active.engine.configVersion }, 1);
      logger.error({ event: 'engine-refused', org: org.orgId, version: org.version, error: (error as Error).message }, 'configuration version refused by the engine; keeping the running one');
      return false;
    }
  };
  deps.orgSource.on('config', (org) => void applyOrg(org));
  await deps.orgSource.start();
  const first = deps.orgSource.current();
  if (first && (!active || active.engine.configVersion !== first.version)) applyOrg(first);

  const downstreamOptions: DownstreamOptions = {
    host: config.downstream.host,
    port: config.downstream.port,
    name: config.hostname,
    tls: () => downstreamTls,
    connectTimeoutMs: config.downstream.timeouts.connectSeconds * 1000,
    greetingTimeoutMs: config.downstream.timeouts.greetingSeconds * 1000,
    commandTimeoutMs: config.downstream.timeouts.commandSeconds * 1000,
    dataTimeoutMs: config.downstream.timeouts.dataSeconds * 1000,
    maxAddresses: config.downstream.maxAddresses,
    resolve: deps.resolveDownstream,
    failedAddresses: new FailedAddresses(),
    onAddressFailure: (address, error) => {
      metrics.downstreamErrors.inc({ reason: `address-${error.kind}` });
      logger.warn({ event: 'downstream-address-failed', host: config.downstream.host, address, cause: error.kind, error: error.message }, 'downstream address failed; trying the next one');
    },
  };

  const relay = createRelay({
    hostname: config.hostname,
    tls: { ...inboundMaterial(), minVersion: config.tls.minVersion, acceptedClientNames: config.tls.acceptedClientNames },
    allowNetworks: config.allowNetworks,
    tenantId: config.tenantId,
    downstream: downstreamOptions,
    limits: {
      maxMessageBytes: config.limits.maxMessageBytes,
      maxRecipients: config.limits.maxRecipients,
      maxLineLength: config.limits.maxLineLength,
      sessionMs: config.limits.sessionSeconds * 1000,
      idleMs: config.limits.idleSeconds * 1000,
      maxSessions: config.limits.maxSessions,
      maxSessionsPerSource: config.limits.maxSessionsPerSource,
      maxSignetHops: config.limits.maxSignetHops,
    },
    org: () => active,
    metrics,
    logger,
    hashId,
    downstreamReuse: { maxIdle: config.downstream.reuse.maxIdle, idleMs: config.downstream.reuse.idleSeconds * 1000 },
  });

  // --- downstream probe: connect + EHLO + STARTTLS + QUIT, bounded by the set-up timeouts
  let lastProbeOk: number | undefined;
  let lastCause: DownstreamCause | undefined;
  // what the downstream lacks, said once per change: every message that needs it is deferred until it is fixed
  let lastMissing = '';
  let probing: Promise<void> | undefined;
  const probe = (): Promise<void> => {
    probing ??= (async () => {
      const result = await probeDownstream(downstreamOptions);
      metrics.downstreamUp.reset();
      if (result.ok) {
        lastProbeOk = Date.now();
        metrics.downstreamUp.set({ cause: 'none' }, 1);
        if (lastCause !== undefined) logger.info({ event: 'downstream-up', host: config.downstream.host, seconds: result.seconds }, 'downstream reachable again');
        lastCause = undefined;
        const missing = (result.missing ?? []).join(', ');
        if (missing !== lastMissing) {
          if (missing) logger.warn({ event: 'downstream-lacks', host: config.downstream.host, extensions: result.missing }, `downstream does not offer ${missing}: messages that need it are deferred (451) until it does; Exchange Online offers both, check downstream.host`);
          else logger.info({ event: 'downstream-lacks', host: config.downstream.host, extensions: [] }, 'downstream offers 8BITMIME and SMTPUTF8 again');
          lastMissing = missing;
        }
      } else {
        const cause = result.cause ?? 'protocol';
        metrics.downstreamUp.set({ cause }, 0);
        metrics.downstreamErrors.inc({ reason: `probe-${cause}` });
        if (cause !== lastCause) {
          logger.error({ event: 'downstream-down', host: config.downstream.host, port: config.downstream.port, cause, fix: CAUSE_HINTS[cause], error: result.message }, `downstream unreachable (${cause}): ${CAUSE_HINTS[cause]}`);
        }
        lastCause = cause;
      }
    })().finally(() => {
      probing = undefined;
    });
    return probing;
  };
  const probeTimer = setInterval(() => void probe(), config.downstream.probeSeconds * 1000);
  probeTimer.unref();

  let leaving = false;
  const leave = (): void => {
    if (leaving) return;
    leaving = true;
    logger.info({ event: 'leaving' }, 'leaving: not ready for new sessions from health routing, still serving every session');
  };

  const readiness = (): Readiness => {
    const reasons: string[] = [];
    const status = relay.status();
    if (status.draining) reasons.push('draining');
    else if (leaving) reasons.push('leaving');
    if (!active) reasons.push('no config');
    if (lastProbeOk === undefined || Date.now() - lastProbeOk > config.downstream.readyWithinSeconds * 1000) {
      reasons.push(lastCause ? `downstream unreachable: ${lastCause}` : 'downstream not confirmed yet');
    }
    const ready = reasons.length === 0;
    metrics.ready.set(ready ? 1 : 0);
    return {
      ready,
      reasons,
      details: {
        org: active?.engine.orgId,
        configVersion: active?.engine.configVersion,
        downstream: { lastOkAt: lastProbeOk ? new Date(lastProbeOk).toISOString() : null, cause: lastCause ?? null },
        sessions: status.sessions,
        transactions: status.transactions,
      },
    };
  };

  const smtpPorts: number[] = [];
  let http: HealthServer | undefined;
  let watchers: TlsWatcher[] = [];
  try {
    for (const l of config.listen) smtpPorts.push((await relay.listen(l.host, l.port)).port);
    http = await startHealthServer({ registry: metrics.registry, readiness, leave, host: config.http.listen, port: config.http.port });
  } catch (error) {
    await relay.close();
    deps.orgSource.stop();
    clearInterval(probeTimer);
    throw error;
  }
  void probe();

  // --- certificate rotation without restart
  const reloadMs = config.tls.reloadSeconds * 1000;
  // A refused rotation leaves the node presenting the old certificate until it expires: the gauge holds
  // while the refused files stay on disk, for an alert; both start at 0.
  const rotation = (certificate: 'server' | 'downstream-client') => {
    for (const result of ['reloaded', 'refused']) metrics.certificateReloads.inc({ certificate, result }, 0);
    metrics.certificateRefused.set({ certificate }, 0);
    return (result: 'reloaded' | 'refused') => {
      metrics.certificateReloads.inc({ certificate, result });
      metrics.certificateRefused.set({ certificate }, result === 'refused' ? 1 : 0);
    };
  };
  const serverRotated = rotation('server');
  const clientRotated = rotation('downstream-client');
  watchers = [
    watchTlsFiles(
      inboundPaths,
      reloadMs,
      (set) => {
        checkInbound(set.files, true);
        for (const [p, b] of set.files) inbound.set(p, b);
        relay.updateTls(inboundMaterial());
        recordExpiry();
        serverRotated('reloaded');
        logger.info({ event: 'tls-reloaded', which: 'server' }, 'server certificate reloaded');
      },
      (error) => {
        serverRotated('refused');
        logger.error({ event: 'tls-reload-refused', which: 'server', error: error.message }, 'new server certificate files refused; keeping the running ones');
      },
    ),
    watchTlsFiles(
      downstreamPaths,
      reloadMs,
      (set) => {
        downstreamTls = loadDownstreamTls(set.files, true);
        relay.flushDownstream(); // idle sessions were opened with the old certificate
        recordExpiry();
        clientRotated('reloaded');
        logger.info({ event: 'tls-reloaded', which: 'downstream-client' }, 'downstream client certificate reloaded');
      },
      (error) => {
        clientRotated('refused');
        logger.error({ event: 'tls-reload-refused', which: 'downstream-client', error: error.message }, 'new downstream client certificate files refused; keeping the running ones');
      },
    ),
  ];

  let stopped = false;
  const shutdown = () => {
    stopped = true;
    clearInterval(probeTimer);
    for (const w of watchers) w.close();
    deps.orgSource.stop();
  };

  logger.info({ event: 'relay-started', smtp: config.listen.map((l, i) => `${l.host}:${smtpPorts[i]}`), http: `${config.http.listen}:${http.port}`, downstream: `${config.downstream.host}:${config.downstream.port}`, fastStart: relay.fastStart }, 'relay started');

  return {
    relay,
    smtpPorts,
    httpPort: http.port,
    metrics,
    logger,
    readiness,
    probe,
    applyOrg,
    leave,
    async drain() {
      if (stopped) return { finished: true, cut: 0 };
      logger.info({ event: 'drain-started', transactions: relay.status().transactions, boundSeconds: config.limits.drainSeconds }, 'draining: not ready, new sessions refused, in-flight transactions finishing');
      // readiness turns 503 at once (draining); the HTTP side stays up until the end so health checks see it
      const result = await relay.drain(config.limits.drainSeconds * 1000);
      shutdown();
      logger.info({ event: 'drain-finished', ...result }, result.finished ? 'drained: every transaction finished' : 'drain bound reached: remaining transactions cut (their senders retry)');
      await http?.close();
      return result;
    },
    async stop() {
      shutdown();
      await relay.close();
      await http?.close();
    },
  };
}
