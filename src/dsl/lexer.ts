// Tokens of the .cnx language. Labels are what diagnostics call each token ("expected ')'").
import { createToken, Lexer, type TokenType } from './chevrotain.js';

/** Any name or keyword: weight-name segments and model names may be keywords (`block.norm`). */
export const Word = createToken({ name: 'Word', pattern: Lexer.NA, label: 'a name' });
/** Keywords that cannot start a statement, so a statement's path may begin with them. */
export const PathKeyword = createToken({ name: 'PathKeyword', pattern: Lexer.NA, categories: [Word], label: 'a name' });

export const Identifier = createToken({ name: 'Identifier', pattern: /[A-Za-z_][A-Za-z0-9_]*/, categories: [Word], label: 'a name' });

function keyword(word: string, startsStatement = false): TokenType {
  return createToken({
    name: `Kw_${word}`,
    pattern: new RegExp(`${word}\\b`),
    longer_alt: Identifier,
    categories: [startsStatement ? Word : PathKeyword],
    label: `'${word}'`,
  });
}

export const Import = keyword('import');
export const Model = keyword('model');
export const Family = keyword('family');
export const Block = keyword('block');
export const For = keyword('for', true);
export const In = keyword('in');
export const If = keyword('if', true);
export const Else = keyword('else');
export const Let = keyword('let', true);
export const Residual = keyword('residual', true);
export const Sparse = keyword('sparse', true);
export const Output = keyword('output', true);
export const Alias = keyword('alias', true);
export const Assert = keyword('assert', true);
export const As = keyword('as');
export const True = keyword('true');
export const False = keyword('false');
export const And = keyword('and');
export const Or = keyword('or');
export const Not = keyword('not');

// A float needs digits on both sides of its point, so that `0..4` is a range of ints.
export const FloatLiteral = createToken({ name: 'FloatLiteral', pattern: /\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+/, label: 'a number' });
export const IntLiteral = createToken({ name: 'IntLiteral', pattern: /\d+/, label: 'an integer' });
export const StringLiteral = createToken({ name: 'StringLiteral', pattern: /"(?:[^"\\\n]|\\.)*"/, label: 'a string' });

function punct(name: string, pattern: string): TokenType {
  return createToken({ name, pattern: new RegExp(pattern.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')), label: `'${pattern}'` });
}

export const DotDot = punct('DotDot', '..');
export const Dot = punct('Dot', '.');
export const Comma = punct('Comma', ',');
export const Colon = punct('Colon', ':');
export const LParen = punct('LParen', '(');
export const RParen = punct('RParen', ')');
export const LBracket = punct('LBracket', '[');
export const RBracket = punct('RBracket', ']');
export const LBrace = punct('LBrace', '{');
export const RBrace = punct('RBrace', '}');
export const EqEq = punct('EqEq', '==');
export const NotEq = punct('NotEq', '!=');
export const LessEq = punct('LessEq', '<=');
export const GreaterEq = punct('GreaterEq', '>=');
export const Less = punct('Less', '<');
export const Greater = punct('Greater', '>');
export const Equals = punct('Equals', '=');
export const Plus = punct('Plus', '+');
export const Minus = punct('Minus', '-');
export const Star = punct('Star', '*');
export const SlashSlash = punct('SlashSlash', '//');
export const Slash = punct('Slash', '/');
export const Percent = punct('Percent', '%');

const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /[ \t\r\n]+/, group: Lexer.SKIPPED });
const Comment = createToken({ name: 'Comment', pattern: /#[^\n]*/, group: Lexer.SKIPPED });

/** Order matters: longer punctuation first, keywords before identifiers, floats before ints. */
export const allTokens: readonly TokenType[] = [
  WhiteSpace,
  Comment,
  Word,
  PathKeyword,
  Import, Model, Family, Block, For, In, If, Else, Let, Residual, Sparse, Output, Alias, Assert, As, True, False, And, Or, Not,
  Identifier,
  FloatLiteral, IntLiteral, StringLiteral,
  DotDot, Dot, Comma, Colon, LParen, RParen, LBracket, RBracket, LBrace, RBrace,
  EqEq, NotEq, LessEq, GreaterEq, Less, Greater, Equals,
  Plus, Minus, Star, SlashSlash, Slash, Percent,
];

/**
 * The lexer. Chevrotain's checks of the token definitions (`validate`) cost about 15 ms of every
 * run and can only fail when the tokens above change, so runs skip them and a test
 * (test/dsl/grammar.test.ts) builds the lexer with them.
 */
export function createLexer(options: { readonly validate?: boolean } = {}): InstanceType<typeof Lexer> {
  return new Lexer([...allTokens], { positionTracking: 'full', ensureOptimizations: false, skipValidations: options.validate !== true });
}

export const cnxLexer = createLexer();
