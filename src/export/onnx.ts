// Exports an unfused IR graph as an ONNX model: standard ops of opset 17 only, weights as
// initializers, serialized by hand with ./protobuf.ts. Each IR op becomes one or a few ONNX
// nodes that compute what its `evaluate` computes (src/ir/ops/*.ts), so any ONNX runtime can
// run a convc model, and the reference executor stays the judge of the result.
import type { WeightMap } from '../backends/reference/executor.js';
import { intAttr, pairAttr } from '../ir/op.js';
import { formatShape, numel, type Graph, type Node, type ValueId } from '../ir/types.js';
import { ProtobufWriter } from './protobuf.js';
import { singleInputOutput } from '../ir/graph-io.js';

export const onnxIrVersion = 8;
export const onnxOpset = 17;
/** Protobuf cannot parse a message over 2 GiB, and weights are not written as external data. */
export const onnxMaxBytes = 2 ** 31 - 1;

export interface OnnxExportOptions {
  readonly producerVersion?: string;
  /**
   * 'dynamic' (the default): the batch axis of `input` and `output` is the symbol `batch`, so
   * one file serves any batch size (no op mixes samples); 'fixed': the graph's own batch size.
   */
  readonly batch?: 'dynamic' | 'fixed';
}

// Field numbers of the onnx.proto messages written here (onnx/onnx.proto, IR version 8).
const ModelField = { irVersion: 1, producerName: 2, producerVersion: 3, docString: 6, graph: 7, opsetImport: 8 } as const;
const OpsetIdField = { domain: 1, version: 2 } as const;
const GraphField = { node: 1, name: 2, initializer: 5, docString: 10, input: 11, output: 12 } as const;
const NodeField = { input: 1, output: 2, name: 3, opType: 4, attribute: 5, docString: 6 } as const;
const AttributeField = { name: 1, f: 2, i: 3, s: 4, ints: 8, type: 20 } as const;
const AttributeType = { float: 1, int: 2, string: 3, ints: 7 } as const;
const TensorField = { dims: 1, dataType: 2, name: 8, rawData: 9 } as const;
const ValueInfoField = { name: 1, type: 2 } as const;
const TypeField = { tensorType: 1 } as const;
const TensorTypeField = { elemType: 1, shape: 2 } as const;
const ShapeField = { dim: 1 } as const;
const DimensionField = { value: 1, param: 2 } as const;
const FLOAT = 1; // TensorProto.DataType

type OnnxAttr = { readonly int: number } | { readonly ints: readonly number[] } | { readonly float: number } | { readonly string: string };
type OnnxAttrs = Readonly<Record<string, OnnxAttr>>;

interface OnnxNode {
  readonly opType: string;
  readonly name: string;
  readonly inputs: readonly string[];
  readonly output: string;
  readonly attrs: OnnxAttrs;
  readonly doc?: string;
}

interface Initializer {
  readonly dims: readonly number[];
  readonly data: Float32Array;
}

const ints = (values: readonly number[]): OnnxAttr => ({ ints: values });

/**
 * The ONNX graph being built, and its names. Values, initializers and the graph's `input` and
 * `output` share one namespace; weight keys are reserved up front, so an IR node named like its
 * own weight (layer_scale's "stages.0.0.gamma") gets "stages.0.0.gamma.out" for its value.
 */
class OnnxGraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers = new Map<string, Initializer>();
  private readonly names: Set<string>;
  private readonly labels = new Set<string>();
  /** The doc string given to the nodes of the IR node being lowered. */
  doc: string | undefined;

  constructor(
    private readonly graph: Graph,
    private readonly weights: WeightMap,
  ) {
    this.names = new Set(['input', 'output', ...graph.params.keys()]);
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

  op(opType: string, name: string, inputs: readonly string[], output: string, attrs: OnnxAttrs = {}): string {
    this.nodes.push({ opType, name, inputs, output, attrs, doc: this.doc });
    return output;
  }

  /** One step of a multi-node lowering: its value and its node are both named `<label>/<what>`. */
  step(label: string, what: string, opType: string, inputs: readonly string[], attrs: OnnxAttrs = {}): string {
    const output = this.fresh(`${label}/${what}`);
    return this.op(opType, output, inputs, output, attrs);
  }

  private initializer(name: string, dims: readonly number[], data: Float32Array): string {
    if (this.initializers.has(name)) return name;
    if (this.names.has(name) && !this.graph.params.has(name)) throw new Error(`internal: exportOnnx: initializer name '${name}' is taken by a value`);
    this.names.add(name);
    this.initializers.set(name, { dims, data });
    return name;
  }
}

/**
 * Lowers one IR node: reads `x` (the names of its inputs' values) and must end by writing
 * `out`. Intermediate values and their nodes are named `<label>/<step>`; the last node `<label>`.
 */
type Lowering = (b: OnnxGraphBuilder, node: Node, x: readonly string[], out: string, label: string) => void;

const lowerings: Readonly<Record<string, Lowering>> = {
  conv2d(b, node, [x], out, label) {
    const [kh, kw] = pairAttr(node.attrs, 'kernel');
    const [ph, pw] = pairAttr(node.attrs, 'padding');
    const inputs = [x, b.weight(node.params.weight)];
    if (node.params.bias !== undefined) inputs.push(b.weight(node.params.bias));
    b.op('Conv', label, inputs, out, {
      kernel_shape: ints([kh, kw]),
      strides: ints(pairAttr(node.attrs, 'stride')),
      pads: ints([ph, pw, ph, pw]), // [top, left, bottom, right]: PyTorch pads both sides alike
      dilations: ints([1, 1]),
      group: { int: intAttr(node.attrs, 'groups') },
    });
  },

  linear(b, node, [x], out, label) {
    const cin = intAttr(node.attrs, 'in');
    const cout = intAttr(node.attrs, 'out');
    const rank = node.type.shape.length;
    const bias = node.params.bias !== undefined ? [b.weight(node.params.bias)] : [];
    if (rank === 4) {
      // A linear layer over channels is a 1x1 convolution; the weight is stored reshaped.
      const weight = b.weight(node.params.weight, { suffix: 'as_conv1x1', dims: [cout, cin, 1, 1] });
      b.op('Conv', label, [x, weight, ...bias], out, { kernel_shape: ints([1, 1]) });
    } else if (rank === 2) {
      b.op('Gemm', label, [x, b.weight(node.params.weight), ...bias], out, { transB: { int: 1 } });
    } else {
      throw new Error(`internal: exportOnnx: linear '${label}' on a rank-${rank} value`);
    }
  },

  layernorm(b, node, [x], out, label) {
    const eps = node.attrs.eps as number;
    const rank = node.type.shape.length;
    if (rank === 2) {
      // Channels are the last axis here, which is what LayerNormalization normalises.
      b.op('LayerNormalization', label, [x, b.weight(node.params.weight), b.weight(node.params.bias)], out, { axis: { int: -1 }, epsilon: { float: eps } });
      return;
    }
    // Over axis 1 of NCHW: LayerNormalization only normalises trailing axes, so spell it out
    // (biased variance, as the reference and PyTorch compute it).
    const mean = b.step(label, 'mean', 'ReduceMean', [x], { axes: ints([1]), keepdims: { int: 1 } });
    const centered = b.step(label, 'centered', 'Sub', [x, mean]);
    const squared = b.step(label, 'squared', 'Mul', [centered, centered]);
    const variance = b.step(label, 'variance', 'ReduceMean', [squared], { axes: ints([1]), keepdims: { int: 1 } });
    const shifted = b.step(label, 'variance_eps', 'Add', [variance, b.scalar(`${label}/eps`, eps)]);
    const std = b.step(label, 'std', 'Sqrt', [shifted]);
    const normalized = b.step(label, 'normalized', 'Div', [centered, std]);
    const scaled = b.step(label, 'scaled', 'Mul', [normalized, b.perChannel(node.params.weight, rank)]);
    b.op('Add', label, [scaled, b.perChannel(node.params.bias, rank)], out);
  },

  gelu(b, _node, [x], out, label) {
    // Exact GELU: x * 0.5 * (1 + erf(x / sqrt 2)). Opset 17 has no Gelu op (it came in 20).
    const scaled = b.step(label, 'div_sqrt2', 'Div', [x, b.scalar('const/sqrt2', Math.SQRT2)]);
    const erf = b.step(label, 'erf', 'Erf', [scaled]);
    const onePlus = b.step(label, 'one_plus_erf', 'Add', [erf, b.scalar('const/one', 1)]);
    const product = b.step(label, 'x_times', 'Mul', [x, onePlus]);
    b.op('Mul', label, [product, b.scalar('const/half', 0.5)], out);
  },

  grn(b, node, [x], out, label) {
    // Nx = ||x||_{H,W} / (mean over C of those norms + eps); out = gamma * (x * Nx) + beta + x.
    // Over the batch, the norm spans N too and its [1, C, 1, 1] broadcasts to every sample.
    const norm = b.step(label, 'norm', 'ReduceL2', [x], { axes: ints(node.attrs.over_batch === true ? [0, 2, 3] : [2, 3]), keepdims: { int: 1 } });
    const mean = b.step(label, 'mean_norm', 'ReduceMean', [norm], { axes: ints([1]), keepdims: { int: 1 } });
    const shifted = b.step(label, 'mean_norm_eps', 'Add', [mean, b.scalar(`${label}/eps`, node.attrs.eps as number)]);
    const nx = b.step(label, 'nx', 'Div', [norm, shifted]);
    const xnx = b.step(label, 'x_nx', 'Mul', [x, nx]);
    const scaled = b.step(label, 'scaled', 'Mul', [b.perChannel(node.params.gamma, 4), xnx]);
    const shiftedOut = b.step(label, 'shifted', 'Add', [scaled, b.perChannel(node.params.beta, 4)]);
    b.op('Add', label, [shiftedOut, x], out);
  },

  grn_stats(b, node, [x], out, label) {
    // Nx = ||x||_{H,W} / (mean over C of those norms + eps), as [N, C].
    let norm = b.step(label, 'norm', 'ReduceL2', [x], { axes: ints([2, 3]), keepdims: { int: 0 } });
    if (node.attrs.over_batch === true) {
      // The norm over N of the per-sample norms is the norm over every sample's positions,
      // [1, C]; adding the per-sample norms times 0 repeats it as [N, C] without the int64
      // shape tensor an Expand would need.
      const batch = b.step(label, 'batch_norm', 'ReduceL2', [norm], { axes: ints([0]), keepdims: { int: 1 } });
      const zeros = b.step(label, 'zeros', 'Mul', [norm, b.scalar('const/zero', 0)]);
      norm = b.step(label, 'norm_per_sample', 'Add', [batch, zeros]);
    }
    const mean = b.step(label, 'mean_norm', 'ReduceMean', [norm], { axes: ints([1]), keepdims: { int: 1 } });
    const shifted = b.step(label, 'mean_norm_eps', 'Add', [mean, b.scalar(`${label}/eps`, node.attrs.eps as number)]);
    b.op('Div', label, [norm, shifted], out);
  },

  grn_apply(b, node, [x, nx], out, label) {
    // gamma * (x * Nx) + beta + x. Einsum broadcasts the [N, C] statistics over H and W
    // without the int64 shape tensors an Unsqueeze or Reshape would need.
    const xnx = b.step(label, 'x_nx', 'Einsum', [x, nx], { equation: { string: 'nchw,nc->nchw' } });
    const scaled = b.step(label, 'scaled', 'Mul', [b.perChannel(node.params.gamma, 4), xnx]);
    const shiftedOut = b.step(label, 'shifted', 'Add', [scaled, b.perChannel(node.params.beta, 4)]);
    b.op('Add', label, [shiftedOut, x], out);
  },

  layer_scale(b, node, [x], out, label) {
    b.op('Mul', label, [x, b.perChannel(node.params.scale, node.type.shape.length)], out);
  },

  add(b, _node, [x, y], out, label) {
    b.op('Add', label, [x, y], out);
  },

  global_avg_pool(b, _node, [x], out, label) {
    const pooled = b.step(label, 'pool', 'GlobalAveragePool', [x]);
    b.op('Flatten', label, [pooled], out, { axis: { int: 1 } });
  },
};

/** The ops exportOnnx lowers: the unfused pipeline's, plus input and drop_path (an identity). */
export const onnxExportableOps: readonly string[] = ['input', 'drop_path', ...Object.keys(lowerings)];

function checkExportable(node: Node): void {
  const what = `node ${node.id}${node.name ? ` '${node.name}'` : ''} (${node.op})`;
  if (node.fusion) {
    throw new Error(`internal: exportOnnx takes an unfused graph (pipelines.unfused), but ${what} carries fused steps`);
  }
  if (!onnxExportableOps.includes(node.op)) {
    throw new Error(`internal: exportOnnx cannot lower ${what}; it lowers ${onnxExportableOps.join(', ')} (export the unfused pipeline)`);
  }
  if (node.type.dtype !== 'f32' || node.type.mask !== undefined) {
    throw new Error(`internal: exportOnnx handles dense f32 values only; ${what} is ${node.type.dtype}${node.type.mask !== undefined ? ', masked' : ''}`);
  }
}

function docOf(node: Node): string {
  const where = node.loc ? ` at ${node.loc.file.split(/[\\/]/).pop()}:${node.loc.line}:${node.loc.col}` : '';
  return `convc ${node.op}${node.name ? ` '${node.name}'` : ''}${where}`;
}

export function exportOnnx(graph: Graph, weights: WeightMap, options: OnnxExportOptions = {}): Uint8Array {
  const { input: inputNode, output } = singleInputOutput(graph, 'ONNX export');
  const b = new OnnxGraphBuilder(graph, weights);
  const values = new Map<ValueId, string>();
  for (const node of graph.nodes) {
    checkExportable(node);
    const isOutput = node.id === output;
    const label = b.label(node);
    b.doc = docOf(node);
    if (node.op === 'input' || node.op === 'drop_path') {
      // Identities: the value keeps its name, unless it must be called `output`.
      const source = node.op === 'input' ? 'input' : values.get(node.inputs[0])!;
      values.set(node.id, isOutput ? b.op('Identity', label, [source], 'output') : source);
      continue;
    }
    const out = isOutput ? 'output' : b.fresh(label);
    lowerings[node.op](b, node, node.inputs.map((i) => values.get(i)!), out, label);
    values.set(node.id, out);
  }

  let initializerBytes = 0;
  for (const init of b.initializers.values()) initializerBytes += init.data.byteLength;
  if (initializerBytes > onnxMaxBytes) {
    throw new RangeError(`exportOnnx: ${graph.name}'s weights take ${initializerBytes} bytes, over the 2 GiB a single ONNX file can hold (external data is not supported)`);
  }

  const batch = options.batch ?? 'dynamic';
  const withBatch = (shape: readonly number[]): readonly (number | string)[] => (batch === 'dynamic' ? ['batch', ...shape.slice(1)] : shape);
  const model = new ProtobufWriter()
    .varint(ModelField.irVersion, onnxIrVersion)
    .string(ModelField.producerName, 'convc');
  if (options.producerVersion !== undefined) model.string(ModelField.producerVersion, options.producerVersion);
  model
    .string(ModelField.docString, `${graph.name}, exported by convc from its unfused IR`)
    .message(ModelField.graph, (g) => {
      for (const node of b.nodes) g.message(GraphField.node, (w) => writeNode(w, node));
      g.string(GraphField.name, graph.name);
      for (const [name, init] of b.initializers) g.message(GraphField.initializer, (w) => writeTensor(w, name, init));
      g.message(GraphField.input, (w) => writeValueInfo(w, 'input', withBatch(inputNode.type.shape)));
      g.message(GraphField.output, (w) => writeValueInfo(w, 'output', withBatch(graph.nodes[output].type.shape)));
    })
    .message(ModelField.opsetImport, (w) => w.string(OpsetIdField.domain, '').varint(OpsetIdField.version, onnxOpset));
  const bytes = model.finish();
  if (bytes.length > onnxMaxBytes) throw new RangeError(`exportOnnx: ${graph.name} serializes to ${bytes.length} bytes, over protobuf's 2 GiB limit`);
  return bytes;
}

function writeNode(w: ProtobufWriter, node: OnnxNode): void {
  for (const input of node.inputs) w.string(NodeField.input, input);
  w.string(NodeField.output, node.output);
  w.string(NodeField.name, node.name);
  w.string(NodeField.opType, node.opType);
  for (const [name, value] of Object.entries(node.attrs)) {
    w.message(NodeField.attribute, (a) => {
      a.string(AttributeField.name, name);
      if ('int' in value) a.varint(AttributeField.type, AttributeType.int).varint(AttributeField.i, value.int);
      else if ('ints' in value) a.varint(AttributeField.type, AttributeType.ints).packedVarints(AttributeField.ints, value.ints);
      else if ('string' in value) a.varint(AttributeField.type, AttributeType.string).string(AttributeField.s, value.string);
      else a.varint(AttributeField.type, AttributeType.float).float(AttributeField.f, value.float);
    });
  }
  if (node.doc !== undefined) w.string(NodeField.docString, node.doc);
}

/** raw_data is little-endian by the spec; a Float32Array is in the host's order. */
const hostIsLittleEndian = new Uint8Array(Float32Array.of(1).buffer)[3] === 0x3f;

function littleEndianBytes(data: Float32Array): Uint8Array {
  if (hostIsLittleEndian) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const bytes = new Uint8Array(data.byteLength);
  const view = new DataView(bytes.buffer);
  data.forEach((v, i) => view.setFloat32(4 * i, v, true));
  return bytes;
}

function writeTensor(w: ProtobufWriter, name: string, init: Initializer): void {
  w.packedVarints(TensorField.dims, init.dims)
    .varint(TensorField.dataType, FLOAT)
    .string(TensorField.name, name)
    .bytes(TensorField.rawData, littleEndianBytes(init.data));
}

function writeValueInfo(w: ProtobufWriter, name: string, shape: readonly (number | string)[]): void {
  w.string(ValueInfoField.name, name).message(ValueInfoField.type, (type) =>
    type.message(TypeField.tensorType, (tensor) =>
      tensor.varint(TensorTypeField.elemType, FLOAT).message(TensorTypeField.shape, (s) => {
        for (const dim of shape) {
          s.message(ShapeField.dim, (d) => (typeof dim === 'string' ? d.string(DimensionField.param, dim) : d.varint(DimensionField.value, dim)));
        }
      }),
    ),
  );
}
