// The memory plan of a sequence of kernel programs: which device buffer each binding uses.
// Target-independent: activations and scratch are reused once their last reader has run, each
// only as its own kind (their storage types may differ), weights get a buffer each (a weight
// group one for its concatenation), and the model's input and output buffers stay apart, one
// for each named input and output.
// Backends turn the plan into their own buffers.
import type { BufferRef } from './ir.js';
import { numel, type Graph } from '../ir/types.js';
import { isGraphOutput } from '../ir/graph-io.js';
import type { ModelKernel } from './lower/index.js';
import { isDirectOutput, modelInputs } from './model-io.js';

export interface PlannedBuffer {
  /** Floats, rounded up to a multiple of 4 so any buffer may be read as vec4 (unless planned exact). */
  readonly floats: number;
  readonly role: 'input' | 'output' | 'activation' | 'scratch' | 'weight';
  /** For weight buffers: the weight's key, or `group(a, b, ...)` for a weight group. */
  readonly weight?: string;
  /** For weight groups: the weights concatenated, in order. */
  readonly parts?: readonly string[];
}

/** A model input's or output's buffer. */
export interface NamedBuffer {
  readonly name: string;
  readonly buffer: number;
}

export interface MemoryPlan {
  readonly buffers: readonly PlannedBuffer[];
  /** Per program, per binding: the buffer index. */
  readonly bindings: readonly (readonly number[])[];
  /** Each model input's buffer, in the order a caller passes them (model-io.ts). */
  readonly inputs: readonly NamedBuffer[];
  /** Each output's buffer, in the graph's output order. */
  readonly outputs: readonly NamedBuffer[];
  /** The image input's buffer and the main output's (inputs[0], outputs[0]). */
  readonly inputBuffer: number;
  readonly outputBuffer: number;
}

/** A program and what it computes: a graph node, or the layout change of image output `output`. */
export type PlannedKernel = ModelKernel;

const roundUp4 = (floats: number) => Math.max(4, Math.ceil(floats / 4) * 4);

/**
 * Best fit: the smallest free buffer that is large enough. Kernels index by their own shape
 * constants, so a buffer may be larger than the value it holds; later (smaller) stages reuse
 * the first stage's buffers.
 */
class BufferPool {
  readonly buffers: PlannedBuffer[] = [];
  private readonly free: number[] = [];

  constructor(private readonly exact: boolean) {}

  allocate(floats: number, role: PlannedBuffer['role'], weight?: { key: string; parts?: readonly string[] }): number {
    const size = this.exact ? floats : roundUp4(floats);
    if ((role === 'activation' || role === 'scratch') && !this.exact) {
      let best = -1;
      for (const [i, index] of this.free.entries()) {
        // Only within a role: scratch (partial sums) stays f32 where activations may be f16.
        if (this.buffers[index].role !== role) continue;
        const have = this.buffers[index].floats;
        if (have >= size && (best < 0 || have < this.buffers[this.free[best]].floats)) best = i;
      }
      if (best >= 0) return this.free.splice(best, 1)[0];
    }
    this.buffers.push({ floats: size, role, ...(weight ? { weight: weight.key, ...(weight.parts ? { parts: weight.parts } : {}) } : {}) });
    return this.buffers.length - 1;
  }

  release(index: number): void {
    this.free.push(index);
  }
}

export const weightGroupKey = (keys: readonly string[]): string => `group(${keys.join(', ')})`;

export interface MemoryPlanOptions {
  /**
   * Every value in a buffer of its own, of exactly its elements (no reuse, no rounding up), so
   * that a sanitizer sees an index past any tensor's end: for checking kernels, not for speed.
   * (A tensor read as vec4 has a multiple of 4 elements anyway.)
   */
  readonly exact?: boolean;
}

/** Plans `kernels`, which compute the graph's nodes in order (then the image outputs' layout changes). */
export function planMemory(graph: Graph, kernels: readonly PlannedKernel[], options: MemoryPlanOptions = {}): MemoryPlan {
  const pool = new BufferPool(options.exact === true);
  const valueBuffer = new Map<number, number>();
  const weightBuffer = new Map<string, number>();
  const lastUse = graph.nodes.map((n) => n.id);
  for (const node of graph.nodes) for (const input of node.inputs) lastUse[input] = node.id;
  // The caller's buffers: one per input and one per output, never reused for anything else.
  const inputs = modelInputs(graph).map(({ name, node }) => ({ name, buffer: pool.allocate(numel(node.type.shape), 'input') }));
  const outputBuffers = new Map<string, number>();

  const weightIndex = (key: string, parts?: readonly string[]): number => {
    let index = weightBuffer.get(key);
    if (index === undefined) {
      const floats = (parts ?? [key]).reduce((sum, k) => sum + numel(graph.params.get(k)!.shape), 0);
      index = pool.allocate(floats, 'weight', { key, ...(parts ? { parts } : {}) });
      weightBuffer.set(key, index);
    }
    return index;
  };

  // Partial sums live from the kernel that writes them to the last that reads them.
  const partialsBuffer = new Map<number, number>();
  const lastPartialsUse = new Map<number, number>();
  kernels.forEach(({ program }, at) => program.buffers.forEach((b) => b.ref.kind === 'partials' && lastPartialsUse.set(b.ref.id, at)));

  const bindings: number[][] = [];
  for (const [at, { node: id, output, program }] of kernels.entries()) {
    const scratch = new Map<string, number>();
    if (id === undefined) {
      const named = graph.outputs.find((o) => o.name === output);
      if (!named) throw new Error(`internal: a layout kernel writes no output of '${graph.name}' (${String(output)})`);
      outputBuffers.set(named.name, pool.allocate(numel(graph.nodes[named.id].type.shape), 'output'));
    } else {
      const node = graph.nodes[id];
      const direct = isDirectOutput(graph, id);
      const out = pool.allocate(numel(node.type.shape), direct ? 'output' : 'activation');
      valueBuffer.set(id, out);
      if (direct) for (const o of graph.outputs) if (o.id === id) outputBuffers.set(o.name, out);
    }
    const resolve = (ref: BufferRef): number => {
      switch (ref.kind) {
        case 'value':
          return valueBuffer.get(ref.id)!;
        case 'weight':
          return weightIndex(ref.key);
        case 'weight-group':
          return weightIndex(weightGroupKey(ref.keys), ref.keys);
        case 'partials': {
          let index = partialsBuffer.get(ref.id);
          if (index === undefined) partialsBuffer.set(ref.id, (index = pool.allocate(ref.floats, 'scratch')));
          return index;
        }
        case 'scratch': {
          let index = scratch.get(ref.name);
          if (index === undefined) scratch.set(ref.name, (index = pool.allocate(ref.floats, 'scratch')));
          return index;
        }
        case 'model-input': {
          const input = inputs.find((i) => i.name === ref.name);
          if (!input) throw new Error(`internal: ${program.name} reads input '${ref.name}', which '${graph.name}' does not take`);
          return input.buffer;
        }
        case 'model-output': {
          const buffer = outputBuffers.get(ref.name);
          if (buffer === undefined) throw new Error(`internal: ${program.name} writes output '${ref.name}' before its buffer is planned`);
          return buffer;
        }
      }
    };
    bindings.push(program.buffers.map((b) => resolve(b.ref)));
    for (const index of scratch.values()) pool.release(index);
    for (const [producer, index] of partialsBuffer) if (lastPartialsUse.get(producer) === at) pool.release(index);
    if (id !== undefined) {
      for (const input of new Set(graph.nodes[id].inputs)) {
        // Inputs read directly have no value buffer of their own; outputs stay to the end.
        const buffer = valueBuffer.get(input);
        if (buffer !== undefined && lastUse[input] === id && !isGraphOutput(graph, input)) pool.release(buffer);
      }
    }
  }
  const outputs = graph.outputs.map(({ name }) => {
    const buffer = outputBuffers.get(name);
    if (buffer === undefined) throw new Error(`internal: no kernel writes output '${name}' of '${graph.name}'`);
    return { name, buffer };
  });
  return { buffers: pool.buffers, bindings, inputs, outputs, inputBuffer: inputs[0].buffer, outputBuffer: outputs[0].buffer };
}
