// Fusion passes, before/expected style: each test builds a small graph, runs the pass, and
// compares the result's structure with the graph it should become.
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../src/ir/builder.js';
import type { Attrs, Graph } from '../../src/ir/types.js';
import { verifyGraph } from '../../src/ir/verify.js';
import { defaultSchedule, prologueReaders } from '../../src/kernel/schedule.js';
import { recomputeLimits, webgpuDefaultTarget } from '../../src/kernel/target.js';
import { defaultPassContext } from '../../src/passes/context.js';
import { pipelines, runPipeline } from '../../src/passes/manager.js';
import { zooGraph } from '../helpers.js';

const C = 6;
const conv = (groups = 1, padding = 3, kernel = 7): Attrs => ({ in: C, out: C, kernel: [kernel, kernel], stride: [1, 1], padding: [padding, padding], groups, bias: true });
const linear = (cin: number, cout: number): Attrs => ({ in: cin, out: cout, bias: true });
const ln = (dim = C): Attrs => ({ dim, eps: 1e-6 });

/** A graph builder whose first node is a [2, C, 5, 4] input. */
function start(): { b: GraphBuilder; x: number } {
  const b = new GraphBuilder('g');
  return { b, x: b.add({ op: 'input', inputs: [], attrs: { channels: C, shape: [2, C, 5, 4] }, name: '' }) };
}

/** One line per node: the op (fused ones as their chain, the anchor starred) and its inputs. */
function structure(graph: Graph): string[] {
  verifyGraph(graph, 'test');
  return graph.nodes.map((n) => {
    const op = n.fusion ? [...n.fusion.prologue.map((s) => s.op), `*${n.op}`, ...n.fusion.epilogue.map((s) => s.op)].join(' -> ') : n.op;
    return `${op}(${n.inputs.map((i) => `%${i}`).join(', ')})`;
  });
}

const fused = (g: Graph) => structure(runPipeline(g, pipelines.fused));

describe('fusion rewrites', () => {
  it('splits GRN into statistics and apply', () => {
    const { b, x } = start();
    const g = b.build(b.add({ op: 'grn', inputs: [x], attrs: { dim: C, eps: 1e-6 }, name: 'grn' }));
    expect(structure(runPipeline(g, ['split-grn']))).toEqual(['input()', 'grn_stats(%0)', 'grn_apply(%0, %1)']);
  });

  it('fuses dwconv + LayerNorm', () => {
    const { b, x } = start();
    const d = b.add({ op: 'conv2d', inputs: [x], attrs: conv(C), name: 'dw' });
    const g = b.build(b.add({ op: 'layernorm', inputs: [d], attrs: ln(), name: 'norm' }));
    expect(fused(g)).toEqual(['input()', '*conv2d -> layernorm(%0)']);
  });

  it('fuses pw1 + GELU, splits GRN, folds its apply into pw2 with layer scale and the residual', () => {
    const { b, x } = start();
    const p1 = b.add({ op: 'linear', inputs: [x], attrs: linear(C, 4 * C), name: 'pw1' });
    const a = b.add({ op: 'gelu', inputs: [p1], attrs: {}, name: '' });
    const r = b.add({ op: 'grn', inputs: [a], attrs: { dim: 4 * C, eps: 1e-6 }, name: 'grn' });
    const p2 = b.add({ op: 'linear', inputs: [r], attrs: linear(4 * C, C), name: 'pw2' });
    const s = b.add({ op: 'layer_scale', inputs: [p2], attrs: { dim: C, init: 1e-6 }, name: 'gamma' });
    const g = b.build(b.add({ op: 'add', inputs: [x, s], attrs: {}, name: '' }));
    expect(structure(runPipeline(g, ['split-grn', 'fuse-epilogues', 'fuse-prologues']))).toEqual([
      'input()',
      '*linear -> gelu(%0)',
      'grn_stats(%1)',
      'grn_apply -> *linear -> layer_scale -> add(%1, %0, %2)',
    ]);
    // Then the layer scale folds into pw2's weights and bias, which are derived at binding time.
    const folded = runPipeline(g, pipelines.fused);
    expect(structure(folded)).toEqual(['input()', '*linear -> gelu(%0)', 'grn_stats(%1)', 'grn_apply -> *linear -> add(%1, %0, %2)']);
    expect(folded.nodes[3].params).toEqual({ weight: 'pw2.weight*gamma', bias: 'pw2.bias*gamma' });
    expect(folded.params.get('pw2.weight*gamma')!.derived).toEqual({ rule: 'scale-rows', source: 'pw2.weight', scale: 'gamma' });
  });

  it('folds layer scale only where the layer owns its weights', () => {
    const { b, x } = start();
    const l = b.add({ op: 'linear', inputs: [x], attrs: linear(C, C), name: 'pw' });
    const g = b.build(b.add({ op: 'layer_scale', inputs: [l], attrs: { dim: C, init: 1e-6 }, name: 'gamma' }));
    expect(fused(g)).toEqual(['input()', 'linear(%0)']);
    const shared = { ...g, nodes: [...g.nodes, { ...g.nodes[1], id: 3, inputs: [2] }], output: 3 };
    // Two linears reading one weight: folding would change the other one, so nothing folds.
    expect(fused(shared)).toEqual(['input()', '*linear -> layer_scale(%0)', 'linear(%1)']);
  });

  it('fuses the stem conv 4x4/4 with its LayerNorm', () => {
    const { b, x } = start();
    const c = b.add({ op: 'conv2d', inputs: [x], attrs: { ...conv(1, 0, 2), kernel: [2, 2], stride: [2, 2] }, name: 'stem.0' });
    const g = b.build(b.add({ op: 'layernorm', inputs: [c], attrs: ln(), name: 'stem.1' }));
    expect(fused(g)).toEqual(['input()', '*conv2d -> layernorm(%0)']);
  });
});

describe('downsampling', () => {
  it('fuses the LayerNorm before a 2x2/2 conv into it as a prologue', () => {
    const { b, x } = start();
    const n = b.add({ op: 'layernorm', inputs: [x], attrs: ln(), name: 'ds.0' });
    const g = b.build(b.add({ op: 'conv2d', inputs: [n], attrs: { ...conv(1, 0, 2), out: 2 * C, stride: [2, 2] }, name: 'ds.1' }));
    expect(fused(g)).toEqual(['input()', 'layernorm -> *conv2d(%0)']);
  });

  it('keeps a LayerNorm before a padded conv (the padding must stay zero, not normalised)', () => {
    const { b, x } = start();
    const n = b.add({ op: 'layernorm', inputs: [x], attrs: ln(), name: 'n' });
    const g = b.build(b.add({ op: 'conv2d', inputs: [n], attrs: conv(1, 1, 3), name: 'c' }));
    expect(fused(g)).toEqual(['input()', 'layernorm(%0)', 'conv2d(%1)']);
  });
});

describe('the head', () => {
  it('fuses global average pooling, LayerNorm and the classifier into one node', () => {
    const { b, x } = start();
    const pool = b.add({ op: 'global_avg_pool', inputs: [x], attrs: {}, name: '' });
    const n = b.add({ op: 'layernorm', inputs: [pool], attrs: ln(), name: 'norm' });
    const g = b.build(b.add({ op: 'linear', inputs: [n], attrs: linear(C, 10), name: 'head' }));
    expect(fused(g)).toEqual(['input()', 'global_avg_pool -> layernorm -> *linear(%0)']);
  });

  it("fuses the head only where the target's workgroup memory holds a sample's channels", () => {
    const head = (channels: number): Graph => {
      const b = new GraphBuilder('wide');
      const x = b.add({ op: 'input', inputs: [], attrs: { channels, shape: [1, channels, 2, 2] }, name: '' });
      const pool = b.add({ op: 'global_avg_pool', inputs: [x], attrs: {}, name: '' });
      const n = b.add({ op: 'layernorm', inputs: [pool], attrs: ln(channels), name: 'norm' });
      return b.build(b.add({ op: 'linear', inputs: [n], attrs: linear(channels, 10), name: 'head' }));
    };
    const one = ['input()', 'global_avg_pool -> layernorm -> *linear(%0)'];
    // The fused head stages a sample's channels beside its reduction scratch. 4000 channels
    // (15.6 KiB) fit WebGPU's default 16 KiB; 4096 (16 KiB) do not, but fit a 32 KiB device.
    expect(fused(head(4000))).toEqual(one);
    expect(fused(head(4096))).toEqual(['input()', 'global_avg_pool(%0)', 'layernorm(%1)', 'linear(%2)']);
    const wider = { target: { ...webgpuDefaultTarget, name: 'a 32 KiB device', maxComputeWorkgroupStorageSize: 32768 } };
    expect(structure(runPipeline(head(4096), pipelines.fused, { context: wider }))).toEqual(one);
    // The default context is WebGPU's default limits.
    expect(structure(runPipeline(head(4096), pipelines.fused, { context: defaultPassContext }))).toEqual(fused(head(4096)));
  });

  it('keeps a LayerNorm before a pointwise layer on an image (a pixel-wise GEMM does not own a sample)', () => {
    const { b, x } = start();
    const n = b.add({ op: 'layernorm', inputs: [x], attrs: ln(), name: 'norm' });
    const g = b.build(b.add({ op: 'linear', inputs: [n], attrs: linear(C, 10), name: 'pw' }));
    expect(fused(g)).toEqual(['input()', 'layernorm(%0)', 'linear(%1)']);
  });
});

describe('what must stay unfused', () => {
  it('a dwconv whose output is also read elsewhere', () => {
    const { b, x } = start();
    const d = b.add({ op: 'conv2d', inputs: [x], attrs: conv(C), name: 'dw' });
    const n = b.add({ op: 'layernorm', inputs: [d], attrs: ln(), name: 'norm' });
    const g = b.build(b.add({ op: 'add', inputs: [d, n], attrs: {}, name: '' }));
    expect(fused(g)).toEqual(['input()', 'conv2d(%0)', 'layernorm(%1)', 'add(%1, %2)']);
  });

  it('a reduction that is not over channels (global average pooling)', () => {
    const { b, x } = start();
    const d = b.add({ op: 'conv2d', inputs: [x], attrs: conv(C), name: 'dw' });
    const g = b.build(b.add({ op: 'global_avg_pool', inputs: [d], attrs: {}, name: '' }));
    expect(fused(g)).toEqual(['input()', 'conv2d(%0)', 'global_avg_pool(%1)']);
  });

  it('a GRN whose consumer pads its input (a 3x3 conv): the apply step cannot be folded', () => {
    const { b, x } = start();
    const r = b.add({ op: 'grn', inputs: [x], attrs: { dim: C, eps: 1e-6 }, name: 'grn' });
    const g = b.build(b.add({ op: 'conv2d', inputs: [r], attrs: conv(1, 1, 3), name: 'c' }));
    expect(fused(g)).toEqual(['input()', 'grn_stats(%0)', 'grn_apply(%0, %1)', 'conv2d(%2)']);
  });

  it('a GRN read by two ops keeps its apply step in memory', () => {
    const { b, x } = start();
    const r = b.add({ op: 'grn', inputs: [x], attrs: { dim: C, eps: 1e-6 }, name: 'grn' });
    const l = b.add({ op: 'linear', inputs: [r], attrs: linear(C, C), name: 'l' });
    const g = b.build(b.add({ op: 'add', inputs: [r, l], attrs: {}, name: '' }));
    expect(fused(g)).toEqual(['input()', 'grn_stats(%0)', 'grn_apply(%0, %1)', '*linear -> add(%2, %2)']);
  });

  it('a second LayerNorm in one epilogue (a kernel owns one normalisation of its pixel)', () => {
    const { b, x } = start();
    const d = b.add({ op: 'conv2d', inputs: [x], attrs: conv(C), name: 'dw' });
    const n1 = b.add({ op: 'layernorm', inputs: [d], attrs: ln(), name: 'n1' });
    const g = b.build(b.add({ op: 'layernorm', inputs: [n1], attrs: ln(), name: 'n2' }));
    expect(fused(g)).toEqual(['input()', '*conv2d -> layernorm(%0)', 'layernorm(%1)']);
  });

  it('an add whose other operand is computed after the conv', () => {
    const { b, x } = start();
    const d = b.add({ op: 'conv2d', inputs: [x], attrs: conv(C), name: 'dw' });
    const late = b.add({ op: 'gelu', inputs: [x], attrs: {}, name: '' });
    const g = b.build(b.add({ op: 'add', inputs: [d, late], attrs: {}, name: '' }));
    expect(fused(g)).toEqual(['input()', 'conv2d(%0)', 'gelu(%0)', 'add(%1, %2)']);
  });

  it('nothing at all with the unfused pipeline', () => {
    const { b, x } = start();
    const d = b.add({ op: 'conv2d', inputs: [x], attrs: conv(C), name: 'dw' });
    const g = b.build(b.add({ op: 'layernorm', inputs: [d], attrs: ln(), name: 'norm' }));
    expect(structure(runPipeline(g, pipelines.unfused))).toEqual(['input()', 'conv2d(%0)', 'layernorm(%1)']);
  });
});

describe('fusion decided by the target cost model', () => {
  /** GRN before a pointwise layer of `out` channels on a 16x16 image (a GEMM of 256 rows). */
  function grnBeforeGemm(out: number): Graph {
    const b = new GraphBuilder('g');
    const x = b.add({ op: 'input', inputs: [], attrs: { channels: 32, shape: [1, 32, 16, 16] }, name: '' });
    const g = b.add({ op: 'grn', inputs: [x], attrs: { dim: 32, eps: 1e-6 }, name: 'grn' });
    return b.build(b.add({ op: 'linear', inputs: [g], attrs: linear(32, out), name: 'pw2' }));
  }
  const software = { target: { ...webgpuDefaultTarget, name: 'a CPU emulation', prologueRecomputeLimit: recomputeLimits.software } };
  const folded = ['input()', 'grn_stats(%0)', 'grn_apply -> *linear(%0, %1)'];
  const apart = ['input()', 'grn_stats(%0)', 'grn_apply(%0, %1)', 'linear(%2)'];

  it('folds the GRN apply into the GEMM while few threads recompute it, on a GPU up to 64', () => {
    // The GEMM's default schedule gives each thread 16 output channels: ceil(out / 16) readers.
    expect(prologueReaders(runPipeline(grnBeforeGemm(1024), pipelines.fused).nodes[2], defaultSchedule(runPipeline(grnBeforeGemm(1024), pipelines.fused).nodes[2], webgpuDefaultTarget))).toBe(64);
    expect(fused(grnBeforeGemm(1024))).toEqual(folded);
    expect(fused(grnBeforeGemm(1040))).toEqual(apart);
  });

  it('folds it in on a CPU emulation with subgroups of 8, whose GEMM lanes share each prologue, and leaves the head apart there', () => {
    const emulation = { target: { ...webgpuDefaultTarget, name: 'lavapipe-like', emulated: true, subgroups: true, subgroupSize: 8, prologueRecomputeLimit: recomputeLimits.software } };
    expect(structure(runPipeline(grnBeforeGemm(768), pipelines.fused, { context: emulation }))).toEqual(folded);
    const atto = zooGraph('convnextv2-atto', { batch: 1, height: 32, width: 32 }, []);
    const kinds = (context?: typeof emulation) => runPipeline(atto, pipelines.fused, context ? { context } : {}).nodes.filter((n) => n.op === 'linear' && n.type.shape.length === 2).map((n) => (n.fusion?.prologue ?? []).map((s) => s.op).join(','));
    expect(kinds()).toEqual(['global_avg_pool,layernorm']);
    expect(kinds(emulation)).toEqual(['']);
  });

  it('keeps it apart sooner on a CPU emulation, where recomputing costs more than a pass over memory', () => {
    expect(structure(runPipeline(grnBeforeGemm(128), pipelines.fused, { context: software }))).toEqual(folded);
    expect(structure(runPipeline(grnBeforeGemm(160), pipelines.fused, { context: software }))).toEqual(apart);
    expect(fused(grnBeforeGemm(160))).toEqual(folded);
  });
});
