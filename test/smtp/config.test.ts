import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadRelayConfig, parseRelayConfig, relayConfigJsonSchema, RelayConfigError } from '../../appliance/src/smtp';
import { writePemFiles } from '../support/certs';

const CONFIG_DIR = resolve(__dirname, '../../config');

/** The error a relay.yaml of these lines is refused with (and the file's path); fails if it loads. */
function refusal(lines: string[]): { file: string; error: RelayConfigError } {
  const files = writePemFiles({ 'relay.yaml': [...lines, ''].join('\n') });
  try {
    loadRelayConfig(files.path('relay.yaml'));
  } catch (error) {
    return { file: files.path('relay.yaml'), error: error as RelayConfigError };
  } finally {
    files.cleanup();
  }
  throw new Error('relay.yaml was not refused');
}

describe('relay configuration file', () => {
  it('accepts the production example and the development file', () => {
    const example = loadRelayConfig(join(CONFIG_DIR, 'relay.example.yaml'));
    expect(example.listen).to.deep.equal([{ host: '0.0.0.0', port: 25 }, { host: '::', port: 25 }]);
    expect(example.limits.maxMessageBytes).to.equal(150 * 1024 * 1024);
    expect(example.tls.acceptedClientNames).to.deep.equal(['mail.protection.outlook.com']);
    expect(example.org.keyRef).to.match(/^https:\/\/kv-signet-contoso\.vault\.azure\.net\/keys\//);
    const dev = loadRelayConfig(join(CONFIG_DIR, 'relay.dev.yaml'));
    expect(dev.listen[0].host).to.equal('127.0.0.1');
    expect(dev.org.source).to.equal(join(CONFIG_DIR, 'examples/contoso'));
    expect(dev.tls.cert).to.equal(resolve(CONFIG_DIR, '../.signet-dev/relay-server.crt'));
  });

  it('refuses the all-zero tenant id the packaged relay.yaml ships as a placeholder (left as it is, every message would bounce as another tenant\'s)', () => {
    let message = '';
    try {
      loadRelayConfig(resolve(CONFIG_DIR, '../packaging/relay.yaml'));
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).to.match(/relay\.yaml:\d+ tenantId: is the all-zero placeholder/);
    expect(message).to.match(/directory\.graph\.tenantId: is the all-zero placeholder/);
    const base = { tls: { cert: 'a', key: 'b', ca: 'c' }, downstream: { host: 'd', tls: { cert: 'a', key: 'b' } }, org: { source: 'x', keyRef: 'k.key' } };
    expect(parseRelayConfig({ ...base, tenantId: '3f2504e0-4f89-41d3-9a0c-0305e82c3301' }, 'relay.yaml', '/etc/signet').tenantId).to.equal('3f2504e0-4f89-41d3-9a0c-0305e82c3301');
  });

  it('fills defaults and resolves paths against the file', () => {
    const c = parseRelayConfig({ tls: { cert: 'a.crt', key: 'a.key', ca: ['x.pem', '/abs/y.pem'] }, downstream: { host: 'd', tls: { cert: 'c.crt', key: 'c.key' } }, org: { source: 'org', keyRef: 'org.key' } }, 'f', '/etc/signet');
    expect(c.tls.ca).to.deep.equal(['/etc/signet/x.pem', '/abs/y.pem']);
    expect(c.org.keyRef).to.equal('file:/etc/signet/org.key');
    expect(c.limits).to.include({ maxSignetHops: 3, maxRecipients: 1000, drainSeconds: 60 });
    expect(c.downstream.port).to.equal(25);
    expect(c.http).to.deep.equal({ listen: '127.0.0.1', port: 9025 });
  });

  it('names the file, the line, the path and the problem', () => {
    const { file, error } = refusal(['tls:', '  cert: a', '  key: b', '  ca: c', '  minVersion: TLSv1.1', 'downstream:', '  host: d', '  prot: 25', '  tls: { cert: a, key: b }', 'org: { source: x }', 'allowNetworks: [10.0.0.0/33]']);
    expect(error).to.be.instanceOf(RelayConfigError);
    expect(error.message).to.contain(`${file}:5 tls.minVersion:`);
    expect(error.message).to.match(/relay\.yaml:7 downstream: Unrecognized key: "prot"/);
    expect(error.message).to.match(/relay\.yaml:11 allowNetworks\[0\]:/);
  });

  it('says a missing setting is required, and what it is for, with the line of its section', () => {
    const { file, error } = refusal(['tls:', '  cert: a', '  key: b', 'downstream:', 'listen:', '  - host: 127.0.0.1', 'org: { source: x }']);
    expect(error.message.split('\n').slice(1)).to.deep.equal([
      `  ${file}:2 tls.ca: required — PEM CA bundle(s) a client certificate must chain to.`,
      `  ${file}:4 downstream: required (it is there, but empty) — Where signed mail goes (the tenant's Exchange Online endpoint) and how.`,
      `  ${file}:6 listen[0].port: required — SMTP port, 25 in production.`,
    ]);
    expect(error.message).to.not.match(/Invalid input/);
    expect(() => parseRelayConfig({}, 'relay.yaml')).to.throw(RelayConfigError, /relay\.yaml tls: required — Inbound TLS[^\n]*\n {2}relay\.yaml downstream: required — [^\n]*\n {2}relay\.yaml org: required — /);
  });

  it('suggests the setting an unknown key was meant to be, or lists the allowed ones', () => {
    const { message } = refusal(['hostnme: relay.example.com', 'tls: { cert: a, key: b, ca: c }', 'downstream:', '  host: d', '  tls: { cert: a, key: b, servrname: x }', 'org:', '  source: x', '  keyref: k.key', 'logging: { level: inf, colour: true }']).error;
    expect(message).to.match(/relay\.yaml:1 \(top\): Unrecognized key: "hostnme"; did you mean "hostname"\?\n/);
    expect(message).to.match(/relay\.yaml:5 downstream\.tls: Unrecognized key: "servrname"; did you mean "servername"\?\n/);
    expect(message).to.match(/relay\.yaml:7 org: Unrecognized key: "keyref"; did you mean "keyRef"\?\n/);
    expect(message).to.match(/relay\.yaml:9 logging: Unrecognized key: "colour" \(allowed: level, idHashKeyFile\)$/m);
    expect(message).to.match(/relay\.yaml:9 logging\.level: Invalid option: expected one of [^\n]*; did you mean "info"\?/);
  });

  it('refuses a time longer than a timer can wait (it would fire at once: every session ended at its greeting)', () => {
    const base = { tls: { cert: 'a', key: 'b', ca: 'c' }, downstream: { host: 'd', tls: { cert: 'a', key: 'b' } }, org: { source: 'x', keyRef: 'k.key' } };
    expect(() => parseRelayConfig({ ...base, limits: { sessionSeconds: 30 * 86_400 } }, 'relay.yaml', '/etc/signet')).to.throw(RelayConfigError, /relay\.yaml limits\.sessionSeconds: at most 2147483 seconds/);
    expect(() => parseRelayConfig({ ...base, downstream: { ...base.downstream, timeouts: { dataSeconds: 1e10 } } }, 'relay.yaml', '/etc/signet')).to.throw(/downstream\.timeouts\.dataSeconds: at most/);
    expect(parseRelayConfig({ ...base, limits: { sessionSeconds: 2_147_483 } }, 'relay.yaml', '/etc/signet').limits.sessionSeconds).to.equal(2_147_483);
  });

  it('refuses an org poll interval under a second (each check is a storage request on every node)', () => {
    const base = { tls: { cert: 'a', key: 'b', ca: 'c' }, downstream: { host: 'd', tls: { cert: 'a', key: 'b' } } };
    expect(() => parseRelayConfig({ ...base, org: { source: 'x', keyRef: 'k.key', pollSeconds: 0.01 } }, 'relay.yaml', '/etc/signet')).to.throw(RelayConfigError, /relay\.yaml org\.pollSeconds: .*1/);
    expect(parseRelayConfig({ ...base, org: { source: 'x', keyRef: 'k.key', pollSeconds: 1 } }, 'relay.yaml', '/etc/signet').org.pollSeconds).to.equal(1);
  });

  it('refuses a bundle URL with a query string (a SAS token would be a secret in the config and the logs)', () => {
    const base = { tls: { cert: 'a.crt', key: 'a.key', ca: 'c.pem' }, downstream: { host: 'd', tls: { cert: 'c.crt', key: 'c.key' } } };
    expect(() => parseRelayConfig({ ...base, org: { source: 'https://st.blob.core.windows.net/config/org.sealed?sv=2024&sig=abc', keyRef: 'k.key' } }, 'relay.yaml', '/etc/signet')).to.throw(/org\.source: an https blob URL without a query string/);
    expect(parseRelayConfig({ ...base, org: { source: 'https://st.blob.core.windows.net/config/org.sealed', keyRef: 'k.key' } }, 'relay.yaml', '/etc/signet').org.source).to.equal('https://st.blob.core.windows.net/config/org.sealed');
  });

  it('reports an alias without its anchor as a problem of the file, not a crash', () => {
    const files = writePemFiles({ 'alias.yaml': 'hostname: *nowhere\n' });
    try {
      expect(() => loadRelayConfig(files.path('alias.yaml'))).to.throw(RelayConfigError, /alias\.yaml/);
    } finally {
      files.cleanup();
    }
  });

  it('reports YAML syntax errors with their line', () => {
    const files = writePemFiles({ 'bad.yaml': 'tls:\n  cert: [unclosed\n' });
    try {
      expect(() => loadRelayConfig(files.path('bad.yaml'))).to.throw(RelayConfigError, /bad\.yaml:\d/);
    } finally {
      files.cleanup();
    }
  });

  it('keeps config/schema/relay.schema.json in sync with the schema', () => {
    const committed = readFileSync(join(CONFIG_DIR, 'schema/relay.schema.json'), 'utf8');
    expect(JSON.parse(committed)).to.deep.equal(relayConfigJsonSchema());
  });

  it('the schema file is what the regeneration script writes', () => {
    const files = writePemFiles({});
    try {
      writeFileSync(files.path('s.json'), `${JSON.stringify(relayConfigJsonSchema(), null, 2)}\n`);
      expect(readFileSync(files.path('s.json'), 'utf8')).to.equal(readFileSync(join(CONFIG_DIR, 'schema/relay.schema.json'), 'utf8'));
    } finally {
      files.cleanup();
    }
  });
});
