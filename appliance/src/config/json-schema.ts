// JSON Schema versions of the file schemas, for editors (YAML language
// servers) to validate org folders as they are typed. `npm run schema` writes
// them to config/schema/; a test keeps the committed files in sync.
import { z } from 'zod';
import { FILE_SCHEMAS } from './schema';

/** File name → JSON text exactly as committed in config/schema/. */
export function jsonSchemas(): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, schema] of Object.entries(FILE_SCHEMAS)) {
    // io 'input': the YAML is the input side; keys with defaults are optional there.
    // Draft 7: the draft YAML language servers and JetBrains IDEs support best.
    const json = z.toJSONSchema(schema, { io: 'input', target: 'draft-7' });
    out.set(name, `${JSON.stringify(json, null, 2)}\n`);
  }
  return out;
}
