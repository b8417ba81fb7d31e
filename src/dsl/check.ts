// Static checks over a whole program before anything is elaborated: names, callees, argument
// lists and where statements may appear. It reports every problem it finds, so one run of
// the compiler shows all such mistakes at once.
import type { Arg, DefinitionDecl, Expr, ModelDecl, Stmt } from './ast.js';
import { matchArgs, type Parameter } from './arguments.js';
import type { Program } from './load.js';
import { builtins } from './values.js';
import { opRegistry } from '../ir/registry.js';
import type { Diagnostic, SourceLoc } from '../util/diagnostics.js';
import { didYouMean } from '../util/suggest.js';
import { weightLayouts } from '../weights/layouts.js';

/** An op's arguments: its tensor arguments (`mask_fill(mask, ...)`), then its attributes. */
export function opParameters(opName: string): readonly Parameter[] {
  const op = opRegistry.get(opName)!;
  return [...(op.tensorArgs ?? []).map((name) => ({ name, required: true })), ...op.attrs.map((a) => ({ name: a.name, required: a.default === undefined }))];
}

/** Whether `let x = callee(...)` runs an op or a block (not a function such as len). */
export function callsGraph(program: Program, callee: string): boolean {
  return !(callee in builtins) && (opRegistry.has(callee) || program.definitions.has(callee));
}

export function definitionParameters(def: DefinitionDecl): readonly Parameter[] {
  return def.params.map((p) => ({ name: p.name, required: p.default === undefined }));
}

/** Names a statement can call: callable ops and blocks. */
function callables(program: Program): string[] {
  const names = [...opRegistry.values()].filter((op) => op.callable).map((op) => op.name);
  for (const def of program.definitions.values()) if (def.kind === 'block') names.push(def.name);
  return names;
}

class Scope {
  private readonly names = new Set<string>();
  constructor(private readonly parent?: Scope) {}
  has(name: string): boolean {
    return this.names.has(name) || (this.parent?.has(name) ?? false);
  }
  add(name: string): void {
    this.names.add(name);
  }
  all(): string[] {
    return [...this.names, ...(this.parent?.all() ?? [])];
  }
  child(): Scope {
    return new Scope(this);
  }
}

/** Names longer than this get no "did you mean": comparing them costs more than it helps. */
const MAX_SUGGESTED_NAME_LENGTH = 64;
/** Past this many problems the rest are only counted (see MAX_DIAGNOSTICS), so skip suggestions. */
const MAX_SUGGESTIONS = 50;

export function checkProgram(program: Program): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  const report = (d: Diagnostic) => diagnostics.push(d);
  const callableNames = callables(program);
  // Edit distance is quadratic in the names' lengths; only names whose length is close enough
  // to be suggested at all are compared, and only for the first problems.
  const suggest = (name: string, candidates: () => Iterable<string>): string => {
    if (diagnostics.length >= MAX_SUGGESTIONS || name.length > MAX_SUGGESTED_NAME_LENGTH) return '';
    const slack = Math.max(1, Math.floor(name.length / 3));
    return didYouMean(name, [...candidates()].filter((c) => Math.abs(c.length - name.length) <= slack));
  };

  const checkExpr = (expr: Expr, scope: Scope): void => {
    switch (expr.kind) {
      case 'name':
        if (!scope.has(expr.name)) report({ message: `'${expr.name}' is not defined${suggest(expr.name, () => scope.all())}`, loc: expr.loc });
        return;
      case 'list':
        expr.items.forEach((e) => checkExpr(e, scope));
        return;
      case 'index':
        checkExpr(expr.target, scope);
        checkExpr(expr.index, scope);
        return;
      case 'unary':
        checkExpr(expr.operand, scope);
        return;
      case 'binary':
        checkExpr(expr.left, scope);
        checkExpr(expr.right, scope);
        return;
      case 'call': {
        const builtin = builtins[expr.callee];
        if (!builtin) {
          report({ message: `unknown function '${expr.callee}'${suggest(expr.callee, () => Object.keys(builtins))}`, loc: expr.loc, notes: [`functions: ${Object.keys(builtins).join(', ')}`] });
        } else if (expr.args.length < builtin.minArgs || expr.args.length > builtin.maxArgs) {
          report({ message: `${expr.callee}() takes ${builtin.minArgs === builtin.maxArgs ? builtin.minArgs : `at least ${builtin.minArgs}`} argument${builtin.maxArgs === 1 ? '' : 's'}, got ${expr.args.length}`, loc: expr.loc });
        }
        for (const arg of expr.args) {
          if (arg.name !== undefined) report({ message: `${expr.callee}() takes no keyword arguments`, loc: arg.nameLoc });
          checkExpr(arg.value, scope);
        }
        return;
      }
      default:
        return;
    }
  };

  const checkCall = (callee: string, calleeLoc: SourceLoc, args: readonly Arg[]): void => {
    const op = opRegistry.get(callee);
    const def = program.definitions.get(callee);
    if (op && op.callable) {
      matchArgs(args, opParameters(op.name), op.name, calleeLoc).diagnostics.forEach(report);
    } else if (op) {
      report({ message: `'${op.name}' cannot be called directly; a residual connection is written \`residual { ... }\``, loc: calleeLoc });
    } else if (def?.kind === 'block') {
      matchArgs(args, definitionParameters(def), def.name, calleeLoc).diagnostics.forEach(report);
    } else if (def?.kind === 'family') {
      report({ message: `'${def.name}' is a family; families are instantiated by a model line (\`model name = ${def.name}(...)\`), not called`, loc: calleeLoc });
    } else {
      report({ message: `unknown op or block '${callee}'${suggest(callee, () => callableNames)}`, loc: calleeLoc });
    }
  };

  const checkBody = (body: readonly Stmt[], scope: Scope, where: { family: boolean; topLevel: boolean }): void => {
    for (const stmt of body) {
      switch (stmt.kind) {
        case 'let':
          if (stmt.value.kind === 'call' && callsGraph(program, stmt.value.callee)) {
            for (const arg of stmt.value.args) checkExpr(arg.value, scope);
            checkCall(stmt.value.callee, stmt.value.loc, stmt.value.args);
          } else {
            checkExpr(stmt.value, scope);
          }
          scope.add(stmt.name);
          break;
        case 'sparse':
          checkExpr(stmt.mask, scope);
          checkBody(stmt.body, scope.child(), { ...where, topLevel: false });
          break;
        case 'output':
          if (!where.family) report({ message: "'output' belongs in a family, where it names one of the model's results", loc: stmt.loc });
          break;
        case 'assert':
          checkExpr(stmt.condition, scope);
          break;
        case 'for': {
          checkExpr(stmt.from, scope);
          checkExpr(stmt.to, scope);
          const inner = scope.child();
          inner.add(stmt.variable);
          checkBody(stmt.body, inner, { ...where, topLevel: false });
          break;
        }
        case 'if':
          checkExpr(stmt.condition, scope);
          checkBody(stmt.then, scope.child(), { ...where, topLevel: false });
          if (stmt.otherwise) checkBody(stmt.otherwise, scope.child(), { ...where, topLevel: false });
          break;
        case 'residual':
        case 'scope':
          if (stmt.kind === 'scope') for (const seg of stmt.path.segments) if (seg.kind === 'expr') checkExpr(seg.expr, scope);
          checkBody(stmt.body, scope.child(), { ...where, topLevel: false });
          break;
        case 'alias':
          if (!where.family || !where.topLevel) {
            report({ message: "'alias' belongs at the top level of a family, where it names the family's weights", loc: stmt.loc });
          }
          for (const placeholder of stmt.to.match(/\{[^}]*\}/g) ?? []) {
            if (!stmt.from.includes(placeholder)) report({ message: `alias target uses ${placeholder}, which its source pattern does not define`, loc: stmt.loc });
          }
          if (stmt.layout && !weightLayouts.has(stmt.layout.name)) {
            const suggestion = didYouMean(stmt.layout.name, weightLayouts.keys());
            report({ message: `unknown weight layout '${stmt.layout.name}'${suggestion || `; the layouts are: ${[...weightLayouts.keys()].join(', ')}`}`, loc: stmt.layout.loc });
          }
          break;
        case 'call': {
          if (stmt.path) for (const seg of stmt.path.segments) if (seg.kind === 'expr') checkExpr(seg.expr, scope);
          for (const arg of stmt.args) checkExpr(arg.value, scope);
          if (stmt.callee === '') break; // the parser already reported this call
          checkCall(stmt.callee, stmt.calleeLoc, stmt.args);
          break;
        }
      }
    }
  };

  const checkDefinition = (def: DefinitionDecl): void => {
    const scope = new Scope();
    for (const param of def.params) {
      if (scope.has(param.name)) report({ message: `parameter '${param.name}' is declared twice`, loc: param.loc });
      if (param.default) checkExpr(param.default, scope);
      scope.add(param.name);
    }
    checkBody(def.body, scope, { family: def.kind === 'family', topLevel: true });
  };

  const checkModel = (model: ModelDecl): void => {
    const def = program.definitions.get(model.family);
    if (!def) {
      const families = [...program.definitions.values()].filter((d) => d.kind === 'family').map((d) => d.name);
      report({
        message: `unknown family '${model.family}'${suggest(model.family, () => families)}`,
        loc: model.familyLoc,
        notes: families.length > 0 ? [`families in scope: ${families.join(', ')}`] : ['no family is in scope; did you forget an `import`?'],
      });
    } else if (def.kind !== 'family') {
      report({ message: `'${def.name}' is a block, but a model line needs a family`, loc: model.familyLoc });
    } else {
      matchArgs(model.args, definitionParameters(def), def.name, model.familyLoc).diagnostics.forEach(report);
    }
    for (const arg of model.args) checkExpr(arg.value, new Scope());
  };

  for (const def of program.definitions.values()) checkDefinition(def);
  for (const model of program.models.values()) checkModel(model);
  diagnostics.sort((a, b) => (a.loc?.file ?? '').localeCompare(b.loc?.file ?? '') || (a.loc?.line ?? 0) - (b.loc?.line ?? 0) || (a.loc?.col ?? 0) - (b.loc?.col ?? 0));
  return diagnostics;
}
