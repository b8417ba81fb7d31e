// Reading the files a user names (weights, input tensors). Only regular files: /dev/zero, a
// FIFO or a directory would hang the read or fail deep inside it. The file is opened without
// blocking (a FIFO swapped in after the check cannot stall the open) and read for exactly the
// size it had, so a file that never ends cannot exhaust memory either.
import { closeSync, constants, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { userError } from './diagnostics.js';
import { describeKind, fsReason, isFsError } from './fs-errors.js';

/** Node reads at most this much into one buffer (its kIoMaxLength). */
export const maxInputBytes = 2 ** 31 - 1;

function formatBytes(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/**
 * Throws a UserError unless `path` names a regular file (after following links). With
 * `ignoreMissing`, a path that does not exist passes, for callers that report that themselves.
 */
export function checkRegularFile(path: string, what: string, options: { ignoreMissing?: boolean } = {}): void {
  let stats;
  try {
    stats = statSync(path);
  } catch (error) {
    if (options.ignoreMissing && (error as NodeJS.ErrnoException).code === 'ENOENT') return;
    if (isFsError(error)) throw userError(`cannot read ${what} '${path}': ${fsReason(error)}`);
    throw error;
  }
  if (!stats.isFile()) throw userError(`cannot read ${what} '${path}': it is ${describeKind(stats)}, not a regular file`);
}

/** The bytes of the regular file `path`; every failure is a UserError naming `what` and the path. */
export function readRegularFile(path: string, what: string, maxBytes = maxInputBytes): Uint8Array {
  const fail = (reason: string) => userError(`cannot read ${what} '${path}': ${reason}`);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    if (isFsError(error)) throw fail(error.code === 'ENOENT' ? 'no such file' : fsReason(error));
    throw error;
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw fail(`it is ${describeKind(stats)}, not a regular file`);
    // Files under /proc and /sys say they are empty whatever they produce; no tensor file is empty.
    if (stats.size === 0) throw fail('it is empty (or a /proc-style file that reports no size)');
    if (stats.size > maxBytes) throw fail(`it is ${formatBytes(stats.size)}, over the ${formatBytes(maxBytes)} convc reads`);
    const bytes = new Uint8Array(stats.size);
    let filled = 0;
    while (filled < bytes.length) {
      const count = readSync(fd, bytes, filled, bytes.length - filled, filled);
      if (count === 0) throw fail(`the file shrank while it was read (${filled} of ${stats.size} bytes)`);
      filled += count;
    }
    return bytes;
  } catch (error) {
    if (isFsError(error)) throw fail(fsReason(error));
    throw error;
  } finally {
    closeSync(fd);
  }
}
