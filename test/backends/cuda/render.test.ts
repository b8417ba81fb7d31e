// The CUDA C renderer's text: one uniquely named kernel per distinct program in kernels.cu, a
// header naming the IR nodes, user-given names unable to escape their comment, and the
// spellings that differ from WGSL (f16 conversions, vector helpers, warp shuffles). Whether
// the kernels compute the right thing is tested by running them (emulation and nvcc tests).
import { describe, expect, it } from 'vitest';
import { lowerToCuda } from '../../../src/backends/cuda/lower.js';
import { renderCudaKernel } from '../../../src/backends/cuda/render.js';
import { cudaTarget } from '../../../src/backends/cuda/target.js';
import { add, cast, f32, group, i32, let_, load, load4, local, lt, mul, ref, select, store, u32, xor } from '../../../src/kernel/build.js';
import { renderCudaModule } from '../../../src/backends/cuda/render.js';
import type { KernelProgram, Stmt } from '../../../src/kernel/ir.js';
import { defaultPipeline } from '../../../src/passes/manager.js';
import { zooGraph } from '../../helpers.js';

function program(body: readonly Stmt[], extra: Partial<KernelProgram> = {}): KernelProgram {
  return {
    name: 'scale',
    summary: 'scales a tensor',
    covers: '%3 mul "a*/\n#include <stdio.h>"',
    buffers: [
      { name: 'x', access: 'read', length: 256, dtype: 'f32', layout: { axes: ['i'], shape: [256] }, ref: { kind: 'value', id: 1 }, vector: 4 },
      { name: 'y', access: 'read_write', length: 256, dtype: 'f16', layout: { axes: ['i'], shape: [256] }, ref: { kind: 'value', id: 2 }, vector: 4 },
    ],
    shared: [],
    workgroupSize: 64,
    workgroups: 4,
    schedule: { strategy: 'elementwise' },
    body,
    ...extra,
  };
}

const index = add(mul(group, u32(64, 'WORKGROUP_SIZE')), local);

describe('CUDA renderer', () => {
  it('writes one uniquely named extern "C" kernel per distinct program, each with its header', () => {
    const target = cudaTarget();
    const cuda = lowerToCuda(zooGraph('convnextv2-atto', { batch: 1, height: 64, width: 64 }, defaultPipeline), { target });
    const entries = [...cuda.module.matchAll(/^extern "C" __global__ void (\w+)\(/gm)].map((m) => m[1]);
    expect(entries).toEqual(cuda.shaders.map((s) => s.name));
    expect(new Set(entries).size).toBe(entries.length);
    // A stage's depthwise kernels differ in shape, so they take numbered names.
    expect(entries).toContain('conv2d_depthwise_7x7_layernorm_2');
    expect(cuda.module.match(/^\/\/ Computes IR node\(s\): /gm)).toHaveLength(entries.length);
    expect(cuda.module).not.toContain('__launch_bounds__');
    for (const d of cuda.dispatches) expect(d.shader).toBeLessThan(entries.length);
  });

  it('keeps user-given names inside their comment', () => {
    const text = renderCudaKernel(program([store('y', index, load('x', index))]));
    expect(text).not.toMatch(/^#include/m);
    expect(text).toContain('// Computes IR node(s): %3 mul "a* / #include <stdio.h>"');
  });

  it('converts f16 storage at loads and stores and moves vectors through helpers', () => {
    const body = [let_('v', load4('x', mul(local, u32(4)))), store('y', mul(local, u32(4)), ref('v', 'vec4f')), store('y', index, mul(load('x', index), f32(-0)))];
    const text = renderCudaKernel(program(body));
    expect(text).toContain('__half* __restrict__ y');
    expect(text).toContain('const float4 v = convc_load4(x, local * 4u);');
    expect(text).toContain('convc_store4(y, local * 4u, v);');
    expect(text).toContain('y[group * WORKGROUP_SIZE + local] = __float2half_rn(x[group * WORKGROUP_SIZE + local] * -0.0f);');
  });

  it('shuffles within the threads a block has', () => {
    const shuffle: Stmt[] = [{ kind: 'shuffle-xor', into: 'other', value: load('x', local), mask: 1 }, store('y', local, ref('other', 'f32'))];
    expect(renderCudaKernel({ ...program(shuffle), subgroupSize: 32 })).toContain('__shfl_xor_sync(0xffffffffu, x[local], 1)');
    expect(renderCudaKernel({ ...program(shuffle, { workgroupSize: 16 }), subgroupSize: 32 })).toContain('__shfl_xor_sync(0xffffu, x[local], 1)');
    expect(() => renderCudaKernel({ ...program(shuffle, { workgroupSize: 48 }), subgroupSize: 32 })).toThrow(/not whole warps/);
    expect(() => renderCudaKernel({ ...program(shuffle), subgroupSize: 8 })).toThrow(/not warps of 32/);
  });

  it('refuses names C++ or CUDA give a meaning', () => {
    expect(() => renderCudaKernel(program([let_('float', f32(1)), store('y', index, ref('float', 'f32'))]))).toThrow(/cannot be a CUDA C identifier/);
    expect(() => renderCudaKernel(program([let_('threadIdx', f32(1)), store('y', index, ref('threadIdx', 'f32'))]))).toThrow(/cannot be a CUDA C identifier/);
    expect(renderCudaKernel(program([let_('k', i32(-(2 ** 31))), store('y', index, f32(0))]))).toContain('const int k = (-2147483647 - 1);');
  });

  it('converts f32 to integers saturating, as GPUs do, where C++ would be undefined, and parenthesises xor operands', () => {
    const body = [let_('slot', cast('u32', load('x', local))), let_('k', cast('i32', load('x', local))), let_('m', xor(select(lt(local, u32(3)), local, u32(1)), u32(2))), store('y', ref('slot', 'u32'), f32(1))];
    const kernel = renderCudaKernel(program(body));
    expect(kernel).toContain('const unsigned int slot = convc_f32_to_u32(x[local]);');
    expect(kernel).toContain('const int k = convc_f32_to_i32(x[local]);');
    expect(kernel).toContain('const unsigned int m = ((local < 3u ? local : 1u) ^ 2u);');
    const module = renderCudaModule({ model: 'm', precision: 'f32', dispatches: 1, kernels: [kernel] });
    expect(module).toContain('static __device__ __forceinline__ unsigned int convc_f32_to_u32(float x) { return !(x > 0.0f) ? 0u');
    expect(module).not.toContain('convc_erf');
  });
});
