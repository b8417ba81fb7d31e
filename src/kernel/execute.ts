// Runs a whole graph as kernel programs on the CPU interpreter: the same programs, schedules
// and weight packing a GPU backend gets, executed step by step. Slow, and meant for small
// shapes: it is how kernels and schedules are checked against the reference executor on any
// machine (tinygrad's emulated backend is the model).
import type { HostTensor } from '../ir/types.js';
import { numel, type Graph, type Node } from '../ir/types.js';
import { interpret } from './interpret.js';
import type { BufferRef, KernelProgram, StorageType } from './ir.js';
import { lowerNode, lowerOutputLayout, weightPackings } from './lower/index.js';
import { splitForKernels } from './split.js';
import type { Schedule } from './schedule.js';
import { portableTarget, type TargetDescription } from './target.js';
import { mainOutput, singleInputOutput } from '../ir/graph-io.js';

/** A weight group's buffer: its weights concatenated, as stored (small per-channel vectors). */
export function weightGroupData(keys: readonly string[], weights: ReadonlyMap<string, HostTensor>): Float32Array {
  const parts = keys.map((k) => weights.get(k)!.data);
  const joined = new Float32Array(parts.reduce((sum, p) => sum + p.length, 0));
  let at = 0;
  for (const p of parts) {
    joined.set(p, at);
    at += p.length;
  }
  return joined;
}

export interface InterpretGraphOptions {
  readonly target?: TargetDescription;
  /** A schedule for a node, or undefined for the default heuristic's. */
  readonly schedule?: (node: Node) => Schedule | undefined;
  /** How activations and weights are stored (f16: every load and store rounds to f16). */
  readonly storage?: StorageType;
  /** Called with each program before it runs. */
  readonly onProgram?: (program: KernelProgram) => void;
}

export function interpretGraph(given: Graph, weights: ReadonlyMap<string, HostTensor>, input: HostTensor, options: InterpretGraphOptions = {}): HostTensor {
  singleInputOutput(given, 'the kernel interpreter');
  const graph = splitForKernels(given);
  const target = options.target ?? portableTarget(options.storage ?? 'f32');
  const packingOf = weightPackings(graph);
  const values = new Map<number, Float32Array>();
  const partials = new Map<number, Float32Array>();
  const output = new Float32Array(numel(graph.nodes[mainOutput(graph)].type.shape));
  const weight = (key: string): Float32Array => {
    const tensor = weights.get(key);
    if (!tensor) throw new Error(`internal: weight '${key}' was not bound`);
    return packingOf(key)?.pack(tensor) ?? tensor.data;
  };
  const memoryOf = (ref: BufferRef): Float32Array => {
    switch (ref.kind) {
      case 'value': {
        let value = values.get(ref.id);
        if (!value) values.set(ref.id, (value = new Float32Array(numel(graph.nodes[ref.id].type.shape))));
        return value;
      }
      case 'weight':
        return weight(ref.key);
      case 'weight-group':
        return weightGroupData(ref.keys, weights);
      case 'scratch':
        return new Float32Array(ref.floats);
      case 'partials': {
        // Written by the kernel of value ref.id, read by the statistic's after it.
        let sums = partials.get(ref.id);
        if (!sums) partials.set(ref.id, (sums = new Float32Array(ref.floats)));
        return sums;
      }
      case 'model-input':
        return input.data;
      case 'model-output':
        return output;
    }
  };
  const run = (program: KernelProgram) => {
    options.onProgram?.(program);
    const memory: Record<string, Float32Array> = {};
    for (const b of program.buffers) memory[b.name] = memoryOf(b.ref);
    interpret(program, memory);
  };
  for (const node of graph.nodes) run(lowerNode(graph, node, target, options.schedule?.(node), options.storage));
  const out = graph.nodes[mainOutput(graph)];
  if (out.type.shape.length === 4) {
    run(lowerOutputLayout(graph, target, options.storage));
    return { shape: out.type.shape, data: output };
  }
  return { shape: out.type.shape, data: values.get(out.id)! };
}
