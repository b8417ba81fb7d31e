// The gpu.js renderer: kernels of the gpu.js target render as readable kernel functions, and
// anything a fragment shader cannot do (workgroup memory, barriers, writing another element, a
// loop bound gpu.js would cut) is refused as a compiler bug before gpu.js could run it wrong.
import { describe, expect, it } from 'vitest';
import { renderGpuJsKernel } from '../../../src/backends/gpujs/render.js';
import { lowerToGpuJs } from '../../../src/backends/gpujs/lower.js';
import { gpujsTarget } from '../../../src/backends/gpujs/target.js';
import { f32, ref, store, u32, var_ } from '../../../src/kernel/build.js';
import { lowerModel } from '../../../src/kernel/lower/index.js';
import { webgpuDefaultTarget } from '../../../src/kernel/target.js';
import { getOp } from '../../../src/ir/registry.js';
import { pipelines, runPipeline } from '../../../src/passes/manager.js';
import { zooGraph } from '../../helpers.js';
import { sumProgram } from './programs.js';

const atto = () => zooGraph('convnextv2-atto', { batch: 1, height: 32, width: 32 }, []);

describe('gpu.js kernels', () => {
  it('are functions of their inputs, returning the element they run for, with a header naming their IR nodes', () => {
    const graph = runPipeline(atto(), pipelines.fused, { context: { target: gpujsTarget } });
    const program = lowerToGpuJs(graph);
    const gelu = program.shaders.find((s) => s.name === 'linear_gelu');
    expect(gelu?.code).toMatch(/^\/\/ linear_gelu: linear over channels, 40 -> 160, \+ bias; fused: \[linear\] -> gelu\n\/\/ Computes IR node\(s\): %\d+ linear\+gelu stages\.0\.0\.pwconv1/);
    expect(gelu?.code).toContain('function linear_gelu(input, weight, bias) {\n  let result = 0.0;\n  const index = this.thread.x;');
    expect(gelu?.code).toContain('  return result;\n}\n');
    // Every loop bound is a literal: nothing for gpu.js to cut at loopMaxIterations.
    for (const s of program.shaders) for (const [, from, to] of s.code.matchAll(/for \(let \w+ = (\S+); \w+ < (\S+);/g)) expect([from, to].every((b) => /^\d+$/.test(b))).toBe(true);
    expect(program.helpers.map((h) => h.name)).toEqual(['convc_udiv', 'convc_urem', 'convc_erf']);
  });

  it('refuse what a fragment shader cannot do', () => {
    const graph = runPipeline(atto(), pipelines.unfused);
    // The WebGPU target's kernels share rows through workgroup memory and write many elements.
    const shared = lowerModel(graph, webgpuDefaultTarget, () => undefined).find((k) => k.program.shared.length > 0 || k.program.body.some((s) => s.kind === 'reduce' && s.lanes > 1));
    expect(shared).toBeDefined();
    expect(() => renderGpuJsKernel(shared!.program)).toThrow(/internal: gpu.js kernels cannot express/);
    const other = sumProgram(8, [store('out', u32(0), f32(1))]);
    expect(() => renderGpuJsKernel(other)).toThrow("internal: gpu.js kernels cannot express a store to another element than the thread's own (out)");
    const unbounded = sumProgram(8, [var_('s', f32(0)), { kind: 'loop', index: 'i', from: u32(0), to: ref('index', 'u32'), step: u32(1), body: [] }, store('out', ref('index', 'u32'), ref('s', 'f32'))]);
    expect(() => renderGpuJsKernel(unbounded)).toThrow('internal: loop i has a bound that is not a compile-time constant; gpu.js would cut it at loopMaxIterations');
  });

  it('render a long loop with its literal bound', () => {
    expect(renderGpuJsKernel(sumProgram(5000)).source).toContain('for (let i = 0; i < 5000; i += 1) {');
  });
});

describe('the passes for the gpu.js target', () => {
  it('keep elementwise fusions and leave every reduction a kernel of its own', () => {
    const context = { target: gpujsTarget };
    for (const variant of ['convnextv2-atto', 'convnextv1-tiny']) {
      const graph = runPipeline(zooGraph(variant, { batch: 1, height: 32, width: 32 }, []), pipelines.fused, { context });
      const steps = graph.nodes.flatMap((n) => [...(n.fusion?.prologue ?? []), ...(n.fusion?.epilogue ?? [])]);
      expect(steps.some((s) => s.op === 'gelu')).toBe(true);
      expect(steps.filter((s) => getOp(s.op).kind === 'reduction')).toEqual([]);
      expect(graph.nodes.filter((n) => n.fusion?.partials !== undefined || n.fusion?.fromPartials !== undefined)).toEqual([]);
      // The same model for WebGPU fuses its LayerNorms.
      const webgpu = runPipeline(zooGraph(variant, { batch: 1, height: 32, width: 32 }, []), pipelines.fused);
      expect(webgpu.nodes.flatMap((n) => [...(n.fusion?.prologue ?? []), ...(n.fusion?.epilogue ?? [])]).some((s) => s.op === 'layernorm')).toBe(true);
    }
  });
});
