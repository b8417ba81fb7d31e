// Mesa's EGL and Wayland code print "error: XDG_RUNTIME_DIR is invalid or not set" when the
// variable is missing or names no private directory, as on a server or in a container with no
// login session. convc gives the process one of its own before Dawn's instance exists.
import { lstatSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What the XDG base directory spec asks of it: a directory of ours that only we may enter. */
function isPrivateDirectory(path: string): boolean {
  try {
    const stat = lstatSync(path);
    return stat.isDirectory() && (stat.mode & 0o077) === 0 && (process.getuid === undefined || stat.uid === process.getuid());
  } catch {
    return false;
  }
}

/**
 * Sets XDG_RUNTIME_DIR to a private (0700) directory under the temporary folder when it is unset
 * or invalid: one per user, reused across runs, or a fresh one if that name is taken by someone
 * else. Returns the directory it set, or undefined when the variable was fine (or off Linux).
 */
export function ensureRuntimeDir(log: (line: string) => void = () => {}): string | undefined {
  if (process.platform !== 'linux') return undefined;
  const current = process.env.XDG_RUNTIME_DIR;
  if (current && isPrivateDirectory(current)) return undefined;
  let dir = join(tmpdir(), `convc-runtime-${process.getuid?.() ?? 'user'}`);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch {
    // Already there: ours and private, or not to be used.
  }
  if (!isPrivateDirectory(dir)) {
    try {
      dir = mkdtempSync(join(tmpdir(), 'convc-runtime-'));
    } catch (e) {
      log(`XDG_RUNTIME_DIR is ${current ? 'invalid' : 'not set'} and no private directory could be made: ${(e as Error).message}`);
      return undefined;
    }
  }
  process.env.XDG_RUNTIME_DIR = dir;
  log(`XDG_RUNTIME_DIR ${current ? `'${current}' is no private directory` : 'is not set'}; using ${dir}`);
  return dir;
}
