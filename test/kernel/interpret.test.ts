// The kernel interpreter must compute what a GPU computes and fault where a GPU would silently
// give wrong numbers: races, barrier divergence, out-of-bounds access.
import { describe, expect, it } from 'vitest';
import {
  abs,
  add,
  assign,
  barrier,
  cast,
  component,
  div,
  erf,
  eq,
  exp,
  f32,
  ge,
  group,
  gt,
  i32,
  if_,
  let_,
  load,
  load4,
  local,
  loop,
  lt,
  max,
  min,
  mul,
  neg,
  ref,
  reduceSum,
  registers,
  rem,
  rsqrt,
  select,
  sqrt,
  store,
  sub,
  u32,
  var_,
  vec4,
} from '../../src/kernel/build.js';
import { erfF32 } from '../../src/kernel/erf.js';
import type { BufferDecl, Expr, KernelProgram, SharedDecl, Stmt } from '../../src/kernel/ir.js';
import { expandReductions } from '../../src/kernel/expand.js';
import { interpret, KernelFault } from '../../src/kernel/interpret.js';

const f = Math.fround;

function buffer(name: string, length: number, access: BufferDecl['access'] = 'read'): BufferDecl {
  return { name, access, length, dtype: 'f32', layout: { axes: ['i'], shape: [length] }, ref: { kind: 'scratch', name, floats: length } };
}

function vectorBuffer(name: string, length: number, access: BufferDecl['access'] = 'read'): BufferDecl {
  return { ...buffer(name, length, access), vector: 4 };
}

function program(p: { body: readonly Stmt[]; buffers: readonly BufferDecl[]; shared?: readonly SharedDecl[]; workgroupSize: number; workgroups: number }): KernelProgram {
  return { name: 'test_kernel', summary: 'a test', covers: '', schedule: {}, shared: [], ...p };
}

/** Runs `p` and expects a KernelFault whose message matches. */
function faultOf(p: KernelProgram, memory: Record<string, Float32Array>, races = true): string {
  try {
    interpret(p, memory, { races });
  } catch (e) {
    expect(e).toBeInstanceOf(KernelFault);
    expect((e as Error).name).toBe('KernelFault');
    return (e as Error).message;
  }
  throw new Error('expected a KernelFault');
}

const index = add(mul(group, u32(64)), local);

describe('interpret: arithmetic', () => {
  it('runs an elementwise kernel in f32 steps, guarded by index < n', () => {
    const n = 200;
    const x = Float32Array.from({ length: n }, (_, i) => (i - 100) / 7);
    const y = new Float32Array(n + 8).fill(-1);
    const v = load('x', ref('i', 'u32'));
    const body: Stmt[] = [
      let_('i', index),
      if_(lt(ref('i', 'u32'), u32(n)), [
        let_('v', v),
        store('y', ref('i', 'u32'), add(mul(exp(neg(abs(ref('v', 'f32')))), rsqrt(add(mul(ref('v', 'f32'), ref('v', 'f32')), f32(1)))), div(sqrt(abs(ref('v', 'f32'))), f32(3)))),
      ]),
    ];
    interpret(program({ body, buffers: [buffer('x', n), buffer('y', n, 'read_write')], workgroupSize: 64, workgroups: 4 }), { x, y });
    for (let i = 0; i < n; i++) {
      const a = x[i];
      const want = f(f(f(Math.exp(-Math.abs(a))) * f(1 / Math.sqrt(f(f(a * a) + 1)))) + f(f(Math.sqrt(Math.abs(a))) / f(3)));
      expect(y[i]).toBe(want);
    }
    // The guard kept threads past n from writing.
    expect([...y.subarray(n)]).toEqual(new Array(8).fill(-1));
  });

  it('rounds every f32 step, not just the result', () => {
    // 1 + 2^-30 rounds to 1 in f32, so (1 + e) - 1 is 0 on a GPU though it is e in f64.
    const y = new Float32Array(1);
    const body = [store('y', u32(0), sub(add(f32(1), f32(2 ** -30)), f32(1)))];
    interpret(program({ body, buffers: [buffer('y', 1, 'read_write')], workgroupSize: 1, workgroups: 1 }), { y });
    expect(y[0]).toBe(0);
  });

  it('computes erf as erfF32', () => {
    const n = 256;
    const x = Float32Array.from({ length: n }, (_, i) => f((i - 128) / 32));
    const y = new Float32Array(n);
    const body = [store('y', index, erf(load('x', index)))];
    interpret(program({ body, buffers: [buffer('x', n), buffer('y', n, 'read_write')], workgroupSize: 64, workgroups: 4 }), { x, y });
    for (let i = 0; i < n; i++) expect(y[i]).toBe(erfF32(x[i]));
  });

  it('wraps u32 and i32 arithmetic as a GPU does', () => {
    const y = new Float32Array(10);
    const body: Stmt[] = [
      // 0u - 1u wraps to the largest u32, which is no valid index.
      store('y', u32(0), select(gt(sub(u32(0), u32(1)), u32(1000)), f32(1), f32(0))),
      store('y', u32(1), cast('f32', mul(u32(65536), u32(65537)))), // 2^32 + 65536 wraps to 65536
      store('y', u32(2), cast('f32', div(i32(-7), i32(2)))), // truncates: -3
      store('y', u32(3), cast('f32', rem(i32(-7), i32(2)))), // sign of the dividend: -1
      store('y', u32(4), cast('f32', cast('u32', i32(-1)))), // reinterprets: 2^32 - 1, rounded to f32
      store('y', u32(5), cast('f32', cast('i32', f32(-3.7)))), // truncates toward zero
      store('y', u32(6), cast('f32', cast('u32', f32(-3.7)))), // clamps at 0
      store('y', u32(7), cast('f32', cast('u32', f32(1e20)))), // clamps at 2^32 - 1
      store('y', u32(8), cast('f32', add(i32(0x7fffffff), i32(1)))), // wraps to -2^31
      store('y', u32(9), cast('f32', div(u32(7), u32(2)))),
    ];
    interpret(program({ body, buffers: [buffer('y', 10, 'read_write')], workgroupSize: 1, workgroups: 1 }), { y });
    expect([...y]).toEqual([1, 65536, -3, -1, 2 ** 32, -3, 0, 2 ** 32, -(2 ** 31), 3]);
  });

  it('handles padding checks with i32 indices that go negative', () => {
    // A 1-d 3-tap "convolution" with zero padding: out[o] = sum x[o + k - 1] where in range.
    const n = 16;
    const x = Float32Array.from({ length: n }, (_, i) => i + 1);
    const y = new Float32Array(n);
    const iy = ref('iy', 'i32');
    const body: Stmt[] = [
      var_('acc', f32(0)),
      loop('k', 0, 3, [
        let_('iy', sub(add(cast('i32', local), cast('i32', ref('k', 'u32'))), i32(1))),
        if_(ge(iy, i32(0)), [if_(lt(iy, i32(n)), [assign('acc', add(ref('acc', 'f32'), load('x', cast('u32', iy))))])]),
      ], { unroll: true }),
      store('y', local, ref('acc', 'f32')),
    ];
    interpret(program({ body, buffers: [buffer('x', n), buffer('y', n, 'read_write')], workgroupSize: n, workgroups: 1 }), { x, y });
    const want = Array.from({ length: n }, (_, o) => [o - 1, o, o + 1].filter((i) => i >= 0 && i < n).reduce((s, i) => s + x[i], 0));
    expect([...y]).toEqual(want);
  });

  it('scopes lets, vars, loop indices and register arrays per block and per thread', () => {
    const y = new Float32Array(8);
    const body: Stmt[] = [
      let_('v', f32(100)),
      registers('r', 4),
      var_('acc', f32(0)),
      loop('j', 0, 4, [
        // Shadows the outer v; a sibling block below declares v again.
        let_('v', cast('f32', ref('j', 'u32'))),
        store('r', ref('j', 'u32'), add(ref('v', 'f32'), cast('f32', local))),
        assign('acc', add(ref('acc', 'f32'), load('r', ref('j', 'u32')))),
      ]),
      if_(lt(local, u32(4)), [let_('v', f32(1)), assign('acc', add(ref('acc', 'f32'), ref('v', 'f32')))], [let_('v', f32(2)), assign('acc', add(ref('acc', 'f32'), ref('v', 'f32')))]),
      store('y', local, add(ref('acc', 'f32'), ref('v', 'f32'))),
    ];
    interpret(program({ body, buffers: [buffer('y', 8, 'read_write')], workgroupSize: 8, workgroups: 1 }), { y });
    // acc = (0+1+2+3) + 4 local, + 1 or 2 from the branch, + the outer v of 100.
    expect([...y]).toEqual(Array.from({ length: 8 }, (_, t) => 6 + 4 * t + (t < 4 ? 1 : 2) + 100));
  });

  it('faults on u32 division by zero', () => {
    const y = new Float32Array(4);
    const body = [store('y', local, cast('f32', div(u32(8), local)))];
    expect(faultOf(program({ body, buffers: [buffer('y', 4, 'read_write')], workgroupSize: 4, workgroups: 1 }), { y })).toMatch(/thread 0: u32 division 8 \/ 0/);
  });
});

describe('interpret: workgroups and barriers', () => {
  it.each([64, 16, 1])('reduceSum over %i lanes gives each thread its run\'s sum', (lanes) => {
    const size = 64;
    const groups = 3;
    const x = Float32Array.from({ length: size * groups }, (_, i) => (i * 7) % 13);
    const y = new Float32Array(size * groups);
    const body: Stmt[] = [reduceSum('total', load('x', index), lanes), store('y', index, ref('total', 'f32'))];
    interpret(program({ body, buffers: [buffer('x', size * groups), buffer('y', size * groups, 'read_write')], workgroupSize: size, workgroups: groups }), { x, y });
    for (let i = 0; i < size * groups; i++) {
      const start = i - (i % lanes);
      let sum = 0;
      for (let j = start; j < start + lanes; j++) sum += x[j];
      expect(y[i]).toBe(sum);
    }
  });

  it.each([8, 4, 2])("a subgroup reduceSum over %i lanes (subgroups of 8) gives each thread its run's sum", (lanes) => {
    const size = 64;
    const x = Float32Array.from({ length: size * 2 }, (_, i) => (i * 5) % 11);
    const y = new Float32Array(size * 2);
    const body: Stmt[] = [reduceSum('total', load('x', index), lanes, 'subgroup'), store('y', index, ref('total', 'f32'))];
    const p = { ...program({ body, buffers: [buffer('x', size * 2), buffer('y', size * 2, 'read_write')], workgroupSize: size, workgroups: 2 }), subgroupSize: 8 };
    // No workgroup memory: the shuffles exchange values directly.
    expect(expandReductions(p).shared).toEqual([]);
    interpret(p, { x, y });
    for (let i = 0; i < y.length; i++) {
      const start = i - (i % lanes);
      expect(y[i]).toBe(x.slice(start, start + lanes).reduce((a, b) => a + b, 0));
    }
  });

  it('refuses a subgroup shuffle in a program that names no subgroup size, or one past it', () => {
    const y = new Float32Array(64);
    const body: Stmt[] = [{ kind: 'shuffle-xor', into: 'v', value: load('y', local), mask: 8 }, store('y', local, ref('v', 'f32'))];
    const p = program({ body, buffers: [buffer('y', 64, 'read_write')], workgroupSize: 64, workgroups: 1 });
    expect(faultOf(p, { y })).toMatch(/subgroup shuffle by 8 with subgroups of undefined/);
    expect(faultOf({ ...p, subgroupSize: 8 }, { y })).toMatch(/subgroup shuffle by 8 with subgroups of 8/);
  });

  it('runs two reductions in a row (the shared arrays are reused safely)', () => {
    const x = Float32Array.from({ length: 64 }, (_, i) => i);
    const y = new Float32Array(64);
    const body: Stmt[] = [
      reduceSum('s', load('x', local), 64),
      reduceSum('q', mul(load('x', local), load('x', local)), 16),
      store('y', local, add(ref('s', 'f32'), ref('q', 'f32'))),
    ];
    interpret(program({ body, buffers: [buffer('x', 64), buffer('y', 64, 'read_write')], workgroupSize: 64, workgroups: 1 }), { x, y });
    for (let t = 0; t < 64; t++) {
      const start = t - (t % 16);
      let q = 0;
      for (let j = start; j < start + 16; j++) q += j * j;
      expect(y[t]).toBe(2016 + q);
    }
  });

  // Stage a tile in workgroup memory, read a neighbour's cell, then overwrite the tile and read again.
  function stagedTile(withFirstBarrier: boolean, withSecondBarrier: boolean): KernelProgram {
    const next = rem(add(local, u32(1)), u32(64));
    const body: Stmt[] = [
      store('tile', local, load('x', index)),
      ...(withFirstBarrier ? [barrier] : []),
      let_('a', load('tile', next)),
      ...(withSecondBarrier ? [barrier] : []),
      store('tile', local, mul(load('x', index), f32(10))),
      barrier,
      store('y', index, add(ref('a', 'f32'), load('tile', next))),
    ];
    return program({ body, buffers: [buffer('x', 128), buffer('y', 128, 'read_write')], shared: [{ name: 'tile', length: 64 }], workgroupSize: 64, workgroups: 2 });
  }
  const tileMemory = (): Record<string, Float32Array> => ({ x: Float32Array.from({ length: 128 }, (_, i) => i), y: new Float32Array(128) });

  it('runs a staged tile with its barriers correctly', () => {
    const memory = tileMemory();
    interpret(stagedTile(true, true), memory);
    for (let i = 0; i < 128; i++) {
      const g = i - (i % 64);
      const n = g + ((i + 1) % 64);
      expect(memory.y[i]).toBe(n + 10 * n);
    }
  });

  it('reports a missing barrier between a store and a neighbour\'s load as a race', () => {
    expect(faultOf(stagedTile(false, true), tileMemory())).toMatch(/workgroup 0, thread 1: race on tile\[1\] between threads 0 and 1/);
  });

  it('reports a missing barrier between a neighbour\'s load and the next store as a race', () => {
    // Thread 1 overwrites tile[1] after thread 0 read it in the same interval: write after read.
    expect(faultOf(stagedTile(true, false), tileMemory())).toMatch(/workgroup 0, thread 1: race on tile\[1\] between threads 0 and 1/);
  });

  it('lets races go unchecked when asked', () => {
    expect(() => interpret(stagedTile(false, true), tileMemory(), { races: false })).not.toThrow();
  });

  it('allows many threads to read a cell nobody wrote since the barrier', () => {
    const y = new Float32Array(64);
    const body: Stmt[] = [
      if_(lt(local, u32(1)), [store('tile', u32(0), f32(5))]),
      barrier,
      store('y', local, load('tile', u32(0))),
    ];
    interpret(program({ body, buffers: [buffer('y', 64, 'read_write')], shared: [{ name: 'tile', length: 1 }], workgroupSize: 64, workgroups: 1 }), { y });
    expect([...y]).toEqual(new Array(64).fill(5));
  });

  it('gives each workgroup fresh workgroup memory', () => {
    const y = new Float32Array(4);
    const body: Stmt[] = [
      store('y', group, load('acc', u32(0))),
      store('acc', u32(0), f32(9)),
    ];
    interpret(program({ body, buffers: [buffer('y', 4, 'read_write')], shared: [{ name: 'acc', length: 1 }], workgroupSize: 1, workgroups: 4 }), { y });
    expect([...y]).toEqual([0, 0, 0, 0]);
  });

  it('reports a barrier inside if (local < 32) as divergence', () => {
    const y = new Float32Array(64);
    const body: Stmt[] = [if_(lt(local, u32(32)), [barrier]), store('y', local, f32(1))];
    const p = program({ body, buffers: [buffer('y', 64, 'read_write')], workgroupSize: 64, workgroups: 1 });
    expect(faultOf(p, { y })).toMatch(/kernel test_kernel, workgroup 0, thread 0: barrier divergence: .*thread 32 has finished/);
  });

  it('reports a reduction that only some threads reach as divergence (its expanded barriers)', () => {
    const y = new Float32Array(64);
    const body: Stmt[] = [if_(lt(local, u32(32)), [reduceSum('s', f32(1), 16), store('y', local, ref('s', 'f32'))])];
    const p = program({ body, buffers: [buffer('y', 64, 'read_write')], workgroupSize: 64, workgroups: 1 });
    expect(faultOf(p, { y })).toMatch(/barrier divergence: thread 0 waits at barrier #0 while thread 32 has finished/);
  });

  it('reports threads waiting at different barriers as divergence, even the same barrier object', () => {
    const y = new Float32Array(64);
    const body: Stmt[] = [if_(lt(local, u32(32)), [barrier], [barrier]), store('y', local, f32(1))];
    const p = program({ body, buffers: [buffer('y', 64, 'read_write')], workgroupSize: 64, workgroups: 1 });
    expect(faultOf(p, { y })).toMatch(/barrier divergence: thread 32 waits at barrier #1 while thread 0 waits at barrier #0/);
  });

  it('accepts a barrier in a loop and a branch that every thread takes alike', () => {
    const y = new Float32Array(32);
    const body: Stmt[] = [
      store('s', local, f32(0)),
      loop('r', 0, 3, [
        barrier,
        let_('v', load('s', rem(add(local, u32(1)), u32(32)))),
        barrier,
        if_(lt(group, u32(1)), [store('s', local, add(ref('v', 'f32'), f32(1)))]),
      ]),
      barrier,
      store('y', local, load('s', local)),
    ];
    interpret(program({ body, buffers: [buffer('y', 32, 'read_write')], shared: [{ name: 's', length: 32 }], workgroupSize: 32, workgroups: 1 }), { y });
    expect([...y]).toEqual(new Array(32).fill(3));
  });
});

describe('interpret: memory faults', () => {
  const run = (body: Stmt[], shared: SharedDecl[] = []): string =>
    faultOf(program({ body, buffers: [buffer('x', 8), buffer('y', 8, 'read_write')], shared, workgroupSize: 4, workgroups: 3 }), { x: new Float32Array(8), y: new Float32Array(8) });

  it('faults on an out-of-bounds load, naming the workgroup and thread', () => {
    // Thread 3 of workgroup 1 is the first to read x[8].
    expect(run([store('y', u32(0), load('x', add(mul(group, u32(5)), local)))])).toMatch(/kernel test_kernel, workgroup 1, thread 3: load of x\[8\] out of bounds \(length 8\)/);
  });

  it('checks bounds against the declared length, not the array\'s', () => {
    const body = [store('y', local, load('x', add(local, u32(4))))];
    const p = program({ body, buffers: [buffer('x', 6), buffer('y', 8, 'read_write')], workgroupSize: 4, workgroups: 1 });
    expect(faultOf(p, { x: new Float32Array(64), y: new Float32Array(8) })).toMatch(/thread 2: load of x\[6\] out of bounds \(length 6\)/);
  });

  it('faults on a negative i32 index', () => {
    expect(run([store('y', u32(0), load('x', sub(cast('i32', local), i32(1))))])).toMatch(/workgroup 0, thread 0: load of x\[-1\]/);
  });

  it('faults on an out-of-bounds store', () => {
    expect(run([store('y', add(local, u32(6)), f32(1))])).toMatch(/thread 2: store to y\[8\] out of bounds/);
  });

  it('faults on out-of-bounds workgroup and register access', () => {
    expect(run([store('t', local, f32(1))], [{ name: 't', length: 2 }])).toMatch(/thread 2: store to t\[2\] out of bounds \(length 2\)/);
    expect(run([registers('r', 3), store('y', u32(0), load('r', local))])).toMatch(/thread 3: load of r\[3\] out of bounds \(length 3\)/);
  });

  it('faults on a store to a read-only buffer', () => {
    expect(run([store('x', local, f32(1))])).toMatch(/store to x, a read-only buffer/);
  });

  it('faults on undeclared memory and names', () => {
    expect(run([store('y', local, load('nowhere', local))])).toMatch(/memory nowhere is not declared/);
    expect(run([store('y', local, ref('ghost', 'f32'))])).toMatch(/ghost is used but not declared/);
    expect(run([let_('k', f32(1)), assign('k', f32(2))])).toMatch(/assignment to k, which is not a var/);
    // A let does not outlive its block.
    expect(run([if_(lt(local, u32(2)), [let_('z', f32(1))]), store('y', local, ref('z', 'f32'))])).toMatch(/z is used but not declared/);
  });

  it('passes on expansion\'s own errors', () => {
    // reduceSum over lanes that do not divide the workgroup is rejected by expansion itself.
    const p = program({ body: [reduceSum('s', f32(1), 8)], buffers: [], workgroupSize: 4, workgroups: 1 });
    expect(() => interpret(p, {})).toThrow(/reduces over 8 lanes/);
  });
});

describe('interpret: vectors', () => {
  const v4 = (name: string): Expr => ref(name, 'vec4f');

  it('loads vec4s, computes componentwise in f32 steps and stores vec4s', () => {
    const n = 256;
    const x = Float32Array.from({ length: n }, (_, k) => Math.sin(k * 1.3) * 5);
    const y = Float32Array.from({ length: n }, (_, k) => 1 + ((k * 5) % 7) / 3);
    const out = new Float32Array(n).fill(-7);
    const base = mul(add(mul(group, u32(16)), local), u32(4));
    const body: Stmt[] = [
      let_('a', load4('x', base)),
      let_('b', load4('y', base)),
      let_('s', add(v4('a'), v4('b'))),
      var_('m', min(mul(v4('s'), v4('a')), div(sub(v4('a'), v4('b')), v4('b')))),
      assign('m', max(v4('m'), vec4(f32(-1), f32(-2), component(v4('s'), 0), f32(0)))),
      store('out', base, v4('m')),
    ];
    const p = program({ body, buffers: [vectorBuffer('x', n), vectorBuffer('y', n), vectorBuffer('out', n, 'read_write')], workgroupSize: 16, workgroups: 4 });
    interpret(p, { x, y, out });
    for (let k = 0; k < n; k++) {
      const [a, b] = [x[k], y[k]];
      const sum = (j: number): number => f(x[j] + y[j]);
      const m = Math.min(f(sum(k) * a), f(f(a - b) / b));
      const other = [-1, -2, sum(k - (k % 4)), 0][k % 4];
      expect(out[k], `out[${k}]`).toBe(Math.max(m, other));
    }
  });

  it('mixes scalar and vector access on the same vector memory', () => {
    const out = new Float32Array(8).fill(-1);
    const body: Stmt[] = [
      // Scalar stores into a vector workgroup array, read back as vec4s after the barrier.
      store('tile', local, mul(cast('f32', local), f32(10))),
      barrier,
      if_(lt(local, u32(2)), [
        let_('v', load4('tile', mul(local, u32(4)))),
        store('out', mul(local, u32(4)), add(v4('v'), vec4(f32(1), f32(1), f32(1), f32(1)))),
        // A scalar load and store on the vector buffer just written.
        store('out', add(mul(local, u32(4)), u32(3)), load('out', add(mul(local, u32(4)), u32(1)))),
      ]),
    ];
    const p = program({ body, buffers: [vectorBuffer('out', 8, 'read_write')], shared: [{ name: 'tile', length: 8, vector: 4 }], workgroupSize: 8, workgroups: 1 });
    interpret(p, { out });
    expect([...out]).toEqual([1, 11, 21, 11, 41, 51, 61, 51]);
  });

  it('tracks races per element through vector access', () => {
    const out = new Float32Array(8);
    const body: Stmt[] = [
      if_(eq(local, u32(0)), [store('tile', u32(0), vec4(f32(1), f32(2), f32(3), f32(4)))]),
      store('out', local, load('tile', local)),
    ];
    const p = program({ body, buffers: [buffer('out', 8, 'read_write')], shared: [{ name: 'tile', length: 8, vector: 4 }], workgroupSize: 8, workgroups: 1 });
    expect(faultOf(p, { out })).toMatch(/thread 1: race on tile\[1\] between threads 0 and 1/);
  });

  const run = (body: Stmt[], options: { x?: Partial<BufferDecl>; shared?: SharedDecl[] } = {}): string =>
    faultOf(
      program({ body, buffers: [{ ...vectorBuffer('x', 8), ...options.x }, vectorBuffer('y', 8, 'read_write')], shared: options.shared ?? [], workgroupSize: 2, workgroups: 1 }),
      { x: new Float32Array(8), y: new Float32Array(8) },
    );
  const ones = vec4(f32(1), f32(1), f32(1), f32(1));

  it('faults on unaligned vector loads and stores', () => {
    expect(run([store('y', u32(0), load4('x', add(mul(local, u32(4)), u32(2))))])).toMatch(/thread 0: unaligned vector access: load4 of x\[2\]/);
    expect(run([store('y', mul(local, u32(3)), ones)])).toMatch(/thread 1: unaligned vector access: store4 to y\[3\]/);
    expect(run([store('t', local, ones)], { shared: [{ name: 't', length: 8, vector: 4 }] })).toMatch(/thread 1: unaligned vector access: store4 to t\[1\]/);
  });

  it('faults on vector access past the end', () => {
    expect(run([store('y', u32(0), load4('x', mul(add(local, u32(1)), u32(4))))])).toMatch(/thread 1: load4 of x\[8\.\.11\] out of bounds \(length 8\)/);
    expect(run([store('y', sub(cast('i32', local), i32(4)), ones)])).toMatch(/thread 0: store4 to y\[-4\.\.-1\] out of bounds/);
  });

  it('faults on vector access to memory not declared vector: 4', () => {
    expect(run([store('y', u32(0), load4('x', u32(0)))], { x: { vector: undefined } })).toMatch(/checked before running\): load4 of x, which is not declared vector: 4/);
    expect(run([store('t', u32(0), ones)], { shared: [{ name: 't', length: 8 }] })).toMatch(/store4 to t, which is not declared vector: 4/);
    expect(run([registers('r', 8), store('r', u32(0), ones)])).toMatch(/store4 to r, which is not declared vector: 4/);
  });

  it('rejects malformed vector declarations and expressions before running', () => {
    expect(run([], { x: { length: 6 } })).toMatch(/buffer x is vector: 4 but its length 6 is not a multiple of 4/);
    expect(run([], { shared: [{ name: 't', length: 6, vector: 4 }] })).toMatch(/workgroup array t is vector: 4 but its length 6/);
    const mixed: Expr = { kind: 'binary', type: 'vec4f', op: 'add', a: ones, b: f32(1) };
    expect(run([store('y', u32(0), mixed)])).toMatch(/add of vec4f and f32 as a vec4f/);
    const compared: Expr = { kind: 'binary', type: 'bool', op: 'lt', a: ones, b: ones };
    expect(run([if_(compared, [])])).toMatch(/lt of vec4f/);
    expect(run([store('y', u32(0), f32(1)), let_('v', ones), store('y', u32(0), ref('v', 'f32'))])).toMatch(/v is vec4f but used as f32/);
    // The builders refuse the same.
    expect(() => add(ones, f32(0))).toThrow(/internal: add of vec4f and f32/);
    expect(() => lt(ones, ones)).toThrow(/internal: lt of vec4f/);
    expect(() => component(f32(1), 0)).toThrow(/internal: component of f32/);
    expect(() => vec4(f32(1), f32(1), u32(1), f32(1))).toThrow(/internal: a vec4f part of type u32/);
  });
});

describe('interpret: speed', () => {
  it('runs a few hundred thousand statements with 256 threads well within a second', () => {
    const size = 256;
    const groups = 4;
    const n = size * groups;
    const x = Float32Array.from({ length: n }, (_, i) => (i % 17) / 4);
    const y = new Float32Array(n);
    const i = add(mul(group, u32(size)), local);
    const body: Stmt[] = [
      var_('acc', f32(0)),
      loop('k', 0, 64, [assign('acc', max(ref('acc', 'f32'), add(ref('acc', 'f32'), mul(load('x', i), cast('f32', ref('k', 'u32'))))))]),
      reduceSum('s', ref('acc', 'f32'), 64),
      reduceSum('m', ref('s', 'f32'), 256),
      store('y', i, ref('m', 'f32')),
    ];
    const start = performance.now();
    interpret(program({ body, buffers: [buffer('x', n), buffer('y', n, 'read_write')], workgroupSize: size, workgroups: groups }), { x, y });
    const ms = performance.now() - start;
    expect(ms).toBeLessThan(1000);
    // acc = x * (0 + 1 + ... + 63) per thread (exact in f32 here); each s is a 64-thread sum,
    // so m, over 256 threads, is 64 times the group's sum.
    for (let g = 0; g < groups; g++) {
      let sum = 0;
      for (let t = 0; t < size; t++) sum += x[g * size + t] * 2016;
      expect(y[g * size]).toBe(64 * sum);
    }
  });
});
