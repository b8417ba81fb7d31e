// A mutational fuzzer for the front end, the passes and WGSL code generation.
//
//   npm run fuzz -- [--runs N] [--seconds T] [--seed S] [--start I] [--timeout-ms MS] [--out DIR]
//
// Input i depends only on the seed and i, so `--seed S --start I --runs 1` replays input I.
// Each input is a zoo file (models/*.cnx) mutated a few times: bytes flipped, tokens deleted,
// duplicated or swapped, the text truncated, numbers replaced by edge values (0, -1, 2**31,
// 2**53, 1e39, ...), huge lists, deep nesting or long expressions inserted, text spliced in
// from another zoo file. The result is loaded, elaborated, run through the fused pipeline and
// lowered to WGSL in a child process with a time limit. An input passes when it compiles or
// ends in a UserError whose locations are real positions; any other exception, a crash (out
// of memory, stack overflow in native code) or a timeout fails the run, and the input is saved
// under --out (default tmp/fuzz-failures) with the files it imports, ready for `convc inspect`.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seededRandom } from '../src/weights/random.js';

const MODELS_DIR = fileURLToPath(new URL('../models/', import.meta.url));
/** Where the mutated zoo lives, for the loader; never touched on disk. */
const VIRTUAL_DIR = resolve('/convc-fuzz/models');

interface Job {
  readonly index: number;
  /** File name -> text of the virtual models folder. */
  readonly files: Readonly<Record<string, string>>;
  readonly entry: string;
  readonly size: number;
  readonly batch: number;
  readonly mutated: string;
  readonly mutations: readonly string[];
  /** The passes, as `--passes` takes them: the fused pipeline mostly, sometimes any list. */
  readonly passes: readonly string[];
}

const PASS_NAMES = ['eliminate-drop-path', 'split-grn', 'fuse-epilogues', 'fuse-prologues', 'fold-layer-scale'];

/**
 * Graphs larger than this are not lowered to WGSL. Lowering is linear (about 3 s for the 16,000
 * nodes of 2000 blocks), but a mutation that turns `27` into `2727` near the 100,000-node limit
 * would still spend most of the per-input time limit generating kernel text rather than in the
 * front end fuzzed here. Counted and reported as "not lowered".
 */
const MAX_LOWERED_NODES = 20_000;

type Outcome = 'compiled' | 'not-lowered' | 'user-error' | 'internal' | 'bad-location' | 'timeout' | 'crash';

interface Result {
  readonly index: number;
  readonly outcome: Outcome;
  readonly detail: string;
  readonly ms: number;
}

// ---------------------------------------------------------------------------------------------
// The child: runs one job at a time, synchronously, and reports how it ended.

async function child(): Promise<void> {
  const { loadProgram } = await import('../src/dsl/load.js');
  const { elaborate, selectModel } = await import('../src/dsl/elaborate.js');
  const { pipelines, runPipeline } = await import('../src/passes/manager.js');
  const { lowerToWgsl } = await import('../src/backends/wgsl/lower.js');
  const { graphCost, humanCount } = await import('../src/ir/cost.js');
  const { graphToJson, printGraph } = await import('../src/ir/print.js');
  const { UserError } = await import('../src/util/diagnostics.js');

  const run = (job: Job): Omit<Result, 'ms'> => {
    const read = (path: string): string => {
      const name = path.startsWith(VIRTUAL_DIR) ? path.slice(VIRTUAL_DIR.length + 1) : undefined;
      const text = name === undefined ? undefined : job.files[name];
      if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file '${path}'`), { code: 'ENOENT' });
      return text;
    };
    try {
      const entry = join(VIRTUAL_DIR, job.entry);
      const program = loadProgram(entry, read, { note: () => {} } as never);
      const name = program.entryModels[0] ?? selectModel(program, undefined, entry);
      const graph = elaborate(program, name, { batch: job.batch, height: job.size, width: job.size });
      const fused = runPipeline(graph, job.passes.length > 0 ? job.passes : pipelines.fused);
      // What `convc inspect` prints, for both graphs.
      for (const g of [graph, fused]) {
        const cost = graphCost(g);
        humanCount(cost.macs);
        printGraph(g);
        JSON.stringify(graphToJson(g));
      }
      if (fused.nodes.length > MAX_LOWERED_NODES) return { index: job.index, outcome: 'not-lowered', detail: `${fused.nodes.length} nodes` };
      lowerToWgsl(fused);
      return { index: job.index, outcome: 'compiled', detail: `${fused.nodes.length} nodes` };
    } catch (error) {
      if (error instanceof UserError) {
        const bad = error.diagnostics.find((d) => d.loc && !(Number.isInteger(d.loc.line) && d.loc.line >= 1 && Number.isInteger(d.loc.col) && d.loc.col >= 1));
        if (bad) return { index: job.index, outcome: 'bad-location', detail: `${bad.message} at ${bad.loc!.file}:${bad.loc!.line}:${bad.loc!.col}` };
        return { index: job.index, outcome: 'user-error', detail: error.diagnostics[0]?.message.slice(0, 200) ?? '' };
      }
      return { index: job.index, outcome: 'internal', detail: (error as Error)?.stack ?? String(error) };
    }
  };

  process.on('message', (job: Job) => {
    const start = performance.now();
    const result = run(job);
    process.send!({ ...result, ms: Math.round(performance.now() - start) });
  });
  process.send!({ ready: true });
}

// ---------------------------------------------------------------------------------------------
// Mutations.

type Random = () => number;
const below = (r: Random, n: number) => Math.floor(r() * n);
const pick = <T>(r: Random, items: readonly T[]): T => items[below(r, items.length)];

const TOKEN = /\s+|#[^\n]*|"(?:[^"\\\n]|\\.)*"|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|[A-Za-z_][A-Za-z0-9_]*|\.\.|==|!=|<=|>=|\/\/|[^]/g;

function tokens(text: string): string[] {
  return text.match(TOKEN) ?? [];
}

const EDGE_NUMBERS = [
  '0', '-1', '1', '2', '3', '7', '-5', '2147483647', '2147483648', '4294967295', '4294967296', '9007199254740991',
  '9007199254740992', '9007199254740993', '99999999999999999999999', '1e39', '-1e39', '3.4028235e38', '1e-45', '1e308',
  '1e309', '0.0', '-0.0', '0.5', '1e-6', '65536', '100000', '1000000000',
];
const SNIPPETS = [
  'for', 'in', 'if', 'else', 'let', 'residual', 'assert', 'alias', 'import', 'model', 'family', 'block', 'not', 'and', 'or',
  'true', 'false', '{', '}', '(', ')', '[', ']', ',', ':', '=', '==', '..', '.', '+', '-', '*', '/', '//', '%', '"', '"x"',
  'dims', 'depths', 'len(dims)', 'max(dims)', 'input(3)', 'gelu()', 'drop_path()', 'x: linear(8, 8)', 'global_avg_pool()',
  'conv2d(8, 8, kernel=0)', 'layernorm(8, eps=0)', '\u0000', '\u001b[31m', '\uFEFF', '\u00e9', '\r\n', '\t', '#', '"\\n"',
];

type Mutator = (r: Random, parts: string[], others: readonly string[]) => string;

/** Whole statements, so the result often still parses and reaches the passes in a new shape. */
const STATEMENTS = [
  'global_avg_pool()', 'gelu()', 'drop_path()', 'drop_path(rate=0.5)', 'fz{n}: layernorm({d}, eps=1e-6)', 'fz{n}: grn({d})',
  'fz{n}: linear({d}, {d})', 'fz{n}: linear({d}, 4 * {d})', 'fz{n}: conv2d({d}, {d}, kernel=3, padding=1, groups={d})',
  'fz{n}: conv2d({d}, {d}, kernel=1)', 'fz{n}: conv2d({d}, {d}, kernel=2, stride=2)', 'fz{n}: layer_scale({d})',
  'residual { gelu() }', 'residual { fz{n}: linear({d}, {d}) }', 'residual { global_avg_pool() }', 'residual { fz{n}: layernorm({d}) }',
];
const DIMS = ['dim', 'dims[0]', 'dims[-1]', '4 * dim', 'in_chans', 'classes', '8', '1'];

/** Deep nesting, long expressions and huge lists: the shapes that once hung or overflowed. */
function pathological(r: Random): string {
  const n = pick(r, [10, 70, 300, 5000]);
  switch (below(r, 6)) {
    case 0:
      return `${'('.repeat(n)}1${')'.repeat(n)}`;
    case 1:
      return Array(n).fill('1').join(pick(r, [' + ', ' * ', ' - ', ' == ', ' and ']));
    case 2:
      return `[${Array(pick(r, [3, 1000, 20000])).fill(pick(r, ['1', '8', '1e39', '-1'])).join(', ')}]`;
    case 3:
      return '-'.repeat(n) + '1';
    case 4:
      return `${'a { '.repeat(Math.min(n, 300))}${'} '.repeat(Math.min(n, 300))}`;
    default:
      return `max([${Array(pick(r, [10, 20000])).fill('1').join(',')}])`;
  }
}

const MUTATORS: Readonly<Record<string, Mutator>> = {
  'flip-byte': (r, parts) => {
    const text = parts.join('');
    const at = below(r, text.length + 1);
    const char = r() < 0.5 ? String.fromCharCode(below(r, 256)) : String.fromCharCode(32 + below(r, 95));
    return text.slice(0, at) + char + text.slice(at + (r() < 0.7 ? 1 : 0));
  },
  'delete-token': (r, parts) => {
    const n = 1 + below(r, 3);
    parts.splice(below(r, parts.length), n);
    return parts.join('');
  },
  'duplicate-tokens': (r, parts) => {
    const at = below(r, parts.length);
    const span = parts.slice(at, at + 1 + below(r, 12));
    parts.splice(at, 0, ...span);
    return parts.join('');
  },
  'swap-tokens': (r, parts) => {
    const i = below(r, parts.length);
    const j = below(r, parts.length);
    [parts[i], parts[j]] = [parts[j], parts[i]];
    return parts.join('');
  },
  truncate: (r, parts) => {
    const text = parts.join('');
    return text.slice(0, below(r, text.length + 1));
  },
  'edge-number': (r, parts) => {
    const numbers = parts.flatMap((p, i) => (/^\d/.test(p) ? [i] : []));
    const at = numbers.length > 0 ? pick(r, numbers) : below(r, parts.length);
    parts[at] = pick(r, EDGE_NUMBERS);
    return parts.join('');
  },
  'small-number': (r, parts) => {
    // Odd but plausible sizes keep models compiling while changing every shape.
    const numbers = parts.flatMap((p, i) => (/^\d/.test(p) ? [i] : []));
    if (numbers.length > 0) parts[pick(r, numbers)] = r() < 0.8 ? String(below(r, 70)) : (r() * 10).toFixed(below(r, 4));
    return parts.join('');
  },
  'insert-statement': (r, parts) => {
    const lines = parts.flatMap((p, i) => (p.includes('\n') ? [i] : []));
    const at = lines.length > 0 ? pick(r, lines) + 1 : below(r, parts.length + 1);
    const statement = pick(r, STATEMENTS).replaceAll('{n}', String(below(r, 1000))).replaceAll('{d}', pick(r, DIMS));
    parts.splice(at, 0, `${statement}\n`);
    return parts.join('');
  },
  'swap-lines': (r, parts) => {
    const lines = parts.join('').split('\n');
    const i = below(r, lines.length);
    const j = below(r, lines.length);
    [lines[i], lines[j]] = [lines[j], lines[i]];
    return lines.join('\n');
  },
  'insert-snippet': (r, parts) => {
    parts.splice(below(r, parts.length + 1), 0, ` ${pick(r, SNIPPETS)} `);
    return parts.join('');
  },
  'insert-pathological': (r, parts) => {
    // Where an expression is likely: in place of a number or a name.
    const candidates = parts.flatMap((p, i) => (/^[\dA-Za-z]/.test(p) ? [i] : []));
    const at = candidates.length > 0 ? pick(r, candidates) : below(r, parts.length);
    parts[at] = pathological(r);
    return parts.join('');
  },
  'rename-identifier': (r, parts) => {
    const names = [...new Set(parts.filter((p) => /^[A-Za-z_]/.test(p)))];
    const at = parts.flatMap((p, i) => (/^[A-Za-z_]/.test(p) ? [i] : []));
    if (at.length > 0 && names.length > 0) parts[pick(r, at)] = pick(r, names);
    return parts.join('');
  },
  splice: (r, parts, others) => {
    const donor = tokens(pick(r, others));
    const from = below(r, donor.length);
    parts.splice(below(r, parts.length + 1), r() < 0.5 ? 0 : below(r, 8), ...donor.slice(from, from + 1 + below(r, 40)));
    return parts.join('');
  },
};
// Mutations that keep the text parseable more often get more turns, so more inputs reach the
// elaborator, the passes and the code generator.
const MUTATOR_NAMES = [...Object.keys(MUTATORS), 'edge-number', 'edge-number', 'small-number', 'small-number', 'small-number', 'rename-identifier', 'insert-pathological', 'insert-statement', 'insert-statement', 'insert-statement'];

function makeJob(seed: number, index: number, zoo: Readonly<Record<string, string>>): Job {
  // The weights' generator: small, fast and the same everywhere, so a seed replays a run.
  const r = seededRandom((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
  const names = Object.keys(zoo);
  const families = names.filter((n) => !n.includes('-'));
  const variants = names.filter((n) => n.includes('-'));
  // Mutate a variant (the usual case) or a family, then enter through a variant that uses it.
  const mutated = r() < 0.6 ? pick(r, variants) : pick(r, families);
  const entry = mutated.includes('-') ? mutated : pick(r, variants.filter((v) => v.startsWith(mutated.replace('.cnx', ''))));
  let text = zoo[mutated];
  const mutations: string[] = [];
  for (let i = 0, n = r() < 0.5 ? 1 : 1 + below(r, 4); i < n; i++) {
    const name = pick(r, MUTATOR_NAMES);
    text = MUTATORS[name](r, tokens(text), Object.values(zoo));
    mutations.push(name);
  }
  // `--passes` accepts any list, in any order, repeats included.
  const passes = r() < 0.7 ? [] : Array.from({ length: below(r, 7) }, () => pick(r, PASS_NAMES));
  return { index, files: { ...zoo, [mutated]: text }, entry, mutated, mutations, passes, size: pick(r, [224, 224, 64, 32, 7, 1]), batch: pick(r, [1, 1, 2]) };
}

// ---------------------------------------------------------------------------------------------
// The parent: hands jobs to a child, one at a time, and replaces it when it hangs or dies.

class Runner {
  private proc: ChildProcess | undefined;

  private async start(): Promise<ChildProcess> {
    const proc = fork(fileURLToPath(import.meta.url), ['--child'], {
      execArgv: [...process.execArgv, '--max-old-space-size=2048'],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    proc.stderr?.resume();
    await new Promise<void>((done, fail) => {
      proc.once('message', () => done());
      proc.once('exit', (code) => fail(new Error(`the fuzz child exited with ${code} before it was ready`)));
    });
    return proc;
  }

  async run(job: Job, timeoutMs: number): Promise<Result> {
    this.proc ??= await this.start();
    const proc = this.proc;
    const start = performance.now();
    return new Promise<Result>((done) => {
      const finish = (result: Result, kill: boolean) => {
        clearTimeout(timer);
        proc.removeListener('message', onMessage);
        proc.removeListener('exit', onExit);
        if (kill) {
          proc.kill('SIGKILL');
          this.proc = undefined;
        }
        done(result);
      };
      const onMessage = (result: Result) => finish(result, false);
      const onExit = (code: number | null, signal: string | null) =>
        finish({ index: job.index, outcome: 'crash', detail: `child exited (code ${code}, signal ${signal})`, ms: Math.round(performance.now() - start) }, true);
      const timer = setTimeout(() => finish({ index: job.index, outcome: 'timeout', detail: `no result within ${timeoutMs} ms`, ms: timeoutMs }, true), timeoutMs);
      proc.on('message', onMessage);
      proc.once('exit', onExit);
      proc.send(job);
    });
  }

  stop(): void {
    this.proc?.kill('SIGKILL');
    this.proc = undefined;
  }
}

function option(args: readonly string[], name: string): string | undefined {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : undefined;
}

function save(dir: string, seed: number, job: Job, result: Result): string {
  const folder = join(dir, `seed-${seed}-input-${job.index}`);
  mkdirSync(folder, { recursive: true });
  for (const [name, text] of Object.entries(job.files)) writeFileSync(join(folder, name), text);
  writeFileSync(
    join(folder, 'FAILURE.txt'),
    `${result.outcome} after ${result.ms} ms\nentry: ${job.entry} (mutated: ${job.mutated}; ${job.mutations.join(', ')})\n` +
      `size: ${job.size}x${job.size}, batch ${job.batch}, passes: ${job.passes.length > 0 ? job.passes.join(',') : 'fused'}\n` +
      `replay: npx convc inspect ${join(folder, job.entry)} --size ${job.size}x${job.size}${job.passes.length > 0 ? ` --passes ${job.passes.join(',')}` : ''}\n\n${result.detail}\n`,
  );
  return folder;
}

async function parent(args: readonly string[]): Promise<number> {
  const seed = Number(option(args, 'seed') ?? Math.floor(Math.random() * 2 ** 31));
  const runs = Number(option(args, 'runs') ?? (option(args, 'seconds') ? Infinity : 200));
  const seconds = Number(option(args, 'seconds') ?? Infinity);
  const timeoutMs = Number(option(args, 'timeout-ms') ?? 20_000);
  const first = Number(option(args, 'start') ?? 0);
  const out = resolve(option(args, 'out') ?? 'tmp/fuzz-failures');
  if (![seed, timeoutMs, first].every(Number.isSafeInteger) || !(runs > 0) || !(seconds > 0)) {
    console.error('usage: npm run fuzz -- [--runs N] [--seconds T] [--seed S] [--start I] [--timeout-ms MS] [--out DIR]');
    return 2;
  }
  const zoo: Record<string, string> = {};
  for (const name of readdirSync(MODELS_DIR).filter((n) => n.endsWith('.cnx')).sort()) zoo[name] = readFileSync(join(MODELS_DIR, name), 'utf8');

  console.log(`fuzz: seed ${seed}, ${Number.isFinite(runs) ? `${runs} runs` : 'no run limit'}${Number.isFinite(seconds) ? `, ${seconds} s` : ''}, ${timeoutMs} ms per input`);
  const counts: Record<Outcome, number> = { compiled: 0, 'not-lowered': 0, 'user-error': 0, internal: 0, 'bad-location': 0, timeout: 0, crash: 0 };
  const runner = new Runner();
  const started = performance.now();
  let slowest = 0;
  let slowestInput = '';
  let done = 0;
  try {
    for (let index = first; index < first + runs && performance.now() - started < seconds * 1000; index++) {
      const job = makeJob(seed, index, zoo);
      const result = await runner.run(job, timeoutMs);
      counts[result.outcome]++;
      if (result.ms > slowest) {
        slowest = result.ms;
        slowestInput = `input ${index}: ${job.mutated} (${job.mutations.join(', ')}), ${result.outcome}`;
      }
      done++;
      // On a terminal, where the run stands (long runs take minutes); nothing in a log.
      if (process.stderr.isTTY && done % 50 === 0) {
        const limit = Number.isFinite(runs) ? `/${runs}` : '';
        process.stderr.write(`\rfuzz: ${done}${limit} inputs, ${((performance.now() - started) / 1000).toFixed(0)} s, ${counts.internal + counts['bad-location'] + counts.timeout + counts.crash} failures`);
      }
      if (result.outcome !== 'compiled' && result.outcome !== 'not-lowered' && result.outcome !== 'user-error') {
        const folder = save(out, seed, job, result);
        if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
        console.log(`FAIL input ${index} (${result.outcome}, ${job.mutated}: ${job.mutations.join(', ')}) saved to ${folder}\n  ${result.detail.split('\n').slice(0, 4).join('\n  ')}`);
      }
    }
  } finally {
    runner.stop();
    if (process.stderr.isTTY && done >= 50) process.stderr.write('\n');
  }
  const failures = counts.internal + counts['bad-location'] + counts.timeout + counts.crash;
  const elapsed = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `fuzz: seed ${seed}: ${done} inputs in ${elapsed} s (slowest ${slowest} ms, ${slowestInput}): ${counts.compiled} compiled, ` +
      `${counts['not-lowered']} compiled but too large to lower (over ${MAX_LOWERED_NODES} nodes), ${counts['user-error']} user errors, ` +
      `${failures} failures (internal ${counts.internal}, bad location ${counts['bad-location']}, timeout ${counts.timeout}, crash ${counts.crash})`,
  );
  return failures > 0 ? 1 : 0;
}

if (process.argv.includes('--child')) {
  await child();
} else {
  process.exitCode = await parent(process.argv.slice(2));
}

