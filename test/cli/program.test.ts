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

  it('loads only the command it is asked to run, and every command for help', () => {
    const names = (args: string[]) => buildProgram(args).commands.map((c) => c.name()).sort();
    expect(names(['serve', '--config', 'relay.yaml'])).to.deep.equal(['serve']);
    expect(names(['config', 'seal', 'DIR'])).to.deep.equal(['config', 'keys']);
    const all = names([]);
    expect(all).to.include.members(['config', 'connectors', 'dev', 'directory', 'explain', 'keys', 'preview', 'send-sample', 'serve', 'sign', 'status']);
    expect(names(['no-such-command'])).to.deep.equal(all);
  });

  it('a usage error is one line naming the command and its --help, with commander\'s hint, not the whole help', async () => {
    let err = '';
    const program = buildProgram(['sign']);
    for (const command of [program, ...program.commands]) command.exitOverride().configureOutput({ writeErr: (s) => (err += s) });
    await program.parseAsync(['node', 'signet', 'sign', '--org', 'x', '--from', 'a@b.example', '--frm', 'x']).catch(() => undefined);
    expect(err).to.equal("signet: unknown option '--frm' (did you mean --from?); see signet sign --help\n");
  });
});

