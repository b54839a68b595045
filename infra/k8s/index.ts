// The Kubernetes target for operators who outgrow a handful of VMs (AKS with
// the Secrets Store CSI driver, its Azure provider and workload identity):
// the same relay image and relay config, with the same security posture.
//
// - SMTP: the pod listens on 2525 as a non-root user with no capabilities;
//   the LoadBalancer Service maps 25 → 2525 (no NET_BIND_SERVICE needed) with
//   externalTrafficPolicy Local, so the relay sees Exchange Online's real
//   source addresses for its allow-list.
// - Secrets: the node certificate comes from Key Vault through a
//   SecretProviderClass (workload identity), synced into a kubernetes.io/tls
//   Secret that the pod mounts read-only.
// - Availability: ≥3 replicas spread across zones, a PodDisruptionBudget, an
//   HPA, readiness on /readyz (Service endpoints follow it) and a preStop
//   pause so endpoints drop the pod before SIGTERM starts the relay's drain.
// - Name: optionally an Azure DNS label on the load balancer's public IP, the
//   smart host's CNAME target (the load balancer's own health probe replaces
//   Traffic Manager for a single cluster).
import * as pulumi from '@pulumi/pulumi';
import * as k8s from '@pulumi/kubernetes';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { buildRelayConfig, type RelayConfigValues } from '../cloud-init/relay-config';
import { azurePublicDnsName } from '../components/naming';

export { SignetWorkloadIdentity, type WorkloadIdentityArgs } from './identity';

export const SMTP_CONTAINER_PORT = 2525;
const TLS_MOUNT = '/etc/signet/tls';
const CSI_MOUNT = '/mnt/secrets-store';
/**
 * The relay's state (the highest config bundle version loaded: rollback protection). An emptyDir on the
 * node's disk: it outlives a restart of the container (a crash, a failed liveness probe), not the pod, so a
 * replacement pod trusts the first bundle it reads, as a VM node does on its first start.
 */
const STATE_MOUNT = '/var/lib/signet';

export interface SignetKubernetesArgs {
  tenantName: string;
  /** Container image of the packaged appliance (entrypoint `signet`). */
  image: string;
  namespace?: string;
  replicas?: number;
  maxReplicas?: number;
  httpPort: number;
  /** The relay config values shared with the VM target (listen port and TLS paths are set here). */
  relay: Omit<RelayConfigValues, 'identityClientId'>;
  /** Client id of the user-assigned identity federated with this namespace's service account. */
  workloadIdentityClientId: pulumi.Input<string>;
  /** Azure AD tenant of the Key Vault. */
  keyVaultTenantId: pulumi.Input<string>;
  keyVaultName: pulumi.Input<string>;
  tlsSecretName: string;
  /** Exchange Online ranges: Service source ranges and NetworkPolicy ingress. */
  exchangeOnlineRanges: string[];
  /** Namespace of the Prometheus that scrapes the pods (admitted by the NetworkPolicy on the HTTP port). */
  prometheusNamespace?: string;
  /**
   * Labels the Prometheus operator selects ServiceMonitors and PrometheusRules by, added to both:
   * kube-prometheus-stack, as installed by default, picks only those labelled `release: <its release name>`.
   */
  prometheusSelectorLabels?: Record<string, string>;
  /** The repository's Prometheus alert rules file (monitoring/prometheus/alerts.yaml). */
  alertRulesFile: string;
  /** Relay drain time (limits.drainSeconds); the grace period covers preStop + drain. */
  drainSeconds?: number;
  resources?: { cpu: string; memory: string; cpuLimit: string; memoryLimit: string };
  /**
   * A public name for the SMTP load balancer: an Azure DNS label (unique in the
   * cluster's region) on its public IP. The smart-host CNAME then points at
   * `<label>.<location>.cloudapp.azure.com` (output `smtpFqdn`).
   */
  publicDns?: { label: string; location: string };
}

// Azure DNS labels: 3–63 lowercase letters, digits and hyphens, starting with a letter.
const DNS_LABEL = /^[a-z][a-z0-9-]{1,61}[a-z0-9]$/;
const AZURE_REGION = /^[a-z][a-z0-9]+$/;

/** The relay config as the pod sees it: same values as a VM node, pod ports and paths. */
export function podRelayConfig(args: SignetKubernetesArgs, identityClientId: string): Record<string, unknown> {
  const config = buildRelayConfig({ ...args.relay, identityClientId, httpPort: args.httpPort });
  const tls = config.tls as Record<string, unknown>;
  const downstream = config.downstream as { tls: Record<string, unknown> };
  return {
    ...config,
    listen: [{ host: '0.0.0.0', port: SMTP_CONTAINER_PORT }],
    tls: { ...tls, cert: `${TLS_MOUNT}/tls.crt`, key: `${TLS_MOUNT}/tls.key` },
    downstream: { ...downstream, tls: { ...downstream.tls, cert: `${TLS_MOUNT}/tls.crt`, key: `${TLS_MOUNT}/tls.key` } },
    limits: { drainSeconds: args.drainSeconds ?? 60 },
    stateDir: STATE_MOUNT,
  };
}

export class SignetKubernetes extends pulumi.ComponentResource {
  readonly namespace: pulumi.Output<string>;
  readonly service: k8s.core.v1.Service;
  readonly deployment: k8s.apps.v1.Deployment;
  /** The SMTP load balancer's public IPv4 address, once the cloud assigned it (an A record's target). */
  readonly loadBalancerAddress: pulumi.Output<string | undefined>;
  /** `<label>.<location>.cloudapp.azure.com` with `publicDns` (the smart-host CNAME's target); else undefined. */
  readonly smtpFqdn: pulumi.Output<string | undefined>;

  constructor(name: string, args: SignetKubernetesArgs, opts?: pulumi.ComponentResourceOptions) {
    super('signet:k8s:SignetKubernetes', name, {}, opts);
    const replicas = args.replicas ?? 3;
    if (replicas < 3) throw new pulumi.RunError(`signet:kubernetes: replicas must be at least 3 (got ${replicas})`);
    const dns = args.publicDns;
    if (dns && !DNS_LABEL.test(dns.label)) throw new pulumi.RunError(`signet:kubernetes: publicDns.label "${dns.label}" is not an Azure DNS label (3–63 lowercase letters, digits and hyphens, starting with a letter)`);
    if (dns && !AZURE_REGION.test(dns.location)) throw new pulumi.RunError(`signet:kubernetes: publicDns.location "${dns.location}" is not an Azure region name (e.g. westeurope)`);
    const parent = { parent: this };
    const ns = args.namespace ?? `signet-${args.tenantName}`;
    const labels = { 'app.kubernetes.io/name': 'signet', 'app.kubernetes.io/instance': args.tenantName };
    const drainSeconds = args.drainSeconds ?? 60;
    const preStopSeconds = 15;

    const namespace = new k8s.core.v1.Namespace(`${name}-ns`, {
      metadata: { name: ns, labels: { 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/enforce-version': 'latest' } },
    }, parent);
    this.namespace = namespace.metadata.name;
    const meta = (suffix: string, extra: Record<string, string> = {}) => ({ name: `signet${suffix}`, namespace: this.namespace, labels: { ...labels, ...extra } });

    const serviceAccount = new k8s.core.v1.ServiceAccount(`${name}-sa`, {
      metadata: { ...meta(''), annotations: { 'azure.workload.identity/client-id': args.workloadIdentityClientId } },
      automountServiceAccountToken: false,
    }, parent);

    const config = new k8s.core.v1.ConfigMap(`${name}-config`, {
      metadata: meta('-relay-config'),
      data: { 'relay.yaml': pulumi.output(args.workloadIdentityClientId).apply((id) => stringify(podRelayConfig(args, id))) },
    }, parent);

    const tlsSecret = `signet-${args.tenantName}-tls`;
    const spc = new k8s.apiextensions.CustomResource(`${name}-spc`, {
      apiVersion: 'secrets-store.csi.x-k8s.io/v1',
      kind: 'SecretProviderClass',
      metadata: meta('-keyvault'),
      spec: {
        provider: 'azure',
        parameters: {
          usePodIdentity: 'false',
          clientID: args.workloadIdentityClientId,
          keyvaultName: args.keyVaultName,
          tenantId: args.keyVaultTenantId,
          objects: stringify({ array: [stringify({ objectName: args.tlsSecretName, objectType: 'secret', objectAlias: 'node.pem' })] }),
        },
        // The driver splits the PEM into tls.crt / tls.key for a kubernetes.io/tls Secret.
        secretObjects: [{ secretName: tlsSecret, type: 'kubernetes.io/tls', labels, data: [{ objectName: 'node.pem', key: 'tls.key' }, { objectName: 'node.pem', key: 'tls.crt' }] }],
      },
    }, parent);

    const selector = { matchLabels: labels };
    this.deployment = new k8s.apps.v1.Deployment(`${name}-deployment`, {
      metadata: meta(''),
      spec: {
        replicas,
        selector,
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
        template: {
          // The hash rolls the pods when the relay config changes.
          metadata: { labels: { ...labels, 'azure.workload.identity/use': 'true' }, annotations: { 'signet/config-sha256': config.data.apply((d) => createHash('sha256').update(d['relay.yaml'] ?? '').digest('hex')) } },
          spec: {
            serviceAccountName: serviceAccount.metadata.name,
            automountServiceAccountToken: true, // the workload identity webhook projects its token through it
            terminationGracePeriodSeconds: preStopSeconds + drainSeconds + 15,
            securityContext: { runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, fsGroup: 10001, seccompProfile: { type: 'RuntimeDefault' } },
            topologySpreadConstraints: [
              { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule', labelSelector: selector },
              { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: selector },
            ],
            containers: [{
              name: 'relay',
              image: args.image,
              args: ['serve', '--config', '/etc/signet/relay.yaml'],
              ports: [{ name: 'smtp', containerPort: SMTP_CONTAINER_PORT }, { name: 'http', containerPort: args.httpPort }],
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } },
              resources: {
                requests: { cpu: args.resources?.cpu ?? '250m', memory: args.resources?.memory ?? '512Mi' },
                limits: { cpu: args.resources?.cpuLimit ?? '2', memory: args.resources?.memoryLimit ?? '1536Mi' },
              },
              readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 5, failureThreshold: 2 },
              livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 10, failureThreshold: 6, initialDelaySeconds: 10 },
              startupProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 2, failureThreshold: 60 },
              // Endpoints drop the pod first; then SIGTERM drains (readiness off, 421 to new sessions, in-flight finish).
              lifecycle: { preStop: { sleep: { seconds: preStopSeconds } } },
              volumeMounts: [
                { name: 'config', mountPath: '/etc/signet/relay.yaml', subPath: 'relay.yaml', readOnly: true },
                { name: 'tls', mountPath: TLS_MOUNT, readOnly: true },
                { name: 'keyvault', mountPath: CSI_MOUNT, readOnly: true },
                { name: 'tmp', mountPath: '/tmp' },
                { name: 'state', mountPath: STATE_MOUNT },
              ],
            }],
            volumes: [
              { name: 'config', configMap: { name: config.metadata.name } },
              { name: 'tls', secret: { secretName: tlsSecret, defaultMode: 0o400 } },
              { name: 'keyvault', csi: { driver: 'secrets-store.csi.k8s.io', readOnly: true, volumeAttributes: { secretProviderClass: spc.metadata.name } } },
              { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } },
              { name: 'state', emptyDir: { sizeLimit: '1Mi' } },
            ],
          },
        },
      },
      // The HPA owns the replica count once it scales: re-applying `replicas` would fight it (a server-side
      // apply conflict with kube-controller-manager's scale subresource, or a scale-in during an upgrade).
      // `replicas` sets the initial count only.
    }, { ...parent, ignoreChanges: ['spec.replicas'] });

    const ipv4Ranges = args.exchangeOnlineRanges.filter((r) => !r.includes(':'));
    this.service = new k8s.core.v1.Service(`${name}-smtp`, {
      // The cloud provider puts the DNS label on the load balancer's public IP.
      metadata: { ...meta('-smtp'), ...(dns ? { annotations: { 'service.beta.kubernetes.io/azure-dns-label-name': dns.label } } : {}) },
      spec: {
        type: 'LoadBalancer',
        // Local: no SNAT, so the relay (and the NetworkPolicy) see Exchange Online's addresses.
        externalTrafficPolicy: 'Local',
        // An IPv4 load balancer takes IPv4 source ranges only.
        loadBalancerSourceRanges: ipv4Ranges,
        selector: labels,
        ports: [{ name: 'smtp', port: 25, targetPort: 'smtp', protocol: 'TCP' }],
      },
    }, parent);

    new k8s.core.v1.Service(`${name}-metrics`, {
      metadata: meta('-metrics', { 'signet/metrics': 'true', 'signet/job': 'signet' }),
      spec: { type: 'ClusterIP', selector: labels, ports: [{ name: 'http', port: args.httpPort, targetPort: 'http' }] },
    }, parent);

    new k8s.policy.v1.PodDisruptionBudget(`${name}-pdb`, {
      metadata: meta(''),
      spec: { maxUnavailable: 1, selector, unhealthyPodEvictionPolicy: 'AlwaysAllow' },
    }, parent);

    new k8s.autoscaling.v2.HorizontalPodAutoscaler(`${name}-hpa`, {
      metadata: meta(''),
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: this.deployment.metadata.name },
        minReplicas: replicas,
        maxReplicas: Math.max(args.maxReplicas ?? replicas * 3, replicas),
        metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 65 } } }],
        behavior: { scaleDown: { stabilizationWindowSeconds: 600, policies: [{ type: 'Pods', value: 1, periodSeconds: 120 }] } },
      },
    }, parent);

    const promNs = args.prometheusNamespace ?? 'monitoring';
    new k8s.networking.v1.NetworkPolicy(`${name}-netpol`, {
      metadata: meta(''),
      spec: {
        podSelector: selector,
        policyTypes: ['Ingress', 'Egress'],
        ingress: [
          { from: args.exchangeOnlineRanges.map((cidr) => ({ ipBlock: { cidr } })), ports: [{ protocol: 'TCP', port: SMTP_CONTAINER_PORT }] },
          { from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': promNs } } }], ports: [{ protocol: 'TCP', port: args.httpPort }] },
        ],
        egress: [
          { to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } } }], ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] },
          // Downstream: the tenant's mail.protection.outlook.com answers from the Exchange Online ranges.
          { to: args.exchangeOnlineRanges.map((cidr) => ({ ipBlock: { cidr } })), ports: [{ protocol: 'TCP', port: 25 }] },
          // Key Vault, Storage, Microsoft Graph and Entra ID token endpoints (addresses not fixed).
          { to: [{ ipBlock: { cidr: '0.0.0.0/0' } }], ports: [{ protocol: 'TCP', port: 443 }] },
        ],
      },
    }, parent);

    new k8s.apiextensions.CustomResource(`${name}-servicemonitor`, {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'ServiceMonitor',
      metadata: meta('', args.prometheusSelectorLabels),
      spec: {
        selector: { matchLabels: { ...labels, 'signet/metrics': 'true' } },
        // The alert rules expect job="signet" (SignetNodeDown: up{job="signet"}); without jobLabel
        // the operator names the job after the Service, and that alert could never fire.
        jobLabel: 'signet/job',
        endpoints: [{ port: 'http', path: '/metrics', interval: '30s' }],
      },
    }, parent);

    let rules: { groups?: unknown[] };
    try {
      rules = parse(readFileSync(args.alertRulesFile, 'utf8')) as { groups?: unknown[] };
    } catch (error) {
      throw new pulumi.RunError(`signet:kubernetes: cannot read alert rules ${args.alertRulesFile}: ${(error as Error).message}`);
    }
    if (!Array.isArray(rules.groups)) throw new pulumi.RunError(`signet:kubernetes: ${args.alertRulesFile} has no rule groups`);
    new k8s.apiextensions.CustomResource(`${name}-rules`, {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: meta('', args.prometheusSelectorLabels),
      spec: { groups: rules.groups },
    }, parent);

    this.loadBalancerAddress = this.service.status.apply((status) => status?.loadBalancer?.ingress?.find((i) => i.ip)?.ip);
    this.smtpFqdn = pulumi.output(dns ? azurePublicDnsName(dns.label, dns.location) : undefined);
    this.registerOutputs({ namespace: this.namespace, loadBalancerAddress: this.loadBalancerAddress, smtpFqdn: this.smtpFqdn });
  }
}
