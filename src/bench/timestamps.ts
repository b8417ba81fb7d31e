// GPU time of every dispatch of a lowered program, from timestamp queries: each dispatch gets a
// compute pass of its own whose beginning and end the device stamps, so a time is the device's
// own and holds no submission or readback overhead, unlike wall-clock around a submit. All
// dispatches of a forward pass go in one submit, in program order, on buffers of their own
// (weights and input uploaded as the runner would), so nothing here touches the bench's runners.
import { bufferBytes, type PackedWeights } from '../backends/wgsl/lower.js';
import type { WgslProgram } from '../backends/wgsl/program.js';

/** WebGPU's limit on queries in one query set. */
const maxQueriesPerSet = 4096;
const dispatchesPerSet = maxQueriesPerSet / 2;

export interface TimeDispatchesOptions {
  /** Passes whose times are kept. */
  readonly runs: number;
  /** Passes first whose times are dropped (shader compilation, first-use costs). */
  readonly warmup: number;
  /** Called after every pass, warm-up included. */
  readonly onPass?: () => void;
}

/**
 * Milliseconds of GPU time of each dispatch, one array per kept pass (`[run][dispatch]`). The
 * device must have been created with 'timestamp-query'. Throws where the device writes
 * timestamps that cannot be times (zero, or an end before its beginning).
 */
export async function timeDispatches(device: GPUDevice, program: WgslProgram, weights: PackedWeights, input: Float32Array | readonly Float32Array[], options: TimeDispatchesOptions): Promise<number[][]> {
  // The model's inputs in the order the program lists them (image first, then a patch mask).
  const inputs = input instanceof Float32Array ? [input] : input;
  if (inputs.length !== program.inputs.length) throw new Error(`internal: ${program.model} takes ${program.inputs.length} inputs, given ${inputs.length}`);
  const count = program.dispatches.length;
  const owned: { destroy(): void }[] = [];
  const track = <T extends { destroy(): void }>(resource: T): T => {
    owned.push(resource);
    return resource;
  };
  try {
    const upload = (buffer: GPUBuffer, data: PackedWeights | Float32Array) => device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
    const buffers = program.buffers.map((b) => track(device.createBuffer({ size: Math.max(4, bufferBytes(b)), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST })));
    for (const w of program.weights) {
      const index = program.buffers.findIndex((b) => b.role === 'weight' && b.weight === w.key);
      upload(buffers[index], weights.subarray(w.offset, w.offset + w.floats));
    }
    program.inputs.forEach((tensor, i) => upload(buffers[tensor.buffer], inputs[i]));
    const pipelines = await Promise.all(
      program.shaders.map((s) => device.createComputePipelineAsync({ layout: 'auto', compute: { module: device.createShaderModule({ code: s.code }), entryPoint: s.name } })),
    );
    const bindGroups = program.dispatches.map((d) =>
      device.createBindGroup({ layout: pipelines[d.shader].getBindGroupLayout(0), entries: d.buffers.map((b, binding) => ({ binding, resource: { buffer: buffers[b] } })) }),
    );
    const sets = Array.from({ length: Math.ceil(count / dispatchesPerSet) }, (_, s) =>
      track(device.createQuerySet({ type: 'timestamp', count: 2 * Math.min(dispatchesPerSet, count - s * dispatchesPerSet) })),
    );
    // Resolved sets lie 32 KiB apart: resolveQuerySet wants 256-byte-aligned destinations.
    const resolveBytes = sets.length * maxQueriesPerSet * 8;
    const resolved = track(device.createBuffer({ size: resolveBytes, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }));
    const readback = track(device.createBuffer({ size: resolveBytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }));

    const pass = async (): Promise<number[]> => {
      const encoder = device.createCommandEncoder();
      program.dispatches.forEach((d, i) => {
        const at = i % dispatchesPerSet;
        const querySet = sets[Math.floor(i / dispatchesPerSet)];
        const compute = encoder.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * at, endOfPassWriteIndex: 2 * at + 1 } });
        compute.setPipeline(pipelines[d.shader]);
        compute.setBindGroup(0, bindGroups[i]);
        compute.dispatchWorkgroups(...d.workgroups);
        compute.end();
      });
      sets.forEach((set, s) => encoder.resolveQuerySet(set, 0, set.count, resolved, s * maxQueriesPerSet * 8));
      encoder.copyBufferToBuffer(resolved, 0, readback, 0, resolveBytes);
      device.queue.submit([encoder.finish()]);
      await readback.mapAsync(GPUMapMode.READ);
      const stamps = new BigInt64Array(readback.getMappedRange().slice(0));
      readback.unmap();
      return program.dispatches.map((_, i) => {
        const at = Math.floor(i / dispatchesPerSet) * maxQueriesPerSet + 2 * (i % dispatchesPerSet);
        const [begin, end] = [stamps[at], stamps[at + 1]];
        if (begin <= 0n || end < begin) {
          throw new Error(`the adapter wrote unusable timestamps for dispatch ${i} (${program.shaders[program.dispatches[i].shader].name}): begin ${begin} ns, end ${end} ns`);
        }
        return Number(end - begin) / 1e6;
      });
    };

    const times: number[][] = [];
    for (let i = 0; i < options.warmup + options.runs; i++) {
      const ms = await pass();
      if (i >= options.warmup) times.push(ms);
      options.onPass?.();
    }
    return times;
  } finally {
    for (const resource of owned) resource.destroy();
  }
}
