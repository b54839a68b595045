// Refuses the few template constructs where escaping cannot protect a
// directory value: HTML escaping keeps a value inside a quoted attribute or
// text, but not inside a script, an event handler (the browser decodes
// entities before running it), an unquoted attribute, or a URL attribute whose
// scheme the value itself chooses (`javascript:`).
// A tokenizer would be exact; these regular expressions look only at open tags
// of trusted admin templates, where a false alarm is a clear error at load time.

export interface LintProblem {
  line: number;
  message: string;
}

const URL_ATTRIBUTES = new Set(['href', 'src', 'background', 'action', 'formaction', 'poster', 'cite', 'xlink:href', 'srcset', 'lowsrc', 'dynsrc']);
/** Expressions that produce a vetted URL. */
const SAFE_URL_EXPRESSION = /^\s*(?:url|tel|image)\s*\(|^\s*images\s*(?:\.|\[)/;

function lineAt(source: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (source.charCodeAt(i) === 10) line++;
  return line;
}

export function lintHtmlTemplate(source: string): LintProblem | undefined {
  const script = /<script\b/i.exec(source);
  if (script) return { line: lineAt(source, script.index), message: 'script elements are not allowed in signatures (mail clients do not run them, and a value written into one is not protected by escaping)' };

  // Open tags, with EJS tags inside them kept whole (`<%` … `%>` may contain `>`).
  const openTag = /<[a-zA-Z][a-zA-Z0-9-]*(?:<%[\s\S]*?%>|[^<>])*>/g;
  for (const tag of source.matchAll(openTag)) {
    const text = tag[0];
    const handler = /\s(on[a-z]+)\s*=/i.exec(text);
    if (handler) return { line: lineAt(source, tag.index + handler.index), message: `event handler attribute ${handler[1]} is not allowed in signatures` };
    const unquoted = /\s([a-zA-Z_:][a-zA-Z0-9_:.-]*)\s*=\s*<%[=-]/.exec(text);
    if (unquoted) return { line: lineAt(source, tag.index + unquoted.index), message: `attribute ${unquoted[1]} takes a value from <%= %> without quotes; write ${unquoted[1]}="<%= … %>"` };
    for (const attr of text.matchAll(/\s([a-zA-Z_:][a-zA-Z0-9_:.-]*)\s*=\s*(["'])\s*<%[=-]([\s\S]*?)%>/g)) {
      const name = attr[1].toLowerCase();
      if (URL_ATTRIBUTES.has(name) && !SAFE_URL_EXPRESSION.test(attr[3])) {
        return {
          line: lineAt(source, tag.index + attr.index),
          message: `attribute ${attr[1]} starts with a value from <%= %>; wrap it in url(…), tel(…) or image(…) so a directory value cannot choose a javascript: URL`,
        };
      }
    }
  }
  return undefined;
}
