// The one line `signet` prints for an error that ends a command. Node's own
// file-system errors read `ENOENT: no such file or directory, open 'x'`; they
// become `x: no such file or directory`, the file first, in plain words.

const SYSTEM_ERRORS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EEXIST: 'already exists (not overwritten)',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a folder, not a file',
  ENOTDIR: 'is not a folder',
  ENOTEMPTY: 'folder is not empty',
};

/** The message of an error that ends a command, without the `signet: ` prefix. */
export function formatCliError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const { code, path } = error as NodeJS.ErrnoException;
  // only Node's raw system errors: a message of our own that has a code keeps its words
  if (typeof code === 'string' && typeof path === 'string' && SYSTEM_ERRORS[code] && error.message.startsWith(`${code}:`)) {
    return `${path}: ${SYSTEM_ERRORS[code]}`;
  }
  return error.message;
}
