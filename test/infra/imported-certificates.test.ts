// Production node certificates are imported: the stack reads each public
// certificate, refuses one that Exchange Online would refuse (the inbound
// connector checks the certificate domain, the outbound connector's TLS check
// the smart host), and publishes its thumbprint.
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { parse } from 'yaml';
import { parseStackConfig, smartHostOf } from '../../infra/config';
import { certificateNames } from '../../infra/components/certificates';
import type { StackOutputs } from '../../infra/outputs';
import { createTenantStack } from '../../infra/stack';
import { createCertificateAuthority, type CertificateAuthority } from '../support/certs';
import { REPO_ROOT, runUnderMocks } from './support/harness';
import { EXAMPLE_ORIGIN_HOST as ORIGIN_HOST, exampleStackValues, fabrikam, placeholderArtifact, writeOriginCertificate, type ArtifactFixture } from './support/fixtures';

const CERT_DOMAIN = 'fabrikam.relay.signet-msp.example';

describe('infra: imported node certificates', function () {
  this.timeout(30_000);
  let artifact: ArtifactFixture;
  let dir: string;
  let ca: CertificateAuthority;

  before(async () => {
    artifact = placeholderArtifact();
    dir = mkdtempSync(path.join(tmpdir(), 'signet-imported-certs-'));
    ca = await createCertificateAuthority('Signet Test Public CA');
  });
  after(() => {
    artifact.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  async function writeCerts(dnsNames: string[], commonName = CERT_DOMAIN): Promise<string[]> {
    const files: string[] = [];
    for (const n of [0, 1]) {
      const cert = await ca.issue({ commonName, dnsNames, usage: ['server', 'client'] });
      const file = path.join(dir, `node${n}-${Math.random().toString(36).slice(2)}.pem`);
      writeFileSync(file, cert.cert);
      files.push(file);
    }
    return files;
  }

  /** Grafana's origin certificate from the "public" CA, for `names`. */
  const writeOriginCert = (names: string[]) => writeOriginCertificate(ca, dir, names);

  function monitoringWith(extra: Record<string, unknown>): Record<string, unknown> {
    return { ...(exampleStackValues().monitoring as Record<string, unknown>), ...extra };
  }

  async function stackWith(files: string[], overrides: Record<string, unknown> = {}) {
    const originFile = await writeOriginCert([ORIGIN_HOST]);
    const config = parseStackConfig(fabrikam(artifact.path, {
      certificates: { mode: 'imported', nodes: files.map((certificateFile, i) => ({ secretName: `node${i}-tls`, certificateFile })) },
      monitoring: monitoringWith({ originHostName: ORIGIN_HOST, originCertificate: { certificateFile: originFile } }),
      ...overrides,
    }));
    return runUnderMocks('fabrikam-imported', () => createTenantStack(config, { baseDir: REPO_ROOT }));
  }

  it('the smart host defaults to smtp.<certificate domain>, so the domain itself can hold its verification TXT record', () => {
    expect(smartHostOf({ certificateDomain: CERT_DOMAIN })).to.equal(`smtp.${CERT_DOMAIN}`);
    expect(smartHostOf({ certificateDomain: CERT_DOMAIN, smartHostName: 'mx.signet-msp.example' })).to.equal('mx.signet-msp.example');
  });

  it('matches host names exactly or by a wildcard for the leftmost label only', () => {
    expect(certificateNames([CERT_DOMAIN], CERT_DOMAIN)).to.equal(true);
    expect(certificateNames(['FABRIKAM.relay.signet-msp.example'], CERT_DOMAIN)).to.equal(true);
    expect(certificateNames([`*.${CERT_DOMAIN}`], `smtp.${CERT_DOMAIN}`)).to.equal(true);
    expect(certificateNames([`*.${CERT_DOMAIN}`], CERT_DOMAIN)).to.equal(false);
    expect(certificateNames([`*.${CERT_DOMAIN}`], `a.smtp.${CERT_DOMAIN}`)).to.equal(false);
    expect(certificateNames(['*.signet-msp.example'], CERT_DOMAIN)).to.equal(false);
    expect(certificateNames([], CERT_DOMAIN)).to.equal(false);
  });

  it('publishes the thumbprints of certificates that name the certificate domain and cover the smart host', async () => {
    const files = await writeCerts([CERT_DOMAIN, `*.${CERT_DOMAIN}`]);
    const run = await stackWith(files);
    const outputs = run.outputs as StackOutputs;
    expect(outputs.smartHostFqdn).to.equal(`smtp.${CERT_DOMAIN}`);
    expect(outputs.smartHostCname.name).to.equal(`smtp.${CERT_DOMAIN}`);
    const expected = files.map((f) => new X509Certificate(readFileSync(f, 'utf8')).fingerprint.replaceAll(':', ''));
    expect(outputs.nodes.map((n) => n.certificateThumbprint)).to.deep.equal(expected);
    expect(run.warnings.filter((w) => w.includes('subject CN'))).to.deep.equal([]);
  });

  it('warns, naming the file, when a certificate\'s subject CN is not the certificate domain (its SANs being right)', async () => {
    const files = await writeCerts([CERT_DOMAIN, `*.${CERT_DOMAIN}`], `smtp.${CERT_DOMAIN}`);
    const run = await stackWith(files);
    const warnings = run.warnings.filter((w) => w.includes('subject CN'));
    expect(warnings).to.have.length(2);
    expect(warnings[0]).to.include(files[0]).and.include(`subject CN smtp.${CERT_DOMAIN}, not the certificate domain ${CERT_DOMAIN}`).and.include(`CN=${CERT_DOMAIN}`);
  });

  it('refuses a certificate that does not cover the smart host, naming the file and both names', async () => {
    const files = await writeCerts([CERT_DOMAIN]);
    let error: Error | undefined;
    try {
      await stackWith(files);
    } catch (e) {
      error = e as Error;
    }
    expect(error?.message).to.match(/does not name the smart host smtp\.fabrikam\.relay\.signet-msp\.example \(it names fabrikam\.relay\.signet-msp\.example\)/);
    expect(error?.message).to.include(files[0]);
  });

  it('refuses a certificate for the smart host alone, which the inbound connector would refuse', async () => {
    const files = await writeCerts(['mx.signet-msp.example']);
    let error: Error | undefined;
    try {
      await stackWith(files, { smartHostName: 'mx.signet-msp.example' });
    } catch (e) {
      error = e as Error;
    }
    expect(error?.message).to.match(/does not name the certificate domain fabrikam\.relay\.signet-msp\.example/);
  });

  it('requires a public origin certificate for Grafana behind Front Door, and the host name it is for', async () => {
    const files = await writeCerts([CERT_DOMAIN, `*.${CERT_DOMAIN}`]);
    const imported = { mode: 'imported', nodes: files.map((certificateFile, i) => ({ secretName: `node${i}-tls`, certificateFile })) };
    expect(() => parseStackConfig(fabrikam(artifact.path, { certificates: imported })))
      .to.throw(/signet:monitoring \(at originCertificate\): is required with imported certificates and Front Door/);
    expect(() => parseStackConfig(fabrikam(artifact.path, { certificates: imported, monitoring: monitoringWith({ originCertificate: { certificateFile: files[0] } }) })))
      .to.throw(/signet:monitoring \(at originHostName\): is required with monitoring.originCertificate/);
    // without Front Door there is no public origin to certify
    expect(() => parseStackConfig(fabrikam(artifact.path, { certificates: imported, monitoring: monitoringWith({ frontDoor: false }) }))).to.not.throw();
  });

  it('points Front Door at the operator\'s origin host and has the VM fetch the imported origin certificate by its thumbprint', async () => {
    const files = await writeCerts([CERT_DOMAIN, `*.${CERT_DOMAIN}`]);
    const originFile = await writeOriginCert([ORIGIN_HOST]);
    const config = parseStackConfig(fabrikam(artifact.path, {
      certificates: { mode: 'imported', nodes: files.map((certificateFile, i) => ({ secretName: `node${i}-tls`, certificateFile })) },
      monitoring: monitoringWith({ originHostName: ORIGIN_HOST, originCertificate: { secretName: 'grafana-origin-tls', certificateFile: originFile } }),
    }));
    const run = await runUnderMocks('fabrikam-imported', () => createTenantStack(config, { baseDir: REPO_ROOT }));
    expect(run.warnings).to.deep.equal([]);
    const origin = run.one('azure-native:cdn:AFDOrigin', 'afd-grafana-origin');
    expect(origin.inputs).to.deep.include({ hostName: ORIGIN_HOST, originHostHeader: ORIGIN_HOST, enforceCertificateNameCheck: true });
    // nothing issued by the stack: the certificate is the operator's, in the secret they named
    expect(run.ofType('tls:index/locallySignedCert:LocallySignedCert')).to.deep.equal([]);
    expect(run.ofType('azure-native:keyvault:Secret').map((x) => x.inputs.secretName)).to.not.include('grafana-origin-tls');
    const vaultId = run.one('azure-native:keyvault:Vault', 'kv').id;
    const monitoringPrincipal = run.one('azure-native:managedidentity:UserAssignedIdentity', 'id-monitoring').state.principalId;
    const scopes = run.ofType('azure-native:authorization:RoleAssignment').filter((a) => a.inputs.principalId === monitoringPrincipal).map((a) => a.inputs.scope);
    expect(scopes).to.include(`${vaultId}/secrets/grafana-origin-tls`);
    const vm = run.one('azure-native:compute:VirtualMachine', 'vm-monitoring');
    const doc = parse(Buffer.from((vm.inputs.osProfile as { customData: string }).customData, 'base64').toString('utf8')) as { write_files: { path: string; content: string }[] };
    const setup = doc.write_files.find((f) => f.path === '/usr/local/sbin/signet-monitoring-setup')?.content ?? '';
    const thumbprint = new X509Certificate(readFileSync(originFile, 'utf8')).fingerprint.replaceAll(':', '');
    expect(setup).to.include(`if [ "$thumbprint" != '${thumbprint}' ]; then`);
    expect(setup).to.include('/secrets/grafana-origin-tls?api-version=7.4');
  });

  it('refuses an origin certificate that does not name the origin host (Front Door\'s name check would refuse it), naming the file', async () => {
    const files = await writeCerts([CERT_DOMAIN, `*.${CERT_DOMAIN}`]);
    const originFile = await writeOriginCert(['grafana.fabrikam.example']);
    let error: Error | undefined;
    try {
      const config = parseStackConfig(fabrikam(artifact.path, {
        certificates: { mode: 'imported', nodes: files.map((certificateFile, i) => ({ secretName: `node${i}-tls`, certificateFile })) },
        monitoring: monitoringWith({ originHostName: ORIGIN_HOST, originCertificate: { certificateFile: originFile } }),
      }));
      await runUnderMocks('fabrikam-imported', () => createTenantStack(config, { baseDir: REPO_ROOT }));
    } catch (e) {
      error = e as Error;
    }
    expect(error?.message).to.include(`does not name the origin host ${ORIGIN_HOST} (it names grafana.fabrikam.example)`);
    expect(error?.message).to.include(originFile);
  });
});
