import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import Ajv from 'ajv';
import { expect } from 'chai';
import { parse } from 'yaml';
import { jsonSchemas } from '../../appliance/src/config';
import { EXAMPLE_DIR, REPO_ROOT } from './helpers';

describe('organization config: JSON Schemas for editors', () => {
  it('config/schema/ holds exactly what `npm run schema` generates', async () => {
    const generated = jsonSchemas();
    expect([...generated.keys()].sort()).to.deep.equal(['addon.schema.json', 'directory.schema.json', 'org.schema.json', 'rules.schema.json', 'users.schema.json']);
    for (const [name, text] of generated) {
      const committed = await fs.readFile(path.join(REPO_ROOT, 'config/schema', name), 'utf8');
      expect(committed, `config/schema/${name} is stale: run npm run schema`).to.equal(text);
    }
  });

  it('the schemas are strict and documented', () => {
    const rules = JSON.parse(jsonSchemas().get('rules.schema.json')!);
    expect(rules.additionalProperties).to.equal(false);
    const rule = rules.properties.rules.items;
    expect(rule.additionalProperties).to.equal(false);
    expect(rule.required).to.deep.equal(['id']);
    expect(rule.properties.match.properties.kinds.items.enum).to.deep.equal(['new', 'reply', 'forward']);
    expect(rule.properties.template.description).to.match(/templates\/<id>\.html\.ejs/);
    const org = JSON.parse(jsonSchemas().get('org.schema.json')!);
    expect(org.required).to.deep.equal(['orgId', 'acceptedDomains']);
    expect(org.properties.options.properties.placeholder.default).to.equal('{{signature}}');
  });

  it('every example YAML file names its schema for the YAML language server', async () => {
    const yamlFiles = ['org.yaml', 'rules.yaml', 'users.yaml', 'directory.yaml', 'addons/legal-disclaimer.yaml', 'addons/winter-campaign.yaml'];
    for (const file of yamlFiles) {
      const first = (await fs.readFile(path.join(EXAMPLE_DIR, file), 'utf8')).split('\n')[0];
      const match = /^# yaml-language-server: \$schema=(\S+)$/.exec(first);
      expect(match, `${file} starts with the $schema comment`).to.not.equal(null);
      const target = path.resolve(path.dirname(path.join(EXAMPLE_DIR, file)), match![1]);
      const expected = file.startsWith('addons/') ? 'addon.schema.json' : file.replace('.yaml', '.schema.json');
      expect(path.basename(target)).to.equal(expected);
      await fs.access(target);
    }
  });

  // An independent JSON Schema validator, as an editor's YAML language server would run it.
  describe('validated by ajv as an editor would', () => {
    const ajv = new Ajv({ allErrors: true, strict: false });
    const validate = (schema: string, data: unknown) => {
      const check = ajv.compile(JSON.parse(jsonSchemas().get(schema)!));
      return { ok: check(data) as boolean, errors: check.errors ?? [] };
    };
    const example = async (file: string) => parse(await fs.readFile(path.join(EXAMPLE_DIR, file), 'utf8'));

    it('accepts every example file', async () => {
      const pairs: Array<[string, string]> = [
        ['org.yaml', 'org.schema.json'],
        ['rules.yaml', 'rules.schema.json'],
        ['users.yaml', 'users.schema.json'],
        ['directory.yaml', 'directory.schema.json'],
        ['addons/legal-disclaimer.yaml', 'addon.schema.json'],
        ['addons/winter-campaign.yaml', 'addon.schema.json'],
      ];
      for (const [file, schema] of pairs) {
        const result = validate(schema, await example(file));
        expect(result.errors, file).to.deep.equal([]);
        expect(result.ok, file).to.equal(true);
      }
    });

    it('flags an unknown key, a bad enum value and a malformed address as the loader does', async () => {
      const rules = await example('rules.yaml');
      rules.rules[0].match.kind = ['new'];
      rules.rules[1].match.direction = 'outbound';
      rules.rules[2].match.senders = ['ceo@@contoso.com'];
      const result = validate('rules.schema.json', rules);
      expect(result.ok).to.equal(false);
      const where = result.errors.map((e) => `${e.instancePath} ${e.keyword}`);
      expect(where).to.include.members(['/rules/0/match additionalProperties', '/rules/1/match/direction enum', '/rules/2/match/senders/0 pattern']);
    });
  });
});
