// Localised reply/forward separators (Outlook header labels, Apple Mail,
// Gmail and Thunderbird attributions and banners) in the languages the README
// claims, in text/plain and text/html parts, and the lines that must not be
// taken for them. Wordings from the clients' own output as collected by
// talon, crisp-oss/email-reply-parser and email-forward-parser, and replies
// seen in public mailing lists.
import { expect } from 'chai';
import { placeInHtml, placeInText } from '../../appliance/src/mime/placement';
import { itPlacesAboveQuote, PH, type LocalCase } from './support/reply-cases';

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const OUTLOOK_HEADER_BLOCKS: LocalCase[] = [
  {
    lang: 'Spanish, Outlook desktop ("Enviado el:")',
    quote: 'De: Juan <juan@fabrikam.example>\nEnviado el: lunes, 3 de enero de 2022 10:00\nPara: Tom <tom@contoso.example>\nAsunto: Prueba\n\nHola',
  },
  {
    lang: 'Spanish, Outlook desktop with the ruler and a wrapped CC',
    quote: '________________________________\nDe: Juan <juan@fabrikam.example>\nEnviado el: lunes, 3 de enero de 2022 10:00\nPara: Tom\nCC: Ana <ana@fabrikam.example>;\n    Luis <luis@fabrikam.example>\nAsunto: Prueba\n\nHola',
  },
  {
    lang: 'Brazilian Portuguese, Outlook desktop ("Enviada em:")',
    quote: 'De: João Silva <joao@fabrikam.example>\nEnviada em: segunda-feira, 3 de janeiro de 2022 10:00\nPara: Tom Okafor <tom@contoso.example>\nAssunto: Teste\n\nOlá',
  },
  {
    lang: 'Brazilian Portuguese ("Enviado em:")',
    quote: 'De: João Silva <joao@fabrikam.example>\nEnviado em: segunda-feira, 3 de janeiro de 2022 10:00\nPara: Tom\nAssunto: Teste\n\nOlá',
  },
  {
    lang: 'Polish, new Outlook (DW before the date)',
    quote: 'Od: Jan Kowalski <jan@fabrikam.example>\nDW: Anna Nowak <anna@fabrikam.example>\nWysłano: poniedziałek, 3 stycznia 2022 10:00\nTemat: Test\n\nstary',
  },
];

const ATTRIBUTIONS: LocalCase[] = [
  { lang: 'Dutch, Apple Mail', quote: 'Op 3 jan. 2022 om 10:00 heeft Jan de Vries <jan@fabrikam.example> het volgende geschreven:\n\n> Hallo' },
  { lang: 'Dutch, Apple Mail, no quote marks (the date names it)', quote: 'Op 3 jan. 2022 om 10:00 heeft Jan de Vries <jan@fabrikam.example> het volgende geschreven:\n\nHallo' },
  { lang: 'Dutch, Apple Mail wrapped over two lines', quote: 'Op 26 februari 2012 11:11 heeft Lars Hanisch <lars@fabrikam.example>\nhet volgende geschreven:\n\n> Hallo' },
  { lang: 'Dutch, Outlook ("heeft … geschreven:")', quote: 'Op 3 jan. 2022 10:00 heeft Jan <jan@fabrikam.example> geschreven:\n> Hallo' },
  { lang: 'Polish, Apple Mail', quote: 'Wiadomość napisana przez Jan Kowalski <jan@fabrikam.example> w dniu 3 sty 2022, o godz. 10:00:\n\n> Cześć' },
  { lang: 'Polish, Apple Mail, no quote marks', quote: 'Wiadomość napisana przez Jan Kowalski <jan@fabrikam.example> w dniu 3 sty 2022, o godz. 10:00:\n\nCześć' },
  { lang: 'Polish, Apple Mail wrapped over two lines', quote: 'Wiadomość napisana przez Ao Xu <ao.xu@fabrikam.example> w dniu 21 lis\n2025, o godz. 03:55:\n\n> Cześć' },
  { lang: 'Polish, "Dnia … napisał(a):"', quote: 'Dnia 14 lip 2015 o godz. 00:25 Michał <michal@fabrikam.example> napisał(a):\n\nCześć' },
  { lang: 'Italian, "In data … ha scritto:"', quote: 'In data 3 gennaio 2022 10:00:00, Marco <marco@fabrikam.example> ha scritto:\n\nCiao' },
  { lang: 'Portuguese (Portugal), Apple Mail ("A … escreveu:")', quote: 'A 3 de jan. de 2022, às 10:00, João <joao@fabrikam.example> escreveu:\n\nOlá' },
  { lang: 'Portuguese (Portugal), Thunderbird ("Às … escreveu:")', quote: 'Às 10:00 de 03/01/2022, João escreveu:\n\nOlá' },
  { lang: 'Swedish, Apple Mail (date first)', quote: '3 jan. 2022 kl. 10:00 skrev Anna Andersson <anna@fabrikam.example>:\n\nHej' },
  { lang: 'Norwegian, Apple Mail (date first)', quote: '3. jan. 2022 kl. 10:00 skrev Ola Nordmann <ola@fabrikam.example>:\n\n> Hei' },
  { lang: 'Danish, Gmail (weekday first)', quote: 'søn. 30. apr. 2017 kl. 00.26 skrev David Taylor <david@fabrikam.example>:\n\n> Hej' },
  { lang: 'German, Gmail for Android (name first)', quote: 'Bob Beispiel <bob@fabrikam.example> schrieb am Mo., 3. Jan. 2022, 10:00:\n\n> alt' },
  { lang: 'Portuguese (Portugal), Gmail (name first, wrapped)', quote: 'Wols Lists <wol@fabrikam.example> escreveu no dia segunda,\n4/04/2022 à(s) 17:42:\n>\n> velho' },
  { lang: 'Norwegian, Outlook ("skrev følgende den")', quote: 'Ola Nordmann <ola@fabrikam.example> skrev følgende den 3. januar 2022 10:00:\n\n> Hei' },
  { lang: 'English, "On … sent:" (talon)', quote: 'On Mon, 3 Jan 2022, Bob <bob@fabrikam.example> sent:\n\n> old' },
  { lang: 'Dutch, "Op … verzond …:" (talon)', quote: 'Op 3 jan. 2022 verzond Jan <jan@fabrikam.example>:\n\n> oud' },
];

const BANNERS: LocalCase[] = [
  { lang: 'Portuguese (Portugal), Gmail forward', quote: '---------- Mensagem reencaminhada ---------\nDe: João <joao@fabrikam.example>\n\nvelho' },
  { lang: 'Portuguese (Portugal), Thunderbird forward', quote: '-------- Mensagem reencaminhada --------\nAssunto: x\n\nvelho' },
  { lang: 'Polish, Thunderbird forward', quote: '--- Treść przekazanej wiadomości ---\nTemat: x\n\nstary' },
  { lang: 'Brazilian Portuguese, Apple Mail forward', quote: 'Início da mensagem encaminhada:\n\nDe: João <joao@fabrikam.example>\n\nvelho' },
  { lang: 'Swedish, Apple Mail forward', quote: 'Vidarebefordrat mejl:\n\nFrån: Anna <anna@fabrikam.example>\n\ngammal' },
  { lang: 'Norwegian, Apple Mail forward', quote: 'Videresendt melding:\n\nFra: Ola <ola@fabrikam.example>\n\ngammel' },
  { lang: 'Finnish, Apple Mail forward', quote: 'Välitetty viesti alkaa:\n\nLähettäjä: Matti <matti@fabrikam.example>\n\nvanha' },
];

describe('mime/placement: localised separators in text/plain', () => {
  const groups: Array<[string, LocalCase[]]> = [
    ['Outlook header block', OUTLOOK_HEADER_BLOCKS],
    ['attribution', ATTRIBUTIONS],
    ['banner', BANNERS],
  ];
  itPlacesAboveQuote(groups, (kind, c, eol) => `${kind}, ${c.lang}, ${eol}: above the quote`);

  it('Apple Mail quotes its own attribution: "> Wiadomość napisana przez …:"', () => {
    const text = 'Tak, zgoda.\n\n> Wiadomość napisana przez Jan <jan@fabrikam.example> w dniu 3 sty 2022, o godz. 10:00:\n>\n> Cześć\n';
    const r = placeInText(text, PH);
    expect(r.placement).to.equal('above-quote');
    expect(text.slice(r.quoteStart!)).to.match(/^> Wiadomość/);
  });
});

describe('mime/placement: localised look-alikes in new text stay new text', () => {
  const NEW_MESSAGES: Array<[string, string]> = [
    ['a lone "De:" line', 'Hola,\nDe: la dirección, un aviso.\nPor favor, revisad el calendario.\n'],
    ['"De:" and "Asunto:" without a Sent or To line', 'De: la dirección\nAsunto: la reunión del lunes\n\nNos vemos.\n'],
    ['"Enviado el:" without a From line', 'Pedido 123\nEnviado el: lunes, 3 de enero de 2022\nPara: almacén\n'],
    ['"Enviada em:" without a From line', 'Proposta 42\nEnviada em: 3 de janeiro de 2022\nPara: cliente\n'],
    ['"De:" then a blank line then "Enviado el:"', 'De: Juan\n\nEnviado el: lunes, todo listo.\nPara: todos\n'],
    ['"On <date>, … sent:" without a quote after it', 'On 3 March, we sent:\n- the invoice\n- the contract\n'],
    ['"Op <date> verzond …:" without a quote after it', 'Op 3 mei verzond hij:\nde brief en de factuur.\n'],
    ['"… schrieb am …:" without a quote after it', 'Bob schrieb am Montag, 3. Januar:\nDas Projekt ist fertig.\n'],
    ['"A … escreveu:" without a date or quote', 'A Maria escreveu:\nque chega amanhã.\n'],
    ['"Op … geschreven:" without a date or quote', 'Op de website heeft hij het volgende geschreven:\nwij zijn open.\n'],
    ['a Scandinavian "… kl. … skrev …:" line without an address', '3 personer kl. 10:00 skrev under:\nAnna, Ola og Per.\n'],
    ['"wiadomość napisana przez" inside a sentence', 'Ta wiadomość napisana przez Jana w dniu 3 maja:\nproszę o odpowiedź.\n'],
  ];
  for (const [name, text] of NEW_MESSAGES) {
    it(`${name}: signature at the end`, () => {
      const r = placeInText(text, PH);
      expect(r.placement).to.equal('end');
      expect(r.quoteStart).to.equal(undefined);
    });
  }
});

describe('mime/placement: localised separators in text/html', () => {
  it('Outlook header block without the bordered div (fallback), Spanish "Enviado el:"', () => {
    const html =
      '<html><body><p>Perfecto, gracias.</p><p><br></p>' +
      '<p><b>De:</b> Juan &lt;juan@fabrikam.example&gt;<br><b>Enviado el:</b> lunes, 3 de enero de 2022 10:00<br>' +
      '<b>Para:</b> Tom<br><b>Asunto:</b> Prueba</p><p>Hola</p></body></html>';
    const r = placeInHtml(html, PH);
    expect(r.placement).to.equal('above-quote');
    expect(html.slice(r.at)).to.match(/^<p><b>De:<\/b> Juan/);
  });

  it('Outlook header block without the bordered div (fallback), Portuguese "Enviada em:"', () => {
    const html =
      '<div>Obrigado.</div><div><br></div>' +
      '<div><b>De:</b> João &lt;joao@fabrikam.example&gt;</div><div><b>Enviada em:</b> segunda-feira, 3 de janeiro de 2022 10:00</div>' +
      '<div><b>Para:</b> Tom</div><div><b>Assunto:</b> Teste</div><div>Olá</div>';
    const r = placeInHtml(html, PH);
    expect(r.placement).to.equal('above-quote');
    expect(html.slice(r.at)).to.match(/^<div><b>De:<\/b> João/);
  });

  const APPLE: Array<[string, string]> = [
    ['Dutch', 'Op 3 jan. 2022 om 10:00 heeft Jan de Vries <jan@fabrikam.example> het volgende geschreven:'],
    ['Polish', 'Wiadomość napisana przez Jan Kowalski <jan@fabrikam.example> w dniu 3 sty 2022, o godz. 10:00:'],
    ['Portuguese (Portugal)', 'A 3 de jan. de 2022, às 10:00, João <joao@fabrikam.example> escreveu:'],
    ['Swedish', '3 jan. 2022 kl. 10:00 skrev Anna Andersson <anna@fabrikam.example>:'],
  ];
  for (const [lang, attribution] of APPLE) {
    it(`Apple Mail, ${lang}: the signature goes above the attribution line, not between it and the blockquote`, () => {
      const html =
        '<html><body><div>Thanks!</div><div><br></div>' +
        `<div><div>${escapeHtml(attribution)}</div><br class="Apple-interchange-newline"><blockquote type="cite"><div>old</div></blockquote></div>` +
        '</body></html>';
      const r = placeInHtml(html, PH);
      expect(r.placement).to.equal('above-quote');
      expect(html.slice(0, r.at)).to.match(/<div>Thanks!<\/div><div><br><\/div>$/);
    });
  }

  it('an attribution with the verb before the date, above a cite blockquote, goes with the quote', () => {
    const html =
      '<div>Danke!</div><div><br></div><div>Bob &lt;bob@fabrikam.example&gt; schrieb am Mo., 3. Jan. 2022, 10:00:</div>' +
      '<blockquote type="cite"><div>alt</div></blockquote>';
    const r = placeInHtml(html, PH);
    expect(r.placement).to.equal('above-quote');
    expect(html.slice(r.at)).to.match(/^<div>Bob &lt;bob@/);
  });

  it('the same line above a plain blockquote (the indent button) is not a quote', () => {
    const html =
      '<div>Danke!</div><div>Bob &lt;bob@fabrikam.example&gt; schrieb am Mo., 3. Jan. 2022, 10:00:</div>' +
      '<blockquote><div>eingerückt</div></blockquote>';
    expect(placeInHtml(html, PH).placement).to.equal('end');
  });

  it('typed text ending in "wrote:" (no date, no address) above a cite blockquote stays above the signature', () => {
    const html = '<div>Here is what he wrote:</div><blockquote type="cite"><div>old</div></blockquote>';
    const r = placeInHtml(html, PH);
    expect(r.placement).to.equal('above-quote');
    expect(html.slice(r.at)).to.match(/^<blockquote type="cite">/);
  });
});

describe('mime/placement: text and HTML alternatives of one localised reply agree', () => {
  const CASES: Array<[string, string[]]> = [
    ['Spanish', ['De: Juan <juan@fabrikam.example>', 'Enviado el: lunes, 3 de enero de 2022 10:00', 'Para: Tom <tom@contoso.example>', 'Asunto: Prueba']],
    ['Portuguese', ['De: João Silva <joao@fabrikam.example>', 'Enviada em: segunda-feira, 3 de janeiro de 2022 10:00', 'Para: Tom <tom@contoso.example>', 'Assunto: Teste']],
  ];
  for (const [lang, header] of CASES) {
    it(`${lang} Outlook reply: both parts above the quote`, () => {
      const text = `My new reply text.\r\n\r\n${header.join('\r\n')}\r\n\r\nHola\r\n`;
      const html =
        '<html><body><div class=WordSection1><p class=MsoNormal>My new reply text.</p><p class=MsoNormal>&nbsp;</p>' +
        "<div><div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm'><p class=MsoNormal>" +
        header.map((l) => { const [k, v] = l.split(/:(.*)/s); return `<b>${k}:</b>${escapeHtml(v ?? '')}`; }).join('<br>') +
        '</p></div></div><p class=MsoNormal>Hola</p></div></body></html>';
      const t = placeInText(text, PH);
      const h = placeInHtml(html, PH);
      expect(t.placement).to.equal('above-quote');
      expect(h.placement).to.equal('above-quote');
      expect(text.slice(0, t.at)).to.equal('My new reply text.\r\n');
    });
  }
});
