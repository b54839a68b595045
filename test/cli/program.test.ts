import { expect } from 'chai';
import { buildProgram } from '../../appliance/src/cli';
import { ENGINE_VERSION } from '../../appliance/src/version';

describe('signet command line', () => {
  it('reports the package version', async () => {
    let out = '';
    const program = buildProgram().exitOverride().configureOutput({ writeOut: (s) => (out += s) });
    try {
      await program.parseAsync(['node', 'signet', '--version']);
    } catch {
      // commander throws after printing the version when exitOverride is set
    }
    expect(out.trim()).to.equal(ENGINE_VERSION);
    expect(ENGINE_VERSION).to.match(/^\d+\.\d+\.\d+/);
  });
});
