// Checks on where an output goes, made before the expensive work so that a typo in -o fails in
// a moment with a message, not after minutes with a stack trace. Nothing here writes, except a
// probe file that is removed at once: access() says yes to root everywhere, even in /proc.
import { closeSync, lstatSync, mkdirSync, openSync, realpathSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { userError } from './diagnostics.js';
import { describeKind, fsReason, isFsError } from './fs-errors.js';

/**
 * Checks that files can be created in `dir`. When `dir` is missing and `createParents` is set,
 * checks its nearest existing ancestor instead and returns the directories to create, outermost
 * first; otherwise a missing directory is an error. `what` names the output for messages.
 */
export function checkWritableDirectory(dir: string, what: string, createParents: boolean): string[] {
  const missing: string[] = [];
  let current = dir;
  for (;;) {
    let stats;
    try {
      stats = statSync(current);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && createParents && dirname(current) !== current) {
        missing.unshift(current);
        current = dirname(current);
        continue;
      }
      if (code === 'ENOENT') throw userError(`cannot write ${what}: the directory '${current}' does not exist`);
      if (isFsError(error)) throw userError(`cannot write ${what}: cannot use the directory '${current}': ${fsReason(error)}`);
      throw error;
    }
    if (!stats.isDirectory()) throw userError(`cannot write ${what}: '${current}' is ${describeKind(stats)}, not a directory`);
    break;
  }
  const probe = join(current, `.convc-probe-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  try {
    closeSync(openSync(probe, 'wx'));
    unlinkSync(probe);
  } catch (error) {
    if (!isFsError(error)) throw error;
    // ENOENT when creating in an existing directory: a pseudo file system such as /proc.
    const reason = error.code === 'ENOENT' ? 'it does not accept new files' : fsReason(error);
    throw userError(`cannot write ${what}: cannot create files in '${current}': ${reason}`);
  }
  return missing;
}

/** Creates `dirs` (outermost first, as checkWritableDirectory returns them) one level at a time. */
export function createDirectories(dirs: readonly string[], what: string): void {
  // Not mkdirSync's recursive mode: on a path under /proc it loops forever.
  for (const dir of dirs) {
    try {
      mkdirSync(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST' && statSync(dir).isDirectory()) continue;
      if (isFsError(error)) throw userError(`cannot write ${what}: cannot create the directory '${dir}': ${fsReason(error)}`);
      throw error;
    }
  }
}

/** Removes what createDirectories made, innermost first, stopping at one that is not empty. */
export function removeCreatedDirectories(dirs: readonly string[]): void {
  for (const dir of [...dirs].reverse()) {
    try {
      rmdirSync(dir);
    } catch {
      return;
    }
  }
}

export interface OutputFilePlan {
  /** The file to replace: the path given, or the file a symbolic link there points to. */
  readonly target: string;
  /** Directories to create first, outermost first. */
  readonly createDirs: readonly string[];
}

/**
 * Checks that `path` can receive an output file: it is absent or a regular file (never a
 * directory or a device, which a rename would replace), and its directory exists (or, with
 * `createParents`, can be made) and takes new files.
 */
export function checkOutputFile(path: string, what: string, options: { readonly createParents?: boolean } = {}): OutputFilePlan {
  const label = `${what} '${path}'`;
  if (path === '') throw userError(`cannot write ${what}: the file name is empty`);
  if (/[\\/]$/.test(path) || basename(resolve(path)) === '' || /(^|[\\/])\.\.?$/.test(path)) {
    throw userError(`cannot write ${label}: it names a directory; give a file name`);
  }
  let target = resolve(path);
  let stats;
  try {
    stats = lstatSync(target);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && isFsError(error)) throw userError(`cannot write ${label}: ${fsReason(error)}`);
    if (code !== 'ENOENT') throw error;
  }
  if (stats?.isSymbolicLink()) {
    // Write through the link, as a shell's > would, rather than replace the link itself.
    try {
      target = realpathSync(target);
      stats = lstatSync(target);
    } catch (error) {
      if (isFsError(error)) throw userError(`cannot write ${label}: it is a symbolic link that leads nowhere (${fsReason(error)})`);
      throw error;
    }
  }
  if (stats?.isDirectory()) throw userError(`cannot write ${label}: it is a directory; give a file name, e.g. '${join(path, 'out')}'`);
  if (stats && !stats.isFile()) throw userError(`cannot write ${label}: it is ${describeKind(stats)}; convc replaces only regular files`);
  const createDirs = checkWritableDirectory(dirname(target), label, options.createParents === true);
  return { target, createDirs };
}
