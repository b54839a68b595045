export { createMetrics, type SignetMetrics, type Outcome } from './metrics';
export { createLogger, createIdHasher, type Logger } from './log';
