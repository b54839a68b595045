// Templates: EJS signatures and add-ons compiled once per config version, rendered per message.
export { compileTemplates, templatesUsePhotos, TemplateRenderError } from './compile';
export type { RenderContext, RenderedSnippet, TemplateSet } from './compile';
export { safeUrl, telHref } from './helpers';
export { lintHtmlTemplate, type LintProblem } from '../../config';
export { htmlToText, linkTarget, tidyText } from './text';
