// Development certificates (npm start): generated on first start, reused while
// they can serve, generated again when a kept folder cannot (an older
// version's folder without a name the relay needs now, an expiring or edited
// certificate), so `npm start` keeps working on an old clone.
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { devCertificatesProblem, ensureDevCertificates } from '../../appliance/src/cli/commands/dev';
import { createCertificateAuthority } from '../../appliance/src/smtp/dev/certs';

const HOUR_MS = 60 * 60 * 1000;

/** A complete state folder from our own CA, with `relay-server` and `exo-client` as given. */
async function writeFolder(dir: string, options: { serverNames: string[]; exoNotAfter?: Date }): Promise<void> {
  const ca = await createCertificateAuthority('Test CA');
  const files: Record<string, string> = { 'ca.crt': ca.cert };
  const put = (name: string, c: { cert: string; key: string }) => Object.assign(files, { [`${name}.crt`]: c.cert, [`${name}.key`]: c.key });
  put('relay-server', await ca.issue({ commonName: 'localhost', dnsNames: options.serverNames, usage: ['server'] }));
  put('relay-client', await ca.issue({ commonName: 'signet-dev.contoso.com', usage: ['client'] }));
  put('exo-client', await ca.issue({ commonName: 'mail.protection.outlook.com', usage: ['client'], notAfter: options.exoNotAfter }));
  put('downstream', await ca.issue({ commonName: 'localhost', usage: ['server'] }));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
}

describe('development certificates (signet dev)', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'signet-dev-certs-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('generates them into an empty folder, keys private, then reuses them unchanged', async () => {
    expect(devCertificatesProblem(dir)).to.match(/^missing ca\.crt, relay-server\.crt/);
    expect(await ensureDevCertificates(dir)).to.equal('generated');
    expect(devCertificatesProblem(dir)).to.equal(undefined);
    expect(statSync(join(dir, 'relay-server.key')).mode & 0o777).to.equal(0o600);
    const before = readFileSync(join(dir, 'relay-server.crt'), 'utf8');
    expect(await ensureDevCertificates(dir)).to.equal('reused');
    expect(readFileSync(join(dir, 'relay-server.crt'), 'utf8')).to.equal(before);
  });

  it("generates them again when the relay's server certificate lacks the configured hostname (a folder from an older version)", async () => {
    await writeFolder(dir, { serverNames: ['localhost'] });
    expect(devCertificatesProblem(dir)).to.equal('relay-server.crt does not cover signet-dev.contoso.com');
    const old = readFileSync(join(dir, 'ca.crt'), 'utf8');
    expect(await ensureDevCertificates(dir)).to.equal('regenerated (relay-server.crt does not cover signet-dev.contoso.com)');
    expect(devCertificatesProblem(dir)).to.equal(undefined);
    expect(readFileSync(join(dir, 'ca.crt'), 'utf8')).to.not.equal(old);
  });

  it('reuses a complete folder that covers every name, and refuses one that expires within a day', async () => {
    await writeFolder(dir, { serverNames: ['localhost', 'signet-dev.contoso.com'] });
    expect(devCertificatesProblem(dir)).to.equal(undefined);
    await writeFolder(dir, { serverNames: ['localhost', 'signet-dev.contoso.com'], exoNotAfter: new Date(Date.now() + HOUR_MS) });
    expect(devCertificatesProblem(dir)).to.match(/^exo-client\.crt expires /);
    expect(await ensureDevCertificates(dir)).to.match(/^regenerated \(exo-client\.crt expires /);
    expect(devCertificatesProblem(dir)).to.equal(undefined);
  });

  it('generates them again when a key does not belong to its certificate, a certificate is from another CA, or a file is garbled', async () => {
    await ensureDevCertificates(dir);
    const exoKey = readFileSync(join(dir, 'exo-client.key'));
    writeFileSync(join(dir, 'exo-client.key'), readFileSync(join(dir, 'downstream.key')));
    expect(devCertificatesProblem(dir)).to.equal('exo-client.key does not belong to exo-client.crt');
    writeFileSync(join(dir, 'exo-client.key'), exoKey);
    const other = await (await createCertificateAuthority('Other CA')).issue({ commonName: 'localhost', usage: ['server'] });
    writeFileSync(join(dir, 'downstream.crt'), other.cert);
    expect(devCertificatesProblem(dir)).to.equal('downstream.crt is not issued by ca.crt');
    writeFileSync(join(dir, 'ca.crt'), 'not a certificate');
    expect(devCertificatesProblem(dir)).to.match(/^unreadable: /);
    expect(await ensureDevCertificates(dir)).to.match(/^regenerated \(unreadable: /);
    expect(devCertificatesProblem(dir)).to.equal(undefined);
  });
});
