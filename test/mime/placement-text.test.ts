import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { findQuoteStartText, insertIntoText, placeInText } from '../../appliance/src/mime/placement';
import { itPlacesAboveQuote, PH, type LocalCase } from './support/reply-cases';

const FIXTURES = path.resolve(__dirname, '../fixtures/placement/text');

function fixture(name: string): string {
  return readFileSync(path.join(FIXTURES, name), 'utf8');
}


describe('mime/placement: plain-text replies and forwards (fixtures)', () => {
  it('Outlook, CRLF: From/Sent/To/Subject block; signature after the new text, blank line kept above the quote', () => {
    const text = fixture('outlook-en-crlf.txt');
    const r = placeInText(text, PH);
    expect(r.placement).to.equal('above-quote');
    expect(text.slice(0, r.at)).to.equal('Hi Dana,\r\n\r\nThursday at 10 works for me.\r\n\r\nRegards,\r\nSam\r\n');
    expect(text.slice(r.quoteStart!)).to.match(/^From: Dana Whitfield/);
    expect(r.bodyStart).to.equal(0);
  });

  it('OWA, German: underscore ruler, Von/Gesendet/An/Cc (wrapped)/Betreff', () => {
    const text = fixture('owa-de-underscore.txt');
    const r = placeInText(text, PH);
    expect(r.placement).to.equal('above-quote');
    expect(text.slice(0, r.at)).to.equal('Hallo Frau Berger,\n\nanbei die Unterlagen.\n');
    expect(text.slice(r.quoteStart!)).to.match(/^_{32}\nVon: Berger/);
  });

  it('Gmail: attribution wrapped over two lines, then > quote', () => {
    const text = fixture('gmail-wrapped-attribution.txt');
    const r = placeInText(text, PH);
    expect(r.placement).to.equal('above-quote');
    expect(text.slice(0, r.at)).to.equal('Thanks, that works.\n\nBest,\nAna\n');
    expect(text.slice(r.quoteStart!)).to.match(/^On Mon, Mar 2, 2026 at 6:26 PM Megan One <megan.one@example.com>\nwrote:/);
  });

  it('AOL: "-----Original Message-----" after several blank lines', () => {
    const text = fixture('aol-original-message.txt');
    const r = placeInText(text, PH);
    expect(r.placement).to.equal('above-quote');
    expect(text.slice(0, r.at)).to.equal('Hello\n');
    expect(text.slice(r.quoteStart!)).to.match(/^-----Original Message-----\n/);
  });

  it('Apple Mail: the attribution is itself quoted ("> On … wrote:")', () => {
    const text = fixture('apple-quoted-attribution.txt');
    const r = placeInText(text, PH);
    expect(r.placement).to.equal('above-quote');
    expect(text.slice(0, r.at)).to.equal('Yes, see you then.\n\nSent from my iPhone\n');
    expect(text.slice(r.quoteStart!)).to.match(/^> On 3 Apr 2026/);
  });

  it('Hotmail: quoted header block starting with "> Subject:"', () => {
    const text = fixture('hotmail-quoted-header.txt');
    const r = placeInText(text, PH);
    expect(r.placement).to.equal('above-quote');
    expect(text.slice(0, r.at)).to.equal('Hello\n');
    expect(text.slice(r.quoteStart!)).to.match(/^> Subject: Test/);
  });

  it('Apple Mail forward: "Begin forwarded message:"', () => {
    const text = fixture('apple-forward.txt');
    const r = placeInText(text, PH);
    expect(r.placement).to.equal('above-quote');
    expect(text.slice(0, r.at)).to.equal('FYI, see below.\n');
    expect(text.slice(r.quoteStart!)).to.match(/^Begin forwarded message:/);
  });

  it('Thunderbird bottom-posted reply: the signature goes at the end', () => {
    const text = fixture('thunderbird-bottom.txt');
    const r = placeInText(text, PH);
    expect(r.placement).to.equal('end');
    expect(r.at).to.equal(text.length);
    expect(r.quoteStart).to.equal(0);
  });

  it('negatives: "From:" without Sent/Date/To, "wrote:" inside sentences, a lone > line: a new message', () => {
    const text = fixture('new-negatives.txt');
    const r = placeInText(text, PH);
    expect(r.placement).to.equal('end');
    expect(r.quoteStart).to.equal(undefined);
    expect(findQuoteStartText(text)).to.equal(undefined);
  });
});


const DASH_BANNERS: LocalCase[] = [
  { lang: 'English', quote: '-----Original Message-----\nFrom: A\nSent: x\nTo: B\nSubject: y\n\nold' },
  { lang: 'English, spaced (Outlook Express / Comcast)', quote: '----- Original Message -----\nFrom: A\n\nold' },
  { lang: 'English reply banner', quote: '----- Reply Message -----\nold' },
  { lang: 'German', quote: '-----Ursprüngliche Nachricht-----\nVon: A\nGesendet: x\n\nalt' },
  { lang: 'French', quote: "-----Message d'origine-----\nDe : A\nEnvoyé : x\n\nancien" },
  { lang: 'Spanish', quote: '-----Mensaje original-----\nDe: A\n\nviejo' },
  { lang: 'Dutch', quote: '-----Oorspronkelijk bericht-----\nVan: A\n\noud' },
  { lang: 'Polish', quote: '-----Oryginalna wiadomość-----\nOd: A\n\nstary' },
  { lang: 'Danish', quote: '-----Oprindelig meddelelse-----\nFra: A\n\ngammel' },
  { lang: 'Danish (besked)', quote: '-----Oprindelig besked-----\nFra: A\n\ngammel' },
  { lang: 'Italian', quote: '-----Messaggio originale-----\nDa: A\n\nvecchio' },
  { lang: 'Portuguese', quote: '-----Mensagem original-----\nDe: A\n\nvelho' },
];

const HEADER_BLOCKS: LocalCase[] = [
  { lang: 'English', quote: 'From: Bob <bob@example.com>\nSent: Monday, March 2, 2026 9:14 AM\nTo: Ann\nSubject: Hi\n\nold' },
  { lang: 'English (Date instead of Sent)', quote: 'From: Bob <bob@example.com>\nDate: Monday, March 2, 2026 at 09:14\nTo: Ann\nSubject: Hi\n\nold' },
  { lang: 'German', quote: 'Von: Bob <bob@example.de>\nGesendet: Montag, 2. März 2026 09:14\nAn: Ann\nBetreff: Hallo\n\nalt' },
  { lang: 'French', quote: 'De : Bob <bob@example.fr>\nEnvoyé : lundi 2 mars 2026 09:14\nÀ : Ann\nObjet : Salut\n\nancien' },
  { lang: 'Spanish', quote: 'De: Bob <bob@example.es>\nEnviado: lunes, 2 de marzo de 2026 9:14\nPara: Ann\nAsunto: Hola\n\nviejo' },
  { lang: 'Dutch', quote: 'Van: Bob <bob@example.nl>\nVerzonden: maandag 2 maart 2026 09:14\nAan: Ann\nOnderwerp: Hoi\n\noud' },
  { lang: 'Polish', quote: 'Od: Bob <bob@example.pl>\nWysłano: poniedziałek, 2 marca 2026 09:14\nDo: Ann\nTemat: Cześć\n\nstary' },
  { lang: 'Italian', quote: 'Da: Bob <bob@example.it>\nInviato: lunedì 2 marzo 2026 09:14\nA: Ann\nOggetto: Ciao\n\nvecchio' },
  { lang: 'Danish/Norwegian', quote: 'Fra: Bob <bob@example.dk>\nSendt: 2. marts 2026 09:14\nTil: Ann\nEmne: Hej\n\ngammel' },
  { lang: 'Swedish', quote: 'Från: Bob <bob@example.se>\nSkickat: den 2 mars 2026 09:14\nTill: Ann\nÄmne: Hej\n\ngammal' },
  { lang: 'English with bold markers (Gmail text of an Outlook quote)', quote: '*From:* Bob <bob@example.com>\n*Sent:* Monday\n*To:* Ann\n\nold' },
];

const ATTRIBUTIONS: LocalCase[] = [
  { lang: 'English (Gmail)', quote: 'On Mon, Mar 2, 2026 at 9:14 AM Bob <bob@example.com> wrote:\n\n> old' },
  { lang: 'English (Apple)', quote: 'On 2 Mar 2026, at 09:14, Bob <bob@example.com> wrote:\n\n> old' },
  { lang: 'French', quote: 'Le lun. 2 mars 2026 à 09:14, Bob <bob@example.fr> a écrit :\n\n> ancien' },
  { lang: 'Spanish', quote: 'El lun, 2 mar 2026 a las 9:14, Bob (<bob@example.es>) escribió:\n\n> viejo' },
  { lang: 'German', quote: 'Am Mo., 2. März 2026 um 09:14 Uhr schrieb Bob <bob@example.de>:\n\n> alt' },
  { lang: 'Dutch', quote: 'Op ma 2 mrt 2026 om 09:14 schreef Bob <bob@example.nl>:\n\n> oud' },
  { lang: 'Polish', quote: 'W dniu pon., 2.03.2026 o 09:14 Bob <bob@example.pl> napisał(a):\n\n> stary' },
  { lang: 'Italian', quote: 'Il giorno lun 2 mar 2026 alle ore 09:14 Bob <bob@example.it> ha scritto:\n\n> vecchio' },
  { lang: 'Portuguese', quote: 'Em seg., 2 de mar. de 2026 às 09:14, Bob <bob@example.pt> escreveu:\n\n> velho' },
  { lang: 'Danish/Norwegian', quote: 'Den 2. mar. 2026 kl. 09.14 skrev Bob <bob@example.dk>:\n\n> gammel' },
  { lang: 'English, no date but followed by a quote (Thunderbird, old)', quote: 'On Monday, Bob wrote:\n> old' },
  { lang: 'German wrapped over two lines', quote: 'Am Mo., 2. März 2026 um 09:14 Uhr schrieb Bob Beispiel\n<bob.beispiel@example.de>:\n\n> alt' },
];

const FORWARDS: LocalCase[] = [
  { lang: 'English (Gmail)', quote: '---------- Forwarded message ---------\nFrom: Bob <bob@example.com>\nDate: Mon, Mar 2, 2026\n\nold' },
  { lang: 'English (Thunderbird)', quote: '-------- Forwarded Message --------\nSubject: x\n\nold' },
  { lang: 'German', quote: '---------- Weitergeleitete Nachricht ---------\nVon: Bob\n\nalt' },
  { lang: 'French', quote: '---------- Message transféré ---------\nDe : Bob\n\nancien' },
  { lang: 'Spanish', quote: '---------- Mensaje reenviado ---------\nDe: Bob\n\nviejo' },
  { lang: 'Dutch', quote: '---------- Doorgestuurd bericht ---------\nVan: Bob\n\noud' },
  { lang: 'Polish', quote: '---------- Przekazana wiadomość ---------\nOd: Bob\n\nstary' },
  { lang: 'Apple, German', quote: 'Anfang der weitergeleiteten Nachricht:\n\nVon: Bob\n\nalt' },
  { lang: 'Apple, French', quote: 'Début du message réexpédié :\n\nDe: Bob\n\nancien' },
];

describe('mime/placement: plain-text separators by language', () => {
  const groups: Array<[string, LocalCase[]]> = [
    ['dash banner', DASH_BANNERS],
    ['Outlook header block', HEADER_BLOCKS],
    ['attribution line', ATTRIBUTIONS],
    ['forward banner', FORWARDS],
  ];
  itPlacesAboveQuote(groups, (kind, c, eol) => `${kind}, ${c.lang}, ${eol}`);

  it('no blank line between the new text and the separator: at = the separator line', () => {
    const text = 'Thanks\nFrom: Bob\nSent: today\nTo: Ann\n\nold';
    const r = placeInText(text, PH);
    expect(r.at).to.equal('Thanks\n'.length);
    expect(r.quoteStart).to.equal(r.at);
  });

  it('no new text at all (forward without a comment): at = 0', () => {
    const text = '\n\n---------- Forwarded message ---------\nFrom: Bob\n\nold';
    const r = placeInText(text, PH);
    expect(r.placement).to.equal('above-quote');
    expect(r.at).to.equal(0);
    expect(r.quoteStart).to.equal(2);
  });

  it('first separator wins when several follow each other', () => {
    const text = 'Hi\n\nOn Mon, 2 Mar 2026, Bob wrote:\n> -----Original Message-----\n> From: Ann\n> Sent: x\n';
    expect(placeInText(text, PH).quoteStart).to.equal(4);
  });
});

describe('mime/placement: plain-text negatives', () => {
  const NEW_MESSAGES: Array<[string, string]> = [
    ['a "From:" line without Sent/Date/To', 'Hello,\nFrom: the finance team, a reminder.\nPlease submit receipts.\n'],
    ['"From:" followed by a blank line then "To:"', 'From: Kim\n\nTo: everyone, the party is on Friday.\n'],
    ['"wrote:" in the middle of a sentence', 'As Kim wrote: the numbers are final.\n'],
    ['"On … wrote:" not at the end of the line', 'On Monday John wrote: great work, thanks all.\n'],
    ['an attribution-like line without a date, address or following quote', 'On reflection, the team wrote:\nwe agree.\n'],
    ['a > block without attribution (quoting a line for emphasis)', 'You said:\n\n> ship it\n\nAgreed.\n'],
    ['a dash line that is not a banner', 'Agenda\n---------------\n1. Budget\n'],
    ['Original Message inside a sentence', 'Please keep the -----Original Message----- lines out of tickets.\n'],
  ];
  for (const [name, text] of NEW_MESSAGES) {
    it(`${name}: new message, signature at the end`, () => {
      const r = placeInText(text, PH);
      expect(r.placement).to.equal('end');
      expect(r.quoteStart).to.equal(undefined);
      expect(r.at).to.equal(text.length);
    });
  }
});

describe('mime/placement: plain-text placeholder and insertion convention', () => {
  it('placeholder wins over the quote', () => {
    const text = 'Hi\n{{signature}}\nPS\n\nOn Mon, 2 Mar 2026, Bob wrote:\n> old\n';
    const r = placeInText(text, PH);
    expect(r).to.deep.include({ placement: 'placeholder', at: 3, removeLength: PH.length, quoteStart: 'Hi\n{{signature}}\nPS\n\n'.length });
  });

  it('placeholder wins over the end', () => {
    const r = placeInText('Hi\n{{signature}}\nPS: bring cake\n', PH);
    expect(r).to.deep.include({ placement: 'placeholder', at: 3, removeLength: PH.length });
  });

  it('placeholder inside the quoted part is ignored', () => {
    const text = 'Hi\n\nOn Mon, 2 Mar 2026, Bob wrote:\n> {{signature}}\n';
    expect(placeInText(text, PH).placement).to.equal('above-quote');
  });

  it('insertIntoText: new message ending with a line break → one blank line, then the signature, then a line break', () => {
    const text = 'Hello\n';
    expect(insertIntoText(text, placeInText(text, PH), '-- \nKim\n')).to.equal('Hello\n\n-- \nKim\n');
  });

  it('insertIntoText: new message without a final line break → the caller adds one (convention: text[at-1] is not a line break)', () => {
    const text = 'Hello';
    const r = placeInText(text, PH);
    expect(r.at).to.equal(5);
    expect(insertIntoText(text, r, 'Kim')).to.equal('Hello\n\nKim\n');
  });

  it('insertIntoText: new message already ending with a blank line → no extra blank line', () => {
    const text = 'Hello\r\n\r\n';
    expect(insertIntoText(text, placeInText(text, PH), 'Kim\nSales')).to.equal('Hello\r\n\r\nKim\r\nSales\r\n');
  });

  it('insertIntoText: reply → new text, blank line, signature, blank line(s), quote (CRLF kept)', () => {
    const text = fixture('outlook-en-crlf.txt');
    const out = insertIntoText(text, placeInText(text, PH), 'Sam Ortega\nExample Corp');
    expect(out).to.equal(text.replace('Sam\r\n\r\nFrom:', 'Sam\r\n\r\nSam Ortega\r\nExample Corp\r\n\r\nFrom:'));
  });

  it('insertIntoText: reply with no blank line above the quote gets one below the signature', () => {
    const text = 'Thanks\nFrom: Bob\nSent: today\nTo: Ann\n\nold';
    expect(insertIntoText(text, placeInText(text, PH), 'Kim')).to.equal('Thanks\n\nKim\n\nFrom: Bob\nSent: today\nTo: Ann\n\nold');
  });

  it('insertIntoText: placeholder is replaced in place', () => {
    const text = 'Hi\n{{signature}}\nPS';
    expect(insertIntoText(text, placeInText(text, PH), 'Kim\nSales\n')).to.equal('Hi\nKim\nSales\nPS');
  });

  it('empty text: the signature alone', () => {
    expect(insertIntoText('', placeInText('', PH), 'Kim')).to.equal('Kim\n');
  });
});
