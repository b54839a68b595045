// Domain patterns of rules: an exact domain (`partner.example`, which does not
// match its subdomains) or a wildcard for subdomains (`*.partner.example`, which
// matches `eu.partner.example` and deeper, not the apex). Exact by default
// because a rule for `contoso.com` silently catching `evil.contoso.com.attacker`
// style look-alikes or unrelated subsidiaries would surprise an administrator;
// list both forms to cover the apex and its subdomains.

import { domainToASCII } from 'node:url';

export class DomainMatcher {
  private readonly exact = new Map<string, string>();
  /** `.partner.example` → `*.partner.example` */
  private readonly suffixes: Array<[suffix: string, text: string]> = [];
  readonly patterns: readonly string[];

  constructor(patterns: readonly string[]) {
    const texts: string[] = [];
    for (const raw of patterns) {
      const text = raw.trim().startsWith('*.') ? `*.${asciiDomain(raw.trim().slice(2))}` : asciiDomain(raw);
      if (!text) continue;
      texts.push(text);
      if (text.startsWith('*.')) this.suffixes.push([text.slice(1), text]);
      else this.exact.set(text, text);
    }
    this.patterns = texts;
  }

  /** The pattern that matches `domain` (lower-case), or undefined. */
  match(domain: string): string | undefined {
    if (!domain) return undefined;
    const exact = this.exact.get(domain);
    if (exact) return exact;
    for (const [suffix, text] of this.suffixes) {
      if (domain.length > suffix.length && domain.endsWith(suffix)) return text;
    }
    return undefined;
  }
}

/**
 * A domain as rules compare it: lower case, and an internationalized domain in
 * its ASCII (punycode) form, the form accepted domains and rule conditions are
 * written in (`bücher.example` → `xn--bcher-kva.example`).
 */
export function asciiDomain(domain: string): string {
  const lower = domain.trim().toLowerCase();
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(lower)) return lower;
  return domainToASCII(lower) || lower;
}

/** Domain of an address (after the last `@`) as asciiDomain gives it, or '' when there is none. */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : asciiDomain(address.slice(at + 1));
}

/** Lower-case, trim and strip one pair of angle brackets (`<a@b>` → `a@b`). */
export function normalizeAddress(address: string): string {
  let a = address.trim().toLowerCase();
  if (a.startsWith('<') && a.endsWith('>')) a = a.slice(1, -1).trim();
  return a;
}

/** normalizeAddress with the domain as asciiDomain gives it, as `senders` compares addresses (`anna@müller.example` is `anna@xn--mller-kva.example`). */
export function asciiAddress(address: string): string {
  const a = normalizeAddress(address);
  const at = a.lastIndexOf('@');
  return at < 0 ? a : `${a.slice(0, at)}@${asciiDomain(a.slice(at + 1))}`;
}
