// Regenerates config/schema/relay.schema.json from the relay config schema:
// `node --import tsx appliance/src/smtp/write-relay-schema.ts` (a test keeps it in sync).
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { relayConfigJsonSchema } from './config';

const file = resolve(__dirname, '../../../config/schema/relay.schema.json');
writeFileSync(file, `${JSON.stringify(relayConfigJsonSchema(), null, 2)}\n`);
process.stdout.write(`wrote ${file}\n`);
