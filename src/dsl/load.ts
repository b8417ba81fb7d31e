// Loads a .cnx file and everything it imports into one checked Program: the files' texts (for
// diagnostics) and the declarations by name. All errors of all files are reported together.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import type { DefinitionDecl, ModelDecl } from './ast.js';
import { checkProgram } from './check.js';
import { parseSource } from './parse.js';
import { UserError, type Diagnostic, type SourceLoc } from '../util/diagnostics.js';

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

const readFromDisk: ReadSource = (path) => readFileSync(path, 'utf8');

export function loadProgram(entry: string, read: ReadSource = readFromDisk): Program {
  const sources = new Map<string, string>();
  const definitions = new Map<string, DefinitionDecl>();
  const models = new Map<string, ModelDecl>();
  const entryModels: string[] = [];
  const diagnostics: Diagnostic[] = [];
  const done = new Set<string>();
  const active: string[] = [];

  const visit = (absolute: string, importedAt?: SourceLoc): void => {
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
      const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
      diagnostics.push({ message: `cannot read '${file}': ${reason}`, loc: importedAt });
      return;
    }
    sources.set(file, text);
    active.push(absolute);
    const parsed = parseSource(text, file);
    diagnostics.push(...parsed.diagnostics);
    for (const decl of parsed.decls) {
      if (decl.kind === 'import') {
        visit(isAbsolute(decl.path) ? decl.path : resolve(dirname(absolute), decl.path), decl.loc);
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

  visit(resolve(entry));
  if (diagnostics.length > 0) throw new UserError(diagnostics);
  const program = { sources, definitions, models, entryModels };
  // Names, callees and argument lists are checked for the whole program now, before any model
  // is chosen, so every such mistake is reported in one run.
  const problems = checkProgram(program);
  if (problems.length > 0) throw new UserError(problems);
  return program;
}

export function where(loc: SourceLoc): string {
  return `${loc.file}:${loc.line}:${loc.col}`;
}
