// One node's kernel on the interpreter, reading its inputs as the reference executor computed
// them: how the schedule tests check hundreds of schedules a node at a time in milliseconds each.
import { executeGraph, executeReference, type NamedTensors } from '../../src/backends/reference/executor.js';
import { weightGroupData } from '../../src/kernel/execute.js';
import { interpret } from '../../src/kernel/interpret.js';
import { partialSumsOf } from '../../src/kernel/partials.js';
import type { BufferRef } from '../../src/kernel/ir.js';
import { lowerNode, weightPackings } from '../../src/kernel/lower/index.js';
import type { Schedule } from '../../src/kernel/schedule.js';
import type { TargetDescription } from '../../src/kernel/target.js';
import { numel, type Graph, type HostTensor, type Node } from '../../src/ir/types.js';

export interface NodeEnv {
  readonly weights: ReadonlyMap<string, HostTensor>;
  readonly input: HostTensor;
  /** Every model input by name, where the graph takes more than the image (namedNodeEnv). */
  readonly inputs?: NamedTensors;
  readonly packingOf: ReturnType<typeof weightPackings>;
  readonly packed: Map<string, Float32Array>;
  /** Every node's reference value in the kernels' layout. */
  readonly values: Map<number, Float32Array>;
}

/** The environment of `graph` on `weights` and `input`: every node's reference value, in the kernels' layout. */
export function nodeEnv(graph: Graph, weights: ReadonlyMap<string, HostTensor>, input: HostTensor): NodeEnv {
  const values = new Map<number, Float32Array>();
  executeReference(graph, weights, input, { onValue: (n, v) => values.set(n.id, toKernelLayout(v)) });
  return { weights, input, packingOf: weightPackings(graph), packed: new Map(), values };
}

/** nodeEnv for a graph of named inputs (FCMAE: the image and the patch mask). */
export function namedNodeEnv(graph: Graph, weights: ReadonlyMap<string, HostTensor>, inputs: NamedTensors): NodeEnv {
  const values = new Map<number, Float32Array>();
  executeGraph(graph, weights, inputs, { onValue: (n, v) => values.set(n.id, toKernelLayout(v)) });
  return { weights, input: inputs.input, inputs, packingOf: weightPackings(graph), packed: new Map(), values };
}

/** A node's value in the kernels' layout: NHWC for images, as is for [N, C]. */
export function toKernelLayout(t: HostTensor): Float32Array {
  if (t.shape.length !== 4) return t.data;
  const [n, c, h, w] = t.shape;
  const out = new Float32Array(t.data.length);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[((b * h + y) * w + x) * c + ch] = t.data[((b * c + ch) * h + y) * w + x];
  return out;
}

/**
 * Runs one node's kernel under `schedule` on its inputs as the reference computed them, and
 * returns its output (in the kernels' layout). Binds buffers as interpretGraph does; one node at
 * a time keeps a walk over hundreds of schedules to milliseconds each.
 */
export function runNode(graph: Graph, node: Node, schedule: Schedule, on: TargetDescription, env: NodeEnv): Float32Array {
  const program = lowerNode(graph, node, on, schedule);
  const output = new Float32Array(numel(node.type.shape));
  const memoryOf = (ref: BufferRef): Float32Array => {
    switch (ref.kind) {
      case 'value':
        return ref.id === node.id ? output : env.values.get(ref.id)!;
      case 'weight': {
        let packed = env.packed.get(ref.key);
        if (!packed) env.packed.set(ref.key, (packed = env.packingOf(ref.key)?.pack(env.weights.get(ref.key)!) ?? env.weights.get(ref.key)!.data));
        return packed;
      }
      case 'weight-group':
        return weightGroupData(ref.keys, env.weights);
      case 'scratch':
        return new Float32Array(ref.floats);
      case 'partials':
        // Written beside this node's value, or (for a statistic) made from its input's value.
        return ref.id === node.id ? new Float32Array(ref.floats) : partialSumsOf(graph.nodes[ref.id], env.values.get(ref.id)!);
      case 'model-input':
        return ref.name === 'input' ? env.input.data : env.inputs![ref.name].data;
      case 'model-output':
        throw new Error('internal: a node kernel writes the model output');
    }
  };
  const memory: Record<string, Float32Array> = {};
  for (const b of program.buffers) memory[b.name] = memoryOf(b.ref);
  interpret(program, memory);
  return output;
}

/** runNode, with a failure to lower or to interpret named by `what` (the schedule and node). */
export function runNodeAs(what: string, graph: Graph, node: Node, schedule: Schedule, on: TargetDescription, env: NodeEnv): Float32Array {
  try {
    return runNode(graph, node, schedule, on, env);
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`);
  }
}
