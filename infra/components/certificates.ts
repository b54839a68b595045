// The registry of nodes allowed to deliver for this tenant: one certificate
// per node for the tenant's certificate domain (the name Exchange Online's
// inbound connector checks), also naming the smart host and the node itself.
// Grafana's Front Door origin (the monitoring VM's nginx) gets the operator's
// imported public certificate, in either mode: Front Door trusts only public
// CAs on an origin, so the development CA never issues one.
//
// selfSigned (development): a CA and node certificates from @pulumi/tls, stored
//   in the vault as PEM secrets. Exchange Online will not trust them.
// imported (production): the runbook imports each node's public-CA certificate
//   into the vault secret named in config; the stack reads the public part
//   from a file to publish the thumbprint and expiry.
import * as pulumi from '@pulumi/pulumi';
import * as keyvault from '@pulumi/azure-native/keyvault';
import * as tls from '@pulumi/tls';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { logicalName, type TenantContext } from './naming';
import { grafanaFrontDoorOrigin, smartHostOf } from '../config';

export interface NodeCertificate {
  /** Key Vault secret holding the PEM chain and private key. */
  secretName: string;
  /** SHA-1 of the DER certificate, upper-case hex without separators: what Exchange and Windows show. */
  thumbprint: pulumi.Output<string>;
  /** notAfter, ISO 8601. */
  expiresAt: pulumi.Output<string>;
  /** Public certificate (PEM), safe to publish. */
  certificatePem: pulumi.Output<string>;
}

export interface CertificateFacts { thumbprint: string; expiresAt: string; subject: string; dnsNames: string[] }

/** Thumbprint and expiry of the first certificate in a PEM text. */
export function certificateFacts(pem: string): CertificateFacts {
  const cert = new X509Certificate(pem);
  return {
    thumbprint: cert.fingerprint.replaceAll(':', '').toUpperCase(),
    expiresAt: new Date(cert.validTo).toISOString(),
    subject: cert.subject,
    dnsNames: (cert.subjectAltName ?? '').split(',').map((s) => s.trim()).filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4)),
  };
}

/** Whether a certificate's DNS names cover a host name: exactly, or by a wildcard for its leftmost label (RFC 6125). */
export function certificateNames(dnsNames: string[], host: string): boolean {
  const name = host.toLowerCase();
  return dnsNames.some((dns) => {
    const d = dns.toLowerCase();
    if (d === name) return true;
    if (!d.startsWith('*.')) return false;
    const dot = name.indexOf('.');
    return dot > 0 && name.slice(dot + 1) === d.slice(2);
  });
}

export interface NodeCertificatesArgs {
  ctx: TenantContext;
  resourceGroupName: pulumi.Input<string>;
  vaultName: pulumi.Input<string>;
  /** Public FQDN of each node (its DNS label), one per node. */
  nodeFqdns: pulumi.Input<string>[];
  /** Base directory for relative certificate file paths (the project root). */
  baseDir: string;
}

/** Reads an operator-supplied public certificate (PEM), naming the file if it cannot. */
function readCertificateFile(key: string, what: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new pulumi.RunError(`signet:${key}: cannot read ${what} ${file}: ${(error as Error).message}`);
  }
}

export class NodeCertificates extends pulumi.ComponentResource {
  readonly nodes: NodeCertificate[];
  readonly caCertificatePem: pulumi.Output<string> | undefined;
  /** Grafana's imported origin certificate, when the stack publishes Grafana through Front Door. */
  readonly monitoringOrigin: NodeCertificate | undefined;

  constructor(name: string, args: NodeCertificatesArgs, opts?: pulumi.ComponentResourceOptions) {
    super('signet:infra:NodeCertificates', name, {}, opts);
    const { ctx } = args;
    const c = ctx.config;
    const parent = { parent: this };
    const certs = c.certificates;
    const origin = grafanaFrontDoorOrigin(c);
    if (origin) {
      const file = path.resolve(args.baseDir, origin.certificateFile);
      const pem = readCertificateFile('monitoring', 'the origin certificate', file);
      const facts = certificateFacts(pem);
      // Front Door's certificate name check: the origin refuses every request with a certificate for another name.
      if (!certificateNames(facts.dnsNames, origin.hostName)) {
        throw new pulumi.RunError(`signet:monitoring: ${file} does not name the origin host ${origin.hostName} (it names ${facts.dnsNames.join(', ') || 'no DNS names'})`);
      }
      this.monitoringOrigin = { secretName: origin.secretName, thumbprint: pulumi.output(facts.thumbprint), expiresAt: pulumi.output(facts.expiresAt), certificatePem: pulumi.output(pem) };
    }

    if (certs.mode === 'imported') {
      this.caCertificatePem = undefined;
      this.nodes = certs.nodes.map((node) => {
        const file = path.resolve(args.baseDir, node.certificateFile);
        const pem = readCertificateFile('certificates', 'node certificate', file);
        const facts = certificateFacts(pem);
        // the inbound connector checks the certificate domain, the outbound connector's TLS check the smart host
        for (const [what, name] of [['certificate domain', c.certificateDomain], ['smart host', smartHostOf(c)]] as const) {
          if (!certificateNames(facts.dnsNames, name)) {
            throw new pulumi.RunError(`signet:certificates: ${file} does not name the ${what} ${name} (it names ${facts.dnsNames.join(', ') || 'no DNS names'})`);
          }
        }
        // Microsoft describes the inbound connector's certificate check by the certificate's subject; whether a
        // SAN alone satisfies it is not documented, so a subject naming something else is worth a look
        const commonName = /^CN=(.*)$/m.exec(facts.subject)?.[1]?.toLowerCase();
        if (commonName !== c.certificateDomain.toLowerCase()) {
          void pulumi.log.warn(`signet:certificates: ${file} has the subject CN ${commonName ?? '(none)'}, not the certificate domain ${c.certificateDomain}; the inbound connector (TlsSenderCertificateName) may check the subject: ask the CA for CN=${c.certificateDomain} if Exchange Online refuses the nodes' mail (550 5.7.64 TenantAttribution)`);
        }
        return {
          secretName: node.secretName,
          thumbprint: pulumi.output(facts.thumbprint),
          expiresAt: pulumi.output(facts.expiresAt),
          certificatePem: pulumi.output(pem),
        };
      });
      this.registerOutputs({});
      return;
    }

    const hours = certs.validityDays * 24;
    // `pulumi up` re-issues a certificate once it is this close to expiry (then nodes converge one at a time).
    const earlyRenewalHours = Math.min(Math.floor(hours / 3), 14 * 24);
    const caKey = new tls.PrivateKey(logicalName(ctx, 'dev-ca-key'), { algorithm: 'RSA', rsaBits: 3072 }, parent);
    const ca = new tls.SelfSignedCert(logicalName(ctx, 'dev-ca'), {
      privateKeyPem: caKey.privateKeyPem,
      isCaCertificate: true,
      allowedUses: ['cert_signing', 'crl_signing'],
      validityPeriodHours: hours,
      earlyRenewalHours,
      subject: { commonName: `Signet development CA (${c.tenantName})`, organization: 'Signet development' },
    }, parent);
    this.caCertificatePem = ca.certPem;

    this.nodes = args.nodeFqdns.map((fqdn, i) => {
      const key = new tls.PrivateKey(logicalName(ctx, `node${i}-key`), { algorithm: 'RSA', rsaBits: 2048 }, parent);
      const csr = new tls.CertRequest(logicalName(ctx, `node${i}-csr`), {
        privateKeyPem: key.privateKeyPem,
        subject: { commonName: c.certificateDomain },
        dnsNames: pulumi.output(fqdn).apply((f) => [...new Set([c.certificateDomain, smartHostOf(c), f])]),
      }, parent);
      const cert = new tls.LocallySignedCert(logicalName(ctx, `node${i}-cert`), {
        certRequestPem: csr.certRequestPem,
        caCertPem: ca.certPem,
        caPrivateKeyPem: caKey.privateKeyPem,
        validityPeriodHours: hours,
        earlyRenewalHours,
        // Server for Exchange's outbound connector, client toward <tenant>.mail.protection.outlook.com.
        allowedUses: ['digital_signature', 'key_encipherment', 'server_auth', 'client_auth'],
      }, parent);
      const secretName = `node${i}-tls`;
      new keyvault.Secret(logicalName(ctx, `node${i}-tls-secret`), {
        secretName,
        vaultName: args.vaultName,
        resourceGroupName: args.resourceGroupName,
        tags: ctx.tags,
        properties: {
          contentType: 'application/x-pem-file',
          // Chain then key; the node splits them into /etc/signet/tls.
          value: pulumi.secret(pulumi.interpolate`${cert.certPem}${ca.certPem}${key.privateKeyPem}`),
        },
        // Switching the stack to imported certificates drops this resource from the stack; the secret
        // (now holding the imported certificate as its newest version) must stay in the vault.
      }, { parent: this, retainOnDelete: true });
      const facts = cert.certPem.apply(certificateFacts);
      return {
        secretName,
        thumbprint: facts.thumbprint,
        expiresAt: facts.expiresAt,
        certificatePem: cert.certPem,
      };
    });
    this.registerOutputs({ thumbprints: this.nodes.map((n) => n.thumbprint) });
  }
}
