// A relay without Microsoft Graph reads its directory from a file: a changed
// file shows in the next signatures without a restart, and no message is lost
// or signed from a half-written file meanwhile. The org folder's own directory
// file is followed even when it is created after the relay started.
import { expect } from 'chai';
import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { send } from '../smtp/support/harness';
import { startInProcessNode, type InProcessNode } from './support/in-process-node';

const SENDER = 'tom.okafor@contoso.com';

function message(n: number): string {
  return `From: Tom <${SENDER}>\r\nTo: p@fabrikam.example\r\nSubject: Offer ${n}\r\nMessage-ID: <d${n}@contoso.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Message number ${n}</p></body></html>\r\n`;
}

/** Sends message n through the relay; resolves with what the sink received. */
async function sendAndRead({ pki, sink, node }: Pick<InProcessNode, 'pki' | 'sink' | 'node'>, n: number): Promise<string> {
  const result = await send(node.smtpPorts[0]!, pki.exoClient, { from: SENDER, raw: message(n) });
  expect(result.ok, result.response).to.equal(true);
  return sink.messages.at(-1)!.raw.toString('latin1');
}

describe('directory file changed while the relay runs', function () {
  this.timeout(60_000);

  it('signs with the new attributes after the next check, without a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'signet-dirfile-e2e-'));
    const org = join(dir, 'contoso');
    cpSync(resolve(__dirname, '../../config/examples/contoso'), org, { recursive: true });
    const file = join(dir, 'directory.yaml');
    const original = readFileSync(join(org, 'directory.yaml'), 'utf8');
    writeFileSync(file, original);
    // with the photos it names, relative to its folder
    cpSync(join(org, 'photos'), join(dir, 'photos'), { recursive: true });
    const { pki, sink, node, close } = await startInProcessNode({ source: org, pollSeconds: 1 }, { file });
    try {
      let n = 0;
      const sendOne = () => sendAndRead({ pki, sink, node }, n++);
      expect(await sendOne()).to.include('Account Executive');

      // a broken file is refused: the running directory keeps signing
      writeFileSync(file, original.replace('groups: [sales]', 'groups: [no-such-group]'));
      await new Promise((r) => setTimeout(r, 500));
      expect(await sendOne()).to.include('Account Executive');

      writeFileSync(join(dir, 'next.yaml'), original.replace('jobTitle: Account Executive', 'jobTitle: Head of Sales'));
      renameSync(join(dir, 'next.yaml'), file);
      let last = '';
      for (let i = 0; i < 50 && !last.includes('Head of Sales'); i++) {
        await new Promise((r) => setTimeout(r, 100));
        last = await sendOne();
      }
      expect(last).to.include('Head of Sales').and.not.include('Account Executive');
      expect(sink.messages).to.have.length(n);
    } finally {
      await close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it("follows the org folder's directory file when it is created after start", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'signet-dirfile-late-'));
    const org = join(dir, 'contoso');
    cpSync(resolve(__dirname, '../../config/examples/contoso'), org, { recursive: true });
    const directory = readFileSync(join(org, 'directory.yaml'), 'utf8');
    rmSync(join(org, 'directory.yaml'));
    const { pki, sink, node, close } = await startInProcessNode({ source: org, pollSeconds: 1 });
    try {
      let n = 0;
      const sendOne = () => sendAndRead({ pki, sink, node }, n++);
      // no directory yet: the sender is unknown and the message passes unsigned
      expect(await sendOne()).to.not.include('Account Executive');

      writeFileSync(join(dir, 'next.yaml'), directory);
      renameSync(join(dir, 'next.yaml'), join(org, 'directory.yaml'));
      let last = '';
      for (let i = 0; i < 50 && !last.includes('Account Executive'); i++) {
        await new Promise((r) => setTimeout(r, 100));
        last = await sendOne();
      }
      expect(last).to.include('Account Executive');
      expect(sink.messages).to.have.length(n);
    } finally {
      await close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
