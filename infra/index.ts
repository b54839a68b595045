// Pulumi program entry (Pulumi.yaml `main`): one isolated Signet deployment
// for the tenant named by the selected stack (`pulumi up -s <tenant>`).
// The exported function's result becomes the stack outputs (see outputs.ts).
import * as path from 'node:path';
import { loadStackConfig } from './config';
import { createTenantStack } from './stack';

export = async () => createTenantStack(loadStackConfig(), { baseDir: path.resolve(__dirname, '..') });
