// Checks an EJS template at load time: it must compile, it must not write
// directory values unescaped, it must not include files, and the images it
// names are collected for the cross-reference check. Nothing is rendered here.
import * as vm from 'node:vm';
import * as ejs from 'ejs';

export interface EjsProblem {
  /** 1-based line in the template source. */
  line: number;
  message: string;
}

export interface EjsCheck {
  problems: EjsProblem[];
  /** Image ids the template names with image('id') or images.id, with their lines. */
  imageRefs: Array<{ id: string; line: number }>;
  /** Attribute names the template reads as user.name or user['name'], with their lines. */
  attributeRefs: Array<{ name: string; line: number }>;
}

function lineAt(source: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < source.length; i++) if (source.charCodeAt(i) === 10) line++;
  return line;
}

// As the signature engine compiles: strict mode, locals destructured rather than `with`.
const COMPILE_OPTIONS: ejs.Options = { strict: true, _with: false, localsName: 'locals' };

// EJS tags: `<%` + optional flag (`=` escaped, `-` raw, `_` trim, `#` comment) … `%>`.
const TAG = /<%([=\-_#]?)([\s\S]*?)[-_]?%>/g;

/**
 * EJS reports a JavaScript syntax error without a line. Its compiled source
 * (with compileDebug) records `__line = N` before each template line, so the
 * line V8 blames in that source maps back to the template line.
 */
function syntaxErrorLine(source: string): { line: number; unclosed: boolean } | undefined {
  const template = new ejs.Template(source, { ...COMPILE_OPTIONS, compileDebug: true });
  try {
    template.compile();
    return undefined;
  } catch {
    // the generated source is kept on the template even when compiling fails
  }
  const body = template.source;
  if (!body) return undefined;
  const bodyLines = body.split('\n');
  try {
    new vm.Script(`(function (locals, escapeFn, include, rethrow) {\n"use strict"; ${body}\n})`, {
      filename: 'ejs-template',
    });
    return undefined;
  } catch (error) {
    const match = /^ejs-template:(\d+)/.exec(String((error as Error).stack));
    if (!match) return undefined;
    const generatedLine = Number(match[1]) - 1; // the wrapper's first line
    if (generatedLine > bodyLines.length) {
      // V8 stumbled on the wrapper's closing `})`: a `{` in the template was never closed.
      return { line: unclosedBlockLine(source) ?? lineAt(source, source.length), unclosed: true };
    }
    for (let i = Math.min(generatedLine, bodyLines.length) - 1; i >= 0; i--) {
      const marker = /; __line = (\d+)$/.exec(bodyLines[i]);
      if (marker) return { line: Number(marker[1]), unclosed: false };
    }
    return { line: 1, unclosed: false };
  }
}

/** Line of the first scriptlet `{` left open (counts braces in <% %> code; strings are rare there). */
function unclosedBlockLine(source: string): number | undefined {
  const open: number[] = [];
  for (const tag of source.matchAll(TAG)) {
    const [, flag, code] = tag;
    if (flag !== '' && flag !== '_') continue;
    for (const char of code.replace(/(['"`])(?:\\.|(?!\1).)*\1/g, '')) {
      if (char === '{') open.push(lineAt(source, tag.index));
      else if (char === '}') open.pop();
    }
  }
  return open[0];
}

export function checkEjsTemplate(source: string): EjsCheck {
  const problems: EjsProblem[] = [];
  const imageRefs: EjsCheck['imageRefs'] = [];
  const attributeRefs: EjsCheck['attributeRefs'] = [];
  try {
    ejs.compile(source, { ...COMPILE_OPTIONS, compileDebug: false });
  } catch (error) {
    const message = (error as Error).message.split('\n')[0].replace(/ while compiling ejs$/, '');
    const unclosed = /Could not find matching close tag for "(<%[^"]*)"/.exec(message);
    if (unclosed) {
      // The last opener without a closer is the one EJS could not match.
      let offset = source.lastIndexOf('<%');
      while (offset > 0 && source.indexOf('%>', offset) !== -1) offset = source.lastIndexOf('<%', offset - 1);
      problems.push({ line: lineAt(source, Math.max(0, offset)), message: `EJS: "${unclosed[1]}" is never closed with "%>"` });
    } else {
      const located = syntaxErrorLine(source);
      problems.push(
        located?.unclosed
          ? { line: located.line, message: 'EJS syntax error: this block is never closed (missing <% } %>?)' }
          : { line: located?.line ?? 1, message: `EJS syntax error: ${message}` },
      );
    }
  }
  for (const tag of source.matchAll(TAG)) {
    const [, flag, code] = tag;
    if (flag === '#') continue;
    const line = lineAt(source, tag.index);
    if (flag === '-' && /\buser\b/.test(code)) {
      problems.push({
        line,
        message: 'directory values are untrusted: write them with <%= (escaped), not <%- (raw)',
      });
    }
    if (/\binclude\s*\(/.test(code)) {
      problems.push({ line, message: 'include() is not available: a template must be self-contained' });
    }
    for (const ref of code.matchAll(/\bimage\(\s*(['"])([^'"]*)\1\s*\)|\bimages\.([A-Za-z0-9_]+)|\bimages\[\s*(['"])([^'"]*)\4\s*\]/g)) {
      imageRefs.push({ id: ref[2] ?? ref[3] ?? ref[5], line: line + lineAt(code, ref.index) - 1 });
    }
    for (const ref of code.matchAll(/(?<![\w$.])user\s*(?:\.\s*([A-Za-z_$][\w$]*)|\[\s*(['"])([^'"]*)\2\s*\])/g)) {
      attributeRefs.push({ name: ref[1] ?? ref[3], line: line + lineAt(code, ref.index) - 1 });
    }
  }
  return { problems, imageRefs, attributeRefs };
}
