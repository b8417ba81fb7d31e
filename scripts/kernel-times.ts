// Times each kernel of a model alone on the WebGPU adapter, fused and unfused pipelines side by
// side, and sums them per kernel name: how a fused kernel compares with the unfused kernels
// it replaces. Each dispatch is submitted on its own and waited for, `--runs` times after a
// warm-up pass; the median is kept. Wall-clock per submit, so a few tens of microseconds of
// submission overhead are in every number (and alike in both pipelines).
//
//   npx tsx scripts/kernel-times.ts models/convnextv2-atto.cnx [--size 224] [--runs 5] [--adapter vulkan]
//     [--only NAME-PART] [--override SHAPE=JSON ...] [--each: every dispatch, not only the sums]
import { parseArgs } from 'node:util';
import { acquireGpu, type AdapterChoice } from '../src/backends/webgpu/device.js';
import { bufferBytes, lowerToWgsl, packWeights } from '../src/backends/wgsl/lower.js';
import { elaborate, selectModel } from '../src/dsl/elaborate.js';
import { loadProgram } from '../src/dsl/load.js';
import { defaultSchedule, kernelShape, scheduleFits, type Schedule } from '../src/kernel/schedule.js';
import { targetOfDevice } from '../src/kernel/target.js';
import { pipelines, runPipeline } from '../src/passes/manager.js';
import { withDerivedWeights } from '../src/weights/derive.js';
import { randomWeights } from '../src/weights/random.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { size: { type: 'string', default: '224' }, runs: { type: 'string', default: '5' }, override: { type: 'string', multiple: true }, each: { type: 'boolean' }, only: { type: 'string' }, adapter: { type: 'string', default: 'vulkan' } } });
const file = positionals[0] ?? 'models/convnextv2-atto.cnx';
const size = Number(values.size);
const runs = Number(values.runs);
const gpu = await acquireGpu({ adapter: values.adapter as AdapterChoice });
const { device } = gpu;
const program = loadProgram(file);
const base = elaborate(program, selectModel(program, undefined, file), { batch: 1, height: size, width: size });

// --override SHAPE=JSON changes the default schedule of every node of that kernel shape, e.g.
// --override 'pixel={"lanes":4}' or --override 'contraction={"vector":4}'.
const overrides = new Map<string, Record<string, unknown>>(
  (values.override ?? []).map((o) => {
    const at = o.indexOf('=');
    return [o.slice(0, at), JSON.parse(o.slice(at + 1)) as Record<string, unknown>];
  }),
);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timeKernels(name: 'fused' | 'unfused'): Promise<Map<string, { calls: number; ms: number }>> {
  const graph = runPipeline(base, pipelines[name]);
  const target = targetOfDevice(device, gpu.adapterInfo);
  const wgsl = lowerToWgsl(graph, {
    target,
    schedule: (node) => {
      const change = overrides.get(kernelShape(node));
      if (!change) return undefined;
      // Where the changed schedule does not fit the node, it keeps the default.
      const changed = { ...defaultSchedule(node, target), ...change } as Schedule;
      return scheduleFits(node, changed, target) ? changed : undefined;
    },
  });
  const weights = packWeights(graph, wgsl, withDerivedWeights(graph, randomWeights(graph, 1)));
  const buffers = wgsl.buffers.map((b) => device.createBuffer({ size: Math.max(4, bufferBytes(b)), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST }));
  for (const w of wgsl.weights) {
    const index = wgsl.buffers.findIndex((b) => b.role === 'weight' && b.weight === w.key);
    device.queue.writeBuffer(buffers[index], 0, weights, w.offset, w.floats);
  }
  device.queue.writeBuffer(buffers[wgsl.inputBuffer], 0, new Float32Array(wgsl.buffers[wgsl.inputBuffer].floats).map(() => Math.random() - 0.5));
  const pipelinesByShader = await Promise.all(
    wgsl.shaders.map((s) => device.createComputePipelineAsync({ layout: 'auto', compute: { module: device.createShaderModule({ code: s.code }), entryPoint: s.name } })),
  );
  const steps = wgsl.dispatches.map((d) => ({
    d,
    bindGroup: device.createBindGroup({ layout: pipelinesByShader[d.shader].getBindGroupLayout(0), entries: d.buffers.map((b, binding) => ({ binding, resource: { buffer: buffers[b] } })) }),
  }));
  const submit = async (only?: (typeof steps)[number]) => {
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    for (const { d, bindGroup } of only ? [only] : steps) {
      pass.setPipeline(pipelinesByShader[d.shader]);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(...d.workgroups);
    }
    pass.end();
    device.queue.submit([encoder.finish()]);
    await device.queue.onSubmittedWorkDone();
  };
  await submit();
  const totals = new Map<string, { calls: number; ms: number }>();
  for (const step of steps) {
    if (values.only && !wgsl.shaders[step.d.shader].name.includes(values.only)) continue;
    const times: number[] = [];
    for (let r = 0; r < runs; r++) {
      const started = performance.now();
      await submit(step);
      times.push(performance.now() - started);
    }
    const kernel = wgsl.shaders[step.d.shader].name;
    if (values.each) console.log(`  ${name} ${median(times).toFixed(2).padStart(8)} ms  ${kernel}  ${step.d.covers}`);
    const entry = totals.get(kernel) ?? { calls: 0, ms: 0 };
    totals.set(kernel, { calls: entry.calls + 1, ms: entry.ms + median(times) });
  }
  for (const b of buffers) b.destroy();
  return totals;
}

const report = (name: string, totals: Map<string, { calls: number; ms: number }>) => {
  const all = [...totals.values()].reduce((sum, t) => sum + t.ms, 0);
  console.log(`\n${name} (${base.name}, 1x${size}x${size}, ${gpu.adapterInfo}): ${all.toFixed(1)} ms in all`);
  for (const [kernel, t] of [...totals].sort((a, b) => b[1].ms - a[1].ms)) console.log(`  ${kernel.padEnd(40)} ${String(t.calls).padStart(4)} calls ${t.ms.toFixed(1).padStart(9)} ms`);
};
report('fused', await timeKernels('fused'));
report('unfused', await timeKernels('unfused'));
gpu.destroy();
