// Whatever an administrator (or a damaged bundle) puts in a file, the loader
// answers with a ConfigError whose issues name an existing file and a line in
// it, never with a crash.
import { expect } from 'chai';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { ConfigError, loadOrgFromFiles } from '../../appliance/src/config';
import { exampleFiles, withFile } from './helpers';

function check(files: Map<string, Buffer>): void {
  try {
    loadOrgFromFiles(files, { version: 'fuzz', label: 'fuzz' });
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    for (const issue of (error as ConfigError).issues) {
      expect(issue.message).to.be.a('string').and.not.equal('');
      expect(issue.path).to.be.a('string');
      if (issue.line !== undefined) {
        const text = files.get(issue.file);
        expect(text, `issue names a file that exists: ${issue.file}`).to.not.equal(undefined);
        expect(issue.line).to.be.within(1, text!.toString('latin1').split('\n').length + 1);
      }
    }
  }
}

describe('organization config: robustness', function () {
  this.timeout(120_000);
  const targets = ['org.yaml', 'rules.yaml', 'users.yaml', 'addons/winter-campaign.yaml'];

  it('any YAML value in any file gives issues with lines, never a crash', async () => {
    const files = await exampleFiles();
    fc.assert(
      fc.property(fc.constantFrom(...targets), fc.anything({ maxDepth: 4, withNullPrototype: false }), (file, value) => {
        check(withFile(files, file, stringify(value) ?? ''));
      }),
      { numRuns: Number(process.env.SIGNET_PROPERTY_RUNS ?? 150) },
    );
  });

  it('rules with random field values (right keys, wrong shapes) are all reported', async () => {
    const files = await exampleFiles();
    const value = fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 6 }), fc.string(), { maxKeys: 2 }));
    const rule = fc.record(
      {
        id: value,
        template: value,
        addons: value,
        match: fc.oneof(value, fc.record({ senders: value, kinds: value, from: value, until: value }, { requiredKeys: [] })),
        except: value,
        noSignature: value,
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.array(rule, { maxLength: 5 }), (rules) => {
        check(withFile(files, 'rules.yaml', stringify({ rules })));
      }),
      { numRuns: Number(process.env.SIGNET_PROPERTY_RUNS ?? 150) },
    );
  });

  it('arbitrary bytes in templates and YAML files', async () => {
    const files = await exampleFiles();
    fc.assert(
      fc.property(fc.constantFrom(...targets, 'templates/default.html.ejs'), fc.uint8Array({ maxLength: 300 }), (file, bytes) => {
        check(withFile(files, file, Buffer.from(bytes)));
      }),
      { numRuns: Number(process.env.SIGNET_PROPERTY_RUNS ?? 150) },
    );
  });

  it('an alias with no anchor is reported as a YAML problem of its file (found by the property above)', async () => {
    const files = await exampleFiles();
    for (const source of ['*x', '*\u0000', 'orgId: *id']) {
      let thrown: unknown;
      try {
        loadOrgFromFiles(withFile(files, 'org.yaml', source), { version: 't', label: 't' });
      } catch (error) {
        thrown = error;
      }
      expect(thrown, source).to.be.instanceOf(ConfigError);
      expect((thrown as ConfigError).issues.some((i) => i.file === 'org.yaml' && /YAML/.test(i.message)), source).to.equal(true);
    }
  });
});

