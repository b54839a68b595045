// Certificate and key files that are replaced on disk while the relay runs
// (rotation by the operator or by cloud-init/Key Vault sync). Watched with
// fs.watch on their folders (files are usually replaced by rename, which a
// watch on the file itself misses) and re-checked by a periodic stat as a
// backstop (fs.watch is best effort, e.g. on network filesystems). A changed
// set is read and validated as a whole before it replaces the running one; a
// broken set is refused and the running one stays.
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { isIP } from 'node:net';
import { dirname } from 'node:path';
import { createSecureContext } from 'node:tls';

export interface TlsFileSet {
  /** Contents by path. */
  files: Map<string, Buffer>;
}

function fingerprint(paths: readonly string[]): string {
  return paths
    .map((p) => {
      try {
        const s = statSync(p);
        return `${p}:${s.ino}:${s.size}:${s.mtimeMs}`;
      } catch {
        return `${p}:missing`;
      }
    })
    .join('|');
}

export function readTlsFiles(paths: readonly string[]): TlsFileSet {
  return { files: new Map(paths.map((p) => [p, readFileSync(p)])) };
}

/** Throws if key and certificate do not form a usable TLS identity. */
export function validateIdentity(key: Buffer, cert: Buffer, ca?: Buffer[]): void {
  createSecureContext({ key, cert, ca });
}

const CERTIFICATE_BEGIN = /-----BEGIN CERTIFICATE-----/g;
const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * The certificates of a PEM bundle, every one whole and parsed; throws otherwise.
 * Node's `ca` option silently skips what it cannot read, so an empty, truncated
 * (caught mid-write) or garbled CA bundle would load, and every client
 * certificate would then be refused as untrusted.
 */
export function pemCertificates(pem: Buffer): X509Certificate[] {
  const text = pem.toString('latin1');
  const blocks = text.match(CERTIFICATE_BLOCK) ?? [];
  const begun = text.match(CERTIFICATE_BEGIN)?.length ?? 0;
  if (begun === 0) throw new Error('no PEM certificate in it (-----BEGIN CERTIFICATE-----)');
  if (blocks.length !== begun) throw new Error(`certificate ${blocks.length + 1} in it is incomplete (no -----END CERTIFICATE----- line: cut short or still being written?)`);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (error) {
      throw new Error(`certificate ${i + 1} in it does not parse (${(error as Error).message})`, { cause: error });
    }
  });
}

/** A PEM file and where it came from (so a refusal names it). */
export interface PemFile {
  path: string;
  pem: Buffer;
}

/**
 * How far a certificate's notBefore may lie ahead of this node's clock. A CA
 * whose clock runs slightly ahead issues certificates that start "in the
 * future" by that much; refusing one issued moments ago would fail a routine
 * rotation. Minutes, not hours: a certificate dated further ahead is one that
 * peers refuse too (or a node clock that is wrong, which NTP must fix).
 */
export const CLOCK_SKEW_MS = 5 * 60_000;

/** Which of the node's identities a certificate is: toward Exchange Online's outbound side, or toward its inbound connector. */
export type CertificateRole = 'server' | 'downstream-client';

/** What a certificate that does not name the certificate domain breaks, beyond the name itself. */
const UNCOVERED_HOSTNAME: Record<CertificateRole, string> = {
  server: '',
  // the connector defers (451) every message the node hands back with it, until someone notices
  'downstream-client': "; Exchange Online's inbound connector (TlsSenderCertificateName) would refuse every message the node hands back with it",
};

/**
 * Why `certificate` does not cover `hostname`, or undefined when it does. The name is matched as
 * TLS peers match it (a subjectAltName, or the subject CN when there is none; `*.` covers one label).
 */
export function hostnameProblem(certificate: X509Certificate, hostname: string, role: CertificateRole): string | undefined {
  if (isIP(hostname) ? certificate.checkIP(hostname) : certificate.checkHost(hostname)) return undefined;
  return `the certificate does not cover hostname "${hostname}" (it names ${certificate.subjectAltName ?? certificate.subject.replace(/\n/g, ', ')})${UNCOVERED_HOSTNAME[role]}`;
}

export interface TlsMaterialCheck {
  /** The clock to judge validity by (default: now). */
  now?: Date;
  /**
   * Refuse a certificate that has already expired (on a reload: a replacement older than the
   * running one). At start an expired one is let through: the node comes up, and its expiry
   * shows in /metrics and the alerts, rather than a node that does not start.
   */
  refuseExpired?: boolean;
  /**
   * The name the certificate must cover: the relay's `hostname`, its certificate domain, which
   * clients connect to (the server certificate) and the inbound connector's
   * TlsSenderCertificateName names (the downstream client certificate).
   */
  hostname?: { name: string; role: CertificateRole };
}

/**
 * Throws, naming the files, unless every CA bundle holds whole certificates,
 * the certificate and key form a usable TLS identity, every certificate of the
 * chain is already valid (give or take CLOCK_SKEW_MS) and, with `hostname`, the
 * certificate covers that name; with `refuseExpired`, unless it has not expired.
 */
export function checkTlsMaterial(material: { cert: PemFile; key: PemFile; ca?: PemFile[] }, options: TlsMaterialCheck = {}): void {
  for (const ca of material.ca ?? []) {
    try {
      pemCertificates(ca.pem);
    } catch (error) {
      throw new Error(`${ca.path}: ${(error as Error).message}`, { cause: error });
    }
  }
  try {
    validateIdentity(material.key.pem, material.cert.pem, material.ca?.map((c) => c.pem));
  } catch (error) {
    throw new Error(`${material.cert.path} with ${material.key.path}: not a usable TLS identity (${(error as Error).message})`, { cause: error });
  }
  const now = options.now ?? new Date();
  let chain: X509Certificate[];
  try {
    chain = pemCertificates(material.cert.pem);
  } catch (error) {
    throw new Error(`${material.cert.path}: ${(error as Error).message}`, { cause: error });
  }
  chain.forEach((certificate, i) => {
    const which = i === 0 ? 'the certificate' : `certificate ${i + 1} of the chain`;
    const notBefore = new Date(certificate.validFrom);
    if (notBefore.getTime() - now.getTime() > CLOCK_SKEW_MS) {
      throw new Error(`${material.cert.path}: ${which} is not valid before ${notBefore.toISOString()} (this node's clock says ${now.toISOString()})`);
    }
  });
  const leaf = chain[0]!;
  if (options.refuseExpired) {
    const notAfter = new Date(leaf.validTo);
    if (now > notAfter) throw new Error(`${material.cert.path}: the certificate expired on ${notAfter.toISOString()}`);
  }
  const uncovered = options.hostname && hostnameProblem(leaf, options.hostname.name, options.hostname.role);
  if (uncovered) throw new Error(`${material.cert.path}: ${uncovered}`);
}

export interface TlsWatcher {
  close(): void;
  /** Re-check now (what the timer does). */
  check(): void;
}

/**
 * Calls `apply` with the new contents whenever any of `paths` changes.
 * `apply` validates; if it throws, `onError` is told and the next change is awaited.
 */
export function watchTlsFiles(paths: readonly string[], intervalMs: number, apply: (set: TlsFileSet) => void, onError: (error: Error) => void): TlsWatcher {
  let last = fingerprint(paths);
  let debounce: NodeJS.Timeout | undefined;
  const check = () => {
    const now = fingerprint(paths);
    if (now === last) return;
    try {
      apply(readTlsFiles(paths));
      last = now;
    } catch (error) {
      // remember it so a broken file is reported once, and retried when it changes again
      last = now;
      onError(error as Error);
    }
  };
  const watchers: FSWatcher[] = [];
  for (const dir of new Set(paths.map((p) => dirname(p)))) {
    try {
      const w = watch(dir, () => {
        // a rotation writes several files; wait for the set to settle
        if (debounce) clearTimeout(debounce);
        debounce = setTimeout(check, 200);
        debounce.unref();
      });
      w.on('error', () => undefined);
      w.unref();
      watchers.push(w);
    } catch {
      // unwatchable folder: the periodic check still covers it
    }
  }
  const timer = setInterval(check, intervalMs);
  timer.unref();
  return {
    check,
    close() {
      clearInterval(timer);
      if (debounce) clearTimeout(debounce);
      for (const w of watchers) w.close();
    },
  };
}
