// Bounded chaos from the upstream side: 20 concurrent hand-driven sessions, each
// running a few transactions that end at random points (after MAIL, after
// RCPT, part-way through DATA, with the whole message sent but no final dot,
// RSET, or completed). A message is delivered exactly once when its final dot
// was answered 250 and never otherwise; no session or transaction stays
// counted, and the relay still relays afterwards.
import { expect } from 'chai';
import { ManualSmtp } from '../e2e/support/smtp-client';
import { sampleMessage, startHarness, type Harness } from './support/harness';
import { prng } from './support/prng';

type Ending = 'complete' | 'leave-after-mail' | 'leave-after-rcpt' | 'leave-mid-data' | 'leave-before-dot' | 'rset';
const ENDINGS: Ending[] = ['complete', 'complete', 'leave-after-mail', 'leave-after-rcpt', 'leave-mid-data', 'leave-before-dot', 'rset'];

describe('relay under upstream chaos: sessions that end anywhere in a transaction', function () {
  this.timeout(120_000);
  let h: Harness;
  after(async () => h?.close());

  it('delivers exactly the messages whose final dot got 250, once each; nothing else, nothing left counted', async () => {
    const seed = Number(process.env.SIGNET_CHAOS_SEED ?? 20261124);
    const random = prng(seed);
    h = await startHarness({ limits: { maxSessions: 100, maxSessionsPerSource: 100 }, reuse: 8 });
    const tls = { key: h.pki.exoClient.key, cert: h.pki.exoClient.cert, ca: h.pki.ca.cert, servername: 'relay.test.invalid' };
    const completed: string[] = [];
    const abandoned: string[] = [];
    const problems: string[] = [];
    const endings: Record<string, number> = {};
    let next = 0;

    const session = async (s: number): Promise<void> => {
      const smtp = await ManualSmtp.open(h.port, tls);
      const transactions = 1 + Math.floor(random() * 3);
      for (let t = 0; t < transactions; t++) {
        const n = next++;
        const ending = ENDINGS[Math.floor(random() * ENDINGS.length)]!;
        endings[ending] = (endings[ending] ?? 0) + 1;
        const id = `chaos-${n}@contoso.com`;
        const to = [`r${n}@fabrikam.com`, ...(random() < 0.3 ? [`s${n}@fabrikam.com`] : [])];
        const raw = Buffer.from(sampleMessage({ to, messageId: id, body: `${'y'.repeat(70)}\r\n`.repeat(1 + Math.floor(random() * 400)) }), 'latin1');
        await smtp.command('MAIL FROM:<adele@contoso.com>', /^250/);
        if (ending === 'leave-after-mail') {
          smtp.destroy();
          abandoned.push(id);
          return;
        }
        for (const rcpt of to) await smtp.command(`RCPT TO:<${rcpt}>`, /^250/);
        if (ending === 'leave-after-rcpt') {
          smtp.destroy();
          abandoned.push(id);
          return;
        }
        if (ending === 'rset') {
          await smtp.command('RSET', /^250/);
          abandoned.push(id);
          continue;
        }
        await smtp.command('DATA', /^354/);
        if (ending === 'leave-mid-data' || ending === 'leave-before-dot') {
          const cut = ending === 'leave-before-dot' ? raw.length : 1 + Math.floor(random() * (raw.length - 1));
          smtp.write(raw.subarray(0, cut));
          // let the bytes reach the relay (and perhaps the downstream) before leaving
          await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 30)));
          smtp.destroy();
          abandoned.push(id);
          return;
        }
        smtp.write(raw);
        const answer = await smtp.command('.');
        if (/^250/.test(answer)) completed.push(id);
        else problems.push(`session ${s}: ${id} got ${JSON.stringify(answer)}`);
      }
      await smtp.command('QUIT', /^221/);
    };

    const sessions = 150;
    let started = 0;
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        while (started < sessions) await session(started++);
      }),
    );

    // The relay notices a vanished client on its own schedule: wait (bounded) until nothing is counted.
    for (let i = 0; i < 100 && (h.relay.status().sessions > 0 || h.relay.status().transactions > 0); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(h.relay.status(), 'sessions and transactions left counted').to.deep.include({ sessions: 0, transactions: 0 });

    const deliveries = new Map<string, number>();
    for (const m of h.sink.messages) {
      const id = /^Message-ID: <([^>]+)>/im.exec(m.raw.toString('latin1'))?.[1] ?? '?';
      deliveries.set(id, (deliveries.get(id) ?? 0) + 1);
    }
    for (const id of completed) if (deliveries.get(id) !== 1) problems.push(`${id} answered 250, delivered ${deliveries.get(id) ?? 0} times`);
    for (const id of abandoned) if (deliveries.has(id)) problems.push(`${id} abandoned by its client, delivered ${deliveries.get(id)} times`);
    expect(problems, `seed ${seed}`).to.deep.equal([]);
    expect(h.sink.messages.length).to.equal(completed.length);
    // every way of ending happened, so the test exercised what it claims
    for (const ending of new Set(ENDINGS)) expect(endings[ending] ?? 0, ending).to.be.greaterThan(5);

    // one transaction line and one count per transaction, the two agreeing, whatever ended it
    const lines = h.logs.filter((l) => l.event === 'transaction');
    expect(lines, 'transaction lines').to.have.length(next);
    const logged: Record<string, number> = {};
    for (const l of lines) logged[`${String(l.outcome)}/${String(l.reason)}`] = (logged[`${String(l.outcome)}/${String(l.reason)}`] ?? 0) + 1;
    const counted = Object.fromEntries((await h.metrics.registry.getSingleMetric('signet_messages_total')!.get()).values.filter((v) => v.value > 0).map((v) => [`${v.labels.outcome}/${v.labels.reason}`, v.value]));
    expect(counted, 'signet_messages_total against the log').to.deep.equal(logged);
    const left = (endings['leave-after-mail'] ?? 0) + (endings['leave-after-rcpt'] ?? 0) + (endings['leave-mid-data'] ?? 0) + (endings['leave-before-dot'] ?? 0);
    expect(logged).to.deep.equal({ 'signed/signed': completed.length, 'abandoned/upstream-reset': endings.rset, 'tempfailed/upstream-dropped': left });

    // and the relay still relays, through its reused downstream sessions
    const smtp = await ManualSmtp.open(h.port, tls);
    await smtp.command('MAIL FROM:<adele@contoso.com>', /^250/);
    await smtp.command('RCPT TO:<after@fabrikam.com>', /^250/);
    await smtp.command('DATA', /^354/);
    smtp.write(sampleMessage({ to: ['after@fabrikam.com'], messageId: 'after-chaos@contoso.com', body: 'Still here.\r\n' }));
    await smtp.command('.', /^250/);
    await smtp.command('QUIT', /^221/);
    expect(h.sink.messages.some((m) => m.raw.toString('latin1').includes('after-chaos@contoso.com'))).to.equal(true);
  });
});
