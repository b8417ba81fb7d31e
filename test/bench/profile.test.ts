// convc bench --profile: the FLOP and byte accounting of a dispatch, the matching of fused
// kernels to the unfused dispatches they replace (without a GPU, on lowered zoo models), and the
// command itself on lavapipe: every dispatch timed, shares summing to 100%, the JSON carrying it.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dispatchWork, nodeFlops, replacedBy, type DispatchWork } from '../../src/bench/dispatch-work.js';
import { fusedVsUnfused, summarizePipeline, type BenchProfile, type PipelineProfile } from '../../src/bench/profile.js';
import { formatProfile } from '../../src/bench/report.js';
import { benchHelp } from '../../src/cli/commands/bench.js';
import { main } from '../../src/cli/main.js';
import { lowerToWgsl } from '../../src/backends/wgsl/lower.js';
import { numel, type Graph } from '../../src/ir/types.js';
import { pipelines } from '../../src/passes/manager.js';
import { captureIo, repoPath, zooGraph } from '../helpers.js';

const size = { batch: 1, height: 32, width: 32 };

function works(variant: string): { fused: DispatchWork[]; unfused: DispatchWork[]; graphs: Record<'fused' | 'unfused', Graph> } {
  const graphs = { fused: zooGraph(variant, size, pipelines.fused), unfused: zooGraph(variant, size, pipelines.unfused) };
  return { fused: dispatchWork(graphs.fused, lowerToWgsl(graphs.fused)), unfused: dispatchWork(graphs.unfused, lowerToWgsl(graphs.unfused)), graphs };
}

const opKey = (o: { op: string; name: string }) => `${o.op} ${o.name}`;

describe('profile accounting', () => {
  it("counts a linear as 2 x MACs and binds its input, weight, bias and output once", () => {
    const graph = zooGraph('convnextv2-atto', size, pipelines.unfused);
    const program = lowerToWgsl(graph);
    const work = dispatchWork(graph, program);
    const at = graph.nodes.findIndex((n) => n.op === 'linear' && n.name === 'stages.0.0.pwconv1');
    const node = graph.nodes[at];
    const [cin, cout] = [node.attrs.in as number, node.attrs.out as number];
    // [1, 40, 32/4, 32/4] -> [1, 160, 8, 8]: one multiply-add per input channel per output element.
    expect(work[at].flops).toBe(2 * 8 * 8 * cin * cout);
    expect(work[at].bytes).toBe(4 * (8 * 8 * cin + cin * cout + cout + 8 * 8 * cout));
    expect(work[at].bytes).toBe(program.dispatches[at].bytes);
    expect(work[at].ops).toEqual([{ op: 'linear', name: 'stages.0.0.pwconv1' }]);
  });

  it('adds one FLOP per element for each fused elementwise step and none for the layout change', () => {
    const graph = zooGraph('convnextv2-atto', size, pipelines.fused);
    const pw1 = graph.nodes.find((n) => n.name === 'stages.0.0.pwconv1')!;
    expect(pw1.fusion?.epilogue.map((s) => s.op)).toEqual(['gelu']);
    expect(nodeFlops(graph, pw1)).toBe(2 * 8 * 8 * 40 * 160 + numel(pw1.type.shape));
    const work = dispatchWork(graph, lowerToWgsl(graph));
    expect(work[0]).toMatchObject({ kernel: 'nchw_to_nhwc', flops: 0 });
  });

  it.each(['convnextv2-atto', 'convnextv1-tiny'])('charges every unfused dispatch of %s to the fused dispatch computing the same IR nodes', (variant) => {
    const { fused, unfused } = works(variant);
    const owners = replacedBy(fused, unfused);
    expect(owners).toHaveLength(unfused.length);
    expect(owners.filter((o) => o === null)).toEqual([]);
    // Each fused dispatch gets exactly the ops it computes (plus any layer scale folded into its weights).
    for (const [f, work] of fused.entries()) {
      const replaced = unfused.filter((_, u) => owners[u] === f).flatMap((w) => w.ops);
      expect(replaced.filter((o) => o.op !== 'layer_scale').map(opKey).sort(), work.covers).toEqual(work.ops.map(opKey).sort());
    }
    if (variant.startsWith('convnextv1')) expect(unfused.some((w) => w.ops[0].op === 'layer_scale')).toBe(true);
  });

  it('sums every unfused dispatch once into the fused kernel rows, and shares to 100%', () => {
    const { fused, unfused } = works('convnextv2-atto');
    // Made-up times, distinct per dispatch: the accounting, not the GPU, is under test.
    const times = (w: readonly DispatchWork[]) => [w.map((_, i) => 0.1 + i / 100), w.map((_, i) => 0.3 + i / 100), w.map((_, i) => 0.2 + i / 100)];
    const f = summarizePipeline(fused, times(fused));
    const u = summarizePipeline(unfused, times(unfused), replacedBy(fused, unfused));
    expect(f.dispatches[3].ms).toBeCloseTo(0.23, 12); // the median of the three runs
    const rows = fusedVsUnfused(f, u);
    expect(rows.reduce((sum, r) => sum + r.unfused_calls, 0)).toBe(unfused.length);
    expect(rows.reduce((sum, r) => sum + r.unfused_ms, 0)).toBeCloseTo(u.total_ms, 9);
    expect(rows.reduce((sum, r) => sum + r.calls, 0)).toBe(fused.length);
    expect(rows.find((r) => r.kernel === 'conv2d_depthwise_7x7_layernorm')?.unfused_kernels).toEqual({ conv2d_depthwise_7x7: 12, layernorm_channels: 12 });
    for (const p of [f, u]) expectWholeProfile(p, p.dispatches.length);
  });
});

/** Every dispatch timed, counted in one kernel row, and the shares summing to the whole. */
function expectWholeProfile(p: PipelineProfile, dispatches: number): void {
  expect(p.dispatches).toHaveLength(dispatches);
  expect(p.kernels.reduce((sum, k) => sum + k.calls, 0)).toBe(dispatches);
  expect(p.kernels.reduce((sum, k) => sum + k.share, 0)).toBeCloseTo(1, 9);
  expect(p.kernels.reduce((sum, k) => sum + k.total_ms, 0)).toBeCloseTo(p.total_ms, 9);
  for (const d of p.dispatches) expect(d.ms).toBeGreaterThan(0);
}

describe('convc bench --profile', () => {
  it('is in --help', () => {
    expect(benchHelp).toMatch(/--profile\s.*timestamp queries/);
  });

  it('times every dispatch of both pipelines with timestamp queries, prints the tables and writes them to JSON', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'convc-profile-'));
    const io = captureIo();
    // No gpujs row: a later test takes Dawn's GL adapter in this process, which headless-gl
    // cannot share it with (src/backends/gl-process.ts).
    const args = ['bench', repoPath('models/convnextv2-atto.cnx'), '--size', '32', '--runs', '1', '--warmup', '0', '--peers', 'none', '--profile', '--gpujs', 'off', '--json', join(dir, 'r.json')];
    expect(await main(args, io), io.err()).toBe(0);
    const result = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8'));
    const profile = result.profile as BenchProfile;
    expect(profile).toMatchObject({ runs: 1, warmup: 1 });
    expectWholeProfile(profile.fused, result.fused.dispatches);
    expectWholeProfile(profile.unfused, result.unfused.dispatches);
    // Each unfused dispatch is charged to one fused dispatch, and the rows add up to both totals.
    for (const d of profile.unfused.dispatches) expect(d.replaced_by).toBeGreaterThanOrEqual(0);
    expect(profile.fused_vs_unfused.every((r) => r.kernel !== null)).toBe(true);
    expect(profile.fused_vs_unfused.reduce((sum, r) => sum + r.unfused_calls, 0)).toBe(result.unfused.dispatches);
    expect(profile.fused_vs_unfused.reduce((sum, r) => sum + r.calls, 0)).toBe(result.fused.dispatches);
    expect(profile.fused_vs_unfused.reduce((sum, r) => sum + r.unfused_ms, 0)).toBeCloseTo(profile.unfused.total_ms, 9);

    const out = io.out();
    expect(out).toMatch(/GPU time per kernel \(timestamp queries/);
    expect(out).toMatch(/^fused\s+conv2d_depthwise_7x7_layernorm\s+12\s+[\d.]+\s+[\d.]+%\s+[\d.]+\s+[\d.]+$/m);
    expect(out).toMatch(/^conv2d_depthwise_7x7_layernorm\s+12\s+[\d.]+\s+24\s+[\d.]+\s+[\d.]+x\s+12 conv2d_depthwise_7x7, 12 layernorm_channels$/m);
    expect(out).toMatch(/GFLOP\/s: FLOPs = 2 x MACs/);
    // The printed shares, rounded to 0.1%, sum to 100% within their rounding.
    for (const pipeline of ['fused', 'unfused']) {
      const shares = [...out.matchAll(new RegExp(`^${pipeline}\\s+(?!all kernels)\\S+\\s+\\d+\\s+[\\d.]+\\s+([\\d.]+)%`, 'gm'))].map((m) => Number(m[1]));
      expect(shares.length).toBe(profile[pipeline as 'fused' | 'unfused'].kernels.length);
      expect(Math.abs(shares.reduce((a, b) => a + b, 0) - 100)).toBeLessThanOrEqual(0.05 * shares.length);
    }
    expect(formatProfile(profile)).toBe(out.slice(out.indexOf('GPU time per kernel')).trimEnd());
  }, 60_000);

  it('is a user error naming the adapter where it has no timestamp queries', async () => {
    const io = captureIo();
    // Dawn's OpenGL ES backend has no timestamp queries; where it is not there at all, there is nothing to test.
    const code = await main(['bench', repoPath('models/convnextv2-atto.cnx'), '--size', '32', '--peers', 'none', '--profile', '--adapter', 'gl'], io);
    expect(code).toBe(2);
    if (!/no OpenGL ES WebGPU adapter found/.test(io.err())) expect(io.err()).toMatch(/--profile needs timestamp queries, which this adapter does not offer \('timestamp-query'\): .*backend: opengles/);
  }, 30_000);
});
