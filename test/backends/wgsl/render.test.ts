// The kernel-IR WGSL renderer: its text (constants, headers, unrolling, select's argument
// order) and that what it writes passes Dawn's validation and computes the right numbers on
// lavapipe, since a renderer can only be trusted against a real WGSL compiler.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireGpu, type AcquiredGpu } from '../../../src/backends/webgpu/device.js';
import { renderWgsl } from '../../../src/backends/wgsl/render.js';
import {
  abs,
  add,
  and,
  barrier,
  cast,
  comment,
  component,
  div,
  eq,
  erf,
  exp,
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
  not,
  reduceSum,
  ref,
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
  assign,
  xor,
} from '../../../src/kernel/build.js';
import { erfF32 } from '../../../src/kernel/erf.js';
import { f16Bits, f16Value, roundF16 } from '../../../src/kernel/f16.js';
import { interpret } from '../../../src/kernel/interpret.js';
import type { BufferDecl, Expr, KernelProgram, Stmt } from '../../../src/kernel/ir.js';

const WG = 64;

function buffer(name: string, length: number, access: 'read' | 'read_write' = 'read'): BufferDecl {
  return { name, length, access, dtype: 'f32', layout: { axes: ['i'], shape: [length] }, ref: access === 'read' ? { kind: 'value', id: 1 } : { kind: 'value', id: 2 } };
}

function program(name: string, buffers: readonly BufferDecl[], body: readonly Stmt[], extra: Partial<KernelProgram> = {}): KernelProgram {
  return { name, summary: `test ${name}`, covers: '%1', buffers, shared: [], workgroupSize: WG, workgroups: 4, schedule: { strategy: 'test', vec: 1 }, body, ...extra };
}

const index = add(mul(group, u32(WG, 'WORKGROUP_SIZE')), local);
const i = ref('i', 'u32');
const N = 200;

/** out[i] = erf(x[i] * SCALE) + EPS for i < N, with N used twice. */
const elementwise = program('gelu_like', [buffer('x', N), buffer('out', N, 'read_write')], [
  let_('i', index),
  if_(lt(i, u32(N, 'N')), [
    let_('v', mul(load('x', i), f32(0.5, 'SCALE'))),
    store('out', i, add(erf(ref('v', 'f32')), f32(1e-6, 'EPS'))),
  ]),
  comment(`i < N here and below: N=${N}`),
  if_(ge(i, u32(N, 'N')), [comment('idle lane')]),
]);

/** out[group] = sum of x over the workgroup; out[4 + group*4 + local/16] = sum over each 16 lanes. */
const reduction = program('row_sums', [buffer('x', 4 * WG), buffer('out', 4 + 16, 'read_write')], [
  let_('v', load('x', index)),
  reduceSum('total', ref('v', 'f32'), WG),
  reduceSum('quarter', ref('v', 'f32'), 16),
  if_(eq(local, u32(0)), [store('out', group, ref('total', 'f32'))]),
  if_(eq(rem(local, u32(16)), u32(0)), [store('out', add(u32(4), add(mul(group, u32(4)), cast('u32', mul(cast('f32', local), f32(0.0625))))), ref('quarter', 'f32'))]),
], { shared: [{ name: 'tile', length: 8 }] });

/** Register arrays filled by an unrolled loop and read back by a plain one: out[g*64+l] = sum_k x[.. + k] * (k+1). */
const unrolled = program('unrolled_sum', [buffer('x', 4 * WG + 3), buffer('out', 4 * WG, 'read_write')], [
  registers('acc', 4),
  loop('k', 0, 4, [store('acc', ref('k', 'u32'), mul(load('x', add(index, ref('k', 'u32'))), add(cast('f32', ref('k', 'u32')), f32(1))))], { unroll: true }),
  var_('sum', f32(0)),
  loop('k', 0, u32(4, 'TAPS'), [assign('sum', add(ref('sum', 'f32'), load('acc', ref('k', 'u32'))))]),
  store('out', index, ref('sum', 'f32')),
]);

/** A padded 1-D 3-tap window: out[j] = x[j-1] + x[j] + x[j+1], zero outside; select with a clamped index. */
const W = 4 * WG;
const padded = program('padded_window', [buffer('x', W), buffer('out', W, 'read_write')], [
  let_('j', cast('i32', index)),
  var_('acc', f32(0)),
  loop('t', 0, 3, [
    let_('p', add(ref('j', 'i32'), sub(cast('i32', ref('t', 'u32')), i32(1)))),
    let_('inside', and(ge(ref('p', 'i32'), i32(0)), lt(ref('p', 'i32'), i32(W)))),
    // Both sides of select are evaluated, so the load's index is clamped into the buffer.
    let_('q', cast('u32', min(max(ref('p', 'i32'), i32(0)), i32(W - 1)))),
    assign('acc', add(ref('acc', 'f32'), select(ref('inside', 'bool'), load('x', ref('q', 'u32')), f32(0)))),
  ]),
  store('out', index, ref('acc', 'f32')),
]);

/** Every other unary and binary op once, so each one's WGSL spelling meets the compiler. */
const everything = program('every_op', [buffer('x', 4 * WG), buffer('out', 4 * WG, 'read_write')], [
  let_('a', load('x', index)),
  let_('b', abs(neg(ref('a', 'f32')))),
  let_('c', add(sqrt(ref('b', 'f32')), add(rsqrt(add(ref('b', 'f32'), f32(1))), exp(neg(ref('b', 'f32')))))),
  let_('odd', not(eq(rem(index, u32(2)), u32(0)))),
  let_('ne', { kind: 'binary', type: 'bool', op: 'ne', a: i32(-2), b: cast('i32', local) }),
  let_('either', { kind: 'binary', type: 'bool', op: 'or', a: ref('odd', 'bool'), b: ref('ne', 'bool') }),
  let_('lo', { kind: 'binary', type: 'bool', op: 'le', a: ref('c', 'f32'), b: f32(-0.5) }),
  let_('hi', { kind: 'binary', type: 'bool', op: 'gt', a: ref('c', 'f32'), b: { kind: 'binary', type: 'f32', op: 'div', a: ref('a', 'f32'), b: f32(3) } }),
  if_(and(ref('either', 'bool'), { kind: 'binary', type: 'bool', op: 'or', a: ref('lo', 'bool'), b: ref('hi', 'bool') }), [store('out', index, ref('c', 'f32'))], [
    store('out', index, select(ref('odd', 'bool'), f32(1), f32(-2))),
  ]),
  let_('flag', { kind: 'const', type: 'bool', value: true, name: 'FLAG' }),
  if_(ref('flag', 'bool'), [barrier]),
  // Literals WGSL cannot spell directly: the most negative i32 and negative zero.
  let_('m', i32(-(2 ** 31))),
  let_('z', f32(-0)),
]);

const programs = { elementwise, reduction, unrolled, padded, everything };

/**
 * vec4 loads and stores: each thread loads a vec4 of x (index x * 4u, printed as x), stages
 * v * (1, 2, 3, 4) in a vector workgroup array, and after a barrier combines its neighbour's
 * vec4 with a scalar load from the vector array, then writes a vec4 and one scalar of `out`.
 * Both vector buffers are 4 * 1024 bytes: a multiple of 16, as array<vec4<f32>> needs.
 */
const vf = (name: string): Expr => ref(name, 'vec4f');
const splat = (v: number): Expr => vec4(f32(v), f32(v), f32(v), f32(v));
const vectorTile = program('vec4_tile', [{ ...buffer('x', 4 * WG * 4), vector: 4 }, { ...buffer('out', 4 * WG * 4, 'read_write'), vector: 4 }], [
  let_('base', mul(index, u32(4))),
  let_('v', load4('x', mul(index, u32(4)))),
  store('tile', mul(local, u32(4)), mul(vf('v'), vec4(f32(1), f32(2), f32(3), f32(4)))),
  barrier,
  let_('next', mul(rem(add(local, u32(1)), u32(WG)), u32(4))),
  let_('n', load4('tile', ref('next', 'u32'))),
  let_('s', load('tile', add(ref('next', 'u32'), u32(2)))),
  let_('w', max(sub(vf('n'), vf('v')), div(vf('v'), splat(2)))),
  store('out', ref('base', 'u32'), vec4(component(vf('w'), 0), component(vf('n'), 3), f32(0), min(component(vf('w'), 3), f32(1)))),
  store('out', add(ref('base', 'u32'), u32(2)), add(ref('s', 'f32'), component(vf('v'), 2))),
], { shared: [{ name: 'tile', length: WG * 4, vector: 4 }] });

/** out[i] = x[4i] * 1.1 + x[4i+1] + x[4i+2] + x[4i+3], x and out stored as f16. */
const f16Scale = program(
  'f16_scale',
  [
    { ...buffer('x', 4 * 4 * WG), vector: 4, dtype: 'f16' },
    { ...buffer('out', 4 * WG, 'read_write'), dtype: 'f16' },
  ],
  [
    let_('i', index),
    let_('v', load4('x', mul(ref('i', 'u32'), u32(4)))),
    store('out', ref('i', 'u32'), add(add(add(mul(component(vf('v'), 0), f32(1.1)), component(vf('v'), 1)), component(vf('v'), 2)), component(vf('v'), 3))),
  ],
);

describe('renderWgsl text', () => {
  it('writes the header, bindings and builtins of the module', () => {
    const code = renderWgsl(elementwise);
    expect(code.split('\n').slice(0, 4)).toEqual([
      '// gelu_like: test gelu_like',
      '// Computes IR node(s): %1',
      '// Schedule: strategy=test, vec=1',
      '// 4 workgroups of 64 threads; buffers in the layouts named beside them.',
    ]);
    expect(code).toContain('@group(0) @binding(0) var<storage, read> x: array<f32>; // [i=200]\n@group(0) @binding(1) var<storage, read_write> out: array<f32>; // [i=200]');
    expect(code).toContain('@compute @workgroup_size(WORKGROUP_SIZE)\nfn gelu_like(@builtin(workgroup_id) workgroup_id: vec3u, @builtin(local_invocation_index) local: u32, @builtin(num_workgroups) num_workgroups: vec3u) {');
    expect(code).toContain('  let group = workgroup_id.y * num_workgroups.x + workgroup_id.x;\n  if (group < WORKGROUPS) {\n    let i = group * WORKGROUP_SIZE + local;\n');
    expect(code.endsWith('  }\n}\n')).toBe(true);
  });

  it('declares each named constant once, in order of first use, and refers to it by name', () => {
    const code = renderWgsl(elementwise);
    const declarations = code.split('\n').filter((l) => l.startsWith('const '));
    expect(declarations).toEqual(['const WORKGROUP_SIZE: u32 = 64u;', 'const WORKGROUPS: u32 = 4u;', 'const N: u32 = 200u;', 'const SCALE: f32 = 0.5;', 'const EPS: f32 = 0.000001;']);
    expect(code).toContain('if (i < N) {');
    expect(code).toContain('if (i >= N) {');
    expect(code).toContain('out[i] = erf_approx(v) + EPS;');
    expect(code).toContain('let v = x[i] * SCALE;');
    expect(code.match(/200u/g)).toHaveLength(1);
  });

  it('throws on one constant name with two values or two types', () => {
    const twoValues = program('bad', [buffer('out', 4, 'read_write')], [store('out', u32(1, 'K'), f32(0)), store('out', u32(2, 'K'), f32(0))]);
    expect(() => renderWgsl(twoValues)).toThrow(/internal: constant K/);
    const twoTypes = program('bad', [buffer('out', 4, 'read_write')], [let_('a', u32(1, 'K')), let_('b', f32(1, 'K'))]);
    expect(() => renderWgsl(twoTypes)).toThrow(/internal: constant K/);
    const reserved = program('bad', [buffer('out', 4, 'read_write')], [let_('a', u32(65, 'WORKGROUP_SIZE'))]);
    expect(() => renderWgsl(reserved)).toThrow(/internal: constant WORKGROUP_SIZE/);
  });

  it('keeps user-chosen text in the header on its own comment lines', () => {
    const code = renderWgsl({ ...elementwise, covers: 'evil */ name\nfn main() {}\r\n%2', summary: 'a\nb', schedule: { 'k\n': 'v*/' } });
    const header = code.split('\n').slice(0, 4);
    expect(header.every((l) => l.startsWith('// '))).toBe(true);
    expect(header[1]).toBe('// Computes IR node(s): evil * / name fn main() {} %2');
    expect(code).not.toContain('*/');
    expect(code).not.toMatch(/^fn main/m);
  });

  it('unrolls a constant loop into one block per iteration, binding the index', () => {
    const code = renderWgsl(unrolled);
    for (let k = 0; k < 4; k++) expect(code).toContain(`    {\n      let k = ${k}u;\n      acc[k] = x[group * WORKGROUP_SIZE + local + k] * (f32(k) + 1.0);\n    }`);
    expect(code.match(/let k = \du;/g)).toHaveLength(4);
    expect(code).toContain('    var acc: array<f32, 4>;');
    expect(code).toContain('    var sum: f32 = 0.0;');
    expect(code).toContain('    for (var k = 0u; k < TAPS; k += 1u) {\n      sum = sum + acc[k];\n    }');
    // Unrolling needs constant bounds.
    const dynamic = program('bad', [buffer('out', 4, 'read_write')], [loop('k', 0, local, [], { unroll: true })]);
    expect(() => renderWgsl(dynamic)).toThrow(/internal: loop k is unrolled/);
  });

  it('emits the erf helper, from erf.ts, only when erf is used', () => {
    const code = renderWgsl(elementwise);
    expect(code.match(/fn erf_approx\(/g)).toHaveLength(1);
    expect(code).toContain('let t = 1.0 / (1.0 + 0.3275911 * abs(x));');
    expect(code).toContain('var poly: f32 = 1.061405429;\n  poly = -1.453152027 + t * poly;\n  poly = 1.421413741 + t * poly;\n  poly = -0.284496736 + t * poly;\n  poly = 0.254829592 + t * poly;\n  poly = t * poly;\n  return sign(x) * (1.0 - poly * exp(-(x * x)));');
    for (const p of [reduction, unrolled, padded, everything]) expect(renderWgsl(p)).not.toContain('erf_approx');
  });

  it("writes select in WGSL's order, false value first", () => {
    expect(renderWgsl(padded)).toContain('acc = acc + select(0.0, x[q], inside);');
    expect(renderWgsl(everything)).toContain('out[group * WORKGROUP_SIZE + local] = select(-2.0, 1.0, odd);');
  });

  it('writes casts, signed literals and padding checks', () => {
    const code = renderWgsl(padded);
    expect(code).toContain('let j = i32(group * WORKGROUP_SIZE + local);');
    expect(code).toContain('let p = j + (i32(t) - 1i);');
    expect(code).toContain('let inside = p >= 0i && p < 256i;');
    expect(code).toContain('let q = u32(min(max(p, 0i), 255i));');
    const ops = renderWgsl(everything);
    expect(ops).toContain('let b = abs(-(a));');
    expect(ops).toContain('let c = sqrt(b) + (inverseSqrt(b + 1.0) + exp(-(b)));');
    expect(ops).toContain('let odd = !((group * WORKGROUP_SIZE + local) % 2u == 0u);');
    expect(ops).toContain('let ne = -2i != i32(local);');
    expect(ops).toContain('if (either && (lo || hi)) {');
    expect(ops).toContain('const FLAG: bool = true;');
    expect(ops).toContain('let m: i32 = (-2147483647i - 1i);');
    expect(ops).toContain('let z: f32 = -0.0;');
  });

  it('expands reductions into workgroup memory and barriers', () => {
    const code = renderWgsl(reduction);
    expect(code).toContain('var<workgroup> tile: array<f32, 8>;\nvar<workgroup> reduce_partial: array<f32, 64>;\nvar<workgroup> reduce_total: array<f32, 4>;');
    expect(code.match(/workgroupBarrier\(\);/g)!.length).toBe(1 + 6 + 1 + (1 + 4 + 1));
    expect(code).toContain('let total = reduce_total[local / 64u];');
    expect(code).not.toMatch(/reduce\b(?!_)/);
  });

  it('writes vector memory as arrays of vec4<f32> and indexes them by vec4', () => {
    const code = renderWgsl(vectorTile);
    expect(code).toContain('@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>; // [i=1024]\n@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>; // [i=1024]');
    expect(code).toContain('var<workgroup> tile: array<vec4<f32>, 64>;');
    // x * 4u indexes vec4 x; any other index is divided.
    expect(code).toContain('let v = x[group * WORKGROUP_SIZE + local];');
    expect(code).toContain('tile[local] = v * vec4<f32>(1.0, 2.0, 3.0, 4.0);');
    expect(code).toContain('let n = tile[next / 4u];');
    // A scalar in vector memory: its vec4, then its component.
    expect(code).toContain('let s = tile[(next + 2u) / 4u][(next + 2u) % 4u];');
    expect(code).toContain('let w = max(n - v, v / vec4<f32>(2.0, 2.0, 2.0, 2.0));');
    expect(code).toContain('out[base / 4u] = vec4<f32>(w.x, n.w, 0.0, min(w.w, 1.0));');
    expect(code).toContain('out[(base + 2u) / 4u][(base + 2u) % 4u] = s + v.z;');
    expect(renderWgsl(program('parens', [{ ...buffer('out', 8, 'read_write'), vector: 4 }], [store('out', u32(1), component(add(load4('out', u32(4)), splat(1)), 2))]))).toContain(
      'out[1u / 4u][1u % 4u] = (out[4u / 4u] + vec4<f32>(1.0, 1.0, 1.0, 1.0)).z;',
    );
  });

  it('refuses vector access to memory not declared vector: 4', () => {
    const plain = [buffer('x', 8), buffer('out', 8, 'read_write')];
    expect(() => renderWgsl(program('bad', plain, [store('out', u32(0), load4('x', u32(0)))]))).toThrow(/internal: bad loads a vec4f from x/);
    expect(() => renderWgsl(program('bad', plain, [store('out', u32(0), splat(1))]))).toThrow(/internal: vector access to out/);
    expect(() => renderWgsl(program('bad', [{ ...buffer('out', 6, 'read_write'), vector: 4 }], []))).toThrow(/internal: out is vector: 4 with length 6/);
  });

  it('refuses stores to read-only buffers and loads from undeclared memory', () => {
    expect(() => renderWgsl(program('bad', [buffer('x', 4), buffer('out', 4, 'read_write')], [store('x', u32(0), f32(0))]))).toThrow(/internal: store to x/);
    expect(() => renderWgsl(program('bad', [buffer('out', 4, 'read_write')], [store('out', u32(0), load('y', u32(0)))]))).toThrow(/internal: bad loads from y/);
  });
});

/** What each program should leave in its read_write buffer, from its inputs, in f64 or erf.ts's f32 steps. */
const inputs = (length: number): Float32Array<ArrayBuffer> => Float32Array.from({ length }, (_, k) => Math.sin(k * 1.7) * 3);

function expected(name: keyof typeof programs, x: Float32Array): Float32Array | null {
  switch (name) {
    case 'elementwise':
      return Float32Array.from({ length: N }, (_, k) => erfF32(Math.fround(x[k] * 0.5)) + 1e-6);
    case 'reduction': {
      const out = new Float32Array(20);
      for (let g = 0; g < 4; g++) for (let l = 0; l < WG; l++) {
        out[g] += x[g * WG + l];
        out[4 + g * 4 + Math.floor(l / 16)] += x[g * WG + l];
      }
      return out;
    }
    case 'unrolled':
      return Float32Array.from({ length: 4 * WG }, (_, j) => x[j] + 2 * x[j + 1] + 3 * x[j + 2] + 4 * x[j + 3]);
    case 'padded':
      return Float32Array.from({ length: W }, (_, j) => (x[j - 1] ?? 0) + x[j] + (x[j + 1] ?? 0));
    case 'everything':
      return null;
  }
}

describe('renderWgsl on Dawn (lavapipe)', () => {
  let gpu: AcquiredGpu | undefined;
  beforeAll(async () => {
    gpu = await acquireGpu({ adapter: 'vulkan' });
  }, 120_000);
  afterAll(() => gpu?.destroy());

  it('runs on the Vulkan adapter (lavapipe without a GPU)', () => {
    expect(gpu!.adapterInfo).toMatch(/backend: vulkan/);
  });

  async function compile(p: KernelProgram): Promise<GPUComputePipeline> {
    const device = gpu!.device;
    const code = renderWgsl(p);
    const module = device.createShaderModule({ code });
    const info = await module.getCompilationInfo();
    expect(info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}:${m.linePos} ${m.message}`)).toEqual([]);
    device.pushErrorScope('validation');
    const pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: p.name } });
    expect(await device.popErrorScope()).toBeNull();
    return pipeline;
  }

  /**
   * Runs `p` with buffer 0 = x and buffer 1 = the output, and reads the output back; f16
   * buffers travel as binary16 (converted here, as a host would).
   */
  async function run(p: KernelProgram, x: Float32Array<ArrayBuffer>, dispatch = p.workgroups): Promise<Float32Array> {
    const device = gpu!.device;
    const pipeline = await compile(p);
    const data = p.buffers[0].dtype === 'f16' ? Uint16Array.from(x, f16Bits) : x;
    const input = device.createBuffer({ size: data.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(input, 0, data);
    const half = p.buffers[1].dtype === 'f16';
    const bytes = p.buffers[1].length * (half ? 2 : 4);
    const output = device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    const staging = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const bindGroup = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: input } }, { binding: 1, resource: { buffer: output } }],
    });
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(dispatch);
    pass.end();
    encoder.copyBufferToBuffer(output, 0, staging, 0, bytes);
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const mapped = staging.getMappedRange().slice(0);
    const result = half ? Float32Array.from(new Uint16Array(mapped), f16Value) : new Float32Array(mapped);
    staging.unmap();
    for (const b of [input, output, staging]) b.destroy();
    return result;
  }

  it.each(Object.keys(programs) as (keyof typeof programs)[])('%s compiles, makes a pipeline and computes its values', async (name) => {
    const p = programs[name];
    const x = inputs(p.buffers[0].length);
    const want = expected(name, x);
    if (!want) {
      await compile(p);
      return;
    }
    const got = await run(p, x);
    const scale = Math.max(...want.map(Math.abs));
    for (let k = 0; k < want.length; k++) expect(Math.abs(got[k] - want[k]), `${name}[${k}]`).toBeLessThanOrEqual(2e-6 * scale);
  });

  it('subgroup reductions render as shuffles under `enable subgroups` and compute what the interpreter computes', async () => {
    // Lavapipe has fixed subgroups of 8; runs of 8, 4 and 2 lanes reduce by shuffles alone.
    const p = program(
      'subgroup_sums',
      [buffer('x', 4 * WG), buffer('out', 4 * WG * 3, 'read_write')],
      [
        let_('v', load('x', index)),
        reduceSum('s8', ref('v', 'f32'), 8, 'subgroup'),
        reduceSum('s4', ref('v', 'f32'), 4, 'subgroup'),
        reduceSum('s2', ref('v', 'f32'), 2, 'subgroup'),
        store('out', index, ref('s8', 'f32')),
        store('out', add(index, u32(4 * WG)), ref('s4', 'f32')),
        store('out', add(index, u32(8 * WG)), ref('s2', 'f32')),
      ],
      { subgroupSize: 8 },
    );
    const code = renderWgsl(p);
    expect(code).toMatch(/^enable subgroups;$/m);
    expect(code).toContain('subgroupShuffleXor(s8_part0, 4u)');
    expect(code).not.toContain('var<workgroup>');
    expect(() => renderWgsl({ ...p, subgroupSize: undefined })).toThrow(/names no subgroup size/);
    const x = inputs(4 * WG);
    const want = new Float32Array(p.buffers[1].length);
    interpret(p, { x, out: want });
    const got = await run(p, x);
    const scale = Math.max(...want.map(Math.abs));
    for (let k = 0; k < want.length; k++) expect(Math.abs(got[k] - want[k]), `out[${k}]`).toBeLessThanOrEqual(2e-6 * scale);
  });

  it("xor of lane indices and shuffles by a mask: each thread stores its partner's value at its partner's place", async () => {
    // The shared-row GEMM's pattern (lower/gemm.ts): a value from lane ^ m, written where lane ^ m belongs.
    const lane = rem(local, u32(8));
    const base = sub(index, lane);
    const p = program(
      'xor_partners',
      [buffer('x', 4 * WG), buffer('out', 4 * WG * 3, 'read_write')],
      [3, 5, 6].flatMap((mask, m) => [
        { kind: 'shuffle-xor', into: `from_${mask}`, value: load('x', index), mask } as Stmt,
        store('out', add(u32(m * 4 * WG), add(base, xor(lane, u32(mask)))), ref(`from_${mask}`, 'f32')),
      ]),
      { subgroupSize: 8 },
    );
    const code = renderWgsl(p);
    expect(code).toContain('^ 3u)');
    const x = inputs(4 * WG);
    const want = new Float32Array(p.buffers[1].length);
    interpret(p, { x, out: want });
    // Every value lands back where it came from: out = x, three times.
    for (let m = 0; m < 3; m++) expect(Array.from(want.subarray(m * 4 * WG, (m + 1) * 4 * WG))).toEqual(Array.from(x));
    expect(Array.from(await run(p, x))).toEqual(Array.from(want));
  });

  it('vec4 loads, stores and a vector workgroup array compute what the interpreter computes', async () => {
    const p = vectorTile;
    const x = inputs(p.buffers[0].length);
    expect(x.byteLength % 16).toBe(0);
    const want = new Float32Array(p.buffers[1].length);
    interpret(p, { x, out: want });
    const got = await run(p, x);
    const scale = Math.max(...want.map(Math.abs));
    for (let k = 0; k < want.length; k++) expect(Math.abs(got[k] - want[k]), `out[${k}]`).toBeLessThanOrEqual(2e-6 * scale);
    // Sanity of the reference itself: thread 0 of workgroup 0 sees its neighbour's staged vec4 and scalar.
    const n = [x[4], 2 * x[5], 3 * x[6], 4 * x[7]].map(Math.fround);
    expect(want[1]).toBe(n[3]);
    expect(want[2]).toBe(Math.fround(n[2] + x[2]));
  });

  it('f16 buffers: loads widen, stores narrow, arithmetic stays f32; as the interpreter computes', async () => {
    expect(gpu!.device.features.has('shader-f16')).toBe(true);
    const p = f16Scale;
    const code = renderWgsl(p);
    expect(code).toMatch(/^enable f16;$/m);
    expect(code).toContain('var<storage, read> x: array<vec4<f16>>;');
    expect(code).toContain('var<storage, read_write> out: array<f16>;');
    expect(code).toContain('vec4<f32>(x[i])');
    expect(code).toMatch(/out\[i\] = f16\(/);
    const x = inputs(p.buffers[0].length);
    const want = new Float32Array(p.buffers[1].length);
    interpret(p, { x, out: want });
    // The interpreter rounded to f16: every value it wrote is a half.
    for (const v of want) expect(roundF16(v)).toBe(v);
    const got = await run(p, x);
    // WGSL lets an f32 -> f16 conversion of an inexact value give either neighbouring half, so
    // the device may differ from the interpreter's round-to-nearest by one f16 ulp (2^-10 of
    // the value's binade); the f32 arithmetic before it is exact to f32 on both.
    for (let k = 0; k < want.length; k++) expect(Math.abs(got[k] - want[k]), `out[${k}]`).toBeLessThanOrEqual(2 ** -10 * Math.abs(want[k]) + 2 ** -24);
    // And f32 arithmetic really happened: the sum of four halves is not rounded per step to f16.
    expect(want.some((v, k) => v !== roundF16(roundF16(roundF16(x[4 * k] * 1.1 + x[4 * k + 1]) + x[4 * k + 2]) + x[4 * k + 3]))).toBe(true);
  });

  it('a grid rounded up past WORKGROUPS leaves the extra workgroups idle', async () => {
    const p = { ...unrolled, workgroups: 2 };
    const x = inputs(p.buffers[0].length);
    const want = expected('unrolled', x)!;
    const got = await run(p, x, 4);
    for (let k = 0; k < 2 * WG; k++) expect(got[k]).toBeCloseTo(want[k], 4);
    expect(got.subarray(2 * WG).every((v) => v === 0)).toBe(true);
  });
});
