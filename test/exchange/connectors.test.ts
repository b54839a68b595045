import { expect } from 'chai';
import { mkdirSync, readFileSync, writeFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  connectorsScript,
  pauseScript,
  removeScript,
  resumeScript,
  parseScope,
  parseMessageTypes,
  quote,
  MESSAGE_TYPES,
  ROUTE_RULE,
  type ConnectorScriptOptions,
} from '../../appliance/src/exchange';
import { loadStackOutputs, parseStackOutputs } from '../../appliance/src/fleet';
import { cmdletCalls, stringValues, tokenize } from './powershell-parse';

const ROOT = resolve(__dirname, '../..');
const GOLDEN = join(ROOT, 'test/golden');
const FIXTURE = join(ROOT, 'test/fixtures/stack-outputs.json');
const outputs = loadStackOutputs(FIXTURE);

// Every parameter the generated scripts may use, per cmdlet, copied from the
// cmdlet's documentation (SYNTAX section) at the URL next to it. A parameter
// that is not here fails the test: check it against the page, then add it.
const COMMON = ['ErrorAction', 'WarningAction', 'Verbose', 'Debug']; // about_CommonParameters
const DOCUMENTED: Record<string, { source: string; parameters: string[] }> = {
  'Get-Command': { source: 'https://learn.microsoft.com/powershell/module/microsoft.powershell.core/get-command', parameters: ['Name', 'Module', 'CommandType'] },
  'Set-StrictMode': { source: 'https://learn.microsoft.com/powershell/module/microsoft.powershell.core/set-strictmode', parameters: ['Version', 'Off'] },
  'Write-Host': { source: 'https://learn.microsoft.com/powershell/module/microsoft.powershell.utility/write-host', parameters: ['Object', 'NoNewline', 'Separator', 'ForegroundColor', 'BackgroundColor'] },
  'Get-AcceptedDomain': { source: 'https://learn.microsoft.com/powershell/module/exchange/get-accepteddomain', parameters: ['Identity', 'ResultSize'] },
  'Get-OutboundConnector': { source: 'https://learn.microsoft.com/powershell/module/exchange/get-outboundconnector', parameters: ['Identity', 'IncludeTestModeConnectors', 'IsTransportRuleScoped'] },
  'New-OutboundConnector': {
    source: 'https://learn.microsoft.com/powershell/module/exchange/new-outboundconnector',
    parameters: ['Name', 'AllAcceptedDomains', 'CloudServicesMailEnabled', 'Comment', 'Confirm', 'ConnectorSource', 'ConnectorType', 'Enabled', 'IsTransportRuleScoped', 'LinkForModifiedConnector', 'RecipientDomains', 'RouteAllMessagesViaOnPremises', 'SmartHosts', 'TestMode', 'TlsDomain', 'TlsSettings', 'UseMXRecord', 'WhatIf'],
  },
  'Set-OutboundConnector': {
    source: 'https://learn.microsoft.com/powershell/module/exchange/set-outboundconnector',
    parameters: ['Identity', 'AllAcceptedDomains', 'CloudServicesMailEnabled', 'Comment', 'Confirm', 'ConnectorSource', 'ConnectorType', 'Enabled', 'IsTransportRuleScoped', 'IsValidated', 'LastValidationTimestamp', 'Name', 'RecipientDomains', 'RouteAllMessagesViaOnPremises', 'SmartHosts', 'TestMode', 'TlsDomain', 'TlsSettings', 'UseMXRecord', 'ValidationRecipients', 'WhatIf'],
  },
  'Remove-OutboundConnector': { source: 'https://learn.microsoft.com/powershell/module/exchange/remove-outboundconnector', parameters: ['Identity', 'Confirm', 'WhatIf'] },
  'Get-InboundConnector': { source: 'https://learn.microsoft.com/powershell/module/exchange/get-inboundconnector', parameters: ['Identity'] },
  'New-InboundConnector': {
    source: 'https://learn.microsoft.com/powershell/module/exchange/new-inboundconnector',
    parameters: ['Name', 'SenderDomains', 'AssociatedAcceptedDomains', 'CloudServicesMailEnabled', 'Comment', 'Confirm', 'ConnectorSource', 'ConnectorType', 'EFSkipIPs', 'EFSkipLastIP', 'EFUsers', 'Enabled', 'RequireTls', 'RestrictDomainsToCertificate', 'RestrictDomainsToIPAddresses', 'SenderIPAddresses', 'TlsSenderCertificateName', 'TreatMessagesAsInternal', 'TrustedOrganizations', 'WhatIf'],
  },
  'Set-InboundConnector': {
    source: 'https://learn.microsoft.com/powershell/module/exchange/set-inboundconnector',
    parameters: ['Identity', 'AssociatedAcceptedDomains', 'CloudServicesMailEnabled', 'Comment', 'Confirm', 'ConnectorSource', 'ConnectorType', 'EFSkipIPs', 'EFSkipLastIP', 'EFUsers', 'Enabled', 'Name', 'RequireTls', 'RestrictDomainsToCertificate', 'RestrictDomainsToIPAddresses', 'SenderDomains', 'SenderIPAddresses', 'TlsSenderCertificateName', 'TreatMessagesAsInternal', 'TrustedOrganizations', 'WhatIf'],
  },
  'Remove-InboundConnector': { source: 'https://learn.microsoft.com/powershell/module/exchange/remove-inboundconnector', parameters: ['Identity', 'Confirm', 'WhatIf'] },
  'Get-TransportRule': { source: 'https://learn.microsoft.com/powershell/module/exchange/get-transportrule', parameters: ['Identity', 'DlpPolicy', 'ExcludeConditionActionDetails', 'Filter', 'ResultSize', 'State'] },
  'New-TransportRule': {
    source: 'https://learn.microsoft.com/powershell/module/exchange/new-transportrule',
    parameters: ['Name', 'Comments', 'Confirm', 'Enabled', 'Mode', 'Priority', 'StopRuleProcessing', 'FromScope', 'SentToScope', 'From', 'FromMemberOf', 'MessageTypeMatches', 'ExceptIfMessageTypeMatches', 'ExceptIfHeaderContainsMessageHeader', 'ExceptIfHeaderContainsWords', 'ExceptIfHeaderMatchesMessageHeader', 'ExceptIfHeaderMatchesPatterns', 'HeaderContainsMessageHeader', 'HeaderContainsWords', 'RouteMessageOutboundConnector', 'SetHeaderName', 'SetHeaderValue', 'RuleErrorAction', 'ActivationDate', 'ExpiryDate', 'SenderAddressLocation', 'SenderDomainIs', 'WhatIf'],
  },
  'Set-TransportRule': {
    source: 'https://learn.microsoft.com/powershell/module/exchange/set-transportrule',
    parameters: ['Identity', 'Name', 'Comments', 'Confirm', 'Mode', 'Priority', 'StopRuleProcessing', 'FromScope', 'SentToScope', 'From', 'FromMemberOf', 'MessageTypeMatches', 'ExceptIfMessageTypeMatches', 'ExceptIfHeaderContainsMessageHeader', 'ExceptIfHeaderContainsWords', 'ExceptIfHeaderMatchesMessageHeader', 'ExceptIfHeaderMatchesPatterns', 'HeaderContainsMessageHeader', 'HeaderContainsWords', 'RouteMessageOutboundConnector', 'SetHeaderName', 'SetHeaderValue', 'RuleErrorAction', 'ActivationDate', 'ExpiryDate', 'SenderAddressLocation', 'SenderDomainIs', 'WhatIf'],
  },
  'Enable-TransportRule': { source: 'https://learn.microsoft.com/powershell/module/exchange/enable-transportrule', parameters: ['Identity', 'Confirm', 'Mode', 'WhatIf'] },
  'Disable-TransportRule': { source: 'https://learn.microsoft.com/powershell/module/exchange/disable-transportrule', parameters: ['Identity', 'Confirm', 'WhatIf'] },
  'Remove-TransportRule': { source: 'https://learn.microsoft.com/powershell/module/exchange/remove-transportrule', parameters: ['Identity', 'Confirm', 'WhatIf'] },
};

const base: ConnectorScriptOptions = { scope: { kind: 'all' }, internal: false, routeMessageTypes: [], disabled: false };
const CASES: Array<[file: string, make: () => string]> = [
  ['connectors-all.ps1', () => connectorsScript(outputs, base)],
  ['connectors-all-internal.ps1', () => connectorsScript(outputs, { ...base, internal: true })],
  ['connectors-groups.ps1', () => connectorsScript(outputs, { ...base, scope: parseScope("groups:Sales,O'Brien Consulting") })],
  ['connectors-users.ps1', () => connectorsScript(outputs, { ...base, scope: parseScope('users:Ann.Lee@contoso.com,bob@contoso.co.uk') })],
  ['connectors-route-oof-disabled.ps1', () => connectorsScript(outputs, { ...base, routeMessageTypes: parseMessageTypes('oof,Calendaring'), disabled: true })],
  ['pause.ps1', () => pauseScript(outputs)],
  ['resume.ps1', () => resumeScript(outputs)],
  ['remove.ps1', () => removeScript(outputs)],
];

function callsOf(script: string, cmdlet: string) {
  return cmdletCalls(script).filter((c) => c.cmdlet === cmdlet);
}
function argText(call: ReturnType<typeof cmdletCalls>[number], parameter: string): string {
  return (call.args.get(parameter) ?? []).map((t) => (t.kind === 'string' ? t.value : t.kind === 'word' || t.kind === 'punct' ? t.value : '')).join('');
}

describe('exchange: connector scripts', () => {
  describe('golden files (UPDATE_GOLDEN=1 rewrites them)', () => {
    for (const [file, make] of CASES) {
      it(file, () => {
        const script = make();
        const path = join(GOLDEN, file);
        if (process.env.UPDATE_GOLDEN === '1' || !existsSync(path)) {
          mkdirSync(GOLDEN, { recursive: true });
          writeFileSync(path, script);
          if (process.env.UPDATE_GOLDEN !== '1') throw new Error(`${file}: golden file was missing and has been written; review it and run again`);
        }
        expect(script).to.equal(readFileSync(path, 'utf8'));
      });
    }
  });

  describe('every cmdlet parameter is a documented one', () => {
    for (const [file, make] of CASES) {
      it(file, () => {
        const calls = cmdletCalls(make());
        expect(calls.length).to.be.greaterThan(3);
        for (const call of calls) {
          const doc = DOCUMENTED[call.cmdlet];
          expect(doc, `${file}: cmdlet ${call.cmdlet} has no documented parameter list in this test`).to.not.equal(undefined);
          for (const p of call.parameters) {
            expect([...doc!.parameters, ...COMMON], `${file}: ${call.cmdlet} -${p} (see ${doc!.source})`).to.include(p);
          }
        }
      });
    }
  });

  it('follows Microsoft\'s add-on service settings for both connectors', () => {
    const script = connectorsScript(outputs, base);
    for (const cmdlet of ['New-OutboundConnector', 'Set-OutboundConnector']) {
      const [call] = callsOf(script, cmdlet);
      expect(argText(call!, 'ConnectorType')).to.equal('OnPremises');
      expect(argText(call!, 'IsTransportRuleScoped')).to.equal('$true');
      expect(argText(call!, 'UseMXRecord')).to.equal('$false');
      expect(argText(call!, 'SmartHosts')).to.equal(outputs.smartHostFqdn);
      expect(argText(call!, 'TlsSettings')).to.equal('DomainValidation');
      expect(argText(call!, 'TlsDomain')).to.equal(outputs.smartHostFqdn);
      expect(argText(call!, 'CloudServicesMailEnabled')).to.equal('$true');
      expect(call!.parameters).to.include('WhatIf');
    }
    for (const cmdlet of ['New-InboundConnector', 'Set-InboundConnector']) {
      const [call] = callsOf(script, cmdlet);
      expect(argText(call!, 'SenderDomains')).to.equal('*');
      expect(argText(call!, 'ConnectorType')).to.equal('OnPremises');
      expect(argText(call!, 'RequireTls')).to.equal('$true');
      expect(argText(call!, 'RestrictDomainsToCertificate')).to.equal('$true');
      expect(argText(call!, 'TlsSenderCertificateName')).to.equal(outputs.certificateDomain);
      expect(argText(call!, 'CloudServicesMailEnabled')).to.equal('$true');
      expect(call!.parameters).to.not.include('TreatMessagesAsInternal');
    }
  });

  it('is idempotent: every New-… is guarded by a Get-… and has a matching Set-…', () => {
    const script = connectorsScript(outputs, { ...base, scope: parseScope('groups:Sales') });
    for (const noun of ['OutboundConnector', 'InboundConnector', 'TransportRule']) {
      expect(callsOf(script, `New-${noun}`).length, noun).to.equal(callsOf(script, `Set-${noun}`).length);
      expect(callsOf(script, `Get-${noun}`).length, noun).to.be.at.least(1);
      for (const c of callsOf(script, `Get-${noun}`)) expect(argText(c, 'ErrorAction')).to.equal('SilentlyContinue');
    }
    expect(script).to.match(/\[CmdletBinding\(SupportsShouldProcess = \$true\)\]/);
    for (const call of cmdletCalls(script).filter((c) => /^(New|Set|Remove|Enable|Disable)-/.test(c.cmdlet) && c.cmdlet !== 'Set-StrictMode')) {
      expect(call.parameters, call.cmdlet).to.include('WhatIf');
      expect(argText(call, 'WhatIf'), call.cmdlet).to.equal('');
    }
    expect(script).to.include('-WhatIf:$WhatIfPreference');
  });

  it('routes in-organization senders to external recipients unless --internal, and never mail carrying this org\'s stamp', () => {
    const external = callsOf(connectorsScript(outputs, base), 'New-TransportRule').find((c) => argText(c, 'Name') === ROUTE_RULE)!;
    expect(argText(external, 'FromScope')).to.equal('InOrganization');
    expect(argText(external, 'SentToScope')).to.equal('NotInOrganization');
    expect(argText(external, 'RouteMessageOutboundConnector')).to.equal('Signet outbound to relay');
    expect(argText(external, 'ExceptIfHeaderMatchesMessageHeader')).to.equal('X-Signet-Processed');
    const pattern = new RegExp(argText(external, 'ExceptIfHeaderMatchesPatterns'));
    expect(pattern.test('org=contoso; v=0.1.0; result=signed')).to.equal(true);
    expect(pattern.test('org=contoso')).to.equal(true);
    expect(pattern.test('org=contoso-eu; result=signed')).to.equal(false);
    expect(argText(external, 'StopRuleProcessing')).to.equal('$true');
    expect(argText(external, 'Mode')).to.equal('Enforce');
    const internal = callsOf(connectorsScript(outputs, { ...base, internal: true }), 'New-TransportRule').find((c) => argText(c, 'Name') === ROUTE_RULE)!;
    expect(internal.parameters).to.not.include('SentToScope');
    const internalSet = callsOf(connectorsScript(outputs, { ...base, internal: true }), 'Set-TransportRule').find((c) => argText(c, 'Identity') === ROUTE_RULE)!;
    expect(argText(internalSet, 'SentToScope')).to.equal('$null');
  });

  it('exempts each message type with its own rule ahead of the routing rule (one type per -MessageTypeMatches)', () => {
    const script = connectorsScript(outputs, base);
    const newRules = callsOf(script, 'New-TransportRule');
    const marker = newRules.find((c) => c.parameters.includes('MessageTypeMatches'))!;
    expect(argText(marker, 'MessageTypeMatches')).to.equal('$type');
    expect(argText(marker, 'StopRuleProcessing')).to.equal('$false');
    expect(argText(marker, 'SentToScope')).to.equal('NotInOrganization');
    const grouped = callsOf(connectorsScript(outputs, { ...base, scope: parseScope('groups:Sales') }), 'New-TransportRule').find((c) => c.parameters.includes('MessageTypeMatches'))!;
    expect(argText(grouped, 'FromMemberOf'), 'exemption rules are scoped like the routing rule').to.equal('Sales');
    expect(script).to.include(`foreach ($type in @(${MESSAGE_TYPES.map(quote).join(',')}))`);
    const route = newRules.find((c) => argText(c, 'Name') === ROUTE_RULE)!;
    expect(argText(route, 'Priority')).to.equal(String(MESSAGE_TYPES.length));
    expect(argText(route, 'ExceptIfHeaderContainsWords')).to.equal(MESSAGE_TYPES.join(','));
    for (const call of cmdletCalls(script)) expect(call.parameters).to.not.include('ExceptIfMessageTypeMatches');

    const oof = connectorsScript(outputs, { ...base, routeMessageTypes: ['OOF'] });
    const oofRoute = callsOf(oof, 'New-TransportRule').find((c) => argText(c, 'Name') === ROUTE_RULE)!;
    expect(argText(oofRoute, 'ExceptIfHeaderContainsWords').split(',')).to.not.include('OOF');
    expect(argText(oofRoute, 'Priority')).to.equal(String(MESSAGE_TYPES.length - 1));
    expect(callsOf(oof, 'Remove-TransportRule')).to.have.length(1);
  });

  it('clears on update the sender condition the new scope does not use', () => {
    const groups = callsOf(connectorsScript(outputs, { ...base, scope: parseScope('groups:Sales,Marketing') }), 'Set-TransportRule').find((c) => argText(c, 'Identity') === ROUTE_RULE)!;
    expect(argText(groups, 'FromMemberOf')).to.equal('Sales,Marketing');
    expect(argText(groups, 'From')).to.equal('$null');
    const all = callsOf(connectorsScript(outputs, base), 'Set-TransportRule').find((c) => argText(c, 'Identity') === ROUTE_RULE)!;
    expect(argText(all, 'From')).to.equal('$null');
    expect(argText(all, 'FromMemberOf')).to.equal('$null');
  });

  it('pause disables, resume enables, remove deletes rules before connectors', () => {
    expect(callsOf(pauseScript(outputs), 'Disable-TransportRule')).to.have.length(1);
    expect(callsOf(pauseScript(outputs), 'Remove-TransportRule')).to.have.length(0);
    expect(callsOf(resumeScript(outputs), 'Enable-TransportRule')).to.have.length(1);
    const order = cmdletCalls(removeScript(outputs)).filter((c) => c.cmdlet.startsWith('Remove-')).map((c) => c.cmdlet);
    expect(order).to.deep.equal(['Remove-TransportRule', 'Remove-OutboundConnector', 'Remove-InboundConnector']);
  });

  describe('hostile input', () => {
    it('quotes values so PowerShell reads them back unchanged', () => {
      const plain = "Sales' ; Remove-Mailbox -Identity * ; '$(Get-Date)`n";
      const tokens = tokenize(`Set-X -Y ${quote(plain)}\n`);
      const strings = tokens.filter((t) => t.kind === 'string');
      expect(strings).to.have.length(1);
      expect(strings[0]).to.include({ quote: 'single', value: plain });
      for (const nasty of [`${plain}\u2019x\u2018\u201a\u201b`, 'Vertrieb Österreich', 'Ñ', "''Ñ''", 'Ventes Île-de-France \u{1F4E7}']) {
        const [call] = cmdletCalls(`Set-X -Y ${quote(nasty)} -Z 'after'\n`);
        expect(call!.parameters, nasty).to.deep.equal(['Y', 'Z']);
        expect(stringValues(call!.args.get('Y')!), nasty).to.deep.equal([nasty]);
      }
    });

    it('a group name cannot inject a command', () => {
      const hostile = "Sales' + (Remove-OutboundConnector -Identity 'x' -Confirm:$false) + '$(Get-Date)\u2019";
      const script = connectorsScript(outputs, { ...base, scope: parseScope(`groups:${hostile}`) });
      const cmdlets = cmdletCalls(script).map((c) => c.cmdlet);
      expect(cmdlets).to.not.include('Remove-OutboundConnector');
      const route = callsOf(script, 'New-TransportRule').find((c) => argText(c, 'Name') === ROUTE_RULE)!;
      expect(stringValues(route.args.get('FromMemberOf')!)).to.deep.equal([hostile]);
    });

    // Windows PowerShell 5.1 reads a script without a byte-order mark in the ANSI code page
    // (learn.microsoft.com/powershell/module/microsoft.powershell.core/about/about_character_encoding).
    // In UTF-8, "Ñ" is C3 91, and on code page 1252 0x91 is ‘, which ends a PowerShell string.
    it('writes pure ASCII, so Windows PowerShell reads the same script whatever its code page', () => {
      const groups = ['Vertrieb Österreich', 'Ñ + (Remove-OutboundConnector -Identity x -Confirm:$false) + Ñ', 'Sales'];
      const script = connectorsScript(outputs, { ...base, scope: { kind: 'groups', groups } });
      const ascii = (text: string) => [...text].every((ch) => ch === '\n' || (ch >= ' ' && ch <= '~'));
      for (const [file, make] of CASES) expect(ascii(make()), file).to.equal(true);
      expect(ascii(script)).to.equal(true);
      const ansi = new TextDecoder('windows-1252').decode(Buffer.from(script, 'utf8'));
      expect(ansi).to.equal(script);
      const calls = cmdletCalls(ansi);
      expect(calls.map((c) => c.cmdlet)).to.not.include('Remove-OutboundConnector');
      const route = calls.find((c) => c.cmdlet === 'New-TransportRule' && argText(c, 'Name') === ROUTE_RULE)!;
      expect(stringValues(route.args.get('FromMemberOf')!)).to.deep.equal(groups);
      expect(argText(route, 'RouteMessageOutboundConnector')).to.equal('Signet outbound to relay');
      const marker = calls.find((c) => c.cmdlet === 'Set-TransportRule' && c.parameters.includes('MessageTypeMatches'))!;
      expect(stringValues(marker.args.get('FromMemberOf')!)).to.deep.equal(groups);
      expect(argText(marker, 'SetHeaderName')).to.equal('X-Signet-Exempt');
    });

    it('refuses line breaks, backticks, double quotes and separators in group names, and bad addresses or domains', () => {
      expect(() => parseScope('groups:Sales\nRemove-Mailbox')).to.throw(/not allowed in a group name/);
      expect(() => parseScope('groups:Sales`')).to.throw(/not allowed/);
      // a double quote only delimits a name that holds a comma; inside a name it is refused
      expect(() => parseScope('groups:Sa"les')).to.throw(/double quote is not closed/);
      expect(() => parseScope('groups:"Sales')).to.throw(/double quote is not closed/);
      expect(parseScope('groups:"Sales, EMEA",Marketing')).to.deep.equal({ kind: 'groups', groups: ['Sales, EMEA', 'Marketing'] });
      expect(parseScope('groups:"Sales"')).to.deep.equal({ kind: 'groups', groups: ['Sales'] });
      expect(() => parseScope('groups:Sales|x')).to.throw(/not allowed/);
      expect(() => parseScope('groups:')).to.throw(/at least one group/);
      expect(() => parseScope('users:ann@contoso.com,$(evil)')).to.throw(/not an email address/);
      expect(() => parseScope('everyone')).to.throw(/not one of/);
      expect(() => parseMessageTypes('OOF,Spam')).to.throw(/Spam/);
      const bad = { ...JSON.parse(readFileSync(FIXTURE, 'utf8')), smartHostFqdn: "smtp.contoso.net' ; Remove-Mailbox x ; '" };
      expect(() => parseStackOutputs(bad, 'bad.json')).to.throw(/bad\.json[\s\S]*smartHostFqdn: must be a DNS name/);
    });
  });

  describe('Exchange Online behaviour', () => {
    // The relay refuses an envelope sender outside the organization's accepted domains with
    // 550 5.7.1, which Exchange Online turns into a bounce; FromScope InOrganization also covers
    // the tenant's other domains (contoso.onmicrosoft.com, a domain added later). SenderDomainIs
    // matches the domain exactly, as the relay does, and SenderAddressLocation Envelope makes it
    // look at MAIL FROM, what the relay checks (learn.microsoft.com/exchange/security-and-compliance/
    // mail-flow-rules/conditions-and-exceptions, "Senders").
    it('routes (and exempts) only envelope senders of the stack\'s accepted domains, on create and on update', () => {
      for (const options of [base, { ...base, internal: true }, { ...base, scope: parseScope('groups:Sales') }, { ...base, routeMessageTypes: parseMessageTypes('OOF') }]) {
        const script = connectorsScript(outputs, options);
        const rules = [...callsOf(script, 'New-TransportRule'), ...callsOf(script, 'Set-TransportRule')];
        expect(rules.length).to.be.greaterThan(2);
        for (const rule of rules) {
          expect(argText(rule, 'SenderAddressLocation'), argText(rule, 'Name') || argText(rule, 'Identity')).to.equal('Envelope');
          expect(argText(rule, 'SenderDomainIs').split(','), argText(rule, 'Name') || argText(rule, 'Identity')).to.deep.equal(outputs.acceptedDomains);
        }
      }
      const data = JSON.parse(readFileSync(FIXTURE, 'utf8'));
      const other = parseStackOutputs({ ...data, acceptedDomains: ['fabrikam.com'] }, 'other.json');
      const route = callsOf(connectorsScript(other, base), 'New-TransportRule').find((c) => argText(c, 'Name') === ROUTE_RULE)!;
      expect(argText(route, 'SenderDomainIs')).to.equal('fabrikam.com');
      expect(() => connectorsScript({ ...outputs, acceptedDomains: ["contoso.com' ; Remove-Mailbox x ; '"] }, base)).to.throw(/acceptedDomains\.0: .* is not a DNS domain name/);
    });

    it('remove refuses while the routing rule is still enabled, before removing anything', () => {
      const script = removeScript(outputs);
      expect(script).to.match(/\[switch\]\$SkipPauseCheck/);
      const guard = script.indexOf("$route.State -ne 'Disabled' -and -not $SkipPauseCheck");
      expect(guard, 'a check of the routing rule\'s state').to.be.greaterThan(0);
      expect(script.slice(guard).split('\n')[1]).to.match(/^\s+throw '.*still enabled/);
      const firstRemove = script.search(/^\s*Remove-/m);
      expect(firstRemove).to.be.greaterThan(guard);
      const [get] = callsOf(script, 'Get-TransportRule');
      expect(argText(get!, 'Identity')).to.equal(ROUTE_RULE);
      expect(script.indexOf(`$route = Get-TransportRule -Identity '${ROUTE_RULE}'`)).to.be.lessThan(guard);
      // and the confirmation comes after the check, so a refused run asks nothing
      expect(script.indexOf('ShouldContinue')).to.be.greaterThan(guard);
    });

    it('takes addresses with an apostrophe, quoted so PowerShell reads them back unchanged', () => {
      const scope = parseScope("users:O'Brien@contoso.com,ann@contoso.com");
      expect(scope).to.deep.equal({ kind: 'users', users: ["o'brien@contoso.com", 'ann@contoso.com'] });
      const route = callsOf(connectorsScript(outputs, { ...base, scope }), 'New-TransportRule').find((c) => argText(c, 'Name') === ROUTE_RULE)!;
      const users = (route.args.get('From') ?? []).filter((t) => t.kind === 'string').map((t) => (t.kind === 'string' ? t.value : ''));
      expect(users).to.deep.equal(["o'brien@contoso.com", 'ann@contoso.com']);
      expect(connectorsScript(outputs, { ...base, scope })).to.include("-From 'o''brien@contoso.com','ann@contoso.com'");
    });
  });

  describe('runbooks (Exchange Online steps)', () => {
    const runbook = (name: string) => readFileSync(join(ROOT, 'runbooks', name), 'utf8');
    const powershellBlocks = (text: string) => [...text.matchAll(/^[ \t]*```powershell\n([\s\S]*?)^[ \t]*```/gm)].map((m) => m[1]!);

    it('onboarding enables the routing rule only in a later step than the one that creates the connectors', () => {
      const blocks = powershellBlocks(runbook('onboard-tenant.md'));
      const create = blocks.findIndex((b) => /^\s*\.\/signet-connectors\.ps1\s*$/m.test(b));
      const resume = blocks.findIndex((b) => /^\s*\.\/signet-resume\.ps1\s*$/m.test(b));
      expect(create).to.be.greaterThan(-1);
      expect(resume, 'a separate block, after a wait for the connectors to take effect').to.be.greaterThan(create);
      const between = runbook('onboard-tenant.md').slice(runbook('onboard-tenant.md').indexOf(blocks[create]!), runbook('onboard-tenant.md').indexOf(blocks[resume]!));
      expect(between).to.match(/Wait at least \d+ minutes/);
    });

    it('offboarding checks that no mail reaches the nodes before it removes the connectors', () => {
      const text = runbook('offboard-tenant.md');
      const pause = text.indexOf('./signet-pause.ps1');
      const drained = text.indexOf('signet status --stack-outputs "$OUTPUTS" --via fqdn --interval');
      const remove = text.indexOf('./signet-remove.ps1');
      expect(pause).to.be.greaterThan(-1);
      expect(drained).to.be.greaterThan(pause);
      expect(remove).to.be.greaterThan(drained);
    });
  });

  describe('stack outputs', () => {
    it('names the file and each bad field', () => {
      const data = JSON.parse(readFileSync(FIXTURE, 'utf8'));
      delete data.certificateDomain;
      data.nodes[1].fqdn = 'not a host';
      expect(() => parseStackOutputs(data, 'contoso.json')).to.throw(/contoso\.json[\s\S]*certificateDomain[\s\S]*nodes\.1\.fqdn/);
    });
  });

  describe('signet connectors (command line)', function () {
    this.timeout(60_000);
    let dir: string;
    before(() => (dir = mkdtempSync(join(tmpdir(), 'signet-connectors-'))));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const run = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/signet.js'), ...args], { encoding: 'utf8', cwd: ROOT });

    it('writes the script to --out, and the same as the golden file', () => {
      const out = join(dir, 'c.ps1');
      const r = run('connectors', 'script', '--stack-outputs', FIXTURE, '--scope', "groups:Sales,O'Brien Consulting", '--out', out);
      expect(r.status, r.stderr).to.equal(0);
      expect(readFileSync(out, 'utf8')).to.equal(readFileSync(join(GOLDEN, 'connectors-groups.ps1'), 'utf8'));
    });

    it('pause, resume and remove print to stdout', () => {
      for (const verb of ['pause', 'resume', 'remove']) {
        const r = run('connectors', verb, '--stack-outputs', FIXTURE);
        expect(r.status, r.stderr).to.equal(0);
        expect(r.stdout).to.equal(readFileSync(join(GOLDEN, `${verb}.ps1`), 'utf8'));
      }
    });

    it('refuses a bad scope with a clear error and a non-zero exit', () => {
      const r = run('connectors', 'script', '--stack-outputs', FIXTURE, '--scope', 'groups:a\u0007b');
      expect(r.status).to.not.equal(0);
      expect(r.stderr).to.match(/--scope groups/);
      const missing = run('connectors', 'script', '--stack-outputs', join(dir, 'nope.json'));
      expect(missing.status).to.not.equal(0);
      expect(missing.stderr).to.match(/nope\.json: cannot read stack outputs/);
    });
  });
});
