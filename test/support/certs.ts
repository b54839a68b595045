// A throw-away PKI for tests, generated per run (ECDSA P-256, @peculiar/x509):
// the CA Exchange Online's client certificate chains to, the relay's server
// and downstream-client certificates, the downstream's server certificate,
// and the bad cases (another CA, expired, wrong name). Reusable by any test.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCertificateAuthority, type CertificateAuthority, type IssuedCertificate } from '../../appliance/src/smtp/dev/certs';

export { createCertificateAuthority, type CertificateAuthority, type IssuedCertificate };

export interface TestPki {
  ca: CertificateAuthority;
  otherCa: CertificateAuthority;
  /** The relay's server certificate (relay.test.invalid, localhost, 127.0.0.1). */
  relayServer: IssuedCertificate;
  /** The relay's client certificate toward the downstream. */
  relayClient: IssuedCertificate;
  /** The downstream's server certificate (sink.test.invalid, localhost, 127.0.0.1). */
  sinkServer: IssuedCertificate;
  /** Exchange Online's client certificate: CN and SAN mail.protection.outlook.com. */
  exoClient: IssuedCertificate;
  /** Same name, issued by another CA. */
  otherCaClient: IssuedCertificate;
  /** Right CA, expired. */
  expiredClient: IssuedCertificate;
  /** Right CA, wrong name. */
  wrongNameClient: IssuedCertificate;
}

let cached: Promise<TestPki> | undefined;

/** One PKI per test process (generation takes a few milliseconds per certificate). */
export function testPki(): Promise<TestPki> {
  cached ??= (async () => {
    const ca = await createCertificateAuthority('Signet Test CA');
    const otherCa = await createCertificateAuthority('Some Other CA');
    const day = 86_400_000;
    return {
      ca,
      otherCa,
      relayServer: await ca.issue({ commonName: 'relay.test.invalid', dnsNames: ['relay.test.invalid', 'localhost'], ipAddresses: ['127.0.0.1', '::1'], usage: ['server'] }),
      relayClient: await ca.issue({ commonName: 'relay.test.invalid', usage: ['client'] }),
      sinkServer: await ca.issue({ commonName: 'sink.test.invalid', dnsNames: ['sink.test.invalid', 'localhost'], ipAddresses: ['127.0.0.1', '::1'], usage: ['server'] }),
      exoClient: await ca.issue({ commonName: 'mail.protection.outlook.com', usage: ['client'] }),
      otherCaClient: await otherCa.issue({ commonName: 'mail.protection.outlook.com', usage: ['client'] }),
      expiredClient: await ca.issue({ commonName: 'mail.protection.outlook.com', usage: ['client'], notBefore: new Date(Date.now() - 30 * day), notAfter: new Date(Date.now() - day) }),
      wrongNameClient: await ca.issue({ commonName: 'mail.example.net', usage: ['client'] }),
    };
  })();
  return cached;
}

/** Writes PEM files into a fresh temp folder; returns paths and a cleanup function. */
export function writePemFiles(files: Record<string, string>): { dir: string; path: (name: string) => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'signet-certs-'));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content, { mode: 0o600 });
  return { dir, path: (name) => join(dir, name), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
