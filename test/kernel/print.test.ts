// The target-neutral kernel printout behind `convc inspect --kernel N`: its header, its
// unexpanded reductions and its expression syntax, which readers must not misread.
import { describe, expect, it } from 'vitest';
import {
  add,
  and,
  barrier,
  cast,
  comment,
  component,
  eq,
  erf,
  f32,
  ge,
  group,
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
  reduceSum,
  ref,
  registers,
  select,
  store,
  sub,
  u32,
  var_,
  vec4,
  assign,
} from '../../src/kernel/build.js';
import type { KernelProgram, Stmt } from '../../src/kernel/ir.js';
import { namedConstants, printKernel } from '../../src/kernel/print.js';

const index = add(mul(group, u32(64, 'WORKGROUP_SIZE')), local);

function program(body: readonly Stmt[], extra: Partial<KernelProgram> = {}): KernelProgram {
  return {
    name: 'layernorm_gelu',
    summary: 'LayerNorm then GELU',
    covers: '%7 layernorm "stages.0.0.norm", %8 gelu',
    buffers: [
      { name: 'x', access: 'read', length: 4096, dtype: 'f32', layout: { axes: ['n', 'h', 'w', 'c'], shape: [1, 8, 8, 64] }, ref: { kind: 'value', id: 12 } },
      { name: 'w', access: 'read', length: 64, dtype: 'f32', layout: { axes: ['i'], shape: [64] }, ref: { kind: 'weight', key: 'stages.0.0.pwconv1.weight' } },
      { name: 'affine', access: 'read', length: 128, dtype: 'f32', layout: { axes: ['i'], shape: [128] }, ref: { kind: 'weight-group', keys: ['norm.weight', 'norm.bias'] } },
      { name: 'tmp', access: 'read', length: 16, dtype: 'f32', layout: { axes: ['i'], shape: [16] }, ref: { kind: 'scratch', name: 'partials', floats: 16 } },
      { name: 'image', access: 'read', length: 3, dtype: 'f32', layout: { axes: ['i'], shape: [3] }, ref: { kind: 'model-input', name: 'input' } },
      { name: 'out', access: 'read_write', length: 4096, dtype: 'f16', layout: { axes: ['n', 'c', 'h', 'w'], shape: [1, 64, 8, 8] }, ref: { kind: 'model-output', name: 'output' } },
    ],
    shared: [{ name: 'tile', length: 64 }],
    workgroupSize: 64,
    workgroups: 64,
    schedule: { strategy: 'row-per-workgroup', vec: 4, tree: true },
    body,
    ...extra,
  };
}

const v = ref('v', 'f32');
const body: Stmt[] = [
  comment('one row per workgroup'),
  let_('v', load('x', index)),
  reduceSum('mean', mul(v, f32(0.015625, 'INV_C')), 64),
  let_('g', mul(erf(sub(v, ref('mean', 'f32'))), f32(1e-6, 'EPS'))),
  registers('acc', 4),
  loop('k', 0, 4, [store('acc', ref('k', 'u32'), load('w', ref('k', 'u32')))], { unroll: true }),
  var_('s', f32(0)),
  loop('c', local, u32(64, 'WORKGROUP_SIZE'), [assign('s', add(ref('s', 'f32'), load('tile', ref('c', 'u32'))))], { step: 64 }),
  let_('p', sub(cast('i32', local), i32(3))),
  let_('inside', and(ge(ref('p', 'i32'), i32(0)), lt(ref('p', 'i32'), i32(56)))),
  let_('q', cast('u32', min(max(ref('p', 'i32'), i32(0)), i32(55)))),
  barrier,
  if_(
    eq(local, u32(0)),
    [store('out', group, select(ref('inside', 'bool'), add(neg(ref('g', 'f32')), load('x', ref('q', 'u32'))), f32(0)))],
    [store('out', index, ref('s', 'f32'))],
  ),
];

describe('printKernel', () => {
  it('prints the whole program: header, unexpanded reduce, loops, stores', () => {
    expect(printKernel(program(body))).toBe(
      [
        'kernel layernorm_gelu',
        '  summary: LayerNorm then GELU',
        '  covers: %7 layernorm "stages.0.0.norm", %8 gelu',
        '  schedule: strategy=row-per-workgroup, vec=4, tree=true',
        '  dispatch: 64 x 64 (workgroups x threads)',
        '  buffers:',
        '    0 x: f32[4096] [n=1, h=8, w=8, c=64] read <- value %12',
        '    1 w: f32[64] [i=64] read <- weight stages.0.0.pwconv1.weight',
        '    2 affine: f32[128] [i=128] read <- weights [norm.weight, norm.bias]',
        '    3 tmp: f32[16] [i=16] read <- scratch partials',
        '    4 image: f32[3] [i=3] read <- model input input',
        '    5 out: f16[4096] [n=1, c=64, h=8, w=8] read_write <- model output output',
        '  shared:',
        '    tile: f32[64]',
        '  constants:',
        '    WORKGROUP_SIZE: u32 = 64',
        '    INV_C: f32 = 0.015625',
        '    EPS: f32 = 0.000001',
        'body:',
        '  // one row per workgroup',
        '  let v: f32 = x[group * WORKGROUP_SIZE + local]',
        '  let mean: f32 = reduce.sum(v * INV_C) over 64 lanes (tree)',
        '  let g: f32 = erf(v - mean) * EPS',
        '  registers acc: f32[4]',
        '  for k in 0..4 step 1 unroll {',
        '    acc[k] <- w[k]',
        '  }',
        '  var s: f32 = 0.0',
        '  for c in local..WORKGROUP_SIZE step 64 {',
        '    s = s + tile[c]',
        '  }',
        '  let p: i32 = i32(local) - 3i',
        '  let inside: bool = p >= 0i && p < 56i',
        '  let q: u32 = u32(min(max(p, 0i), 55i))',
        '  barrier',
        '  if local == 0 {',
        '    out[group] <- inside ? (-g + x[q]) : 0.0',
        '  } else {',
        '    out[group * WORKGROUP_SIZE + local] <- s',
        '  }',
        '',
      ].join('\n'),
    );
  });

  it('says none for an empty schedule, shared list and constant list', () => {
    const text = printKernel(program([store('out', local, f32(1))], { shared: [], schedule: {} }));
    expect(text).toContain('  schedule: none\n');
    expect(text).toContain('  shared: none\n');
    expect(text).toContain('  constants: none\n');
  });

  it('keeps user-chosen names on their line and terminal escapes out', () => {
    const text = printKernel(program([comment('a\nb')], { covers: 'evil\nname\x1b[2J \u202e', summary: 'x\ty' }));
    expect(text).toContain('  covers: evil\\nname\\u{1b}[2J \\u{202e}\n');
    expect(text).toContain('  summary: x\\ty\n');
    expect(text).toContain('  // a\\nb\n');
    expect(text).not.toContain('\x1b');
  });

  it('parenthesises where precedence would otherwise be a question', () => {
    const a = ref('a', 'f32');
    const b = ref('b', 'f32');
    const c = ref('c', 'f32');
    const text = printKernel(
      program([
        let_('r1', sub(a, sub(b, c))),
        let_('r2', mul(add(a, b), c)),
        let_('r3', sub(sub(a, b), c)),
        let_('r4', neg(add(a, b))),
        let_('r5', select(lt(a, b), select(lt(b, c), a, b), neg(f32(-2)))),
        let_('r6', eq(lt(a, b), lt(b, c))),
      ]),
    );
    expect(text).toContain('let r1: f32 = a - (b - c)\n');
    expect(text).toContain('let r2: f32 = (a + b) * c\n');
    expect(text).toContain('let r3: f32 = a - b - c\n');
    expect(text).toContain('let r4: f32 = -(a + b)\n');
    expect(text).toContain('let r5: f32 = (a < b) ? ((b < c) ? a : b) : -(-2.0)\n');
    expect(text).toContain('let r6: bool = (a < b) == (b < c)\n');
  });
});

describe('printKernel: vectors', () => {
  it('prints vector memory, vector loads and stores, constructors and components', () => {
    const a = ref('a', 'vec4f');
    const b = ref('b', 'vec4f');
    const base = program([]);
    const text = printKernel({
      ...base,
      buffers: base.buffers.map((m) => (m.name === 'x' || m.name === 'out' ? { ...m, vector: 4 as const } : m)),
      shared: [{ name: 'tile', length: 64, vector: 4 }],
      body: [
        let_('a', load4('x', mul(local, u32(4)))),
        let_('b', mul(add(a, a), vec4(f32(1), f32(2), load('x', u32(3)), component(a, 1)))),
        let_('c', component(add(a, b), 3)),
        let_('d', component(load4('tile', u32(0)), 2)),
        store('out', mul(local, u32(4)), b),
        store('out', u32(1), ref('c', 'f32')),
      ],
    });
    expect(text).toContain('    0 x: f32x4[4096] [n=1, h=8, w=8, c=64] read <- value %12\n    1 w: f32[64] [i=64] read');
    expect(text).toContain('    5 out: f16x4[4096] [n=1, c=64, h=8, w=8] read_write <- model output output\n');
    expect(text).toContain('  shared:\n    tile: f32x4[64]\n');
    expect(text).toContain(
      [
        'body:',
        '  let a: vec4f = load4 x[local * 4]',
        '  let b: vec4f = (a + a) * vec4(1.0, 2.0, x[3], a.y)',
        '  let c: f32 = (a + b).w',
        '  let d: f32 = (load4 tile[0]).z',
        '  store4 out[local * 4] <- b',
        '  out[1] <- c',
        '',
      ].join('\n'),
    );
  });
});

describe('namedConstants', () => {
  it('lists each name once, in order of first appearance, reduce values included', () => {
    expect(namedConstants(body).map((c) => c.name)).toEqual(['WORKGROUP_SIZE', 'INV_C', 'EPS']);
  });

  it('throws on a name with two values or two types', () => {
    expect(() => namedConstants([let_('a', u32(1, 'K')), let_('b', u32(2, 'K'))])).toThrow(/internal: constant K is both u32 1 and u32 2/);
    expect(() => namedConstants([let_('a', u32(1, 'K')), let_('b', f32(1, 'K'))])).toThrow(/internal: constant K/);
    expect(() => printKernel(program([let_('a', f32(1, 'K')), let_('b', f32(2, 'K'))]))).toThrow(/internal/);
  });
});
