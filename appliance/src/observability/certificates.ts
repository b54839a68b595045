// Certificate facts for metrics: notAfter and subject of a PEM certificate
// (the first one of a chain file).
import { X509Certificate } from 'node:crypto';

export interface CertificateFacts {
  subject: string;
  notAfter: Date;
}

/** Subject CN (or the whole subject) and notAfter of the first certificate in a PEM. */
export function certificateFacts(pem: string | Buffer): CertificateFacts {
  const cert = new X509Certificate(pem);
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
  return { subject: cn ?? cert.subject.replace(/\n/g, ', '), notAfter: new Date(cert.validTo) };
}

/** Sets signet_certificate_expiry_timestamp_seconds for one role, replacing that role's previous series. */
export function recordCertificateExpiry(
  gauge: { remove(labels: Record<string, string>): void; set(labels: Record<string, string>, value: number): void },
  previous: Map<string, string>,
  role: string,
  facts: CertificateFacts,
): void {
  const before = previous.get(role);
  if (before !== undefined && before !== facts.subject) gauge.remove({ certificate: role, subject: before });
  previous.set(role, facts.subject);
  gauge.set({ certificate: role, subject: facts.subject }, Math.floor(facts.notAfter.getTime() / 1000));
}
