// Reads one YAML file of the organization folder and checks it against its
// schema, turning YAML syntax errors and schema errors into ConfigIssues that
// name the line: the yaml package's Document keeps every node's source range,
// so a zod path (['rules', 2, 'match', 'kinds', 0]) maps back to a line.
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type Pair } from 'yaml';
import type { z } from 'zod';
import { formatPath, type ConfigIssue } from './errors';
import { allowedKeysAt, valueAt } from './schema-path';
import { didYouMean } from './suggest';

export type PathSegment = string | number;

export interface YamlFile {
  file: string;
  /** The plain data (undefined when the text did not parse). */
  data: unknown;
  /** Syntax problems (empty when the YAML is well-formed). */
  issues: ConfigIssue[];
  /** Line of the node at `path` (or of its nearest existing ancestor). */
  lineOf(path: readonly PathSegment[]): number | undefined;
  /** Line of the key `key` of the mapping at `path`. */
  lineOfKey(path: readonly PathSegment[], key: string): number | undefined;
  /** Line inside the file where the scalar at `path` starts its content (block scalars start on the next line). */
  contentLineOf(path: readonly PathSegment[]): number | undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes UTF-8 strictly (a stray Latin-1 byte would otherwise become U+FFFD in a signature). */
export function decodeUtf8(bytes: Buffer, file: string, issues: ConfigIssue[]): string | undefined {
  try {
    return utf8.decode(bytes).replace(/^\uFEFF/, '');
  } catch {
    issues.push({ file, path: '', message: 'not valid UTF-8 text' });
    return undefined;
  }
}

export function parseYamlFile(bytes: Buffer | string, file: string): YamlFile {
  const issues: ConfigIssue[] = [];
  const source = typeof bytes === 'string' ? bytes : decodeUtf8(bytes, file, issues);
  if (source === undefined) {
    return { file, data: undefined, issues, lineOf: () => undefined, lineOfKey: () => undefined, contentLineOf: () => undefined };
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });
  for (const problem of [...doc.errors, ...doc.warnings]) {
    const { line, col } = lineCounter.linePos(problem.pos[0]);
    issues.push({ file, path: '', line, message: `YAML: ${firstLine(problem.message)} (column ${col})` });
  }
  const lineAt = (offset: number | undefined) => (offset === undefined ? undefined : lineCounter.linePos(offset).line);
  let data: unknown;
  if (issues.length === 0) {
    try {
      data = doc.toJS({ maxAliasCount: 100 });
    } catch (error) {
      // the yaml package reports an unresolved alias (`*x` with no `&x`) or an
      // alias bomb only when the document is turned into data
      issues.push({ file, path: '', line: 1, message: `YAML: ${firstLine((error as Error).message)}` });
    }
  }
  return {
    file,
    data,
    issues,
    lineOf: (path) => lineAt(nodeAt(doc, path)?.range?.[0]),
    lineOfKey: (path, key) => {
      const node = nodeAt(doc, path);
      if (!isMap(node)) return lineAt(node?.range?.[0]);
      const pair = node.items.find((item) => isPair(item) && isScalar(item.key) && String(item.key.value) === key);
      const keyNode = pair?.key as Node | undefined;
      return lineAt(keyNode?.range?.[0] ?? node.range?.[0]);
    },
    contentLineOf: (path) => {
      const node = nodeAt(doc, path);
      const line = lineAt(node?.range?.[0]);
      if (line === undefined) return undefined;
      const block = isScalar(node) && (node.type === 'BLOCK_LITERAL' || node.type === 'BLOCK_FOLDED');
      return block ? line + 1 : line;
    },
  };
}

function firstLine(message: string): string {
  return message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
}

/** The deepest node along `path` (a missing key stops at its parent mapping). */
function nodeAt(doc: Document, path: readonly PathSegment[]): Node | undefined {
  let node = doc.contents as Node | null;
  if (!node) return undefined;
  for (const segment of path) {
    let next: Node | null | undefined;
    if (isMap(node)) {
      const pair: Pair | undefined = node.items.find(
        (item) => isPair(item) && isScalar(item.key) && String(item.key.value) === String(segment),
      );
      next = (pair?.value as Node | null | undefined) ?? (pair?.key as Node | undefined);
    } else if (isSeq(node) && typeof segment === 'number') {
      next = node.items[segment] as Node | undefined;
    }
    if (!next) return node;
    node = next;
  }
  return node;
}

function describeValue(value: unknown): string {
  if (value === null) return 'nothing (null)';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `the text ${JSON.stringify(value)}`;
  return `${typeof value} ${String(value)}`;
}

const EXPECTED_NAMES: Record<string, string> = {
  object: 'a mapping (key: value)',
  array: 'a list',
  string: 'text',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
};

/** Validates parsed data against a schema; every zod issue becomes a ConfigIssue with its line. */
export function checkSchema<S extends z.ZodType>(
  yaml: YamlFile,
  schema: S,
): { value?: z.output<S>; issues: ConfigIssue[] } {
  if (yaml.data === undefined && yaml.issues.length > 0) return { issues: [] };
  if (yaml.data === undefined || yaml.data === null) {
    return { issues: [{ file: yaml.file, path: '', line: 1, message: 'the file is empty' }] };
  }
  const result = schema.safeParse(yaml.data);
  if (result.success) return { value: result.data as z.output<S>, issues: [] };
  const issues: ConfigIssue[] = [];
  for (const issue of result.error.issues) {
    const path = issue.path.filter((s): s is PathSegment => typeof s !== 'symbol');
    const value = valueAt(yaml.data, path);
    const at = (p: readonly PathSegment[], message: string, line = yaml.lineOf(p)) =>
      issues.push({ file: yaml.file, path: formatPath(p), line, message });
    switch (issue.code) {
      case 'unrecognized_keys': {
        const allowed = allowedKeysAt(schema, path);
        for (const key of issue.keys) {
          const hint = didYouMean(key, allowed);
          const tail = hint ? `; did you mean "${hint}"?` : allowed.length ? ` (allowed: ${allowed.join(', ')})` : '';
          at([...path, key], `unknown key "${key}"${tail}`, yaml.lineOfKey(path, key));
        }
        break;
      }
      case 'invalid_type': {
        if (value === undefined) {
          const parent = path.slice(0, -1);
          const expected = EXPECTED_NAMES[issue.expected] ?? issue.expected;
          at(path, path.length ? `missing (required, ${expected})` : `expected ${expected}`, yaml.lineOf(parent));
        } else {
          const expected = EXPECTED_NAMES[issue.expected] ?? issue.expected;
          const quote = issue.expected === 'string' && (typeof value === 'number' || typeof value === 'boolean');
          at(path, `expected ${expected}, found ${describeValue(value)}${quote ? ' (put it in quotes)' : ''}`);
        }
        break;
      }
      case 'invalid_value': {
        const options = issue.values.map((v) => String(v));
        const hint = typeof value === 'string' ? didYouMean(value, options) : undefined;
        at(
          path,
          `${describeValue(value)} is not one of: ${options.join(', ')}${hint ? `; did you mean "${hint}"?` : ''}`,
        );
        break;
      }
      case 'invalid_key': {
        const key = String(path[path.length - 1]);
        const inner = issue.issues.map((i) => i.message).join('; ');
        at(path, `${inner}: ${JSON.stringify(key)}`, yaml.lineOfKey(path.slice(0, -1), key));
        break;
      }
      case 'too_small': {
        if (issue.origin === 'array' && Number(issue.minimum) === 1) at(path, 'must not be an empty list');
        else if (issue.origin === 'string' && Number(issue.minimum) === 1) at(path, 'must not be empty');
        else at(path, `must be at least ${String(issue.minimum)}${issue.origin === 'string' ? ' characters' : ''}`);
        break;
      }
      case 'too_big':
        at(path, `must be at most ${String(issue.maximum)}${issue.origin === 'string' ? ' characters' : ''}`);
        break;
      case 'invalid_format':
        at(path, typeof value === 'string' ? `${issue.message}: ${JSON.stringify(value)}` : issue.message);
        break;
      default:
        at(path, typeof value === 'string' && issue.code === 'custom' ? `${issue.message}: ${JSON.stringify(value)}` : issue.message);
    }
  }
  return { issues };
}

/** Parses a YAML file and checks it against its schema in one step. */
export function readYamlWithSchema<S extends z.ZodType>(
  bytes: Buffer | string,
  file: string,
  schema: S,
): { yaml: YamlFile; value?: z.output<S>; issues: ConfigIssue[] } {
  const yaml = parseYamlFile(bytes, file);
  const checked = checkSchema(yaml, schema);
  return { yaml, value: checked.value, issues: [...yaml.issues, ...checked.issues] };
}
