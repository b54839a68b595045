// `npm start` (signet dev) and `npm run send-sample`, as a newcomer runs them:
// certificates generated on first start, the example organization, the sample
// message signed and visible over HTTP on loopback.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkRelayConfigFile } from '../../appliance/src/cli/commands/serve';
import { REPO_ROOT } from './support/relay-process';

function run(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/signet.js'), ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code, out }));
  });
}

describe('development mode (npm start, npm run send-sample)', function () {
  this.timeout(60_000);

  it('generates certificates, relays the sample through the example organization and shows the signed result', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'signet-dev-'));
    const dev = spawn(process.execPath, [join(REPO_ROOT, 'bin/signet.js'), 'dev', '--state-dir', stateDir, '--port', '0', '--http-port', '0', '--downstream-port', '0', '--messages-port', '0'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    dev.stdout.on('data', (d: Buffer) => (output += d.toString()));
    dev.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((r) => dev.once('exit', (code) => r(code)));
    try {
      for (let i = 0; i < 300 && !existsSync(join(stateDir, 'dev.json')); i++) await new Promise((r) => setTimeout(r, 100));
      expect(existsSync(join(stateDir, 'dev.json')), output).to.equal(true);
      expect(output).to.contain('DEVELOPMENT MODE');
      expect(output).to.contain('npm run send-sample');
      expect(existsSync(join(stateDir, 'exo-client.key'))).to.equal(true);
      const sent = await run(['send-sample', '--state-dir', stateDir]);
      expect(sent.code, sent.out).to.equal(0);
      expect(sent.out).to.match(/relay answered: 250 2\.6\.0/);
      const state = JSON.parse(readFileSync(join(stateDir, 'dev.json'), 'utf8')) as { messagesUrl: string; httpPort: number };
      const list = (await (await fetch(state.messagesUrl)).json()) as Array<{ url: string }>;
      expect(list).to.have.length(1);
      const eml = await (await fetch(new URL(list[0].url, state.messagesUrl))).text();
      expect(eml).to.match(/^X-Signet-Processed: org=contoso; result=signed;/);
      expect(eml).to.contain('Ingrid Halvorsen');
      expect((await fetch(`http://127.0.0.1:${state.httpPort}/readyz`)).status).to.equal(200);

      // config/relay.dev.yaml with these certificates passes `signet serve --check` (the server and downstream client certificates cover its hostname)
      const configDir = join(stateDir, 'config');
      mkdirSync(configDir);
      const devYaml = readFileSync(join(REPO_ROOT, 'config/relay.dev.yaml'), 'utf8').replaceAll('../.signet-dev/', `${stateDir}/`).replace('source: examples/contoso', `source: ${join(REPO_ROOT, 'config/examples/contoso')}`);
      writeFileSync(join(configDir, 'relay.dev.yaml'), devYaml);
      expect((await checkRelayConfigFile(join(configDir, 'relay.dev.yaml'))).problems).to.deep.equal([]);
    } finally {
      dev.kill('SIGTERM');
      await exited;
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
