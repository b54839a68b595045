import { expect } from 'chai';
import { insertIntoHtml, insertIntoText } from '../../appliance/src/mime/insert';
import { compileSignOffs, placeInHtml, placeInText } from '../../appliance/src/mime/placement';
import type { BodyInsertion } from '../../appliance/src/mime/types';

const PH = '{{signature}}';
const SIGN_OFFS = compileSignOffs([]);
const SIG_HTML = '<div id="sig">Kim Lee</div>';
// as the engine renders it: a blank line sets it apart from the new text above
const SIG_TEXT = '\nKim Lee\nContoso';

function body(extra: Partial<BodyInsertion> = {}): BodyInsertion {
  return { html: SIG_HTML, text: SIG_TEXT, topHtml: '', topText: '', placeholder: PH, images: [], signOffs: SIGN_OFFS, ...extra };
}

function signedText(text: string, extra: Partial<BodyInsertion> = {}): { text: string; placement: string } {
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const r = insertIntoText(text, body(extra), eol, { flowed: false, delSp: false });
  return { text: r.text, placement: r.placement };
}

function signedHtml(html: string, extra: Partial<BodyInsertion> = {}): { text: string; placement: string } {
  const r = insertIntoHtml(html, body(extra), '\n', (s) => s);
  return { text: r.text, placement: r.placement };
}

describe('mime/placement: sign-offs of mail apps', () => {
  describe('which lines are sign-offs', () => {
    const signOffs = [
      'Sent from my iPhone',
      'Sent from my iPad',
      'Sent from my Samsung Galaxy smartphone.',
      'Sent from Mail for Windows',
      'Sent from Yahoo Mail on Android',
      'Get Outlook for iOS',
      'Get Outlook for Android<https://aka.ms/AAb9ysg>',
      'Von meinem iPhone gesendet',
      'Gesendet von Outlook für iOS',
      'Outlook für Android beziehen',
      'Envoyé de mon iPhone',
      'Envoyé depuis mon smartphone Samsung Galaxy',
      'Enviado desde mi iPhone',
      'Inviato da iPhone',
      'Inviato dal mio smartphone Samsung Galaxy',
      'Verstuurd vanaf mijn iPhone',
      'Verzonden vanaf mijn Samsung Galaxy-smartphone',
      'Enviado do meu iPhone',
      "Wysłane z iPhone'a",
      'Skickat från min iPhone',
      'Sendt fra min iPhone',
      'iPhoneから送信',
      '发自我的iPhone',
      '  sent  from my\u00a0IPHONE ',
    ];
    for (const line of signOffs) {
      it(`${JSON.stringify(line)} is one`, () => expect(SIGN_OFFS.matches(line)).to.equal(true));
    }
    const sentences = [
      'Sent from my desk, is much easier than my phone.',
      'Sent from my phone while walking the dog in the park near the river this morning',
      'Sent from my iPhone (sorry for typos)',
      'I sent it from my iPhone',
      'Inviato da Mario',
      'Get Outlook for Mac',
      'Thanks, Kim',
      '',
    ];
    for (const line of sentences) {
      it(`${JSON.stringify(line)} is not`, () => expect(SIGN_OFFS.matches(line)).to.equal(false));
    }

    it("the organization's own: exact text, case and blanks aside", () => {
      const own = compileSignOffs(['Sent with Contoso Mobile', '  Signed by  the Acme add-in ']);
      expect(own.matches('sent with contoso  mobile')).to.equal(true);
      expect(own.matches('Signed by the Acme add-in')).to.equal(true);
      expect(own.matches('Sent with Contoso Mobile today')).to.equal(false);
      // the built-in ones still count
      expect(own.matches('Sent from my iPhone')).to.equal(true);
    });
  });

  describe('plain text', () => {
    it('a new message: the sign-off line and the blank line above it make way for the signature', () => {
      const r = signedText('Hello Bob\n\nSent from my iPhone');
      expect(r).to.deep.equal({ text: 'Hello Bob\n\nKim Lee\nContoso', placement: 'sign-off' });
    });

    it('a final line break stays at the end', () => {
      expect(signedText('Hello Bob\n\nSent from my iPhone\n').text).to.equal('Hello Bob\n\nKim Lee\nContoso\n');
    });

    it('a reply (iOS Mail, as in the corpus): in place of the sign-off, the quote below as it was', () => {
      const text = 'Hello\r\n\r\nSent from my iPhone\r\n\r\nOn Apr 3, 2012, at 4:19 PM, bob <bob@example.com> wrote:\r\n\r\n> Hi\r\n';
      const r = signedText(text);
      expect(r.placement).to.equal('sign-off');
      expect(r.text).to.equal('Hello\r\n\r\nKim Lee\r\nContoso\r\n\r\nOn Apr 3, 2012, at 4:19 PM, bob <bob@example.com> wrote:\r\n\r\n> Hi\r\n');
    });

    it('Outlook for Android: the words and the link that follows them go together', () => {
      const text = 'On my way\n\nGet Outlook for Android<https://aka.ms/AAb9ysg>\n\n________________________________\nFrom: Dana <dana@fabrikam.example>\nSent: Monday\nTo: Kim\nSubject: Lunch\n\nWhere are you?\n';
      const r = signedText(text);
      expect(r.placement).to.equal('sign-off');
      expect(r.text).to.equal(`On my way\n\nKim Lee\nContoso\n\n________________________________\nFrom: Dana <dana@fabrikam.example>\nSent: Monday\nTo: Kim\nSubject: Lunch\n\nWhere are you?\n`);
    });

    it('no blank line above the sign-off: the signature is still set apart by one', () => {
      expect(signedText('Hello\nSent from my iPhone').text).to.equal('Hello\n\nKim Lee\nContoso');
    });

    it('a message that is only the sign-off', () => {
      expect(signedText('Sent from my iPhone\n').text).to.equal('\nKim Lee\nContoso\n');
    });

    it('not when the sender wrote more below it', () => {
      const r = signedText('Sent from my iPhone\n\nPS: call me');
      expect(r.placement).to.equal('end');
      expect(r.text).to.equal('Sent from my iPhone\n\nPS: call me\n\nKim Lee\nContoso');
    });

    it('not when it ends a sentence that a format=flowed line above goes on with', () => {
      expect(placeInText('I wrote this on the train, the message was \nSent from my iPhone\n', PH, undefined, SIGN_OFFS).placement).to.equal('end');
      // a blank line with a space in it is still a blank line
      expect(placeInText('Hello\n \nSent from my iPhone\n', PH, undefined, SIGN_OFFS).placement).to.equal('sign-off');
    });

    it('not in the quoted thread', () => {
      const text = 'Thanks\n\nOn Monday, Dana <dana@fabrikam.example> wrote:\n> See you\n>\n> Sent from my iPhone\n';
      expect(placeInText(text, PH, undefined, SIGN_OFFS).placement).to.equal('above-quote');
    });

    it('not below a quote the sender answered under (interleaved)', () => {
      const text = 'On Monday, Dana <dana@fabrikam.example> wrote:\n> Lunch?\n\nYes\n\nSent from my iPhone\n';
      const r = placeInText(text, PH, undefined, SIGN_OFFS);
      expect(r.placement).to.equal('end');
    });

    it('not unless the organization asked for it', () => {
      expect(signedText('Hello\n\nSent from my iPhone', { signOffs: undefined }).text).to.equal('Hello\n\nSent from my iPhone\n\nKim Lee\nContoso');
    });

    it('a typed placeholder wins', () => {
      const r = placeInText('Hi\n{{signature}}\n\nSent from my iPhone', PH, undefined, SIGN_OFFS);
      expect(r).to.deep.include({ placement: 'placeholder', at: 3 });
    });

    it('a long last line full of blanks (read from both ends by hand, not with an end-anchored regex)', () => {
      const text = `x${' '.repeat(200_000)}y\n${'\u00a0'.repeat(200_000)}\n`;
      expect(placeInText(text, PH, undefined, SIGN_OFFS).placement).to.equal('end');
    });
  });

  describe('HTML', () => {
    it('iOS Mail, new message: the sign-off text is replaced inside its own div', () => {
      const html = '<html><body dir="auto"><div dir="ltr">Hello Bob</div><div dir="ltr"><br></div><div dir="ltr" id="AppleMailSignature">Sent from my iPhone</div></body></html>';
      const r = signedHtml(html);
      expect(r.placement).to.equal('sign-off');
      expect(r.text).to.equal(html.replace('Sent from my iPhone', SIG_HTML));
    });

    it('iOS Mail, reply: the sign-off above the attribution and the cite blockquote', () => {
      const html =
        '<html><body dir="auto">Provvedi<br><br><div dir="ltr">Inviato da iPhone</div><div dir="ltr"><br><blockquote type="cite">Il giorno 3 gen 2022, alle ore 10:00, Dana &lt;dana@fabrikam.example&gt; ha scritto:<br><br></blockquote></div><blockquote type="cite"><div dir="ltr">Ciao</div></blockquote></body></html>';
      const r = signedHtml(html);
      expect(r.placement).to.equal('sign-off');
      expect(r.text).to.equal(html.replace('Inviato da iPhone', SIG_HTML));
    });

    it('Outlook for iOS, reply: the link in "Get Outlook for iOS" goes with the words', () => {
      const html =
        '<html><body><div dir="ltr">On my way</div><div dir="ltr"><br></div><div id="ms-outlook-mobile-signature"><div dir="ltr">Get <a href="https://aka.ms/o0ukef">Outlook for iOS</a></div></div><div id="mail-editor-reference-message-container"><br><hr style="display:inline-block;width:98%"><div id="divRplyFwdMsg"><b>From:</b> Dana<br><b>Sent:</b> Monday<br><b>To:</b> Kim<br><b>Subject:</b> Lunch</div><div>Where are you?</div></div></body></html>';
      const r = signedHtml(html);
      expect(r.placement).to.equal('sign-off');
      expect(r.text).to.equal(html.replace('Get <a href="https://aka.ms/o0ukef">Outlook for iOS</a>', SIG_HTML));
    });

    it('Yahoo Mail: a sign-off that is the whole text of a link goes with the link (no empty link, no stray </a>)', () => {
      const link = '<a id="ymail_android_signature_link" href="https://go.onelink.me/107872968?pid=InProduct">Sent from Yahoo Mail on Android</a>';
      const android = `<div>Fine by me</div><div><br></div><div id="ymail_android_signature">${link}</div>`;
      expect(signedHtml(android)).to.deep.equal({ text: android.replace(link, SIG_HTML), placement: 'sign-off' });
      const ios = '<div>Fine by me</div><div class="yahoo-signature"><a style="font-size:12px" href="https://mail.onelink.me/107872968">Sent from Yahoo Mail for iPhone</a><br></div>';
      expect(signedHtml(ios).text).to.equal(`<div>Fine by me</div><div class="yahoo-signature">${SIG_HTML}<br></div>`);
      // the elements between the words and the link go with it; those around the link stay
      const nested = '<p><font size="2"><a href="https://x.example/">\n<span><b>Sent from my iPhone</b></span>\n</a></font></p>';
      expect(signedHtml(nested).text).to.equal(`<p><font size="2">${SIG_HTML}</font></p>`);
      // a sign-off inside a link that holds more text keeps the link, ended in front of the signature
      const more = '<p><a href="https://x.example/">Tap here<br>Sent from my iPhone</a></p>';
      expect(signedHtml(more).text).to.equal(`<p><a href="https://x.example/">Tap here<br></a>${SIG_HTML}</p>`);
      // the line breaks that end the sign-off's line, inside the link, go with it and the link's </a>
      const broken = '<p><a href="https://x.example/">Tap here<br>Sent from my iPhone<br> <br></a></p>';
      expect(signedHtml(broken).text).to.equal(`<p><a href="https://x.example/">Tap here<br></a>${SIG_HTML}</p>`);
    });

    it('a sign-off followed by an attribution, which the scan reads as text before it knows the quote', () => {
      for (const html of [
        '<div>Thanks</div><div>Sent from my iPhone</div><div>On Mon, 3 Jan 2022 at 10:00, Dana &lt;dana@fabrikam.example&gt; wrote:</div><blockquote type="cite">Lunch?</blockquote>',
        '<div>Thanks<br>Sent from my iPhone<br><br>On Mon, 3 Jan 2022 at 10:00, Dana &lt;dana@fabrikam.example&gt; wrote:<br><br></div><blockquote>Lunch?</blockquote>',
      ]) {
        const placed = placeInHtml(html, PH, undefined, SIGN_OFFS);
        expect(placed.placement, html).to.equal('sign-off');
        expect(html.slice(placed.at, placed.at + placed.removeLength)).to.equal('Sent from my iPhone');
      }
    });

    it('an attribution-like line the scan did not take for a quote: the sign-off is not the last line', () => {
      const html = '<div>Sent from my iPhone</div><div>On Monday, Dana &lt;dana@fabrikam.example&gt; wrote:</div><div>&gt; Lunch?</div>';
      expect(placeInHtml(html, PH, undefined, SIGN_OFFS).placement).to.equal('end');
    });

    it('written with character references and markup inside: still one', () => {
      const html = '<p>Hi</p><p><span>Envoy&eacute; de mon</span> iPhone</p>';
      const r = signedHtml(html);
      expect(r.placement).to.equal('sign-off');
      expect(r.text).to.equal(`<p>Hi</p><p>${SIG_HTML}</p>`);
    });

    it('not when more text follows', () => {
      const html = '<div>Sent from my iPhone</div><div>PS: call me</div>';
      expect(placeInHtml(html, PH, undefined, SIGN_OFFS).placement).to.equal('end');
    });

    it('not when it is hidden (the visible text ends elsewhere)', () => {
      const html = '<div>Hello</div><div style="display:none">Sent from my iPhone</div>';
      expect(placeInHtml(html, PH, undefined, SIGN_OFFS).placement).to.equal('end');
    });

    it('not in the quoted thread', () => {
      const html = '<div>Thanks</div><div class="gmail_quote">On Monday, Dana wrote:<blockquote>See you<br>Sent from my iPhone</blockquote></div>';
      expect(placeInHtml(html, PH, undefined, SIGN_OFFS).placement).to.equal('above-quote');
    });

    it('not without signOffs, and a typed placeholder wins', () => {
      const html = '<div>Hi</div><div>Sent from my iPhone</div>';
      expect(placeInHtml(html, PH).placement).to.equal('end');
      expect(placeInHtml('<div>{{signature}}</div><div>Sent from my iPhone</div>', PH, undefined, SIGN_OFFS).placement).to.equal('placeholder');
    });
  });
});
