// The Azure side of the Kubernetes target for one tenant: a user-assigned
// identity federated with the relay's Kubernetes service account (AKS
// workload identity), holding exactly what a VM node's identity holds —
// Crypto User on the organization key, Reader on the config signing key (its
// public half, to verify bundles), Secrets User on the tenant's vault, Blob
// Data Reader on the config container. It lives in the tenant's
// resource group; the names come from the tenant stack's outputs.
import * as pulumi from '@pulumi/pulumi';
import * as authorization from '@pulumi/azure-native/authorization';
import * as managedidentity from '@pulumi/azure-native/managedidentity';
import { BUILTIN_ROLES, roleDefinitionId } from '../components/naming';

export interface WorkloadIdentityArgs {
  tenantName: string;
  location: string;
  /** The tenant stack's resourceGroupName output. */
  resourceGroupName: pulumi.Input<string>;
  subscriptionId: pulumi.Input<string>;
  /** The cluster's OIDC issuer URL (AKS: oidcIssuerProfile.issuerURL). */
  oidcIssuerUrl: pulumi.Input<string>;
  namespace: string;
  serviceAccount?: string;
  /** ARM ids from the tenant stack: the vault, the organization key, its signing key and the config container. */
  vaultId: pulumi.Input<string>;
  orgKeyResourceId: pulumi.Input<string>;
  configSigningKeyResourceId: pulumi.Input<string>;
  configContainerId: pulumi.Input<string>;
}

export class SignetWorkloadIdentity extends pulumi.ComponentResource {
  readonly clientId: pulumi.Output<string>;
  readonly principalId: pulumi.Output<string>;

  constructor(name: string, args: WorkloadIdentityArgs, opts?: pulumi.ComponentResourceOptions) {
    super('signet:k8s:SignetWorkloadIdentity', name, {}, opts);
    const parent = { parent: this };
    const identityName = `id-signet-${args.tenantName}-k8s`;
    const identity = new managedidentity.UserAssignedIdentity(`${name}-identity`, {
      resourceName: identityName,
      resourceGroupName: args.resourceGroupName,
      location: args.location,
      tags: { 'signet:tenant': args.tenantName, 'managed-by': 'pulumi' },
    }, parent);
    new managedidentity.FederatedIdentityCredential(`${name}-federation`, {
      federatedIdentityCredentialResourceName: 'signet-relay',
      resourceName: identity.name,
      resourceGroupName: args.resourceGroupName,
      issuer: args.oidcIssuerUrl,
      // Only this namespace's relay service account may act as the identity.
      subject: `system:serviceaccount:${args.namespace}:${args.serviceAccount ?? 'signet'}`,
      audiences: ['api://AzureADTokenExchange'],
    }, parent);
    const role = (guid: string) => pulumi.output(args.subscriptionId).apply((s) => roleDefinitionId(s, guid));
    const grants: [string, string, pulumi.Input<string>][] = [
      ['kv-crypto', BUILTIN_ROLES.keyVaultCryptoUser, args.orgKeyResourceId],
      // nodes refuse a bundle whose signature they cannot check: reading the public key, never signing
      ['kv-signing-read', BUILTIN_ROLES.keyVaultReader, args.configSigningKeyResourceId],
      ['kv-secrets', BUILTIN_ROLES.keyVaultSecretsUser, args.vaultId],
      ['blob-config', BUILTIN_ROLES.storageBlobDataReader, args.configContainerId],
    ];
    for (const [label, guid, scope] of grants) {
      new authorization.RoleAssignment(`${name}-ra-${label}`, {
        principalId: identity.principalId, principalType: 'ServicePrincipal', roleDefinitionId: role(guid), scope,
        description: 'Signet relay pods (workload identity)',
      }, parent);
    }
    this.clientId = identity.clientId;
    this.principalId = identity.principalId;
    this.registerOutputs({ clientId: this.clientId });
  }
}
