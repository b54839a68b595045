// Certificate authority and leaf certificates for development mode and tests:
// ECDSA P-256 keys from WebCrypto, certificates built with @peculiar/x509.
// Never used on the production mail path (production certificates come from
// files the operator provides).
// @peculiar/x509 needs a Reflect metadata polyfill (a development dependency:
// this module is loaded only by development mode and tests).
import 'reflect-metadata';
import { webcrypto, randomBytes } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as never);

type KeyPair = webcrypto.CryptoKeyPair;

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

export interface IssuedCertificate {
  /** PEM certificate. */
  cert: string;
  /** PEM PKCS#8 private key. */
  key: string;
  notAfter: Date;
}

export interface CertificateAuthority extends IssuedCertificate {
  name: string;
  /** Issue a leaf certificate signed by this CA. */
  issue(options: LeafOptions): Promise<IssuedCertificate>;
}

export interface LeafOptions {
  /** Subject common name. */
  commonName: string;
  /** DNS subjectAltNames (default: the common name). Pass [] for none. */
  dnsNames?: string[];
  /** IP subjectAltNames. */
  ipAddresses?: string[];
  /** serverAuth, clientAuth or both (default both). */
  usage?: Array<'server' | 'client'>;
  notBefore?: Date;
  notAfter?: Date;
}

async function exportKey(key: webcrypto.CryptoKey): Promise<string> {
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
}

async function newKeys(): Promise<KeyPair> {
  return (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as KeyPair;
}

function serial(): string {
  // positive, 16 bytes
  const bytes = randomBytes(16);
  bytes[0] = bytes[0] & 0x7f;
  return bytes.toString('hex');
}

/** A self-signed CA able to issue leaf certificates. */
export async function createCertificateAuthority(name: string, validity: { notBefore?: Date; notAfter?: Date } = {}): Promise<CertificateAuthority> {
  const keys = await newKeys();
  const notBefore = validity.notBefore ?? new Date(Date.now() - DAY_MS);
  const notAfter = validity.notAfter ?? new Date(Date.now() + 3650 * DAY_MS);
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${name}`,
    notBefore,
    notAfter,
    keys: keys as never,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as never),
    ],
  });
  const ca: CertificateAuthority = {
    name,
    cert: caCert.toString('pem'),
    key: await exportKey(keys.privateKey),
    notAfter,
    async issue(options: LeafOptions): Promise<IssuedCertificate> {
      const leafKeys = await newKeys();
      const leafNotAfter = options.notAfter ?? new Date(Date.now() + 825 * DAY_MS);
      const usage = options.usage ?? ['server', 'client'];
      const dnsNames = options.dnsNames ?? [options.commonName];
      const altNames: x509.JsonGeneralName[] = [
        ...dnsNames.map((value) => ({ type: 'dns' as const, value })),
        ...(options.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
      ];
      const extensions: x509.Extension[] = [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
        new x509.ExtendedKeyUsageExtension(
          usage.map((u) => (u === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth)),
          false,
        ),
        await x509.AuthorityKeyIdentifierExtension.create(keys.publicKey as never),
        await x509.SubjectKeyIdentifierExtension.create(leafKeys.publicKey as never),
      ];
      if (altNames.length) extensions.push(new x509.SubjectAlternativeNameExtension(altNames));
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: serial(),
        subject: `CN=${options.commonName}`,
        issuer: caCert.subject,
        notBefore: options.notBefore ?? new Date(Date.now() - DAY_MS),
        notAfter: leafNotAfter,
        publicKey: leafKeys.publicKey as never,
        signingKey: keys.privateKey as never,
        signingAlgorithm: ALGORITHM,
        extensions,
      });
      return { cert: leaf.toString('pem'), key: await exportKey(leafKeys.privateKey), notAfter: leafNotAfter };
    },
  };
  return ca;
}
