// Exports an unfused IR graph as an ONNX model: standard ops of opset 17 only, weights as
// initializers, serialized by hand with ./protobuf.ts. Each IR op becomes one or a few ONNX
// nodes that compute what its `evaluate` computes (src/ir/ops/*.ts), so any ONNX runtime can
// run a convc model, and the reference executor stays the judge of the result. The graph's
// inputs and outputs keep their names: a classifier's `input` and `output`, FCMAE's `input`
// and `mask` ([N, L] as callers hold it), `pred` and `loss`.
import type { WeightMap } from '../backends/reference/executor.js';
import { intAttr, pairAttr } from '../ir/op.js';
import { getOp } from '../ir/registry.js';
import type { Graph, Node, ValueId } from '../ir/types.js';
import { graphInputs } from '../ir/graph-io.js';
import { ints, OnnxDataType, OnnxGraphBuilder, type Initializer, type InitializerData, type Lowering, type OnnxNode } from './onnx-builder.js';
import { compactionLowerings } from './onnx-compaction-lowerings.js';
import { maskLowerings } from './onnx-mask-lowerings.js';
import { ProtobufWriter } from './protobuf.js';

export const onnxIrVersion = 8;
export const onnxOpset = 17;
/** Protobuf cannot parse a message over 2 GiB, and weights are not written as external data. */
export const onnxMaxBytes = 2 ** 31 - 1;

export interface OnnxExportOptions {
  readonly producerVersion?: string;
  /**
   * 'dynamic' (the default): the batch axis of every input and batched output is the symbol
   * `batch`, so one file serves any batch size; 'fixed': the graph's own batch size. No
   * lowering needs a fixed batch (reshapes copy the batch axis). A classifier's samples are
   * independent; FCMAE's are not (its encoder's GRN takes norms over the whole batch, and the
   * loss averages over it), so its results for a batch are those of the batch as a whole.
   * A compacted FCMAE graph (compact-sparse-regions) holds its count of visible patches, so
   * its file serves any batch whose mask keeps exactly that many.
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

const classifierLowerings: Readonly<Record<string, Lowering>> = {
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

const lowerings: Readonly<Record<string, Lowering>> = { ...classifierLowerings, ...maskLowerings, ...compactionLowerings };

/** The ops exportOnnx lowers: the unfused pipeline's, plus input and drop_path (an identity). */
export const onnxExportableOps: readonly string[] = ['input', 'drop_path', ...Object.keys(lowerings)];

/** Ops whose result has no batch axis: FCMAE's loss is one number for the whole batch. */
const unbatchedResults: ReadonlySet<string> = new Set(['masked_patch_loss', 'masked_mean']);

/** A graph input or output as the ONNX file declares it: float32, `batch` for a dynamic batch axis. */
export interface OnnxValueInfo {
  readonly name: string;
  readonly shape: readonly (number | string)[];
}

/** The shape a caller passes for a graph input: the patch mask as [N, L], else the IR's. */
function callerShape(node: Node): readonly number[] {
  if (node.op !== 'patch_mask') return node.type.shape;
  const [n, rows, cols] = node.type.shape;
  return [n, rows * cols];
}

/** The inputs and outputs of `graph`'s export, named as in the graph, in its order. */
export function onnxSignature(graph: Graph, batch: 'dynamic' | 'fixed' = 'dynamic'): { readonly inputs: readonly OnnxValueInfo[]; readonly outputs: readonly OnnxValueInfo[] } {
  const withBatch = (shape: readonly number[]): readonly (number | string)[] => (batch === 'dynamic' ? ['batch', ...shape.slice(1)] : shape);
  return {
    inputs: graphInputs(graph).map(({ name, node }) => ({ name, shape: withBatch(callerShape(node)) })),
    outputs: graph.outputs.map(({ name, id }) => {
      const node = graph.nodes[id];
      return { name, shape: unbatchedResults.has(node.op) ? node.type.shape : withBatch(node.type.shape) };
    }),
  };
}

function checkExportable(node: Node): void {
  const what = `node ${node.id}${node.name ? ` '${node.name}'` : ''} (${node.op})`;
  if (node.fusion) {
    throw new Error(`internal: exportOnnx takes an unfused graph (pipelines.unfused), but ${what} carries fused steps`);
  }
  if (!onnxExportableOps.includes(node.op)) {
    throw new Error(`internal: exportOnnx cannot lower ${what}; it lowers ${onnxExportableOps.join(', ')} (export the unfused pipeline)`);
  }
  // A sparse region's values (type.mask) are exported as the graph holds them: dense with the
  // apply_mask after each op zeroing the masked patches, or, once compact-sparse-regions has
  // run, compacted to the visible patches between gather_patches and scatter_patches.
  if (node.type.dtype !== 'f32') throw new Error(`internal: exportOnnx handles f32 values only; ${what} is ${node.type.dtype}`);
}

function docOf(node: Node): string {
  const where = node.loc ? ` at ${node.loc.file.split(/[\\/]/).pop()}:${node.loc.line}:${node.loc.col}` : '';
  return `convc ${node.op}${node.name ? ` '${node.name}'` : ''}${where}`;
}

export function exportOnnx(graph: Graph, weights: WeightMap, options: OnnxExportOptions = {}): Uint8Array {
  const signature = onnxSignature(graph, options.batch ?? 'dynamic');
  const reserved = [...signature.inputs, ...signature.outputs].map((v) => v.name);
  if (signature.inputs.length === 0 || signature.outputs.length === 0 || new Set(reserved).size !== reserved.length) {
    throw new Error(`internal: exportOnnx needs inputs and outputs of distinct names; '${graph.name}' has inputs ${signature.inputs.map((v) => v.name).join(', ')} and outputs ${signature.outputs.map((v) => v.name).join(', ')}`);
  }
  /** The graph output names of each value; a value may be returned under several. */
  const outputNames = new Map<ValueId, string[]>();
  for (const { name, id } of graph.outputs) outputNames.set(id, [...(outputNames.get(id) ?? []), name]);
  const b = new OnnxGraphBuilder(graph, weights, reserved);
  const values = new Map<ValueId, string>();
  for (const node of graph.nodes) {
    checkExportable(node);
    const names = outputNames.get(node.id) ?? [];
    const label = b.label(node);
    b.doc = docOf(node);
    let value: string;
    if (node.op === 'input' || node.op === 'drop_path') {
      // Identities: the value keeps its name (the image input's is the graph input's).
      value = node.op === 'input' ? getOp(node.op).graphInput! : values.get(node.inputs[0])!;
    } else {
      // A lowering writes the graph output itself when its value is one.
      value = names[0] ?? b.fresh(label);
      lowerings[node.op](b, node, node.inputs.map((i) => values.get(i)!), value, label);
    }
    names.forEach((name, i) => {
      if (name !== value) b.op('Identity', i === 0 ? label : `${label}/${name}`, [value], name);
    });
    values.set(node.id, names[0] ?? value);
  }

  let initializerBytes = 0;
  for (const init of b.initializers.values()) initializerBytes += init.data.byteLength;
  if (initializerBytes > onnxMaxBytes) {
    throw new RangeError(`exportOnnx: ${graph.name}'s weights take ${initializerBytes} bytes, over the 2 GiB a single ONNX file can hold (external data is not supported)`);
  }

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
      for (const input of signature.inputs) g.message(GraphField.input, (w) => writeValueInfo(w, input));
      for (const output of signature.outputs) g.message(GraphField.output, (w) => writeValueInfo(w, output));
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

/** raw_data is little-endian by the spec; a typed array is in the host's order. */
const hostIsLittleEndian = new Uint8Array(Float32Array.of(1).buffer)[3] === 0x3f;

function littleEndianBytes(data: InitializerData): Uint8Array {
  if (hostIsLittleEndian) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const bytes = new Uint8Array(data.byteLength);
  const view = new DataView(bytes.buffer);
  if (data instanceof BigInt64Array) data.forEach((v, i) => view.setBigInt64(8 * i, v, true));
  else data.forEach((v, i) => view.setFloat32(4 * i, v, true));
  return bytes;
}

function writeTensor(w: ProtobufWriter, name: string, init: Initializer): void {
  w.packedVarints(TensorField.dims, init.dims)
    .varint(TensorField.dataType, init.data instanceof BigInt64Array ? OnnxDataType.int64 : OnnxDataType.float)
    .string(TensorField.name, name)
    .bytes(TensorField.rawData, littleEndianBytes(init.data));
}

function writeValueInfo(w: ProtobufWriter, { name, shape }: OnnxValueInfo): void {
  w.string(ValueInfoField.name, name).message(ValueInfoField.type, (type) =>
    type.message(TypeField.tensorType, (tensor) =>
      tensor.varint(TensorTypeField.elemType, OnnxDataType.float).message(TensorTypeField.shape, (s) => {
        for (const dim of shape) {
          s.message(ShapeField.dim, (d) => (typeof dim === 'string' ? d.string(DimensionField.param, dim) : d.varint(DimensionField.value, dim)));
        }
      }),
    ),
  );
}
