// The HTTP side faces health probes and, on the public names, the operators'
// ranges: it must stay up and bounded whatever a client sends or how slowly.
import { expect } from 'chai';
import { connect, type Socket } from 'node:net';
import { Registry } from 'prom-client';
import { startHealthServer, type HealthServer, type HealthServerOptions } from '../../appliance/src/observability';

function start(overrides: Partial<HealthServerOptions> = {}): Promise<HealthServer> {
  return startHealthServer({ registry: new Registry(), readiness: () => ({ ready: true, reasons: [] }), host: '127.0.0.1', port: 0, ...overrides });
}

/** Sends raw bytes and resolves with everything the server wrote once it closes the connection (or rejects after `withinMs`). */
function rawExchange(port: number, bytes: string, withinMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connection still open after ${withinMs} ms`));
    }, withinMs);
    socket.on('data', (d) => (text += d.toString()));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.write(bytes);
  });
}

function opened(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

describe('health HTTP server: bounded and never fatal', () => {
  let server: HealthServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('answers /readyz 503 when the readiness check throws, and keeps serving', async () => {
    server = await start({
      readiness: () => {
        throw new Error('boom');
      },
    });
    const ready = await fetch(`http://127.0.0.1:${server.port}/readyz`);
    expect(ready.status).to.equal(503);
    expect(await ready.json()).to.deep.include({ status: 'not ready', reasons: ['readiness check failed'] });
    expect((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status).to.equal(200);
  });

  it('closes a client that trickles its headers (slowloris) once the header time is up', async () => {
    server = await start({ limits: { headersMs: 200, requestMs: 400 } });
    // headers never finished: the server must hang up by itself, well before the test's own bound
    const answer = await rawExchange(server.port, 'GET /healthz HTTP/1.1\r\nHost: node\r\nX-Slow: 1\r\n', 5000);
    expect(answer).to.not.match(/^HTTP\/1\.1 200/);
  });

  it('refuses a request body (no endpoint takes one) without reading it', async () => {
    server = await start({ leave: () => undefined });
    const chunked = await rawExchange(server.port, 'POST /leave HTTP/1.1\r\nHost: node\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n', 5000);
    expect(chunked).to.match(/^HTTP\/1\.1 413/);
    const raw = await rawExchange(server.port, 'GET /healthz HTTP/1.1\r\nHost: node\r\nContent-Length: 1000000\r\n\r\nxxxx', 5000);
    expect(raw).to.match(/^HTTP\/1\.1 413/);
  });

  it('answers 405 with Allow to any method but GET and HEAD on its endpoints (POST only for /leave), and serves HEAD', async () => {
    server = await start();
    for (const [method, path] of [['PUT', '/metrics'], ['DELETE', '/readyz'], ['POST', '/healthz'], ['PATCH', '/metrics']]) {
      const res = await fetch(`http://127.0.0.1:${server.port}${path}`, { method });
      expect(res.status, `${method} ${path}`).to.equal(405);
      expect(res.headers.get('allow'), `${method} ${path}`).to.equal('GET, HEAD');
    }
    const head = await fetch(`http://127.0.0.1:${server.port}/readyz`, { method: 'HEAD' });
    expect(head.status).to.equal(200);
  });

  it('accepts no more than its connection limit; the connections it holds still work', async () => {
    server = await start({ limits: { maxConnections: 2 } });
    const held = [await opened(server.port), await opened(server.port)];
    try {
      const refused = await rawExchange(server.port, 'GET /healthz HTTP/1.1\r\nHost: node\r\n\r\n', 5000);
      expect(refused).to.equal('');
      const answer = await new Promise<string>((resolve) => {
        held[0]!.once('data', (d) => resolve(d.toString()));
        held[0]!.write('GET /healthz HTTP/1.1\r\nHost: node\r\n\r\n');
      });
      expect(answer).to.match(/^HTTP\/1\.1 200/);
    } finally {
      for (const s of held) s.destroy();
    }
  });
});
