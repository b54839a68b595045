// Configuration problems as data: every check reports ConfigIssues (file, path
// inside the file, message, line) and a load fails with one ConfigError that
// carries all of them, so an administrator fixes everything in one pass.

export interface ConfigIssue {
  /** File relative to the organization folder, e.g. `rules.yaml`, `templates/default.html.ejs`. */
  file: string;
  /** Path inside the file, e.g. `rules[2].match.kinds[0]`; empty for the file as a whole. */
  path: string;
  message: string;
  /** 1-based line in the file, when known. */
  line?: number;
}

export function formatIssue(issue: ConfigIssue, fileLabel: string = issue.file): string {
  const where = issue.line !== undefined ? `${fileLabel}:${issue.line}` : fileLabel;
  return issue.path ? `${where} ${issue.path}: ${issue.message}` : `${where}: ${issue.message}`;
}

/** Orders issues by file, then line, so the output reads top to bottom. */
export function sortIssues(issues: readonly ConfigIssue[]): ConfigIssue[] {
  return [...issues].sort(
    (a, b) => a.file.localeCompare(b.file) || (a.line ?? 0) - (b.line ?? 0) || a.path.localeCompare(b.path),
  );
}

export class ConfigError extends Error {
  readonly issues: ConfigIssue[];

  constructor(issues: readonly ConfigIssue[], label?: string) {
    const sorted = sortIssues(issues);
    const count = sorted.length === 1 ? '1 problem' : `${sorted.length} problems`;
    const head = label ? `configuration ${label} has ${count}` : `configuration has ${count}`;
    super(`${head}:\n${sorted.map((issue) => `  ${formatIssue(issue)}`).join('\n')}`);
    this.name = 'ConfigError';
    this.issues = sorted;
  }

  /** One issue per line: `file:line path: message`. */
  override toString(): string {
    return this.issues.map((issue) => formatIssue(issue)).join('\n');
  }
}

/** Formats a path of keys and indexes the way an administrator reads YAML: `rules[2].match.kinds[0]`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else {
      const key = String(segment);
      if (/^[A-Za-z_$][\w$-]*$/.test(key)) out += out ? `.${key}` : key;
      else out += `[${JSON.stringify(key)}]`;
    }
  }
  return out;
}
