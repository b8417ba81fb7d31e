// Dawn (dawn.node) and the drivers it loads print their warnings from native code straight to
// file descriptor 2 ("Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced",
// "Warning: Couldn't load Vulkan", Mesa's complaints), which no process.stderr wrapper sees.
// Around the calls that print them, fd 2 is pointed at an unlinked temporary file with libc's
// dup/dup2 (through koffi, whose binaries ship in the package), and what landed there is handed
// to the caller's verbose log. Where koffi or libc cannot be loaded, nothing is redirected and
// those lines show as they always did.
import { closeSync, fstatSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface Libc {
  readonly dup: (fd: number) => number;
  readonly dup2: (from: number, to: number) => number;
  readonly close: (fd: number) => number;
}

const STDERR = 2;

let libc: Libc | null | undefined;
let loadError = '';
// Nested or overlapping captures share the outermost redirection: while it is active, depth > 0.
let depth = 0;
let captures = 0;

function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  const name = process.platform === 'linux' ? 'libc.so.6' : process.platform === 'darwin' ? 'libSystem.B.dylib' : undefined;
  if (name === undefined) {
    loadError = `not done on ${process.platform}`;
    return libc;
  }
  try {
    // koffi is CommonJS; loaded on first use so that a platform without its binary still runs.
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    const lib = koffi.load(name);
    libc = {
      dup: lib.func('int dup(int fd)') as Libc['dup'],
      dup2: lib.func('int dup2(int from, int to)') as Libc['dup2'],
      close: lib.func('int close(int fd)') as Libc['close'],
    };
  } catch (e) {
    loadError = `cannot load libc through koffi: ${(e as Error).message.split('\n')[0]}`;
  }
  return libc;
}

function readAll(fd: number): string {
  const size = fstatSync(fd).size;
  if (size === 0) return '';
  const buffer = Buffer.alloc(size);
  let done = 0;
  while (done < size) {
    const n = readSync(fd, buffer, done, size - done, done);
    if (n <= 0) break;
    done += n;
  }
  return buffer.subarray(0, done).toString('utf8');
}

// Marks convc's own log lines inside the capture, so they are told apart from native ones and
// keep their place among them.
const OWN = '\u0001convc\u0001';

/**
 * Runs `work` with native writes to fd 2 captured, then hands the captured lines to `log`, each
 * prefixed `dawn: `, also when `work` throws. `work` gets a logger to use instead of `log`: its
 * lines, written while the capture runs, come out in their place among Dawn's. Where nothing can
 * be captured, `work` runs as is and `log` hears why.
 */
export async function captureNativeStderr<T>(work: (log: (line: string) => void) => Promise<T>, log: (line: string) => void): Promise<T> {
  const own = (line: string): void => {
    if (depth > 0) writeSync(STDERR, `${OWN}${line}\n`);
    else log(line);
  };
  if (depth > 0) return work(own);
  const c = loadLibc();
  if (!c) {
    log(`Dawn's native messages are not captured (${loadError})`);
    return work(log);
  }
  // Create Node's stderr stream now, while fd 2 is still what it was: created during the capture
  // it would take the temporary file for the process's stderr.
  void process.stderr.isTTY;
  const path = join(tmpdir(), `convc-stderr-${process.pid}-${captures++}.txt`);
  let file: number;
  try {
    file = openSync(path, 'w+', 0o600);
  } catch (e) {
    log(`Dawn's native messages are not captured (${(e as Error).message})`);
    return work(log);
  }
  try {
    unlinkSync(path);
  } catch {
    // Left behind in the temporary folder; harmless.
  }
  const saved = c.dup(STDERR);
  if (saved < 0 || c.dup2(file, STDERR) < 0) {
    if (saved >= 0) c.close(saved);
    closeSync(file);
    log("Dawn's native messages are not captured (dup/dup2 failed)");
    return work(log);
  }
  depth++;
  try {
    return await work(own);
  } finally {
    depth--;
    c.dup2(saved, STDERR);
    c.close(saved);
    let text = '';
    try {
      text = readAll(file);
    } finally {
      closeSync(file);
    }
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      log(line.startsWith(OWN) ? line.slice(OWN.length) : `dawn: ${line}`);
    }
  }
}
