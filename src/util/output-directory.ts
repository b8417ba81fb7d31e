// Which directories convc compile may replace with its output. Only its own: every output holds
// a marker file listing what convc wrote, and a directory is replaced only while it holds
// nothing else. Anything else is refused unless --force, and --force never reaches the root,
// the current directory, a home directory or one that holds them, a file, or a directory that
// holds the very files being compiled.
import { lstatSync, readdirSync, readFileSync, realpathSync, type Stats } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, parse, resolve, sep } from 'node:path';
import { userError } from './diagnostics.js';
import { describeKind, fsReason, isFsError } from './fs-errors.js';
import { checkWritableDirectory } from './output-path.js';

export const outputMarkerName = '.convc-output';
export const outputMarkerVersion = 1;

export interface OutputDirectoryOptions {
  /** Replace a non-empty directory that convc did not write (still never a protected one). */
  readonly force?: boolean;
  /** Create missing parent directories (the default build/ directory). */
  readonly createParents?: boolean;
  /** Inputs the directory must not contain, e.g. the .cnx file being compiled. */
  readonly inputs?: readonly { readonly path: string; readonly what: string }[];
}

export interface OutputDirectoryPlan {
  /** The path as the user gave it, for messages. */
  readonly path: string;
  readonly absolute: string;
  /** What is there now: nothing, an empty directory, a previous convc output, or (with --force) anything. */
  readonly existing: 'none' | 'empty' | 'previous-output' | 'forced';
  /** Directories to create first, outermost first. */
  readonly createDirs: readonly string[];
  readonly options: OutputDirectoryOptions;
}

/** The marker's text: a version line, a note for whoever finds it, the files written. */
export function outputMarker(files: readonly string[]): string {
  return [
    `convc-output ${outputMarkerVersion}`,
    '# Written by `convc compile`. convc replaces this directory with a new output only while it',
    '# holds nothing but the files listed here. Delete this file to keep convc from replacing it.',
    ...files,
    '',
  ].join('\n');
}

/** The files a directory's marker lists, or undefined when it has no valid marker. */
function readMarker(dir: string): Set<string> | undefined {
  const path = join(dir, outputMarkerName);
  try {
    if (!lstatSync(path).isFile()) return undefined;
    const lines = readFileSync(path, 'utf8').split('\n');
    if (!/^convc-output \d+$/.test(lines[0])) return undefined;
    return new Set([outputMarkerName, ...lines.slice(1).filter((line) => line !== '' && !line.startsWith('#'))]);
  } catch {
    return undefined;
  }
}

/** The first entries under `dir` that its marker does not list (files convc did not write). */
function unlistedEntries(dir: string, listed: ReadonlySet<string>, limit = 3): string[] {
  const found: string[] = [];
  const walk = (relativeDir: string) => {
    for (const entry of readdirSync(join(dir, relativeDir), { withFileTypes: true })) {
      if (found.length >= limit) return;
      const rel = relativeDir === '' ? entry.name : `${relativeDir}/${entry.name}`;
      if (entry.isFile() && listed.has(rel)) continue;
      if (entry.isDirectory() && [...listed].some((file) => file.startsWith(`${rel}/`))) {
        walk(rel);
        continue;
      }
      found.push(entry.isDirectory() ? `${rel}/` : rel);
    }
  };
  walk('');
  return found;
}

function realpathOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

const isSameOrInside = (inner: string, outer: string) => inner === outer || inner.startsWith(outer.endsWith(sep) ? outer : outer + sep);

/** Why `real` (a real, absolute directory path) may never be replaced, or undefined. */
function protectedReason(real: string): string | undefined {
  if (real === parse(real).root) return 'it is the root directory';
  const cwd = realpathOrSelf(process.cwd());
  if (real === cwd) return 'it is the current directory, which convc cannot replace while it runs there';
  if (isSameOrInside(cwd, real)) return `it contains the current directory (${cwd})`;
  const homes = new Set([homedir(), process.env.HOME ?? '', '/root'].filter((h) => h !== '').map(realpathOrSelf));
  if (dirname(real) === '/home') homes.add(real);
  for (const home of homes) {
    if (real === home) return 'it is a home directory';
    if (isSameOrInside(home, real)) return `it contains the home directory ${home}`;
  }
  return undefined;
}

function describeEntries(names: readonly string[], total: number): string {
  const shown = names.slice(0, 3).map((n) => `'${n}'`).join(', ');
  return total > 3 ? `${shown} and ${total - 3} more` : shown;
}

/**
 * Decides what writing a compiled output to `path` would do, and refuses (with a UserError
 * saying why and what to do instead) whatever would lose a file convc did not write.
 */
export function planOutputDirectory(path: string, options: OutputDirectoryOptions = {}): OutputDirectoryPlan {
  const absolute = resolve(path);
  const label = `'${path}'`;
  const refuse = (reason: string, advice: string) => userError(`refusing to write the output to ${label}: ${reason}; ${advice}`);
  const plan = (existing: OutputDirectoryPlan['existing'], createDirs: readonly string[] = []): OutputDirectoryPlan => ({ path, absolute, existing, createDirs, options });
  const parentCheck = (createParents: boolean) => checkWritableDirectory(dirname(absolute), `the output directory ${label}`, createParents);

  let stats: Stats;
  try {
    stats = lstatSync(absolute);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return plan('none', parentCheck(options.createParents === true));
    if (isFsError(error)) throw userError(`cannot write the output directory ${label}: ${fsReason(error)}`);
    throw error;
  }
  if (stats.isSymbolicLink()) throw refuse('it is a symbolic link', 'give the directory it points to, or a new path');
  if (!stats.isDirectory()) {
    throw refuse(`it is ${describeKind(stats)}, not a directory`, 'convc compile writes a directory and never replaces a file; give a new path');
  }
  const real = realpathOrSelf(absolute);
  const marker = readMarker(absolute);
  const guarded = protectedReason(real);
  if (guarded) {
    throw refuse(`${guarded}${marker ? ' (although it holds a previous convc output)' : ''}`, `convc compile replaces its output directory whole; give a subdirectory, e.g. -o ${join(path, 'build')}`);
  }
  for (const input of options.inputs ?? []) {
    if (isSameOrInside(realpathOrSelf(resolve(input.path)), real)) {
      throw refuse(`it contains the ${input.what} '${input.path}'`, 'give a directory outside it');
    }
  }
  let entries: string[];
  try {
    entries = readdirSync(absolute);
  } catch (error) {
    if (isFsError(error)) throw userError(`cannot write the output directory ${label}: cannot list it: ${fsReason(error)}`);
    throw error;
  }
  if (entries.length === 0) return plan('empty', parentCheck(false));
  if (marker) {
    const unlisted = unlistedEntries(absolute, marker);
    if (unlisted.length === 0) return plan('previous-output', parentCheck(false));
    if (!options.force) {
      throw refuse(
        `it holds a previous convc output, but also ${describeEntries(unlisted, unlisted.length)}, which convc did not write`,
        'move those away, or give --force to replace the directory and everything in it',
      );
    }
    return plan('forced', parentCheck(false));
  }
  if (!options.force) {
    const sorted = [...entries].sort();
    throw refuse(
      `it is a directory that convc did not write, holding ${describeEntries(sorted, sorted.length)}`,
      'convc compile replaces its output directory whole; give a new or empty directory, or --force to replace it and everything in it',
    );
  }
  return plan('forced', parentCheck(false));
}

