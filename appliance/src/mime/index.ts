export type * from './types';
export { transformMessage } from './transform';
export { placeInHtml, placeInText, findQuoteStartHtml, findQuoteStartText, type PlacementResult } from './placement';
