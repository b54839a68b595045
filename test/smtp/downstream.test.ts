import { expect } from 'chai';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { DownstreamError, DownstreamSession, FailedAddresses, type DownstreamOptions } from '../../appliance/src/smtp';
import { startSink, type DevSink } from '../../appliance/src/smtp/dev/sink';
import { testPki, type TestPki } from '../support/certs';

describe('downstream addresses: the next one is tried when one fails', function () {
  this.timeout(20_000);
  let pki: TestPki;
  let sink: DevSink;
  const extra: Server[] = [];

  before(async () => {
    pki = await testPki();
    sink = await startSink({ key: pki.sinkServer.key, cert: pki.sinkServer.cert, clientCa: pki.ca.cert });
  });
  after(async () => {
    await sink.close();
  });
  afterEach(async () => {
    await Promise.all(extra.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
  });

  function options(over: Partial<DownstreamOptions> = {}): DownstreamOptions {
    return {
      host: 'sink.test.invalid',
      port: sink.port,
      name: 'relay.test.invalid',
      tls: () => ({ key: pki.relayClient.key, cert: pki.relayClient.cert, ca: pki.ca.cert }),
      connectTimeoutMs: 5000,
      greetingTimeoutMs: 5000,
      commandTimeoutMs: 5000,
      dataTimeoutMs: 5000,
      maxAddresses: 3,
      ...over,
    };
  }

  async function openFails(o: DownstreamOptions): Promise<DownstreamError> {
    try {
      const session = await DownstreamSession.open(o);
      session.quit();
    } catch (error) {
      expect(error).to.be.instanceOf(DownstreamError);
      return error as DownstreamError;
    }
    throw new Error('open() succeeded');
  }

  /** A server on [::1] at the sink's port that greets with `greeting` and hangs up (or hangs up at once). */
  async function standIn(greeting?: string): Promise<{ connections: number }> {
    const seen = { connections: 0 };
    const server = createServer((socket) => {
      seen.connections++;
      if (greeting) socket.end(greeting);
      else socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(sink.port, '::1', resolve);
    });
    extra.push(server);
    return seen;
  }

  it('connects by address but checks the certificate against the name', async () => {
    const session = await DownstreamSession.open(options({ resolve: () => Promise.resolve(['127.0.0.1']) }));
    expect(session.usable).to.equal(true);
    session.quit();
    const wrongName = await openFails(options({ host: 'other.test.invalid', resolve: () => Promise.resolve(['127.0.0.1']) }));
    expect(wrongName.kind).to.equal('tls');
  });

  it('goes on to the next address after a refusal or an error greeting', async () => {
    const failures: Array<[string, string]> = [];
    const onAddressFailure = (address: string, error: DownstreamError) => failures.push([address, error.kind]);
    // nothing listens on [::1] at the sink's port
    let session = await DownstreamSession.open(options({ resolve: () => Promise.resolve(['::1', '127.0.0.1']), onAddressFailure }));
    session.quit();
    expect(failures).to.deep.equal([['::1', 'refused']]);

    const busy = await standIn('421 4.3.2 Service not available\r\n');
    session = await DownstreamSession.open(options({ resolve: () => Promise.resolve(['::1', '127.0.0.1']), onAddressFailure }));
    session.quit();
    expect(busy.connections).to.equal(1);
    expect(failures).to.have.length(2);
    expect(failures[1][0]).to.equal('::1');
  });

  it('tries only maxAddresses addresses, and names every failure when all fail', async () => {
    const resolve = () => Promise.resolve(['::1', '127.0.0.1']);
    const one = await openFails(options({ resolve, maxAddresses: 1 }));
    expect(one.kind).to.equal('refused');
    expect(one.message).to.contain('::1').and.not.to.contain('127.0.0.1');

    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const all = await openFails(options({ resolve, port: deadPort }));
    expect(all.kind).to.equal('refused');
    expect(all.message).to.contain('all 2 addresses failed').and.contain('::1').and.contain('127.0.0.1');
  });

  it('reports the most telling cause when the addresses fail differently', async () => {
    const dropper = await standIn(); // [::1] hangs up at once
    // 127.0.0.1 answers, with a certificate for another name
    const mixed = await openFails(options({ host: 'other.test.invalid', resolve: () => Promise.resolve(['::1', '127.0.0.1']) }));
    expect(dropper.connections).to.equal(1);
    expect(mixed.kind).to.equal('tls');
    expect(mixed.message).to.contain('all 2 addresses failed');
  });

  it('tries an address that failed lately after the others', async () => {
    const failed = new FailedAddresses(60_000);
    const tried: string[] = [];
    const onAddressFailure = (address: string) => tried.push(address);
    const resolve = () => Promise.resolve(['::1', '127.0.0.1']);
    (await DownstreamSession.open(options({ resolve, failedAddresses: failed, onAddressFailure }))).quit();
    (await DownstreamSession.open(options({ resolve, failedAddresses: failed, onAddressFailure }))).quit();
    // only the first session paid for the refusing address
    expect(tried).to.deep.equal(['::1']);
  });

  it('fails with cause dns when the name does not resolve, and uses the system resolver by default', async () => {
    const dns = await openFails(options({ resolve: () => Promise.reject(Object.assign(new Error('queryA ENOTFOUND sink.test.invalid'), { code: 'ENOTFOUND' })) }));
    expect(dns.kind).to.equal('dns');
    expect((await openFails(options({ resolve: () => Promise.resolve([]) }))).kind).to.equal('dns');
    // localhost comes from the hosts file; whichever of ::1 and 127.0.0.1 it lists first, the sink is found
    const session = await DownstreamSession.open(options({ host: 'localhost', tls: () => ({ key: pki.relayClient.key, cert: pki.relayClient.cert, ca: pki.ca.cert, servername: 'sink.test.invalid' }) }));
    session.quit();
  });
});

describe('FailedAddresses', () => {
  it('moves recent failures to the end, the longest-ago first, and forgets them after the hold time', () => {
    let now = 1_000_000;
    const failed = new FailedAddresses(60_000, () => now);
    const dns = ['a', 'b', 'c', 'd'];
    expect(failed.order(dns)).to.deep.equal(dns);
    failed.record('b');
    now += 1000;
    failed.record('a');
    expect(failed.order(dns)).to.deep.equal(['c', 'd', 'b', 'a']);
    failed.clear('b');
    expect(failed.order(dns)).to.deep.equal(['b', 'c', 'd', 'a']);
    now += 60_000;
    expect(failed.order(dns)).to.deep.equal(dns);
  });

  it('keeps at most 64 addresses, forgetting the oldest', () => {
    const failed = new FailedAddresses(60_000, () => 0);
    for (let i = 0; i < 65; i++) failed.record(`10.0.0.${i}`);
    // 10.0.0.0 was forgotten, 10.0.0.1 is still a recent failure
    expect(failed.order(['10.0.0.1', '10.0.0.0'])).to.deep.equal(['10.0.0.0', '10.0.0.1']);
  });
});
