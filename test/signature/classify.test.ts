// What kind of message this is and whether it is an automatic reply, from the
// headers as the MIME layer hands them over: unfolded, encoded-words intact.
import { expect } from 'chai';
import type { HeaderView } from '../../appliance/src/mime/types';
import { decodedSubject, detectKind, isAutoReply } from '../../appliance/src/signature/classify';

function headers(fields: Record<string, string>): HeaderView {
  const lower = new Map(Object.entries(fields).map(([k, v]) => [k.toLowerCase(), v]));
  return { get: (n) => (lower.has(n.toLowerCase()) ? [lower.get(n.toLowerCase())!] : []), first: (n) => lower.get(n.toLowerCase()), has: (n) => lower.has(n.toLowerCase()) };
}

const b64 = (text: string) => `=?utf-8?B?${Buffer.from(text).toString('base64')}?=`;

describe('message classification', () => {
  it('decodes encoded-word subjects (Outlook encodes a whole non-ASCII subject, prefix included)', () => {
    expect(decodedSubject(headers({ Subject: b64('AW: Größe der Lieferung') }))).to.equal('AW: Größe der Lieferung');
    expect(decodedSubject(headers({ Subject: '=?iso-8859-1?Q?WG=3A_R=E9union?=' }))).to.equal('WG: Réunion');
    expect(decodedSubject(headers({ Subject: 'Re: =?utf-8?Q?Caf=C3=A9?= =?utf-8?Q?_au_lait?=' }))).to.equal('Re: Café au lait');
    expect(decodedSubject(headers({}))).to.equal('');
  });

  it('tells replies and forwards by an encoded subject prefix', () => {
    const kind = (subject: string) => detectKind(headers({ Subject: subject }), decodedSubject(headers({ Subject: subject })), false);
    expect(kind(b64('AW: Größe'))).to.equal('reply');
    expect(kind(b64('WG: Zahlung für März'))).to.equal('forward');
    expect(kind(b64('TR : Réunion'))).to.equal('forward');
    expect(kind(b64('Neue Größe'))).to.equal('new');
  });

  it('knows the prefixes of other languages and scripts', () => {
    const kind = (subject: string) => detectKind(headers({}), subject, false);
    for (const s of ['RE: x', 'Re[2]: x', 'RE : x', 'AW: x', 'SV: x', 'Odp: x', 'RIF: x', 'ΑΠ: x', 'ΣΧΕΤ: x', '回复：x', '회신: x', 'RE: FW: x']) expect(kind(s), s).to.equal('reply');
    for (const s of ['FW: x', 'Fwd: x', 'WG: x', 'TR: x', 'RV: x', 'ENC: x', 'Doorst: x', 'PD: x', 'ΠΡΘ: x', 'İLT: x', '转发: x', 'FW: RE: x']) expect(kind(s), s).to.equal('forward');
  });

  it("takes Italian Outlook's one-letter prefixes only in a thread: \"R: …\" and \"I: …\" also begin new subjects", () => {
    expect(detectKind(headers({}), 'R: new package release', false)).to.equal('new');
    expect(detectKind(headers({}), 'I: Introduction', false)).to.equal('new');
    expect(detectKind(headers({ 'In-Reply-To': '<a@b>' }), 'R: Preventivo', false)).to.equal('reply');
    expect(detectKind(headers({}), 'I: Preventivo', true)).to.equal('forward');
    expect(detectKind(headers({ References: '<a@b>' }), 'R: Preventivo', false)).to.equal('reply');
  });

  it('recognises an encoded out-of-office subject', () => {
    const subject = b64('Automatische Antwort: Größe');
    expect(isAutoReply(headers({ Subject: subject }), decodedSubject(headers({ Subject: subject })))).to.equal(true);
  });
});
