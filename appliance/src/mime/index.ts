export type * from './types';
export { transformMessage } from './transform';
export { placeInHtml, placeInText, findQuoteStartHtml, findQuoteStartText, compileSignOffs, compileSeparators, type PlacementResult, type SignOffs, type Separators } from './placement';
export { escapeHtml } from './text-to-html';
