// The log promise: no addresses and no secrets in any line, even when an error
// text from a library quotes them (a server's reply naming a recipient, a
// config problem naming a user, a blob URL with a SAS token).
import { expect } from 'chai';
import { Writable } from 'node:stream';
import { createLogger } from '../../appliance/src/observability';
import { scrubLogValue } from '../../appliance/src/observability/log';

function capture(): { lines: () => Array<Record<string, unknown>>; raw: () => string; destination: Writable } {
  let text = '';
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString();
      callback();
    },
  });
  return { destination, raw: () => text, lines: () => text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('logs: addresses and URL query strings never written', () => {
  it('scrubs them from every string field, nested objects, arrays and errors', () => {
    const out = capture();
    const logger = createLogger({ level: 'info', destination: out.destination });
    logger.warn(
      {
        event: 'downstream-error',
        error: 'Unexpected response: 550 5.1.1 <Bob.Smith+x@Fabrikam.example> recipient unknown',
        config: { problems: ['users["ingrid.halvorsen@contoso.com"].mobilePhone: expected string'] },
        location: 'https://stfabrikam.blob.core.windows.net/config/org-config.sealed?sv=2024-05-04&sig=SECRETSIG',
        err: new Error('cannot deliver to tom.okafor@contoso.com'),
        count: 3,
      },
      'downstream failed',
    );
    const raw = out.raw();
    for (const leaked of ['Bob.Smith', 'Fabrikam.example', 'ingrid.halvorsen', 'SECRETSIG', 'sv=2024', 'tom.okafor']) expect(raw).to.not.include(leaked);
    const [line] = out.lines();
    expect(line).to.include({ event: 'downstream-error', count: 3, msg: 'downstream failed' });
    expect(line!.error).to.equal('Unexpected response: 550 5.1.1 <<address>> recipient unknown');
    expect(line!.location).to.equal('https://stfabrikam.blob.core.windows.net/config/org-config.sealed?<query removed>');
    expect((line!.err as { message: string }).message).to.equal('cannot deliver to <address>');
  });

  it('leaves values without an address or query alone (hosts, certificate names, hashes)', () => {
    for (const value of ['mail.protection.outlook.com', 'contoso-com.mail.protection.outlook.com:25', '3f2a9c1d7e6b5a4f', 'https://graph.microsoft.com/v1.0/users', 'a @ b', 'version 2026-11-24']) {
      expect(scrubLogValue(value)).to.equal(value);
    }
  });

  it('scrubs the message too: a string, printf arguments, an Error logged as such, and a child logger\'s bindings', () => {
    const out = capture();
    const logger = createLogger({ level: 'info', destination: out.destination });
    logger.error(new Error('550 5.1.1 <tom.okafor@contoso.com> recipient unknown'));
    logger.info('delivery to %s failed', 'ingrid.halvorsen@contoso.com');
    logger.warn({ event: 'x' }, 'config at https://st.blob.core.windows.net/c/b?sv=2024&sig=SECRETSIG refused');
    logger.child({ peer: 'bob.smith@fabrikam.example' }).info({ event: 'child' }, 'from a child');
    const raw = out.raw();
    for (const leaked of ['tom.okafor', 'ingrid.halvorsen', 'SECRETSIG', 'bob.smith']) expect(raw).to.not.include(leaked);
    const [err, printf] = out.lines();
    expect(err).to.deep.include({ msg: '550 5.1.1 <<address>> recipient unknown', err: { type: 'Error', message: '550 5.1.1 <<address>> recipient unknown' } });
    expect(printf!.msg).to.equal('delivery to <address> failed');
  });

  it('scrubs at any depth and inside objects that are not plain (class instances, URL, Map, null prototype), without throwing', () => {
    const out = capture();
    const logger = createLogger({ level: 'info', destination: out.destination });
    class Reply {
      text = 'deep.user@contoso.com';
    }
    const bare = Object.create(null) as Record<string, unknown>;
    bare.who = 'bare.user@contoso.com';
    logger.info({
      a: { b: { c: { d: { e: 'nested.user@contoso.com' } } } },
      list: [[[[['listed.user@contoso.com']]]]],
      reply: new Reply(),
      url: new URL('https://st.blob.core.windows.net/c/b?sv=2024&sig=URLSIG'),
      map: new Map([['rcpt', 'mapped.user@contoso.com']]),
      bare,
      raw: Buffer.from('buffer.user@contoso.com'),
      far: { l1: { l2: { l3: { l4: { l5: { l6: { l7: 'far.user@contoso.com' } } } } } } },
    });
    const raw = out.raw();
    for (const leaked of ['nested.user', 'listed.user', 'deep.user', 'URLSIG', 'mapped.user', 'bare.user', 'buffer.user', 'far.user']) expect(raw).to.not.include(leaked);
    const [line] = out.lines();
    expect(line!.url).to.equal('https://st.blob.core.windows.net/c/b?<query removed>');
    expect(line!.raw).to.equal('[23 bytes]');
  });

  it('removes secrets a library may quote: bearer tokens and JWTs, connection strings, SAS parameters, private keys, secret-named fields', () => {
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwcyJ9.c2lnbmF0dXJlLXNpZw';
    const values = {
      error: 'request failed: Authorization: Bearer Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA==',
      jwt: `token ${jwt} rejected`,
      connection: 'DefaultEndpointsProtocol=https;AccountName=st;AccountKey=QUNDT1VOVEtFWQ==;EndpointSuffix=core.windows.net',
      bus: 'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=U0hBUkVEIEtFWQ=',
      sas: 'BlobEndpoint=https://st.blob.core.windows.net/;SharedAccessSignature=sv=2024-05-04&ss=b&sig=SASSIG%3D',
      body: 'AADSTS7000215: invalid client secret: {"client_id":"x","client_secret":"Q~CLIENTSECRET"}',
      pem: 'cannot load -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqPRIVATEKEY\n-----END PRIVATE KEY----- as a key',
      nested: { credentials: { password: 'hunter2', clientSecret: 'CS', key: 'K' } },
    };
    const scrubbed = JSON.stringify(scrubLogValue(values));
    for (const leaked of [jwt, 'eyJhbGciOiJSUzI1NiJ9', 'Zm9vYmFy', 'QUNDT1VOVEtFWQ', 'U0hBUkVEIEtFWQ', 'SASSIG', 'CLIENTSECRET', 'PRIVATEKEY', 'hunter2', '"CS"', '"K"']) {
      expect(scrubbed).to.not.include(leaked);
    }
    // what is left still says what happened
    expect(scrubbed).to.include('AccountName=st;AccountKey=<secret>;EndpointSuffix=core.windows.net').and.include('Bearer <secret>').and.include('<private key> as a key');
  });

  it('catches address shapes that slipped: an apostrophe or braces in the local part, an IDN top-level domain, a percent-encoded @', () => {
    for (const [value, leaked] of [
      ["Resource 'o'brien@contoso.com' does not exist", 'brien'],
      ['{x}y@contoso.com', 'x}y'],
      ['user@exämple.xn--p1ai refused', 'p1ai'],
      ['GET https://graph.microsoft.com/v1.0/users/tom.okafor%40contoso.com/memberOf 404', 'tom.okafor'],
    ] as const) {
      const scrubbed = scrubLogValue(value) as string;
      expect(scrubbed, value).to.include('<address>').and.not.include(leaked);
      expect(scrubbed, value).to.not.include("o'");
    }
    // prose that merely mentions the words stays readable
    expect(scrubLogValue('Basic auth is disabled; Bearer token expired')).to.equal('Basic auth is disabled; Bearer token expired');
  });
});
