// convc tune and the tuning file: the search on lavapipe with a tiny budget (the file written
// with its adapter and keys, every cached schedule legal, a wrong candidate never cached, a
// slower one never winning), and the lookup compile, run and bench make (the adapter's cached
// file found, --tuning FILE and --no-tuning overriding, another adapter's file ignored).
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { acquireGpu } from '../../src/backends/webgpu/device.js';
import { main } from '../../src/cli/main.js';
import { tuneCommand } from '../../src/cli/commands/tune.js';
import { elaborate, selectModel } from '../../src/dsl/elaborate.js';
import { loadProgram } from '../../src/dsl/load.js';
import { lowerNode } from '../../src/kernel/lower/index.js';
import { scheduleSpace, type Schedule } from '../../src/kernel/schedule.js';
import { splitForKernels } from '../../src/kernel/split.js';
import { targetOfDevice, webgpuDefaultTarget } from '../../src/kernel/target.js';
import { pipelines, runPipeline } from '../../src/passes/manager.js';
import { canonicalJson, kernelKey } from '../../src/tune/key.js';
import { chooseTuning, tunedSchedules } from '../../src/tune/lookup.js';
import { candidateOrder } from '../../src/tune/space.js';
import { adapterSlug, defaultTuningPath, readTuningFile, type TuningFile } from '../../src/tune/tuning-file.js';
import type { Graph, Node } from '../../src/ir/types.js';
import { captureIo, goldenDir } from '../helpers.js';

const cases = join(goldenDir, 'cases.cnx');
const size = { batch: 1, height: 32, width: 32 };
const model = (passes: readonly string[] = pipelines.fused): Graph => {
  const program = loadProgram(cases);
  return runPipeline(elaborate(program, selectModel(program, 'convnextv2-mini', cases), size), passes);
};

describe('tuning keys and the searched space (no GPU)', () => {
  it('keys kernels by structure, not by node names', () => {
    const graph = splitForKernels(model());
    const keys = graph.nodes.map(kernelKey);
    const renamed = graph.nodes.map((n) => kernelKey({ ...n, name: `renamed.${n.name}` }));
    expect(renamed).toEqual(keys);
    // Fewer distinct kernels than nodes: same-shaped blocks share one.
    expect(new Set(keys).size).toBeLessThan(keys.length);
    expect(keys.find((k) => k.startsWith('linear+gelu'))).toMatch(/^linear\+gelu \[1, \d+, \d+, \d+\] #[0-9a-f]{12}$/);
  });

  it('prunes staged GEMM tiles over 16 outputs per thread (unstaged: 32) and workgroups outside 64-256, in a fixed order', () => {
    const graph = splitForKernels(model());
    const gemm = graph.nodes.find((n) => kernelKey(n).startsWith('linear+gelu'))!;
    const order = candidateOrder(gemm, webgpuDefaultTarget, kernelKey(gemm));
    expect(order.length).toBeGreaterThan(10);
    for (const s of order) {
      if (s.strategy !== 'gemm') expect(s.workgroupSize).toBeGreaterThanOrEqual(64);
      else {
        expect(s.threadRows * s.threadCols).toBeLessThanOrEqual(s.stage ? 16 : 32);
        expect((s.rows / s.threadRows) * (s.cols / s.threadCols)).toBeGreaterThanOrEqual(64);
      }
    }
    expect(candidateOrder(gemm, webgpuDefaultTarget, kernelKey(gemm))).toEqual(order);
    expect(canonicalJson(order)).not.toContain(canonicalJson(scheduleSpace(gemm, webgpuDefaultTarget)[0]));
  });

  it('ignores a tuning file of another adapter with a note, and uses one given to compile', () => {
    const dir = mkdtempSync(join(tmpdir(), 'convc-tune-'));
    const path = join(dir, 't.json');
    writeFileSync(path, JSON.stringify({ format: 'convc-tuning', version: 1, adapter: 'GPU A', kernels: {}, models: {} }));
    const other = chooseTuning({ kind: 'file', path }, 'GPU B');
    expect(other.tuning).toBeUndefined();
    expect(other.warning).toMatch(/ignoring the tuning file .* another adapter \(GPU A\)/);
    expect(chooseTuning({ kind: 'file', path }, undefined).tuning?.adapter).toBe('GPU A');
    expect(chooseTuning({ kind: 'off' }, 'GPU A').note).toBe('tuning: none (--no-tuning)');
    expect(adapterSlug('vendor: x, device: y')).toMatch(/^vendor-x-device-y-[0-9a-f]{8}$/);
    writeFileSync(path, '{"format": "other"}');
    expect(() => readTuningFile(path)).toThrow(/not a convc tuning file/);
  });

  it('falls back to the default for a cached schedule that is not in the space', () => {
    const graph = model();
    const node = splitForKernels(graph).nodes.find((n) => kernelKey(n).startsWith('linear+gelu'))!;
    const tuning: TuningFile = {
      format: 'convc-tuning', version: 1, adapter: 'x', models: {},
      kernels: { [kernelKey(node)]: { kernel: 'k', schedule: { strategy: 'direct', workgroupSize: 100 }, ms: 1, default_ms: 2, is_default: false, candidates: 1, rejected: 0 } },
    };
    const tuned = tunedSchedules(tuning, [graph], webgpuDefaultTarget);
    expect(tuned).toMatchObject({ used: 0, refused: 1 });
    expect(tuned.schedule(node)).toBeUndefined();
  });
});

describe('convc tune on the adapter', () => {
  const cacheDir = mkdtempSync(join(tmpdir(), 'convc-tune-cache-'));
  let adapter = '';
  let target = webgpuDefaultTarget;
  let tuningPath = '';
  let tuneErr = '';
  let tuneOut = '';
  /** The first candidate of the kernel searched first: made the fastest, and wrong. */
  let wrong: { key: string; schedule: Schedule } | undefined;
  /** The model's default schedules on the adapter (scheduleSpace's first), for the timing hook. */
  const defaults = new Set<string>();
  const isDefault = (s: Schedule) => defaults.has(canonicalJson(s));

  beforeAll(async () => {
    process.env.CONVC_CACHE_DIR = cacheDir;
    const gpu = await acquireGpu();
    adapter = gpu.adapterInfo;
    target = targetOfDevice(gpu.device, 'this device');
    gpu.destroy();
    for (const n of splitForKernels(model()).nodes) defaults.add(canonicalJson(scheduleSpace(n, target)[0]));
    tuningPath = defaultTuningPath(adapter);
    const io = captureIo();
    const code = await tuneCommand([cases, '--model', 'convnextv2-mini', '--size', '32', '--budget', '2s', '--runs', '2'], io, {
      extraCandidates: (key, node: Node) => {
        if (wrong) return [];
        const schedule = candidateOrder(node, target, key)[0];
        if (!schedule) return [];
        wrong = { key, schedule };
        return [schedule];
      },
      tamperOutput: (key, schedule, output) => (key === wrong?.key && schedule === wrong.schedule ? output.map((v, i) => (i === 0 ? v + 1 : v)) : output),
      // Every candidate but the wrong one looks 30% slower than the default; the wrong one 100x faster.
      adjustTimes: (key, schedule, ms) => (key === wrong?.key && schedule === wrong.schedule ? ms.map((t) => t / 100) : isDefault(schedule) ? ms : ms.map((t) => t * 1.3)),
    });
    tuneErr = io.err();
    tuneOut = io.out();
    expect(code, tuneErr).toBe(0);
  }, 120_000);

  it('writes the tuning file at the default location, with the adapter and a key per kernel', () => {
    expect(existsSync(tuningPath)).toBe(true);
    expect(tuningPath.startsWith(join(cacheDir, 'tuning'))).toBe(true);
    // Written atomically: nothing else is left in the folder.
    expect(readdirSync(join(cacheDir, 'tuning'))).toEqual([tuningPath.slice(join(cacheDir, 'tuning').length + 1)]);
    const tuning = readTuningFile(tuningPath);
    expect(tuning.adapter).toBe(adapter);
    const keys = new Set(splitForKernels(model()).nodes.map(kernelKey));
    expect(Object.keys(tuning.kernels).length).toBeGreaterThan(0);
    for (const key of Object.keys(tuning.kernels)) expect(keys.has(key)).toBe(true);
    expect(tuning.models['convnextv2-mini [1, 3, 32, 32]']).toMatchObject({ tuned_ms: expect.any(Number), default_ms: expect.any(Number) });
  });

  it('caches only legal schedules that lower, never the wrong candidate, and no slower one', () => {
    const tuning = readTuningFile(tuningPath);
    const graph = splitForKernels(model());
    expect(wrong).toBeDefined();
    expect(tuneOut).toMatch(/\n {2}1 candidate schedule computed a wrong result and was rejected\n/);
    // Not a terminal: no progress lines.
    expect(tuneErr).toBe('');
    for (const node of graph.nodes) {
      const entry = tuning.kernels[kernelKey(node)];
      if (!entry) continue;
      const space = scheduleSpace(node, target).map(canonicalJson);
      expect(space).toContain(canonicalJson(entry.schedule));
      expect(() => lowerNode(graph, node, target, entry.schedule)).not.toThrow();
      // Every other candidate was slower than the default and the fast one was wrong: defaults everywhere.
      expect(entry.is_default).toBe(true);
      expect(canonicalJson(entry.schedule)).not.toBe(canonicalJson(wrong!.schedule));
    }
  });

  describe('used by compile, run and bench', () => {
    let forged = '';
    let forgedKey = '';
    beforeAll(() => {
      // A cached file with one non-default (legal) schedule, so that its use shows.
      const tuning = readTuningFile(tuningPath);
      const node = splitForKernels(model()).nodes.find((n) => n.op === 'input')!;
      forgedKey = kernelKey(node);
      const schedule = scheduleSpace(node, target).find((s) => s.strategy === 'elementwise' && s.workgroupSize === 128)!;
      const kernels = { ...tuning.kernels, [forgedKey]: { kernel: 'nchw_to_nhwc', schedule, ms: 1, default_ms: 2, is_default: false, candidates: 1, rejected: 0 } };
      writeFileSync(tuningPath, JSON.stringify({ ...tuning, kernels }));
      forged = join(cacheDir, 'forged.json');
      writeFileSync(forged, JSON.stringify({ ...tuning, kernels }));
    });

    const convc = async (...args: string[]) => {
      const io = captureIo();
      const code = await main(args, io);
      return { code, out: io.out(), err: io.err() };
    };

    it('run finds the adapter\'s cached file, and --no-tuning, --tuning FILE and another adapter\'s file override it', async () => {
      const base = ['run', cases, '--model', 'convnextv2-mini', '--size', '32', '--random-weights', '--backend', 'webgpu', '--verbose'];
      const cached = await convc(...base);
      expect(cached.code, cached.err).toBe(0);
      expect(cached.err).toContain(`tuning: ${tuningPath} (the cached file of this adapter)`);
      const off = await convc(...base, '--no-tuning');
      expect(off.err).toContain('tuning: none (--no-tuning)');
      expect(off.out).toBe(cached.out);
      const given = await convc(...base, '--tuning', forged);
      expect(given.err).toContain(`tuning: ${forged} (--tuning; tuned on ${adapter})`);
      const other = join(cacheDir, 'other.json');
      writeFileSync(other, JSON.stringify({ ...readTuningFile(forged), adapter: 'some other GPU' }));
      const ignored = await convc(...base, '--tuning', other);
      expect(ignored.code).toBe(0);
      expect(ignored.err).toMatch(/note: ignoring the tuning file .*other\.json.* another adapter \(some other GPU\)/);
      expect(ignored.err).toContain('tuning: none (the --tuning file is for another adapter)');
    }, 60_000);

    it('compile uses a tuning file only when given one', async () => {
      const out = (name: string) => join(cacheDir, name);
      const plain = await convc('compile', cases, '--model', 'convnextv2-mini', '--size', '32', '-o', out('plain'), '--verbose');
      expect(plain.code, plain.err).toBe(0);
      expect(plain.err).toMatch(/tuning: none \(compile writes a portable runner/);
      const tuned = await convc('compile', cases, '--model', 'convnextv2-mini', '--size', '32', '-o', out('tuned'), '--tuning', forged, '--verbose');
      expect(tuned.code, tuned.err).toBe(0);
      expect(tuned.err).toMatch(/tuning: .*forged\.json \(--tuning; tuned on .*\): \d+ of \d+ kernels/);
      const layout = (dir: string) => readFileSync(join(dir, 'kernels', readdirSync(join(dir, 'kernels')).find((f) => f.includes('nchw_to_nhwc'))!), 'utf8');
      expect(layout(out('plain'))).toMatch(/Schedule: strategy=elementwise, workgroupSize=64\n/);
      expect(layout(out('tuned'))).toMatch(/Schedule: strategy=elementwise, workgroupSize=128\n/);
    }, 60_000);

    it('bench says which tuning file it uses', async () => {
      const bench = await convc('bench', cases, '--model', 'convnextv2-mini', '--size', '32', '--runs', '1', '--warmup', '0', '--peers', 'none', '--verbose');
      expect(bench.code, bench.err).toBe(0);
      expect(bench.err).toContain(`tuning: ${tuningPath} (the cached file of this adapter)`);
    }, 60_000);
  });
});
