// Bounded soak: 1,000 messages over 20 concurrent upstream connections with
// downstream faults injected at random (refused sender, refused recipient,
// 4xx/5xx at end of DATA, connection dropped mid-DATA). Every message must be
// either delivered exactly once (and answered 250) or answered 4xx/5xx and
// not delivered at all. Counted; zero lost, zero duplicated.
import { expect } from 'chai';
import { exoTransport, sampleMessage, startHarness, type Harness } from './support/harness';
import { prng } from './support/prng';

type Fault = 'none' | 'mail' | 'rcpt-one' | 'rcpt-all' | 'data-4xx' | 'data-5xx' | 'drop';
const FAULTS: Array<[Fault, number]> = [
  ['none', 0.6],
  ['mail', 0.05],
  ['rcpt-one', 0.1],
  ['rcpt-all', 0.05],
  ['data-4xx', 0.07],
  ['data-5xx', 0.05],
  ['drop', 0.08],
];

describe('relay soak: 1,000 messages, 20 connections, random downstream faults', function () {
  this.timeout(120_000);
  let h: Harness;
  after(async () => h?.close());

  it('delivers every message exactly once or answers it 4xx/5xx: none lost, none duplicated', async () => {
    const seed = Number(process.env.SIGNET_SOAK_SEED ?? 20261123);
    const random = prng(seed);
    const faultOf = new Map<string, Fault>(); // by message number, read back from addresses
    const numberIn = (address: string) => /^[a-z]+-?[a-z]*?(\d+)/.exec(address)?.[1] ?? '';
    h = await startHarness({
      limits: { maxSessions: 100, maxSessionsPerSource: 100 },
      reuse: 8, // downstream sessions reused across transactions, under faults
      faults: {
        mail: (from) => (faultOf.get(numberIn(from)) === 'mail' ? { code: 451, message: '4.3.2 Try later' } : undefined),
        rcpt: (to) => (to.startsWith('refused') ? { code: 550, message: '5.1.10 Recipient not found' } : undefined),
        data: ({ rcptTo }) => {
          const fault = faultOf.get(numberIn(rcptTo[0] ?? ''));
          if (fault === 'data-4xx') return { code: 451, message: '4.4.0 Temporary failure' };
          if (fault === 'data-5xx') return { code: 554, message: '5.6.0 Refused' };
          return undefined;
        },
        dropAfterBytes: ({ rcptTo }) => (faultOf.get(numberIn(rcptTo[0] ?? '')) === 'drop' ? 700 : undefined),
      },
    });

    const total = 1000;
    const transport = exoTransport(h.port, h.pki.exoClient, { pool: true, maxConnections: 20, ca: h.pki.ca.cert });
    const outcomes = await Promise.all(
      Array.from({ length: total }, async (_, i) => {
        let r = random();
        let fault: Fault = 'none';
        for (const [f, p] of FAULTS) {
          if (r < p) {
            fault = f;
            break;
          }
          r -= p;
        }
        faultOf.set(String(i), fault);
        const from = fault === 'mail' ? `s${i}@contoso.com` : 'adele@contoso.com';
        const to = fault === 'rcpt-all' ? [`refused${i}@fabrikam.com`] : fault === 'rcpt-one' ? [`r${i}@fabrikam.com`, `refused${i}@fabrikam.com`] : [`r${i}@fabrikam.com`];
        const size = 500 + Math.floor(random() * 40_000);
        const messageId = `soak-${i}@contoso.com`;
        const raw = sampleMessage({ from, to, messageId, body: `${'x'.repeat(76)}\r\n`.repeat(Math.ceil(size / 78)) });
        try {
          const info = (await transport.sendMail({ envelope: { from, to }, raw })) as { response: string; rejected: string[] };
          return { i, fault, messageId, accepted: true, code: Number(info.response.slice(0, 3)), rejected: info.rejected };
        } catch (error) {
          return { i, fault, messageId, accepted: false, code: (error as { responseCode?: number }).responseCode ?? 0, rejected: [] as string[] };
        }
      }),
    );
    transport.close();

    const deliveries = new Map<string, number>();
    for (const m of h.sink.messages) {
      const id = /^Message-ID: <([^>]+)>/im.exec(m.raw.toString('latin1'))?.[1] ?? '?';
      deliveries.set(id, (deliveries.get(id) ?? 0) + 1);
    }
    const problems: string[] = [];
    const tally = { delivered: 0, refused4xx: 0, refused5xx: 0 };
    for (const o of outcomes) {
      const count = deliveries.get(o.messageId) ?? 0;
      if (o.accepted) {
        tally.delivered++;
        if (o.code !== 250) problems.push(`#${o.i} accepted with ${o.code}`);
        if (count !== 1) problems.push(`#${o.i} (${o.fault}) answered 250 but delivered ${count} times`);
      } else {
        if (o.code >= 400 && o.code < 500) tally.refused4xx++;
        else if (o.code >= 500 && o.code < 600) tally.refused5xx++;
        else problems.push(`#${o.i} (${o.fault}) failed without an SMTP answer`);
        if (count !== 0) problems.push(`#${o.i} (${o.fault}) answered ${o.code} but delivered ${count} times`);
      }
      if (o.fault === 'none' && !o.accepted) problems.push(`#${o.i} without fault was not accepted (${o.code})`);
    }
    expect(problems, `seed ${seed}`).to.deep.equal([]);
    expect(tally.delivered + tally.refused4xx + tally.refused5xx).to.equal(total);
    expect(h.sink.messages.length).to.equal(tally.delivered);
    expect(tally.delivered).to.be.greaterThan(600);
    expect(tally.refused4xx).to.be.greaterThan(0);
    expect(tally.refused5xx).to.be.greaterThan(0);
    expect(h.relay.status().transactions).to.equal(0);
  });
});
