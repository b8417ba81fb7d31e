// Never hang, never crash: inputs that once looped for ever, overflowed the stack or ate memory
// end quickly in a located error, and sizes no target can represent are refused where written.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { elaborate, selectModel, type InputSize } from '../../src/dsl/elaborate.js';
import { loadProgram, MAX_DIAGNOSTICS, MAX_SOURCE_BYTES } from '../../src/dsl/load.js';
import { parseSource } from '../../src/dsl/parse.js';
import { formatDiagnostic, UserError, type Diagnostic } from '../../src/util/diagnostics.js';

const v2Path = fileURLToPath(new URL('../../models/convnextv2.cnx', import.meta.url)).replace(/\\/g, '/');
const dir = mkdtempSync(join(tmpdir(), 'convc-limits-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let counter = 0;
function write(text: string, name = `case${counter++}.cnx`): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** Loads and elaborates; returns the diagnostics of the UserError it must end in. */
function diagnose(text: string, size: InputSize = { batch: 1, height: 64, width: 64 }): { diagnostics: readonly Diagnostic[]; file: string } {
  const file = write(text);
  try {
    const program = loadProgram(file);
    elaborate(program, selectModel(program, undefined, file), size);
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    return { diagnostics: error.diagnostics, file };
  }
  throw new Error('expected a UserError, but the model compiled');
}

/** The case fails fast, with a first error at file:line:col matching `message`. */
function expectLocated(text: string, message: RegExp, line?: number, size?: InputSize): Diagnostic {
  const start = performance.now();
  const { diagnostics, file } = diagnose(text, size);
  expect(performance.now() - start).toBeLessThan(10_000);
  const first = diagnostics[0];
  expect(first.message).toMatch(message);
  expect(first.loc).toBeDefined();
  expect(Number.isInteger(first.loc!.line) && first.loc!.line >= 1).toBe(true);
  expect(Number.isInteger(first.loc!.col) && first.loc!.col >= 1).toBe(true);
  if (line !== undefined) {
    expect(first.loc!.file.endsWith(file.split(/[\\/]/).at(-1)!)).toBe(true);
    expect(first.loc!.line).toBe(line);
  }
  return first;
}

const family = (body: string, blocks = '') => `${blocks}\nfamily F() {\n  input(3)\n${body}\n}\nmodel m = F()\n`;

describe('unbounded work ends in a located error', () => {
  it('a loop over a huge range', () => {
    expectLocated(family('  for i in 0..1000000000 { let x = i }'), /a loop may run at most \d+ times/, 4);
  });

  it('a loop near 2^53, which i++ could never leave', () => {
    expectLocated(family('  for i in 9007199254740990..9007199254740991 + 1 { let x = i }'), /integer overflow/, 4);
    expectLocated(family('  for i in 0..9007199254740993 { }'), /too large/, 4);
  });

  it('a block that calls itself, directly, mutually, or a million deep', () => {
    expectLocated(family('  B()', 'block B() { B() }'), /block calls nest more than \d+ deep; does 'B' call itself/, 1);
    expectLocated(family('  A()', 'block A() { B() }\nblock B() { A() }'), /block calls nest more than \d+ deep/);
    expectLocated(family('  A(1000000)', 'block A(n) { if n > 0 { A(n - 1) } }'), /block calls nest more than \d+ deep/, 1);
  });

  it('a deep block-call chain lists a few frames, not all of them', () => {
    const d = expectLocated(family('  A()', 'block A() { A() }'), /nest more than/);
    expect(d.notes!.length).toBeLessThan(12);
    expect(d.notes!.some((n) => /more block calls/.test(n))).toBe(true);
  });

  it('work multiplied through blocks without any loop', () => {
    const calls = (callee: string) => Array(10).fill(`${callee}()`).join(' ');
    const blocks = ['A', 'B', 'C', 'D', 'E', 'G', 'H'].map((name, i, all) => `block ${name}() { ${i + 1 < all.length ? calls(all[i + 1]) : 'let x = 1'} }`).join('\n');
    expectLocated(family(`  ${calls('A')}`, blocks), /elaboration takes more than \d+ steps/);
  });

  it('nested loops whose product is huge', () => {
    expectLocated(family('  for i in 0..50000 { for j in 0..50000 { let x = i } }'), /more than \d+ steps/);
  });

  it('hundreds of nested parentheses, brackets, scopes, prefix operators and else-ifs', () => {
    expectLocated(family(`  let x = ${'('.repeat(300)}1${')'.repeat(300)}`), /nesting is more than \d+ levels deep/, 4);
    expectLocated(family(`  let x = ${'['.repeat(300)}1${']'.repeat(300)}`), /nesting is more than/, 4);
    expectLocated(family(`  ${'a { '.repeat(300)}${'} '.repeat(300)}`), /nesting is more than/, 4);
    expectLocated(family(`  let x = ${'-'.repeat(100_000)}1`), /nesting is more than/, 4);
    expectLocated(family(`  if false { } ${'else if false { } '.repeat(5000)}`), /nesting is more than/, 4);
  });

  it('thousands of terms in one expression', () => {
    expectLocated(family(`  let x = ${Array(5000).fill('1').join(' + ')}`), /this expression is more than \d+ operations deep/, 4);
  });

  it('max over a 200,000-element list', () => {
    expectLocated(family(`  let x = max([${Array(200_000).fill('1').join(',')}])`), /at most \d+ items/, 4);
  });

  it('max and min over long (allowed) lists do not overflow the stack', () => {
    const list = `[${Array(9000).fill('2').join(',')}]`;
    expectLocated(family(`  assert max(${list}) == 3, "max is 2"`), /^max is 2$/, 4);
  });

  it('a graph with too many nodes', () => {
    expectLocated(`import "${v2Path}"\nmodel m = ConvNeXtV2(depths=[20000, 1, 1, 1], dims=[8, 8, 8, 8])\n`, /more than \d+ ops/, undefined, { batch: 1, height: 32, width: 32 });
  });
});

describe('sizes a target cannot represent are located errors', () => {
  const v2 = (args: string) => `import "${v2Path}"\nmodel m = ConvNeXtV2(${args})\n`;

  it('dims past u32 or past 2^31 elements', () => {
    expectLocated(v2('depths=[1, 1, 1, 1], dims=[4294967296, 8, 8, 8]'), /beyond what a target can index/);
    expectLocated(v2('depths=[1, 1, 1, 1], dims=[100000, 8, 8, 8]'), /more than 2147483647 elements/);
  });

  it('negative depths are an error, not an empty stage', () => {
    expectLocated(v2('depths=[-5, 1, 1, 1], dims=[8, 8, 8, 8]'), /a loop range's end \(-5\) is before its start \(0\)/);
  });

  it('padding and kernel beyond i32', () => {
    expectLocated(family('  c: conv2d(3, 8, kernel=1, padding=2147483648)'), /'padding' is 2147483648, beyond/, 4);
    expectLocated(family('  c: conv2d(3, 8, kernel=[1, 9007199254740991])'), /'kernel' is 9007199254740991, beyond/, 4);
  });

  it('a float attribute that overflows f32, and non-finite literals', () => {
    expectLocated(family('  n: layernorm(3, eps=1e39)'), /'eps' is 1e\+39, which overflows a 32-bit float/, 4);
    expectLocated(family('  n: layernorm(3, eps=1e400)'), /number 1e400 is too large/, 4);
    expectLocated(family('  n: layernorm(3, eps=1e300 * 1e300)'), /float overflow/, 4);
    expectLocated(family('  n: layernorm(3, eps=1e-45)'), /underflows a 32-bit float/, 4);
  });

  it('batch and image sizes', () => {
    expectLocated(family(''), /input batch must be an integer from 1 to/, undefined, { batch: 2 ** 40, height: 8, width: 8 });
    expectLocated(family(''), /input height/, undefined, { batch: 1, height: 0, width: 8 });
    expectLocated(family('  c: conv2d(3, 8, kernel=1)'), /more than 2147483647 elements/, 3, { batch: 65536, height: 256, width: 256 });
  });
});

describe('smaller findings', () => {
  it('an import with no string is located at the import, once', () => {
    for (const text of ['import\nmodel m = F()\n', 'import model m = F()\n', 'import']) {
      const { diagnostics } = diagnose(text);
      expect(diagnostics).toHaveLength(1);
      expect(diagnostics[0].message).toMatch(/expected a string/);
      expect(Number.isInteger(diagnostics[0].loc!.line) && Number.isInteger(diagnostics[0].loc!.col)).toBe(true);
    }
  });

  it('a UTF-8 byte order mark is accepted', () => {
    const file = write(`\uFEFFimport "${v2Path}"\nmodel m = ConvNeXtV2(depths=[1, 1, 1, 1], dims=[8, 8, 8, 8])\n`);
    const program = loadProgram(file);
    expect(elaborate(program, 'm', { batch: 1, height: 32, width: 32 }).nodes.length).toBeGreaterThan(10);
    expect(parseSource('\uFEFFmodel m = F()', 'x.cnx').diagnostics).toEqual([]);
  });

  it('control characters in messages and quoted lines are escaped, not sent to the terminal', () => {
    const d = expectLocated(family('  assert false, "\x1b[31mred\x1b[0m\x07"'), /red/, 4);
    const text = formatDiagnostic(d, () => 'x\x1b[2Jy');
    expect(text).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);
    expect(text).toContain('\\u{1b}[31mred');
    const located = formatDiagnostic({ message: 'bad', loc: { file: 'f\x1b.cnx', line: 1, col: 2, length: 1 }, notes: ['n\x1b'] }, () => 'a\x1bb');
    expect(located).not.toMatch(/\x1b/);
    expect(located.split('\n').at(-2)).toBe('  |  ^');
  });

  it('a .cnx over the size cap, a directory, a FIFO and /dev/zero are refused with a clear error', () => {
    const big = write(`# ${'x'.repeat(MAX_SOURCE_BYTES)}\n`);
    expect(() => loadProgram(big)).toThrow(/at most 1048576|more than 1048576/);
    const sub = join(dir, 'sub.cnx');
    mkdirSync(sub, { recursive: true });
    expect(() => loadProgram(write(`import "sub.cnx"\n`))).toThrow(/directory/);
    if (process.platform !== 'win32') {
      const fifo = join(dir, 'pipe.cnx');
      execFileSync('mkfifo', [fifo]);
      const start = performance.now();
      expect(() => loadProgram(write(`import "pipe.cnx"\n`))).toThrow(/not a regular file/);
      expect(() => loadProgram(write(`import "/dev/zero"\n`))).toThrow(/not a regular file/);
      expect(performance.now() - start).toBeLessThan(5000);
    }
  });

  it('diagnostics stop after a cap, with a count of the rest', () => {
    const { diagnostics } = diagnose(Array(300).fill('model').join('\n'));
    expect(diagnostics).toHaveLength(MAX_DIAGNOSTICS + 1);
    expect(diagnostics.at(-1)!.message).toMatch(/^\d+ more errors not shown/);
  });
});

describe('names', () => {
  it('a megabyte-long weight name repeated in a loop is refused, not multiplied into gigabytes', () => {
    const long = 'n'.repeat(500_000);
    expectLocated(family(`  let s = "${long}"\n  for i in 0..1000 { w.{s}.{i}: linear(3, 3) }`), /weight name is \d+ characters long/, 5);
  });
});

describe('broken input of the largest allowed size', () => {
  it('a megabyte of random tokens stops after a bounded number of syntax errors', () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const words = ['a', '1', '(', ')', '{', '}', '[', ']', ',', ':', '=', '..', 'for', 'in', 'if', 'else', 'model', 'block', 'import', '"s"', '+', '-', '.', '\n'];
    let text = '';
    while (text.length < 1_000_000) text += `${words[Math.floor(random() * words.length)]} `;
    const start = performance.now();
    const { diagnostics } = diagnose(text);
    expect(performance.now() - start).toBeLessThan(10_000);
    expect(diagnostics.length).toBeLessThanOrEqual(MAX_DIAGNOSTICS + 1);
  });

  it('misspelt names hundreds of thousands of characters long get no slow "did you mean"', () => {
    const name = 'B'.repeat(200_000);
    const start = performance.now();
    const { diagnostics } = diagnose(family(`  ${name}X()`, `block ${name}() { }`));
    expect(performance.now() - start).toBeLessThan(10_000);
    expect(diagnostics[0].message).toMatch(/unknown op or block/);
  });
});
