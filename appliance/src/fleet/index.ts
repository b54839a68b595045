// A tenant's deployed fleet as operators see it: its stack outputs and its nodes' health and metrics.
export { loadStackOutputs, parseStackOutputs, nodeHealthUrl, stackOutputsSchema, dnsName, type StackOutputs, type StackNode } from './stack-outputs';
export { collectStatus, formatStatusTable, normalizeNodeUrl, readMetrics, type NodeStatus, type NodeTarget, type MetricsSnapshot } from './status';
