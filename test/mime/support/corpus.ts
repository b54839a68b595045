// The shared corpus of real-world messages (SIGNET_CORPUS overrides where it is).
import { readdirSync, statSync } from 'node:fs';
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
