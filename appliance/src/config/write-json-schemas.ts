// `npm run schema`: regenerates config/schema/*.schema.json from the zod schemas.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { jsonSchemas } from './json-schema';

async function main(): Promise<void> {
  const outDir = path.resolve(__dirname, '../../../config/schema');
  await fs.mkdir(outDir, { recursive: true });
  for (const [name, text] of jsonSchemas()) {
    await fs.writeFile(path.join(outDir, name), text);
    process.stdout.write(`wrote config/schema/${name}\n`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exitCode = 1;
});
