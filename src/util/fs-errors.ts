// File-system failures in words a user can act on. A missing directory, a permission, a device
// where a file belongs: these are mistakes in the command line, not bugs, so they become
// UserErrors instead of stack traces.
import type { Stats } from 'node:fs';
import { UserError, userError } from './diagnostics.js';

const reasons: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'a part of the path is not a directory',
  EISDIR: 'it is a directory',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EEXIST: 'it already exists',
  ENOTEMPTY: 'the directory is not empty',
  EBUSY: 'it is in use (a mount point?)',
  EXDEV: 'it is on another file system',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'the name is too long',
  EMFILE: 'too many open files',
  EIO: 'input/output error',
  EINVAL: 'invalid argument',
};

/** Why a file-system call failed, in a few words ("permission denied"). */
export function fsReason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code !== undefined && reasons[code]) return reasons[code];
  return error instanceof Error ? error.message : String(error);
}

/** Whether `error` is a Node file-system error (and not, say, a UserError or a bug). */
export function isFsError(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && !(error instanceof UserError) && typeof (error as NodeJS.ErrnoException).code === 'string';
}

/** What kind of thing a path is, for messages: "a directory", "a FIFO", ... */
export function describeKind(stats: Stats): string {
  if (stats.isFile()) return 'a regular file';
  if (stats.isDirectory()) return 'a directory';
  if (stats.isSymbolicLink()) return 'a symbolic link';
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isSocket()) return 'a socket';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/** Runs `action`; a file-system error becomes a UserError "cannot <what>: <reason>". */
export function withFsErrors<T>(what: string, action: () => T): T {
  try {
    return action();
  } catch (error) {
    if (isFsError(error)) throw userError(`cannot ${what}: ${fsReason(error)}`);
    throw error;
  }
}
