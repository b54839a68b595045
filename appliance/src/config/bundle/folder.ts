// Writing an unsealed bundle out as an org folder. The content was sealed for
// a reason: it goes only into a folder that the operator alone can write to,
// so that nobody can plant a symbolic link between our checks and our writes.
import { chmod, lstat, mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Write `files` (bundle names, already checked by unpacking) under `out`,
 * which must not exist or be an empty folder of the current user that is not
 * a symbolic link. Folders are created 0700 and files 0600; nothing that
 * already exists is followed or overwritten.
 */
export async function writeUnsealedFolder(out: string, files: Map<string, Buffer>): Promise<void> {
  const root = path.resolve(out);
  await mkdir(root, { recursive: true, mode: 0o700 });
  const info = await lstat(root);
  if (!info.isDirectory()) throw new Error(`${out} is not a folder (a symbolic link is refused too); unseal into a new folder`);
  if (typeof process.getuid === 'function' && info.uid !== process.getuid()) throw new Error(`${out} belongs to another user; unseal into a new folder of your own`);
  // Before the emptiness check: from here on only this user can add anything to it.
  await chmod(root, 0o700);
  if ((await readdir(root)).length > 0) throw new Error(`${out} is not empty; unseal into a new folder`);
  const created = new Set<string>([root]);
  for (const [name, data] of files) {
    const target = path.resolve(root, name);
    if (!target.startsWith(`${root}${path.sep}`)) throw new Error(`refusing to write outside ${root}: ${name}`);
    const folders: string[] = [];
    for (let folder = path.dirname(target); !created.has(folder); folder = path.dirname(folder)) folders.unshift(folder);
    for (const folder of folders) {
      await mkdir(folder, { mode: 0o700 }); // not recursive: fails on anything already there
      created.add(folder);
    }
    await writeFile(target, data, { mode: 0o600, flag: 'wx' }); // O_EXCL: never through a link, never over a file
  }
}
