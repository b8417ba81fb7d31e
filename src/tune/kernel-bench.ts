// One kernel alone on the device, as the tuner measures a candidate schedule: the node's real
// inputs (the reference executor's values, in the kernel's NHWC layout), its weights packed as
// the runner packs them, one dispatch timed by timestamp queries (the approach of
// src/bench/timestamps.ts, for a single kernel repeated), and its output read back and
// compared with the reference executor's value of the node.
import { dispatchGrid } from '../backends/wgsl/lower.js';
import { renderWgsl } from '../backends/wgsl/render.js';
import type { WeightMap } from '../backends/reference/executor.js';
import type { BufferDecl, BufferLayout, KernelProgram } from '../kernel/ir.js';
import { lowerNode, weightPackings } from '../kernel/lower/index.js';
import { valueLayout } from '../kernel/lower/builder.js';
import { partialSumsOf } from '../kernel/partials.js';
import type { Schedule } from '../kernel/schedule.js';
import type { TargetDescription } from '../kernel/target.js';
import type { Graph, HostTensor, Node } from '../ir/types.js';
import { scaledDifference } from '../util/scaled-difference.js';

/** A node of a kernel-ready graph (after splitForKernels), with what its kernel reads. */
export interface KernelCase {
  readonly graph: Graph;
  readonly node: Node;
  readonly target: TargetDescription;
  /** Reference values (NCHW, or [N, C]) of the node and of the values it reads. */
  readonly values: ReadonlyMap<number, HostTensor>;
  readonly weights: WeightMap;
  /** The model's NCHW input, for the input layout kernel. */
  readonly input: HostTensor;
}

/** A candidate that could not be made into a pipeline: lowering refused it, or the device did. */
export class CandidateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CandidateError';
  }
}

/** A kernel the tuner cannot measure alone (e.g. f16 storage): it keeps the default schedule. */
export class UnmeasurableKernel extends Error {}

/** A compiled candidate with its buffers filled, ready to check and time. */
export interface PreparedKernel {
  readonly schedule: Schedule;
  readonly program: KernelProgram;
  /** Wall ms of lowering, rendering and pipeline creation. */
  readonly compileMs: number;
  /** Runs the dispatch once and returns max |out - ref| / max |ref| against the node's reference value. */
  check(tamper?: (output: Float32Array) => Float32Array): Promise<number>;
  /** GPU ms of `runs` dispatches, each in a timestamped compute pass of its own, in one submit. */
  time(runs: number): Promise<number[]>;
  destroy(): void;
}

/** A value (NCHW or [N, C]) in the layout a kernel buffer declares. */
function inLayout(value: HostTensor, layout: BufferLayout): Float32Array {
  const axes = layout.axes.join('');
  if (axes === 'nc' || axes === 'nchw' || axes === 'c') return value.data;
  if (axes !== 'nhwc' || value.shape.length !== 4) throw new UnmeasurableKernel(`no host conversion to the ${axes} layout`);
  const [n, c, h, w] = value.shape;
  const out = new Float32Array(value.data.length);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let y = 0; y < h; y++) {
        const from = ((b * c + ch) * h + y) * w;
        const to = (b * h + y) * w * c + ch;
        for (let x = 0; x < w; x++) out[to + x * c] = value.data[from + x];
      }
  return out;
}

/** What a buffer of the program holds before the dispatch. */
function bufferData(kernelCase: KernelCase, buffer: BufferDecl, packed: (key: string) => Float32Array): Float32Array | undefined {
  const ref = buffer.ref;
  switch (ref.kind) {
    case 'value': {
      if (buffer.access === 'read_write') return undefined;
      const value = kernelCase.values.get(ref.id);
      if (!value) throw new Error(`internal: no reference value for value ${ref.id}`);
      return inLayout(value, buffer.layout);
    }
    case 'model-input':
      // The tuner measures classifiers: their one input is the image.
      if (ref.name !== 'input') throw new UnmeasurableKernel(`no host data for model input '${ref.name}'`);
      return kernelCase.input.data;
    case 'weight':
      return packed(ref.key);
    case 'weight-group': {
      const parts = ref.keys.map((k) => kernelCase.weights.get(k)!.data);
      const out = new Float32Array(parts.reduce((sum, p) => sum + p.length, 0));
      parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
      return out;
    }
    case 'partials': {
      // Partial sums written here start empty; ones a statistic finishes are made from the
      // reference value of the kernel that writes them.
      if (buffer.access === 'read_write') return undefined;
      const value = kernelCase.values.get(ref.id);
      if (!value) throw new Error(`internal: no reference value for value ${ref.id}`);
      const producer = kernelCase.graph.nodes[ref.id];
      return partialSumsOf(producer, inLayout(value, valueLayout(producer.type)));
    }
    case 'scratch':
    case 'model-output':
      return undefined;
  }
}

/** Weights packed as the runner packs them, each once per case. */
function weightPacker(kernelCase: KernelCase): (key: string) => Float32Array {
  const packingOf = weightPackings(kernelCase.graph);
  const done = new Map<string, Float32Array>();
  return (key) => {
    let data = done.get(key);
    if (!data) {
      const tensor = kernelCase.weights.get(key);
      if (!tensor) throw new Error(`internal: weight '${key}' was not bound`);
      data = packingOf(key)?.pack(tensor) ?? tensor.data;
      done.set(key, data);
    }
    return data;
  };
}

const packers = new WeakMap<KernelCase, (key: string) => Float32Array>();

/**
 * Lowers, renders and compiles `node` under `schedule` and fills its buffers. Throws
 * CandidateError where lowering or the device refuses the kernel, UnmeasurableKernel where the
 * tuner cannot feed it.
 */
export async function prepareKernel(device: GPUDevice, kernelCase: KernelCase, schedule: Schedule): Promise<PreparedKernel> {
  const started = performance.now();
  let program: KernelProgram;
  try {
    program = lowerNode(kernelCase.graph, kernelCase.node, kernelCase.target, schedule);
  } catch (error) {
    throw new CandidateError(`lowering refused it: ${(error as Error).message}`);
  }
  if (program.buffers.some((b) => b.dtype !== 'f32')) throw new UnmeasurableKernel('it stores f16, which the tuner does not feed');
  const written = program.buffers.findIndex((b) => b.access === 'read_write');
  const out = program.buffers[written];
  if (out.ref.kind !== 'value' || out.ref.id !== kernelCase.node.id) throw new UnmeasurableKernel(`it writes ${out.ref.kind}, not the node's value`);
  const reference = inLayout(kernelCase.values.get(kernelCase.node.id)!, out.layout);
  let packed = packers.get(kernelCase);
  if (!packed) packers.set(kernelCase, (packed = weightPacker(kernelCase)));

  const owned: { destroy(): void }[] = [];
  const destroy = () => owned.splice(0).forEach((r) => r.destroy());
  try {
    device.pushErrorScope('validation');
    const code = renderWgsl(program);
    let pipeline: GPUComputePipeline;
    try {
      pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module: device.createShaderModule({ code }), entryPoint: program.name } });
    } catch (error) {
      await device.popErrorScope();
      throw new CandidateError(`the device refused its pipeline: ${(error as Error).message}`);
    }
    const buffers = program.buffers.map((b, i) => {
      const bytes = Math.max(16, Math.ceil(b.length / 4) * 16);
      const buffer = device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | (i === written ? GPUBufferUsage.COPY_SRC : 0) });
      owned.push(buffer);
      const data = bufferData(kernelCase, b, packed!);
      if (data) device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, Math.min(data.byteLength, bytes));
      return buffer;
    });
    const bindGroup = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })) });
    const validation = await device.popErrorScope();
    if (validation) throw new CandidateError(`the device refused it: ${validation.message}`);
    const grid = dispatchGrid(program.workgroups);
    const outBytes = out.length * 4;
    const readOut = device.createBuffer({ size: Math.max(16, Math.ceil(out.length / 4) * 16), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    owned.push(readOut);

    const encodePass = (encoder: GPUCommandEncoder, timestampWrites?: GPUComputePassTimestampWrites) => {
      const pass = encoder.beginComputePass(timestampWrites ? { timestampWrites } : {});
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(...grid);
      pass.end();
    };
    const compileMs = performance.now() - started;
    return {
      schedule,
      program,
      compileMs,
      async check(tamper) {
        const encoder = device.createCommandEncoder();
        encodePass(encoder);
        encoder.copyBufferToBuffer(buffers[written], 0, readOut, 0, Math.ceil(outBytes / 4) * 4);
        device.queue.submit([encoder.finish()]);
        await readOut.mapAsync(GPUMapMode.READ);
        let output: Float32Array = new Float32Array(readOut.getMappedRange().slice(0, outBytes));
        readOut.unmap();
        if (tamper) output = tamper(output);
        return scaledDifference(output, reference);
      },
      async time(runs) {
        const querySet = device.createQuerySet({ type: 'timestamp', count: 2 * runs });
        const resolved = device.createBuffer({ size: 16 * runs, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
        const readback = device.createBuffer({ size: 16 * runs, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
        try {
          const encoder = device.createCommandEncoder();
          for (let r = 0; r < runs; r++) encodePass(encoder, { querySet, beginningOfPassWriteIndex: 2 * r, endOfPassWriteIndex: 2 * r + 1 });
          encoder.resolveQuerySet(querySet, 0, 2 * runs, resolved, 0);
          encoder.copyBufferToBuffer(resolved, 0, readback, 0, 16 * runs);
          device.queue.submit([encoder.finish()]);
          await readback.mapAsync(GPUMapMode.READ);
          const stamps = new BigInt64Array(readback.getMappedRange().slice(0));
          readback.unmap();
          return Array.from({ length: runs }, (_, r) => {
            const [begin, end] = [stamps[2 * r], stamps[2 * r + 1]];
            if (begin <= 0n || end < begin) throw new Error(`the adapter wrote unusable timestamps for ${program.name}: begin ${begin} ns, end ${end} ns`);
            return Number(end - begin) / 1e6;
          });
        } finally {
          querySet.destroy();
          resolved.destroy();
          readback.destroy();
        }
      },
      destroy,
    };
  } catch (error) {
    destroy();
    throw error;
  }
}

