import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createMetrics, type SignetMetrics } from '../../appliance/src/observability';
import { collectStatus, formatStatusTable, loadStackOutputs, nodeHealthUrl, normalizeNodeUrl, readMetrics } from '../../appliance/src/fleet';

const ROOT = resolve(__dirname, '../..');

interface FakeNode {
  server: Server;
  url: string;
  metrics: SignetMetrics;
  readiness: { status: number; body: object };
}

// A node's HTTP side as the relay serves it: /readyz with a JSON reason, /metrics from a real prom-client registry.
async function startNode(readiness: FakeNode['readiness']): Promise<FakeNode> {
  const metrics = createMetrics({ processMetrics: false });
  const node = { metrics, readiness } as FakeNode;
  node.server = createServer((req, res) => {
    if (req.url === '/readyz') {
      res.writeHead(node.readiness.status, { 'content-type': 'application/json' }).end(JSON.stringify(node.readiness.body));
    } else if (req.url === '/metrics') {
      void metrics.registry.metrics().then((text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => node.server.listen(0, '127.0.0.1', r));
  node.url = `http://127.0.0.1:${(node.server.address() as AddressInfo).port}`;
  return node;
}

async function closedPortUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

function runCli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/signet.js'), ...args], { cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (status) => resolveRun({ status, stdout, stderr }));
  });
}

describe('fleet: signet status', function () {
  this.timeout(60_000);
  let healthy: FakeNode;
  let sick: FakeNode;
  let dir: string;
  const expiry = new Date('2027-01-15T00:00:00Z');

  before(async () => {
    healthy = await startNode({ status: 200, body: { status: 'ready', reasons: [] } });
    healthy.metrics.ready.set(1);
    healthy.metrics.configInfo.set({ org: 'contoso', version: '7' }, 1);
    healthy.metrics.certificateExpiry.set({ certificate: 'server', subject: 'smtp.contoso.signet-relay.net' }, expiry.getTime() / 1000 + 86400 * 30);
    healthy.metrics.certificateExpiry.set({ certificate: 'downstream-client', subject: 'k7q2m9x4t1.contoso.signet-relay.net' }, expiry.getTime() / 1000);
    // Exchange Online's certificate expires first, but it is not the node's to renew: not shown
    healthy.metrics.certificateExpiry.set({ certificate: 'upstream-client', subject: 'mail.protection.outlook.com' }, expiry.getTime() / 1000 - 86400);
    healthy.metrics.messages.inc({ outcome: 'signed', reason: 'rule' }, 500);
    healthy.metrics.downstreamUp.set({ cause: 'ok' }, 1);

    sick = await startNode({ status: 503, body: { status: 'not ready', reason: 'downstream unreachable (port25-blocked)' } });
    sick.metrics.configInfo.set({ org: 'contoso', version: '6' }, 1);
    sick.metrics.downstreamUp.set({ cause: 'port25-blocked' }, 0);
    sick.metrics.messages.inc({ outcome: 'tempfailed', reason: 'downstream-connect' }, 40);
    dir = mkdtempSync(join(tmpdir(), 'signet-status-'));
  });

  after(async () => {
    await new Promise<void>((r) => healthy.server.close(() => r()));
    await new Promise<void>((r) => sick.server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads ready, config version, earliest certificate, and counters over the interval from real nodes', async () => {
    const down = await closedPortUrl();
    const statuses = await collectStatus(
      [
        { name: 'node-1', url: healthy.url },
        { name: 'node-2', url: sick.url },
        { name: 'node-3', url: down },
      ],
      {
        intervalSeconds: 10,
        // Traffic during the interval, instead of waiting ten seconds; the nodes share this
        // process's thread, which is kept busy for the whole (short) interval.
        sleep: async () => {
          const spinUntil = performance.now() + 300;
          while (performance.now() < spinUntil) {
            // busy
          }
          healthy.metrics.messages.inc({ outcome: 'signed', reason: 'rule' }, 12);
          healthy.metrics.messages.inc({ outcome: 'passed', reason: 'calendar' }, 2);
          healthy.metrics.messages.inc({ outcome: 'tempfailed', reason: 'engine' }, 1);
          sick.metrics.messages.inc({ outcome: 'tempfailed', reason: 'downstream-connect' }, 5);
          sick.metrics.downstreamErrors.inc({ reason: 'connect' }, 5);
        },
      },
    );
    const [one, two, three] = statuses;
    expect(one).to.include({ name: 'node-1', ready: true, reachable: true, configOrg: 'contoso', configVersion: '7', messages: 15, tempfails: 1, downstreamErrors: 0 });
    expect(one!.certificateExpiry!.toISOString()).to.equal(expiry.toISOString());
    expect(one!.certificateName).to.equal('downstream-client k7q2m9x4t1.contoso.signet-relay.net');
    expect(one!.downstreamDown).to.deep.equal([]);
    expect(two).to.include({ ready: false, reachable: true, reason: 'downstream unreachable (port25-blocked)', configVersion: '6', messages: 5, tempfails: 5, downstreamErrors: 5 });
    expect(two!.downstreamDown).to.deep.equal(['port25-blocked']);
    // busy seconds over the time between the two scrapes: the 300 ms spin and the scrapes themselves
    expect(one!.busy).to.be.within(0.6, 1);
    expect(two!.busy).to.be.within(0.6, 1);
    expect(three).to.include({ ready: false, reachable: false });
    expect(three!.busy).to.equal(undefined);
    expect(three!.reason).to.match(/^unreachable: ECONNREFUSED/);

    const table = formatStatusTable(statuses, 10, new Date('2026-12-15T00:00:00Z'));
    const lines = table.trim().split('\n');
    expect(lines[0]).to.match(/^NODE\s+READY\s+CONFIG\s+CERT EXPIRY\s+MSGS\/10s\s+TEMPFAILS\/10s\s+DOWNSTREAM ERR\/10s\s+BUSY\s+REASON$/);
    expect(lines[1]).to.match(/^node-1\s+yes\s+contoso@7\s+2027-01-15 \(31d\)\s+15\s+1\s+0\s+(6\d|7\d|8\d|9\d|100)%\s+-$/);
    expect(lines[2]).to.match(/^node-2\s+NO\s+contoso@6\s+-\s+5\s+5\s+5\s+\d+%\s+downstream unreachable \(port25-blocked\); downstream down: port25-blocked$/);
    expect(lines[3]).to.match(/^node-3\s+NO\s+-/);
    expect(table).to.include('nodes run different config versions (7, 6)');
  });

  it('reads the busy seconds only from relays that export them (an older relay shows BUSY as -)', () => {
    const older = '# TYPE signet_messages_total counter\nsignet_messages_total{outcome="signed",reason="rule"} 3\n';
    expect(readMetrics(older).busySeconds).to.equal(undefined);
    expect(readMetrics(`${older}# TYPE signet_event_loop_busy_seconds_total counter\nsignet_event_loop_busy_seconds_total 12.5\n`).busySeconds).to.equal(12.5);
    const row = formatStatusTable([{ name: 'old', url: 'http://old', ready: true, reachable: true, messages: 3, tempfails: 0, downstreamErrors: 0, downstreamDown: [] }], 10).split('\n')[1];
    expect(row).to.match(/^old\s+yes\s+-\s+-\s+3\s+0\s+0\s+-\s+-$/);
  });

  it('treats a counter that went down as reset (process restarted between scrapes)', async () => {
    const node = await startNode({ status: 200, body: {} });
    try {
      node.metrics.messages.inc({ outcome: 'signed', reason: 'rule' }, 100);
      const [status] = await collectStatus([{ name: 'n', url: node.url }], {
        intervalSeconds: 1,
        sleep: async () => {
          node.metrics.messages.reset();
          node.metrics.messages.inc({ outcome: 'tempfailed', reason: 'engine' }, 3);
        },
      });
      expect(status).to.include({ messages: 3, tempfails: 3 });
      expect(readMetrics(await node.metrics.registry.metrics()).messagesTotal).to.equal(3);
    } finally {
      await new Promise<void>((r) => node.server.close(() => r()));
    }
  });

  it('finds each node at its private address and the stack\'s HTTP port (or its public name)', () => {
    const outputs = loadStackOutputs(join(ROOT, 'test/fixtures/stack-outputs.json'));
    expect(outputs.nodes.map((n) => nodeHealthUrl(outputs, n))).to.deep.equal(['http://10.40.1.4:9025', 'http://10.40.1.5:9025']);
    expect(nodeHealthUrl(outputs, outputs.nodes[0]!, 'fqdn')).to.equal('http://signet-contoso-n0-4f2a.westeurope.cloudapp.azure.com:9025');
  });

  it('normalizes node URLs and refuses what is not one', () => {
    expect(normalizeNodeUrl('http://node-1:8080/')).to.equal('http://node-1:8080');
    expect(normalizeNodeUrl('http://node-1:8080/readyz')).to.equal('http://node-1:8080');
    expect(() => normalizeNodeUrl('node-1:8080')).to.throw(/only http and https|not a URL/);
    expect(() => normalizeNodeUrl('ftp://node-1')).to.throw(/only http and https/);
  });

  it('takes no other web server for a node, and gives up on one that answers slowly, body included', async () => {
    // a web server (or a proxy) answering every path with a page of its own
    const page = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>Welcome to nginx!</body></html>'));
    // one that answers and then sends its body a line at a time, for ever
    const trickle = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const tick = setInterval(() => res.write('# x\n'), 50);
      res.on('close', () => clearInterval(tick));
    });
    const listen = async (server: ReturnType<typeof createServer>) => {
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    };
    try {
      const [pageUrl, trickleUrl] = [await listen(page), await listen(trickle)];
      const [asPage, asTrickle] = await collectStatus([{ name: 'page', url: pageUrl }, { name: 'trickle', url: trickleUrl }], { intervalSeconds: 0, timeoutMs: 300 });
      expect(asPage).to.include({ ready: false, reachable: true });
      expect(asPage!.messages).to.equal(undefined);
      expect(asPage!.reason).to.match(/not a Signet relay: \/readyz answered 200 .*metrics: \/metrics is not a Signet relay's/);
      expect(asTrickle).to.include({ ready: false, reachable: false });
      expect(asTrickle!.reason).to.match(/no complete answer within 0\.3 s/);
    } finally {
      trickle.closeAllConnections();
      await new Promise<void>((r) => page.close(() => r()));
      await new Promise<void>((r) => trickle.close(() => r()));
    }
  });

  it('command line: exit 0 when every node is ready, 1 when one is not; nodes from --stack-outputs', async () => {
    const ok = await runCli(['status', '--node', healthy.url, '--interval', '0']);
    expect(ok.status, ok.stderr).to.equal(0);
    expect(ok.stdout).to.match(/127\.0\.0\.1:\d+\s+yes\s+contoso@7/);

    const fixture = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/stack-outputs.json'), 'utf8'));
    fixture.nodes[0].healthUrl = healthy.url;
    fixture.nodes[1].healthUrl = sick.url;
    const file = join(dir, 'outputs.json');
    writeFileSync(file, JSON.stringify(fixture));
    const bad = await runCli(['status', '--stack-outputs', file, '--interval', '0', '--json']);
    expect(bad.status).to.equal(1);
    const parsed = JSON.parse(bad.stdout) as Array<{ name: string; ready: boolean }>;
    expect(parsed.map((s) => [s.name, s.ready])).to.deep.equal([
      ['node0', true],
      ['node1', false],
    ]);
  });

  it('command line: refuses to run without nodes', async () => {
    const r = await runCli(['status', '--interval', '0']);
    expect(r.status).to.not.equal(0);
    expect(r.stderr).to.include('--stack-outputs FILE or --node URL');
  });
});
