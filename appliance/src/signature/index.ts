export type * from './types';
export { createEngine, signatureMarker, type EngineOptions, type Decision } from './engine';
export { STAMP_HEADER, parseStamps } from './classify';
export { createPassThroughEngine } from './pass-through';
export { compileTemplates, templatesUsePhotos, safeUrl, telHref, htmlToText } from './templates';
export type { RenderContext, RenderedSnippet, TemplateSet } from './templates';
