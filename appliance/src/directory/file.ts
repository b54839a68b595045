// The local directory source: a directory.yaml with users (addresses,
// attributes, direct groups) and groups (which may sit inside other groups).
// Used for development and for organizations run without Microsoft Graph.
// A user may have a photo: a file named relative to the directory file's
// folder (photos/ingrid.jpg), read with the file (readDirectoryFile) and
// checked with it (parseDirectoryFile), so a bad photo is one more issue.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { ConfigError, didYouMean, directoryFileSchema, formatPath, readYamlWithSchema, type ConfigIssue } from '../config';
import { MAX_PHOTO_BYTES, photoSizeProblem, readPhoto } from './photo';
import { createDirectorySnapshot, normalizeAddress, resolveTransitiveGroups } from './snapshot';
import type { DirectorySnapshot, DirectoryUser, UserPhoto } from './types';

/**
 * The photo files a directory file names, as read for parseDirectoryFile: by
 * the path as written in the file, the file's bytes, or why it could not be
 * used (a message without the path: "no such file").
 */
export type DirectoryPhotoBytes = ReadonlyMap<string, Buffer | string>;

/** A directory file and the photos it names, read from disk but not yet checked. */
export interface DirectoryFileContents {
  bytes: Buffer;
  photos: DirectoryPhotoBytes;
  /**
   * Each photo file named (its path on disk, in the file's folder) and its
   * fileFingerprint taken just before it was read, in the file's order: what a
   * watcher compares to notice a changed photo.
   */
  photoFingerprints: ReadonlyMap<string, string>;
}

/** Inode, size and mtime of a file (following symbolic links), or why it is missing: changes when the file does. */
export async function fileFingerprint(file: string): Promise<string> {
  try {
    const s = await fs.stat(file);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch (error) {
    return `missing:${(error as NodeJS.ErrnoException).code ?? ''}`;
  }
}

const photoPathSchema = directoryFileSchema.shape.users.element.shape.photo;

/** The photo paths a directory file names that are well-formed, once each in the file's order (none when the YAML is broken). */
export function directoryPhotoPaths(bytes: Buffer | string, file = 'directory.yaml'): string[] {
  const data = readYamlWithSchema(bytes, file, z.unknown()).yaml.data as { users?: unknown } | null | undefined;
  const users = data !== null && typeof data === 'object' && Array.isArray(data.users) ? (data.users as unknown[]) : [];
  const paths = new Set<string>();
  for (const user of users) {
    const photo = user !== null && typeof user === 'object' ? (user as Record<string, unknown>).photo : undefined;
    if (typeof photo === 'string' && photoPathSchema.safeParse(photo).success) paths.add(photo);
  }
  return [...paths];
}

function unreadable(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'cannot be read (permission denied)';
  if (code === 'ELOOP') return 'cannot be read (too many symbolic links)';
  return `cannot be read (${code ?? (error as Error).message})`;
}

/** One photo file's bytes, or why it cannot be used; never leaves realFolder through a symbolic link. */
async function readPhotoFile(named: string, realFolder: string, folderLabel: string): Promise<Buffer | string> {
  try {
    const real = await fs.realpath(named);
    const inside = path.relative(realFolder, real);
    if (inside === '..' || inside.startsWith(`..${path.sep}`) || path.isAbsolute(inside)) {
      return `leads outside ${folderLabel} through a symbolic link`;
    }
    const stats = await fs.stat(real);
    if (!stats.isFile()) return 'is not a file';
    // not reading an oversized file spares the memory of an absurd one
    if (stats.size > MAX_PHOTO_BYTES) return photoSizeProblem(stats.size)!;
    return await fs.readFile(real);
  } catch (error) {
    return unreadable(error);
  }
}

/**
 * Reads a directory file and every photo it names (relative to its folder,
 * never outside it). Throws a ConfigError only when the directory file itself
 * cannot be read; a photo that cannot be read is left to parseDirectoryFile to
 * report with the rest.
 */
export async function readDirectoryFile(filePath: string): Promise<DirectoryFileContents> {
  const file = path.basename(filePath);
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(filePath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(
      [{ file, path: '', message: `cannot read the directory file: ${code === 'ENOENT' ? 'no such file' : String(error)}` }],
      filePath,
    );
  }
  const folder = path.dirname(filePath);
  const paths = directoryPhotoPaths(bytes, file);
  const photos = new Map<string, Buffer | string>();
  const photoFingerprints = new Map<string, string>();
  if (paths.length === 0) return { bytes, photos, photoFingerprints };
  const realFolder = await fs.realpath(folder).catch(() => undefined);
  const read = await Promise.all(
    paths.map(async (written) => {
      const named = path.join(folder, written);
      // the fingerprint before the read: a change after it shows at the next check
      const fingerprint = await fileFingerprint(named);
      const content = realFolder === undefined ? 'cannot be read (the folder is gone)' : await readPhotoFile(named, realFolder, `the folder of ${file}`);
      return { written, named, fingerprint, content };
    }),
  );
  for (const { written, named, fingerprint, content } of read) {
    photos.set(written, content);
    photoFingerprints.set(named, fingerprint);
  }
  return { bytes, photos, photoFingerprints };
}

/**
 * Validates a directory file's bytes and builds the snapshot. Every problem
 * (schema, unknown group, an address claimed twice, a photo that is missing or
 * not an image) is reported at once in a ConfigError naming file, path and line.
 * Photos come read (readDirectoryFile): a file that names photos without them
 * is refused.
 */
export function parseDirectoryFile(
  bytes: Buffer | string,
  file = 'directory.yaml',
  syncedAt: Date = new Date(),
  photos?: DirectoryPhotoBytes,
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
  const idOfName = new Map<string, string>();
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
      // rules match group names whatever their letter case, so "Sales" and "SALES" are one name there
      const other = idOfName.get(name.toLowerCase());
      if (other !== undefined && other !== id) {
        const same = nameOfId.get(other) === name ? '' : ` ("${nameOfId.get(other)}" in other letter case)`;
        report(['groups', i, 'name'], `two groups are named "${name}"${same}; a reference by name would be ambiguous`);
      } else idOfName.set(name.toLowerCase(), id);
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
  const photoOf = new Map<number, UserPhoto>();
  rawUsers.forEach((user, i) => {
    checkRefs(field(user, 'groups'), ['users', i, 'groups']);
    const photo = field(user, 'photo');
    // a malformed path is the schema's issue; the bytes are never in a message
    if (typeof photo === 'string' && photoPathSchema.safeParse(photo).success) {
      const content = photos?.get(photo);
      if (!photos) report(['users', i, 'photo'], `${photo}: not read (photos are read by loadDirectoryFile)`);
      else if (content === undefined) report(['users', i, 'photo'], `${photo}: not read`);
      else if (typeof content === 'string') report(['users', i, 'photo'], `${photo}: ${content}`);
      else {
        const checked = readPhoto(content);
        if ('refused' in checked) report(['users', i, 'photo'], `${photo}: ${checked.refused}`);
        else photoOf.set(i, checked);
      }
    }
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
  const users: DirectoryUser[] = read.value.users.map((user, i) => {
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
      ...(photoOf.has(i) ? { photo: photoOf.get(i) } : {}),
    };
  });
  return createDirectorySnapshot(users, syncedAt);
}

/** Reads a directory file (YAML) and its photos. The snapshot's syncedAt is the time it was read. */
export async function loadDirectoryFile(filePath: string): Promise<DirectorySnapshot> {
  const contents = await readDirectoryFile(filePath);
  return parseDirectoryFile(contents.bytes, path.basename(filePath), new Date(), contents.photos);
}
