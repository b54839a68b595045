// A tenant's deployed fleet as operators see it: its stack outputs and its nodes' health and metrics.
export { loadStackOutputs, parseStackOutputs, stackOutputsSchema, dnsName, type StackOutputs, type StackNode } from './stack-outputs';
