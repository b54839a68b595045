// "Did you mean" hints for misspelt keys and values. A dozen lines of edit
// distance do not justify a dependency; the candidate lists are tiny.

/** Levenshtein distance, case-insensitive. */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  let previous = Array.from({ length: t.length + 1 }, (_, j) => j);
  for (let i = 1; i <= s.length; i++) {
    const current = [i];
    for (let j = 1; j <= t.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (s[i - 1] === t[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[t.length];
}

function commonPrefix(a: string, b: string): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n].toLowerCase() === b[n].toLowerCase()) n++;
  return n;
}

/**
 * The closest candidate when it is a plausible typo: a few edits away, or
 * sharing a long enough start (`replies` → `reply`).
 */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = Infinity;
  const tolerance = Math.max(1, Math.floor(word.length / 3));
  for (const candidate of candidates) {
    if (candidate === word) continue;
    const distance = editDistance(word, candidate);
    const prefix = commonPrefix(word, candidate);
    const plausible = distance <= tolerance || prefix >= Math.min(4, candidate.length, word.length);
    if (plausible && distance < bestScore) {
      best = candidate;
      bestScore = distance;
    }
  }
  return best;
}
