// Matching call arguments to parameters, shared by the static checker (which reports every
// mismatch) and the elaborator (which relies on the checker having passed).
import type { Arg, Expr } from './ast.js';
import type { Diagnostic, SourceLoc } from '../util/diagnostics.js';
import { didYouMean } from '../util/suggest.js';

export interface Parameter {
  readonly name: string;
  readonly required: boolean;
}

export interface MatchedArgs {
  readonly bound: ReadonlyMap<string, Expr>;
  readonly diagnostics: readonly Diagnostic[];
}

/** Positional arguments first, then keywords; like Python, a keyword may not repeat a position. */
export function matchArgs(args: readonly Arg[], params: readonly Parameter[], callee: string, callLoc: SourceLoc): MatchedArgs {
  const bound = new Map<string, Expr>();
  const diagnostics: Diagnostic[] = [];
  const signature = `${callee}(${params.map((p) => (p.required ? p.name : `${p.name}=...`)).join(', ')})`;
  let seenKeyword = false;
  let position = 0;
  for (const arg of args) {
    if (arg.name === undefined) {
      if (seenKeyword) {
        diagnostics.push({ message: 'a positional argument cannot follow a keyword argument', loc: arg.value.loc });
        continue;
      }
      if (position >= params.length) {
        diagnostics.push({
          message: `${callee} takes ${params.length} argument${params.length === 1 ? '' : 's'}, but more were given`,
          loc: arg.value.loc,
          notes: [`signature: ${signature}`],
        });
        position++;
        continue;
      }
      bound.set(params[position].name, arg.value);
      position++;
    } else {
      seenKeyword = true;
      const loc = arg.nameLoc ?? arg.value.loc;
      if (!params.some((p) => p.name === arg.name)) {
        diagnostics.push({
          message: `${callee} has no parameter '${arg.name}'${didYouMean(arg.name, params.map((p) => p.name))}`,
          loc,
          notes: [`signature: ${signature}`],
        });
      } else if (bound.has(arg.name)) {
        diagnostics.push({ message: `'${arg.name}' is given twice`, loc });
      } else {
        bound.set(arg.name, arg.value);
      }
    }
  }
  // A misspelt or misplaced argument usually is the "missing" one; report only its own error.
  const missing = params.filter((p) => p.required && !bound.has(p.name)).map((p) => `'${p.name}'`);
  if (missing.length > 0 && diagnostics.length === 0) {
    diagnostics.push({
      message: `${callee} is missing ${missing.length === 1 ? 'argument' : 'arguments'} ${missing.join(', ')}`,
      loc: callLoc,
      notes: [`signature: ${signature}`],
    });
  }
  return { bound, diagnostics };
}
