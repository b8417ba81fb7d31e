// The model zoo that ships with convc: the .cnx files in the package's models/ folder. A name
// such as `convnextv2-base.cnx` (or `convnextv2-base`) that is no file where the user is, and an
// import such as `import "convnextv2.cnx"` that is no file next to the importing one, mean these.
import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, normalize } from 'node:path';
import { didYouMean } from './suggest.js';
import { packageRoot } from './package-root.js';

export function zooDir(): string {
  return join(packageRoot(), 'models');
}

/** The zoo's .cnx file names (families and variants), sorted. */
export function zooFiles(): readonly string[] {
  try {
    return readdirSync(zooDir())
      .filter((name) => name.endsWith('.cnx'))
      .sort();
  } catch {
    return [];
  }
}

/**
 * The zoo file a path that names no file means, or undefined. Only a bare name
 * (`convnextv2-base.cnx`, `convnextv2-base`) or one under a folder called models
 * (`models/convnextv2-base.cnx`, `../models/convnextv2.cnx`) is taken for a zoo name.
 */
export function zooFileFor(path: string): string | undefined {
  const file = zooName(path);
  if (file === undefined) return undefined;
  const candidate = join(zooDir(), file);
  return existsSync(candidate) ? candidate : undefined;
}

/** "; did you mean 'convnextv2-base.cnx'?" for a zoo-like name close to a zoo file, or "". */
export function zooSuggestion(path: string): string {
  const file = zooName(path);
  return file === undefined ? '' : didYouMean(file, zooFiles()).replace(/\?$/, ' from the bundled zoo?');
}

/** How a note shows a zoo file: as the package's `models/convnextv2-base.cnx`. */
export function zooDisplayName(absolute: string): string {
  return `models/${basename(absolute)}`;
}

/** The zoo file name a relative path may stand for: its last part, with `.cnx` added if missing. */
function zooName(path: string): string | undefined {
  if (isAbsolute(path)) return undefined;
  const folder = dirname(normalize(path));
  if (folder !== '.' && basename(folder) !== 'models') return undefined;
  const name = basename(path);
  const file = name.endsWith('.cnx') ? name : `${name}.cnx`;
  return /^[\w.-]+\.cnx$/.test(file) ? file : undefined;
}
