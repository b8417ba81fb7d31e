// Writing outputs so that a failure never leaves half a file or half a directory behind, and
// never loses a file convc did not write: everything is written beside the target under a
// temporary name, removed on an error, Ctrl-C or SIGTERM, and renamed into place only when whole.
import { closeSync, mkdtempSync, openSync, readdirSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { userError } from './diagnostics.js';
import { fsReason, isFsError } from './fs-errors.js';
import { cleanUpOnSignal, yieldToSignals } from './interrupt-cleanup.js';
import { outputMarker, outputMarkerName, planOutputDirectory, type OutputDirectoryPlan } from './output-directory.js';
import { checkOutputFile, createDirectories, removeCreatedDirectories } from './output-path.js';

function temporarySibling(target: string, tag: string): string {
  return join(dirname(target), `.${basename(target)}.convc-${tag}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
}

/**
 * Writes `data` to the file `path`, replacing a regular file there (never a directory or a
 * device). `what` names the output in messages; without `createParents` the directory must exist.
 */
export function writeFileAtomically(path: string, data: string | Uint8Array, options: { readonly what?: string; readonly createParents?: boolean } = {}): void {
  const what = options.what ?? 'the output';
  const { target, createDirs } = checkOutputFile(path, what, { createParents: options.createParents ?? true });
  const temporary = temporarySibling(target, 'partial');
  const cleanUp = () => {
    rmSync(temporary, { force: true });
    removeCreatedDirectories(createDirs);
  };
  const release = cleanUpOnSignal(cleanUp);
  try {
    createDirectories(createDirs, `${what} '${path}'`);
    writeFileSync(temporary, data, { flag: 'wx' });
    renameSync(temporary, target);
  } catch (error) {
    cleanUp();
    if (isFsError(error)) throw userError(`cannot write ${what} '${path}': ${fsReason(error)}`);
    throw error;
  } finally {
    release();
  }
}

/** Writes a new file in pieces, letting signals through between them: for files of gigabytes. */
export async function writeLargeFile(path: string, bytes: Uint8Array, chunkBytes = 64 * 2 ** 20, onChunk?: (written: number, total: number) => void): Promise<void> {
  const fd = openSync(path, 'wx');
  try {
    let written = 0;
    while (written < bytes.length) {
      written += writeSync(fd, bytes, written, Math.min(chunkBytes, bytes.length - written));
      onChunk?.(written, bytes.length);
      await yieldToSignals();
    }
  } finally {
    closeSync(fd);
  }
}

/** Every file under `dir`, relative, with '/' separators, sorted. */
function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true })
    .flatMap((entry) => {
      const rel = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
      return entry.isDirectory() ? listFiles(dir, rel) : [rel];
    })
    .sort();
}

/**
 * Builds a directory with `fill` in a staging directory beside the plan's target, marks it as a
 * convc output, and moves it into place. What is at the target is checked again just before
 * (it may have changed while `fill` ran) and replaced only as the plan's rules allow. If `fill`
 * throws or a signal arrives, the staging directory is removed and the target left as it was.
 * `fill` should yield now and then (yieldToSignals) so that a signal can be handled mid-way.
 */
export async function writeDirectoryAtomically(plan: OutputDirectoryPlan, fill: (dir: string) => void | Promise<void>): Promise<void> {
  const label = `the output directory '${plan.path}'`;
  let staging: string | undefined;
  const cleanUp = () => {
    if (staging !== undefined) rmSync(staging, { recursive: true, force: true });
    removeCreatedDirectories(plan.createDirs);
  };
  const release = cleanUpOnSignal(cleanUp);
  try {
    createDirectories(plan.createDirs, label);
    staging = mkdtempSync(join(dirname(plan.absolute), `.${basename(plan.absolute)}.convc-staging-`));
    await fill(staging);
    writeFileSync(join(staging, outputMarkerName), outputMarker(listFiles(staging)));
    const now = planOutputDirectory(plan.path, plan.options);
    if (now.existing === 'none' || now.existing === 'empty') {
      renameSync(staging, plan.absolute);
    } else {
      const previous = temporarySibling(plan.absolute, 'previous');
      renameSync(plan.absolute, previous);
      try {
        renameSync(staging, plan.absolute);
      } catch (error) {
        renameSync(previous, plan.absolute);
        throw error;
      }
      staging = undefined;
      try {
        rmSync(previous, { recursive: true, force: true });
      } catch (error) {
        throw userError(`wrote ${label}, but could not remove the previous output, moved to '${previous}': ${fsReason(error)}`);
      }
    }
    staging = undefined;
  } catch (error) {
    cleanUp();
    if (isFsError(error)) throw userError(`cannot write ${label}: ${fsReason(error)}`);
    throw error;
  } finally {
    release();
  }
}
