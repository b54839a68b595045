export type * from './types';
export { transformMessage } from './transform';
export { placeInHtml, placeInText, findQuoteStartHtml, findQuoteStartText, compileSignOffs, type PlacementResult, type SignOffs } from './placement';
