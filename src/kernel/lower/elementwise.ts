// Kernels for nodes whose op is elementwise (GELU, residual add, layer scale, GRN apply) and for
// the layout changes at the model's edges: one thread per element.
import { add, div, group, let_, load, local, mul, ref, rem, store, u32 } from '../build.js';
import type { KernelProgram, Stmt } from '../ir.js';
import type { Schedule } from '../schedule.js';
import { getOp } from '../../ir/registry.js';
import { numel, type Graph, type Node } from '../../ir/types.js';
import { callerLayout, guarded, KernelBuilder, lessThan, nodeUse, valueLayout } from './builder.js';

const kernelNames: Readonly<Record<string, string>> = { add: 'residual_add', drop_path: 'copy' };

/**
 * NHWC view of a logical NCHW (or NC) shape: batch, positions (H*W, 1 if pooled), channels.
 * A scalar (a loss, shape []) is one sample of one channel.
 */
export function nhwc(shape: readonly number[]): { n: number; positions: number; channels: number } {
  const [n = 1, channels = 1, ...spatial] = shape;
  return { n, channels, positions: spatial.reduce((a, b) => a * b, 1) };
}

function elementThread(b: KernelBuilder, schedule: Extract<Schedule, { strategy: 'elementwise' }>, total: number, body: (index: ReturnType<typeof ref>, into: Stmt[]) => void): Stmt[] {
  const stmts: Stmt[] = [let_('index', add(mul(group, u32(schedule.workgroupSize, 'WORKGROUP_SIZE')), local))];
  const index = ref('index', 'u32');
  const inner: Stmt[] = [];
  body(index, inner);
  stmts.push(...guarded(lessThan(index, total, 'ELEMENTS'), inner));
  return stmts;
}

export function lowerElementwise(graph: Graph, node: Node, schedule: Extract<Schedule, { strategy: 'elementwise' }>): KernelProgram {
  const b = new KernelBuilder(graph, node);
  const { positions, channels } = nhwc(node.type.shape);
  const total = numel(node.type.shape);
  const input = b.input(0);
  const output = b.output();
  const body = elementThread(b, schedule, total, (index, into) => {
    into.push(let_('c', rem(index, u32(channels, 'C'))), let_('n', div(index, u32(positions * channels, 'SAMPLE_ELEMENTS'))));
    const site = { index, n: ref('n', 'u32'), c: ref('c', 'u32'), shape: node.type.shape };
    const value = b.applyElementwise([nodeUse(node)], load(input, index), site, into);
    into.push(store(output, index, value));
  });
  return b.finish({
    name: kernelNames[node.op] ?? node.op,
    summary: getOp(node.op).summary,
    workgroupSize: schedule.workgroupSize,
    workgroups: Math.ceil(total / schedule.workgroupSize),
    schedule,
    body,
  });
}

/**
 * The model's image input `name` arrives NCHW (as PyTorch passes it) and its image outputs
 * leave NCHW (`name` the output's); kernels work on NHWC in between.
 */
export function lowerLayout(graph: Graph, node: Node, direction: 'in' | 'out', schedule: Extract<Schedule, { strategy: 'elementwise' }>, name: string): KernelProgram {
  const b = new KernelBuilder(graph, node);
  const [n, c, h, w] = node.type.shape;
  const total = n * c * h * w;
  const from = direction === 'in' ? b.bind('input', { kind: 'model-input', name }, callerLayout(node.type)) : b.bind('input', { kind: 'value', id: node.id }, valueLayout(node.type));
  const to = direction === 'in' ? b.output() : b.bind('output', { kind: 'model-output', name }, callerLayout(node.type), 'read_write');
  const [C, H, W] = [u32(c, 'C'), u32(h, 'H'), u32(w, 'W')];
  const body = elementThread(b, schedule, total, (index, into) => {
    // The thread's index walks the layout being written, so writes are contiguous.
    const [inner, middle, outer] = direction === 'in' ? ['c', 'x', 'y'] : ['x', 'y', 'c'];
    const sizes: Record<string, ReturnType<typeof u32>> = { c: C, x: W, y: H };
    into.push(let_(inner, rem(index, sizes[inner])));
    into.push(let_(middle, rem(div(index, sizes[inner]), sizes[middle])));
    into.push(let_(outer, rem(div(index, mul(sizes[inner], sizes[middle])), sizes[outer])));
    into.push(let_('n', div(index, mul(mul(C, H), W))));
    const [cc, yy, xx, nn] = ['c', 'y', 'x', 'n'].map((v) => ref(v, 'u32'));
    const nchw = add(mul(add(mul(add(mul(nn, C), cc), H), yy), W), xx);
    const nhwcIndex = add(mul(add(mul(add(mul(nn, H), yy), W), xx), C), cc);
    into.push(store(to, index, load(from, direction === 'in' ? nchw : nhwcIndex)));
  });
  return b.finish({
    name: direction === 'in' ? 'nchw_to_nhwc' : 'nhwc_to_nchw',
    summary: `${direction === 'in' ? 'input' : 'output'} layout change, [${n}, ${c}, ${h}, ${w}] ${direction === 'in' ? 'NCHW -> NHWC' : 'NHWC -> NCHW'}`,
    workgroupSize: schedule.workgroupSize,
    workgroups: Math.ceil(total / schedule.workgroupSize),
    schedule,
    body,
  });
}
