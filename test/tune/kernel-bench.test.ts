// One kernel alone on lavapipe, as the tuner measures it: a statistic that finishes partial
// sums another kernel writes (grn_stats after pw1) runs on partial sums made from that
// kernel's reference value, and is checked against its own reference value.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { executeReference } from '../../src/backends/reference/executor.js';
import { acquireGpu, type AcquiredGpu } from '../../src/backends/webgpu/device.js';
import type { HostTensor } from '../../src/ir/types.js';
import { defaultSchedule } from '../../src/kernel/schedule.js';
import { splitForKernels } from '../../src/kernel/split.js';
import { webgpuDefaultTarget } from '../../src/kernel/target.js';
import { pipelines } from '../../src/passes/manager.js';
import { prepareKernel } from '../../src/tune/kernel-bench.js';
import { withDerivedWeights } from '../../src/weights/derive.js';
import { randomInput, randomWeights } from '../../src/weights/random.js';
import { zooGraph } from '../helpers.js';

describe('a kernel alone, as the tuner runs it', () => {
  let gpu: AcquiredGpu;
  beforeAll(async () => {
    gpu = await acquireGpu({ adapter: 'vulkan' });
  }, 120_000);
  afterAll(() => gpu.destroy());

  it('finishes partial sums made from pw1’s reference value, within the f32 kernel tolerance', async () => {
    const graph = splitForKernels(zooGraph('convnextv2-atto', { batch: 2, height: 64, width: 64 }, pipelines.fused));
    const weights = withDerivedWeights(graph, randomWeights(graph, 3));
    const input = randomInput(graph.nodes[0].type.shape, 4);
    const values = new Map<number, HostTensor>();
    executeReference(graph, weights, input, { onValue: (node, value) => values.set(node.id, value) });
    const stats = graph.nodes.filter((n) => n.op === 'grn_stats' && n.fusion?.fromPartials !== undefined);
    expect(stats.length).toBeGreaterThan(0);
    for (const node of stats) {
      const kernel = await prepareKernel(gpu.device, { graph, node, target: webgpuDefaultTarget, values, weights, input }, defaultSchedule(node, webgpuDefaultTarget));
      try {
        // 2e-5 of the output's scale: the project's f32 kernel tolerance (test/kernel/lower.test.ts).
        expect(await kernel.check(), node.name).toBeLessThan(2e-5);
        // The check can fail: a tampered output does not pass it.
        expect(await kernel.check((output) => output.map((v) => v * 1.01))).toBeGreaterThan(2e-5);
      } finally {
        kernel.destroy();
      }
    }
  }, 60_000);
});
