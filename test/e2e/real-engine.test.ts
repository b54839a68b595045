// The relay with the real engine and the example organization, in process:
// what the downstream receives is exactly what the engine produces for the
// message the relay received (the relay adds and loses nothing), for
// real-world messages from the corpus; and a new organization config version
// is swapped in without a restart.
import { expect } from 'chai';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { loadOrgFolder } from '../../appliance/src/config';
import { loadDirectoryFile } from '../../appliance/src/directory';
import { createEngine } from '../../appliance/src/signature';
import { send, startHarness } from '../smtp/support/harness';
import { startInProcessNode } from './support/in-process-node';
import { EXAMPLE_ORG } from './support/relay-process';

const CORPUS = process.env.SIGNET_CORPUS ?? resolve(__dirname, '../../../shared/corpus');
const SENDER = 'tom.okafor@contoso.com';

/** SMTP carries CRLF lines: the form in which the relay receives a message. */
function asSmtp(raw: Buffer): Buffer {
  return Buffer.from(raw.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
}

async function engineOutput(engine: ReturnType<typeof createEngine>, input: Buffer, rcptTo: string[]): Promise<Buffer> {
  const run = engine.process(Readable.from([input]), { mailFrom: SENDER, rcptTo });
  const chunks: Buffer[] = [];
  for await (const chunk of run.output) chunks.push(chunk as Buffer);
  await run.result;
  return Buffer.concat(chunks);
}

describe('relay with the real engine and the example organization', function () {
  this.timeout(60_000);

  it('delivers exactly the engine output for real-world messages', async function () {
    const manifest = join(CORPUS, 'MANIFEST.tsv');
    if (!existsSync(manifest)) this.skip(); // corpus absent: set SIGNET_CORPUS
    const files = readFileSync(manifest, 'utf8')
      .split('\n')
      .slice(1)
      .filter((l) => l && !/mbox 'From ' line|malformed/.test(l))
      .map((l) => l.split('\t')[0])
      .slice(0, 12);
    const org = await loadOrgFolder(EXAMPLE_ORG);
    const directory = await loadDirectoryFile(join(EXAMPLE_ORG, 'directory.yaml'));
    const now = new Date('2026-11-23T12:00:00Z');
    const engine = createEngine({ org, directory: () => directory, now: () => now });
    const h = await startHarness({ engine, acceptedDomains: org.acceptedDomains });
    try {
      for (const [i, file] of files.entries()) {
        const input = asSmtp(readFileSync(join(CORPUS, file)));
        const to = [`partner${i}@fabrikam.example`];
        const result = await send(h.port, h.pki.exoClient, { from: SENDER, to, raw: input });
        expect(result.ok, `${file}: ${result.response}`).to.equal(true);
        const delivered = h.sink.messages[h.sink.messages.length - 1].raw;
        const expected = await engineOutput(engine, input, to);
        const normalized = expected.subarray(expected.length - 2).toString() === '\r\n' ? expected : Buffer.concat([expected, Buffer.from('\r\n')]);
        // the engine draws fresh MIME boundaries for the parts it creates; everything else must match byte for byte
        const stable = (b: Buffer) => b.toString('latin1').replace(/=_Signet_[0-9a-f]+/g, '=_Signet_X');
        expect(stable(delivered) === stable(normalized), `${file}: delivered bytes differ from the engine's output`).to.equal(true);
      }
      expect(h.sink.messages).to.have.length(files.length);
    } finally {
      await h.close();
    }
  });

  it('swaps in a new organization config version without a restart', async () => {
    const orgDir = mkdtempSync(join(tmpdir(), 'signet-org-'));
    cpSync(EXAMPLE_ORG, orgDir, { recursive: true });
    const { pki, sink, node, close } = await startInProcessNode({ source: orgDir, pollSeconds: 1 });
    try {
      const message = (subject: string) => `From: Tom <${SENDER}>\r\nTo: p@fabrikam.example\r\nSubject: ${subject}\r\nMessage-ID: <${subject}@contoso.com>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello.\r\n`;
      expect((await send(node.smtpPorts[0], pki.exoClient, { from: SENDER, raw: message('before') })).ok).to.equal(true);
      expect(sink.messages[0].raw.toString()).not.to.contain('SWAPPED-IN');
      // a new version: every template changed
      for (const template of readdirSync(join(orgDir, 'templates')).filter((f) => f.endsWith('.ejs'))) {
        const path = join(orgDir, 'templates', template);
        writeFileSync(path, `${readFileSync(path, 'utf8')}${template.endsWith('.html.ejs') ? '<p>SWAPPED-IN</p>' : '\nSWAPPED-IN'}\n`);
      }
      let delivered = '';
      for (let i = 0; i < 100 && !delivered.includes('SWAPPED-IN'); i++) {
        await new Promise((r) => setTimeout(r, 100));
        const r = await send(node.smtpPorts[0], pki.exoClient, { from: SENDER, raw: message(`after${i}`) });
        expect(r.ok, r.response).to.equal(true);
        delivered = sink.messages[sink.messages.length - 1].raw.toString();
      }
      expect(delivered).to.contain('SWAPPED-IN');
    } finally {
      await close();
      rmSync(orgDir, { recursive: true, force: true });
    }
  });
});
