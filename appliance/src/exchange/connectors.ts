// Exchange Online PowerShell that routes a tenant's mail through Signet, after
// Microsoft's "Integrate Exchange Online with an email add-on service":
//   outbound connector (rule-scoped, smart host, TLS with domain validation)
//   → Signet → inbound connector (certificate-identified, on-premises type so
//   the returning mail stays the organization's own) → delivery; a transport
//   rule sends internal senders' mail (envelope sender in an accepted domain of
//   the stack, the only mail the relay takes) to the outbound connector unless
//   the X-Signet-Processed stamp of this organization is present.
// Every script is idempotent (Get-…, then Set-… or New-…), supports -WhatIf,
// and writes values only as validated, single-quoted literals.
import type { StackOutputs } from '../fleet';
import { quote, quoteList, validateAddress, validateDomain, validateGroupName } from './powershell';

export const OUTBOUND_CONNECTOR = 'Signet outbound to relay';
export const INBOUND_CONNECTOR = 'Signet inbound from relay';
export const ROUTE_RULE = 'Signet route to relay';
export const EXEMPT_RULE_PREFIX = 'Signet exempt ';
/** The stamp the relay adds (`org=<orgId>; …`); mail carrying this org's stamp is never routed again. */
export const STAMP_HEADER = 'X-Signet-Processed';
/** Set by the exemption rules on message types that stay in Exchange. */
export const EXEMPT_HEADER = 'X-Signet-Exempt';

/**
 * The values New-TransportRule's -MessageTypeMatches accepts (one per rule).
 * Signet leaves all of them unchanged, so by default none is sent to it:
 * S/MIME signed or encrypted and rights-protected bodies cannot be edited,
 * meeting requests and answers, read receipts, approval requests and
 * voicemail are not a person's message, automatic forwards already carried
 * the signature, and automatic replies are unsigned unless the org asks.
 */
export const MESSAGE_TYPES = ['OOF', 'AutoForward', 'Encrypted', 'Calendaring', 'PermissionControlled', 'Voicemail', 'Signed', 'ApprovalRequest', 'ReadReceipt'] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

export type SenderScope = { kind: 'all' } | { kind: 'groups'; groups: string[] } | { kind: 'users'; users: string[] };

export interface ConnectorScriptOptions {
  scope: SenderScope;
  /** Also route mail whose recipients are all inside the organization. */
  internal: boolean;
  /** Message types to route to Signet anyway (e.g. OOF when the org signs automatic replies). */
  routeMessageTypes: MessageType[];
  /** Create the routing rule disabled (connectors ready, no mail routed until `resume`). */
  disabled: boolean;
}

/** `all`, `groups:Sales,Marketing` or `users:ann@contoso.com,bob@contoso.com`. */
/** A comma-separated list in which a name holding a comma is written in double quotes: `"Sales, EMEA",Marketing`. */
function splitScopeList(text: string): string[] {
  const items: string[] = [];
  let current = '';
  let quoted = false;
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    else if (ch === ',' && !quoted) {
      items.push(current);
      current = '';
    } else current += ch;
  }
  if (quoted) throw new Error(`--scope: a double quote is not closed in ${JSON.stringify(text)} (write a name holding a comma as "Sales, EMEA")`);
  items.push(current);
  return items.map((s) => s.trim()).filter(Boolean);
}

export function parseScope(text: string): SenderScope {
  const trimmed = text.trim();
  if (trimmed === 'all') return { kind: 'all' };
  const colon = trimmed.indexOf(':');
  const kind = colon < 0 ? trimmed : trimmed.slice(0, colon);
  const list = colon < 0 ? [] : splitScopeList(trimmed.slice(colon + 1));
  if (kind === 'groups') {
    if (!list.length) throw new Error('--scope groups: name at least one group, e.g. groups:Sales,Marketing');
    return { kind: 'groups', groups: list.map((g) => validateGroupName(g, '--scope groups')) };
  }
  if (kind === 'users') {
    if (!list.length) throw new Error('--scope users: name at least one address, e.g. users:ann@contoso.com');
    return { kind: 'users', users: list.map((u) => validateAddress(u, '--scope users')) };
  }
  throw new Error(`--scope: ${JSON.stringify(text)} is not one of all, groups:NAME[,NAME…], users:ADDRESS[,ADDRESS…]`);
}

export function parseMessageTypes(text: string): MessageType[] {
  const out: MessageType[] = [];
  for (const raw of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const found = MESSAGE_TYPES.find((t) => t.toLowerCase() === raw.toLowerCase());
    if (!found) throw new Error(`--route-message-types: ${JSON.stringify(raw)} is not one of ${MESSAGE_TYPES.join(', ')}`);
    if (!out.includes(found)) out.push(found);
  }
  return out;
}

interface Checked {
  tenant: string;
  orgId: string;
  smartHost: string;
  certificateDomain: string;
  acceptedDomains: string[];
}

// The stack outputs were validated when loaded; validate again here because
// this is the point where the values become PowerShell.
function check(outputs: StackOutputs): Checked {
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(outputs.orgId)) throw new Error(`orgId ${JSON.stringify(outputs.orgId)}: lower-case letters, digits and dashes only`);
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/i.test(outputs.tenantName)) throw new Error(`tenantName ${JSON.stringify(outputs.tenantName)}: letters, digits and dashes only`);
  return {
    tenant: outputs.tenantName,
    orgId: outputs.orgId,
    smartHost: validateDomain(outputs.smartHostFqdn, 'smartHostFqdn'),
    certificateDomain: validateDomain(outputs.certificateDomain, 'certificateDomain'),
    acceptedDomains: outputs.acceptedDomains.map((d, i) => validateDomain(d, `acceptedDomains.${i}`)),
  };
}

function header(lines: string[], c: Checked, title: string, usage: string[]): void {
  lines.push(
    `# ${title}`,
    `# Tenant ${c.tenant} (${c.tenant}.onmicrosoft.com), Signet organization ${c.orgId}.`,
    '# Generated by `signet connectors` from the tenant\'s stack outputs; edit the inputs and regenerate instead of editing this file.',
    '# Run it in Exchange Online PowerShell after Connect-ExchangeOnline, as an Exchange administrator:',
    ...usage.map((u) => `#   ${u}`),
  );
}

const PRELUDE = [
  'Set-StrictMode -Version 3.0',
  "$ErrorActionPreference = 'Stop'",
  '',
  "if (-not (Get-Command -Name 'Get-TransportRule' -ErrorAction SilentlyContinue)) {",
  "    throw 'Exchange Online cmdlets are not loaded: run Connect-ExchangeOnline first.'",
  '}',
];

function allRuleNames(): string[] {
  return [ROUTE_RULE, ...MESSAGE_TYPES.map((t) => EXEMPT_RULE_PREFIX + t)];
}

/** The script that creates or updates both connectors and the transport rules. */
export function connectorsScript(outputs: StackOutputs, options: ConnectorScriptOptions): string {
  const c = check(outputs);
  // Validated again: callers may build the scope without parseScope.
  const scope: SenderScope =
    options.scope.kind === 'groups'
      ? { kind: 'groups', groups: options.scope.groups.map((g) => validateGroupName(g, 'scope groups')) }
      : options.scope.kind === 'users'
        ? { kind: 'users', users: options.scope.users.map((u) => validateAddress(u, 'scope users')) }
        : options.scope;
  const exempt = MESSAGE_TYPES.filter((t) => !options.routeMessageTypes.includes(t));
  const routed = MESSAGE_TYPES.filter((t) => options.routeMessageTypes.includes(t));
  const scopeText =
    scope.kind === 'all' ? 'every sender in the organization' : scope.kind === 'groups' ? `members of ${scope.groups.length} group(s)` : `${scope.users.length} listed sender(s)`;
  const lines: string[] = [];
  header(lines, c, 'Signet: route outgoing mail through the Signet relay (connectors and transport rules).', [
    './signet-connectors.ps1 -WhatIf    # shows what would be created or changed, changes nothing',
    './signet-connectors.ps1            # creates what is missing, updates what exists (never duplicates)',
  ]);
  lines.push(
    `# Senders: ${scopeText}, envelope sender in ${c.acceptedDomains.join(', ')}; recipients: ${options.internal ? 'all (internal and external)' : 'external only'}.`,
    '[CmdletBinding(SupportsShouldProcess = $true)]',
    'param(',
    '    # Create the connectors even though the certificate domain is not an accepted domain yet.',
    '    [switch]$SkipAcceptedDomainCheck',
    ')',
    ...PRELUDE,
    '',
    '# 1. The certificate domain Signet presents when it returns mail must be an accepted domain of',
    '#    the tenant (Microsoft\'s add-on service guidance, step 3: add it in the Microsoft 365 admin',
    '#    center and prove it with the TXT record). The inbound connector trusts this name.',
    `if (-not $SkipAcceptedDomainCheck -and -not (Get-AcceptedDomain -Identity ${quote(c.certificateDomain)} -ErrorAction SilentlyContinue)) {`,
    `    throw ${quote(`${c.certificateDomain} is not an accepted domain of this tenant yet: add and verify it first (or pass -SkipAcceptedDomainCheck).`)}`,
    '}',
    '',
    '# 2. Outbound connector to Signet. OnPremises type with CloudServicesMailEnabled keeps the',
    '#    cross-premises headers, so the message stays an internal, trusted message on its way back',
    '#    (the same value must be on the inbound connector). Used only when a transport rule routes',
    '#    to it (IsTransportRuleScoped), delivered to the smart host without an MX lookup, over TLS',
    '#    with the certificate name checked against the smart host (DomainValidation).',
    `$outbound = Get-OutboundConnector -Identity ${quote(OUTBOUND_CONNECTOR)} -ErrorAction SilentlyContinue`,
    'if ($outbound) {',
    `    Write-Host ${quote(`Updating outbound connector ${OUTBOUND_CONNECTOR}`)}`,
    `    Set-OutboundConnector -Identity ${quote(OUTBOUND_CONNECTOR)} -ConnectorType OnPremises -IsTransportRuleScoped $true -UseMXRecord $false -SmartHosts ${quote(c.smartHost)} -TlsSettings DomainValidation -TlsDomain ${quote(c.smartHost)} -CloudServicesMailEnabled $true -RouteAllMessagesViaOnPremises $false -Enabled $true -Comment ${quote(`Signet relay for ${c.orgId}`)} -WhatIf:$WhatIfPreference`,
    '} else {',
    `    Write-Host ${quote(`Creating outbound connector ${OUTBOUND_CONNECTOR}`)}`,
    `    New-OutboundConnector -Name ${quote(OUTBOUND_CONNECTOR)} -ConnectorType OnPremises -IsTransportRuleScoped $true -UseMXRecord $false -SmartHosts ${quote(c.smartHost)} -TlsSettings DomainValidation -TlsDomain ${quote(c.smartHost)} -CloudServicesMailEnabled $true -RouteAllMessagesViaOnPremises $false -Enabled $true -Comment ${quote(`Signet relay for ${c.orgId}`)} -WhatIf:$WhatIfPreference`,
    '}',
    '',
    '# 3. Inbound connector from Signet: accepts mail for any sender domain (SenderDomains *) only over',
    '#    TLS from a server whose certificate names this tenant\'s unique certificate domain.',
    '#    TreatMessagesAsInternal is not used: it cannot be combined with CloudServicesMailEnabled $true,',
    '#    which already keeps the returning mail internal.',
    `$inbound = Get-InboundConnector -Identity ${quote(INBOUND_CONNECTOR)} -ErrorAction SilentlyContinue`,
    'if ($inbound) {',
    `    Write-Host ${quote(`Updating inbound connector ${INBOUND_CONNECTOR}`)}`,
    `    Set-InboundConnector -Identity ${quote(INBOUND_CONNECTOR)} -SenderDomains '*' -ConnectorType OnPremises -RequireTls $true -RestrictDomainsToCertificate $true -TlsSenderCertificateName ${quote(c.certificateDomain)} -CloudServicesMailEnabled $true -Enabled $true -Comment ${quote(`Signet relay for ${c.orgId}`)} -WhatIf:$WhatIfPreference`,
    '} else {',
    `    Write-Host ${quote(`Creating inbound connector ${INBOUND_CONNECTOR}`)}`,
    `    New-InboundConnector -Name ${quote(INBOUND_CONNECTOR)} -SenderDomains '*' -ConnectorType OnPremises -RequireTls $true -RestrictDomainsToCertificate $true -TlsSenderCertificateName ${quote(c.certificateDomain)} -CloudServicesMailEnabled $true -Enabled $true -Comment ${quote(`Signet relay for ${c.orgId}`)} -WhatIf:$WhatIfPreference`,
    '}',
    '',
    '# 4. Message types that stay in Exchange. A transport rule\'s -ExceptIfMessageTypeMatches takes a',
    '#    single type, so one exception cannot name them all. Instead one small rule per type, ahead',
    `#    of the routing rule, marks the message with the ${EXEMPT_HEADER} header (value: the type), and`,
    '#    the routing rule has one exception for that header. They are scoped like the routing rule',
    '#    (same senders and recipients), so other mail is not touched, and they do not stop rule',
    '#    processing, so the organization\'s own rules still run on these messages.',
  );
  const scopeNew =
    scope.kind === 'groups' ? ` -FromMemberOf ${quoteList(scope.groups)}` : scope.kind === 'users' ? ` -From ${quoteList(scope.users)}` : '';
  // Set-TransportRule keeps a condition the command does not mention, so an
  // update clears explicitly what this scope does not use.
  const scopeSet =
    scope.kind === 'groups'
      ? ` -From $null -FromMemberOf ${quoteList(scope.groups)}`
      : scope.kind === 'users'
        ? ` -FromMemberOf $null -From ${quoteList(scope.users)}`
        : ' -From $null -FromMemberOf $null';
  // The relay refuses (550 5.7.1) an envelope sender outside the organization's accepted
  // domains, and Exchange Online turns that into a bounce. FromScope InOrganization alone also
  // takes in senders of the tenant's other domains (its onmicrosoft.com domain, a domain added
  // later), so the rules also require the envelope sender's domain (SenderAddressLocation
  // Envelope: the MAIL FROM the relay checks) to be one of the stack's accepted domains, exactly
  // (SenderDomainIs does not match subdomains; neither does the relay). Other senders' mail is
  // delivered directly, unsigned, instead of bouncing.
  const domains = ` -SenderAddressLocation Envelope -SenderDomainIs ${quoteList(c.acceptedDomains)}`;
  const recipientsNew = options.internal ? '' : ' -SentToScope NotInOrganization';
  const recipientsSet = options.internal ? ' -SentToScope $null' : ' -SentToScope NotInOrganization';
  let priority = 0;
  if (exempt.length) {
    lines.push(
      `$priority = ${priority}`,
      `foreach ($type in @(${quoteList(exempt)})) {`,
      `    $name = ${quote(EXEMPT_RULE_PREFIX)} + $type`,
      '    if (Get-TransportRule -Identity $name -ErrorAction SilentlyContinue) {',
      "        Write-Host \"Updating transport rule $name\"",
      `        Set-TransportRule -Identity $name -Priority $priority -Mode Enforce -FromScope InOrganization${domains}${recipientsSet}${scopeSet} -MessageTypeMatches $type -SetHeaderName ${quote(EXEMPT_HEADER)} -SetHeaderValue $type -StopRuleProcessing $false -Comments 'Signet: leave this message type to Exchange' -WhatIf:$WhatIfPreference`,
      '    } else {',
      "        Write-Host \"Creating transport rule $name\"",
      `        New-TransportRule -Name $name -Priority $priority -Mode Enforce -Enabled $true -FromScope InOrganization${domains}${recipientsNew}${scopeNew} -MessageTypeMatches $type -SetHeaderName ${quote(EXEMPT_HEADER)} -SetHeaderValue $type -StopRuleProcessing $false -Comments 'Signet: leave this message type to Exchange' -WhatIf:$WhatIfPreference`,
      '    }',
      '    $priority++',
      '}',
    );
    priority += exempt.length;
  }
  if (routed.length) {
    lines.push(
      '# Types this organization wants signed: an exemption rule from an earlier run is removed.',
      `foreach ($type in @(${quoteList(routed)})) {`,
      `    $name = ${quote(EXEMPT_RULE_PREFIX)} + $type`,
      '    if (Get-TransportRule -Identity $name -ErrorAction SilentlyContinue) {',
      "        Write-Host \"Removing transport rule $name\"",
      '        Remove-TransportRule -Identity $name -Confirm:$false -WhatIf:$WhatIfPreference',
      '    }',
      '}',
    );
  }
  const stampPattern = `org=${c.orgId}(;|\\s|$)`;
  const exemptNew = exempt.length ? ` -ExceptIfHeaderContainsMessageHeader ${quote(EXEMPT_HEADER)} -ExceptIfHeaderContainsWords ${quoteList(exempt)}` : '';
  const exemptSet = exempt.length ? exemptNew : ' -ExceptIfHeaderContainsMessageHeader $null -ExceptIfHeaderContainsWords $null';
  const common = `-Mode Enforce -FromScope InOrganization${domains}`;
  const tail = `-ExceptIfHeaderMatchesMessageHeader ${quote(STAMP_HEADER)} -ExceptIfHeaderMatchesPatterns ${quote(stampPattern)} -RouteMessageOutboundConnector ${quote(OUTBOUND_CONNECTOR)} -StopRuleProcessing $true -Comments ${quote(`Signet: route to the relay of ${c.orgId}; mail stamped by it returns and is delivered`)} -WhatIf:$WhatIfPreference`;
  lines.push(
    '',
    '# 5. The routing rule: mail from senders in scope goes to the outbound connector unless this',
    `#    organization's stamp is present (${STAMP_HEADER}: org=${c.orgId}; ...), which is what stops the`,
    '#    loop when Signet hands the message back. It stops rule processing, so the organization\'s',
    '#    later rules run once, on the returning message. Only envelope senders in the accepted',
    '#    domains above are routed: the relay refuses any other (550), which would bounce the mail;',
    '#    theirs is delivered directly, unsigned. Re-running keeps the rule enabled or disabled as',
    '#    it is (pause/resume scripts switch it).',
    `$route = Get-TransportRule -Identity ${quote(ROUTE_RULE)} -ErrorAction SilentlyContinue`,
    'if ($route) {',
    `    Write-Host ${quote(`Updating transport rule ${ROUTE_RULE}`)}`,
    `    Set-TransportRule -Identity ${quote(ROUTE_RULE)} -Priority ${priority} ${common}${recipientsSet}${scopeSet}${exemptSet} ${tail}`,
    '} elseif ($WhatIfPreference -and -not $outbound) {',
    `    Write-Host ${quote(`What if: Creating transport rule ${ROUTE_RULE} (after the outbound connector it routes to exists)`)}`,
    '} else {',
    `    Write-Host ${quote(`Creating transport rule ${ROUTE_RULE}${options.disabled ? ' (disabled: resume to start routing)' : ''}`)}`,
    `    New-TransportRule -Name ${quote(ROUTE_RULE)} -Priority ${priority} ${common} -Enabled ${options.disabled ? '$false' : '$true'}${recipientsNew}${scopeNew}${exemptNew} ${tail}`,
    '}',
    '',
    "Write-Host 'Done. Verify: Get-OutboundConnector, Get-InboundConnector, Get-TransportRule | Where-Object Name -like ''Signet*'''",
    '',
  );
  return lines.join('\n');
}

function switchRulesScript(outputs: StackOutputs, enable: boolean): string {
  const c = check(outputs);
  const verb = enable ? 'Enable' : 'Disable';
  const lines: string[] = [];
  header(
    lines,
    c,
    enable ? 'Signet: resume signing (enable the transport rules that route mail to the relay).' : 'Signet: pause signing (disable the transport rules; mail is delivered without Signet, connectors stay).',
    [enable ? './signet-resume.ps1 -WhatIf' : './signet-pause.ps1 -WhatIf', enable ? './signet-resume.ps1' : './signet-pause.ps1'],
  );
  lines.push(
    '[CmdletBinding(SupportsShouldProcess = $true)]',
    'param()',
    ...PRELUDE,
    '',
    `$found = 0`,
    // resuming, the exemptions are on before the routing rule; pausing, the routing rule goes off first
    `foreach ($name in @(${quoteList(enable ? [...allRuleNames()].reverse() : allRuleNames())})) {`,
    '    if (Get-TransportRule -Identity $name -ErrorAction SilentlyContinue) {',
    `        Write-Host "${enable ? 'Enabling' : 'Disabling'} transport rule $name"`,
    `        ${verb}-TransportRule -Identity $name -Confirm:$false -WhatIf:$WhatIfPreference`,
    '        $found++',
    '    }',
    '}',
    `if ($found -eq 0) { throw ${quote(`No Signet transport rule found: run the script of \`signet connectors script\` first.`)} }`,
    '',
  );
  return lines.join('\n');
}

export function pauseScript(outputs: StackOutputs): string {
  return switchRulesScript(outputs, false);
}

export function resumeScript(outputs: StackOutputs): string {
  return switchRulesScript(outputs, true);
}

/** Removes the rules first (mail stops going to Signet), then the connectors. */
export function removeScript(outputs: StackOutputs): string {
  const c = check(outputs);
  const lines: string[] = [];
  header(lines, c, 'Signet: remove the transport rules and both connectors from the tenant.', [
    './signet-remove.ps1 -WhatIf',
    './signet-remove.ps1           # asks for confirmation; -Force does not',
  ]);
  lines.push(
    '# Run the pause script first and wait until the nodes see no more mail: a rule change reaches',
    '# every Exchange Online server only after a while, and a message still routed to Signet once the',
    '# inbound connector is gone is refused on its way back (550 5.7.64 TenantAttribution) and',
    '# bounces. So the script refuses to run while the routing rule is still enabled.',
    '[CmdletBinding(SupportsShouldProcess = $true)]',
    'param(',
    '    # Do not ask for confirmation.',
    '    [switch]$Force,',
    '    # Remove even though the routing rule is still enabled (mail in transit may bounce).',
    '    [switch]$SkipPauseCheck',
    ')',
    ...PRELUDE,
    '',
    `$route = Get-TransportRule -Identity ${quote(ROUTE_RULE)} -ErrorAction SilentlyContinue`,
    "if ($route -and $route.State -ne 'Disabled' -and -not $SkipPauseCheck) {",
    `    throw ${quote(`The transport rule ${ROUTE_RULE} is still enabled: run the pause script, wait until the nodes see no more mail (signet status), then remove (or pass -SkipPauseCheck).`)}`,
    '}',
    `if (-not $WhatIfPreference -and -not $Force -and -not $PSCmdlet.ShouldContinue(${quote(`Remove Signet's transport rules and connectors from tenant ${c.tenant}?`)}, 'Signet')) { return }`,
    '',
    `foreach ($name in @(${quoteList(allRuleNames())})) {`,
    '    if (Get-TransportRule -Identity $name -ErrorAction SilentlyContinue) {',
    '        Write-Host "Removing transport rule $name"',
    '        Remove-TransportRule -Identity $name -Confirm:$false -WhatIf:$WhatIfPreference',
    '    }',
    '}',
    `if (Get-OutboundConnector -Identity ${quote(OUTBOUND_CONNECTOR)} -ErrorAction SilentlyContinue) {`,
    `    Write-Host ${quote(`Removing outbound connector ${OUTBOUND_CONNECTOR}`)}`,
    `    Remove-OutboundConnector -Identity ${quote(OUTBOUND_CONNECTOR)} -Confirm:$false -WhatIf:$WhatIfPreference`,
    '}',
    `if (Get-InboundConnector -Identity ${quote(INBOUND_CONNECTOR)} -ErrorAction SilentlyContinue) {`,
    `    Write-Host ${quote(`Removing inbound connector ${INBOUND_CONNECTOR}`)}`,
    `    Remove-InboundConnector -Identity ${quote(INBOUND_CONNECTOR)} -Confirm:$false -WhatIf:$WhatIfPreference`,
    '}',
    `Write-Host ${quote(`Removed. The certificate domain ${c.certificateDomain} can now be removed from the tenant's domains.`)}`,
    '',
  );
  return lines.join('\n');
}
