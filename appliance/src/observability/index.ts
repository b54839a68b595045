export { createMetrics, directorySyncCounter, type SignetMetrics, type Outcome, type DirectorySyncResult } from './metrics';
export { createLogger, createIdHasher, type Logger } from './log';
export { startHealthServer, type HealthServer, type HealthServerOptions, type Readiness } from './http';
export { certificateFacts, recordCertificateExpiry, type CertificateFacts } from './certificates';
