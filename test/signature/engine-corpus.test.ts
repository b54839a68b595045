// Every real-world message of the shared corpus through the whole engine with
// the example organization: nothing throws, the output parses with an
// independent reader, attachments decode to the same bytes, and the
// signature appears exactly once in each part the engine says it signed.
import { expect } from 'chai';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { simpleParser, type ParsedMail } from 'mailparser';
import { loadOrgFolder } from '../../appliance/src/config';
import { loadDirectoryFile } from '../../appliance/src/directory';
import { createEngine } from '../../appliance/src/signature';
import type { Engine, EngineResult } from '../../appliance/src/signature/types';

const CORPUS = process.env.SIGNET_CORPUS ?? path.resolve(__dirname, '../../../shared/corpus');
const ORG = path.resolve(__dirname, '../../config/examples/contoso');
const SENDER = 'tom.okafor@contoso.com';
const NAME = 'Tom Okafor';

function corpusFiles(): string[] {
  const files: string[] = [];
  for (const dir of readdirSync(CORPUS)) {
    const full = path.join(CORPUS, dir);
    if (!statSync(full).isDirectory()) continue;
    for (const f of readdirSync(full)) if (f.endsWith('.eml')) files.push(path.join(dir, f));
  }
  return files.sort();
}

async function runEngine(engine: Engine, message: Buffer): Promise<{ out: Buffer; result: EngineResult }> {
  const run = engine.process(Readable.from([message]), { mailFrom: SENDER, rcptTo: ['someone@fabrikam.example'] });
  const chunks: Buffer[] = [];
  for await (const chunk of run.output) chunks.push(chunk as Buffer);
  return { out: Buffer.concat(chunks), result: await run.result };
}

/** The message with the one stamp field the engine added (and its continuation lines) taken out. */
function withoutStamp(message: Buffer): string {
  return message.toString('latin1').replace(/^X-Signet-Processed: org=contoso;[^\n]*\n(?:[ \t][^\n]*\n)*/m, '');
}

const count = (haystack: string | false | undefined, needle: string): number => (haystack ? haystack.split(needle).length - 1 : 0);

function attachmentDigests(mail: ParsedMail): string[] {
  return mail.attachments.filter((a) => !(a.contentId ?? '').endsWith('@signet>')).map((a) => `${a.contentType} ${a.checksum} ${a.size}`).sort();
}

describe('engine over the real-world corpus', function () {
  this.timeout(180_000);
  let engine: Engine;

  before(async function () {
    if (!existsSync(CORPUS)) this.skip();
    const org = await loadOrgFolder(ORG);
    const directory = await loadDirectoryFile(path.join(ORG, 'directory.yaml'));
    engine = createEngine({ org, directory: () => directory, now: () => new Date('2026-11-23T12:00:00Z') });
  });

  for (const lineEndings of ['as stored', 'CRLF'] as const) {
    it(`signs or passes every corpus message (${lineEndings}) without losing or mangling anything`, async function () {
      const files = corpusFiles();
      expect(files.length).to.be.greaterThan(300);
      const outcomes: Record<string, number> = {};
      for (const file of files) {
        let input = readFileSync(path.join(CORPUS, file));
        if (lineEndings === 'CRLF') input = Buffer.from(input.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
        const { out, result } = await runEngine(engine, input);
        const key = result.outcome === 'signed' ? 'signed' : `passed:${result.reason}`;
        outcomes[key] = (outcomes[key] ?? 0) + 1;
        const [before, after] = await Promise.all([simpleParser(input), simpleParser(out)]);
        expect(attachmentDigests(after), `${file}: attachments`).to.deep.equal(attachmentDigests(before));
        if (result.outcome !== 'signed') {
          expect(withoutStamp(out), `${file}: a passed message is unchanged but for the stamp`).to.equal(input.toString('latin1'));
          continue;
        }
        for (const part of result.parts) {
          if (part.contentType === 'text/html') {
            expect(count(after.html, NAME) - count(before.html, NAME), `${file}: name once in the HTML`).to.equal(1);
          } else {
            expect(count(after.text, NAME) - count(before.text, NAME), `${file}: name once in the text`).to.equal(1);
          }
        }
      }
      expect(outcomes.signed ?? 0, JSON.stringify(outcomes)).to.be.greaterThan(files.length / 2);
    });
  }
});
