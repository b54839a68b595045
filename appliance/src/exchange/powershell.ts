// Safe PowerShell literals. Every value the generator writes into a script is
// validated first (domains, addresses, group names) and then emitted as a
// single-quoted string, in which PowerShell expands nothing ($, `, @, ( are
// literal). The only special characters inside one are the quote characters,
// and PowerShell accepts four typographic variants besides U+0027 as quotes
// (‘ ’ ‚ ‛), so each of them is doubled: the same rule as PowerShell's own
// CodeGeneration.EscapeSingleQuotedStringContent.

const SINGLE_QUOTES = new Set(["'", '\u2018', '\u2019', '\u201a', '\u201b']);

export function quote(value: string): string {
  let out = "'";
  for (const ch of value) out += SINGLE_QUOTES.has(ch) ? ch + ch : ch;
  return `${out}'`;
}

/** A comma-separated list of quoted strings: PowerShell's array syntax for multi-valued parameters. */
export function quoteList(values: readonly string[]): string {
  return values.map(quote).join(',');
}

const DOMAIN = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
// A deliberately plain address form (what Exchange recipients have): no quoted local parts, no comments.
const ADDRESS = /^[a-z0-9!#$%&*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&*+/=?^_`{|}~-]+)*@(.+)$/;
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
