// What every kernel lowering shares: the program's bindings, the small per-channel weights of
// fused steps gathered into one buffer, fresh names, and the composition of ops' declared
// math — elementwise steps and reduction statistics — at a site of the kernel.
import { add, assign, bind, div, f32, if_, load, loop, lt, min, mul, reduceSum, ref, rem, sub, u32, var_ } from '../build.js';
import { directInput } from '../model-io.js';
import type { BufferDecl, BufferLayout, BufferRef, Expr, KernelProgram, ScheduleValue, SharedDecl, Stmt } from '../ir.js';
import { sitelessContext, type ElementContext, type ReductionMath, type Statistic } from '../math.js';
import { describeNode } from '../../ir/print.js';
import { getOp } from '../../ir/registry.js';
import { formatShape, numel, type Attrs, type FusedStep, type Graph, type Node, type TensorType } from '../../ir/types.js';

/** The op, attributes and weights of a step or of a node's own op, as math sees them. */
export interface OpUse {
  readonly op: string;
  readonly attrs: Attrs;
  readonly params: Readonly<Record<string, string>>;
  /** Positions in the node's inputs of the op's operands after its running value. */
  readonly operands: readonly number[];
  readonly name: string;
}

export const nodeUse = (node: Node): OpUse => ({
  op: node.op,
  attrs: node.attrs,
  params: node.params,
  operands: node.inputs.slice(1).map((_, i) => i + 1),
  name: node.name,
});
export const stepUse = (step: FusedStep): OpUse => step;

/** A value's element as lowering sees it: NHWC index, sample, channel, and the value's shape. */
export interface Site {
  readonly index: Expr;
  readonly n: Expr;
  readonly c: Expr;
  readonly shape: readonly number[];
}

export class KernelBuilder {
  readonly buffers: BufferDecl[] = [];
  readonly shared: SharedDecl[] = [];
  private readonly groupKeys: string[] = [];
  private readonly groupOffsets = new Map<string, number>();
  private readonly names = new Map<string, number>();

  constructor(
    readonly graph: Graph,
    readonly node: Node,
  ) {}

  inputType(position: number): TensorType {
    return this.graph.nodes[this.node.inputs[position]].type;
  }

  /** A binding for `ref` (one per distinct buffer), named `name` unless already bound. */
  bind(name: string, ref: BufferRef, layout: BufferLayout, access: 'read' | 'read_write' = 'read', vector?: 4): string {
    const at = this.buffers.findIndex((b) => JSON.stringify(b.ref) === JSON.stringify(ref) && b.access === access);
    if (at >= 0) {
      // Vector memory may still be read element by element, so a binding only ever widens.
      if (vector) this.buffers[at] = { ...this.buffers[at], vector };
      return this.buffers[at].name;
    }
    const unique = this.fresh(name);
    this.buffers.push({ name: unique, access, length: numel(layout.shape), dtype: 'f32', layout, ref, ...(vector ? { vector } : {}) });
    return unique;
  }

  /** Input `position`'s value; a model input read directly (a patch mask) from the caller's buffer. */
  input(position: number, name = 'input', vector?: 4): string {
    const id = this.node.inputs[position];
    const direct = directInput(this.graph.nodes[id]);
    const ref: BufferRef = direct === undefined ? { kind: 'value', id } : { kind: 'model-input', name: direct };
    return this.bind(name, ref, valueLayout(this.inputType(position)), 'read', vector);
  }

  /** A weight, in `layout` (by default its shape as stored; see weightPacking for packed ones). */
  weight(key: string, name: string, vector?: 4, layout: BufferLayout = storedLayout(this.graph.params.get(key)!.shape)): string {
    return this.bind(name, { kind: 'weight', key }, layout, 'read', vector);
  }

  output(): string {
    return this.bind('output', { kind: 'value', id: this.node.id }, valueLayout(this.node.type), 'read_write');
  }

  /**
   * The partial sums of value `id`'s statistic over runs of `run` positions, one per run and
   * channel ([runs, c], runs over samples and positions in order): written by the kernel of
   * value `id`, read by the statistic's.
   */
  partials(id: number, run: number, access: 'read' | 'read_write'): string {
    const [n, c, h, w] = this.graph.nodes[id].type.shape;
    const runs = (n * h * w) / run;
    return this.bind('partials', { kind: 'partials', id, floats: runs * c }, { axes: ['run', 'c'], shape: [runs, c] }, access);
  }

  /** A workgroup array. */
  sharedArray(name: string, length: number, vector?: 4): string {
    const unique = this.fresh(name);
    this.shared.push({ name: unique, length, ...(vector ? { vector } : {}) });
    return unique;
  }

  /** A name not used before in this kernel: `name`, then name_1, name_2, ... */
  fresh(name: string): string {
    const seen = this.names.get(name) ?? 0;
    this.names.set(name, seen + 1);
    return seen === 0 ? name : `${name}_${seen}`;
  }

  /** Element `index` of a small weight of a step: all of them share one buffer, `step_params`. */
  groupParam(key: string, index: Expr): Expr {
    let offset = this.groupOffsets.get(key);
    if (offset === undefined) {
      offset = this.groupKeys.reduce((sum, k) => sum + numel(this.graph.params.get(k)!.shape), 0);
      this.groupOffsets.set(key, offset);
      this.groupKeys.push(key);
    }
    return load('step_params', add(u32(offset), index));
  }

  /**
   * The math context of `use` at `site`: operands broadcast by their shape (the same shape: the
   * element itself; [N, C]: by sample and channel; a patch mask [N, rows, cols] under an image:
   * the patch covering the element), weights from the group.
   */
  context(use: OpUse, site: Site): ElementContext {
    return {
      n: site.n,
      c: site.c,
      operand: (i, name) => {
        const position = use.operands[i];
        const shape = this.inputType(position).shape;
        const buffer = this.input(position, name);
        if (shape.length === site.shape.length) return load(buffer, site.index);
        if (shape.length === 3 && site.shape.length === 4) return load(buffer, patchIndex(site, shape));
        if (shape.length === 2) return load(buffer, add(mul(site.n, u32(shape[1])), site.c));
        throw new Error(`internal: ${use.op} reads an operand ${formatShape(shape)} at an element of ${formatShape(site.shape)}`);
      },
      param: (role, index) => this.groupParam(use.params[role], index),
    };
  }

  /** Applies elementwise ops in order to `x` at `site`, naming each result; returns the last. */
  applyElementwise(uses: readonly OpUse[], x: Expr, site: Site, body: Stmt[]): Expr {
    let value = x;
    for (const use of uses) {
      const math = getOp(use.op).kernel;
      if (math.kind !== 'elementwise') throw new Error(`internal: '${use.op}' is not elementwise`);
      if (use.op === 'drop_path') continue;
      value = bind(body, this.fresh(`v_${use.op}`), math.apply(value, this.context(use, site), use.attrs));
    }
    return value;
  }

  /**
   * The statistics of a reduction over one row (a pixel's channels, or a channel's positions),
   * `lanes` threads sharing the row: thread `lane` takes elements lane, lane + lanes, ...
   * Every thread of the workgroup must run these statements (reductions hold barriers);
   * `active` guards the reading of elements. Returns the statistics by name.
   */
  rowStatistics(
    math: ReductionMath,
    attrs: Attrs,
    row: {
      readonly length: number;
      readonly lane: Expr;
      readonly lanes: number;
      readonly active?: Expr;
      readonly perThread?: number;
      readonly reduction?: 'tree' | 'subgroup';
      /** Element i's context, where terms may read operands there (see Statistic). */
      readonly at?: (i: Expr) => ElementContext;
    },
    read: (i: Expr, body: Stmt[], slot: Expr) => Expr,
    body: Stmt[],
  ): Record<string, Expr> {
    const contextAt = (i: Expr): ElementContext => row.at?.(i) ?? sitelessContext;
    const stats: Record<string, Expr> = {};
    for (let at = 0; at < math.stats.length; at++) {
      const stat = math.stats[at];
      const next = math.stats[at + 1];
      if (row.perThread === undefined && next?.centredOn === stat.name) {
        this.meanAndSpread(stat, next, attrs, row, read, body, stats);
        at++;
        continue;
      }
      const sum = this.fresh(`${stat.name}_sum`);
      const inner: Stmt[] = [];
      let accumulate: Stmt;
      if (row.perThread === undefined) {
        const index = this.fresh('i');
        const x = read(ref(index, 'u32'), inner, ref(index, 'u32'));
        inner.push(assign(sum, add(ref(sum, 'f32'), stat.term(x, stats, attrs, contextAt(ref(index, 'u32'))))));
        accumulate = loop(index, row.lane, row.length, inner, { step: row.lanes });
      } else {
        // A fixed number of elements per thread, unrolled, so `slot` indexes registers by a constant.
        const slot = this.fresh('slot');
        const i = add(row.lane, mul(ref(slot, 'u32'), u32(row.lanes)));
        const x = read(i, inner, ref(slot, 'u32'));
        accumulate = loop(slot, 0, row.perThread, [if_(lt(i, u32(row.length)), [...inner, assign(sum, add(ref(sum, 'f32'), stat.term(x, stats, attrs, contextAt(i))))])], { unroll: true });
      }
      body.push(var_(sum, f32(0)), row.active ? if_(row.active, [accumulate]) : accumulate);
      const total = this.fresh(`${stat.name}_total`);
      body.push(reduceSum(total, ref(sum, 'f32'), row.lanes, row.reduction));
      stats[stat.name] = bind(body, this.fresh(stat.name), stat.finish(ref(total, 'f32'), f32(row.length), stats, attrs));
    }
    return stats;
  }

  /**
   * A mean and the sum of squares about it (`spread`, centred on `mean`) in one pass over
   * elements read from memory, where two passes would read each one twice: each thread keeps
   * Welford's running count, mean and sum of squared deviations over its elements, and the
   * lanes combine theirs (Chan et al.): the mean from the sum of count x mean, then the spread
   * from each thread's own plus count x (its mean - the mean)^2. No term cancels, so the
   * variance stays accurate when the mean is large against the spread, as E[x^2] - mean^2 is not.
   */
  private meanAndSpread(
    mean: Statistic,
    spread: Statistic,
    attrs: Attrs,
    row: { readonly length: number; readonly lane: Expr; readonly lanes: number; readonly active?: Expr; readonly reduction?: 'tree' | 'subgroup' },
    read: (i: Expr, body: Stmt[], slot: Expr) => Expr,
    body: Stmt[],
    stats: Record<string, Expr>,
  ): void {
    const [count, running, squares] = [this.fresh(`${mean.name}_count`), this.fresh(`${mean.name}_running`), this.fresh(`${spread.name}_squares`)];
    const index = this.fresh('i');
    const inner: Stmt[] = [];
    const x = bind(inner, this.fresh('x'), read(ref(index, 'u32'), inner, ref(index, 'u32')));
    inner.push(assign(count, add(ref(count, 'f32'), f32(1))));
    const delta = bind(inner, this.fresh('delta'), sub(x, ref(running, 'f32')));
    inner.push(assign(running, add(ref(running, 'f32'), div(delta, ref(count, 'f32')))));
    inner.push(assign(squares, add(ref(squares, 'f32'), mul(delta, sub(x, ref(running, 'f32'))))));
    const accumulate = loop(index, row.lane, row.length, inner, { step: row.lanes });
    body.push(var_(count, f32(0)), var_(running, f32(0)), var_(squares, f32(0)), row.active ? if_(row.active, [accumulate]) : accumulate);
    const sum = this.fresh(`${mean.name}_total`);
    body.push(reduceSum(sum, mul(ref(count, 'f32'), ref(running, 'f32')), row.lanes, row.reduction));
    stats[mean.name] = bind(body, this.fresh(mean.name), mean.finish(ref(sum, 'f32'), f32(row.length), stats, attrs));
    const off = bind(body, this.fresh(`${mean.name}_off`), sub(ref(running, 'f32'), stats[mean.name]));
    const total = this.fresh(`${spread.name}_total`);
    body.push(reduceSum(total, add(ref(squares, 'f32'), mul(ref(count, 'f32'), mul(off, off))), row.lanes, row.reduction));
    stats[spread.name] = bind(body, this.fresh(spread.name), spread.finish(ref(total, 'f32'), f32(row.length), stats, attrs));
  }

  /** The program, with the step weights' group bound last before the output if any were used. */
  finish(program: {
    readonly name: string;
    readonly summary: string;
    readonly workgroupSize: number;
    readonly workgroups: number;
    readonly schedule: ScheduleValue;
    readonly body: readonly Stmt[];
  }): KernelProgram {
    const buffers = [...this.buffers];
    if (this.groupKeys.length > 0) {
      const floats = this.groupKeys.reduce((sum, k) => sum + numel(this.graph.params.get(k)!.shape), 0);
      const at = buffers.findIndex((b) => b.access === 'read_write');
      const layout = { axes: ['params'], shape: [floats] };
      buffers.splice(at < 0 ? buffers.length : at, 0, { name: 'step_params', access: 'read', length: floats, dtype: 'f32', layout, ref: { kind: 'weight-group', keys: [...this.groupKeys] } });
    }
    const written = buffers.filter((b) => b.access === 'read_write');
    const values = written.filter((b) => b.ref.kind !== 'partials').length;
    if (values !== 1 || written.length > 2) throw new Error(`internal: kernel ${program.name} writes ${values} values and ${written.length - values} partial sums; each kernel writes one value and at most one set of partial sums`);
    return { ...program, covers: describeNode(this.node), buffers, shared: [...this.shared] };
  }
}

/**
 * The element of a patch mask `mask` ([N, rows, cols]) covering `site` of an [N, C, H, W] value:
 * the value has H/rows x W/cols positions per patch. The site's position comes from its NHWC
 * index, which every lowering knows. Clamped to the mask: threads that compute an element past
 * the end (an overhanging run, never stored) still read inside it.
 */
function patchIndex(site: Site, mask: readonly number[]): Expr {
  const [n, c, h, w] = site.shape;
  const [, rows, cols] = mask;
  // Unnamed constants: a kernel may see one mask under values of several sizes (a strided
  // convolution's prologue and epilogue).
  const pixel = div(site.index, u32(c));
  const x = rem(pixel, u32(w));
  const y = rem(div(pixel, u32(w)), u32(h));
  const patch = add(mul(add(mul(site.n, u32(rows)), div(y, u32(h / rows))), u32(cols)), div(x, u32(w / cols)));
  return min(patch, u32(n * rows * cols - 1));
}

/** How activations lie in memory: NHWC for images, [n, c] for pooled samples, others as they are. */
export function valueLayout(type: TensorType): BufferLayout {
  const s = type.shape;
  if (s.length === 4) return { axes: ['n', 'h', 'w', 'c'], shape: [s[0], s[2], s[3], s[1]] };
  return { axes: s.length === 2 ? ['n', 'c'] : s.length === 3 ? ['n', 'rows', 'cols'] : s.map((_, i) => `d${i}`), shape: [...s] };
}

/** The model's own inputs and outputs as the caller passes them: images NCHW, others as kernels hold them. */
export function callerLayout(type: TensorType): BufferLayout {
  const s = type.shape;
  return s.length === 4 ? { axes: ['n', 'c', 'h', 'w'], shape: [...s] } : valueLayout(type);
}

/** A weight as stored in the checkpoint: per-channel vectors as [c], others by position. */
export function storedLayout(shape: readonly number[]): BufferLayout {
  return { axes: shape.length === 1 ? ['c'] : shape.map((_, i) => `d${i}`), shape: [...shape] };
}

/** Guards `body` with `cond` when there is one. */
export function guarded(cond: Expr | undefined, body: readonly Stmt[]): Stmt[] {
  return cond ? [if_(cond, body)] : [...body];
}

export const lessThan = (a: Expr, bound: number, name?: string): Expr => lt(a, u32(bound, name));
