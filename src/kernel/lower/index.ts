// Graph node + schedule -> kernel program, checked against the target: the one entry point
// backends use. A schedule that does not suit the node, or whose program would exceed the
// target's limits, is refused here, so no renderer ever sees such a kernel.
import type { BufferDecl, KernelProgram, Stmt, StorageType } from '../ir.js';
import { defaultSchedule, scheduleFits, scheduleSpace, type Schedule } from '../schedule.js';
import { layoutText } from '../print.js';
import { bindingBytes, limitViolations, programNeeds, type TargetDescription } from '../target.js';
import { describeNode } from '../../ir/print.js';
import { UserError, type SourceLoc } from '../../util/diagnostics.js';
import { paramSetsOf } from '../../ir/fusion.js';
import { getOp } from '../../ir/registry.js';
import { numel, type Graph, type GraphOutput, type HostTensor, type Node, type ValueId } from '../../ir/types.js';
import { lowerDirect, lowerPixel, lowerSample, lowerWindow, packContractionWeight } from './contraction.js';
import { lowerGather } from './gather.js';
import { lowerGemm } from './gemm.js';
import { lowerElementwise, lowerLayout } from './elementwise.js';
import { lowerPixelRun } from './pixel-run.js';
import { lowerReduction } from './reduction.js';
import { directInput, hasKernel, isDirectOutput, leavesThroughLayout, modelInputs } from '../model-io.js';

/** A schedule that cannot compute a node on a target. */
export class ScheduleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScheduleError';
  }
}

function build(graph: Graph, node: Node, schedule: Schedule): KernelProgram {
  switch (schedule.strategy) {
    case 'elementwise': {
      const input = getOp(node.op).graphInput;
      if (input !== undefined) return lowerLayout(graph, node, 'in', schedule, input);
      return getOp(node.op).kernel.kind === 'gather' ? lowerGather(graph, node, schedule) : lowerElementwise(graph, node, schedule);
    }
    case 'rows':
      return lowerReduction(graph, node, schedule);
    case 'direct':
      return lowerDirect(graph, node, schedule);
    case 'gemm':
      return lowerGemm(graph, node, schedule);
    case 'pixel':
      return (schedule.pixels ?? 1) > 1 ? lowerPixelRun(graph, node, schedule) : lowerPixel(graph, node, schedule);
    case 'window':
      return lowerWindow(graph, node, schedule);
    case 'sample':
      return lowerSample(graph, node, schedule);
  }
}

/**
 * A tensor larger than the target can bind: no schedule helps, only a smaller batch or input
 * (or weights split across bindings, which no kernel does). A user error, located at the node.
 */
export class BindingSizeError extends UserError {
  constructor(
    message: string,
    loc: SourceLoc | undefined,
    /** The bytes it needs, for callers that split the batch to fit. */
    readonly bytes: number,
  ) {
    super({ message, loc });
  }
}

/** Refuses a program binding more bytes in one buffer than the target allows. */
function checkBindings(graph: Graph, node: Node, program: KernelProgram, target: TargetDescription): void {
  for (const buffer of program.buffers) {
    const bytes = bindingBytes(buffer);
    if (bytes <= target.maxStorageBufferBindingSize) continue;
    const ref = buffer.ref;
    const what = ref.kind === 'weight' ? `weight '${ref.key}'` : ref.kind === 'weight-group' ? `weights ${ref.keys.join(', ')}` : `${buffer.name} tensor`;
    throw new BindingSizeError(
      `${graph.name}: ${describeNode(node)} binds ${what} ${layoutText(buffer.layout)} ${buffer.dtype}, ${bytes} bytes, ` +
        `more than ${target.name} can bind (maxStorageBufferBindingSize ${target.maxStorageBufferBindingSize}); use a smaller batch or input size`,
      node.loc,
      bytes,
    );
  }
}

/**
 * The program with activations and weights stored as `storage`. The caller's inputs and outputs
 * stay f32, as they pass them: a rank-4 output leaves through its layout kernel
 * ('model-output'), any other is its node's own value. The body is unchanged: loads widen and
 * stores narrow (ir.ts).
 */
function storedAs(graph: Graph, program: KernelProgram, storage: StorageType): KernelProgram {
  if (storage === 'f32') return program;
  const caller = (b: BufferDecl) => b.ref.kind === 'model-input' || b.ref.kind === 'model-output' || (b.ref.kind === 'value' && isDirectOutput(graph, b.ref.id));
  // Partial sums stay f32 (ir.ts).
  return { ...program, buffers: program.buffers.map((b) => (caller(b) || b.ref.kind === 'partials' ? b : { ...b, dtype: storage })) };
}

/**
 * The kernel computing `node` under `schedule` (by default the heuristic's) on `target`, its
 * activations and weights stored as `storage`.
 */
/** The largest integer f16 holds exactly, with every one below it (2^11). */
const F16_EXACT_INTEGERS = 2048;

export function lowerNode(graph: Graph, node: Node, target: TargetDescription, schedule: Schedule = defaultSchedule(node, target), storage: StorageType = 'f32'): KernelProgram {
  if (storage === 'f16' && getOp(node.op).holdsIndices) {
    const largest = Math.max(...[node.type.shape, ...node.inputs.map((i) => graph.nodes[i].type.shape)].map(numel));
    if (largest > F16_EXACT_INTEGERS) {
      throw new UserError({
        message: `${graph.name}: ${describeNode(node)} numbers up to ${largest} patches, but f16 storage holds integers exactly only up to ${F16_EXACT_INTEGERS}; use f32 storage, a smaller batch, or --dense-mask`,
        ...(node.loc ? { loc: node.loc } : {}),
      });
    }
  }
  if (!hasKernel(node)) throw new Error(`internal: kernels read input '${directInput(node)}' (%${node.id}) directly; it has no kernel of its own`);
  if (!scheduleFits(node, schedule, target)) throw new ScheduleError(`schedule ${JSON.stringify(schedule)} cannot compute ${node.op} node '${node.name}' on ${target.name}`);
  const built = storedAs(graph, build(graph, node, schedule), storage);
  checkBindings(graph, node, built, target);
  const program = usesSubgroups(built.body) ? { ...built, subgroupSize: target.subgroupSize } : built;
  const over = limitViolations(programNeeds(program), target);
  if (over.length > 0) throw new ScheduleError(`kernel ${program.name} under schedule ${JSON.stringify(schedule)} needs ${over.join(', ')} on ${target.name}`);
  return program;
}

/**
 * The kernel of every node that has one (all but the inputs kernels read directly, see
 * model-io.ts; for a classifier, every node), in graph order (`schedule` gives a node's
 * schedule, undefined for the default heuristic's). A model repeats its blocks, so a node
 * lowered like an earlier one (same op, attributes, fusion, shapes, schedule and storage:
 * `loweringKey`) takes that kernel with its own buffers and covers instead of being lowered
 * again. Where a buffer of the earlier kernel cannot be traced to the node's own inputs,
 * weights or value, the node is lowered anew.
 */
export function lowerNodes(graph: Graph, target: TargetDescription, schedule: (node: Node) => Schedule | undefined, storage: StorageType = 'f32'): KernelProgram[] {
  const lowered = new Map<string, { readonly node: Node; readonly program: KernelProgram }>();
  return graph.nodes.filter(hasKernel).map((node) => {
    const chosen = schedule(node) ?? defaultSchedule(node, target);
    const key = loweringKey(graph, node, chosen, storage);
    const earlier = lowered.get(key);
    const reused = earlier && rebound(graph, earlier.program, earlier.node, node);
    if (reused) return reused;
    const program = lowerNode(graph, node, target, chosen, storage);
    lowered.set(key, { node, program });
    return program;
  });
}

/**
 * What lowering reads of a node, without its identity: the op and attributes, the fused steps
 * (operand positions, not names), the shapes of its value, inputs and weights, which inputs and
 * which weights are the same one (a kernel binds each once), whether it reads the model's input
 * or is its output, the partial sums it writes or finishes, the schedule and the storage type.
 * Numbers JSON cannot tell apart (-0, NaN, the infinities) are kept apart.
 */
function loweringKey(graph: Graph, node: Node, schedule: Schedule, storage: StorageType): string {
  const sets = paramSetsOf(node).map((set) => [set.op, set.attrs, Object.entries(set.params).map(([role, key]) => [role, graph.params.get(key)?.shape, graph.params.get(key)?.dtype])]);
  const steps = [...(node.fusion?.prologue ?? []), ...(node.fusion?.epilogue ?? [])].map((step) => step.operands);
  // A model input's name: its own buffer (read directly) or its layout kernel's value, never another value.
  const inputs = node.inputs.map((id) => [getOp(graph.nodes[id].op).graphInput ?? null, graph.nodes[id].type, node.inputs.indexOf(id)]);
  const keys = paramSetsOf(node).flatMap((set) => Object.values(set.params));
  const sameWeights = keys.map((key) => keys.indexOf(key));
  const partials = [node.fusion?.partials?.op, node.fusion?.partials?.attrs, node.fusion?.partials?.positions, node.fusion?.fromPartials];
  return JSON.stringify([node.op, node.type, isDirectOutput(graph, node.id), inputs, sets, sameWeights, node.fusion?.prologue.length ?? 0, steps, partials, schedule, storage], (_key, value: unknown) =>
    typeof value === 'number' && (Object.is(value, -0) || !Number.isFinite(value)) ? `number:${String(value)}` : value,
  );
}

/**
 * `program`, lowered for `from`, as the kernel of `to` (equal in `loweringKey`): each buffer
 * bound to the matching input, weight or value of `to`. Undefined where some buffer has no
 * counterpart, so the caller lowers `to` itself.
 */
function rebound(graph: Graph, program: KernelProgram, from: Node, to: Node): KernelProgram | undefined {
  const values = new Map<number, number>([[from.id, to.id]]);
  from.inputs.forEach((id, i) => values.set(id, to.inputs[i]));
  const weights = new Map<string, string>();
  const toSets = paramSetsOf(to);
  paramSetsOf(from).forEach((set, i) => {
    for (const [role, key] of Object.entries(set.params)) weights.set(key, toSets[i].params[role]);
  });
  const buffers: BufferDecl[] = [];
  for (const buffer of program.buffers) {
    const ref = buffer.ref;
    let mapped: BufferDecl['ref'] | undefined;
    if (ref.kind === 'value') mapped = values.has(ref.id) ? { kind: 'value', id: values.get(ref.id)! } : undefined;
    else if (ref.kind === 'weight') mapped = weights.has(ref.key) ? { kind: 'weight', key: weights.get(ref.key)! } : undefined;
    else if (ref.kind === 'weight-group') mapped = ref.keys.every((key) => weights.has(key)) ? { kind: 'weight-group', keys: ref.keys.map((key) => weights.get(key)!) } : undefined;
    else if (ref.kind === 'partials') mapped = values.has(ref.id) ? { ...ref, id: values.get(ref.id)! } : undefined;
    else if (ref.kind === 'model-input' || ref.kind === 'model-output') mapped = ref;
    if (mapped === undefined) return undefined;
    buffers.push({ ...buffer, ref: mapped });
  }
  return { ...program, covers: describeNode(to), buffers };
}

/**
 * Whether some schedule of `node` (a fused node a pass is considering, say) yields a kernel
 * within the target's limits: the default heuristic's first, then the rest of the space.
 */
export function computable(graph: Graph, node: Node, target: TargetDescription): boolean {
  for (const schedule of scheduleSpace(node, target)) {
    try {
      lowerNode(graph, node, target, schedule);
      return true;
    } catch (error) {
      if (!(error instanceof ScheduleError) && !(error instanceof BindingSizeError)) throw error;
    }
  }
  return false;
}

function usesSubgroups(body: readonly Stmt[]): boolean {
  return body.some((s) => (s.kind === 'reduce' && s.strategy === 'subgroup' && s.lanes > 1) || s.kind === 'shuffle-xor' || (s.kind === 'loop' && usesSubgroups(s.body)) || (s.kind === 'if' && (usesSubgroups(s.then) || (s.else !== undefined && usesSubgroups(s.else)))));
}

/** The layout change of an image output (by default the main one) from NHWC back to NCHW, after its node. */
export function lowerOutputLayout(graph: Graph, target: TargetDescription, storage: StorageType = 'f32', output: GraphOutput = graph.outputs[0]): KernelProgram {
  const node = graph.nodes[output.id];
  const schedule = defaultSchedule(graph.nodes[modelInputs(graph)[0].node.id], target);
  if (schedule.strategy !== 'elementwise') throw new Error('internal: layout kernels are elementwise');
  const program = storedAs(graph, lowerLayout(graph, node, 'out', schedule, output.name), storage);
  checkBindings(graph, node, program, target);
  return program;
}

/** A kernel of a whole model: a node's, or the layout change of the image output `output`. */
export interface ModelKernel {
  readonly node?: ValueId;
  readonly output?: string;
  readonly program: KernelProgram;
}

/**
 * Every kernel of a model in dispatch order: each node's that has one (lowerNodes), then the
 * layout change of each image output, in the graph's output order.
 */
export function lowerModel(graph: Graph, target: TargetDescription, schedule: (node: Node) => Schedule | undefined, storage: StorageType = 'f32'): ModelKernel[] {
  const nodes = graph.nodes.filter(hasKernel);
  const kernels: ModelKernel[] = lowerNodes(graph, target, schedule, storage).map((program, i) => ({ node: nodes[i].id, program }));
  for (const output of graph.outputs) if (leavesThroughLayout(graph, output)) kernels.push({ output: output.name, program: lowerOutputLayout(graph, target, storage, output) });
  return kernels;
}

export interface WeightPacking {
  /** E.g. "[out, in/g, kh, kw] -> [kh, kw, in/g, out]". */
  readonly layout: string;
  readonly pack: (tensor: HostTensor) => Float32Array;
}

/** How kernels want the weight of this role of this op: contraction weights output-channel-last. */
export function weightPacking(op: string, attrs: Node['attrs'], role: string): WeightPacking | undefined {
  const math = getOp(op).kernel;
  if (math.kind !== 'contraction' || math.contraction(attrs).weight !== role) return undefined;
  return { layout: op === 'linear' ? '[out, in] -> [in, out]' : '[out, in/g, kh, kw] -> [kh, kw, in/g, out]', pack: packContractionWeight };
}

/**
 * How each weight of the graph is packed, from the op (or fused step) that reads it: one walk
 * over the graph for all weights, so lowering stays linear in the graph's size.
 */
export function weightPackings(graph: Graph): (key: string) => WeightPacking | undefined {
  const readers = new Map<string, { readonly op: string; readonly attrs: Node['attrs']; readonly role: string }>();
  for (const node of graph.nodes) {
    for (const set of paramSetsOf(node)) {
      for (const [role, key] of Object.entries(set.params)) if (!readers.has(key)) readers.set(key, { op: set.op, attrs: set.attrs, role });
    }
  }
  return (key) => {
    const reader = readers.get(key);
    if (!reader) throw new Error(`internal: no node reads weight '${key}'`);
    return weightPacking(reader.op, reader.attrs, reader.role);
  };
}
