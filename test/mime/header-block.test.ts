import { expect } from 'chai';
import { topHeaderEnd } from '../../appliance/src/mime/header-block';

describe('mime: where the top header block ends', () => {
  const end = (text: string) => topHeaderEnd(Buffer.from(text, 'latin1'));

  it('just past the first empty line, whatever its line endings', () => {
    expect(end('A: 1\r\nB: 2\r\n\r\nbody')).to.equal(14);
    expect(end('A: 1\nB: 2\n\nbody')).to.equal(11);
    expect(end('A: 1\nB: 2\n\r\nbody')).to.equal(12); // LF line, then a CRLF empty line
    expect(end('A: 1\r\nB: 2\r\n\nbody')).to.equal(13); // CRLF line, then a bare LF empty line
  });

  it('the earliest empty line wins: an LF LF before a CRLF CRLF later in the body', () => {
    expect(end('A: 1\nB: 2\n\nbody\r\n\r\nmore')).to.equal(11);
    expect(end('A: 1\r\n\r\nbody\n\nmore')).to.equal(8);
  });

  it('just past a leading empty line (a message without header fields), -1 while no empty line has come', () => {
    expect(end('\r\nbody')).to.equal(2);
    expect(end('\nbody')).to.equal(1);
    expect(end('A: 1\r\nB: 2\r\n')).to.equal(-1);
    expect(end('')).to.equal(-1);
  });
});
