import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
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

  it('the production example shows every setting the schema has (commented out where it has no value to show)', () => {
    type Node = { properties?: Record<string, Node>; items?: Node; type?: string };
    const settings = (node: Node, at: string[] = []): string[] => {
      if (node.properties) return Object.entries(node.properties).flatMap(([key, child]) => settings(child, [...at, key]));
      if (node.type === 'array' && node.items?.properties) return settings(node.items, at);
      return [at.join('.')];
    };
    const shown = (value: unknown, at: string[] = []): string[] => {
      if (Array.isArray(value)) return value.length > 0 && typeof value[0] === 'object' && value[0] !== null ? shown(value[0], at) : [at.join('.')];
      if (value !== null && typeof value === 'object') return Object.entries(value).flatMap(([key, child]) => shown(child, [...at, key]));
      return [at.join('.')];
    };
    // `# key: value` lines are settings shown but left out; uncommented they must still sit where they belong
    const text = readFileSync(join(CONFIG_DIR, 'relay.example.yaml'), 'utf8').replace(/^([ \t]*)# ?([ \t]*[A-Za-z][A-Za-z0-9]*:(?:[ \t]|$).*)$/gm, '$1$2');
    const inExample = new Set(shown(parse(text)));
    const all = settings(relayConfigJsonSchema() as Node);
    expect(all).to.include.members(['passThrough', 'downstream.reuse.maxIdle', 'stateDir', 'directory.graph.app.authorityHost']);
    expect(all.filter((setting) => !inExample.has(setting))).to.deep.equal([]);
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

  it('refuses a name that would go into the SMTP greeting, EHLO or SNI broken, and a host written with its port', () => {
    const base = { tls: { cert: 'a', key: 'b', ca: 'c' }, downstream: { host: 'd', tls: { cert: 'a', key: 'b' } }, org: { source: 'x' } };
    const refused = (data: object) => {
      try {
        parseRelayConfig(data, 'relay.yaml', '/etc/signet');
      } catch (error) {
        return (error as RelayConfigError).problems.map((p) => `${p.path}: ${p.message}`);
      }
      return [];
    };
    expect(refused({ ...base, hostname: 'relay.contoso.com\r\n250 forged' })).to.deep.equal(['hostname: must be a host name (letters, digits, hyphens and dots)']);
    expect(refused({ ...base, hostname: 'relay contoso' })).to.have.length(1);
    expect(refused({ ...base, downstream: { ...base.downstream, host: 'contoso-com.mail.protection.outlook.com:25' } })).to.deep.equal([
      'downstream.host: must be a host name or an IP address, without a port (the port is its own setting)',
    ]);
    expect(refused({ ...base, downstream: { ...base.downstream, tls: { ...base.downstream.tls, servername: 'a b' } } })).to.have.length(1);
    expect(refused({ ...base, listen: [{ host: '0.0.0.0:25', port: 25 }], http: { listen: '127.0.0.1 ' } })).to.have.length(2);
    // what the shipped files and the stacks write still loads
    expect(refused({ ...base, hostname: 'signet.contoso.com', listen: [{ host: '::', port: 25 }, { host: '0.0.0.0', port: 25 }], downstream: { ...base.downstream, host: '127.0.0.1' }, http: { listen: '::1' } })).to.deep.equal([]);
  });

  it('refuses a source or key URL of another scheme than https instead of reading it as a relative path', () => {
    const base = { tls: { cert: 'a', key: 'b', ca: 'c' }, downstream: { host: 'd', tls: { cert: 'a', key: 'b' } } };
    const load = (org: object) => parseRelayConfig({ ...base, org }, 'relay.yaml', '/etc/signet');
    expect(() => load({ source: 'http://st.blob.core.windows.net/config/org.bundle' })).to.throw(RelayConfigError, /relay\.yaml org\.source: a folder, a bundle file or an https:\/\/ blob URL/);
    expect(() => load({ source: 'HTTPS://st.blob.core.windows.net/config/org.bundle' })).to.throw(/org\.source/);
    expect(() => load({ source: 'org.bundle', keyRef: 'http://kv.vault.azure.net/keys/org' })).to.throw(/org\.keyRef: file:PATH/);
    expect(load({ source: 'org.bundle', keyRef: 'https://kv.vault.azure.net/keys/org' }).org.keyRef).to.equal('https://kv.vault.azure.net/keys/org');
    expect(load({ source: 'org.bundle', keyRef: 'file:org.key' }).org.keyRef).to.equal('file:/etc/signet/org.key');
  });

  it('gives the JSON Schema the longest timer too, so an editor flags it', () => {
    const schema = relayConfigJsonSchema() as { properties: { limits: { properties: { sessionSeconds: { maximum?: number } } } } };
    expect(schema.properties.limits.properties.sessionSeconds.maximum).to.equal(2_147_483);
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
      writeFileSync(files.path('dup.yaml'), 'tls:\n  cert: a\n  cert: b\n');
      expect(() => loadRelayConfig(files.path('dup.yaml'))).to.throw(RelayConfigError, /dup\.yaml:3 \(top\): Map keys must be unique \(column 3\)/);
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
