// Kernels for nodes whose op rearranges its input's elements (patchify): a thread per output
// element, in NHWC order so that writes are contiguous, each reading the element its op's
// `from` names.
import { add, div, group, let_, load, local, mul, ref, rem, store, u32 } from '../build.js';
import type { KernelProgram, Stmt } from '../ir.js';
import type { Schedule } from '../schedule.js';
import { getOp } from '../../ir/registry.js';
import { numel, type Graph, type Node } from '../../ir/types.js';
import { guarded, KernelBuilder, lessThan } from './builder.js';

export function lowerGather(graph: Graph, node: Node, schedule: Extract<Schedule, { strategy: 'elementwise' }>): KernelProgram {
  const math = getOp(node.op).kernel;
  if (math.kind !== 'gather') throw new Error(`internal: '${node.op}' is not a gather`);
  const b = new KernelBuilder(graph, node);
  const inShape = b.inputType(0).shape;
  const [, c, h, w] = node.type.shape;
  const [, ci, hi, wi] = inShape;
  if (node.type.shape.length !== 4 || inShape.length !== 4) throw new Error(`internal: ${node.op} gathers between images only`);
  const total = numel(node.type.shape);
  const input = b.input(0);
  const output = b.output();
  const index = ref('index', 'u32');
  const body: Stmt[] = [let_('index', add(mul(group, u32(schedule.workgroupSize, 'WORKGROUP_SIZE')), local))];
  const inner: Stmt[] = [
    let_('c', rem(index, u32(c, 'C'))),
    let_('x', rem(div(index, u32(c, 'C')), u32(w, 'W'))),
    let_('y', rem(div(index, u32(c * w)), u32(h, 'H'))),
    let_('n', div(index, u32(c * w * h))),
  ];
  const at = math.from({ n: ref('n', 'u32'), c: ref('c', 'u32'), y: ref('y', 'u32'), x: ref('x', 'u32') }, node.attrs, inShape);
  const source = add(mul(add(mul(add(mul(at.n, u32(hi, 'H_IN')), at.y), u32(wi, 'W_IN')), at.x), u32(ci, 'C_IN')), at.c);
  inner.push(store(output, index, load(input, source)));
  body.push(...guarded(lessThan(index, total, 'ELEMENTS'), inner));
  return b.finish({
    name: node.op,
    summary: getOp(node.op).summary,
    workgroupSize: schedule.workgroupSize,
    workgroups: Math.ceil(total / schedule.workgroupSize),
    schedule,
    body,
  });
}
