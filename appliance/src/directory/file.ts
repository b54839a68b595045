// The local directory source: a directory.yaml with users (addresses,
// attributes, direct groups) and groups (which may sit inside other groups).
// Used for development and for organizations run without Microsoft Graph.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ConfigError, didYouMean, directoryFileSchema, formatPath, readYamlWithSchema, type ConfigIssue } from '../config';
import { createDirectorySnapshot, normalizeAddress, resolveTransitiveGroups } from './snapshot';
import type { DirectorySnapshot, DirectoryUser } from './types';

/**
 * Validates a directory file's bytes and builds the snapshot. Every problem
 * (schema, unknown group, an address claimed twice) is reported at once in a
 * ConfigError naming file, path and line.
 */
export function parseDirectoryFile(
  bytes: Buffer | string,
  file = 'directory.yaml',
  syncedAt: Date = new Date(),
): DirectorySnapshot {
  const read = readYamlWithSchema(bytes, file, directoryFileSchema);
  const issues: ConfigIssue[] = [...read.issues];
  const yaml = read.yaml;
  const raw = (yaml.data ?? {}) as { groups?: unknown; users?: unknown };
  const rawGroups = Array.isArray(raw.groups) ? (raw.groups as unknown[]) : [];
  const rawUsers = Array.isArray(raw.users) ? (raw.users as unknown[]) : [];
  const report = (p: Array<string | number>, message: string) =>
    issues.push({ file, path: formatPath(p), message, line: yaml.lineOf(p) });
  const field = (entry: unknown, key: string): unknown =>
    entry !== null && typeof entry === 'object' ? (entry as Record<string, unknown>)[key] : undefined;

  // Groups by id and by name; a reference may use either.
  const idOfRef = new Map<string, string>();
  const nameOfId = new Map<string, string>();
  const groupLine = new Map<string, number | undefined>();
  rawGroups.forEach((group, i) => {
    const id = field(group, 'id');
    const name = field(group, 'name');
    if (typeof id === 'string') {
      if (groupLine.has(id)) report(['groups', i, 'id'], `duplicate group id "${id}" (first at line ${groupLine.get(id)})`);
      else groupLine.set(id, yaml.lineOf(['groups', i, 'id']));
      idOfRef.set(id, id);
    }
    if (typeof name === 'string' && typeof id === 'string') {
      const other = idOfRef.get(name);
      if (other !== undefined && other !== id && nameOfId.get(other) === name) {
        report(['groups', i, 'name'], `two groups are named "${name}"; a reference by name would be ambiguous`);
      }
      if (!idOfRef.has(name)) idOfRef.set(name, id);
      nameOfId.set(id, name);
    }
  });
  const checkRefs = (refs: unknown, at: Array<string | number>) => {
    if (!Array.isArray(refs)) return;
    refs.forEach((ref, j) => {
      if (typeof ref !== 'string' || idOfRef.has(ref)) return;
      const hint = didYouMean(ref, [...idOfRef.keys()]);
      report([...at, j], `unknown group "${ref}"${hint ? `; did you mean "${hint}"?` : ''}`);
    });
  };
  rawGroups.forEach((group, i) => checkRefs(field(group, 'memberOf'), ['groups', i, 'memberOf']));

  const owner = new Map<string, { mail: string; line?: number }>();
  rawUsers.forEach((user, i) => {
    checkRefs(field(user, 'groups'), ['users', i, 'groups']);
    const mail = field(user, 'mail');
    const aliases = field(user, 'aliases');
    const addresses: Array<[unknown, Array<string | number>]> = [[mail, ['users', i, 'mail']]];
    if (Array.isArray(aliases)) aliases.forEach((alias, j) => addresses.push([alias, ['users', i, 'aliases', j]]));
    const mine = new Set<string>();
    for (const [value, at] of addresses) {
      if (typeof value !== 'string') continue;
      const address = normalizeAddress(value);
      const previous = owner.get(address);
      if (previous && !mine.has(address)) report(at, `${address} already belongs to ${previous.mail} (line ${previous.line})`);
      else if (mine.has(address)) report(at, `${address} is listed twice for this user`);
      else owner.set(address, { mail: typeof mail === 'string' ? mail : '?', line: yaml.lineOf(at) });
      mine.add(address);
    }
  });

  if (issues.length > 0 || !read.value) throw new ConfigError(issues, file);

  const parents = new Map<string, string[]>();
  for (const group of read.value.groups) {
    parents.set(group.id, (group.memberOf ?? []).map((ref) => idOfRef.get(ref)!));
  }
  const users: DirectoryUser[] = read.value.users.map((user) => {
    const ids = resolveTransitiveGroups(
      user.groups.map((ref) => idOfRef.get(ref)!),
      (id) => parents.get(id) ?? [],
    );
    const attributes: Record<string, string | undefined> = {};
    for (const [name, value] of Object.entries(user.attributes)) {
      // Empty and null both mean "not set", so a template's `if (user.mobilePhone)` drops the line.
      if (value !== null && value !== '') attributes[name] = value;
    }
    return {
      ...(user.id !== undefined ? { id: user.id } : {}),
      mail: normalizeAddress(user.mail),
      aliases: user.aliases.map(normalizeAddress),
      attributes,
      groups: [...new Set(ids.flatMap((id) => [id, nameOfId.get(id) ?? id]))],
    };
  });
  return createDirectorySnapshot(users, syncedAt);
}

/** Reads a directory file (YAML). The snapshot's syncedAt is the time it was read. */
export async function loadDirectoryFile(filePath: string): Promise<DirectorySnapshot> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(filePath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(
      [{ file: path.basename(filePath), path: '', message: `cannot read the directory file: ${code === 'ENOENT' ? 'no such file' : String(error)}` }],
      filePath,
    );
  }
  return parseDirectoryFile(bytes, path.basename(filePath));
}
