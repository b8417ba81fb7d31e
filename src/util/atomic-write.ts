// Writing outputs so that a failure never leaves half a file or half a directory behind:
// everything is written beside the target under a temporary name, then renamed into place.
import { mkdirSync, renameSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';

function temporarySibling(target: string, tag: string): string {
  return join(dirname(target), `.${basename(target)}.${tag}-${process.pid}-${Date.now()}`);
}

export function writeFileAtomically(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = temporarySibling(path, 'partial');
  try {
    writeFileSync(temporary, data);
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}

/**
 * Builds a directory with `fill` and moves it to `target`, replacing what was there. If `fill`
 * throws, the temporary directory is removed and `target` is left as it was.
 */
export async function writeDirectoryAtomically(target: string, fill: (dir: string) => void | Promise<void>): Promise<void> {
  mkdirSync(dirname(target), { recursive: true });
  const staging = temporarySibling(target, 'partial');
  mkdirSync(staging);
  try {
    await fill(staging);
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
  const previous = existsSync(target) ? temporarySibling(target, 'previous') : undefined;
  if (previous) renameSync(target, previous);
  try {
    renameSync(staging, target);
  } catch (error) {
    if (previous) renameSync(previous, target);
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
  if (previous) rmSync(previous, { recursive: true, force: true });
}
