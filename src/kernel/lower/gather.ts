// Kernels for gather ops (src/kernel/math.ts GatherMath: FCMAE's patch tables and the moves
// between dense and compact patches): one thread per output element, walking the output in
// its storage order, each reading wherever the op's math says.
import { add, assign, div, f32, group, let_, load, local, loop, mul, ref, rem, store, u32, var_ } from '../build.js';
import type { Expr, KernelProgram, Stmt } from '../ir.js';
import type { GatherContext } from '../math.js';
import type { Schedule } from '../schedule.js';
import { getOp } from '../../ir/registry.js';
import { numel, type Graph, type Node } from '../../ir/types.js';
import { guarded, KernelBuilder, lessThan } from './builder.js';

/**
 * An element's index in a value's storage (valueLayout): NHWC for rank 4, row-major otherwise.
 * Coordinates are logical (NCHW order for rank 4).
 */
function storageIndex(shape: readonly number[], coords: readonly Expr[]): Expr {
  const order = shape.length === 4 ? [0, 2, 3, 1] : shape.map((_, i) => i);
  return order.reduce<Expr>((index, axis, k) => (k === 0 ? coords[axis] : add(mul(index, u32(shape[axis])), coords[axis])), u32(0));
}

/** The logical coordinates of storage index `index` of a value of `shape`, bound as lets. */
function coordinatesOf(shape: readonly number[], index: Expr, body: Stmt[]): Expr[] {
  const order = shape.length === 4 ? [0, 2, 3, 1] : shape.map((_, i) => i);
  const coords: Expr[] = new Array<Expr>(shape.length);
  let stride = 1;
  for (let k = order.length - 1; k >= 0; k--) {
    const axis = order[k];
    const name = `i${axis}`;
    const at = k === 0 ? div(index, u32(stride)) : rem(div(index, u32(stride)), u32(shape[axis]));
    body.push(let_(name, at));
    coords[axis] = ref(name, 'u32');
    stride *= shape[axis];
  }
  return coords;
}

export function lowerGather(graph: Graph, node: Node, schedule: Extract<Schedule, { strategy: 'elementwise' }>): KernelProgram {
  const math = getOp(node.op).kernel;
  if (math.kind !== 'gather') throw new Error(`internal: '${node.op}' is not a gather`);
  const b = new KernelBuilder(graph, node);
  const shape = node.type.shape;
  const total = numel(shape);
  const shapes = node.inputs.map((_, i) => b.inputType(i).shape);
  const inputs = node.inputs.map((_, i) => b.input(i, `input${i}`));
  const output = b.output();
  const stmts: Stmt[] = [let_('index', add(mul(group, u32(schedule.workgroupSize, 'WORKGROUP_SIZE')), local))];
  const index = ref('index', 'u32');
  const inner: Stmt[] = [];
  const at: GatherContext = {
    coords: coordinatesOf(shape, index, inner),
    shape,
    shapes,
    read: (i, coords) => load(inputs[i], storageIndex(shapes[i], coords)),
    sum: (count, term) => {
      const [sum, i] = [b.fresh('sum'), b.fresh('k')];
      inner.push(var_(sum, f32(0)), loop(i, 0, count, [assign(sum, add(ref(sum, 'f32'), term(ref(i, 'u32'))))]));
      return ref(sum, 'f32');
    },
  };
  inner.push(store(output, index, math.value(at, node.attrs)));
  stmts.push(...guarded(lessThan(index, total, 'ELEMENTS'), inner));
  return b.finish({
    name: node.op,
    summary: getOp(node.op).summary,
    workgroupSize: schedule.workgroupSize,
    workgroups: Math.ceil(total / schedule.workgroupSize),
    schedule,
    body: stmts,
  });
}
