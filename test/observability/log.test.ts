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
});
