// Kernel programs written by hand for the gpu.js tests.
import { add, assign, f32, group, if_, let_, load, local, loop, mul, ref, store, u32, var_ } from '../../../src/kernel/build.js';
import type { KernelProgram, Stmt } from '../../../src/kernel/ir.js';

/** A kernel summing `length` elements of `x` into element 0 of `out`, as lowering writes one. */
export function sumProgram(length: number, body?: readonly Stmt[]): KernelProgram {
  const index = ref('index', 'u32');
  return {
    name: 'sum_all',
    summary: `sum of ${length} elements`,
    covers: 'a test kernel',
    buffers: [
      { name: 'x', access: 'read', length, dtype: 'f32', layout: { axes: ['i'], shape: [length] }, ref: { kind: 'scratch', name: 'x', floats: length } },
      { name: 'out', access: 'read_write', length: 1, dtype: 'f32', layout: { axes: ['i'], shape: [1] }, ref: { kind: 'scratch', name: 'out', floats: 1 } },
    ],
    shared: [],
    workgroupSize: 64,
    workgroups: 1,
    schedule: { strategy: 'test' },
    body: [
      let_('index', add(mul(group, u32(64, 'WORKGROUP_SIZE')), local)),
      ...(body ?? [var_('s', f32(0)), loop('i', 0, length, [assign('s', add(ref('s', 'f32'), load('x', ref('i', 'u32'))))]), if_({ kind: 'binary', type: 'bool', op: 'lt', a: index, b: u32(1) }, [store('out', index, ref('s', 'f32'))])]),
    ],
  };
}

