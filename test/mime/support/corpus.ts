// The shared corpus of real-world messages (SIGNET_CORPUS overrides where it is).
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

export const corpusDir = process.env.SIGNET_CORPUS ?? path.resolve(__dirname, '../../../../shared/corpus');

/** Every .eml file under `dir`, in a stable order; only those smaller than `maxBytes` when given. */
export function emlFiles(dir: string = corpusDir, maxBytes = Number.POSITIVE_INFINITY): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) return emlFiles(full, maxBytes);
      return name.endsWith('.eml') && statSync(full).size < maxBytes ? [full] : [];
    });
}

/** The message with every line ending made CRLF, as it travels over SMTP. */
export function toCrlf(buf: Buffer): Buffer {
  return Buffer.from(buf.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
}

/**
 * Inside a describe: one test per corpus message, as stored and in CRLF form,
 * each given the message's bytes; a single skipped test when the corpus is not
 * there. Returns the files, undefined when it is not there.
 */
export function itForEachCorpusMessage(test: (input: Buffer) => Promise<void>): string[] | undefined {
  if (!existsSync(corpusDir)) {
    it('corpus present', function () {
      this.skip();
    });
    return undefined;
  }
  const files = emlFiles(corpusDir);
  for (const file of files) {
    const name = path.relative(corpusDir, file);
    for (const form of ['as stored', 'CRLF'] as const) {
      it(`${name} (${form})`, async () => {
        const raw = readFileSync(file);
        await test(form === 'CRLF' ? toCrlf(raw) : raw);
      });
    }
  }
  return files;
}
