// Out-of-band alerting: Azure Monitor watches every VM of the tenant (the relay
// nodes and the monitoring VM) on the platform metric VmAvailabilityMetric and
// emails `signet:alertEmails` through one action group. Azure evaluates these
// alerts, not the monitoring VM's Prometheus, so they still fire when that VM
// (or its Prometheus) is down: the one thing its own rules can never report.
// A VM stopped, deallocated or deleted through Azure emits no metric value at
// all, so an activity log alert on those operations mails the same group.
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

/**
 * Azure's operations (RBAC operation names, as the activity log records them) that leave a VM down without a
 * VmAvailabilityMetric value: a power-off (billing goes on), a deallocation (compute released) and a deletion.
 */
export const VM_STOP_OPERATIONS = [
  'Microsoft.Compute/virtualMachines/powerOff/action',
  'Microsoft.Compute/virtualMachines/deallocate/action',
  'Microsoft.Compute/virtualMachines/delete',
] as const;
/**
 * An operation is logged as Started (and Accepted, when Azure runs it asynchronously) and then Succeeded or
 * Failed. Succeeded alone: one mail per operation, once the VM really is down, and none for a request that
 * failed or was refused (a lock, a missing permission) and left the VM running.
 */
export const VM_STOP_STATUS = 'Succeeded';

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
  /** Mails when one of the VMs is powered off, deallocated or deleted through Azure (no metric value then). */
  readonly stoppedOrDeleted: monitor.ActivityLogAlert;

  constructor(name: string, args: VmAvailabilityAlertsArgs, opts?: pulumi.ComponentResourceOptions) {
    super('signet:infra:VmAvailabilityAlerts', name, {}, opts);
    const { ctx } = args;
    const c = ctx.config;
    if (args.emails.length === 0) throw new pulumi.RunError('VM availability alerts need at least one address (signet:alertEmails)');
    // An activity log alert needs at least one scope.
    if (args.vms.length === 0) throw new pulumi.RunError('VM availability alerts need at least one VM to watch');
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

    const vmNames = args.vms.map((watched) => resourceName(ctx, 'vm', watched.role));
    this.stoppedOrDeleted = new monitor.ActivityLogAlert(logicalName(ctx, 'alert-vm-stopped-or-deleted'), {
      activityLogAlertName: resourceName(ctx, 'alert', 'vm-stopped-or-deleted'),
      resourceGroupName: args.resourceGroupName,
      // Activity log alert rules are global (Azure also accepts West Europe and North Europe only).
      location: 'Global',
      tags: ctx.tags,
      description: `Signet ${c.tenantName}: a VM of the tenant (${vmNames.join(', ')}) was powered off, deallocated or deleted through Azure `
        + '(portal, CLI, a script, a pulumi replace); the alert\'s target resource names which one. Such a VM reports no VmAvailabilityMetric, '
        + 'so its metric alert stays silent. Runbook: runbooks/README.md, "Where alerts link".',
      enabled: true,
      // The VMs themselves, not the resource group or the subscription: the rule sees the events of exactly the
      // VMs it watches (scopes are prefixes of the events' resource ids), like the metric alerts, and one rule per
      // tenant keeps well inside the per-subscription limit on activity log alert rules. The stack's own planned
      // removals stay quiet: a scale-in takes the node out of the scopes before Pulumi deletes it (deletes come
      // last), and `pulumi destroy` deletes this rule before the VMs it names. A `--replace` keeps the VM's id,
      // so it mails.
      scopes: args.vms.map((watched) => watched.vm.id),
      condition: {
        allOf: [
          { field: 'category', equals: 'Administrative' },
          { anyOf: VM_STOP_OPERATIONS.map((operation) => ({ field: 'operationName', equals: operation })) },
          { field: 'status', equals: VM_STOP_STATUS },
        ],
      },
      actions: { actionGroups: [{ actionGroupId: this.actionGroup.id }] },
    }, parent);
    this.registerOutputs({ actionGroupId: this.actionGroup.id });
  }
}
