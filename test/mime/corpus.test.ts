// Every real-world message of the shared corpus (and its CRLF form) goes
// through the surgery with a marker signature: nothing throws, the byte
// invariant holds, the output parses with mailparser, attachments decode to
// the same bytes, and the marker appears once in each part the report names.
import { expect } from 'chai';
import { simpleParser } from 'mailparser';
import { attachmentSums, surgeryChecked } from './support/check';
import { itForEachCorpusMessage } from './support/corpus';
import { markerEdit } from './support/run';

describe('mime surgery: corpus', function () {
  let edited = 0;
  const files = itForEachCorpusMessage(async (input) => {
    const r = await surgeryChecked(input, markerEdit());
    if (r.report.parts.length) edited++;
    expect(r.report.bytesIn).to.equal(input.length);
    expect(r.report.bytesOut).to.equal(r.output.length);
    const parsed = await simpleParser(r.output);
    expect(parsed.headers.get('x-signet-processed')).to.be.a('string');
    expect(await attachmentSums(r.output)).to.deep.equal(await attachmentSums(input));
  });
  if (!files) return;

  it('has messages', () => {
    expect(files.length).to.be.greaterThan(0);
  });

  it('signed most messages', () => {
    expect(edited).to.be.greaterThan(files.length);
  });
});
