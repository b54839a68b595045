// Out-of-band alerts: with signet:alertEmails, Azure Monitor (not the
// monitoring VM's Prometheus) watches every VM of the tenant on the platform
// metric VmAvailabilityMetric, and on the activity log for a VM powered off,
// deallocated or deleted through Azure (which leaves no metric value), and
// emails those addresses through one action group; without them, nothing is
// declared and `pulumi up` warns once.
import { expect } from 'chai';
import * as pulumi from '@pulumi/pulumi';
import { parseStackConfig, vmAvailabilityAlertsWarning, type StackConfig } from '../../infra/config';
import { actionGroupShortName, isBurstableSize } from '../../infra/components/alerts';
import { createTenantStack } from '../../infra/stack';
import type { StackOutputs } from '../../infra/outputs';
import { failureOf, REPO_ROOT, runUnderMocks, type RecordedResource, type StackRun } from './support/harness';
import { fabrikam, placeholderArtifact, type ArtifactFixture } from './support/fixtures';

const ACTION_GROUP = 'azure-native:monitor:ActionGroup';
const METRIC_ALERT = 'azure-native:monitor:MetricAlert';
const ACTIVITY_LOG_ALERT = 'azure-native:monitor:ActivityLogAlert';
const VM = 'azure-native:compute:VirtualMachine';

interface LeafCondition { field?: string; equals?: string; containsAny?: string[]; anyOf?: LeafCondition[] }

interface Criterion { criterionType: string; name: string; metricName: string; metricNamespace: string; operator: string; threshold: number; timeAggregation: string }

const vmWarnings = (run: StackRun<unknown>) => run.warnings.filter((w) => w.startsWith('signet:alertEmails'));
const availabilityAlerts = (run: StackRun<unknown>) => run.ofType(METRIC_ALERT).filter((a) => String(a.inputs.ruleName).endsWith('-availability'));
const creditAlerts = (run: StackRun<unknown>) => run.ofType(METRIC_ALERT).filter((a) => String(a.inputs.ruleName).endsWith('-cpu-credits'));
const roleOf = (vm: RecordedResource) => String(vm.inputs.vmName).replace('vm-signet-fabrikam-', '');

/** A metric alert on one of the VMs, as both kinds are declared: its scope, names, timing, severity, criterion and action group. */
function expectVmMetricAlert(alert: RecordedResource, vms: RecordedResource[], group: RecordedResource, expected: {
  suffix: string; name: (role: string) => string; frequency: string; window: string; severity: (role: string) => number; criterion: Partial<Criterion>;
}): RecordedResource {
  const vm = vms.find((v) => v.id === (alert.inputs.scopes as string[])[0]) as RecordedResource;
  const role = roleOf(vm);
  expect(alert.name).to.equal(expected.name(role));
  expect(alert.inputs.scopes).to.deep.equal([vm.id]);
  expect(alert.inputs).to.include({
    ruleName: `alert-signet-fabrikam-vm-${role}-${expected.suffix}`,
    resourceGroupName: 'rg-signet-fabrikam', location: 'global',
    enabled: true, autoMitigate: true,
    evaluationFrequency: expected.frequency, windowSize: expected.window,
    severity: expected.severity(role),
  });
  expect(alert.inputs.tags).to.include({ 'signet:tenant': 'fabrikam' });
  expect(alert.inputs.actions).to.deep.equal([{ actionGroupId: group.id }]);
  const criteria = alert.inputs.criteria as { odataType: string; allOf: Criterion[] };
  expect(criteria.odataType).to.equal('Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria');
  expect(criteria.allOf).to.deep.equal([{
    criterionType: 'StaticThresholdCriterion', metricNamespace: 'Microsoft.Compute/virtualMachines', operator: 'LessThan', timeAggregation: 'Average',
    ...expected.criterion,
  }]);
  expect(alert.inputs.description).to.include(String(vm.inputs.vmName));
  return vm;
}

describe('infra: Azure Monitor VM availability alerts (signet:alertEmails)', function () {
  let artifact: ArtifactFixture;
  before(() => { artifact = placeholderArtifact(); });
  after(() => artifact.cleanup());

  describe('config', function () {
    it('is empty by default, trims, compares without case and keeps each address once', function () {
      expect(parseStackConfig(fabrikam(artifact.path, { alertEmails: undefined })).alertEmails).to.deep.equal([]);
      const config = parseStackConfig(fabrikam(artifact.path, { alertEmails: [' Ops@MSP.example ', 'ops@msp.example', 'oncall@msp.example'] }));
      expect(config.alertEmails).to.deep.equal(['ops@msp.example', 'oncall@msp.example']);
    });

    for (const [label, value] of [
      ['a name without a domain', ['ops']],
      ['an address without a top-level domain', ['ops@localhost']],
      ['two addresses in one entry', ['ops@msp.example, oncall@msp.example']],
      ['a single string instead of a list', 'ops@msp.example'],
    ] as const) {
      it(`refuses ${label}, naming signet:alertEmails`, function () {
        const error = failureOf(() => parseStackConfig(fabrikam(artifact.path, { alertEmails: value })));
        expect(error).to.be.instanceOf(pulumi.RunError);
        const line = error.message.split('\n').find((l) => l.trim().startsWith('signet:alertEmails'));
        expect(line, error.message).to.not.equal(undefined);
        if (Array.isArray(value)) expect(line).to.match(/must be an email address/);
      });
    }

    it('warns only without addresses, naming the setting and what is unwatched', function () {
      const base = parseStackConfig(fabrikam(artifact.path));
      expect(vmAvailabilityAlertsWarning(base)).to.equal(undefined);
      const none = vmAvailabilityAlertsWarning({ ...base, alertEmails: [] });
      expect(none).to.match(/^signet:alertEmails is empty/).and.include('monitoring VM').and.include('VmAvailabilityMetric').and.include('SignetWatchdog')
        .and.include('activity log alert');
      const off = vmAvailabilityAlertsWarning({ ...base, alertEmails: [], monitoring: { ...base.monitoring, enabled: false } });
      expect(off).to.include('monitoring is off');
    });

    it('gives the action group a short name of at most 12 characters, never ending in a dash', function () {
      expect(actionGroupShortName('fabrikam')).to.equal('sig-fabrikam');
      expect(actionGroupShortName('northwind')).to.equal('sig-northwin');
      expect(actionGroupShortName('abcdefg-hijkl')).to.equal('sig-abcdefg');
      for (const t of ['abc', 'a-very-long-name', 'tenant-1234567']) expect(actionGroupShortName(t).length).to.be.at.most(12);
    });
  });

  describe('with addresses', function () {
    let config: StackConfig;
    let run: StackRun<StackOutputs>;
    const emails = ['ops@msp.example', 'oncall@msp.example'];
    before(async function () {
      config = parseStackConfig(fabrikam(artifact.path, { nodeCount: 3, alertEmails: [...emails, 'OPS@msp.example'] }));
      run = await runUnderMocks('fabrikam-vm-alerts', () => createTenantStack(config, { baseDir: REPO_ROOT })) as StackRun<StackOutputs>;
    });

    it('declares one action group in the tenant\'s resource group, emailing each address once', function () {
      const groups = run.ofType(ACTION_GROUP);
      expect(groups).to.have.length(1);
      const group = groups[0] as RecordedResource;
      expect(group.name).to.equal('fabrikam-ag');
      expect(group.inputs).to.include({ actionGroupName: 'ag-signet-fabrikam', groupShortName: 'sig-fabrikam', resourceGroupName: 'rg-signet-fabrikam', enabled: true });
      expect(String(group.inputs.groupShortName).length).to.be.at.most(12);
      expect(group.inputs.tags).to.include({ 'signet:tenant': 'fabrikam', 'managed-by': 'pulumi', customer: 'Fabrikam' });
      const receivers = group.inputs.emailReceivers as { name: string; emailAddress: string }[];
      expect(receivers.map((r) => r.emailAddress)).to.deep.equal(emails);
      expect(new Set(receivers.map((r) => r.name)).size).to.equal(receivers.length);
    });

    it('declares one metric alert per VM (every node and the monitoring VM), scoped to that VM\'s id and pointing at the action group', function () {
      const vms = run.ofType(VM);
      expect(vms).to.have.length(config.nodeCount + 1);
      const alerts = availabilityAlerts(run);
      expect(alerts).to.have.length(vms.length);
      const group = run.ofType(ACTION_GROUP)[0] as RecordedResource;
      expect(group.id).to.match(/\/resourceGroups\/rg-signet-fabrikam\/providers\/Microsoft\.Insights\/actionGroups\/ag-signet-fabrikam$/);
      const scoped = alerts.map((a) => (a.inputs.scopes as string[])[0]);
      expect(scoped).to.have.members(vms.map((v) => v.id));
      for (const alert of alerts) {
        expectVmMetricAlert(alert, vms, group, {
          suffix: 'availability', name: (role) => `fabrikam-alert-vm-${role}`, frequency: 'PT1M', window: 'PT5M',
          severity: (role) => (role === 'monitoring' ? 2 : 1),
          criterion: { name: 'vm-unavailable', metricName: 'VmAvailabilityMetric', threshold: 1 },
        });
      }
      expect(alerts.map((a) => a.inputs.ruleName)).to.include('alert-signet-fabrikam-vm-monitoring-availability');
    });

    it('declares a CPU-credit alert for every burstable VM (the default Standard_B2s nodes and monitoring VM), one severity below its availability alert', function () {
      const vms = run.ofType(VM);
      expect(vms.map((v) => (v.inputs.hardwareProfile as { vmSize: string }).vmSize)).to.deep.equal(vms.map(() => 'Standard_B2s'));
      const alerts = creditAlerts(run);
      expect(alerts).to.have.length(vms.length);
      expect(run.ofType(METRIC_ALERT)).to.have.length(2 * vms.length);
      const group = run.ofType(ACTION_GROUP)[0] as RecordedResource;
      expect(alerts.map((a) => (a.inputs.scopes as string[])[0])).to.have.members(vms.map((v) => v.id));
      for (const alert of alerts) {
        const vm = expectVmMetricAlert(alert, vms, group, {
          suffix: 'cpu-credits', name: (role) => `fabrikam-alert-vm-${role}-cpu-credits`, frequency: 'PT5M', window: 'PT15M',
          // a node's credits running out is a warning before mail waits; the monitoring VM's, less
          severity: (role) => (role === 'monitoring' ? 3 : 2),
          // below a B2s's 60 initial credits, so a fresh VM does not alert while it banks
          criterion: { name: 'cpu-credits-low', metricName: 'CPU Credits Remaining', threshold: 30 },
        });
        expect(alert.inputs.description).to.include(String(vm.inputs.vmName)).and.include('Standard_B2s').and.include('runbooks/scale-nodes.md');
      }
    });

    it('declares one activity log alert for a VM powered off, deallocated or deleted, scoped to exactly the tenant\'s VMs and mailing the action group', function () {
      const alerts = run.ofType(ACTIVITY_LOG_ALERT);
      expect(alerts).to.have.length(1);
      const alert = alerts[0] as RecordedResource;
      const group = run.ofType(ACTION_GROUP)[0] as RecordedResource;
      const vms = run.ofType(VM);
      expect(alert.name).to.equal('fabrikam-alert-vm-stopped-or-deleted');
      expect(alert.inputs).to.include({
        activityLogAlertName: 'alert-signet-fabrikam-vm-stopped-or-deleted',
        resourceGroupName: 'rg-signet-fabrikam', location: 'Global', enabled: true,
      });
      expect(alert.id).to.match(/\/resourceGroups\/rg-signet-fabrikam\/providers\/Microsoft\.Insights\/activityLogAlerts\/alert-signet-fabrikam-vm-stopped-or-deleted$/);
      expect(alert.inputs.tags).to.include({ 'signet:tenant': 'fabrikam', 'managed-by': 'pulumi', customer: 'Fabrikam' });
      expect(alert.inputs.actions).to.deep.equal({ actionGroups: [{ actionGroupId: group.id }] });

      // every node and the monitoring VM, each once, and nothing wider (not the group, not the subscription)
      const scopes = alert.inputs.scopes as string[];
      expect(vms).to.have.length(config.nodeCount + 1);
      expect(scopes).to.have.length(vms.length);
      expect(scopes).to.have.members(vms.map((v) => v.id));
      for (const scope of scopes) expect(scope).to.match(/^\/subscriptions\/[0-9a-f-]+\/resourceGroups\/rg-signet-fabrikam\/providers\/Microsoft\.Compute\/virtualMachines\/vm-signet-fabrikam-(node\d+|monitoring)$/);
      // so `pulumi destroy` deletes the rule before the VMs it watches (no mail for a planned offboarding)
      for (const vm of vms) expect(alert.dependsOn, vm.name).to.include(vm.urn);

      const description = String(alert.inputs.description);
      for (const vm of vms) expect(description).to.include(String(vm.inputs.vmName));
      expect(description).to.include('VmAvailabilityMetric').and.include('"Where alerts link"');
    });

    it('fires only on a power-off, deallocation or deletion that succeeded, in the Administrative category', function () {
      const alert = run.one(ACTIVITY_LOG_ALERT, 'stopped-or-deleted');
      const { allOf } = alert.inputs.condition as { allOf: LeafCondition[] };
      expect(allOf).to.deep.equal([
        { field: 'category', equals: 'Administrative' },
        { anyOf: [
          { field: 'operationName', equals: 'Microsoft.Compute/virtualMachines/powerOff/action' },
          { field: 'operationName', equals: 'Microsoft.Compute/virtualMachines/deallocate/action' },
          { field: 'operationName', equals: 'Microsoft.Compute/virtualMachines/delete' },
        ] },
        // Succeeded only: once the VM really is down, one mail per operation (not Started, Accepted or Failed too)
        { field: 'status', equals: 'Succeeded' },
      ]);
      // Azure's rule for the condition: a leaf has field and equals (or containsAny), an anyOf nothing else
      for (const condition of allOf) {
        if (condition.anyOf) {
          expect(Object.keys(condition)).to.deep.equal(['anyOf']);
          for (const leaf of condition.anyOf) {
            expect(leaf.field).to.be.a('string');
            expect(leaf.anyOf).to.equal(undefined);
          }
        } else {
          expect(condition.field).to.be.a('string');
          expect(condition.equals ?? condition.containsAny).to.not.equal(undefined);
        }
      }
    });

    it('does not warn that the VMs are unwatched', function () {
      expect(vmWarnings(run)).to.deep.equal([]);
    });
  });

  it('watches the nodes alone when there is no monitoring VM', async function () {
    const config = parseStackConfig(fabrikam(artifact.path, { monitoring: { enabled: false } }));
    const run = await runUnderMocks('fabrikam-vm-alerts-nomon', () => createTenantStack(config, { baseDir: REPO_ROOT }));
    const alerts = availabilityAlerts(run);
    expect(alerts.map((a) => a.inputs.ruleName)).to.have.members(['alert-signet-fabrikam-vm-node0-availability', 'alert-signet-fabrikam-vm-node1-availability']);
    expect(creditAlerts(run).map((a) => a.inputs.ruleName)).to.have.members(['alert-signet-fabrikam-vm-node0-cpu-credits', 'alert-signet-fabrikam-vm-node1-cpu-credits']);
    expect(alerts.map((a) => (a.inputs.scopes as string[])[0])).to.have.members(run.ofType(VM).map((v) => v.id));
    expect(run.ofType(ACTION_GROUP)).to.have.length(1);
    const stopped = run.one(ACTIVITY_LOG_ALERT, 'stopped-or-deleted');
    expect(stopped.inputs.scopes).to.have.members(run.ofType(VM).map((v) => v.id));
    expect(stopped.inputs.scopes).to.have.length(2);
    expect(run.warnings).to.deep.equal([]);
  });

  it('declares no CPU-credit alert for a VM of a non-burstable size (Azure refuses an alert on a metric the VM does not emit)', async function () {
    const config = parseStackConfig(fabrikam(artifact.path, { nodeSize: 'Standard_D2as_v5' }));
    const run = await runUnderMocks('fabrikam-vm-alerts-fixed-size', () => createTenantStack(config, { baseDir: REPO_ROOT }));
    expect(availabilityAlerts(run)).to.have.length(config.nodeCount + 1);
    // only the monitoring VM, still the burstable default
    expect(creditAlerts(run).map((a) => a.inputs.ruleName)).to.deep.equal(['alert-signet-fabrikam-vm-monitoring-cpu-credits']);
    expect(run.ofType(METRIC_ALERT)).to.have.length(config.nodeCount + 2);
  });

  it('tells burstable sizes (v1 and v2 B-series) from the others', function () {
    for (const size of ['Standard_B1ls', 'Standard_B2s', 'Standard_B2ms', 'Standard_B20ms', 'Standard_B2ts_v2', 'Standard_B4als_v2', 'Standard_B2pls_v2', 'standard_b2s']) {
      expect(isBurstableSize(size), size).to.equal(true);
    }
    for (const size of ['Standard_D2as_v5', 'Standard_D2s_v5', 'Standard_F2s_v2', 'Standard_E2s_v5', 'Standard_DC2s_v3', 'Standard_NV6', 'Standard_B', 'B2s']) {
      expect(isBurstableSize(size), size).to.equal(false);
    }
  });

  it('without addresses declares no action group and no alert, and warns once that nothing outside the monitoring VM watches the VMs', async function () {
    const config = parseStackConfig(fabrikam(artifact.path, { alertEmails: [] }));
    const run = await runUnderMocks('fabrikam-no-vm-alerts', () => createTenantStack(config, { baseDir: REPO_ROOT }));
    expect(run.ofType(ACTION_GROUP)).to.deep.equal([]);
    expect(run.ofType(METRIC_ALERT)).to.deep.equal([]);
    expect(run.ofType(ACTIVITY_LOG_ALERT)).to.deep.equal([]);
    expect(run.resources.filter((r) => r.type.startsWith('azure-native:monitor:') && r.type !== 'azure-native:monitor:DiagnosticSetting').map((r) => r.type)).to.deep.equal([]);
    const warnings = vmWarnings(run);
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.equal(vmAvailabilityAlertsWarning(config));
    expect(warnings[0]).to.include('if that VM (or its Prometheus) stops, no alert fires at all');
  });
});
