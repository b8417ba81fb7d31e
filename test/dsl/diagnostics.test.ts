// Every kind of mistake a user can make in a .cnx file, and what the compiler says about it:
// the message, the exact line:col it points at, and (through the CLI) the rustc-style text.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { elaborate, selectModel } from '../../src/dsl/elaborate.js';
import { displayPath, loadProgram } from '../../src/dsl/load.js';
import { formatDiagnostic, UserError, type Diagnostic } from '../../src/util/diagnostics.js';

const v2Path = fileURLToPath(new URL('../../models/convnextv2.cnx', import.meta.url));
/** `import "@V2@"` in a case's source imports the real ConvNeXt V2 family. */
const V2 = '@V2@';

interface Case {
  readonly name: string;
  /** The entry file's text, or several files of which `main.cnx` is the entry. */
  readonly source: string | Readonly<Record<string, string>>;
  /** Input height and width (the CLI's --size). */
  readonly size?: number;
  readonly message: RegExp;
  /** `file:line:col`; the file is one of the case's, or V2 for the real family. */
  readonly at: string;
  /** How many characters the caret underlines, where that matters. */
  readonly length?: number;
  /** Each must match some note of the diagnostic. */
  readonly notes?: readonly RegExp[];
}

const scratchDirs: string[] = [];
afterAll(() => scratchDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** Writes the case's files to a fresh directory, so imports resolve among them only. */
function writeCase(source: Case['source']): string {
  const dir = mkdtempSync(join(tmpdir(), 'convc-diag-'));
  scratchDirs.push(dir);
  const files = typeof source === 'string' ? { 'main.cnx': source } : source;
  for (const [name, text] of Object.entries(files)) {
    writeFileSync(join(dir, name), text.replaceAll(V2, v2Path.replace(/\\/g, '/')));
  }
  return dir;
}

/** Loads, checks and elaborates the case; returns its diagnostics (it must fail as a UserError). */
function diagnose(source: Case['source'], size = 224): { diagnostics: readonly Diagnostic[]; dir: string } {
  const dir = writeCase(source);
  const entry = join(dir, 'main.cnx');
  try {
    const program = loadProgram(entry);
    elaborate(program, selectModel(program, undefined, entry), { batch: 1, height: size, width: size });
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    return { diagnostics: error.diagnostics, dir };
  }
  throw new Error('expected a UserError, but the model compiled');
}

function position(d: Diagnostic): string {
  expect(d.loc, `'${d.message}' has no location`).toBeDefined();
  return `${d.loc!.file}:${d.loc!.line}:${d.loc!.col}`;
}

function expectedPosition(at: string, dir: string): string {
  const [file, line, col] = at.split(':');
  return `${displayPath(file === V2 ? v2Path : join(dir, file))}:${line}:${col}`;
}

const family = (body: string, args = '3') => `family F(c) {\n  input(c)\n${body}\n}\nmodel m = F(${args})\n`;

const cases: readonly Case[] = [
  // Syntax.
  { name: 'an unterminated string', source: 'family F(c) {\n  input(c)\n  let s = "abc\n}\n', message: /^unterminated string$/, at: 'main.cnx:3:11' },
  { name: 'a stray character', source: family('  act: gelu() ?'), message: /^unexpected character '\?'$/, at: 'main.cnx:3:15', length: 1 },
  { name: "a missing ')'", source: family('  conv: conv2d(c, 8, kernel=3\n  act: gelu()'), message: /^expected '\)' but found 'act'$/, at: 'main.cnx:4:3' },
  { name: "a missing '}' at the end of the file", source: 'family F(c) {\n  input(c)\n', message: /^expected '\}' but found the end of the file$/, at: 'main.cnx:2:11' },
  { name: 'an operator with no operand', source: family('  let x = 3 + * 4'), message: /^expected an expression but found '\*'$/, at: 'main.cnx:3:15' },
  { name: 'a statement outside any definition', source: 'input(3)\n', message: /^unexpected 'input'; expected 'import', 'block', 'family' or 'model'$/, at: 'main.cnx:1:1', length: 5 },
  { name: "a missing ':' after a weight name", source: family('  norm layernorm(c)'), message: /^expected ':', '\{' or '\(' but found 'layernorm'$/, at: 'main.cnx:3:8' },
  { name: "a model line without '='", source: 'model m F(3)\n', message: /^expected '=' but found 'F'$/, at: 'main.cnx:1:9' },
  { name: 'a dotted name called without a colon', source: family('  a.b(c)'), message: /a call needs an op or block name here; .*`name: op\(\.\.\.\)`/, at: 'main.cnx:3:3', length: 3 },

  // Names.
  { name: 'an unknown op', source: family('  norm: layernorn(c)'), message: /^unknown op or block 'layernorn'; did you mean 'layernorm'\?$/, at: 'main.cnx:3:9', length: 9 },
  {
    name: 'an unknown variable',
    source: 'block B(dim) {\n  norm: layernorm(dims)\n}\nfamily F(c) {\n  input(c)\n  b: B(c)\n}\nmodel m = F(3)\n',
    message: /^'dims' is not defined; did you mean 'dim'\?$/,
    at: 'main.cnx:2:19',
    length: 4,
  },
  { name: 'an unknown function', source: 'family F(c) {\n  input(lenn([c]))\n}\nmodel m = F(3)\n', message: /^unknown function 'lenn'; did you mean 'len'\?$/, at: 'main.cnx:2:9' },
  {
    name: 'an unknown family',
    source: `import "${V2}"\nmodel m = ConvNextV2(depths=[1, 1, 1, 1], dims=[8, 16, 32, 64])\n`,
    message: /^unknown family 'ConvNextV2'; did you mean 'ConvNeXtV2'\?$/,
    at: 'main.cnx:2:11',
    notes: [/families in scope: ConvNeXtV2/],
  },
  {
    name: 'a family used without importing it',
    source: 'model m = ConvNeXtV2(depths=[1, 1, 1, 1], dims=[8, 16, 32, 64])\n',
    message: /^unknown family 'ConvNeXtV2'$/,
    at: 'main.cnx:1:11',
    notes: [/did you forget an `import`\?/],
  },
  {
    name: 'an unknown block',
    source: `import "${V2}"\n${family('  b: ConvNeXtV2Blok(c)', '8')}`,
    message: /^unknown op or block 'ConvNeXtV2Blok'; did you mean 'ConvNeXtV2Block'\?$/,
    at: 'main.cnx:4:6',
  },
  {
    name: 'a family called as a statement',
    source: `import "${V2}"\n${family('  net: ConvNeXtV2([1], [8])')}`,
    message: /^'ConvNeXtV2' is a family; families are instantiated by a model line/,
    at: 'main.cnx:4:8',
  },
  { name: 'a model line naming a block', source: 'block B(c) {\n  act: gelu()\n}\nmodel m = B(3)\n', message: /^'B' is a block, but a model line needs a family$/, at: 'main.cnx:4:11' },
  { name: "'add' called directly", source: family('  add()'), message: /^'add' cannot be called directly; a residual connection is written `residual \{ \.\.\. \}`$/, at: 'main.cnx:3:3' },
  {
    name: 'a block defined twice',
    source: `block B(c) {\n  act: gelu()\n}\nblock B(d) {\n  act: gelu()\n}\n${family('  b: B(c)')}`,
    message: /^'B' is defined twice$/,
    at: 'main.cnx:4:7',
    notes: [/^first defined at .*main\.cnx:1:7$/],
  },
  {
    name: 'a block that an import already defines',
    source: `import "${V2}"\nblock ConvNeXtV2Block(dim) {\n  act: gelu()\n}\nmodel m = ConvNeXtV2(depths=[1, 1, 1, 1], dims=[8, 16, 32, 64])\n`,
    message: /^'ConvNeXtV2Block' is defined twice$/,
    at: 'main.cnx:2:7',
    notes: [/^first defined at .*models[/\\]convnextv2\.cnx:8:7$/],
  },
  { name: 'a model defined twice', source: 'family F(c) {\n  input(c)\n}\nmodel m = F(3)\nmodel m = F(4)\n', message: /^model 'm' is defined twice$/, at: 'main.cnx:5:7' },
  { name: 'a parameter declared twice', source: `block B(c, c) {\n  act: gelu()\n}\n${family('  b: B(c, c)')}`, message: /^parameter 'c' is declared twice$/, at: 'main.cnx:1:12' },
  { name: 'an import of a missing file', source: 'import "nothere.cnx"\nmodel m = F(3)\n', message: /^cannot read '.*nothere\.cnx': no such file$/, at: 'main.cnx:1:8', length: 13 },
  {
    name: 'an import cycle',
    source: { 'main.cnx': 'import "a.cnx"\nmodel m = F(3)\n', 'a.cnx': 'import "b.cnx"\n', 'b.cnx': '# b closes the loop\nimport "a.cnx"\n' },
    message: /^import cycle: .*a\.cnx -> .*b\.cnx -> .*a\.cnx$/,
    at: 'b.cnx:2:8',
  },
  {
    name: 'a syntax error in an imported file',
    source: { 'main.cnx': 'import "lib.cnx"\nmodel m = F(3)\n', 'lib.cnx': 'family F(c) {\n  input(c)\n  act: gelu(\n}\n' },
    message: /^expected '\)' but found '\}'$/,
    at: 'lib.cnx:4:1',
  },

  // Arity.
  { name: 'too many arguments to an op', source: family('  act: gelu(c)'), message: /^gelu takes 0 arguments, but more were given$/, at: 'main.cnx:3:13', notes: [/^signature: gelu\(\)$/] },
  {
    name: 'too many arguments to a block',
    source: `import "${V2}"\n${family('  b: ConvNeXtV2Block(c, false, 2)', '8')}`,
    message: /^ConvNeXtV2Block takes 2 arguments, but more were given$/,
    at: 'main.cnx:4:32',
    notes: [/^signature: ConvNeXtV2Block\(dim, grn_over_batch=\.\.\.\)$/],
  },
  {
    name: 'a missing required argument',
    source: family('  conv: conv2d(c, kernel=3)'),
    message: /^conv2d is missing argument 'out'$/,
    at: 'main.cnx:3:9',
    notes: [/^signature: conv2d\(in, out, kernel, stride=\.\.\., padding=\.\.\., groups=\.\.\., bias=\.\.\.\)$/],
  },
  { name: 'an unknown keyword', source: family('  conv: conv2d(c, c, kernal=3)'), message: /^conv2d has no parameter 'kernal'; did you mean 'kernel'\?$/, at: 'main.cnx:3:22', length: 6 },
  { name: 'a keyword given twice', source: family('  conv: conv2d(c, c, kernel=3, kernel=5)'), message: /^'kernel' is given twice$/, at: 'main.cnx:3:32' },
  { name: 'a positional argument after a keyword', source: family('  conv: conv2d(c, out=c, 3)'), message: /^a positional argument cannot follow a keyword argument$/, at: 'main.cnx:3:26' },
  {
    name: 'a misspelt family parameter on a model line',
    source: `import "${V2}"\nmodel m = ConvNeXtV2(depths=[1, 1, 1, 1], dim=[8, 16, 32, 64])\n`,
    message: /^ConvNeXtV2 has no parameter 'dim'; did you mean 'dims'\?$/,
    at: 'main.cnx:2:43',
    notes: [/^signature: ConvNeXtV2\(depths, dims, classes=\.\.\., in_chans=\.\.\.\)$/],
  },

  // Types.
  { name: 'a list where an integer is expected', source: family('  conv: conv2d(c, [c, c], kernel=3)'), message: /^conv2d's 'out' needs an integer, but this is a list \(\[3, 3\]\)$/, at: 'main.cnx:3:19', length: 6 },
  {
    name: 'a float where an integer is expected',
    source: family('  conv: conv2d(c, c * 1.5, kernel=3)', '4'),
    message: /^conv2d's 'out' needs an integer, but this is a float \(6\.0\)$/,
    at: 'main.cnx:3:19',
    length: 7,
  },
  { name: 'a float loop bound', source: family('  for i in 0..c / 2 {\n    act: gelu()\n  }', '4'), message: /^a loop range needs integers, but its end is a float \(2\.0\)$/, at: 'main.cnx:3:15', length: 5 },
  { name: 'an integer as a condition', source: family('  if c {\n    act: gelu()\n  }', '4'), message: /^'if' needs a bool \(true or false\), but this is an integer \(4\)$/, at: 'main.cnx:3:6' },
  { name: 'indexing a non-list', source: 'family F(c) {\n  input(c[0])\n}\nmodel m = F(4)\n', message: /^only lists can be indexed, but this is an integer \(4\)$/, at: 'main.cnx:2:9' },
  { name: 'an index out of range', source: 'family F(dims) {\n  input(dims[4])\n}\nmodel m = F([3, 8])\n', message: /^index 4 is out of range for a list of length 2 \(\[3, 8\]\)$/, at: 'main.cnx:2:13' },
  { name: 'a division by zero', source: 'family F(c) {\n  input(c // 0)\n}\nmodel m = F(3)\n', message: /^division by zero$/, at: 'main.cnx:2:9', length: 6 },
  { name: 'a float weight-name segment', source: family('  s.{1.5}: gelu()'), message: /^a name segment must be an integer or a string, but this is a float \(1\.5\)$/, at: 'main.cnx:3:5', length: 5 },

  // Shapes.
  { name: 'a conv2d channel mismatch', source: family('  conv: conv2d(8, 16, kernel=3)'), message: /^conv2d expects 8 channels, but its input has 3 \(shape \[1, 3, 224, 224\]\)$/, at: 'main.cnx:3:9' },
  { name: 'a kernel larger than the input', source: family('  conv: conv2d(c, 16, kernel=7)'), size: 4, message: /^conv2d with kernel \[7, 7\] and padding \[0, 0\] does not fit a 4x4 input; use a larger input size \(--size\)/, at: 'main.cnx:3:9' },
  {
    name: 'a real model at too small a size',
    source: `import "${V2}"\nmodel m = ConvNeXtV2(depths=[1, 1, 1, 1], dims=[8, 16, 32, 64])\n`,
    size: 16,
    message: /^conv2d with kernel \[2, 2\] and padding \[0, 0\] does not fit a 1x1 input/,
    at: `${V2}:43:12`,
    notes: [/^in model 'm' at .*main\.cnx:2:7$/],
  },
  {
    name: 'a residual body that changes the shape',
    source: family('  residual {\n    conv: conv2d(c, 2 * c, kernel=1)\n  }'),
    message: /^a residual connection needs its body to keep the shape \[1, 3, 224, 224\], but it gives \[1, 6, 224, 224\]$/,
    at: 'main.cnx:3:3',
    length: 8,
  },
  { name: 'groups that do not divide the channels', source: family('  conv: conv2d(c, 8, kernel=3, groups=3)', '4'), message: /^conv2d groups=3 must divide both in=4 and out=8$/, at: 'main.cnx:3:9' },
  { name: 'a second input', source: family('  input(c)'), message: /^the model already has an input; `input\(\.\.\.\)` may appear once$/, at: 'main.cnx:3:3' },

  // Weights.
  {
    name: 'a weight name used twice',
    source: family('  norm: layernorm(c)\n  norm: layernorm(c)'),
    message: /^weight 'norm\.weight' is defined twice; give this call another name$/,
    at: 'main.cnx:4:9',
    notes: [/^first defined at .*main\.cnx:3:9$/],
  },
  {
    name: 'a weight name repeated by a loop',
    source: family('  for i in 0..2 {\n    norm: layernorm(c)\n  }'),
    message: /^weight 'norm\.weight' is defined twice/,
    at: 'main.cnx:4:11',
    notes: [/earlier loop iteration.*`name\.\{i\}: \.\.\.`/],
  },
  { name: 'an op with weights but no name', source: family('  layernorm(c)'), message: /^layernorm has weights, so it needs a name for them: write `name: layernorm\(\.\.\.\)`$/, at: 'main.cnx:3:3' },

  // Asserts.
  {
    name: "a failed assert in the family",
    source: `import "${V2}"\nmodel m = ConvNeXtV2(depths=[1, 1, 1], dims=[8, 16, 32, 64])\n`,
    message: /^depths and dims need one entry per stage$/,
    at: `${V2}:21:3`,
    notes: [/^in model 'm' at .*main\.cnx:2:7$/],
  },
  { name: 'a failed assert without a message', source: 'family F(c) {\n  assert c % 2 == 0\n  input(c)\n}\nmodel m = F(3)\n', message: /^assertion failed$/, at: 'main.cnx:2:3' },
];

describe('diagnostics for bad .cnx files', () => {
  it('covers many distinct mistakes', () => {
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
    expect(cases.length).toBeGreaterThanOrEqual(20);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', (_, c) => {
    const { diagnostics, dir } = diagnose(c.source, c.size);
    // One mistake, one error: no cascade of follow-on complaints.
    expect(diagnostics.map((d) => d.message)).toHaveLength(1);
    const [d] = diagnostics;
    expect(d.message).toMatch(c.message);
    expect(position(d)).toBe(expectedPosition(c.at, dir));
    if (c.length !== undefined) expect(d.loc!.length).toBe(c.length);
    for (const note of c.notes ?? []) expect(d.notes ?? []).toContainEqual(expect.stringMatching(note));
  });
});

describe('reporting several errors at once', () => {
  it('recovers from syntax errors and reports each of three', () => {
    const source = [
      'family F(c) {',
      '  input(c', // 2: missing ')'
      '  norm: layernorm(c)',
      '}',
      '',
      'block B(c) {',
      '  let = 3', // 7: missing name
      '  act: gelu()',
      '}',
      '',
      'model m = F(3', // 11: missing ')' at the end of the file
      '',
    ].join('\n');
    const { diagnostics, dir } = diagnose(source);
    const file = displayPath(join(dir, 'main.cnx'));
    expect(diagnostics.map((d) => [d.message, position(d)])).toEqual([
      ["expected ')' but found 'norm'", `${file}:3:3`],
      ["expected a name but found '='", `${file}:7:7`],
      ["expected ')' but found the end of the file", `${file}:11:14`],
    ]);
  });

  it('reports lexical and syntax errors together', () => {
    const { diagnostics } = diagnose('family F(c) {\n  input(c\n  norm: layernorm(c)\n}\nblock B(c) {\n  act: gelu() $\n}\nmodel m = F(3, "abc)\n');
    expect(diagnostics.map((d) => `${d.loc!.line}:${d.loc!.col} ${d.message}`)).toEqual([
      "3:3 expected ')' but found 'norm'",
      "6:15 unexpected character '$'",
      '8:16 unterminated string',
    ]);
  });

  it('reports name errors in every block, not only the first', () => {
    const source = [
      'block A(c) {',
      '  n: layernorm(x)', // 2
      '}',
      'block B(c) {',
      '  foo()', // 5
      '}',
      'family F(c) {',
      '  input(c)',
      '  a: A(y)', // 9
      '}',
      'model m = Fam(3)', // 11
      '',
    ].join('\n');
    const { diagnostics } = diagnose(source);
    expect(diagnostics.map((d) => `${d.loc!.line}:${d.loc!.col} ${d.message}`)).toEqual([
      "2:16 'x' is not defined; did you mean 'c'?",
      "5:3 unknown op or block 'foo'",
      "9:8 'y' is not defined; did you mean 'c'?",
      "11:11 unknown family 'Fam'",
    ]);
  });

  it('reports every bad argument of one call', () => {
    const { diagnostics } = diagnose(family('  conv: conv2d(c, c, 3, 1, 0, 1, true, 9, kernal=3, kernal=4)'));
    expect(diagnostics.map((d) => `${d.loc!.col} ${d.message}`)).toEqual([
      '40 conv2d takes 7 arguments, but more were given',
      "43 conv2d has no parameter 'kernal'; did you mean 'kernel'?",
      "53 conv2d has no parameter 'kernal'; did you mean 'kernel'?",
    ]);
  });
});

describe('errors inside blocks', () => {
  it('name the chain of calls that led there, innermost first', () => {
    const source = [
      'block Inner(c) {',
      '  norm: layernorm(2 * c)', // 2: wrong channel count
      '}',
      'block Outer(c) {',
      '  inner: Inner(c)', // 5
      '}',
      'family F(c) {',
      '  input(c)',
      '  stage.{0}: Outer(c)', // 9
      '}',
      'model m = F(4)', // 11
      '',
    ].join('\n');
    const { diagnostics, dir } = diagnose(source);
    const file = displayPath(join(dir, 'main.cnx'));
    expect(diagnostics).toHaveLength(1);
    const [d] = diagnostics;
    expect(d.message).toBe('layernorm expects 8 channels, but its input has 4 (shape [1, 4, 224, 224])');
    expect(position(d)).toBe(`${file}:2:9`);
    expect(d.notes).toEqual([`in block 'Inner' called at ${file}:5:10`, `in block 'Outer' called at ${file}:9:14`, `in model 'm' at ${file}:11:7`]);
  });

  it('name the call chain for an evaluation error in a block argument default', () => {
    const source = `block B(c, k = [3][1]) {\n  act: gelu()\n}\n${family('  b: B(c)')}`;
    const { diagnostics, dir } = diagnose(source);
    const file = displayPath(join(dir, 'main.cnx'));
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0].message).toMatch(/^index 1 is out of range for a list of length 1/);
    expect(position(diagnostics[0])).toBe(`${file}:1:19`);
    expect(diagnostics[0].notes).toEqual([`in model 'm' at ${file}:8:7`]);
  });
});

function capturingIo() {
  let stdout = '';
  let stderr = '';
  return {
    io: { stdout: { write: (text: string) => (stdout += text) }, stderr: { write: (text: string) => (stderr += text) } },
    stdout: () => stdout,
    stderr: () => stderr,
  };
}

describe('convc compile on a bad file', () => {
  it('exits 2 with a rustc-style diagnostic, no stack trace and no output directory', async () => {
    const dir = writeCase(family('  conv: conv2d(8, 16, kernel=3)'));
    const file = join(dir, 'main.cnx');
    const outDir = join(dir, 'out');
    const capture = capturingIo();
    const code = await main(['compile', file, '-o', outDir], capture.io);
    const err = capture.stderr();
    expect(code).toBe(2);
    expect(capture.stdout()).toBe('');
    expect(err).toMatch(/^error: conv2d expects 8 channels, but its input has 3/);
    expect(err).toContain(` --> ${displayPath(file)}:3:9\n`);
    expect(err).toContain('3 |   conv: conv2d(8, 16, kernel=3)\n');
    // The caret sits under `conv2d` (column 9) and is as wide as it.
    expect(err).toContain('\n  |         ^^^^^^\n');
    expect(err).toContain("  = note: in model 'm' at ");
    expect(err).not.toMatch(/\n\s+at /);
    expect(err).not.toMatch(/internal error|Error:/);
    expect(existsSync(outDir)).toBe(false);
  });

  it('counts several errors and prints each with its own caret', async () => {
    const dir = writeCase('family F(c) {\n  input(c)\n  a: gelu(1)\n  b: layernorn(c)\n}\nmodel m = F(3)\n');
    const file = join(dir, 'main.cnx');
    const capture = capturingIo();
    const code = await main(['compile', file, '-o', join(dir, 'out')], capture.io);
    const err = capture.stderr();
    expect(code).toBe(2);
    expect(err).toContain(`${displayPath(file)}:3:11`);
    expect(err).toContain(`${displayPath(file)}:4:6`);
    expect(err).toContain(`\n  | ${' '.repeat(10)}^\n`);
    expect(err).toContain('\n  |      ^^^^^^^^^\n');
    expect(err).toMatch(/\n2 errors\n$/);
    expect(existsSync(join(dir, 'out'))).toBe(false);
  });
});

describe('formatDiagnostic', () => {
  const text = 'family F(c) {\n  input(c)\n  norm: layernorn(c)\n}\n';
  const lookup = (file: string) => (file === 'x.cnx' ? text : undefined);

  it('puts a caret as wide as the span under its column', () => {
    const out = formatDiagnostic({ message: "unknown op or block 'layernorn'", loc: { file: 'x.cnx', line: 3, col: 9, length: 9 }, notes: ['a note'] }, lookup);
    expect(out).toBe(
      [
        "error: unknown op or block 'layernorn'",
        ' --> x.cnx:3:9',
        '  |',
        '3 |   norm: layernorn(c)',
        '  |         ^^^^^^^^^',
        '  = note: a note',
      ].join('\n'),
    );
  });

  it('keeps at least one caret at the end of a line and never runs past it', () => {
    const atEnd = formatDiagnostic({ message: 'm', loc: { file: 'x.cnx', line: 2, col: 11, length: 1 } }, lookup);
    expect(atEnd.split('\n').at(-1)).toBe(`  | ${' '.repeat(10)}^`);
    const tooLong = formatDiagnostic({ message: 'm', loc: { file: 'x.cnx', line: 2, col: 3, length: 40 } }, lookup);
    expect(tooLong.split('\n').at(-1)).toBe('  |   ^^^^^^^^');
  });

  it('widens the gutter for long line numbers', () => {
    const long = `${'\n'.repeat(11)}  x: gelu(1)\n`;
    const out = formatDiagnostic({ message: 'm', loc: { file: 'y.cnx', line: 12, col: 11, length: 1 }, notes: ['n'] }, () => long);
    expect(out).toBe(['error: m', '  --> y.cnx:12:11', '   |', '12 |   x: gelu(1)', '   |           ^', '   = note: n'].join('\n'));
  });

  it('prints only the message and position when the source is unavailable', () => {
    expect(formatDiagnostic({ message: 'm', loc: { file: 'gone.cnx', line: 1, col: 1, length: 1 } }, lookup)).toBe('error: m\n --> gone.cnx:1:1');
    expect(formatDiagnostic({ message: 'no location' }, lookup)).toBe('error: no location');
  });
});

describe('checks that need no model line', () => {
  it('reports a mistake in a block even when the file defines no model', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'convc-nomodel-'));
    const file = join(dir, 'lib.cnx');
    writeFileSync(file, 'block B(dim) {\n  x: conv2(dim, dim, kernel=3)\n}\n');
    let errors: string[] = [];
    try {
      loadProgram(file);
    } catch (error) {
      errors = (error as UserError).diagnostics.map((d) => `${d.loc?.line}:${d.loc?.col} ${d.message}`);
    }
    expect(errors).toEqual(["2:6 unknown op or block 'conv2'; did you mean 'conv2d'?"]);
  });
});
