import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { sendSampleError } from '../../appliance/src/cli/commands/dev';
import { formatCliError } from '../../appliance/src/cli/errors';

const ROOT = resolve(__dirname, '../..');

function signet(args: string[]) {
  return spawnSync(process.execPath, [join(ROOT, 'bin/signet.js'), ...args], { cwd: ROOT, encoding: 'utf8' });
}

/** A loopback port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

describe('signet: one-line errors a newcomer can act on', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'signet-cli-errors-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('serve: a fatal start-up error goes to the journal scrubbed as the logs are', () => {
    const config = join(dir, 'tom.okafor@contoso.com', 'relay.yaml');
    const run = signet(['serve', '--config', config]);
    expect(run.status).to.not.equal(0);
    expect(run.stderr).to.include('<address>').and.not.include('tom.okafor');
    // the other commands answer the person at the terminal, with what they typed
    const validate = signet(['config', 'validate', join(dir, 'tom.okafor@contoso.com')]);
    expect(validate.stdout + validate.stderr).to.include('tom.okafor@contoso.com');
  });

  it("turns Node's file errors into the file and plain words, and leaves other messages alone", () => {
    let missing: unknown;
    try {
      readFileSync(join(dir, 'nope.bundle'));
    } catch (error) {
      missing = error;
    }
    expect(formatCliError(missing)).to.equal(`${join(dir, 'nope.bundle')}: no such file or directory`);
    expect(formatCliError(new Error('--to: give at least one recipient'))).to.equal('--to: give at least one recipient');
    const ours = Object.assign(new Error('cannot read key file k: ENOENT'), { code: 'ENOENT', path: 'k' });
    expect(formatCliError(ours)).to.equal('cannot read key file k: ENOENT');
    expect(formatCliError('plain')).to.equal('plain');
  });

  it('a missing bundle and an existing key file are named, not reported as ENOENT/EEXIST', () => {
    const inspect = signet(['config', 'inspect', join(dir, 'nope.bundle')]);
    expect(inspect.status).to.equal(2);
    expect(inspect.stderr).to.equal(`signet: ${join(dir, 'nope.bundle')}: no such file or directory\n`);

    const key = join(dir, 'org.key');
    expect(signet(['keys', 'create-local', key]).status).to.equal(0);
    const again = signet(['keys', 'create-local', key]);
    expect(again.status).to.equal(2);
    expect(again.stderr).to.equal(`signet: ${key}: already exists (not overwritten)\n`);
  });

  it('send-sample without a running development relay says to start one', async () => {
    // what a stopped `npm start` leaves behind: its state, pointing at a port nobody listens on
    const state = join(dir, 'dev-state');
    const port = await closedPort();
    mkdirSync(state);
    writeFileSync(join(state, 'dev.json'), JSON.stringify({ smtpPort: port, httpPort: 1, messagesUrl: 'http://127.0.0.1:1/messages' }));
    for (const f of ['exo-client.key', 'exo-client.crt', 'ca.crt']) writeFileSync(join(state, f), 'not used before the connection');
    const run = signet(['send-sample', '--state-dir', state]);
    expect(run.status).to.equal(2);
    expect(run.stderr).to.equal(`signet: no development relay answers on 127.0.0.1:${port}: start it with \`npm start\` (in another terminal) and keep it running\n`);
  });

  it("send-sample gives the relay's refusal, with a hint for a sender outside the organization", () => {
    const refused = Object.assign(new Error('Mail command failed: 550 5.7.1 Sender domain not accepted by this relay'), {
      code: 'EENVELOPE',
      command: 'MAIL FROM',
      responseCode: 550,
      response: '550 5.7.1 Sender domain not accepted by this relay',
    });
    expect(sendSampleError(refused, 2525)).to.equal(
      'the relay refused the sample: 550 5.7.1 Sender domain not accepted by this relay (--from must be in an accepted domain of the organization the relay runs)',
    );
    const full = Object.assign(new Error('Data command failed: 452 4.5.3 Too many recipients'), { responseCode: 452, response: '452 4.5.3 Too many recipients' });
    expect(sendSampleError(full, 2525)).to.equal('the relay refused the sample: 452 4.5.3 Too many recipients');
  });
});
