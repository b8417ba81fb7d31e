// Kernels for gather ops (src/kernel/math.ts GatherMath: FCMAE's patch tables and the moves
// between dense and compact patches, patchify): each output element read wherever the op's
// math says.
import { add, assign, div, f32, group, let_, load, local, loop, mul, ref, rem, store, u32, var_ } from '../build.js';
import type { Expr, KernelProgram, Stmt } from '../ir.js';
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

/**
 * `expr` with the parts that do not read `variable` bound by lets in `before`: computed once
 * per thread, not once per iteration of the loop over `variable`. A gather's index math and its
 * table lookups depend on the site only; of its reads, only the last offset depends on the
 * channel.
 */
function hoist(expr: Expr, variable: string, before: Stmt[], fresh: () => string): Expr {
  const varies = (e: Expr): boolean => {
    switch (e.kind) {
      case 'ref':
        return e.name === variable;
      case 'const':
      case 'builtin':
        return false;
      case 'binary':
        return varies(e.a) || varies(e.b);
      case 'unary':
      case 'cast':
      case 'component':
        return varies(e.a);
      case 'select':
        return varies(e.cond) || varies(e.a) || varies(e.b);
      case 'load':
        return varies(e.index);
      case 'vector':
        return e.parts.some(varies);
    }
  };
  const bound = (e: Expr): Expr => {
    if (e.kind === 'const' || e.kind === 'ref' || e.kind === 'builtin') return e;
    const name = fresh();
    before.push(let_(name, e));
    return ref(name, e.type);
  };
  const walk = (e: Expr): Expr => {
    if (!varies(e)) return bound(e);
    switch (e.kind) {
      case 'binary':
        return { ...e, a: walk(e.a), b: walk(e.b) };
      case 'unary':
      case 'cast':
        return { ...e, a: walk(e.a) };
      case 'component':
        return { ...e, a: walk(e.a) };
      case 'select':
        return { ...e, cond: walk(e.cond), a: walk(e.a), b: walk(e.b) };
      case 'load':
        return { ...e, index: walk(e.index) };
      case 'vector':
        return { ...e, parts: [walk(e.parts[0]), walk(e.parts[1]), walk(e.parts[2]), walk(e.parts[3])] };
      default:
        return e;
    }
  };
  return walk(expr);
}

/**
 * One thread per output element, walking the output in storage order; for an image output
 * (unless the schedule asks for a thread per element), one thread per site looping over its
 * channels (contiguous in NHWC), with everything that depends on the site alone (patch lookups,
 * index math) computed once before the loop.
 */
export function lowerGather(graph: Graph, node: Node, schedule: Extract<Schedule, { strategy: 'elementwise' }>): KernelProgram {
  const math = getOp(node.op).kernel;
  if (math.kind !== 'gather') throw new Error(`internal: '${node.op}' is not a gather`);
  const b = new KernelBuilder(graph, node);
  const shape = node.type.shape;
  const shapes = node.inputs.map((_, i) => b.inputType(i).shape);
  const inputs = node.inputs.map((_, i) => b.input(i, `input${i}`));
  const output = b.output();
  const perSite = shape.length === 4 && schedule.element !== true;
  const channels = perSite ? shape[1] : 1;
  const threads = numel(shape) / channels;
  const stmts: Stmt[] = [let_('index', add(mul(group, u32(schedule.workgroupSize, 'WORKGROUP_SIZE')), local))];
  const index = ref('index', 'u32');
  const inner: Stmt[] = [];
  const sum = (count: number, term: (i: Expr) => Expr): Expr => {
    const [total, i] = [b.fresh('sum'), b.fresh('k')];
    inner.push(var_(total, f32(0)), loop(i, 0, count, [assign(total, add(ref(total, 'f32'), term(ref(i, 'u32'))))]));
    return ref(total, 'f32');
  };
  const read = (i: number, coords: readonly Expr[]): Expr => load(inputs[i], storageIndex(shapes[i], coords));
  if (perSite) {
    // The site's coordinates from its index over [N, H, W]; the channel is the loop's.
    const [n, , h, w] = shape;
    const site = coordinatesOf([n, h, w], index, inner);
    const c = b.fresh('c');
    const value = math.value({ coords: [site[0], ref(c, 'u32'), site[1], site[2]], shape, shapes, read, sum }, node.attrs);
    const body = [store(output, add(mul(index, u32(channels, 'C')), ref(c, 'u32')), hoist(value, c, inner, () => b.fresh('at')))];
    inner.push(loop(c, 0, channels, body));
  } else {
    const value = math.value({ coords: coordinatesOf(shape, index, inner), shape, shapes, read, sum }, node.attrs);
    inner.push(store(output, index, value));
  }
  stmts.push(...guarded(lessThan(index, threads, perSite ? 'SITES' : 'ELEMENTS'), inner));
  return b.finish({
    name: node.op,
    summary: getOp(node.op).summary,
    workgroupSize: schedule.workgroupSize,
    workgroups: Math.ceil(threads / schedule.workgroupSize),
    schedule,
    body: stmts,
  });
}
