import type { Placement } from '../types';

/**
 * Where to put the signature in one decoded body part. All offsets are JS
 * string indices into the string that was examined.
 */
export interface PlacementResult {
  /** Where the signature is inserted. */
  at: number;
  /** Length of the placeholder to replace at `at`; 0 when nothing is replaced. */
  removeLength: number;
  placement: Placement;
  /** Where top banners go: right after `<body …>` in HTML (see placeInHtml), 0 in text. */
  bodyStart: number;
  /** Where the quoted thread begins, when there is one. */
  quoteStart?: number;
}
