// `npm run schema` (with the org config schemas): regenerates config/schema/relay.schema.json.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { relayConfigJsonSchema } from './config';

const file = resolve(__dirname, '../../../config/schema/relay.schema.json');
writeFileSync(file, `${JSON.stringify(relayConfigJsonSchema(), null, 2)}\n`);
process.stdout.write('wrote config/schema/relay.schema.json\n');
