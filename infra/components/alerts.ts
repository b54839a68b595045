// Out-of-band alerting: Azure Monitor watches every VM of the tenant (the relay
// nodes and the monitoring VM) on the platform metric VmAvailabilityMetric and
// emails `signet:alertEmails` through one action group. Azure evaluates these
// alerts, not the monitoring VM's Prometheus, so they still fire when that VM
// (or its Prometheus) is down: the one thing its own rules can never report.
// Only with addresses to send to; without them the stack warns instead (see
// vmAvailabilityAlertsWarning in ../config).
import * as pulumi from '@pulumi/pulumi';
import type * as compute from '@pulumi/azure-native/compute';
import * as monitor from '@pulumi/azure-native/monitor';
import { logicalName, resourceName, type TenantContext } from './naming';

/** The platform metric Azure emits for every VM: 1 available, 0 unavailable (a stop from inside the VM, a host fault, a reboot). */
export const VM_AVAILABILITY_METRIC = 'VmAvailabilityMetric';
export const VM_METRIC_NAMESPACE = 'Microsoft.Compute/virtualMachines';
/** Average below 1 over the window: the VM was unavailable for part of the last 5 minutes, checked every minute. */
export const VM_AVAILABILITY_WINDOW = 'PT5M';
export const VM_AVAILABILITY_FREQUENCY = 'PT1M';

/** An action group's short name (what SMS and email show as the sender): at most 12 characters. */
export function actionGroupShortName(tenantName: string): string {
  return `sig-${tenantName}`.slice(0, 12).replace(/-+$/, '');
}

export interface WatchedVm {
  /** What the VM is, in the alert's name and text: `node0`, `monitoring`. */
  role: string;
  vm: compute.VirtualMachine;
  /** Azure Monitor severity, 0 (critical) to 4 (verbose). */
  severity: 0 | 1 | 2 | 3 | 4;
}

export interface VmAvailabilityAlertsArgs {
  ctx: TenantContext;
  resourceGroupName: pulumi.Input<string>;
  /** Validated and deduplicated (signet:alertEmails); must not be empty. */
  emails: string[];
  vms: WatchedVm[];
}

export class VmAvailabilityAlerts extends pulumi.ComponentResource {
  readonly actionGroup: monitor.ActionGroup;
  readonly alerts: monitor.MetricAlert[] = [];

  constructor(name: string, args: VmAvailabilityAlertsArgs, opts?: pulumi.ComponentResourceOptions) {
    super('signet:infra:VmAvailabilityAlerts', name, {}, opts);
    const { ctx } = args;
    const c = ctx.config;
    if (args.emails.length === 0) throw new pulumi.RunError('VM availability alerts need at least one address (signet:alertEmails)');
    const parent = { parent: this };

    // Action groups are global resources, kept in the tenant's resource group like everything else.
    this.actionGroup = new monitor.ActionGroup(logicalName(ctx, 'ag'), {
      actionGroupName: resourceName(ctx, 'ag'),
      groupShortName: actionGroupShortName(c.tenantName),
      resourceGroupName: args.resourceGroupName,
      location: 'Global',
      tags: ctx.tags,
      enabled: true,
      emailReceivers: args.emails.map((emailAddress, i) => ({ name: `email-${i + 1}`, emailAddress, useCommonAlertSchema: true })),
    }, parent);

    for (const watched of args.vms) {
      const vmName = resourceName(ctx, 'vm', watched.role);
      this.alerts.push(new monitor.MetricAlert(logicalName(ctx, `alert-vm-${watched.role}`), {
        ruleName: resourceName(ctx, 'alert', `vm-${watched.role}-availability`),
        resourceGroupName: args.resourceGroupName,
        location: 'global',
        tags: ctx.tags,
        description: `Signet ${c.tenantName}: VM ${vmName} (${watched.role}) was unavailable in the last 5 minutes (Azure's VmAvailabilityMetric below 1). `
          + 'Evaluated by Azure Monitor, not by the monitoring VM. Runbook: runbooks/README.md, "Where alerts link".',
        severity: watched.severity,
        enabled: true,
        scopes: [watched.vm.id],
        evaluationFrequency: VM_AVAILABILITY_FREQUENCY,
        windowSize: VM_AVAILABILITY_WINDOW,
        // Resolves (and says so) once the VM is available again.
        autoMitigate: true,
        criteria: {
          odataType: 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria',
          allOf: [{
            criterionType: 'StaticThresholdCriterion',
            name: 'vm-unavailable',
            metricName: VM_AVAILABILITY_METRIC,
            metricNamespace: VM_METRIC_NAMESPACE,
            operator: 'LessThan',
            threshold: 1,
            timeAggregation: 'Average',
          }],
        },
        actions: [{ actionGroupId: this.actionGroup.id }],
      }, parent));
    }
    this.registerOutputs({ actionGroupId: this.actionGroup.id });
  }
}
