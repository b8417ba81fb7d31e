// The syntax tree of a .cnx file. Every node keeps its location, so elaboration errors can
// point at the text that caused them.
import type { SourceLoc } from '../util/diagnostics.js';

export type Expr =
  | { readonly kind: 'int'; readonly value: number; readonly loc: SourceLoc }
  | { readonly kind: 'float'; readonly value: number; readonly loc: SourceLoc }
  | { readonly kind: 'bool'; readonly value: boolean; readonly loc: SourceLoc }
  | { readonly kind: 'string'; readonly value: string; readonly loc: SourceLoc }
  | { readonly kind: 'name'; readonly name: string; readonly loc: SourceLoc }
  | { readonly kind: 'list'; readonly items: readonly Expr[]; readonly loc: SourceLoc }
  | { readonly kind: 'index'; readonly target: Expr; readonly index: Expr; readonly loc: SourceLoc }
  | { readonly kind: 'call'; readonly callee: string; readonly args: readonly Arg[]; readonly loc: SourceLoc }
  | { readonly kind: 'unary'; readonly op: '-' | 'not'; readonly operand: Expr; readonly loc: SourceLoc }
  | { readonly kind: 'binary'; readonly op: BinaryOp; readonly left: Expr; readonly right: Expr; readonly loc: SourceLoc }
  /** Stands in for an expression the parser could not read; never reaches elaboration. */
  | { readonly kind: 'error'; readonly loc: SourceLoc };

export type BinaryOp = '+' | '-' | '*' | '/' | '//' | '%' | '==' | '!=' | '<' | '<=' | '>' | '>=' | 'and' | 'or';

export interface Arg {
  /** Set for keyword arguments (`stride=2`). */
  readonly name?: string;
  readonly nameLoc?: SourceLoc;
  readonly value: Expr;
}

/** One part of a dotted weight-name path: `stages`, `0`, or an interpolation `{i}`. */
export type Segment =
  | { readonly kind: 'text'; readonly text: string; readonly loc: SourceLoc }
  | { readonly kind: 'expr'; readonly expr: Expr; readonly loc: SourceLoc };

export interface Path {
  readonly segments: readonly Segment[];
  readonly loc: SourceLoc;
}

export type Stmt =
  /** `name: callee(args)` or `callee(args)`: an op or a block applied to the running value. */
  | { readonly kind: 'call'; readonly path?: Path; readonly callee: string; readonly calleeLoc: SourceLoc; readonly args: readonly Arg[]; readonly loc: SourceLoc }
  /** `path { ... }`: the statements' weights are named under `path`. */
  | { readonly kind: 'scope'; readonly path: Path; readonly body: readonly Stmt[]; readonly loc: SourceLoc }
  /** `residual { ... }`: the body's result is added to its input. */
  | { readonly kind: 'residual'; readonly body: readonly Stmt[]; readonly loc: SourceLoc }
  /**
   * `sparse(mask) { ... }`: the body computes only where the patch mask keeps the image (FCMAE's
   * sparse encoder): its input and every op's result are zeroed at masked patches.
   */
  | { readonly kind: 'sparse'; readonly mask: Expr; readonly body: readonly Stmt[]; readonly loc: SourceLoc }
  /** `output name`: the running value is one of the model's named results. */
  | { readonly kind: 'output'; readonly name: string; readonly nameLoc: SourceLoc; readonly loc: SourceLoc }
  | { readonly kind: 'for'; readonly variable: string; readonly variableLoc: SourceLoc; readonly from: Expr; readonly to: Expr; readonly body: readonly Stmt[]; readonly loc: SourceLoc }
  | { readonly kind: 'if'; readonly condition: Expr; readonly then: readonly Stmt[]; readonly otherwise?: readonly Stmt[]; readonly loc: SourceLoc }
  /** `let x = expr`; `let x = op(...)` also runs the op, like a statement, and names its tensor. */
  | { readonly kind: 'let'; readonly name: string; readonly nameLoc: SourceLoc; readonly value: Expr; readonly loc: SourceLoc }
  | { readonly kind: 'assert'; readonly condition: Expr; readonly message?: string; readonly loc: SourceLoc }
  /**
   * `alias "timm.name.{i}" = "official.name.{i}"`: another checkpoint's name for weights;
   * `... as minkowski`: stored in another layout too (src/weights/layouts.ts).
   */
  | { readonly kind: 'alias'; readonly from: string; readonly to: string; readonly layout?: { readonly name: string; readonly loc: SourceLoc }; readonly loc: SourceLoc };

export interface Param {
  readonly name: string;
  readonly loc: SourceLoc;
  readonly default?: Expr;
}

export interface DefinitionDecl {
  readonly kind: 'block' | 'family';
  readonly name: string;
  readonly nameLoc: SourceLoc;
  readonly params: readonly Param[];
  readonly body: readonly Stmt[];
  readonly loc: SourceLoc;
}

export interface ModelDecl {
  readonly kind: 'model';
  readonly name: string;
  readonly nameLoc: SourceLoc;
  readonly family: string;
  readonly familyLoc: SourceLoc;
  readonly args: readonly Arg[];
  readonly loc: SourceLoc;
}

export interface ImportDecl {
  readonly kind: 'import';
  readonly path: string;
  readonly loc: SourceLoc;
}

export type Decl = DefinitionDecl | ModelDecl | ImportDecl;

export interface SourceFile {
  readonly path: string;
  readonly decls: readonly Decl[];
}
