// The ONNX graph that exportOnnx (./onnx.ts) builds while it lowers IR nodes: its nodes, its
// initializers and the names they share. Lowerings (./onnx.ts, ./onnx-mask-lowerings.ts) only
// speak to this; serialization to protobuf stays in onnx.ts.
import type { WeightMap } from '../backends/reference/executor.js';
import { formatShape, numel, type Graph, type Node, type ValueId } from '../ir/types.js';

export type OnnxAttr = { readonly int: number } | { readonly ints: readonly number[] } | { readonly float: number } | { readonly string: string };
export type OnnxAttrs = Readonly<Record<string, OnnxAttr>>;

export interface OnnxNode {
  readonly opType: string;
  readonly name: string;
  readonly inputs: readonly string[];
  readonly output: string;
  readonly attrs: OnnxAttrs;
  readonly doc?: string;
}

/** float32 weights and constants; int64 for shape tensors and the index tables Gather reads. */
export type InitializerData = Float32Array | BigInt64Array;

/** TensorProto.DataType codes: the element types of initializers, and Cast's `to`. */
export const OnnxDataType = { float: 1, int64: 7 } as const;

export interface Initializer {
  readonly dims: readonly number[];
  readonly data: InitializerData;
}

export const ints = (values: readonly number[]): OnnxAttr => ({ ints: values });

/**
 * The ONNX graph being built, and its names. Values, initializers and the graph's inputs and
 * outputs share one namespace; the graph's input and output names and the weight keys are
 * reserved up front, so an IR node named like its own weight (layer_scale's
 * "stages.0.0.gamma") gets "stages.0.0.gamma.out" for its value.
 */
export class OnnxGraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers = new Map<string, Initializer>();
  private readonly names: Set<string>;
  private readonly labels = new Set<string>();
  private readonly derived = new Map<string, string>();
  /** The doc string given to the nodes of the IR node being lowered. */
  doc: string | undefined;

  constructor(
    private readonly graph: Graph,
    private readonly weights: WeightMap,
    reserved: readonly string[],
  ) {
    for (const name of reserved) {
      if (graph.params.has(name)) throw new Error(`internal: exportOnnx: '${name}' names both a graph input or output and a weight`);
    }
    this.names = new Set([...reserved, ...graph.params.keys()]);
  }

  /** The shape of an IR value, for lowerings that must spell out the layout of their inputs. */
  shapeOf(id: ValueId): readonly number[] {
    return this.graph.nodes[id].type.shape;
  }

  /** A readable, unique name for an IR node: its scope path, or op_id when it has none. */
  label(node: Node): string {
    let label = node.name !== '' ? node.name : `${node.op}_${node.id}`;
    if (this.labels.has(label)) label = `${label}_${node.id}`;
    this.labels.add(label);
    return label;
  }

  /** A value name not used yet: `base`, else `base.out`, `base.out2`, ... */
  fresh(base: string): string {
    let name = base;
    for (let n = 1; this.names.has(name); n++) name = `${base}.out${n === 1 ? '' : n}`;
    this.names.add(name);
    return name;
  }

  /**
   * A weight as an initializer: under its key, or reshaped (same data, other dims) under
   * `key.<suffix>` so the name says it is not the checkpoint's tensor as stored.
   */
  weight(key: string, view?: { readonly suffix: string; readonly dims: readonly number[] }): string {
    const spec = this.graph.params.get(key);
    const tensor = this.weights.get(key);
    if (!spec || !tensor) throw new Error(`internal: exportOnnx: weight '${key}' is ${spec ? 'not bound' : 'not declared by the graph'}`);
    const name = view ? `${key}.${view.suffix}` : key;
    const dims = view ? view.dims : spec.shape;
    if (numel(dims) !== tensor.data.length) throw new Error(`internal: exportOnnx: weight '${key}' has ${tensor.data.length} values, not ${formatShape(dims)}`);
    return this.initializer(name, dims, tensor.data);
  }

  /** A per-channel weight [C] shaped to broadcast along axis 1 of a rank-`rank` value. */
  perChannel(key: string, rank: number): string {
    if (rank === 2) return this.weight(key); // [N, C] * [C] broadcasts on the last axis, the channels
    if (rank === 4) return this.weight(key, { suffix: 'as_nchw', dims: [1, this.weights.get(key)?.data.length ?? 0, 1, 1] });
    throw new Error(`internal: exportOnnx: per-channel weight '${key}' on a rank-${rank} value; IR values are NCHW or NC`);
  }

  /** A float scalar (dims []) initializer; the same name always holds the same value. */
  scalar(name: string, value: number): string {
    const existing = this.initializers.get(name);
    if (existing && existing.data[0] !== Math.fround(value)) throw new Error(`internal: exportOnnx: constant '${name}' given two values`);
    return this.initializer(name, [], Float32Array.of(value));
  }

  /**
   * An int64 vector, the form of Reshape's and Expand's shape operands. Named after its
   * values, so every node that needs the same shape reads one initializer.
   */
  int64s(values: readonly number[]): string {
    return this.initializer(`const/i64[${values.join(',')}]`, [values.length], BigInt64Array.from(values, (v) => BigInt(v)));
  }

  /**
   * A constant tensor of any dims: an index table a lowering precomputes from static geometry.
   * `name` must say everything the values depend on, since a second request under the same
   * name reads the first one's tensor.
   */
  table(name: string, dims: readonly number[], values: readonly number[], type: 'float' | 'int64'): string {
    if (numel(dims) !== values.length) throw new Error(`internal: exportOnnx: table '${name}' has ${values.length} values, not ${formatShape(dims)}`);
    return this.initializer(name, dims, type === 'int64' ? BigInt64Array.from(values, (v) => BigInt(v)) : Float32Array.from(values));
  }

  /**
   * A value several IR nodes derive alike (the patch mask at one resolution), made by `make`
   * the first time `key` is asked for. The nodes land where the first user is lowered, which
   * precedes every later user, so the ONNX graph stays in topological order.
   */
  shared(key: string, make: () => string): string {
    let name = this.derived.get(key);
    if (name === undefined) {
      name = make();
      this.derived.set(key, name);
    }
    return name;
  }

  op(opType: string, name: string, inputs: readonly string[], output: string, attrs: OnnxAttrs = {}): string {
    this.nodes.push({ opType, name, inputs, output, attrs, doc: this.doc });
    return output;
  }

  /** One step of a multi-node lowering: its value and its node are both named `<label>/<what>`. */
  step(label: string, what: string, opType: string, inputs: readonly string[], attrs: OnnxAttrs = {}): string {
    const output = this.fresh(`${label}/${what}`);
    return this.op(opType, output, inputs, output, attrs);
  }

  private initializer(name: string, dims: readonly number[], data: InitializerData): string {
    if (this.initializers.has(name)) return name;
    if (this.names.has(name) && !this.graph.params.has(name)) throw new Error(`internal: exportOnnx: initializer name '${name}' is taken by a value`);
    this.names.add(name);
    this.initializers.set(name, { dims, data });
    return name;
  }
}

/**
 * Lowers one IR node: reads `x` (the names of its inputs' values) and must end by writing
 * `out`, a value of the IR node's own shape. Intermediate values and their nodes are named
 * `<label>/<step>`; the last node `<label>`.
 */
export type Lowering = (b: OnnxGraphBuilder, node: Node, x: readonly string[], out: string, label: string) => void;
