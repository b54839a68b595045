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
  /**
   * HTML: how many links (`<a>`) the sender left open at `at` and at
   * `bodyStart`. A snippet put there would be part of the link (the whole
   * signature clickable, to the sender's target): it gets that many `</a>`
   * in front. `atAfterTop`: those still open at `at` once the top snippet
   * ended the ones open at `bodyStart`. Absent for text.
   */
  openLinks?: { at: number; bodyStart: number; atAfterTop: number };
  /**
   * HTML, a replaced placeholder or sign-off inside a link that goes on after
   * it: that link's start tag, written again after the snippet so the rest of
   * the link's text stays a link. Absent otherwise.
   */
  reopenLinks?: string;
}
