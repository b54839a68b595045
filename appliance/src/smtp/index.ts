export { createRelay, Relay, SmtpReplyError, type ActiveOrg, type RelayOptions, type RelayLimits, type RelayTlsMaterial, type RelayStatus } from './relay';
export { DownstreamSession, DownstreamError, FailedAddresses, probeDownstream, classifyError, parseReply, CAUSE_HINTS, type DownstreamOptions, type DownstreamTls, type DownstreamCause, type ProbeResult, type SmtpReply } from './downstream';
export { HopGate, HopLimitError, countStamps, findMessageId, STAMP_HEADER_NAME } from './hop-gate';
export { checkClientIdentity, nameMatches, dnsNamesOf, type ClientIdentity, type ClientCertReason } from './client-identity';
export { loadRelayConfig, parseRelayConfig, relayConfigSchema, relayConfigJsonSchema, RelayConfigError, type RelayConfig } from './config';
