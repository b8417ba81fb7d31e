// Property tests of schedules: every schedule `scheduleSpace` offers for a node must lower on
// its target and compute what the reference executor does. Schedules change only how a node's
// math is walked (threads, lanes, GEMM tiles, staging), never the math, so on random ConvNeXt
// blocks and small networks of both versions, fused and unfused, under random legal schedules
// for each node on two targets (WebGPU's default limits and a smaller device), the kernels
// interpreted on the CPU (src/kernel/interpret.ts: real workgroups, barriers, race detection)
// must agree with the reference. A deterministic walk then runs every schedule in the space of
// every kind of node of two networks at least once, and a few random schedules are rendered to
// WGSL and run on WebGPU (lavapipe). fast-check shrinks a failure (schedule picks shrink to 0,
// the default schedule) and prints its seed and path, which replay it with
// fc.assert(..., { seed, path }).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { executeReference } from '../../src/backends/reference/executor.js';
import { acquireGpu, type AcquiredGpu } from '../../src/backends/webgpu/device.js';
import { executeWebGpu } from '../../src/backends/wgsl/execute.js';
import { elaborate } from '../../src/dsl/elaborate.js';
import { loadProgram } from '../../src/dsl/load.js';
import { interpretGraph } from '../../src/kernel/execute.js';
import { lowerNode } from '../../src/kernel/lower/index.js';
import { kernelShape, rowBand, scheduleFits, scheduleSpace, type Schedule } from '../../src/kernel/schedule.js';
import { recomputeLimits, targetOfDevice, webgpuDefaultTarget, type TargetDescription } from '../../src/kernel/target.js';
import type { Graph, HostTensor, Node } from '../../src/ir/types.js';
import { pipelines, runPipeline } from '../../src/passes/manager.js';
import { withDerivedWeights } from '../../src/weights/derive.js';
import { randomInput, randomWeights } from '../../src/weights/random.js';
import { repoPath, scaledDifference, zooGraph } from '../helpers.js';
import { blockCases, networkCases, type ModelCase } from '../model-cases.js';
import { nodeEnv, runNode, runNodeAs } from './run-node.js';

// Errors are measured relative to the output's scale (scaledDifference). The interpreter rounds
// every f32 operation as a GPU does, so these are the WebGPU-vs-reference tolerances of
// test/passes/equivalence.test.ts:
// - Wide (32+ channels): 2e-5, the project's f32 kernel tolerance (sums of up to a few thousand
//   f32 products, an erf approximation good to 1.5e-7), as for the goldens.
// - Narrow (fewer than 32 channels anywhere): a LayerNorm over one to three channels amplifies
//   the rounding of its input by |x - mean| / std, without bound as two channels approach each
//   other, so 1e-4 of the output's scale; these shapes check structure, and the numerics are
//   held to the tight bound by the wide tier, test/kernel/lower.test.ts and the goldens.
const tolerance = { narrow: 1e-4, wide: 2e-5 } as const;

/** The tier of a graph: wide only where every value has 32 or more channels. */
function toleranceOf(graph: Graph): number {
  const narrow = graph.nodes.some((n) => n.op !== 'input' && n.type.shape.length >= 2 && n.type.shape[1] < 32);
  return narrow ? tolerance.narrow : tolerance.wide;
}

/** A device smaller than WebGPU's defaults, so the space must leave out what it cannot run. */
const smallTarget: TargetDescription = {
  ...webgpuDefaultTarget,
  name: 'a small device (4 KiB workgroup memory, 128 invocations)',
  maxComputeWorkgroupStorageSize: 4096,
  maxComputeInvocationsPerWorkgroup: 128,
  maxComputeWorkgroupSizeX: 128,
};
/** A device with fixed subgroups of 8 (as lavapipe's), so subgroup reductions are drawn too. */
const subgroupTarget: TargetDescription = { ...webgpuDefaultTarget, name: 'a device with subgroups of 8', subgroups: true, subgroupSize: 8 };
/** A CPU emulation (as lavapipe): GEMMs default to row bands. */
const emulatedTarget: TargetDescription = { ...subgroupTarget, name: 'a CPU emulation with subgroups of 8', emulated: true, prologueRecomputeLimit: recomputeLimits.software };
const targets = [webgpuDefaultTarget, smallTarget, subgroupTarget, emulatedTarget] as const;

type Case = ModelCase;

// Small enough that a run interprets in well under a second.
const blockCase = blockCases({ maxDim: 24, maxBatch: 2 });
const networkCase = networkCases({ maxStages: 3, maxBatch: 2, maxExtra: 7 });

const scratch = mkdtempSync(join(tmpdir(), 'convc-schedules-'));
let written = 0;

function graphOf(c: Case, pipeline: 'fused' | 'unfused'): Graph {
  const file = join(scratch, `case-${written++}.cnx`);
  writeFileSync(file, c.source);
  return runPipeline(elaborate(loadProgram(file), 'm', { batch: c.batch, height: c.height, width: c.width }), pipelines[pipeline]);
}

/** Weights (with those constant folding derives) and input of a case, seeded. */
function dataOf(graph: Graph, seed: number): { weights: Map<string, HostTensor>; input: HostTensor } {
  return { weights: new Map(withDerivedWeights(graph, randomWeights(graph, seed))), input: randomInput(graph.nodes[0].type.shape, seed + 1) };
}

/**
 * Schedule picks: one per node, cycling if the graph has more nodes. 0 is the space's first
 * entry (the default heuristic's), so a failure shrinks toward default schedules and what is
 * left non-zero names the schedules at fault. Any other pick is taken modulo the space's size.
 */
const picks = fc.array(fc.oneof({ arbitrary: fc.constant(0), weight: 1 }, { arbitrary: fc.nat(), weight: 3 }), { minLength: 1, maxLength: 64 });

/** The schedule of every node of `graph` under `picks`, each drawn from that node's space on `target`. */
function drawSchedules(graph: Graph, target: TargetDescription, chosen: readonly number[], keep: (s: Schedule) => boolean = () => true): Map<number, Schedule> {
  const schedules = new Map<number, Schedule>();
  for (const node of graph.nodes) {
    const space = scheduleSpace(node, target).filter((s, i) => i === 0 || keep(s));
    const schedule = space[chosen[node.id % chosen.length] % space.length];
    // Every schedule the space offers fits the target, and lowering accepts it.
    expect(scheduleFits(node, schedule, target), `${JSON.stringify(schedule)} for ${node.op} '${node.name}'`).toBe(true);
    schedules.set(node.id, schedule);
  }
  return schedules;
}

const describeSchedules = (graph: Graph, schedules: ReadonlyMap<number, Schedule>): string =>
  graph.nodes.map((n) => `${n.id} ${n.op} '${n.name}' ${kernelShape(n)}: ${JSON.stringify(schedules.get(n.id))}`).join('\n');

const pipeline = fc.constantFrom('fused', 'unfused') as fc.Arbitrary<'fused' | 'unfused'>;
const target = fc.constantFrom(...targets);

const interpreterAgrees = (c: Case, which: 'fused' | 'unfused', on: TargetDescription, chosen: readonly number[]): void => {
  const graph = graphOf(c, which);
  const { weights, input } = dataOf(graph, c.seed);
  const schedules = drawSchedules(graph, on, chosen);
  const result = interpretGraph(graph, weights, input, { target: on, schedule: (n) => schedules.get(n.id) });
  const expected = executeReference(graph, weights, input);
  expect(scaledDifference(result.data, expected.data), describeSchedules(graph, schedules)).toBeLessThan(toleranceOf(graph));
};

describe('random legal schedules on the interpreter match the reference executor', () => {
  it('for random blocks', () => {
    fc.assert(fc.property(blockCase, pipeline, target, picks, interpreterAgrees), { numRuns: 100 });
  }, 60_000);

  it('for random networks', () => {
    fc.assert(fc.property(networkCase, pipeline, target, picks, interpreterAgrees), { numRuns: 60 });
  }, 60_000);
});

/** The networks the deterministic walk and the WebGPU runs use: one of each version, odd sizes. */
const walked: readonly Case[] = [
  {
    source: `import "${repoPath('models/convnextv2.cnx')}"\nmodel m = ConvNeXtV2(depths=[1, 1], dims=[5, 6], classes=7, in_chans=3)\n`,
    batch: 2,
    height: 9,
    width: 11,
    seed: 11,
  },
  {
    source: `import "${repoPath('models/convnextv1.cnx')}"\nmodel m = ConvNeXtV1(depths=[1, 1], dims=[6, 5], classes=5, in_chans=2)\n`,
    batch: 1,
    height: 13,
    width: 10,
    seed: 12,
  },
];

/** A kind of node: its kernel shape, op and fused steps (nodes of a kind share a kernel generator). */
function kindOf(node: Node): string {
  const steps = (list: readonly { op: string }[] | undefined) => (list ?? []).map((s) => s.op).join(',');
  return `${kernelShape(node)}: ${steps(node.fusion?.prologue)} [${node.op}] ${steps(node.fusion?.epilogue)}`;
}


/**
 * Lets the test worker's event loop turn: a walk over thousands of schedules runs for tens of
 * seconds, minutes on a loaded machine, and a worker blocked for a minute misses vitest's
 * replies to its progress reports ("Timeout calling onTaskUpdate"), failing the run.
 */
const breather = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('every schedule in the space, node by node, matches the reference executor', () => {
  // For each target and kind of node (its kernel shape and fused steps), the space's schedules
  // are dealt round-robin to the nodes of that kind, so every schedule runs at least once; each
  // node's kernel reads its inputs as the reference computed them and is compared with the
  // reference's value of that node (same tolerance tiers, per node). Widths of 4 and more keep
  // LayerNorms away from the one-to-three channel amplification above.
  it.each([0, 1])('network %i, fused, on every target', async (index) => {
    const graph = graphOf(walked[index], 'fused');
    const { weights, input } = dataOf(graph, walked[index].seed);
    const env = nodeEnv(graph, weights, input);
    const checked = new Set<string>();
    const strategies = new Set<string>();
    let lowered = 0;
    for (const on of targets) {
      const kinds = new Map<string, Node[]>();
      for (const node of graph.nodes) kinds.set(kindOf(node), [...(kinds.get(kindOf(node)) ?? []), node]);
      for (const [kind, nodes] of kinds) {
        const spaces = nodes.map((n) => scheduleSpace(n, on));
        const longest = Math.max(...spaces.map((s) => s.length));
        for (let i = 0; i < longest; i++) {
          if (i % 100 === 99) await breather();
          const k = i % nodes.length;
          const node = nodes[k];
          const schedule = spaces[k][i % spaces[k].length];
          const what = `${JSON.stringify(schedule)} for ${node.op} '${node.name}' (${kind}) on ${on.name}`;
          expect(scheduleFits(node, schedule, on), what).toBe(true);
          // A schedule means the same on every target that accepts it: the smaller target's
          // space is lowered in full (it must fit), and only what is new to it is interpreted.
          const key = `${kind} ${JSON.stringify(schedule)}`;
          if (checked.has(key)) {
            expect(() => lowerNode(graph, node, on, schedule), what).not.toThrow();
            lowered++;
            continue;
          }
          const output = runNodeAs(what, graph, node, schedule, on, env);
          expect(scaledDifference(output, env.values.get(node.id)!), what).toBeLessThan(toleranceOf(graph));
          checked.add(key);
          strategies.add(schedule.strategy);
        }
      }
    }
    expect([...strategies].sort()).toEqual(['direct', 'elementwise', 'gemm', 'pixel', ...(index === 0 ? ['rows'] : []), 'sample', 'window']);
    // Observed: 3486 and 3444 schedules interpreted (1622 GEMM tilings for each of two GEMM
    // kinds, double-buffered ones included), and about 8900 lowered again on later targets; a
    // shrinking space fails here.
    expect(checked.size).toBeGreaterThan(3000);
    // The subgroup target's reductions by shuffles were among them.
    expect([...checked].some((k) => k.includes('"reduction":"subgroup"'))).toBe(true);
    expect(lowered).toBeGreaterThan(500);
  }, 90_000);
});

/** Whether a schedule is one of the GEMM options of issue 11: vec4 loads unstaged, double-buffered tiles. */
const isVectorUnstaged = (s: Schedule): boolean => s.strategy === 'gemm' && !s.stage && s.vector === 4;
const isDoubleBuffered = (s: Schedule): boolean => s.strategy === 'gemm' && s.buffers === 2;

/**
 * A V2 network whose channels all divide by four (the walked ones' do not, so they never draw
 * a vec4 GEMM): pw1 8 -> 32 and 12 -> 48 with GELU after, pw2 32 -> 8 and 48 -> 12 with the
 * GRN apply as prologue. 70 and 12 rows, neither a multiple of any tile's rows; K of 8, 12,
 * 32 and 48 leaves partial and odd numbers of staged steps; 12 output channels leave tiles
 * partly past the last column.
 */
const byFours: Case = {
  source: `import "${repoPath('models/convnextv2.cnx')}"\nmodel m = ConvNeXtV2(depths=[1, 1], dims=[8, 12], classes=5, in_chans=3)\n`,
  batch: 2,
  height: 20,
  width: 28,
  seed: 13,
};

describe('the space offers only what lowering accepts', () => {
  // The walk's networks are narrow; a downsampling window kernel of 40 channels stages far
  // more, and a schedule whose staging plus per-tap statistics overflow a small device's
  // workgroup memory must be left out of its space, not refused when lowered.
  it("V2-atto's kernels, every schedule of their spaces, on every target", () => {
    const graph = zooGraph('convnextv2-atto', { batch: 1, height: 64, width: 64 }, pipelines.fused);
    let lowered = 0;
    for (const on of targets)
      for (const node of graph.nodes.filter((n) => kernelShape(n) === 'window' || kernelShape(n) === 'pixel'))
        for (const schedule of scheduleSpace(node, on)) {
          expect(() => lowerNode(graph, node, on, schedule), `${JSON.stringify(schedule)} for '${node.name}' on ${on.name}`).not.toThrow();
          lowered++;
        }
    expect(lowered).toBeGreaterThan(1000);
  }, 60_000);

  // The walk's heads have 5 and 7 classes, too few to slice; V2-atto's has 1000.
  it("V2-atto's head, in slices of its outputs, matches the reference executor", () => {
    const graph = zooGraph('convnextv2-atto', { batch: 2, height: 32, width: 32 }, pipelines.fused);
    const head = graph.nodes.find((n) => kernelShape(n) === 'sample')!;
    const { weights, input } = dataOf(graph, 21);
    const env = nodeEnv(graph, weights, input);
    const sliced = scheduleSpace(head, webgpuDefaultTarget).filter((s) => s.strategy === 'sample' && s.outputsPerWorkgroup !== undefined);
    expect(sliced.length).toBeGreaterThan(6);
    for (const schedule of sliced) expect(scaledDifference(runNode(graph, head, schedule, webgpuDefaultTarget, env), env.values.get(head.id)!), JSON.stringify(schedule)).toBeLessThan(tolerance.wide);
  }, 60_000);
});

describe('vec4 unstaged and double-buffered GEMM schedules', () => {
  const graph = graphOf(byFours, 'fused');
  const gemms = graph.nodes.filter((n) => scheduleSpace(n, webgpuDefaultTarget).some((s) => s.strategy === 'gemm'));

  it('fit only where channels, a thread\'s columns and the doubled tiles allow', () => {
    const prologue = gemms.find((n) => (n.fusion?.prologue ?? []).length > 0)!;
    // The GEMM with the GRN apply folded in, whose prologue each vec4 component runs through.
    expect(prologue.fusion!.prologue.map((s) => s.op)).toContain('grn_apply');
    const vec4Unstaged: Schedule = { strategy: 'gemm', rows: 32, cols: 16, depth: 1, threadRows: 2, threadCols: 4, unroll: true, vector: 4, stage: false };
    expect(scheduleFits(prologue, vec4Unstaged, webgpuDefaultTarget)).toBe(true);
    expect(scheduleFits(prologue, { ...vec4Unstaged, threadCols: 2 }, webgpuDefaultTarget)).toBe(false);
    // The walked V2's pw2 has 20 -> 5 channels: no whole vectors of output channels.
    const narrow = graphOf(walked[0], 'fused');
    const narrowPw2 = narrow.nodes.find((n) => (n.fusion?.prologue ?? []).some((s) => s.op === 'grn_apply') && scheduleSpace(n, webgpuDefaultTarget).some((s) => s.strategy === 'gemm'))!;
    expect(scheduleFits(narrowPw2, { ...vec4Unstaged, vector: 1 }, webgpuDefaultTarget)).toBe(true);
    expect(scheduleFits(narrowPw2, vec4Unstaged, webgpuDefaultTarget)).toBe(false);
    expect(scheduleSpace(narrowPw2, webgpuDefaultTarget).some(isVectorUnstaged)).toBe(false);
    // 64x64 tiles 32 deep take 16 KiB, all WebGPU's default grants: once, not twice.
    const staged: Schedule = { strategy: 'gemm', rows: 64, cols: 64, depth: 32, threadRows: 4, threadCols: 4, unroll: true, vector: 1, stage: true };
    expect(scheduleFits(prologue, staged, webgpuDefaultTarget)).toBe(true);
    expect(scheduleFits(prologue, { ...staged, buffers: 2 }, webgpuDefaultTarget)).toBe(false);
    expect(scheduleFits(prologue, { ...staged, depth: 16, buffers: 2 }, webgpuDefaultTarget)).toBe(true);
    // Unstaged GEMMs have no tiles to double.
    expect(scheduleFits(prologue, { ...vec4Unstaged, buffers: 2 }, webgpuDefaultTarget)).toBe(false);
    // The space offers them where they fit, and the small target's space only what fits it.
    for (const on of [webgpuDefaultTarget, smallTarget]) {
      const space = scheduleSpace(prologue, on);
      expect(space.some(isVectorUnstaged), on.name).toBe(true);
      expect(space.some((s) => s.strategy === 'gemm' && s.buffers === 2 && s.vector === 4), on.name).toBe(true);
      expect(space.filter(isDoubleBuffered).every((s) => s.strategy === 'gemm' && 8 * (s.rows + s.cols) * s.depth <= on.maxComputeWorkgroupStorageSize)).toBe(true);
    }
    // Old schedules keep their shape: no `buffers` key unless doubled.
    expect(JSON.stringify(scheduleSpace(prologue, webgpuDefaultTarget)[0])).not.toContain('buffers');
  });

  it('match the reference executor on the interpreter, each GEMM under every such schedule of its space', async () => {
    const { weights, input } = dataOf(graph, byFours.seed);
    const env = nodeEnv(graph, weights, input);
    const seen = { vectorUnstaged: 0, doubleBuffered: 0, withPrologue: 0 };
    // Dealt round-robin to the four GEMMs (their spaces are near alike), so each schedule runs
    // about once in all and the test stays within a minute.
    for (const [index, node] of gemms.entries()) {
      const dealt = scheduleSpace(node, webgpuDefaultTarget).filter((s) => isVectorUnstaged(s) || isDoubleBuffered(s));
      for (const [i, schedule] of dealt.filter((_, i) => i % gemms.length === index).entries()) {
        if (i % 100 === 99) await breather();
        const what = `${JSON.stringify(schedule)} for ${node.op} '${node.name}'`;
        const output = runNodeAs(what, graph, node, schedule, webgpuDefaultTarget, env);
        expect(scaledDifference(output, env.values.get(node.id)!), what).toBeLessThan(toleranceOf(graph));
        if (isVectorUnstaged(schedule)) seen.vectorUnstaged++;
        else seen.doubleBuffered++;
        if ((node.fusion?.prologue ?? []).length > 0) seen.withPrologue++;
      }
    }
    expect(gemms.length).toBe(4);
    // Observed: 254, 784 and 519; a shrinking space fails here.
    expect(seen.vectorUnstaged).toBeGreaterThan(200);
    expect(seen.doubleBuffered).toBeGreaterThan(700);
    expect(seen.withPrologue).toBeGreaterThan(400);
  }, 120_000);
});

describe('random legal schedules on WebGPU (lavapipe) match the reference executor', () => {
  let gpu: AcquiredGpu;
  beforeAll(async () => {
    gpu = await acquireGpu({ adapter: 'vulkan' });
  }, 120_000);
  afterAll(() => gpu?.destroy());

  // Each run renders and compiles its own kernels, which lavapipe's LLVM does on the CPU, slowly:
  // a few runs per network, drawn from the device's own space and from the small target's
  // (every schedule fitting the small target fits the device). GEMM schedules keeping more than
  // 4 outputs a thread in registers are left out here: lavapipe takes 5-30 s to compile each of
  // those kernels (a run with defaults takes 0.5 s). The interpreter tests above run all of them.
  const smallRegisterTile = (s: Schedule) => s.strategy !== 'gemm' || s.threadRows * s.threadCols <= 4;
  it.each([0, 1])('network %i', async (index) => {
    const c = walked[index];
    const device = targetOfDevice(gpu.device, 'lavapipe');
    await fc.assert(
      fc.asyncProperty(pipeline, fc.constantFrom(device, smallTarget), picks, async (which, on, chosen) => {
        const graph = graphOf(c, which);
        const { weights, input } = dataOf(graph, c.seed);
        const schedules = drawSchedules(graph, on, chosen, smallRegisterTile);
        const { output } = await executeWebGpu(() => graph, weights, input, gpu.device, { schedule: (n) => schedules.get(n.id) });
        const expected = executeReference(graph, weights, input);
        expect(scaledDifference(output.data, expected.data), describeSchedules(graph, schedules)).toBeLessThan(toleranceOf(graph));
      }),
      { numRuns: 3 },
    );
  }, 120_000);

  // The vec4 and double-buffered GEMMs in WGSL: every GEMM of the channels-by-fours network under
  // each, the rest default. Random draws from the walked networks never give vec4 (their
  // channels do not divide by four), so these are run on purpose, with small register tiles.
  const issue11Gemms: readonly Schedule[] = [
    { strategy: 'gemm', rows: 16, cols: 16, depth: 1, threadRows: 1, threadCols: 4, unroll: true, vector: 4, stage: false },
    rowBand(4, 8, 4, 4),
    { strategy: 'gemm', rows: 16, cols: 16, depth: 8, threadRows: 2, threadCols: 2, unroll: true, vector: 4, stage: true, buffers: 2 },
    { strategy: 'gemm', rows: 16, cols: 16, depth: 4, threadRows: 2, threadCols: 2, unroll: false, vector: 1, stage: true, buffers: 2 },
  ];
  it.each(issue11Gemms.map((s) => [JSON.stringify(s), s] as const))('the channels-by-fours V2 with every GEMM as %s', async (_, gemm) => {
    const graph = graphOf(byFours, 'fused');
    const { weights, input } = dataOf(graph, byFours.seed);
    const device = targetOfDevice(gpu.device, 'lavapipe');
    const gemms = graph.nodes.filter((n) => scheduleFits(n, gemm, device));
    expect(gemms.length).toBe(4);
    const { output } = await executeWebGpu(() => graph, weights, input, gpu.device, { schedule: (n) => (gemms.includes(n) ? gemm : undefined) });
    expect(scaledDifference(output.data, executeReference(graph, weights, input).data)).toBeLessThan(toleranceOf(graph));
  }, 120_000);
});
