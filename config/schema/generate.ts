// `npm run schema`: regenerates the JSON Schemas in this folder from the zod
// schemas of the organization config files and of the relay config file, so
// that editors validate YAML as it is typed. Tests keep them in sync.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { jsonSchemas } from '../../appliance/src/config';
import { relayConfigJsonSchema } from '../../appliance/src/smtp';

const files: Array<[string, string]> = [...jsonSchemas(), ['relay.schema.json', `${JSON.stringify(relayConfigJsonSchema(), null, 2)}\n`]];
for (const [name, text] of files) {
  writeFileSync(join(__dirname, name), text);
  process.stdout.write(`wrote config/schema/${name}\n`);
}
