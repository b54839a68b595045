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
    // Parentheses opened inside the call (an argument that is an expression) close inside it.
    let depth = 0;
    for (let j = i + 1; j < tokens.length; j++) {
      const u = tokens[j]!;
      if (u.kind === 'punct' && u.value === '(') depth++;
      else if (u.kind === 'punct' && u.value === ')' && depth > 0) depth--;
      else if (u.kind === 'newline' || (u.kind === 'punct' && [')', '}', ';', '|', '{'].includes(u.value))) break;
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

/**
 * The strings a parameter's argument evaluates to, for the forms the generator
 * writes: single-quoted literals, and ('' + 'text' + [char]0xNNNN + …)
 * concatenations, separated by commas. Anything else throws: a value that is
 * not one of these is code, not a literal.
 */
export function stringValues(tokens: readonly Token[]): string[] {
  const values: string[] = [];
  const fail = (why: string): never => {
    throw new Error(`not a literal: ${why} in ${JSON.stringify(tokens)}`);
  };
  let i = 0;
  while (i < tokens.length) {
    const t = tokens[i]!;
    if (t.kind === 'string' && t.quote === 'single') {
      values.push(t.value);
      i++;
    } else if (t.kind === 'punct' && t.value === '(') {
      i++;
      let value = '';
      let operand = true;
      for (;;) {
        const u = tokens[i++] ?? fail('unterminated (');
        if (operand) {
          if (u.kind === 'string' && u.quote === 'single') {
            value += u.value;
          } else if (u.kind === 'punct' && u.value === '[') {
            const [name, close, code] = [tokens[i], tokens[i + 1], tokens[i + 2]];
            if (name?.kind !== 'word' || name.value !== 'char' || close?.kind !== 'punct' || close.value !== ']' || code?.kind !== 'word' || !/^0x[0-9A-F]{4}$/.test(code.value)) fail('not [char]0xNNNN');
            value += String.fromCharCode(Number.parseInt((code as { value: string }).value.slice(2), 16));
            i += 3;
          } else {
            fail('operand');
          }
          operand = false;
        } else if (u.kind === 'punct' && u.value === '+') {
          operand = true;
        } else if (u.kind === 'punct' && u.value === ')') {
          break;
        } else {
          fail('operator');
        }
      }
      values.push(value);
    } else {
      fail('value');
    }
    if (i < tokens.length) {
      const comma = tokens[i]!;
      if (comma.kind !== 'punct' || comma.value !== ',') fail('separator');
      i++;
    }
  }
  return values;
}
