import { expect } from 'chai';
import { EventEmitter } from 'node:events';
import { request as httpRequest } from 'node:http';
import { renameSync, writeFileSync } from 'node:fs';
import { connect as netConnect, createServer, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { createLogger, createMetrics } from '../../appliance/src/observability';
import type { OrgConfig } from '../../appliance/src/config';
import { classifyError, DownstreamSession, parseRelayConfig } from '../../appliance/src/smtp';
import { nameMatches } from '../../appliance/src/smtp/client-identity';
import { startRelayNode, type OrgSourceLike, type RelayNode } from '../../appliance/src/smtp/node';
import { startSink, type DevSink } from '../../appliance/src/smtp/dev/sink';
import { testPki, writePemFiles } from '../support/certs';
import { stampEngine } from './support/engines';
import { send, sampleMessage, startHarness } from './support/harness';
import { startWireDownstream } from './support/wire-downstream';

const ORG = { orgId: 'test-org', version: 'v1', acceptedDomains: ['contoso.com'] } as unknown as OrgConfig;

function staticSource(org: OrgConfig | undefined): OrgSourceLike & { emitter: EventEmitter } {
  const emitter = new EventEmitter();
  return { emitter, start: async () => undefined, stop: () => undefined, current: () => org, on: (e, l) => emitter.on(e, l) };
}

async function getJson(port: number, path: string): Promise<{ status: number; body: Record<string, unknown> | string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as Record<string, unknown> };
  } catch {
    return { status: res.status, body: text };
  }
}

async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await condition()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function readReply(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let buf = '';
    const on = (d: Buffer) => {
      buf += d.toString();
      if (/^\d{3} [^\n]*\r\n$/m.test(buf.split('\r\n').slice(-2).join('\r\n'))) {
        socket.removeListener('data', on);
        resolve(buf.trim());
      }
    };
    socket.on('data', on);
  });
}

describe('relay node: health, readiness, probe, certificate reload, drain', function () {
  this.timeout(30_000);
  let node: RelayNode | undefined;
  let sink: DevSink | undefined;
  let files: ReturnType<typeof writePemFiles> | undefined;

  afterEach(async () => {
    await node?.stop();
    await sink?.close();
    files?.cleanup();
    node = sink = files = undefined;
  });

  async function start(options: { log?: string[]; org?: OrgConfig; downstreamPort?: number; drainSeconds?: number; downstreamHost?: string; resolveDownstream?: (host: string) => Promise<string[]>; passThrough?: boolean; source?: OrgSourceLike; createEngine?: (org: OrgConfig) => ReturnType<typeof stampEngine> } = {}) {
    const pki = await testPki();
    sink = await startSink({ key: pki.sinkServer.key, cert: pki.sinkServer.cert, clientCa: pki.ca.cert });
    files = writePemFiles({ 'server.crt': pki.relayServer.cert, 'server.key': pki.relayServer.key, 'ca.crt': pki.ca.cert, 'client.crt': pki.relayClient.cert, 'client.key': pki.relayClient.key });
    const config = parseRelayConfig(
      {
        hostname: 'relay.test.invalid',
        passThrough: options.passThrough ?? false,
        listen: [{ host: '127.0.0.1', port: 0 }],
        tls: { cert: 'server.crt', key: 'server.key', ca: 'ca.crt', reloadSeconds: 0.2 },
        downstream: { host: options.downstreamHost ?? '127.0.0.1', port: options.downstreamPort ?? sink.port, tls: { cert: 'client.crt', key: 'client.key', ca: 'ca.crt', servername: 'sink.test.invalid' }, probeSeconds: 3600 },
        limits: { drainSeconds: options.drainSeconds ?? 10 },
        http: { listen: '127.0.0.1', port: 0 },
        org: { source: 'unused' },
      },
      'test',
      files.dir,
    );
    node = await startRelayNode(config, {
      createEngine: options.createEngine ? ({ org }) => options.createEngine!(org) : () => stampEngine(),
      orgSource: options.source ?? staticSource('org' in options ? options.org : ORG),
      directory: () => undefined,
      metrics: createMetrics({ processMetrics: false }),
      logger: options.log ? createLogger({ level: 'info', destination: { write: (line: string) => void options.log!.push(line) } }) : createLogger({ level: 'silent' }),
      resolveDownstream: options.resolveDownstream,
    });
    await node.probe();
    return { pki, node, sink };
  }

  it('answers /healthz, /readyz (with reasons) and /metrics on its own port', async () => {
    const { node } = await start();
    expect((await getJson(node.httpPort, '/healthz')).status).to.equal(200);
    const ready = await getJson(node.httpPort, '/readyz');
    expect(ready.status).to.equal(200);
    expect(ready.body).to.include({ status: 'ready', configVersion: 'test-1' });
    const metrics = (await getJson(node.httpPort, '/metrics')).body as string;
    expect(metrics).to.contain('signet_downstream_up{cause="none"} 1');
    expect(metrics).to.match(/signet_certificate_expiry_timestamp_seconds\{certificate="server",subject="relay\.test\.invalid"\} \d{10}/);
    expect(metrics).to.match(/signet_certificate_expiry_timestamp_seconds\{certificate="downstream-client",subject="relay\.test\.invalid"\} \d{10}/);
    expect(metrics).to.contain('signet_config_info{org="test-org",version="v1"} 1');
    expect(node.smtpPorts[0]).not.to.equal(node.httpPort);
  });

  it('leaves on POST /leave from the node itself: /readyz 503 "leaving", mail still relayed; refused from elsewhere', async () => {
    const { node, sink: s, pki } = await start();
    const post = (localAddress?: string) =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: node.httpPort, path: '/leave', method: 'POST', localAddress }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    // another loopback source address stands for a health prober: it may not take the node out
    expect(await post('127.0.0.2')).to.equal(403);
    expect((await getJson(node.httpPort, '/readyz')).status).to.equal(200);
    expect((await fetch(`http://127.0.0.1:${node.httpPort}/leave`)).status).to.equal(405);
    expect(await post()).to.equal(202);
    const ready = await getJson(node.httpPort, '/readyz');
    expect(ready.status).to.equal(503);
    expect((ready.body as { reasons: string[] }).reasons).to.deep.equal(['leaving']);
    // unlike a drain, sessions still get served: health routing only stops sending new ones
    const answer = await send(node.smtpPorts[0], pki.exoClient, { raw: sampleMessage() });
    expect(answer.ok).to.equal(true);
    expect(s.messages).to.have.length(1);
  });

  it('with passThrough on, relays every byte unchanged but for the stamp the routing rule excepts (no loop through Exchange Online)', async () => {
    const { node, sink: s, pki } = await start({ passThrough: true });
    const raw = sampleMessage();
    const answer = await send(node.smtpPorts[0], pki.exoClient, { raw });
    expect(answer.ok).to.equal(true);
    const delivered = s.messages[0]!.raw.toString('latin1');
    const stamp = /^X-Signet-Processed: ([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)\r\n/.exec(delivered);
    expect(stamp?.[1]).to.match(/^org=test-org; result=passed; reason=pass-through;/);
    expect(delivered.slice(stamp![0].length)).to.equal(raw.endsWith('\r\n') ? raw : `${raw}\r\n`);
    expect((await getJson(node.httpPort, '/metrics')).body).to.contain('signet_messages_total{outcome="passed",reason="pass-through"} 1');
  });

  it('keeps the running version in signet_config_info when the engine refuses a version the source announced', async () => {
    const source = staticSource(ORG);
    const { node } = await start({
      source,
      createEngine: (org) => {
        if (org.version === 'v2') throw new Error('template does not compile');
        return { ...stampEngine(), configVersion: org.version };
      },
    });
    const v2 = { ...ORG, version: 'v2' } as OrgConfig;
    // what the org source does before it emits a version
    node.metrics.configInfo.reset();
    node.metrics.configInfo.set({ org: 'test-org', version: 'v2' }, 1);
    source.emitter.emit('config', v2);
    const metrics = (await getJson(node.httpPort, '/metrics')).body as string;
    expect(metrics).to.contain('signet_config_info{org="test-org",version="v1"} 1');
    expect(metrics).not.to.contain('version="v2"');
    expect(metrics).to.contain('signet_config_reloads_total{result="refused"} 1');
  });

  it('tries the downstream name\'s next address when one refuses, and counts the failed address', async () => {
    // nothing listens on [::1] at the sink's port: refused, then 127.0.0.1 answers
    const { node, sink: s, pki } = await start({ downstreamHost: 'sink.test.invalid', resolveDownstream: () => Promise.resolve(['::1', '127.0.0.1']) });
    expect((await getJson(node.httpPort, '/readyz')).status).to.equal(200);
    expect((await getJson(node.httpPort, '/metrics')).body).to.contain('signet_downstream_errors_total{reason="address-refused"} 1');
    const answer = await send(node.smtpPorts[0], pki.exoClient, { raw: sampleMessage() });
    expect(answer.ok).to.equal(true);
    expect(s.messages).to.have.length(1);
    // the refusing address is now tried last: no second failure
    expect((await getJson(node.httpPort, '/metrics')).body).to.contain('signet_downstream_errors_total{reason="address-refused"} 1');
  });

  it('says once, when the probe finds it, which of 8BITMIME and SMTPUTF8 the downstream lacks (messages that need them are deferred)', async () => {
    const lacking = await startWireDownstream(await testPki(), ['PIPELINING', 'ENHANCEDSTATUSCODES']);
    try {
      const log: string[] = [];
      const { node } = await start({ downstreamPort: lacking.port, log });
      // start() already waited for one probe; two more find the same and say nothing new
      await node.probe();
      await node.probe();
      expect(lacking.sessions.length).to.be.at.least(3);
      const said = log.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.event === 'downstream-lacks');
      expect(said).to.have.length(1);
      expect(said[0]).to.include({ level: 40 }).and.deep.include({ extensions: ['8BITMIME', 'SMTPUTF8'] });
      expect(String(said[0]!.msg)).to.include('does not offer 8BITMIME, SMTPUTF8').and.include('deferred');
      // still ready: every other message goes through
      expect((await getJson(node.httpPort, '/readyz')).status).to.equal(200);
    } finally {
      await lacking.close();
    }
  });

  it('says nothing about extensions when the downstream offers both', async () => {
    const log: string[] = [];
    const { node } = await start({ log });
    await node.probe();
    // the probe went through (EHLO answered over TLS), and found nothing missing
    expect((await getJson(node.httpPort, '/readyz')).status).to.equal(200);
    expect(log.filter((l) => l.includes('downstream-lacks'))).to.deep.equal([]);
  });

  it('is not ready, naming the cause, when the downstream refuses connections', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const { node } = await start({ downstreamPort: deadPort });
    const ready = await getJson(node.httpPort, '/readyz');
    expect(ready.status).to.equal(503);
    expect((ready.body as { reasons: string[] }).reasons).to.deep.equal(['downstream unreachable: refused']);
    expect((await getJson(node.httpPort, '/metrics')).body).to.contain('signet_downstream_up{cause="refused"} 0');
  });

  it('is not ready with "no config" and answers transactions 451 4.3.0 until a config arrives', async () => {
    const { node, pki } = await start({ org: undefined });
    const ready = await getJson(node.httpPort, '/readyz');
    expect(ready.status).to.equal(503);
    expect((ready.body as { reasons: string[] }).reasons).to.deep.equal(['no config']);
    const refused = await send(node.smtpPorts[0], pki.exoClient, { raw: sampleMessage() });
    expect(refused.response).to.match(/^451 4\.3\.0/);
    expect(node.applyOrg(ORG)).to.equal(true);
    expect((await getJson(node.httpPort, '/readyz')).status).to.equal(200);
    const ok = await send(node.smtpPorts[0], pki.exoClient, { raw: sampleMessage() });
    expect(ok.ok, ok.response).to.equal(true);
  });

  it('reloads the server certificate when its files are replaced, without a restart', async () => {
    const { node, pki } = await start();
    const serialOf = async () => {
      const socket = netConnect(node.smtpPorts[0], '127.0.0.1');
      await readReply(socket);
      socket.write('EHLO t\r\n');
      await readReply(socket);
      socket.write('STARTTLS\r\n');
      await readReply(socket);
      const tls = tlsConnect({ socket, ca: pki.ca.cert, servername: 'relay.test.invalid', key: pki.exoClient.key, cert: pki.exoClient.cert });
      await new Promise((r) => tls.once('secureConnect', r));
      const serial = tls.getPeerCertificate().serialNumber;
      tls.destroy();
      return serial;
    };
    const before = await serialOf();
    const renewed = await pki.ca.issue({ commonName: 'relay.test.invalid', dnsNames: ['relay.test.invalid'], usage: ['server'] });
    // written the way rotations do it: new files renamed over the old ones
    writeFileSync(files!.path('server.key.new'), renewed.key);
    writeFileSync(files!.path('server.crt.new'), renewed.cert);
    renameSync(files!.path('server.key.new'), files!.path('server.key'));
    renameSync(files!.path('server.crt.new'), files!.path('server.crt'));
    let after = before;
    await until(async () => (after = await serialOf()) !== before, 'the new certificate');
    expect(after).not.to.equal(before);
  });

  it('keeps the running certificate when the new files do not match', async () => {
    const { node, pki } = await start();
    const other = await pki.ca.issue({ commonName: 'x.test.invalid', usage: ['server'] });
    writeFileSync(files!.path('server.key'), other.key); // key without its certificate: refused
    await new Promise((r) => setTimeout(r, 600));
    const ok = await send(node.smtpPorts[0], pki.exoClient, { raw: sampleMessage() });
    expect(ok.ok, ok.response).to.equal(true);
  });

  it('keeps the running CA bundle when the new one is cut short or empty (Node would load it and refuse every client as untrusted), and says which file', async () => {
    const log: string[] = [];
    const { node, pki } = await start({ log });
    const refusals = () => log.filter((l) => l.includes('"event":"tls-reload-refused"'));
    // caught mid-write: the first half of the bundle
    writeFileSync(files!.path('ca.crt'), pki.ca.cert.slice(0, Math.floor(pki.ca.cert.length / 2)));
    // the bundle is the inbound one and the downstream's: both keep theirs
    const refusedFor = (which: string, text: string) => refusals().some((l) => l.includes(`"which":"${which}"`) && l.includes(text));
    await until(() => refusedFor('server', 'ca.crt: certificate 1 in it is incomplete') && refusedFor('downstream-client', 'ca.crt: certificate 1 in it is incomplete'), 'the cut-short bundle to be refused');
    writeFileSync(files!.path('ca.crt'), '');
    await until(() => refusedFor('server', 'ca.crt: no PEM certificate in it') && refusedFor('downstream-client', 'ca.crt: no PEM certificate in it'), 'the empty bundle to be refused');
    expect(log.join('')).not.to.contain('"event":"tls-reloaded"');
    const ok = await send(node.smtpPorts[0], pki.exoClient, { raw: sampleMessage() });
    expect(ok.ok, ok.response).to.equal(true);
  });

  it('keeps the running server certificate when the replacement has already expired', async () => {
    const log: string[] = [];
    const { node, pki } = await start({ log });
    const expired = await pki.ca.issue({ commonName: 'relay.test.invalid', dnsNames: ['relay.test.invalid'], usage: ['server'], notBefore: new Date(Date.now() - 30 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
    writeFileSync(files!.path('server.key.new'), expired.key);
    writeFileSync(files!.path('server.crt.new'), expired.cert);
    renameSync(files!.path('server.key.new'), files!.path('server.key'));
    renameSync(files!.path('server.crt.new'), files!.path('server.crt'));
    await until(() => log.some((l) => l.includes('"event":"tls-reload-refused"') && l.includes('server.crt: the certificate expired on')), 'the expired certificate to be refused');
    const ok = await send(node.smtpPorts[0], pki.exoClient, { raw: sampleMessage() });
    expect(ok.ok, ok.response).to.equal(true);
  });

  /** signet_certificate_reloads_total and signet_certificate_refused, as `<certificate> <result>` and `<certificate> flagged`. */
  async function rotationMetrics(node: RelayNode): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const v of (await node.metrics.certificateReloads.get()).values) out[`${v.labels.certificate} ${v.labels.result}`] = v.value;
    for (const v of (await node.metrics.certificateRefused.get()).values) out[`${v.labels.certificate} flagged`] = v.value;
    return out;
  }

  /** Replaces a certificate and its key the way rotations do: new files renamed over the old ones. */
  function replace(which: 'server' | 'client', issued: { cert: string; key: string }): void {
    writeFileSync(files!.path(`${which}.key.new`), issued.key);
    writeFileSync(files!.path(`${which}.crt.new`), issued.cert);
    renameSync(files!.path(`${which}.key.new`), files!.path(`${which}.key`));
    renameSync(files!.path(`${which}.crt.new`), files!.path(`${which}.crt`));
  }
  const minutes = (n: number) => new Date(Date.now() + n * 60_000);

  it('keeps the running certificates when a replacement is not valid yet, server or downstream client, and says from when', async () => {
    const log: string[] = [];
    const { node, pki } = await start({ log });
    const refused = (which: string, text: string) => log.some((l) => l.includes('"event":"tls-reload-refused"') && l.includes(`"which":"${which}"`) && l.includes(text));
    replace('server', await pki.ca.issue({ commonName: 'relay.test.invalid', dnsNames: ['relay.test.invalid'], usage: ['server'], notBefore: minutes(60 * 24) }));
    await until(() => refused('server', 'server.crt: the certificate is not valid before '), 'the server certificate dated tomorrow to be refused');
    replace('client', await pki.ca.issue({ commonName: 'relay.test.invalid', usage: ['client'], notBefore: minutes(30) }));
    await until(() => refused('downstream-client', 'client.crt: the certificate is not valid before '), 'the client certificate dated in 30 minutes to be refused');
    expect(log.join('')).not.to.contain('"event":"tls-reloaded"');
    // counted once each, and flagged while the refused files stay (the alert reads the flag)
    expect(await rotationMetrics(node)).to.deep.equal({ 'server refused': 1, 'server reloaded': 0, 'downstream-client refused': 1, 'downstream-client reloaded': 0, 'server flagged': 1, 'downstream-client flagged': 1 });
    const ok = await send(node.smtpPorts[0], pki.exoClient, { raw: sampleMessage() });
    expect(ok.ok, ok.response).to.equal(true);
  });

  it('takes a replacement issued moments ago by a CA whose clock runs a few minutes ahead, and good files after refused ones clear the refusal', async () => {
    const log: string[] = [];
    const { node, pki } = await start({ log });
    expect(await rotationMetrics(node)).to.deep.equal({ 'server refused': 0, 'server reloaded': 0, 'downstream-client refused': 0, 'downstream-client reloaded': 0, 'server flagged': 0, 'downstream-client flagged': 0 });
    replace('server', await pki.ca.issue({ commonName: 'relay.test.invalid', dnsNames: ['relay.test.invalid'], usage: ['server'], notBefore: minutes(60 * 24) }));
    await until(() => log.some((l) => l.includes('"event":"tls-reload-refused"') && l.includes('"which":"server"')), 'the server certificate dated tomorrow to be refused');
    replace('server', await pki.ca.issue({ commonName: 'relay.test.invalid', dnsNames: ['relay.test.invalid'], usage: ['server'], notBefore: minutes(3) }));
    await until(() => log.some((l) => l.includes('"event":"tls-reloaded"') && l.includes('"which":"server"')), 'the server certificate to be reloaded');
    replace('client', await pki.ca.issue({ commonName: 'relay.test.invalid', usage: ['client'], notBefore: minutes(3) }));
    await until(() => log.some((l) => l.includes('"event":"tls-reloaded"') && l.includes('"which":"downstream-client"')), 'the client certificate to be reloaded');
    expect(log.filter((l) => l.includes('"event":"tls-reload-refused"'))).to.have.length(1);
    // the good files that followed the refused ones clear the flag
    expect(await rotationMetrics(node)).to.deep.equal({ 'server refused': 1, 'server reloaded': 1, 'downstream-client refused': 0, 'downstream-client reloaded': 1, 'server flagged': 0, 'downstream-client flagged': 0 });
  });

  it('keeps the running server certificate when the replacement does not cover the relay\'s hostname', async () => {
    const log: string[] = [];
    const { node, pki } = await start({ log });
    replace('server', await pki.ca.issue({ commonName: 'other.test.invalid', dnsNames: ['other.test.invalid', 'localhost'], usage: ['server'] }));
    await until(() => log.some((l) => l.includes('"event":"tls-reload-refused"') && l.includes('server.crt: the certificate does not cover hostname \\"relay.test.invalid\\" (it names DNS:other.test.invalid, DNS:localhost)')), 'the certificate for another name to be refused');
    const ok = await send(node.smtpPorts[0], pki.exoClient, { raw: sampleMessage() });
    expect(ok.ok, ok.response).to.equal(true);
  });

  it('keeps the running downstream client certificate when the replacement does not cover hostname (the next downstream session presents the old one), and takes a wildcard one that does', async () => {
    const log: string[] = [];
    const { node, sink: s, pki } = await start({ log });
    replace('client', await pki.ca.issue({ commonName: 'other.test.invalid', usage: ['client'] }));
    const refusal = `client.crt: the certificate does not cover hostname \\"relay.test.invalid\\" (it names DNS:other.test.invalid); Exchange Online's inbound connector (TlsSenderCertificateName) would refuse every message the node hands back with it`;
    await until(() => log.some((l) => l.includes('"event":"tls-reload-refused"') && l.includes('"which":"downstream-client"') && l.includes(refusal)), 'the client certificate for another name to be refused');
    expect(log.join('')).not.to.contain('"event":"tls-reloaded"');
    expect((await send(node.smtpPorts[0], pki.exoClient, { raw: sampleMessage() })).ok).to.equal(true);
    expect(s.messages.map((m) => m.clientCertificate)).to.deep.equal(['relay.test.invalid']);
    // *.test.invalid covers relay.test.invalid (one label)
    replace('client', await pki.ca.issue({ commonName: '*.test.invalid', usage: ['client'] }));
    await until(() => log.some((l) => l.includes('"event":"tls-reloaded"') && l.includes('"which":"downstream-client"')), 'the wildcard client certificate to be reloaded');
    expect((await send(node.smtpPorts[0], pki.exoClient, { raw: sampleMessage() })).ok).to.equal(true);
    expect(s.messages.map((m) => m.clientCertificate)).to.deep.equal(['relay.test.invalid', '*.test.invalid']);
  });

  it('does not start with a certificate not valid yet, or a server or downstream client certificate that does not cover hostname, and names the file in one line', async () => {
    const pki = await testPki();
    const later = await pki.ca.issue({ commonName: 'relay.test.invalid', dnsNames: ['relay.test.invalid'], usage: ['server', 'client'], notBefore: minutes(60) });
    const soon = await pki.ca.issue({ commonName: 'relay.test.invalid', dnsNames: ['relay.test.invalid'], usage: ['server', 'client'], notBefore: minutes(2) });
    const elsewhere = await pki.ca.issue({ commonName: 'other.test.invalid', usage: ['client'] });
    const wildcard = await pki.ca.issue({ commonName: '*.test.invalid', usage: ['client'] });
    const deeper = await pki.ca.issue({ commonName: '*.relay.test.invalid', usage: ['client'] });
    files = writePemFiles({
      'server.crt': pki.relayServer.cert,
      'server.key': pki.relayServer.key,
      'later.crt': later.cert,
      'later.key': later.key,
      'soon.crt': soon.cert,
      'soon.key': soon.key,
      'elsewhere.crt': elsewhere.cert,
      'elsewhere.key': elsewhere.key,
      'wildcard.crt': wildcard.cert,
      'wildcard.key': wildcard.key,
      'deeper.crt': deeper.cert,
      'deeper.key': deeper.key,
      'ca.crt': pki.ca.cert,
      'client.crt': pki.relayClient.cert,
      'client.key': pki.relayClient.key,
    });
    const attempt = (settings: { hostname?: string; tls?: Record<string, string>; client?: Record<string, string> }) =>
      startRelayNode(
        parseRelayConfig({ hostname: settings.hostname ?? 'relay.test.invalid', listen: [{ host: '127.0.0.1', port: 0 }], tls: { cert: 'server.crt', key: 'server.key', ca: 'ca.crt', ...settings.tls }, downstream: { host: '127.0.0.1', tls: { cert: 'client.crt', key: 'client.key', ca: 'ca.crt', ...settings.client }, probeSeconds: 3600 }, http: { listen: '127.0.0.1', port: 0 }, org: { source: 'unused' } }, 'test', files!.dir),
        { createEngine: () => stampEngine(), orgSource: staticSource(ORG), directory: () => undefined, metrics: createMetrics({ processMetrics: false }), logger: createLogger({ level: 'silent' }) },
      ).then(
        async (started) => {
          await started.stop();
          return 'started';
        },
        (error: Error) => error.message,
      );
    const notYet = new RegExp(`^${files.path('later.crt')}: the certificate is not valid before \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z \\(this node's clock says [^)]+\\)$`);
    expect(await attempt({ tls: { cert: 'later.crt', key: 'later.key' } })).to.match(notYet);
    expect(await attempt({ client: { cert: 'later.crt', key: 'later.key' } })).to.match(notYet);
    expect(await attempt({ hostname: 'smtp.contoso.com' })).to.equal(`${files.path('server.crt')}: the certificate does not cover hostname "smtp.contoso.com" (it names DNS:relay.test.invalid, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1)`);
    // what the inbound connector's TlsSenderCertificateName names: the client certificate must cover it too
    const uncovered = (file: string, names: string) => `${files!.path(file)}: the certificate does not cover hostname "relay.test.invalid" (it names ${names}); Exchange Online's inbound connector (TlsSenderCertificateName) would refuse every message the node hands back with it`;
    expect(await attempt({ client: { cert: 'elsewhere.crt', key: 'elsewhere.key' } })).to.equal(uncovered('elsewhere.crt', 'DNS:other.test.invalid'));
    // a wildcard covers exactly one label: not relay.test.invalid itself
    expect(await attempt({ client: { cert: 'deeper.crt', key: 'deeper.key' } })).to.equal(uncovered('deeper.crt', 'DNS:*.relay.test.invalid'));
    expect(await attempt({ client: { cert: 'wildcard.crt', key: 'wildcard.key' } })).to.equal('started');
    // within the clock-skew allowance, and certificates naming hostname exactly: it starts
    expect(await attempt({ tls: { cert: 'soon.crt', key: 'soon.key' }, client: { cert: 'soon.crt', key: 'soon.key' } })).to.equal('started');
  });

  it('does not start with a CA bundle holding no whole certificate or a key that is not the certificate\'s, and names the files', async () => {
    const pki = await testPki();
    files = writePemFiles({ 'server.crt': pki.relayServer.cert, 'server.key': pki.relayServer.key, 'other.key': pki.sinkServer.key, 'ca.crt': pki.ca.cert, 'empty.crt': '', 'client.crt': pki.relayClient.cert, 'client.key': pki.relayClient.key });
    const attempt = (tls: Record<string, string>, downstreamCa = 'ca.crt') =>
      startRelayNode(
        parseRelayConfig({ listen: [{ host: '127.0.0.1', port: 0 }], tls: { cert: 'server.crt', key: 'server.key', ca: 'ca.crt', ...tls }, downstream: { host: '127.0.0.1', tls: { cert: 'client.crt', key: 'client.key', ca: downstreamCa } }, http: { listen: '127.0.0.1', port: 0 }, org: { source: 'unused' } }, 'test', files!.dir),
        { createEngine: () => stampEngine(), orgSource: staticSource(ORG), directory: () => undefined, metrics: createMetrics({ processMetrics: false }), logger: createLogger({ level: 'silent' }) },
      ).then(
        (started) => {
          node = started;
          return 'started';
        },
        (error: Error) => error.message,
      );
    expect(await attempt({ ca: 'empty.crt' })).to.equal(`${files.path('empty.crt')}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)`);
    expect(await attempt({}, 'empty.crt')).to.equal(`${files.path('empty.crt')}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)`);
    expect(await attempt({ key: 'other.key' })).to.match(new RegExp(`^${files.path('server.crt')} with ${files.path('other.key')}: not a usable TLS identity \\(.*key values mismatch`));
  });

  it('drains on request: not ready, new sessions 421 4.3.2, the transaction in flight finishes', async () => {
    const { node, pki, sink } = await start();
    // a transaction in flight: upstream is in the middle of DATA
    const raw = netConnect(node.smtpPorts[0], '127.0.0.1');
    await readReply(raw);
    raw.write('EHLO exo\r\n');
    await readReply(raw);
    raw.write('STARTTLS\r\n');
    await readReply(raw);
    const tls = tlsConnect({ socket: raw, ca: pki.ca.cert, servername: 'relay.test.invalid', key: pki.exoClient.key, cert: pki.exoClient.cert });
    await new Promise((r) => tls.once('secureConnect', r));
    const command = async (line: string) => {
      tls.write(line + '\r\n');
      return readReply(tls as unknown as Socket);
    };
    expect(await command('EHLO exo')).to.match(/^250/m);
    expect(await command('MAIL FROM:<adele@contoso.com>')).to.match(/^250/);
    expect(await command('RCPT TO:<bob@fabrikam.com>')).to.match(/^250/);
    expect(await command('DATA')).to.match(/^354/);
    tls.write(sampleMessage().split('\r\n\r\n')[0] + '\r\n\r\nfirst half\r\n');

    const draining = node.drain();
    await until(async () => (await getJson(node.httpPort, '/readyz')).status === 503, 'readiness to turn 503');
    expect(((await getJson(node.httpPort, '/readyz')).body as { reasons: string[] }).reasons).to.include('draining');
    const late = netConnect(node.smtpPorts[0], '127.0.0.1');
    expect(await readReply(late)).to.match(/^421 4\.3\.2/);
    late.destroy();

    const finalReply = readReply(tls as unknown as Socket);
    tls.write('second half\r\n.\r\n');
    expect(await finalReply).to.match(/^250 2\.6\.0/);
    tls.destroy();
    const result = await draining;
    expect(result).to.deep.equal({ finished: true, cut: 0 });
    expect(sink.messages).to.have.length(1);
    expect(sink.messages[0].raw.toString()).to.contain('first half\r\nsecond half\r\n');
  });

  it('classifies downstream failures the way operators act on them', () => {
    expect(classifyError(Object.assign(new Error('Connection timeout'), { code: 'ETIMEDOUT', timeoutType: 'CONNECT_TIMEOUT' }), 25)).to.equal('port25-blocked');
    expect(classifyError(Object.assign(new Error('Connection timeout'), { code: 'ETIMEDOUT', timeoutType: 'CONNECT_TIMEOUT' }), 2525)).to.equal('timeout');
    expect(classifyError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ESOCKET', originalCode: 'ECONNREFUSED' }), 25)).to.equal('refused');
    expect(classifyError(Object.assign(new Error('getaddrinfo ENOTFOUND x'), { code: 'EDNS', originalCode: 'ENOTFOUND' }), 25)).to.equal('dns');
    expect(classifyError(Object.assign(new Error('self-signed certificate'), { code: 'ESOCKET', originalCode: 'DEPTH_ZERO_SELF_SIGNED_CERT' }), 25)).to.equal('tls');
    // an IPv6 address on a node without an IPv6 route, or a subnet route that leads nowhere
    expect(classifyError(Object.assign(new Error('connect ENETUNREACH 2001:db8::25:25 - Local (:::0)'), { code: 'ESOCKET', originalCode: 'ENETUNREACH' }), 25)).to.equal('unreachable');
    expect(classifyError(Object.assign(new Error('connect EHOSTUNREACH 10.9.9.9:25'), { code: 'EHOSTUNREACH' }), 25)).to.equal('unreachable');
    expect(classifyError(Object.assign(new Error('Unexpected greeting'), { code: 'EPROTOCOL' }), 25)).to.equal('protocol');
  });

  it('refuses TLS with a downstream whose certificate does not verify (cause tls)', async () => {
    const h = await startHarness();
    try {
      // the harness' sink presents sink.test.invalid; ask for another name
      const pki = await testPki();
      let failure: unknown;
      try {
        await DownstreamSession.open({ host: '127.0.0.1', port: h.sink.port, name: 't', tls: () => ({ key: pki.relayClient.key, cert: pki.relayClient.cert, ca: pki.ca.cert, servername: 'exchange.test.invalid' }), connectTimeoutMs: 5000, greetingTimeoutMs: 5000, commandTimeoutMs: 5000, dataTimeoutMs: 5000 });
      } catch (error) {
        failure = error;
      }
      expect((failure as { kind?: string }).kind).to.equal('tls');
    } finally {
      await h.close();
    }
  });
});

describe('client certificate names against acceptedClientNames', () => {
  it('lets `*.example.com` stand for exactly one more label, and a wildcard in the certificate match only the identical pattern', () => {
    expect(nameMatches('MAIL.protection.outlook.com.', 'mail.protection.outlook.com')).to.equal(true);
    expect(nameMatches('a.example.com', '*.example.com')).to.equal(true);
    expect(nameMatches('a.b.example.com', '*.example.com')).to.equal(false);
    expect(nameMatches('example.com', '*.example.com')).to.equal(false);
    expect(nameMatches('*.example.com', '*.example.com')).to.equal(true);
    expect(nameMatches('*.example.com', 'a.example.com')).to.equal(false);
    // a partial-label wildcard claims a family of names too
    expect(nameMatches('a*.example.com', '*.example.com')).to.equal(false);
    expect(nameMatches('*a.example.com', '*.example.com')).to.equal(false);
  });
});
