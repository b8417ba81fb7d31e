// The memory plan of a sequence of kernel programs: which device buffer each binding uses.
// Target-independent: activations and scratch are reused once their last reader has run, each
// only as its own kind (their storage types may differ), weights get a buffer each (a weight
// group one for its concatenation), and the model's input and output buffers stay apart.
// Backends turn the plan into their own buffers.
import type { BufferRef, KernelProgram } from './ir.js';
import { numel, type Graph } from '../ir/types.js';
import { singleInputOutput } from '../ir/graph-io.js';

export interface PlannedBuffer {
  /** Floats, rounded up to a multiple of 4 so any buffer may be read as vec4. */
  readonly floats: number;
  readonly role: 'input' | 'output' | 'activation' | 'scratch' | 'weight';
  /** For weight buffers: the weight's key, or `group(a, b, ...)` for a weight group. */
  readonly weight?: string;
  /** For weight groups: the weights concatenated, in order. */
  readonly parts?: readonly string[];
}

export interface MemoryPlan {
  readonly buffers: readonly PlannedBuffer[];
  /** Per program, per binding: the buffer index. */
  readonly bindings: readonly (readonly number[])[];
  readonly inputBuffer: number;
  readonly outputBuffer: number;
}

/** A program and the graph node it computes (`undefined` for the output layout change). */
export interface PlannedKernel {
  readonly node?: number;
  readonly program: KernelProgram;
}

const roundUp4 = (floats: number) => Math.max(4, Math.ceil(floats / 4) * 4);

/**
 * Best fit: the smallest free buffer that is large enough. Kernels index by their own shape
 * constants, so a buffer may be larger than the value it holds; later (smaller) stages reuse
 * the first stage's buffers.
 */
class BufferPool {
  readonly buffers: PlannedBuffer[] = [];
  private readonly free: number[] = [];

  allocate(floats: number, role: PlannedBuffer['role'], weight?: { key: string; parts?: readonly string[] }): number {
    const size = roundUp4(floats);
    if (role === 'activation' || role === 'scratch') {
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

/** Plans `kernels`, which compute the graph's nodes in order (then the output layout, if any). */
export function planMemory(graph: Graph, kernels: readonly PlannedKernel[]): MemoryPlan {
  const pool = new BufferPool();
  const valueBuffer = new Map<number, number>();
  const weightBuffer = new Map<string, number>();
  const lastUse = graph.nodes.map((n) => n.id);
  for (const node of graph.nodes) for (const input of node.inputs) lastUse[input] = node.id;
  const { input: inputNode, output: outputId } = singleInputOutput(graph, 'the memory plan');
  const outputNode = graph.nodes[outputId];
  const inputBuffer = pool.allocate(numel(inputNode.type.shape), 'input');
  // A rank-4 output leaves through a layout change into a buffer of its own.
  const outputIsNode = outputNode.type.shape.length !== 4;
  let outputBuffer = -1;

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
  for (const [at, { node: id, program }] of kernels.entries()) {
    const scratch = new Map<string, number>();
    if (id === undefined) {
      outputBuffer = pool.allocate(numel(outputNode.type.shape), 'output');
    } else {
      const node = graph.nodes[id];
      const isOutput = id === outputId && outputIsNode;
      const out = pool.allocate(numel(node.type.shape), isOutput ? 'output' : 'activation');
      valueBuffer.set(id, out);
      if (isOutput) outputBuffer = out;
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
        case 'model-input':
          return inputBuffer;
        case 'model-output':
          return outputBuffer;
      }
    };
    bindings.push(program.buffers.map((b) => resolve(b.ref)));
    for (const index of scratch.values()) pool.release(index);
    for (const [producer, index] of partialsBuffer) if (lastPartialsUse.get(producer) === at) pool.release(index);
    if (id !== undefined) {
      for (const input of new Set(graph.nodes[id].inputs)) if (lastUse[input] === id && input !== outputId) pool.release(valueBuffer.get(input)!);
    }
  }
  return { buffers: pool.buffers, bindings, inputBuffer, outputBuffer };
}
