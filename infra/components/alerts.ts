// Out-of-band alerting: Azure Monitor watches every VM of the tenant (the relay
// nodes and the monitoring VM) on the platform metric VmAvailabilityMetric
// (and a burstable one on its CPU credits) and emails `signet:alertEmails`
// through one action group. Azure evaluates these
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

/**
 * A burstable (B-series) VM spends CPU credits above its base performance and, with none left, is held to it: a
 * Standard_B2s to 40% of one vCPU in all, where a busy relay needs a whole one. The node's own metrics only show
 * its thread getting busier at a volume it carried before, so Azure's platform metric warns first.
 */
export const CPU_CREDITS_METRIC = 'CPU Credits Remaining';
/**
 * Below every B size's initial credits (30 for the smallest, 60 for a B2s), so a fresh VM does not alert while
 * it banks; at a B2s's net spend with one vCPU busy (60 credits an hour spent, 24 earned) about 50 minutes of
 * burst are left, 20 with both busy: time to move the load (scale out, or a non-burstable size).
 */
export const CPU_CREDITS_LOW = 30;
/** The average over 15 minutes, every 5: the metric moves slowly, and a short dip is no news. */
export const CPU_CREDITS_WINDOW = 'PT15M';
export const CPU_CREDITS_FREQUENCY = 'PT5M';

/** Azure's burstable sizes (Standard_B1ls … Standard_B20ms, Standard_B2ts_v2 …): the only ones with CPU credits. */
export function isBurstableSize(size: string): boolean {
  return /^Standard_B\d/i.test(size);
}

/** An action group's short name (what SMS and email show as the sender): at most 12 characters. */
export function actionGroupShortName(tenantName: string): string {
  return `sig-${tenantName}`.slice(0, 12).replace(/-+$/, '');
}

export interface WatchedVm {
  /** What the VM is, in the alert's name and text: `node0`, `monitoring`. */
  role: string;
  vm: compute.VirtualMachine;
  /** The VM's size (`Standard_B2s`): a burstable one is also watched on its CPU credits. */
  size: string;
  /** Azure Monitor severity of its availability alert, 0 (critical) to 4 (verbose); its credit alert is one lower. */
  severity: 0 | 1 | 2 | 3;
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
  /** One per burstable VM: its CPU credits running out. */
  readonly creditAlerts: monitor.MetricAlert[] = [];
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
      this.alerts.push(this.vmMetricAlert(ctx, args.resourceGroupName, watched, {
        suffix: 'availability',
        logical: `alert-vm-${watched.role}`,
        description: `Signet ${c.tenantName}: VM ${vmName} (${watched.role}) was unavailable in the last 5 minutes (Azure's VmAvailabilityMetric below 1). `
          + 'Evaluated by Azure Monitor, not by the monitoring VM. Runbook: runbooks/README.md, "Where alerts link".',
        severity: watched.severity,
        frequency: VM_AVAILABILITY_FREQUENCY,
        window: VM_AVAILABILITY_WINDOW,
        // Resolves (and says so) once the VM is available again.
        criterion: { name: 'vm-unavailable', metricName: VM_AVAILABILITY_METRIC, threshold: 1 },
      }));
      // Not declared for other sizes: Azure refuses an alert on a metric the resource does not emit.
      if (isBurstableSize(watched.size)) {
        this.creditAlerts.push(this.vmMetricAlert(ctx, args.resourceGroupName, watched, {
          suffix: 'cpu-credits',
          logical: `alert-vm-${watched.role}-cpu-credits`,
          description: `Signet ${c.tenantName}: VM ${vmName} (${watched.role}, burstable ${watched.size}) has fewer than ${CPU_CREDITS_LOW} `
            + 'CPU credits left (15-minute average). With none, Azure holds it to its base performance and a busy relay falls behind '
            + '(mail waits, then Exchange Online defers it). Move the load: more nodes or a non-burstable signet:nodeSize. '
            + 'Runbook: runbooks/scale-nodes.md.',
          severity: watched.severity + 1,
          frequency: CPU_CREDITS_FREQUENCY,
          window: CPU_CREDITS_WINDOW,
          // Resolves once the VM has banked credits again.
          criterion: { name: 'cpu-credits-low', metricName: CPU_CREDITS_METRIC, threshold: CPU_CREDITS_LOW },
        }));
      }
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

  /** One VM's metric falling below a threshold (its average over the window), mailed to the action group; resolves when it recovers. */
  private vmMetricAlert(ctx: TenantContext, resourceGroupName: pulumi.Input<string>, watched: WatchedVm, alert: {
    suffix: string; logical: string; description: string; severity: number; frequency: string; window: string;
    criterion: { name: string; metricName: string; threshold: number };
  }): monitor.MetricAlert {
    return new monitor.MetricAlert(logicalName(ctx, alert.logical), {
      ruleName: resourceName(ctx, 'alert', `vm-${watched.role}-${alert.suffix}`),
      resourceGroupName,
      location: 'global',
      tags: ctx.tags,
      description: alert.description,
      severity: alert.severity,
      enabled: true,
      scopes: [watched.vm.id],
      evaluationFrequency: alert.frequency,
      windowSize: alert.window,
      autoMitigate: true,
      criteria: {
        odataType: 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria',
        allOf: [{
          criterionType: 'StaticThresholdCriterion',
          ...alert.criterion,
          metricNamespace: VM_METRIC_NAMESPACE,
          operator: 'LessThan',
          timeAggregation: 'Average',
        }],
      },
      actions: [{ actionGroupId: this.actionGroup.id }],
    }, { parent: this });
  }
}
