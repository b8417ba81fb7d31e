// Graph -> WgslProgram: one or more specialised kernels per IR node, activation buffers
// reused once their last reader has run, weights packed in the layouts the kernels read.
import { commentSafe, renderKernel } from './module.js';
import type { BufferRef, Dispatch, KernelSpec, PackedWeight, ProgramBuffer, ShaderModuleSource, WgslProgram } from './program.js';
import { defaultSchedule, dispatchGrid, type Schedule } from './schedule.js';
import { wgslKernels } from './kernels/index.js';
import type { WeightPacking } from './kernels/kernel.js';
import { kernelNeeds, limitViolations, webgpuDefaultLimits, type TargetLimits } from './target.js';
import { nchwToNhwc, nhwcToNchw } from './kernels/layout.js';
import type { WeightMap } from '../reference/executor.js';
import { paramSetsOf } from '../../ir/fusion.js';
import { describeNode } from '../../ir/print.js';
import { formatShape, numel, type Graph } from '../../ir/types.js';

/**
 * Buffers for activations and scratch are reused once free: best fit, the smallest free
 * buffer that is large enough. Kernels index by their own shape constants, so a buffer may
 * be larger than the value it holds; later (smaller) stages reuse the first stage's buffers.
 */
class BufferPool {
  readonly buffers: ProgramBuffer[] = [];
  private readonly free: number[] = [];

  allocate(floats: number, role: ProgramBuffer['role'], weight?: string): number {
    if (role === 'activation' || role === 'scratch') {
      let best = -1;
      for (const [i, index] of this.free.entries()) {
        const size = this.buffers[index].floats;
        if (size >= floats && (best < 0 || size < this.buffers[this.free[best]].floats)) best = i;
      }
      if (best >= 0) return this.free.splice(best, 1)[0];
    }
    this.buffers.push({ floats, role, ...(weight ? { weight } : {}) });
    return this.buffers.length - 1;
  }

  release(index: number): void {
    this.free.push(index);
  }
}

export interface LowerOptions {
  readonly schedule?: Schedule;
  /** The device limits every kernel must fit; by default WebGPU's, so the runner is portable. */
  readonly limits?: TargetLimits;
}

export function lowerToWgsl(graph: Graph, options: LowerOptions = {}): WgslProgram {
  const schedule = options.schedule ?? defaultSchedule;
  const limits = options.limits ?? webgpuDefaultLimits;
  const pool = new BufferPool();
  const shaders: ShaderModuleSource[] = [];
  const shaderIndex = new Map<string, number>();
  const dispatches: Dispatch[] = [];
  const valueBuffer = new Map<number, number>();
  const weightBuffer = new Map<string, number>();
  const weights: PackedWeight[] = [];
  let weightOffset = 0;

  const inputNode = graph.nodes.find((n) => n.op === 'input')!;
  const outputNode = graph.nodes[graph.output];
  const lastUse = graph.nodes.map((n) => n.id);
  for (const node of graph.nodes) for (const input of node.inputs) lastUse[input] = node.id;

  const weightIndex = (key: string, parts?: readonly string[]): number => {
    let index = weightBuffer.get(key);
    if (index === undefined) {
      const floats = (parts ?? [key]).reduce((sum, k) => sum + numel(graph.params.get(k)!.shape), 0);
      index = pool.allocate(floats, 'weight', key);
      weightBuffer.set(key, index);
      weights.push({ key, floats, offset: weightOffset, layout: '', ...(parts ? { parts } : {}) });
      weightOffset += floats;
    }
    return index;
  };
  const groupKey = (keys: readonly string[]) => `group(${keys.join(', ')})`;

  const refBytes = (ref: BufferRef): number => {
    switch (ref.kind) {
      case 'value':
        return numel(graph.nodes[ref.id].type.shape) * 4;
      case 'weight':
        return numel(graph.params.get(ref.key)!.shape) * 4;
      case 'weight-group':
        return ref.keys.reduce((sum, k) => sum + numel(graph.params.get(k)!.shape) * 4, 0);
      case 'scratch':
        return ref.floats * 4;
      case 'model-input':
        return numel(inputNode.type.shape) * 4;
      case 'model-output':
        return numel(outputNode.type.shape) * 4;
    }
  };

  const emit = (spec: KernelSpec, covers: string, resolve: (ref: BufferRef) => number): void => {
    const code = renderKernel(spec, schedule, covers);
    // Identical kernels (same op, same shapes) share one shader module; their header comment
    // names the first node they were made for.
    const key = code.replace(/^\/\/ Computes IR node\(s\):.*$/m, '');
    let shader = shaderIndex.get(key);
    if (shader === undefined) {
      const needs = kernelNeeds(spec, schedule);
      const over = limitViolations(needs, limits);
      // Kernels and schedules are made to fit; a kernel that does not is a bug, not a user error.
      if (over.length > 0) throw new Error(`internal: kernel ${spec.name} for ${covers} needs ${over.join(', ')}`);
      shader = shaders.length;
      shaderIndex.set(key, shader);
      shaders.push({ name: spec.name, code, needs });
    }
    const threads = spec.cooperative ? spec.cooperative.groups * schedule.workgroupSize : spec.invocations;
    const written = spec.bindings.filter((b) => b.access === 'read_write');
    if (written.length !== 1) throw new Error(`internal: kernel ${spec.name} has ${written.length} read_write bindings; each kernel writes exactly one buffer`);
    dispatches.push({
      shader,
      workgroups: dispatchGrid(threads, schedule),
      buffers: spec.bindings.map((b) => resolve(b.buffer)),
      covers: commentSafe(covers),
      bytes: spec.bindings.reduce((sum, b) => sum + refBytes(b.buffer), 0),
      writes: [resolve(written[0].buffer), refBytes(written[0].buffer) / 4],
    });
  };

  const inputBuffer = pool.allocate(numel(inputNode.type.shape), 'input');
  let outputBuffer = -1;

  for (const node of graph.nodes) {
    const scratch = new Map<string, number>();
    const resolve = (ref: BufferRef): number => {
      switch (ref.kind) {
        case 'value':
          return valueBuffer.get(ref.id)!;
        case 'weight':
          return weightIndex(ref.key);
        case 'weight-group':
          return weightIndex(groupKey(ref.keys), ref.keys);
        case 'scratch': {
          let index = scratch.get(ref.name);
          if (index === undefined) {
            index = pool.allocate(ref.floats, 'scratch');
            scratch.set(ref.name, index);
          }
          return index;
        }
        case 'model-input':
          return inputBuffer;
        case 'model-output':
          return outputBuffer;
      }
    };
    const isOutput = node.id === graph.output && node.type.shape.length !== 4;
    const out = pool.allocate(numel(node.type.shape), isOutput ? 'output' : 'activation');
    valueBuffer.set(node.id, out);
    const outRef: BufferRef = { kind: 'value', id: node.id };
    if (node.op === 'input') {
      emit(nchwToNhwc(node.type, { kind: 'model-input' }, outRef), describeNode(node), resolve);
    } else {
      const kernels = wgslKernels.get(node.op);
      if (!kernels) throw new Error(`internal: the WGSL backend has no kernel for '${node.op}'; run the standard pass pipeline first`);
      const specs = kernels.lower({
        node,
        inputs: node.inputs.map((i) => graph.nodes[i].type),
        input: (i) => ({ kind: 'value', id: node.inputs[i] }),
        weight: (role) => ({ kind: 'weight', key: node.params[role] }),
        paramShape: (key) => graph.params.get(key)!.shape,
        scratch: (name, floats) => ({ kind: 'scratch', name, floats }),
        output: outRef,
        schedule,
      });
      for (const spec of specs) emit(spec, describeNode(node), resolve);
    }
    for (const index of scratch.values()) pool.release(index);
    for (const input of new Set(node.inputs)) if (lastUse[input] === node.id && input !== graph.output) pool.release(valueBuffer.get(input)!);
    if (isOutput) outputBuffer = out;
  }

  if (outputNode.type.shape.length === 4) {
    outputBuffer = pool.allocate(numel(outputNode.type.shape), 'output');
    emit(nhwcToNchw(outputNode.type, { kind: 'value', id: outputNode.id }, { kind: 'model-output' }), describeNode(outputNode), (ref) =>
      ref.kind === 'model-output' ? outputBuffer : valueBuffer.get(outputNode.id)!,
    );
  }

  const packingOf = packings(graph);
  return {
    model: graph.name,
    inputShape: inputNode.type.shape,
    outputShape: outputNode.type.shape,
    shaders,
    buffers: pool.buffers,
    dispatches,
    weights: weights.map((w) => ({
      ...w,
      layout: w.parts ? `concatenation of ${w.parts.join(', ')}` : (packingOf(w.key)?.layout ?? `${formatShape(graph.params.get(w.key)!.shape)} as stored`),
    })),
    inputBuffer,
    outputBuffer,
    largestBufferBytes: pool.buffers.reduce((largest, b) => Math.max(largest, b.floats * 4), 0),
  };
}

/**
 * How each weight is packed, from the kernels of the op (or fused step) that reads it: one walk
 * over the graph for all weights, so lowering stays linear in the graph's size.
 */
function packings(graph: Graph): (key: string) => WeightPacking | undefined {
  const readers = new Map<string, { readonly op: string; readonly role: string }>();
  for (const node of graph.nodes) {
    for (const set of paramSetsOf(node)) {
      for (const [role, key] of Object.entries(set.params)) if (!readers.has(key)) readers.set(key, { op: set.op, role });
    }
  }
  return (key) => {
    const reader = readers.get(key);
    if (!reader) throw new Error(`internal: no node reads weight '${key}'`);
    return wgslKernels.get(reader.op)?.packing?.(reader.role);
  };
}

/** All weights in the packed layouts, concatenated in program order (the runner's weights file). */
export function packWeights(graph: Graph, program: WgslProgram, weights: WeightMap): Float32Array {
  const packed = new Float32Array(program.weights.reduce((sum, w) => sum + w.floats, 0));
  const packingOf = packings(graph);
  for (const w of program.weights) {
    let offset = w.offset;
    for (const key of w.parts ?? [w.key]) {
      const tensor = weights.get(key);
      if (!tensor) throw new Error(`internal: weight '${key}' was not bound`);
      const data = w.parts ? tensor.data : (packingOf(key)?.pack(tensor) ?? tensor.data);
      packed.set(data, offset);
      offset += data.length;
    }
  }
  return packed;
}
