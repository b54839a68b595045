// Safe PowerShell literals. Every value the generator writes into a script is
// validated first (domains, addresses, group names) and then emitted as a
// single-quoted string, in which PowerShell expands nothing ($, `, @, ( are
// literal). The only special character inside one is the quote character,
// which is doubled (PowerShell's own CodeGeneration.EscapeSingleQuotedStringContent).
//
// The scripts are pure ASCII. Windows PowerShell 5.1 reads a script file
// without a byte-order mark in the machine's ANSI code page, not UTF-8
// (about_Character_Encoding), so a UTF-8 "Österreich" would reach Exchange as
// "Ã–sterreich"; and on code page 1252 some UTF-8 bytes read as the
// typographic quotes PowerShell also ends strings with (‘ ’ ‚ ‛): "Ñ" is C3 91,
// and 0x91 is ‘, so a literal would end in the middle of a group name and the
// rest of the name would run as code. A value with characters outside
// printable ASCII is therefore written as an expression, each such UTF-16 code
// unit as [char]0xNNNN: ('' + 'Vertrieb ' + [char]0x00D6 + 'sterreich'), the
// leading '' making every + a string concatenation (char + char is a number).

function singleQuoted(ascii: string): string {
  return `'${ascii.replaceAll("'", "''")}'`;
}

export function quote(value: string): string {
  if (/^[\x20-\x7e]*$/.test(value)) return singleQuoted(value);
  const parts: string[] = ["''"];
  let run = '';
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    if (unit >= 0x20 && unit <= 0x7e) {
      run += value[i];
      continue;
    }
    if (run) parts.push(singleQuoted(run));
    run = '';
    parts.push(`[char]0x${unit.toString(16).toUpperCase().padStart(4, '0')}`);
  }
  if (run) parts.push(singleQuoted(run));
  return `(${parts.join(' + ')})`;
}

/** A comma-separated list of quoted strings: PowerShell's array syntax for multi-valued parameters. */
export function quoteList(values: readonly string[]): string {
  return values.map(quote).join(',');
}

const DOMAIN = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
// A deliberately plain address form (what Exchange recipients have): an RFC 5322 dot-atom local
// part, apostrophe included (o'brien@…; quote() doubles it), no quoted local parts, no comments.
const ADDRESS = /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(.+)$/;
// Control characters (line breaks would end a comment or a statement), and characters no group name needs.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const FORBIDDEN_IN_NAME = /[\u0000-\u001f\u007f-\u009f\u2028\u2029"`<>;|]/;

export function validateDomain(value: string, what: string): string {
  const domain = value.trim().toLowerCase();
  if (!DOMAIN.test(domain)) throw new Error(`${what}: ${JSON.stringify(value)} is not a DNS domain name`);
  return domain;
}

export function validateAddress(value: string, what: string): string {
  const address = value.trim().toLowerCase();
  const m = ADDRESS.exec(address);
  if (!m || !DOMAIN.test(m[1] ?? '') || address.length > 254) throw new Error(`${what}: ${JSON.stringify(value)} is not an email address`);
  return address;
}

/**
 * A group identity as Exchange accepts it (name, alias, or address). Names may
 * hold spaces, apostrophes and most punctuation; they are quoted safely. What
 * is refused has no business in a group name and only ever appears in an
 * attempt to break out of a string, a comment, or a line.
 */
export function validateGroupName(value: string, what: string): string {
  const name = value.trim();
  if (!name) throw new Error(`${what}: empty group name`);
  if (name.length > 256) throw new Error(`${what}: group name longer than 256 characters`);
  if (FORBIDDEN_IN_NAME.test(name)) throw new Error(`${what}: ${JSON.stringify(value)} contains a character not allowed in a group name (control characters, " \` < > ; |)`);
  return name;
}
