// Runs a whole graph as kernel programs on the CPU interpreter: the same programs, schedules
// and weight packing a GPU backend gets, executed step by step. Slow, and meant for small
// shapes: it is how kernels and schedules are checked against the reference executor on any
// machine (tinygrad's emulated backend is the model).
import { formatShape, numel, type Graph, type HostTensor, type Node } from '../ir/types.js';
import { interpret } from './interpret.js';
import type { BufferRef, KernelProgram, StorageType } from './ir.js';
import { lowerModel, weightPackings } from './lower/index.js';
import { leavesThroughLayout, modelInputs } from './model-io.js';
import { splitForKernels } from './split.js';
import type { Schedule } from './schedule.js';
import { portableTarget, type TargetDescription } from './target.js';
import { singleInputOutput } from '../ir/graph-io.js';

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

/** Tensors by model input or output name. */
export type NamedTensors = Readonly<Record<string, HostTensor>>;

/**
 * Runs a graph's kernels on named inputs (every model input: `input`, and `mask` for FCMAE) to
 * its named outputs, as the WebGPU runner would.
 */
export function interpretModel(given: Graph, weights: ReadonlyMap<string, HostTensor>, inputs: NamedTensors, options: InterpretGraphOptions = {}): Record<string, HostTensor> {
  const graph = splitForKernels(given);
  for (const { name, node } of modelInputs(graph)) {
    const tensor = inputs[name] as HostTensor | undefined;
    if (!tensor) throw new Error(`internal: '${graph.name}' takes input '${name}', which was not given`);
    if (tensor.data.length !== numel(node.type.shape)) throw new Error(`internal: input '${name}' holds ${tensor.data.length} values; '${graph.name}' was built for ${formatShape(node.type.shape)}`);
  }
  const target = options.target ?? portableTarget(options.storage ?? 'f32');
  const packingOf = weightPackings(graph);
  const values = new Map<number, Float32Array>();
  const partials = new Map<number, Float32Array>();
  const outputs = new Map<string, Float32Array>();
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
        return inputs[ref.name].data;
      case 'model-output': {
        const output = graph.outputs.find((o) => o.name === ref.name)!;
        let data = outputs.get(ref.name);
        if (!data) outputs.set(ref.name, (data = new Float32Array(numel(graph.nodes[output.id].type.shape))));
        return data;
      }
    }
  };
  const kernels = lowerModel(graph, target, (node) => options.schedule?.(node), options.storage);
  for (const { program } of kernels) {
    options.onProgram?.(program);
    const memory: Record<string, Float32Array> = {};
    for (const b of program.buffers) memory[b.name] = memoryOf(b.ref);
    interpret(program, memory);
  }
  return Object.fromEntries(
    graph.outputs.map((o) => [o.name, { shape: graph.nodes[o.id].type.shape, data: leavesThroughLayout(graph, o) ? outputs.get(o.name)! : values.get(o.id)! }]),
  );
}

/** A model of one image input and one output: its output for `input` (see interpretModel). */
export function interpretGraph(graph: Graph, weights: ReadonlyMap<string, HostTensor>, input: HostTensor, options: InterpretGraphOptions = {}): HostTensor {
  const { output } = singleInputOutput(graph, 'the kernel interpreter');
  const name = graph.outputs.find((o) => o.id === output)!.name;
  return interpretModel(graph, weights, { input }, options)[name];
}
