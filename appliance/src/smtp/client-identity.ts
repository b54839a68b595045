// Who is on the other end of an inbound TLS session: the chain verdict from
// OpenSSL (against the configured CA bundle) and the names the client
// certificate carries, checked against the accepted names.
import type { PeerCertificate, TLSSocket } from 'node:tls';

export const CLIENT_CERT_REASONS = ['no-certificate', 'untrusted', 'expired', 'not-yet-valid', 'name-mismatch', 'invalid'] as const;
export type ClientCertReason = (typeof CLIENT_CERT_REASONS)[number];

export interface ClientIdentity {
  ok: boolean;
  reason?: ClientCertReason;
  /** Subject CN (for metrics labels; a host name, never a person). */
  commonName?: string;
  dnsNames: string[];
  notAfter?: Date;
}

/** DNS names in a peer certificate's subjectAltName string ("DNS:a, DNS:b, IP Address:..."). */
export function dnsNamesOf(cert: PeerCertificate): string[] {
  if (!cert.subjectaltname) return [];
  return cert.subjectaltname
    .split(/,\s*/)
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => entry.slice(4).toLowerCase());
}

/**
 * Does a certificate name satisfy an accepted pattern? A pattern is an exact
 * host name, or `*.example.com` meaning exactly one more label. A wildcard in
 * the certificate itself only matches the identical pattern: the client's
 * certificate names who it is, it does not get to claim a family of names.
 */
export function nameMatches(certName: string, pattern: string): boolean {
  const name = certName.toLowerCase().replace(/\.$/, '');
  const p = pattern.toLowerCase().replace(/\.$/, '');
  if (name === p) return true;
  // any '*' in the certificate's name (also a partial label like `a*.example.com`) is a wildcard claim
  if (p.startsWith('*.') && !name.includes('*')) {
    const suffix = p.slice(1); // ".example.com"
    return name.endsWith(suffix) && !name.slice(0, -suffix.length).includes('.') && name.length > suffix.length;
  }
  return false;
}

function reasonFor(authorizationError: Error | string | null | undefined): ClientCertReason {
  const code = String((authorizationError as { code?: string } | undefined)?.code ?? authorizationError ?? '');
  if (/CERT_HAS_EXPIRED/.test(code)) return 'expired';
  if (/CERT_NOT_YET_VALID/.test(code)) return 'not-yet-valid';
  if (/UNABLE_TO_GET_ISSUER|UNABLE_TO_VERIFY|SELF_SIGNED|CERT_UNTRUSTED|CERT_SIGNATURE_FAILURE|CERT_CHAIN_TOO_LONG/.test(code)) return 'untrusted';
  return 'invalid';
}

/** Checks a TLS socket that asked for a client certificate (requestCert, chain verified by OpenSSL). */
export function checkClientIdentity(socket: TLSSocket, acceptedNames: readonly string[]): ClientIdentity {
  const cert = socket.getPeerCertificate();
  if (!cert || !cert.raw) return { ok: false, reason: 'no-certificate', dnsNames: [] };
  const commonName = typeof cert.subject?.CN === 'string' ? cert.subject.CN : Array.isArray(cert.subject?.CN) ? cert.subject.CN[0] : undefined;
  const dnsNames = dnsNamesOf(cert);
  const notAfter = cert.valid_to ? new Date(cert.valid_to) : undefined;
  const base = { commonName, dnsNames, notAfter };
  if (!socket.authorized) return { ok: false, reason: reasonFor(socket.authorizationError), ...base };
  const names = [...dnsNames, ...(commonName ? [commonName] : [])];
  const matched = names.some((name) => acceptedNames.some((pattern) => nameMatches(name, pattern)));
  return matched ? { ok: true, ...base } : { ok: false, reason: 'name-mismatch', ...base };
}
