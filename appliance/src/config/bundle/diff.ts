// What changed between two configurations (two unsealed bundles or folders):
// files added, removed and changed, with a unified diff of text files (the
// `diff` package's createTwoFilesPatch).
import { createTwoFilesPatch } from 'diff';

export interface FileChange {
  name: string;
  /** Unified diff for text files; absent for binary files (images). */
  patch?: string;
  oldBytes: number;
  newBytes: number;
}

export interface ConfigDiff {
  added: string[];
  removed: string[];
  changed: FileChange[];
}

/** Text = valid UTF-8 without NUL bytes. */
function asText(data: Buffer): string | undefined {
  if (data.includes(0)) return undefined;
  const text = data.toString('utf8');
  return Buffer.from(text, 'utf8').equals(data) ? text : undefined;
}

export function diffFiles(before: Map<string, Buffer>, after: Map<string, Buffer>, labels: { old?: string; new?: string } = {}): ConfigDiff {
  const names = (m: Map<string, Buffer>) => [...m.keys()].sort();
  const added = names(after).filter((n) => !before.has(n));
  const removed = names(before).filter((n) => !after.has(n));
  const changed: FileChange[] = [];
  for (const name of names(after)) {
    const a = before.get(name);
    const b = after.get(name)!;
    if (!a || a.equals(b)) continue;
    const ta = asText(a);
    const tb = asText(b);
    const patch = ta !== undefined && tb !== undefined
      ? createTwoFilesPatch(`a/${name}`, `b/${name}`, ta, tb, labels.old, labels.new, { context: 3 })
      : undefined;
    changed.push({ name, patch, oldBytes: a.length, newBytes: b.length });
  }
  return { added, removed, changed };
}

/** Human-readable report: one line per added/removed file, then each change. */
export function formatDiff(diff: ConfigDiff): string {
  const lines: string[] = [];
  for (const name of diff.added) lines.push(`added    ${name}`);
  for (const name of diff.removed) lines.push(`removed  ${name}`);
  for (const change of diff.changed) {
    lines.push(`changed  ${change.name}${change.patch ? '' : ` (binary, ${change.oldBytes} → ${change.newBytes} bytes)`}`);
  }
  if (lines.length === 0) return 'no differences\n';
  const patches = diff.changed.filter((c) => c.patch).map((c) => c.patch!);
  return `${lines.join('\n')}\n${patches.length ? `\n${patches.join('\n')}` : ''}`;
}
