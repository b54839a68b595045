import { expect } from 'chai';
import { compileSeparators, findTextQuote, placeInHtml, placeInText, scanHtml } from '../../appliance/src/mime/placement';

const PH = '{{signature}}';
const CZECH = compileSeparators(['-------- Původní zpráva --------', 'Dne * napsal(a):', '##- Please type your reply above this line -##'])!;

describe("mime/placement: the organization's own separators (options.separators)", () => {
  describe('which lines are separators', () => {
    it('the whole line, case and blanks aside', () => {
      expect(CZECH.matches('-------- Původní zpráva --------')).to.equal(true);
      expect(CZECH.matches('  --------  PŮVODNÍ ZPRÁVA\u00a0-------- ')).to.equal(true);
      expect(CZECH.matches('-------- Původní zpráva -------- (zkráceno)')).to.equal(false);
      expect(CZECH.matches('Viz -------- Původní zpráva --------')).to.equal(false);
    });

    it('* stands for any text between the words around it', () => {
      expect(CZECH.matches('Dne po 3. 1. 2022 v 10:00 odesílatel Dana Novák <dana@fabrikam.example> napsal(a):')).to.equal(true);
      expect(CZECH.matches('Dne napsal(a):'), 'some text where the * is').to.equal(false);
      expect(CZECH.matches('Dnes jsem napsal(a):')).to.equal(false);
      expect(CZECH.matches('Dne 3. 1. napsal(a): ano')).to.equal(false);
    });

    it('several * in order, in linear time on a long line that almost matches', () => {
      const glob = compileSeparators(['Le * à * a écrit :'])!;
      expect(glob.matches('Le lun. 3 janv. 2022 à 10:00, Dana a écrit :')).to.equal(true);
      expect(glob.matches('Le lun. 3 janv. 2022, Dana a écrit :'), 'the "à" piece is missing').to.equal(false);
      expect(glob.matches(`Le ${' à'.repeat(290)} a écrit`)).to.equal(false);
    });

    it('no separators: nothing to compile', () => {
      expect(compileSeparators([])).to.equal(undefined);
    });
  });

  describe('plain text', () => {
    const reply = 'Ahoj Dano,\n\nposílám podklady.\n\n-------- Původní zpráva --------\nOd: Dana Novák <dana@fabrikam.example>\nOdesláno: pondělí 3. ledna 2022 10:00\nKomu: Jan\n\nPošli mi je prosím.\n';

    it('a layout the built-in detection does not know: found with the organization\'s line', () => {
      expect(findTextQuote(reply), 'not built in').to.equal(undefined);
      const quote = findTextQuote(reply, CZECH);
      expect(reply.slice(quote!.quoteStart)).to.match(/^-------- Původní zpráva/);
      const r = placeInText(reply, PH, { quote });
      expect(r.placement).to.equal('above-quote');
      expect(reply.slice(0, r.at)).to.equal('Ahoj Dano,\n\nposílám podklady.\n');
    });

    it('a helpdesk line', () => {
      const text = 'Thanks, fixed.\n\n##- Please type your reply above this line -##\n\nTicket 4411: printer offline\n';
      expect(text.slice(findTextQuote(text, CZECH)!.quoteStart)).to.match(/^##- Please type/);
    });

    it('not on a line quoted with ">" (that is the thread already)', () => {
      const text = 'Ok\n\n> -------- Původní zpráva --------\n> Od: Dana\n';
      expect(findTextQuote(text, CZECH)).to.equal(undefined);
    });
  });

  describe('HTML', () => {
    it('an attribution with a date and a name in it, above a plain blockquote', () => {
      const html =
        '<html><body><div>Ahoj Dano,</div><div>posílám podklady.</div><div><br></div><div class="moje">Dne po 3. 1. 2022 v 10:00 odesílatel Dana Novák &lt;dana@fabrikam.example&gt; napsal(a):</div><blockquote>Pošli mi je prosím.</blockquote></body></html>';
      expect(scanHtml(html).quoteStart, 'not built in').to.equal(undefined);
      const scan = scanHtml(html, CZECH);
      expect(html.slice(scan.quoteStart)).to.match(/^<div class="moje">Dne po/);
      const r = placeInHtml(html, PH, scan);
      expect(r.placement).to.equal('above-quote');
    });

    it('the recording pass (for a placeholder) finds the same quote', () => {
      const html = '<div>{{signature}}</div><div>-------- Původní zpráva --------</div><div>{{signature}} old</div>';
      const r = placeInHtml(html, PH, scanHtml(html, CZECH));
      expect(r).to.deep.include({ placement: 'placeholder', at: 5 });
      expect(r.quoteStart).to.equal(html.indexOf('<div>--------'));
    });
  });
});
