// Loads a .cnx file and everything it imports into one checked Program: the files' texts (for
// diagnostics) and the declarations by name. All errors of all files are reported together.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import type { DefinitionDecl, ModelDecl } from './ast.js';
import { checkProgram } from './check.js';
import { parseSource, stripByteOrderMark } from './parse.js';
import { UserError, type Diagnostic, type SourceLoc } from '../util/diagnostics.js';
import { zooDisplayName, zooFileFor, zooSuggestion } from '../util/zoo.js';

export interface Program {
  /** Display path -> text, for quoting source lines in diagnostics. */
  readonly sources: ReadonlyMap<string, string>;
  readonly definitions: ReadonlyMap<string, DefinitionDecl>;
  /** Models in the order they appear, imported files first. */
  readonly models: ReadonlyMap<string, ModelDecl>;
  /** Models written in the entry file itself (not in its imports). */
  readonly entryModels: readonly string[];
}

/** Paths are shown relative to the working directory when they are below it. */
export function displayPath(absolute: string): string {
  const rel = relative(process.cwd(), absolute);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : absolute;
}

export type ReadSource = (absolutePath: string) => string;

/** A .cnx file is a few kilobytes; anything past this is not a model description. */
export const MAX_SOURCE_BYTES = 1024 * 1024;
/** Diagnostics reported at once; past this the rest are counted, since the first ones matter. */
export const MAX_DIAGNOSTICS = 50;

/** Why a path cannot be read as a source; `code` follows Node's (EISDIR for a directory). */
class SourceReadError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

const readFromDisk: ReadSource = (path) => {
  // Non-blocking, so that opening a FIFO returns at once instead of waiting for a writer; the
  // checks go through the descriptor, so what is checked is what is read.
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stats = fstatSync(fd);
    if (stats.isDirectory()) throw new SourceReadError('it is a directory', 'EISDIR');
    if (!stats.isFile()) throw new SourceReadError('it is not a regular file (a device, pipe or socket)');
    if (stats.size > MAX_SOURCE_BYTES) throw new SourceReadError(`it is ${stats.size} bytes; a .cnx file may be at most ${MAX_SOURCE_BYTES}`);
    // At most one byte past the cap is read, in case the file grew after the check.
    const buffer = Buffer.alloc(Math.min(stats.size, MAX_SOURCE_BYTES) + 1);
    let length = 0;
    for (let n = 1; n > 0 && length < buffer.length; length += n) n = readSync(fd, buffer, length, buffer.length - length, null);
    if (length > MAX_SOURCE_BYTES) throw new SourceReadError(`it is more than ${MAX_SOURCE_BYTES} bytes, the most a .cnx file may be`);
    return buffer.toString('utf8', 0, length);
  } finally {
    closeSync(fd);
  }
};

/** Keeps the first MAX_DIAGNOSTICS and says how many more there were. */
export function capDiagnostics(diagnostics: readonly Diagnostic[]): Diagnostic[] {
  if (diagnostics.length <= MAX_DIAGNOSTICS) return [...diagnostics];
  const rest = diagnostics.length - MAX_DIAGNOSTICS;
  return [...diagnostics.slice(0, MAX_DIAGNOSTICS), { message: `${rest} more error${rest === 1 ? '' : 's'} not shown; fix these first` }];
}

export interface LoadOptions {
  /** Receives a line when a name that is no file is taken from the bundled zoo (models/). */
  readonly note?: (line: string) => void;
}

/**
 * A relative entry or import path that names no file falls back to the bundled zoo when its
 * last part is a zoo file's name (`convnextv2-base.cnx`, `convnextv2-base`, `models/...`).
 */
export function loadProgram(entry: string, read: ReadSource = readFromDisk, options: LoadOptions = {}): Program {
  const sources = new Map<string, string>();
  const definitions = new Map<string, DefinitionDecl>();
  const models = new Map<string, ModelDecl>();
  const entryModels: string[] = [];
  const diagnostics: Diagnostic[] = [];
  const done = new Set<string>();
  const active: string[] = [];

  // `written` is the path as the user wrote it (on the command line or in an import).
  const visit = (absolute: string, importedAt?: SourceLoc, written?: string): void => {
    if (done.has(absolute)) return;
    if (active.includes(absolute)) {
      const cycle = [...active.slice(active.indexOf(absolute)), absolute].map(displayPath).join(' -> ');
      diagnostics.push({ message: `import cycle: ${cycle}`, loc: importedAt });
      return;
    }
    const file = displayPath(absolute);
    let text: string;
    try {
      text = read(absolute);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const notAFile = code === 'ENOENT' || code === 'EISDIR';
      const zoo = notAFile && written !== undefined ? zooFileFor(written) : undefined;
      if (zoo !== undefined && zoo !== absolute) {
        const where = importedAt ? `next to ${importedAt.file}` : 'here';
        options.note?.(`note: '${written}' is not a file ${where}; using the bundled ${zooDisplayName(zoo)}`);
        visit(zoo, importedAt);
        return;
      }
      const reason = code === 'ENOENT' ? 'no such file' : (error as Error).message;
      const hint = code === 'ENOENT' && written !== undefined ? zooSuggestion(written) : '';
      diagnostics.push({ message: `cannot read '${file}': ${reason}${hint}`, loc: importedAt });
      return;
    }
    if (text.length > MAX_SOURCE_BYTES) {
      diagnostics.push({ message: `cannot read '${file}': it is more than ${MAX_SOURCE_BYTES} characters, the most a .cnx file may be`, loc: importedAt });
      return;
    }
    text = stripByteOrderMark(text);
    sources.set(file, text);
    active.push(absolute);
    const parsed = parseSource(text, file);
    diagnostics.push(...parsed.diagnostics);
    for (const decl of parsed.decls) {
      if (decl.kind === 'import') {
        visit(isAbsolute(decl.path) ? decl.path : resolve(dirname(absolute), decl.path), decl.loc, decl.path);
      } else if (decl.kind === 'model') {
        const previous = models.get(decl.name);
        if (previous) {
          diagnostics.push({ message: `model '${decl.name}' is defined twice`, loc: decl.nameLoc, notes: [`first defined at ${where(previous.nameLoc)}`] });
        } else {
          models.set(decl.name, decl);
          if (active.length === 1) entryModels.push(decl.name);
        }
      } else {
        const previous = definitions.get(decl.name);
        if (previous) {
          diagnostics.push({ message: `'${decl.name}' is defined twice`, loc: decl.nameLoc, notes: [`first defined at ${where(previous.nameLoc)}`] });
        } else {
          definitions.set(decl.name, decl);
        }
      }
    }
    active.pop();
    done.add(absolute);
  };

  visit(resolve(entry), undefined, entry);
  if (diagnostics.length > 0) throw new UserError(capDiagnostics(diagnostics));
  const program = { sources, definitions, models, entryModels };
  // Names, callees and argument lists are checked for the whole program now, before any model
  // is chosen, so every such mistake is reported in one run.
  const problems = checkProgram(program);
  if (problems.length > 0) throw new UserError(capDiagnostics(problems));
  return program;
}

export function where(loc: SourceLoc): string {
  return `${loc.file}:${loc.line}:${loc.col}`;
}
