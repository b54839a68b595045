// Refuses the few HTML template constructs where escaping cannot protect a
// directory value: HTML escaping keeps a value inside a quoted attribute or
// text, but not inside a script, an event handler (the browser decodes
// entities before running it), an unquoted attribute, a style attribute (CSS
// has its own syntax: url(), expressions), a URL attribute whose scheme the
// value itself chooses (`javascript:`), or raw output (<%-), which an alias
// of a directory value would get past any name check.
// A tokenizer would be exact; these regular expressions look only at open tags
// of trusted admin templates, where a false alarm is a clear error at load time.
// The configuration loader runs them, so `signet config validate` and `seal`
// refuse what a node would refuse.

export interface LintProblem {
  line: number;
  message: string;
}

const URL_ATTRIBUTES = new Set(['href', 'src', 'background', 'action', 'formaction', 'poster', 'cite', 'xlink:href', 'srcset', 'lowsrc', 'dynsrc']);
/** Expressions that are, as a whole, one vetted URL: url(…), tel(…), image('id'), images.id, images['id']. */
const SAFE_URL_EXPRESSION = /^\s*(?:(?:url|tel|image)\s*\((?:[^()]|\([^()]*\))*\)|images\s*(?:\.\s*[A-Za-z0-9_]+|\[\s*(['"])[^'"]*\1\s*\]))\s*;?\s*$/;

function lineAt(source: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (source.charCodeAt(i) === 10) line++;
  return line;
}

export function lintHtmlTemplate(source: string): LintProblem | undefined {
  const script = /<script\b/i.exec(source);
  if (script) return { line: lineAt(source, script.index), message: 'script elements are not allowed in signatures (mail clients do not run them, and a value written into one is not protected by escaping)' };
  const raw = /<%-(?!\s*include\s*\()/.exec(source); // include() gets its own, clearer refusal
  if (raw) return { line: lineAt(source, raw.index), message: 'raw output <%- is not allowed in HTML templates: write values with <%= (escaped)' };

  // Open tags, with EJS tags inside them kept whole (`<%` … `%>` may contain `>`).
  const openTag = /<[a-zA-Z][a-zA-Z0-9-]*(?:<%[\s\S]*?%>|[^<>])*>/g;
  for (const tag of source.matchAll(openTag)) {
    const text = tag[0];
    // an attribute name follows whitespace or the slash of `<img/src=…>`
    const handler = /[\s/](on[a-z]+)\s*=/i.exec(text);
    if (handler) return { line: lineAt(source, tag.index + handler.index), message: `event handler attribute ${handler[1]} is not allowed in signatures` };
    const unquoted = /[\s/]([a-zA-Z_:][a-zA-Z0-9_:.-]*)\s*=\s*<%[=-]/.exec(text);
    if (unquoted) return { line: lineAt(source, tag.index + unquoted.index), message: `attribute ${unquoted[1]} takes a value from <%= %> without quotes; write ${unquoted[1]}="<%= … %>"` };
    const style = /[\s/](style)\s*=\s*(["'])(?:(?!\2)[^<]|<(?!%))*<%[=-]/i.exec(text);
    if (style) return { line: lineAt(source, tag.index + style.index), message: 'a style attribute takes a value from <%= %>: CSS is not protected by HTML escaping; use a fixed style and put the value in the text' };
    // a URL attribute whose scheme is not fixed before the first value (`href="<%= … %>"`, `href="java<%= … %>"`)
    for (const attr of text.matchAll(/[\s/]([a-zA-Z_:][a-zA-Z0-9_:.-]*)\s*=\s*(["'])((?:(?!\2)[^<]|<(?!%))*)<%[=-]([\s\S]*?)%>/g)) {
      const name = attr[1].toLowerCase();
      const fixed = /:|^\s*[/?#.]/.test(attr[3]);
      if (URL_ATTRIBUTES.has(name) && !fixed && !SAFE_URL_EXPRESSION.test(attr[4])) {
        return {
          line: lineAt(source, tag.index + attr.index),
          message: `attribute ${attr[1]} starts with a value from <%= %>; wrap it in url(…), tel(…) or image(…) so a directory value cannot choose a javascript: URL`,
        };
      }
    }
  }
  return undefined;
}
