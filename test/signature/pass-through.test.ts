// The relay's `passThrough` engine: every byte as it came, plus this
// organization's stamp on top — without the stamp, Exchange Online's routing
// rule sends the returned message to Signet again, round and round.
import { expect } from 'chai';
import { Readable } from 'node:stream';
import { createPassThroughEngine } from '../../appliance/src/signature';
import type { EngineResult } from '../../appliance/src/signature';

// The pattern the generated transport rule excepts (exchange/connectors.ts): org=<id>(;|\s|$)
const RULE_EXCEPTION = /^X-Signet-Processed: org=contoso(;|\s|$)/;

async function run(message: Buffer, chunkSize = message.length || 1): Promise<{ out: Buffer; result: EngineResult }> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < message.length; i += chunkSize) chunks.push(message.subarray(i, i + chunkSize));
  const handle = createPassThroughEngine('contoso', 'v7').process(Readable.from(chunks), { mailFrom: 'ada@contoso.com', rcptTo: ['bob@fabrikam.example'] });
  const parts: Buffer[] = [];
  for await (const chunk of handle.output) parts.push(chunk as Buffer);
  return { out: Buffer.concat(parts), result: await handle.result };
}

/** The first field of `out` (unfolded) and every byte after it. */
function firstField(out: Buffer): { field: string; rest: Buffer } {
  const text = out.toString('latin1');
  const m = /^[^\n]*\n(?:[ \t][^\n]*\n)*/.exec(text)!;
  return { field: m[0].replace(/\r?\n[ \t]/g, ' ').replace(/\r?\n$/, ''), rest: out.subarray(m[0].length) };
}

const CRLF = Buffer.from('From: Ada <ada@contoso.com>\r\nTo: bob@fabrikam.example\r\nSubject: Hi\r\n\r\nHello\r\n\r\nBye\r\n', 'latin1');

describe('pass-through engine', () => {
  it('adds the stamp the routing rule excepts on top and leaves every other byte as it was', async () => {
    for (const chunkSize of [CRLF.length, 7, 1]) {
      const { out, result } = await run(CRLF, chunkSize);
      const { field, rest } = firstField(out);
      expect(field).to.match(RULE_EXCEPTION);
      expect(field).to.match(/result=passed; reason=pass-through;\s+config=v7/);
      expect(out.toString('latin1')).to.match(/^X-Signet-Processed: [^\n]*\r\n( [^\n]*\r\n)*From: Ada/);
      expect(rest.equals(CRLF)).to.equal(true);
      expect(result).to.include({ outcome: 'passed', reason: 'pass-through', orgId: 'contoso', configVersion: 'v7', bytesIn: CRLF.length, bytesOut: out.length });
    }
  });

  it('writes the stamp with the message\'s own line ending, after an mbox From line', async () => {
    const lf = Buffer.from('From: ada@contoso.com\nSubject: Hi\n\nHello\n', 'latin1');
    const { out } = await run(lf, 5);
    expect(out.toString('latin1')).to.match(/^X-Signet-Processed: org=contoso; [^\r\n]*\n( [^\r\n]*\n)*From: ada@contoso\.com\nSubject: Hi\n\nHello\n$/);

    const mbox = Buffer.from('From ada@contoso.com Mon Nov 23 10:00:00 2026\r\nSubject: Hi\r\n\r\nHello\r\n', 'latin1');
    const out2 = (await run(mbox)).out;
    const fromLine = 'From ada@contoso.com Mon Nov 23 10:00:00 2026\r\n';
    expect(out2.toString('latin1', 0, fromLine.length)).to.equal(fromLine);
    const after = firstField(out2.subarray(fromLine.length));
    expect(after.field).to.match(RULE_EXCEPTION);
    expect(after.rest.toString('latin1')).to.equal('Subject: Hi\r\n\r\nHello\r\n');
  });

  it('leaves a message this organization already stamped unchanged, and stamps one another organization stamped', async () => {
    const ours = Buffer.concat([Buffer.from('X-Signet-Processed: org=contoso; result=signed; v=1\r\n'), CRLF]);
    const again = await run(ours, 3);
    expect(again.out.equals(ours)).to.equal(true);
    expect(again.result.reason).to.equal('already-processed');

    const theirs = Buffer.concat([Buffer.from('X-Signet-Processed: org=contoso-ltd; result=signed; v=1\r\n'), CRLF]);
    const stamped = await run(theirs);
    expect(stamped.out.toString('latin1')).to.match(/^X-Signet-Processed: org=contoso;/);
    expect(firstField(stamped.out).rest.equals(theirs)).to.equal(true);
  });

  it('stamps a message that is all headers, one that starts with its empty line, and one whose header block exceeds 1 MB', async () => {
    const headersOnly = Buffer.from('Subject: Hi\r\nTo: bob@fabrikam.example\r\n', 'latin1');
    const a = await run(headersOnly);
    expect(firstField(a.out).rest.equals(headersOnly)).to.equal(true);

    const noHeaders = Buffer.from('\r\nHello\r\n', 'latin1');
    const b = await run(noHeaders);
    expect(firstField(b.out).field).to.match(RULE_EXCEPTION);
    expect(firstField(b.out).rest.toString('latin1')).to.equal('\r\nHello\r\n');

    const huge = Buffer.concat([Buffer.from(`X-Filler: ${'a'.repeat(900)}\r\n`.repeat(1300)), CRLF]);
    const c = await run(huge, 64 * 1024);
    expect(c.out.toString('latin1', 0, 40)).to.match(/^X-Signet-Processed: org=contoso;/);
    expect(firstField(c.out).rest.equals(huge)).to.equal(true);
  });

  it('fails its result when the input fails', async () => {
    const input = new Readable({ read() {} });
    const handle = createPassThroughEngine('contoso', 'v7').process(input, { mailFrom: 'ada@contoso.com', rcptTo: [] });
    handle.output.resume();
    input.push(CRLF.subarray(0, 10));
    input.destroy(new Error('upstream dropped'));
    let failed: unknown;
    await handle.result.catch((error: unknown) => (failed = error));
    expect((failed as Error).message).to.equal('upstream dropped');
  });
});
