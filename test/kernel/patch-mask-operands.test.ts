// A patch mask [N, rows, cols] as the operand of fused steps (FCMAE's apply_mask and mask_fill,
// in prologues and epilogues of every kernel family): each element reads the patch covering it,
// under every schedule of the node (sampled where the space is large), on two targets.
import { describe, expect, it } from 'vitest';
import { splitForKernels } from '../../src/kernel/split.js';
import { scheduleSpace } from '../../src/kernel/schedule.js';
import { recomputeLimits, webgpuDefaultTarget, type TargetDescription } from '../../src/kernel/target.js';
import { hasKernel } from '../../src/kernel/model-io.js';
import { describeNode } from '../../src/ir/print.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import type { Graph } from '../../src/ir/types.js';
import { pipelines, runPipeline } from '../../src/passes/manager.js';
import { randomInput, randomWeights } from '../../src/weights/random.js';
import { bindWeights } from '../../src/weights/bind.js';
import { scaledDifference } from '../helpers.js';
import { denseMasked, fcmaeCases, fcmaeGraph, fcmaeNpy, fcmaeWeights } from '../models/fcmae-helpers.js';
import { namedNodeEnv, runNodeAs } from './run-node.js';

const emulated: TargetDescription = { ...webgpuDefaultTarget, name: 'a CPU emulation with subgroups of 8', subgroups: true, subgroupSize: 8, emulated: true, prologueRecomputeLimit: recomputeLimits.software };

// Narrow layers (4 to 24 channels, LayerNorms over them): the narrow tier of schedules.test.ts.
const TOLERANCE = 1e-4;
/** Schedules tried per node: all where the space is small, an even sample of a GEMM's thousands. */
const PER_NODE = 12;

/** A downsampling layer whose input is masked and normalised in its prologue (the window kernels). */
function maskedDownsample(): Graph {
  const b = new GraphBuilder('masked-downsample');
  const mask = b.add({ op: 'patch_mask', inputs: [], attrs: { patch: 4, ratio: 0.5, shape: [2, 2, 2] }, name: '' });
  const x = b.add({ op: 'input', inputs: [], attrs: { channels: 8, shape: [2, 8, 8, 8] }, name: '' });
  const masked = b.add({ op: 'apply_mask', inputs: [x, mask], attrs: {}, name: 'masked' });
  const norm = b.add({ op: 'layernorm', inputs: [masked], attrs: { dim: 8, eps: 1e-6 }, name: 'ln' });
  const down = b.add({ op: 'conv2d', inputs: [norm], attrs: { in: 8, out: 16, kernel: [2, 2], stride: [2, 2], padding: [0, 0], groups: 1, bias: true }, name: 'down' });
  const out = b.add({ op: 'mask_fill', inputs: [down, mask], attrs: { dim: 16 }, name: 'token' });
  // Prologues first, so the convolution normalises its input (epilogues first would keep it apart).
  return runPipeline(b.build(out), ['fuse-prologues', 'fuse-epilogues']);
}

function fcmaeCase(pipeline: 'fused' | 'unfused') {
  const c = fcmaeCases[0];
  // Dense-masked: compacted, the encoder reads no mask.
  const graph = splitForKernels(fcmaeGraph(c, 2, denseMasked(pipelines[pipeline])));
  const mask = fcmaeNpy(c.name, 'mask.npy');
  const inputs = { input: fcmaeNpy(c.name, 'input.npy'), mask: { shape: [2, 2, 2], data: mask.data } };
  return { graph, env: namedNodeEnv(graph, bindWeights(graph, fcmaeWeights(c.name), 'weights.safetensors'), inputs) };
}

function maskedDownsampleCase() {
  const graph = maskedDownsample();
  const mask = { shape: [2, 2, 2], data: Float32Array.of(1, 0, 0, 1, 0, 1, 1, 0) };
  return { graph, env: namedNodeEnv(graph, randomWeights(graph), { input: randomInput([2, 8, 8, 8]), mask }) };
}

describe('patch-mask operands under every kernel family and schedule', () => {
  it.each([webgpuDefaultTarget, emulated].map((t) => [t.name, t] as const))('on %s', (_name, target) => {
    const strategies = new Set<string>();
    for (const { graph, env } of [fcmaeCase('fused'), fcmaeCase('unfused'), maskedDownsampleCase()]) {
      const maskId = graph.nodes.find((n) => n.op === 'patch_mask')!.id;
      for (const node of graph.nodes.filter((n) => hasKernel(n) && n.inputs.includes(maskId))) {
        const space = scheduleSpace(node, target);
        const stride = Math.max(1, Math.floor(space.length / PER_NODE));
        for (let i = 0; i < space.length; i += stride) {
          const schedule = space[i];
          const what = `${describeNode(node)} under ${JSON.stringify(schedule)}`;
          const out = runNodeAs(what, graph, node, schedule, target, env);
          expect(scaledDifference(out, env.values.get(node.id)!), what).toBeLessThan(TOLERANCE);
          strategies.add(schedule.strategy + ('pixels' in schedule && (schedule.pixels ?? 1) > 1 ? '-run' : ''));
        }
      }
    }
    // Every family that applies fused steps with operands met the mask.
    expect([...strategies].sort()).toEqual(expect.arrayContaining(['direct', 'elementwise', 'gemm', 'pixel', 'pixel-run', 'rows', 'window']));
  }, 600_000);
});
