// A small reader of the PowerShell the generator writes, for tests only: it
// splits a script into tokens (single-quoted strings with doubled quotes,
// double-quoted strings, comments, words) and lists each cmdlet call with the
// -Parameter names given to it. Enough for the generated scripts; not a
// general PowerShell parser (none exists for Node, and pwsh is not packaged by
// Debian).

export type Token =
  | { kind: 'string'; quote: 'single' | 'double'; value: string; raw: string }
  | { kind: 'word'; value: string }
  | { kind: 'newline' }
  | { kind: 'punct'; value: string };

const SINGLE_QUOTES = new Set(["'", '\u2018', '\u2019', '\u201a', '\u201b']);

export function tokenize(script: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < script.length) {
    const ch = script[i]!;
    if (ch === '\n') {
      tokens.push({ kind: 'newline' });
      i++;
    } else if (ch === ' ' || ch === '\t' || ch === '\r') {
      i++;
    } else if (ch === '<' && script[i + 1] === '#') {
      const end = script.indexOf('#>', i + 2);
      if (end < 0) throw new Error('unterminated block comment');
      i = end + 2;
    } else if (ch === '#') {
      while (i < script.length && script[i] !== '\n') i++;
    } else if (SINGLE_QUOTES.has(ch)) {
      const start = i;
      let value = '';
      i++;
      for (;;) {
        if (i >= script.length) throw new Error(`unterminated single-quoted string at ${start}`);
        const c = script[i]!;
        if (SINGLE_QUOTES.has(c)) {
          if (SINGLE_QUOTES.has(script[i + 1] ?? '')) {
            value += c;
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += c;
        i++;
      }
      tokens.push({ kind: 'string', quote: 'single', value, raw: script.slice(start, i) });
    } else if (ch === '"') {
      const start = i;
      i++;
      while (i < script.length && script[i] !== '"') i += script[i] === '`' ? 2 : 1;
      if (i >= script.length) throw new Error(`unterminated double-quoted string at ${start}`);
      i++;
      tokens.push({ kind: 'string', quote: 'double', value: script.slice(start + 1, i - 1), raw: script.slice(start, i) });
    } else if ('(){}[];,|=@!+'.includes(ch)) {
      tokens.push({ kind: 'punct', value: ch });
      i++;
    } else {
      const start = i;
      while (i < script.length && !/[\s(){}[\];,|'"=]/.test(script[i]!) && !SINGLE_QUOTES.has(script[i]!)) i++;
      tokens.push({ kind: 'word', value: script.slice(start, i) });
    }
  }
  return tokens;
}

export interface CmdletCall {
  cmdlet: string;
  parameters: string[];
  /** The argument tokens after each parameter, up to the next parameter. */
  args: Map<string, Token[]>;
}

const CMDLET = /^[A-Z][a-z]+-[A-Za-z]+$/;

/** Cmdlet calls: a Verb-Noun word, then its -Parameters up to the end of the statement. */
export function cmdletCalls(script: string): CmdletCall[] {
  const tokens = tokenize(script);
  const calls: CmdletCall[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind !== 'word' || !CMDLET.test(t.value)) continue;
    const call: CmdletCall = { cmdlet: t.value, parameters: [], args: new Map() };
    let current: string | undefined;
    for (let j = i + 1; j < tokens.length; j++) {
      const u = tokens[j]!;
      if (u.kind === 'newline' || (u.kind === 'punct' && [')', '}', ';', '|', '{'].includes(u.value))) break;
      if (u.kind === 'word' && /^-[A-Za-z]+(:.*)?$/.test(u.value) && !/^-(not|and|or|eq|ne|like|gt|lt|ge|le)$/i.test(u.value)) {
        current = u.value.slice(1).split(':')[0]!;
        call.parameters.push(current);
        call.args.set(current, []);
      } else if (current) {
        call.args.get(current)!.push(u);
      }
    }
    calls.push(call);
  }
  return calls;
}
