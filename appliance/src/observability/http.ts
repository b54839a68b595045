// The relay's HTTP side, on its own port (never the SMTP one): Prometheus
// /metrics, /healthz (the process is alive and its event loop turns) and
// /readyz (this node should receive mail now), with a JSON body that names
// why when it should not.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface Readiness {
  ready: boolean;
  /** Why not ready, e.g. ["no config", "downstream unreachable: port25-blocked", "draining"]. */
  reasons: string[];
  /** Extra facts for operators (config version, last probe...). */
  details?: Record<string, unknown>;
}

export interface HealthServerOptions {
  registry: Registry;
  readiness: () => Readiness;
  /** `POST /leave`, from loopback only: /readyz turns 503 while mail is still served (before a planned restart). */
  leave?: () => void;
  host: string;
  port: number;
  /** Bounds for a slow or idle client (defaults suit health probes and scrapes, which send at once). */
  limits?: { headersMs?: number; requestMs?: number; maxConnections?: number };
}

export interface HealthServer {
  port: number;
  close(): Promise<void>;
}

export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const limits = { headersMs: 5000, requestMs: 10_000, maxConnections: 128, ...options.limits };
  const server: Server = createServer(
    {
      // Probes and scrapes send their request at once; a client that trickles headers
      // (slowloris) must not hold a socket, which the SMTP side shares the fd limit with.
      headersTimeout: limits.headersMs,
      requestTimeout: limits.requestMs,
      connectionsCheckingInterval: Math.min(1000, limits.headersMs),
      maxHeaderSize: 8192,
    },
    (req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      // No endpoint takes a body; do not read one.
      if (Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined) {
        res.writeHead(413, { connection: 'close', 'content-type': 'text/plain' }).end('no request body accepted\n');
        return;
      }
      if (path === '/leave' && options.leave) {
        if (req.method !== 'POST') {
          res.writeHead(405, { allow: 'POST' }).end();
          return;
        }
        // Health probes reach this port from outside; only the node itself may take it out of rotation.
        const from = req.socket.remoteAddress ?? '';
        if (from !== '127.0.0.1' && from !== '::1' && from !== '::ffff:127.0.0.1') {
          res.writeHead(403, { 'content-type': 'text/plain' }).end('only from the node itself\n');
          return;
        }
        options.leave();
        res.writeHead(202, { 'content-type': 'application/json' }).end('{"status":"leaving"}\n');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (path === '/metrics') {
        // Readiness is evaluated for each scrape too, so signet_ready says what /readyz
        // would answer now — not what it answered when a health probe last asked (or
        // 0 for ever when nothing probes /readyz).
        try {
          options.readiness();
        } catch {
          // /readyz reports it; the metrics are served regardless
        }
        options.registry
          .metrics()
          .then((text) => res.writeHead(200, { 'content-type': options.registry.contentType }).end(text))
          .catch((error: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${(error as Error).message}\n`));
        return;
      }
      if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"alive"}\n');
        return;
      }
      if (path === '/readyz') {
        let r: Readiness;
        try {
          r = options.readiness();
        } catch {
          // an exception here would otherwise end the process, and the mail with it
          r = { ready: false, reasons: ['readiness check failed'] };
        }
        res
          .writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' })
          .end(`${JSON.stringify({ status: r.ready ? 'ready' : 'not ready', reasons: r.reasons, ...(r.details ?? {}) })}\n`);
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics, /healthz, /readyz\n');
    },
  );
  server.keepAliveTimeout = 5000;
  server.maxConnections = limits.maxConnections;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
