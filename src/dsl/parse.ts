// Text -> syntax tree, with every lexical and syntax error as a located diagnostic.
import type { IToken } from './chevrotain.js';
import type { Decl } from './ast.js';
import { cnxLexer } from './lexer.js';
import { CnxParser, TooComplex } from './parser.js';
import type { Diagnostic } from '../util/diagnostics.js';

// Building a chevrotain parser analyses the whole grammar, so there is one, reused.
let parser: CnxParser | undefined;

export interface ParseResult {
  readonly decls: readonly Decl[];
  readonly diagnostics: readonly Diagnostic[];
}

/** A UTF-8 byte order mark, which some editors put at the start of a file; it is not text. */
const BYTE_ORDER_MARK = '\uFEFF';

export function stripByteOrderMark(text: string): string {
  return text.startsWith(BYTE_ORDER_MARK) ? text.slice(1) : text;
}

export function parseSource(source: string, file: string): ParseResult {
  parser ??= new CnxParser();
  const text = stripByteOrderMark(source);
  const diagnostics: Diagnostic[] = [];
  const lexed = cnxLexer.tokenize(text);
  for (const error of lexed.errors) {
    const bad = text.slice(error.offset, error.offset + error.length);
    diagnostics.push({
      message: bad.startsWith('"') ? 'unterminated string' : `unexpected character '${bad[0] ?? ''}'`,
      loc: { file, line: error.line ?? 0, col: error.column ?? 0, length: bad.startsWith('"') ? bad.length : 1 },
    });
  }
  parser.file = file;
  parser.semanticErrors = [];
  parser.input = lexed.tokens;
  parser.nesting = 0;
  let decls: Decl[];
  try {
    decls = parser.sourceFile();
  } catch (error) {
    // Too deep, too long or too broken to parse on: that error, with those found before it.
    if (!(error instanceof TooComplex)) throw error;
    diagnostics.push(error.diagnostic);
    decls = [];
  }
  for (const error of parser.errors) {
    const token = error.token;
    // At the end of input chevrotain's token has no position; point just past the last token.
    const anchor = Number.isNaN(token.startOffset) || token.tokenType.name === 'EOF' ? ((error as { previousToken?: IToken }).previousToken ?? lexed.tokens.at(-1)) : token;
    const atEnd = anchor !== token;
    diagnostics.push({
      message: error.message,
      loc: {
        file,
        line: anchor?.startLine ?? 1,
        col: atEnd ? (anchor?.endColumn ?? 0) + 1 : (anchor?.startColumn ?? 1),
        length: atEnd ? 1 : Math.max(1, anchor?.image.length ?? 1),
      },
    });
  }
  diagnostics.push(...parser.semanticErrors);
  diagnostics.sort((a, b) => (a.loc!.line - b.loc!.line) || (a.loc!.col - b.loc!.col));
  return { decls, diagnostics };
}
