// Exchange Online PowerShell generated from a tenant's stack outputs.
export {
  connectorsScript,
  pauseScript,
  resumeScript,
  removeScript,
  parseScope,
  parseMessageTypes,
  MESSAGE_TYPES,
  OUTBOUND_CONNECTOR,
  INBOUND_CONNECTOR,
  ROUTE_RULE,
  EXEMPT_RULE_PREFIX,
  STAMP_HEADER,
  EXEMPT_HEADER,
  type ConnectorScriptOptions,
  type MessageType,
  type SenderScope,
} from './connectors';
export { quote, quoteList, validateAddress, validateDomain, validateGroupName } from './powershell';
