// An organization's own reply separators (options.separators): lines that
// start the quoted thread in layouts the built-in detection does not know —
// a language it does not cover ("-------- Původní zpráva --------"), a
// helpdesk's "##- Please type your reply above this line -##", a customised
// client template. A separator is a whole line; `*` stands for any text (a
// date, a name), so "Dne * napsal(a):" covers a Czech attribution.
import { foldLine } from './patterns';

/** A line longer than this is prose, never a separator. */
const MAX_LINE = 600;

export interface Separators {
  /** Whether a (quote-marker-free) line is one of the organization's separators. */
  matches(line: string): boolean;
}

/**
 * Whether `s` matches a pattern split at its `*`s: the first piece starts
 * it, the last ends it, the others follow in order. Greedy and in linear
 * time (a regex of several `.*` backtracks on a long line that fails).
 */
function globMatches(pieces: readonly string[], s: string): boolean {
  if (pieces.length === 1) return s === pieces[0];
  const first = pieces[0]!;
  const last = pieces[pieces.length - 1]!;
  if (s.length < first.length + last.length || !s.startsWith(first) || !s.endsWith(last)) return false;
  let at = first.length;
  const limit = s.length - last.length;
  for (let k = 1; k < pieces.length - 1; k++) {
    const piece = pieces[k]!;
    const found = s.indexOf(piece, at);
    if (found < 0 || found + piece.length > limit) return false;
    at = found + piece.length;
  }
  return true;
}

/** Compiled once per configuration version; an empty list matches nothing. */
export function compileSeparators(lines: readonly string[]): Separators | undefined {
  // the blanks around a `*` stay: "Dne * napsal:" needs words on both sides of the date
  const patterns = lines.map((line) => foldLine(line).split('*'));
  if (patterns.length === 0) return undefined;
  const exact = new Set(patterns.filter((p) => p.length === 1).map((p) => p[0]!));
  const globs = patterns.filter((p) => p.length > 1);
  return {
    matches(line: string): boolean {
      if (line.length > MAX_LINE) return false;
      const s = foldLine(line);
      if (s.length === 0) return false;
      return exact.has(s) || globs.some((pieces) => globMatches(pieces, s));
    },
  };
}
