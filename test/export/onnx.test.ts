// ONNX export: the protobuf writer's bytes, the exported model run by onnxruntime-node against
// the reference executor (goldens and zoo models), the file's structure, and `convc export`.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { executeReference, type WeightMap } from '../../src/backends/reference/executor.js';
import { exportCommand, exportHelp } from '../../src/cli/commands/export.js';
import { exportOnnx, type OnnxExportOptions } from '../../src/export/onnx.js';
import { encodeVarint, ProtobufWriter } from '../../src/export/protobuf.js';
import type { Graph, HostTensor } from '../../src/ir/types.js';
import { pipelines } from '../../src/passes/manager.js';
import { UserError } from '../../src/util/diagnostics.js';
import { bindWeights } from '../../src/weights/bind.js';
import { randomInput, randomWeights } from '../../src/weights/random.js';
import { captureIo, goldenCases, goldenDir, goldenFiles, goldenGraph, repoPath, toleranceRatio, zooGraph } from '../helpers.js';

// ORT computes in f32 throughout: f32 accumulation in its GEMM/conv kernels and reductions,
// and its own erf (and, at the default optimisation level, a fused Gelu kernel). The reference
// accumulates in f64. Observed differences are ~3e-6 absolute on logits of magnitude ~4
// (tolerance ratio <= 0.03), so the project's fp32 tolerance of 1e-4 abs + rel leaves ~30x
// headroom, while a wrong weight layout, axis or constant gives errors of 1e-2 and more.
const ATOL = 1e-4;
const RTOL = 1e-4;

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const scratch = () => mkdtempSync(join(tmpdir(), 'convc-export-'));

async function runOnnx(model: Uint8Array | string, input: HostTensor, options: ort.InferenceSession.SessionOptions = {}): Promise<HostTensor> {
  const sessionOptions = { executionProviders: ['cpu'], ...options };
  const session = typeof model === 'string' ? await ort.InferenceSession.create(model, sessionOptions) : await ort.InferenceSession.create(model, sessionOptions);
  try {
    const result = await session.run({ input: new ort.Tensor('float32', input.data, [...input.shape]) });
    const output = result.output;
    return { shape: output.dims.map(Number), data: output.data as Float32Array };
  } finally {
    await session.release();
  }
}

async function expectMatchesReference(graph: Graph, weights: WeightMap, input: HostTensor, options: OnnxExportOptions = {}): Promise<HostTensor> {
  const expected = executeReference(graph, weights, input);
  const bytes = exportOnnx(graph, weights, options);
  for (const level of ['all', 'disabled'] as const) {
    const actual = await runOnnx(bytes, input, { graphOptimizationLevel: level });
    expect(actual.shape).toEqual(expected.shape);
    expect(toleranceRatio(actual.data, expected.data, ATOL, RTOL), `graph optimisation '${level}'`).toBeLessThan(1);
  }
  return expected;
}

/** The first `n` samples of an NCHW or NC tensor. */
function firstSamples(t: HostTensor, n: number): HostTensor {
  const per = t.data.length / t.shape[0];
  return { shape: [n, ...t.shape.slice(1)], data: t.data.slice(0, n * per) };
}

// A test-only protobuf reader, to look inside the exported file: fields as (number, value).
type Field = { readonly field: number; readonly value: bigint | Uint8Array };
function readFields(bytes: Uint8Array): Field[] {
  const fields: Field[] = [];
  let at = 0;
  const varint = () => {
    let result = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const byte = bytes[at++];
      result |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return result;
    }
  };
  while (at < bytes.length) {
    const tag = Number(varint());
    const wire = tag & 7;
    if (wire === 0) fields.push({ field: tag >> 3, value: varint() });
    else if (wire === 2 || wire === 5) {
      const length = wire === 5 ? 4 : Number(varint());
      fields.push({ field: tag >> 3, value: bytes.subarray(at, at + length) });
      at += length;
    } else throw new Error(`unexpected wire type ${wire}`);
  }
  return fields;
}
function packedVarints(bytes: Uint8Array): bigint[] {
  // Each varint as the value of a made-up field 1, so readFields can decode it.
  const values: bigint[] = [];
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] < 0x80) {
      values.push(readFields(Uint8Array.of(0x08, ...bytes.subarray(start, i + 1)))[0].value as bigint);
      start = i + 1;
    }
  }
  return values;
}
const text = (v: bigint | Uint8Array) => new TextDecoder().decode(v as Uint8Array);
const all = (fields: Field[], n: number) => fields.filter((f) => f.field === n).map((f) => f.value);
const one = (fields: Field[], n: number) => all(fields, n)[0];

describe('protobuf writer', () => {
  it('encodes varints as hand-computed', () => {
    expect(hex(encodeVarint(0))).toBe('00');
    expect(hex(encodeVarint(1))).toBe('01');
    expect(hex(encodeVarint(127))).toBe('7f');
    expect(hex(encodeVarint(128))).toBe('8001');
    // 300 = 0b10_0101100: low 7 bits 0x2c with the continuation bit (0xac), then 0b10.
    expect(hex(encodeVarint(300))).toBe('ac02');
    expect(hex(encodeVarint(2 ** 32))).toBe('8080808010');
    expect(hex(encodeVarint(Number.MAX_SAFE_INTEGER))).toBe('ffffffffffffff0f');
    // Negative int64: 64-bit two's complement, always ten bytes.
    expect(hex(encodeVarint(-1))).toBe('ffffffffffffffffff01');
    expect(hex(encodeVarint(-2n))).toBe('feffffffffffffffff01');
    expect(() => encodeVarint(0.5)).toThrow(RangeError);
  });

  it('writes fields as the protobuf encoding guide spells them out', () => {
    // Field 1 = 150: tag (1 << 3 | 0) = 0x08, then 150 = 0x96 0x01.
    expect(hex(new ProtobufWriter().varint(1, 150).finish())).toBe('089601');
    // Field 2 = "testing": tag (2 << 3 | 2) = 0x12, length 7, UTF-8.
    expect(hex(new ProtobufWriter().string(2, 'testing').finish())).toBe('120774657374696e67');
    // A nested message in field 3 holding field 1 = 150.
    expect(hex(new ProtobufWriter().message(3, (w) => w.varint(1, 150)).finish())).toBe('1a03089601');
    // Packed repeated field 4 = [3, 270, 86942]: 6 bytes of varints.
    expect(hex(new ProtobufWriter().packedVarints(4, [3, 270, 86942]).finish())).toBe('2206038e029ea705');
    expect(hex(new ProtobufWriter().packedVarints(4, []).finish())).toBe('');
    // Float field 2 = 1.0: tag (2 << 3 | 5) = 0x15, then 0x3f800000 little-endian.
    expect(hex(new ProtobufWriter().float(2, 1).finish())).toBe('150000803f');
    expect(hex(new ProtobufWriter().packedFloats(1, [1, -2]).finish())).toBe('0a080000803f000000c0');
  });

  it('keeps large payloads intact through nesting', () => {
    const payload = Uint8Array.from({ length: 5000 }, (_, i) => i % 251);
    const bytes = new ProtobufWriter().message(7, (w) => w.string(1, 'w').bytes(9, payload).varint(2, 1)).finish();
    const outer = readFields(bytes);
    expect(outer).toHaveLength(1);
    const inner = readFields(one(outer, 7) as Uint8Array);
    expect(text(one(inner, 1))).toBe('w');
    expect(hex(one(inner, 9) as Uint8Array)).toBe(hex(payload));
    expect(one(inner, 2)).toBe(1n);
  });
});

describe('ONNX export vs the reference executor (onnxruntime-node, CPU)', () => {
  it.each(goldenCases.map((c) => c.name))('golden case %s', async (name) => {
    const { input, output, weights, paths } = goldenFiles(name);
    const graph = goldenGraph(name, input, pipelines.unfused);
    const bound = bindWeights(graph, weights, paths.weights);
    await expectMatchesReference(graph, bound, input);
    // And so against PyTorch too.
    const actual = await runOnnx(exportOnnx(graph, bound), input);
    expect(toleranceRatio(actual.data, output.data, ATOL, RTOL)).toBeLessThan(1);
  });

  it.each(['convnextv2-atto', 'convnextv1-tiny'])('zoo model %s at 64x48, random weights', async (variant) => {
    const graph = zooGraph(variant, { batch: 2, height: 64, width: 48 }, pipelines.unfused);
    await expectMatchesReference(graph, randomWeights(graph, 3), randomInput(graph.nodes[0].type.shape, 4));
  });

  it('has a symbolic batch axis by default, and a fixed one on request', async () => {
    const { input, weights, paths } = goldenFiles('convnextv2-mini');
    const graph = goldenGraph('convnextv2-mini', input);
    const bound = bindWeights(graph, weights, paths.weights);
    const dynamic = await ort.InferenceSession.create(exportOnnx(graph, bound));
    expect(dynamic.inputNames).toEqual(['input']);
    expect(dynamic.outputNames).toEqual(['output']);
    expect(dynamic.inputMetadata[0]).toMatchObject({ name: 'input', type: 'float32', shape: ['batch', 3, 64, 48] });
    expect(dynamic.outputMetadata[0]).toMatchObject({ name: 'output', type: 'float32', shape: ['batch', 10] });
    await dynamic.release();
    // One sample through the file exported for two: no op mixes samples.
    const expected = firstSamples(executeReference(graph, bound, input), 1);
    const single = await runOnnx(exportOnnx(graph, bound), firstSamples(input, 1));
    expect(single.shape).toEqual([1, 10]);
    expect(toleranceRatio(single.data, expected.data, ATOL, RTOL)).toBeLessThan(1);
    const fixed = await ort.InferenceSession.create(exportOnnx(graph, bound, { batch: 'fixed' }));
    expect(fixed.inputMetadata[0]).toMatchObject({ shape: [2, 3, 64, 48] });
    await fixed.release();
  });

  it('would notice a wrong weight', async () => {
    // Guards the comparison itself: perturb one GRN gamma in the export only.
    const { input, weights, paths } = goldenFiles('v2-block');
    const graph = goldenGraph('v2-block', input);
    const bound = bindWeights(graph, weights, paths.weights);
    const changed = new Map(bound);
    const gamma = bound.get('block.grn.gamma')!;
    changed.set('block.grn.gamma', { shape: gamma.shape, data: gamma.data.map((v, i) => (i === 3 ? v + 0.05 : v)) });
    const actual = await runOnnx(exportOnnx(graph, changed), input);
    expect(toleranceRatio(actual.data, executeReference(graph, bound, input).data, ATOL, RTOL)).toBeGreaterThan(1);
  });
});

describe('the exported file', () => {
  const { input, weights, paths } = goldenFiles('convnextv1-mini');
  const graph = goldenGraph('convnextv1-mini', input);
  const model = readFields(exportOnnx(graph, bindWeights(graph, weights, paths.weights), { producerVersion: '9.8.7' }));
  const graphFields = readFields(one(model, 7) as Uint8Array);
  const nodes = all(graphFields, 1).map((n) => readFields(n as Uint8Array));
  const initializers = all(graphFields, 5).map((t) => readFields(t as Uint8Array));

  it('is an IR version 8, opset 17 ModelProto from convc', () => {
    expect(one(model, 1)).toBe(8n);
    expect(text(one(model, 2))).toBe('convc');
    expect(text(one(model, 3))).toBe('9.8.7');
    const opsets = all(model, 8).map((o) => readFields(o as Uint8Array));
    expect(opsets).toHaveLength(1);
    expect(text(one(opsets[0], 1) ?? new Uint8Array())).toBe('');
    expect(one(opsets[0], 2)).toBe(17n);
    expect(text(one(graphFields, 2))).toBe('convnextv1-mini');
  });

  it('names initializers after the weight keys, reshaped ones with a suffix', () => {
    const byName = new Map(initializers.map((t) => [text(one(t, 8)), t]));
    for (const key of ['downsample_layers.0.0.weight', 'stages.0.0.dwconv.weight', 'head.weight', 'norm.weight']) expect(byName.has(key), key).toBe(true);
    expect(byName.has('stages.0.0.pwconv1.weight')).toBe(false);
    const conv1x1 = byName.get('stages.0.0.pwconv1.weight.as_conv1x1')!;
    expect(packedVarints(one(conv1x1, 1) as Uint8Array)).toEqual([64n, 16n, 1n, 1n]);
    expect(one(conv1x1, 2)).toBe(1n); // FLOAT
    expect((one(conv1x1, 9) as Uint8Array).length).toBe(64 * 16 * 4);
    expect(byName.has('stages.0.0.gamma.as_nchw')).toBe(true);
  });

  it('names nodes and values after the IR nodes, without clashing with weights', () => {
    const named = new Map(nodes.map((n) => [text(one(n, 3)), n]));
    expect(text(one(named.get('stages.0.0.dwconv')!, 4))).toBe('Conv');
    expect(text(one(named.get('stages.0.0.norm/mean')!, 4))).toBe('ReduceMean');
    expect(text(one(named.get('stages.0.0.act/erf')!, 4))).toBe('Erf');
    expect(text(one(named.get('head')!, 4))).toBe('Gemm');
    expect(text(one(named.get('head')!, 2))).toBe('output');
    // layer_scale's node shares its name with its weight; its value may not.
    expect(text(one(named.get('stages.0.0.gamma')!, 2))).toBe('stages.0.0.gamma.out');
    const outputs = nodes.map((n) => text(one(n, 2)));
    expect(new Set(outputs).size).toBe(outputs.length);
    const initializerNames = new Set(initializers.map((t) => text(one(t, 8))));
    expect(outputs.filter((o) => initializerNames.has(o))).toEqual([]);
  });
});

describe('classifier exports', () => {
  // The bytes of two golden models' exports, pinned when export learnt graphs of several
  // inputs and outputs (FCMAE): a classifier's file did not change by a byte then. A deliberate
  // change to the classifier export updates these, once the tests above pass with it.
  it.each([
    ['convnextv1-mini', {}, 'cd90a6688c40bb22a9539fa7e249af97dd5c39db1a14cf857f38ff332749ece8'],
    ['convnextv2-mini', { batch: 'fixed', producerVersion: '1.2.3' }, '2fd3055436941d8607d2dc1d0ac1441b149c90c878ab1dd0b4ccbba81b857e02'],
  ] as const)('%s %j is byte for byte the file it was', (name, options, sha256) => {
    const { input, weights, paths } = goldenFiles(name);
    const graph = goldenGraph(name, input);
    const bytes = exportOnnx(graph, bindWeights(graph, weights, paths.weights), options);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(sha256);
  });
});

describe('exportOnnx refuses what it cannot express', () => {
  const { input, weights, paths } = goldenFiles('v2-block');

  it('refuses a fused graph', () => {
    const graph = goldenGraph('v2-block', input, pipelines.fused);
    expect(() => exportOnnx(graph, bindWeights(graph, weights, paths.weights))).toThrow(/unfused graph .*fused steps/);
  });

});

describe('convc export', () => {
  const atto = repoPath('models/convnextv2-atto.cnx');

  async function convcExport(...args: string[]) {
    const io = captureIo();
    const code = await exportCommand(args, io);
    return { code, out: io.out(), err: io.err() };
  }

  it('writes an ONNX file that onnxruntime loads and runs', async () => {
    const path = join(scratch(), 'sub', 'atto.onnx');
    const { code, out, err } = await convcExport(atto, '--format', 'onnx', '--random-weights', '--size', '32', '-o', path);
    expect(code).toBe(0);
    expect(err).toBe('');
    expect(out).toMatch(/^exported convnextv2-atto to .*atto\.onnx: ONNX opset 17, input \[batch, 3, 32, 32\] -> output \[batch, 1000\], 3\.\d\dM params, \d+\.\d MiB\n$/);
    const session = await ort.InferenceSession.create(path);
    expect(session.inputMetadata[0]).toMatchObject({ shape: ['batch', 3, 32, 32] });
    await session.release();
    const result = await runOnnx(path, randomInput([3, 3, 32, 32]));
    expect(result.shape).toEqual([3, 1000]);
  });

  it('exports real weights that reproduce the PyTorch golden', async () => {
    const path = join(scratch(), 'mini.onnx');
    const { input, output, paths } = goldenFiles('convnextv2-mini');
    const args = [`${goldenDir}/cases.cnx`, '--model', 'convnextv2-mini', '--format', 'onnx', '--weights', paths.weights, '--batch', '2', '--size', '64x48', '--out', path];
    expect((await convcExport(...args)).code).toBe(0);
    const session = await ort.InferenceSession.create(path);
    expect(session.inputMetadata[0]).toMatchObject({ shape: [2, 3, 64, 48] });
    await session.release();
    expect(toleranceRatio((await runOnnx(path, input)).data, output.data, ATOL, RTOL)).toBeLessThan(1);
  });

  it('uses random weights without a weights option, and says so', async () => {
    const path = join(scratch(), 'atto.onnx');
    const { code, err } = await convcExport(atto, '--format', 'onnx', '--size', '32', '-o', path);
    expect(code).toBe(0);
    expect(err).toMatch(/note: no --weights given; exporting seeded random weights/);
    expect(existsSync(path)).toBe(true);
  });

  it.each([
    [['--format', 'onnx'], /needs an output file: -o FILE/],
    [['--format', 'tflite', '-o', 'x.onnx'], /unknown format 'tflite'; formats: onnx/],
    [['-o', 'x.onnx'], /needs --format; formats: onnx/],
    [['--format', 'onnx', '-o', 'x.onnx', '--no-fuse'], /unknown option '--no-fuse'/],
  ])('%j is a user error', async (args, message) => {
    const dir = scratch();
    const run = convcExport(atto, ...(args as string[]).map((a) => (a === 'x.onnx' ? join(dir, a) : a)));
    await expect(run).rejects.toThrow(UserError);
    await expect(run).rejects.toThrow(message);
    expect(existsSync(join(dir, 'x.onnx'))).toBe(false);
  });

  it('refuses a model over the 2 GiB a single ONNX file holds, before drawing its weights', async () => {
    const path = join(scratch(), 'huge.onnx');
    const run = convcExport(repoPath('models/convnextv2-huge.cnx'), '--format', 'onnx', '-o', path);
    await expect(run).rejects.toThrow(UserError);
    await expect(run).rejects.toThrow(/660\.29M parameters .* over the 2 GiB/);
    expect(existsSync(path)).toBe(false);
  });

  it('documents itself, and only flags it accepts', async () => {
    const { code, out } = await convcExport('--help');
    expect(code).toBe(0);
    expect(out).toBe(`${exportHelp}\n`);
    expect(out).toMatch(/^convc export <file\.cnx>/);
    expect(out).toMatch(/always starts from the unfused pipeline/);
    for (const flag of out.match(/--[a-z-]+/g) ?? []) {
      await expect(convcExport(flag, 'x', '--help'), flag).resolves.toMatchObject({ code: 0 });
    }
  });
});
