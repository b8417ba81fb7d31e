// A run whose weights and activations would not fit in memory is refused before anything is
// allocated, with the estimate and the limit.
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { peakHostBytes } from '../../src/ir/cost.js';
import { captureIo, repoPath, zooGraph } from '../helpers.js';

async function convc(...args: string[]) {
  const io = captureIo();
  const code = await main(args, io);
  return { code, out: io.out(), err: io.err() };
}

describe('host memory limit', () => {
  it('estimates the peak as weights plus the activations alive at once', () => {
    const graph = zooGraph('convnextv2-atto', { batch: 1, height: 64, width: 64 });
    const weights = [...graph.params.values()].reduce((sum, p) => sum + p.shape.reduce((a, b) => a * b, 1), 0);
    const largest = Math.max(...graph.nodes.map((n) => n.type.shape.reduce((a, b) => a * b, 1)));
    const peak = peakHostBytes(graph);
    expect(peak).toBeGreaterThan(4 * (weights + largest));
    // Never everything at once: values die after their last reader.
    expect(peak).toBeLessThan(4 * (weights + graph.nodes.reduce((sum, n) => sum + n.type.shape.reduce((a, b) => a * b, 1), 0)));
  });

  it('refuses an input size whose activations need more than the limit, at once', async () => {
    const started = Date.now();
    const { code, err } = await convc('run', repoPath('models/convnextv2-atto.cnx'), '--random-weights', '--size', '14000');
    expect(code).toBe(2);
    expect(err).toMatch(/convnextv2-atto at input \[1, 3, 14000, 14000\] needs about \d+\.\d GiB of host memory for its weights and activations, more than the limit of 8 GiB/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('takes a lower or higher limit with --max-memory', async () => {
    const { code, err } = await convc('run', repoPath('models/convnextv2-atto.cnx'), '--random-weights', '--size', '224', '--max-memory', '0');
    expect(code).toBe(2);
    expect(err).toMatch(/--max-memory needs a positive integer, got '0'/);
    const huge = await convc('run', repoPath('models/convnextv2-huge.cnx'), '--random-weights', '--batch', '64', '--max-memory', '1');
    expect(huge.code).toBe(2);
    expect(huge.err).toMatch(/more than the limit of 1 GiB/);
  });
});
