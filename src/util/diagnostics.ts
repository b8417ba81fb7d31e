// Errors a user can act on. Every mistake in user input (a .cnx file, a weights file, an input
// tensor, a command line) becomes a Diagnostic; the CLI prints them rustc-style and exits 2.
// Internal bugs stay ordinary exceptions, so the two never get confused.

/** A position in a source file; line and col are 1-based, length is in characters (>= 1). */
export interface SourceLoc {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly length: number;
}

export interface Diagnostic {
  readonly message: string;
  readonly loc?: SourceLoc;
  /** Extra lines printed after the caret, e.g. "note: the block was called here". */
  readonly notes?: readonly string[];
}

/**
 * Thrown for mistakes in user input (exit code 2), and for runs that failed on valid input in a
 * way the user must hear about, such as a NaN in the output (exit code 1); carries one or more
 * diagnostics. Either way the CLI prints them, never a stack trace.
 */
export class UserError extends Error {
  readonly diagnostics: readonly Diagnostic[];
  readonly exitCode: 1 | 2;

  constructor(diagnostics: Diagnostic | readonly Diagnostic[], exitCode: 1 | 2 = 2) {
    const list = Array.isArray(diagnostics) ? diagnostics : [diagnostics as Diagnostic];
    super(list.map((d) => d.message).join('\n'));
    this.name = 'UserError';
    this.diagnostics = list;
    this.exitCode = exitCode;
  }
}

/** Shorthand for a located or unlocated user error. */
export function userError(message: string, loc?: SourceLoc, notes?: readonly string[]): UserError {
  return new UserError({ message, loc, notes });
}

/** A run on valid input that produced no valid result (exit code 1). */
export function runFailure(message: string, notes?: readonly string[]): UserError {
  return new UserError({ message, notes }, 1);
}

/** Reads source text by file name, so diagnostics can quote the offending line. */
export type SourceLookup = (file: string) => string | undefined;

/**
 * Renders a diagnostic the way rustc does:
 *
 *   error: unknown op 'conv3d'
 *    --> models/x.cnx:4:5
 *     |
 *   4 |     conv3d(8, 8)
 *     |     ^^^^^^
 */
export function formatDiagnostic(d: Diagnostic, sources: SourceLookup): string {
  // Messages quote user text (assert messages, tensor and file names), which must not reach the
  // terminal as escape sequences: control characters are shown escaped ("\x1b"), except the
  // line breaks of a multi-line message. A quoted source line keeps one column per character.
  const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
  const escape = (text: string) => text.replace(CONTROL, (c) => `\\u{${c.charCodeAt(0).toString(16)}}`);
  const lines = [`error: ${escape(d.message)}`];
  // The arrow, bars and notes line up with the line number's width, as in rustc.
  const gutter = ' '.repeat(d.loc ? String(d.loc.line).length : 1);
  if (d.loc) {
    const { file, line, col, length } = d.loc;
    lines.push(`${gutter}--> ${escape(file).replace(/[\n\t]/g, ' ')}:${line}:${col}`);
    const text = sources(file)?.split(/\r?\n/)[line - 1];
    if (text !== undefined) {
      const shown = text.replace(/\t/g, ' ').replace(CONTROL, '\uFFFD');
      const width = Math.max(1, Math.min(length, shown.length - col + 1));
      lines.push(`${gutter} |`);
      lines.push(`${line} | ${shown}`);
      lines.push(`${gutter} | ${' '.repeat(Math.max(0, col - 1))}${'^'.repeat(width)}`);
    }
  }
  for (const note of d.notes ?? []) lines.push(`${gutter} = note: ${escape(note).replace(/\n/g, '\\n')}`);
  return lines.join('\n');
}
