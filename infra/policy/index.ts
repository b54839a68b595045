// Policy pack for tenant stacks:
//   pulumi preview -s <tenant> --policy-pack infra/policy
// The rules live in policies.ts (testable without starting the analyzer).
import { PolicyPack } from '@pulumi/policy';
import { signetPolicies } from './policies';

new PolicyPack('signet-tenant-guardrails', { policies: signetPolicies });
