// The .cnx grammar (chevrotain, embedded actions). Error recovery is on, so one run reports
// every syntax error it can rather than only the first.
//
//   file     := (import | block | family | model)*
//   import   := 'import' STRING
//   block    := 'block' NAME '(' params? ')' body          family likewise
//   model    := 'model' MODELNAME '=' NAME '(' args? ')'   MODELNAME: names joined by '-'
//   body     := '{' stmt* '}'
//   stmt     := for | if | let | assert | residual | sparse | output | alias | path (':' call | body | '(' args? ')')
//   sparse   := 'sparse' '(' expr ')' body                 output := 'output' NAME
//   path     := (NAME | INT) ('.' (NAME | INT | '{' expr '}'))*
import { EmbeddedActionsParser, type IToken, type TokenType } from './chevrotain.js';
import type { Arg, BinaryOp, Decl, Expr, Param, Path, Segment, Stmt } from './ast.js';
import * as T from './lexer.js';
import type { Diagnostic, SourceLoc } from '../util/diagnostics.js';

/**
 * Brackets, blocks, `else if`s and prefix operators nested in one another. Parsing recurses
 * once per level, and a few hundred levels overflow the stack; real models nest about five.
 */
export const MAX_NESTING_DEPTH = 64;
/**
 * Depth of one expression's tree (`1 + 1 + ... + 1` is as deep as it has terms). Checking and
 * evaluating recurse over it; real expressions are a few levels deep.
 */
export const MAX_EXPRESSION_DEPTH = 256;
/** Items of one list literal or argument list (see MAX_LIST_LENGTH in values.ts). */
export const MAX_LIST_ITEMS = 10_000;
/**
 * Syntax errors before parsing stops. Recovering from each costs time, and a megabyte of garbage
 * has tens of thousands; only the first few dozen are shown anyway (MAX_DIAGNOSTICS).
 */
export const MAX_SYNTAX_ERRORS = 200;

/** Thrown out of the parse when input is too deep or too long to parse safely; one error ends it. */
export class TooComplex extends Error {
  constructor(readonly diagnostic: Diagnostic) {
    super(diagnostic.message);
  }
}

function describe(token: IToken): string {
  return token.tokenType.name === 'EOF' ? 'the end of the file' : `'${token.image}'`;
}

function oneOf(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? 'something else') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`;
}

function label(type: TokenType): string {
  return type.LABEL ?? type.name;
}

/** Messages in the user's terms, not the grammar's. */
const errorMessageProvider = {
  buildMismatchTokenMessage({ expected, actual }: { expected: TokenType; actual: IToken }): string {
    // Expecting EOF means a declaration should start here.
    if (expected.name === 'EOF') return `unexpected ${describe(actual)}; expected 'import', 'block', 'family' or 'model'`;
    return `expected ${label(expected)} but found ${describe(actual)}`;
  },
  buildNotAllInputParsedMessage({ firstRedundant }: { firstRedundant: IToken }): string {
    return `unexpected ${describe(firstRedundant)}; expected 'import', 'block', 'family' or 'model'`;
  },
  buildNoViableAltMessage({ expectedPathsPerAlt, actual, ruleName }: { expectedPathsPerAlt: TokenType[][][]; actual: IToken[]; ruleName: string }): string {
    const firsts = new Set<string>();
    for (const alt of expectedPathsPerAlt) for (const path of alt) if (path[0]) firsts.add(label(path[0]));
    const what =
      ruleName === 'statement'
        ? 'a statement'
        : ruleName === 'declaration'
          ? "'import', 'block', 'family' or 'model'"
          : ['primary', 'unary', 'postfix'].includes(ruleName)
            ? 'an expression'
            : oneOf([...firsts]);
    return `expected ${what} but found ${describe(actual[0])}`;
  },
  buildEarlyExitMessage({ actual }: { actual: IToken[] }): string {
    return `unexpected ${describe(actual[0])}`;
  },
};

export class CnxParser extends EmbeddedActionsParser {
  file = '';
  /** Errors the grammar cannot express, found while building the tree. */
  semanticErrors: Diagnostic[] = [];
  /** How deeply the rules now running are nested (see MAX_NESTING_DEPTH). */
  nesting = 0;
  private readonly exprDepth = new WeakMap<object, number>();

  /**
   * `validate` runs chevrotain's grammar checks (ambiguities, left recursion): they cost about
   * 15 ms of every run and can only fail when the grammar changes, so runs skip them and a test
   * (test/dsl/grammar.test.ts) builds the parser with them.
   */
  constructor(options: { readonly validate?: boolean } = {}) {
    super([...T.allTokens], { recoveryEnabled: true, maxLookahead: 3, errorMessageProvider, skipValidations: options.validate !== true });
    this.performSelfAnalysis();
  }

  loc(token: IToken, end?: IToken): SourceLoc {
    // During chevrotain's grammar recording, tokens are placeholders without text; tokens made up
    // by error recovery have no position.
    if (token?.image === undefined || !Number.isFinite(token.startLine)) return { file: this.file, line: 0, col: 0, length: 1 };
    const length =
      end && end.endOffset !== undefined && end.startLine === token.startLine && !Number.isNaN(end.endOffset)
        ? end.endOffset - token.startOffset + 1
        : token.image.length;
    return { file: this.file, line: token.startLine ?? 0, col: token.startColumn ?? 0, length: Math.max(1, length) };
  }

  /** Chevrotain records each syntax error here; past MAX_SYNTAX_ERRORS the parse stops. */
  SAVE_ERROR(error: unknown): unknown {
    const saved = (ErrorHandlerSave as (this: CnxParser, e: unknown) => unknown).call(this, error);
    if ((this as unknown as { _errors: unknown[] })._errors.length >= MAX_SYNTAX_ERRORS) {
      throw new TooComplex({ message: `more than ${MAX_SYNTAX_ERRORS} syntax errors; stopped reading the file here`, loc: this.here() });
    }
    return saved;
  }

  private errorExpr = (): Expr => ({ kind: 'error', loc: { file: this.file, line: 0, col: 0, length: 1 } });

  /** Runs a recursive rule one level deeper, refusing to go past MAX_NESTING_DEPTH. */
  private nested<T>(run: () => T): T {
    try {
      if (++this.nesting > MAX_NESTING_DEPTH) {
        throw new TooComplex({ message: `nesting is more than ${MAX_NESTING_DEPTH} levels deep (brackets, blocks, 'else if's or prefix operators)`, loc: this.here() });
      }
      return run();
    } finally {
      this.nesting--;
    }
  }

  /** Records an expression node's depth; refuses trees deeper than MAX_EXPRESSION_DEPTH. */
  private deep<E extends Expr>(node: E, ...children: readonly (Expr | undefined)[]): E {
    let depth = 0;
    for (const child of children) if (typeof child === 'object' && child !== null) depth = Math.max(depth, this.exprDepth.get(child) ?? 0);
    if (depth + 1 > MAX_EXPRESSION_DEPTH) {
      throw new TooComplex({ message: `this expression is more than ${MAX_EXPRESSION_DEPTH} operations deep; split it with \`let\``, loc: node.loc });
    }
    this.exprDepth.set(node, depth + 1);
    return node;
  }

  /** Counts one more item of a list; refuses more than MAX_LIST_ITEMS. */
  private countItem(count: number): void {
    if (count > MAX_LIST_ITEMS) throw new TooComplex({ message: `a list or argument list may have at most ${MAX_LIST_ITEMS} items`, loc: this.here() });
  }

  /** The location of the next token, or of the last one at the end of the input. */
  private here(): SourceLoc {
    const next = this.LA(1);
    const token = next.tokenType.name === 'EOF' || Number.isNaN(next.startOffset) ? this.LA(0) : next;
    return this.loc(token);
  }

  public sourceFile = this.RULE(
    'sourceFile',
    (): Decl[] => {
      const decls: Decl[] = [];
      this.MANY(() => {
        const decl = this.SUBRULE(this.declaration);
        if (decl) decls.push(decl);
      });
      return decls;
    },
    // When recovery gives up (e.g. a '}' missing at the end of the file) chevrotain would
    // return undefined; the errors are reported all the same.
    { recoveryValueFunc: () => [] },
  );

  private declaration = this.RULE(
    'declaration',
    (): Decl | undefined =>
      this.OR([
        { ALT: () => this.SUBRULE(this.importDecl) },
        { ALT: () => this.SUBRULE(this.definition) },
        { ALT: () => this.SUBRULE(this.modelDecl) },
      ]),
    { recoveryValueFunc: () => undefined },
  );

  private importDecl = this.RULE('importDecl', (): Decl | undefined => {
    const kw = this.CONSUME(T.Import);
    const path = this.CONSUME(T.StringLiteral);
    // Error recovery may make up the missing string (with no text and no position); the syntax
    // error is reported, and there is nothing to import.
    if (path.isInsertedInRecovery === true || !Number.isFinite(path.startLine)) return undefined;
    return { kind: 'import', path: unquote(path.image), loc: this.loc(path) ?? this.loc(kw) };
  });

  private definition = this.RULE('definition', (): Decl => {
    const kw = this.OR([{ ALT: () => this.CONSUME(T.Block) }, { ALT: () => this.CONSUME(T.Family) }]);
    const name = this.CONSUME(T.Identifier);
    this.CONSUME(T.LParen);
    const params: Param[] = [];
    this.MANY_SEP({
      SEP: T.Comma,
      DEF: () => {
        const p = this.CONSUME1(T.Identifier);
        let def: Expr | undefined;
        this.OPTION(() => {
          this.CONSUME(T.Equals);
          def = this.SUBRULE(this.expression);
        });
        params.push({ name: p.image, loc: this.loc(p), default: def });
      },
    });
    this.CONSUME(T.RParen);
    const body = this.SUBRULE(this.body);
    return { kind: kw.image === 'block' ? 'block' : 'family', name: name.image, nameLoc: this.loc(name), params, body, loc: this.loc(kw) };
  });

  private modelDecl = this.RULE('modelDecl', (): Decl => {
    const kw = this.CONSUME(T.Model);
    const first = this.CONSUME(T.Identifier);
    let name = first.image;
    let last = first;
    // Model names read like file names (convnextv2-base): parts joined by '-' with no spaces.
    this.MANY({
      GATE: () => this.LA(1).startOffset === last.endOffset! + 1,
      DEF: () => {
        const part = this.OR1([
          { ALT: () => this.CONSUME(T.Minus) },
          { ALT: () => this.CONSUME(T.Word) },
          { ALT: () => this.CONSUME(T.IntLiteral) },
        ]);
        name += part.image;
        last = part;
      },
    });
    this.CONSUME(T.Equals);
    const family = this.CONSUME3(T.Identifier);
    const args = this.SUBRULE(this.argumentList);
    return { kind: 'model', name, nameLoc: this.loc(first, last), family: family.image, familyLoc: this.loc(family), args, loc: this.loc(kw) };
  });

  private argumentList = this.RULE('argumentList', (): Arg[] => {
    const args: Arg[] = [];
    this.CONSUME(T.LParen);
    this.MANY_SEP({
      SEP: T.Comma,
      DEF: () => {
        args.push(this.SUBRULE(this.argument));
        this.ACTION(() => this.countItem(args.length));
      },
    });
    this.CONSUME(T.RParen);
    return args;
  });

  private argument = this.RULE('argument', (): Arg =>
    this.OR([
      {
        GATE: () => this.LA(2).tokenType === T.Equals,
        ALT: () => {
          const name = this.CONSUME(T.Identifier);
          this.CONSUME(T.Equals);
          return { name: name.image, nameLoc: this.loc(name), value: this.SUBRULE(this.expression) };
        },
      },
      { ALT: () => ({ value: this.SUBRULE1(this.expression) }) },
    ]),
  );

  private body = this.RULE('body', (): Stmt[] => this.nested(() => {
    const stmts: Stmt[] = [];
    this.CONSUME(T.LBrace);
    this.MANY(() => {
      const s = this.SUBRULE(this.statement);
      if (s) stmts.push(s);
    });
    this.CONSUME(T.RBrace);
    return stmts;
  }));

  private statement = this.RULE(
    'statement',
    (): Stmt | undefined =>
      this.OR([
        { ALT: () => this.SUBRULE(this.forStmt) },
        { ALT: () => this.SUBRULE(this.ifStmt) },
        { ALT: () => this.SUBRULE(this.letStmt) },
        { ALT: () => this.SUBRULE(this.assertStmt) },
        { ALT: () => this.SUBRULE(this.residualStmt) },
        { ALT: () => this.SUBRULE(this.sparseStmt) },
        { ALT: () => this.SUBRULE(this.outputStmt) },
        { ALT: () => this.SUBRULE(this.aliasStmt) },
        { ALT: () => this.SUBRULE(this.pathStmt) },
      ]),
    { recoveryValueFunc: () => undefined },
  );

  private forStmt = this.RULE('forStmt', (): Stmt => {
    const kw = this.CONSUME(T.For);
    const variable = this.CONSUME(T.Identifier);
    this.CONSUME(T.In);
    const from = this.SUBRULE(this.additive);
    this.CONSUME(T.DotDot);
    const to = this.SUBRULE1(this.additive);
    const body = this.SUBRULE(this.body);
    return { kind: 'for', variable: variable.image, variableLoc: this.loc(variable), from, to, body, loc: this.loc(kw) };
  });

  private ifStmt = this.RULE('ifStmt', (): Stmt => this.nested(() => {
    const kw = this.CONSUME(T.If);
    const condition = this.SUBRULE(this.expression);
    const then = this.SUBRULE(this.body);
    let otherwise: Stmt[] | undefined;
    this.OPTION(() => {
      this.CONSUME(T.Else);
      otherwise = this.OR([
        { ALT: () => [this.SUBRULE(this.ifStmt)] },
        { ALT: () => this.SUBRULE1(this.body) },
      ]);
    });
    return { kind: 'if', condition, then, otherwise, loc: this.loc(kw) } as Stmt;
  }));

  private letStmt = this.RULE('letStmt', (): Stmt => {
    const kw = this.CONSUME(T.Let);
    const name = this.CONSUME(T.Identifier);
    this.CONSUME(T.Equals);
    const value = this.SUBRULE(this.expression);
    return { kind: 'let', name: name.image, nameLoc: this.loc(name), value, loc: this.loc(kw) };
  });

  private assertStmt = this.RULE('assertStmt', (): Stmt => {
    const kw = this.CONSUME(T.Assert);
    const condition = this.SUBRULE(this.expression);
    let message: string | undefined;
    this.OPTION(() => {
      this.CONSUME(T.Comma);
      message = unquote(this.CONSUME(T.StringLiteral).image);
    });
    return { kind: 'assert', condition, message, loc: this.loc(kw) };
  });

  private residualStmt = this.RULE('residualStmt', (): Stmt => {
    const kw = this.CONSUME(T.Residual);
    const body = this.SUBRULE(this.body);
    return { kind: 'residual', body, loc: this.loc(kw) };
  });

  private sparseStmt = this.RULE('sparseStmt', (): Stmt => {
    const kw = this.CONSUME(T.Sparse);
    this.CONSUME(T.LParen);
    const mask = this.SUBRULE(this.expression);
    this.CONSUME(T.RParen);
    const body = this.SUBRULE(this.body);
    return { kind: 'sparse', mask, body, loc: this.loc(kw) };
  });

  private outputStmt = this.RULE('outputStmt', (): Stmt => {
    const kw = this.CONSUME(T.Output);
    const name = this.CONSUME(T.Identifier);
    return { kind: 'output', name: name.image, nameLoc: this.loc(name), loc: this.loc(kw, name) };
  });

  private aliasStmt = this.RULE('aliasStmt', (): Stmt => {
    const kw = this.CONSUME(T.Alias);
    const from = this.CONSUME(T.StringLiteral);
    this.CONSUME(T.Equals);
    const to = this.CONSUME1(T.StringLiteral);
    let layout: { name: string; loc: SourceLoc } | undefined;
    this.OPTION(() => {
      this.CONSUME(T.As);
      const name = this.CONSUME(T.Identifier);
      layout = { name: name.image, loc: this.loc(name) };
    });
    return { kind: 'alias', from: unquote(from.image), to: unquote(to.image), ...(layout ? { layout } : {}), loc: this.loc(from, to) };
  });

  private pathStmt = this.RULE('pathStmt', (): Stmt => {
    // Error recovery inside the path may leave it undefined; the error is reported already.
    const path: Path = this.SUBRULE(this.path) ?? { segments: [], loc: this.loc(this.LA(0)) };
    return this.OR([
      {
        ALT: (): Stmt => {
          this.CONSUME(T.Colon);
          const callee = this.CONSUME(T.Identifier);
          const args = this.SUBRULE(this.argumentList);
          return { kind: 'call', path, callee: callee.image, calleeLoc: this.loc(callee), args, loc: this.loc(callee) };
        },
      },
      {
        ALT: (): Stmt => ({ kind: 'scope', path, body: this.SUBRULE(this.body), loc: path.loc }),
      },
      {
        // `gelu()`: an unnamed call; the "path" was the callee's name.
        ALT: (): Stmt => {
          const args = this.SUBRULE1(this.argumentList);
          const callee = this.ACTION(() => {
            const first = path.segments[0];
            if (path.segments.length !== 1 || first?.kind !== 'text' || /^\d/.test(first.text)) {
              this.semanticErrors.push({
                message: `a call needs an op or block name here; to name the call's weights write \`name: op(...)\``,
                loc: path.loc,
              });
              return '';
            }
            return first.text;
          });
          return { kind: 'call', path: undefined, callee: callee ?? '', calleeLoc: path.loc, args, loc: path.loc };
        },
      },
    ]);
  });

  private path = this.RULE('path', (): Path => {
    const segments: Segment[] = [];
    const firstToken = this.LA(1);
    const first = this.OR([
      { ALT: () => this.CONSUME(T.Identifier) },
      { ALT: () => this.CONSUME(T.PathKeyword) },
      { ALT: () => this.CONSUME(T.IntLiteral) },
    ]);
    segments.push({ kind: 'text', text: first.image, loc: this.loc(first) });
    let last: IToken = first;
    this.MANY(() => {
      this.CONSUME(T.Dot);
      this.OR1([
        {
          ALT: () => {
            const t = this.CONSUME(T.Word);
            segments.push({ kind: 'text', text: t.image, loc: this.loc(t) });
            last = t;
          },
        },
        {
          ALT: () => {
            const t = this.CONSUME1(T.IntLiteral);
            segments.push({ kind: 'text', text: t.image, loc: this.loc(t) });
            last = t;
          },
        },
        {
          ALT: () => {
            const open = this.CONSUME(T.LBrace);
            const expr = this.SUBRULE(this.expression);
            const close = this.CONSUME(T.RBrace);
            segments.push({ kind: 'expr', expr, loc: this.loc(open, close) });
            last = close;
          },
        },
      ]);
    });
    return { segments, loc: this.loc(firstToken, last) };
  });

  // Expressions, loosest binding first.
  public expression = this.RULE('expression', (): Expr => this.nested(() => this.SUBRULE(this.orExpr)), { recoveryValueFunc: this.errorExpr });

  private orExpr = this.RULE('orExpr', (): Expr => {
    let left = this.SUBRULE(this.andExpr);
    this.MANY(() => {
      const op = this.CONSUME(T.Or);
      const right = this.SUBRULE1(this.andExpr);
      left = this.deep({ kind: 'binary', op: 'or', left, right, loc: span(left?.loc, right?.loc, this.loc(op)) } as Expr, left, right);
    });
    return left;
  });

  private andExpr = this.RULE('andExpr', (): Expr => {
    let left = this.SUBRULE(this.comparison);
    this.MANY(() => {
      const op = this.CONSUME(T.And);
      const right = this.SUBRULE1(this.comparison);
      left = this.deep({ kind: 'binary', op: 'and', left, right, loc: span(left?.loc, right?.loc, this.loc(op)) } as Expr, left, right);
    });
    return left;
  });

  private comparison = this.RULE('comparison', (): Expr => {
    let left = this.SUBRULE(this.additive);
    this.OPTION(() => {
      const op = this.OR([
        { ALT: () => this.CONSUME(T.EqEq) },
        { ALT: () => this.CONSUME(T.NotEq) },
        { ALT: () => this.CONSUME(T.LessEq) },
        { ALT: () => this.CONSUME(T.GreaterEq) },
        { ALT: () => this.CONSUME(T.Less) },
        { ALT: () => this.CONSUME(T.Greater) },
      ]);
      const right = this.SUBRULE1(this.additive);
      left = this.deep({ kind: 'binary', op: op.image as BinaryOp, left, right, loc: span(left?.loc, right?.loc, this.loc(op)) } as Expr, left, right);
    });
    return left;
  });

  private additive = this.RULE('additive', (): Expr => {
    let left = this.SUBRULE(this.multiplicative);
    this.MANY(() => {
      const op = this.OR([{ ALT: () => this.CONSUME(T.Plus) }, { ALT: () => this.CONSUME(T.Minus) }]);
      const right = this.SUBRULE1(this.multiplicative);
      left = this.deep({ kind: 'binary', op: op.image as BinaryOp, left, right, loc: span(left?.loc, right?.loc, this.loc(op)) } as Expr, left, right);
    });
    return left;
  });

  private multiplicative = this.RULE('multiplicative', (): Expr => {
    let left = this.SUBRULE(this.unary);
    this.MANY(() => {
      const op = this.OR([
        { ALT: () => this.CONSUME(T.Star) },
        { ALT: () => this.CONSUME(T.SlashSlash) },
        { ALT: () => this.CONSUME(T.Slash) },
        { ALT: () => this.CONSUME(T.Percent) },
      ]);
      const right = this.SUBRULE1(this.unary);
      left = this.deep({ kind: 'binary', op: op.image as BinaryOp, left, right, loc: span(left?.loc, right?.loc, this.loc(op)) } as Expr, left, right);
    });
    return left;
  });

  private unary = this.RULE('unary', (): Expr =>
    this.nested(() => this.OR([
      {
        ALT: () => {
          const op = this.OR1([{ ALT: () => this.CONSUME(T.Minus) }, { ALT: () => this.CONSUME(T.Not) }]);
          const operand = this.SUBRULE(this.unary);
          return this.deep({ kind: 'unary', op: op.image === '-' ? '-' : 'not', operand, loc: span(this.loc(op), operand?.loc, this.loc(op)) } as Expr, operand);
        },
      },
      { ALT: () => this.SUBRULE(this.postfix) },
    ])),
  );

  private postfix = this.RULE('postfix', (): Expr => {
    let target = this.SUBRULE(this.primary);
    this.MANY(() => {
      const open = this.CONSUME(T.LBracket);
      const index = this.SUBRULE(this.expression);
      const close = this.CONSUME(T.RBracket);
      target = this.deep({ kind: 'index', target, index, loc: this.loc(open, close) } as Expr, target, index);
    });
    return target;
  });

  private primary = this.RULE('primary', (): Expr =>
    this.OR([
      {
        ALT: () => {
          const t = this.CONSUME(T.IntLiteral);
          const value = Number(t.image);
          this.ACTION(() => {
            if (!Number.isSafeInteger(value)) this.semanticErrors.push({ message: `integer ${t.image} is too large; convc's integers are exact only up to 2^53 - 1`, loc: this.loc(t) });
          });
          return { kind: 'int', value: Number.isSafeInteger(value) ? value : 0, loc: this.loc(t) } as Expr;
        },
      },
      {
        ALT: () => {
          const t = this.CONSUME(T.FloatLiteral);
          const value = Number(t.image);
          this.ACTION(() => {
            if (!Number.isFinite(value)) this.semanticErrors.push({ message: `number ${t.image} is too large to represent`, loc: this.loc(t) });
          });
          return { kind: 'float', value: Number.isFinite(value) ? value : 0, loc: this.loc(t) } as Expr;
        },
      },
      {
        ALT: () => {
          const t = this.CONSUME(T.StringLiteral);
          return { kind: 'string', value: unquote(t.image), loc: this.loc(t) } as Expr;
        },
      },
      {
        ALT: () => {
          const t = this.CONSUME(T.True);
          return { kind: 'bool', value: true, loc: this.loc(t) } as Expr;
        },
      },
      {
        ALT: () => {
          const t = this.CONSUME(T.False);
          return { kind: 'bool', value: false, loc: this.loc(t) } as Expr;
        },
      },
      {
        // A builtin function call, e.g. len(dims).
        GATE: () => this.LA(2).tokenType === T.LParen,
        ALT: () => {
          const t = this.CONSUME(T.Identifier);
          const args = this.SUBRULE(this.argumentList);
          return this.deep({ kind: 'call', callee: t.image, args, loc: this.loc(t) } as Expr, ...(Array.isArray(args) ? args.map((a) => a?.value) : []));
        },
      },
      {
        ALT: () => {
          const t = this.CONSUME1(T.Identifier);
          return { kind: 'name', name: t.image, loc: this.loc(t) } as Expr;
        },
      },
      {
        ALT: () => {
          const open = this.CONSUME(T.LBracket);
          const items: Expr[] = [];
          this.MANY_SEP({
            SEP: T.Comma,
            DEF: () => {
              items.push(this.SUBRULE(this.expression));
              this.ACTION(() => this.countItem(items.length));
            },
          });
          const close = this.CONSUME(T.RBracket);
          return this.deep({ kind: 'list', items, loc: this.loc(open, close) } as Expr, ...items);
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.LParen);
          const inner = this.SUBRULE1(this.expression);
          this.CONSUME(T.RParen);
          return inner;
        },
      },
    ]),
  );
}

/**
 * The text from `first` to `last` when both lie on one line (so a caret can underline a whole
 * expression such as `c * 1.5`), else `fallback` (an operator's own position).
 */
function span(first: SourceLoc | undefined, last: SourceLoc | undefined, fallback: SourceLoc): SourceLoc {
  // While recording the grammar, or recovering from a syntax error, an operand may be missing.
  if (!first || !last) return fallback;
  if (first.file !== last.file || first.line !== last.line || first.line === 0 || last.col < first.col) return fallback;
  return { ...first, length: last.col + last.length - first.col };
}

// Chevrotain's own SAVE_ERROR, which the override above extends.
const ErrorHandlerSave = (EmbeddedActionsParser.prototype as unknown as { SAVE_ERROR: unknown }).SAVE_ERROR;

export function unquote(image: string): string {
  if (image.length < 2) return '';
  return image.slice(1, -1).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : c));
}
