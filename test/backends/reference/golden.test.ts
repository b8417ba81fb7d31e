// The reference executor against PyTorch: every golden case from make-goldens.py.
import { describe, expect, it } from 'vitest';
import { executeReference } from '../../../src/backends/reference/executor.js';
import type { Graph } from '../../../src/ir/types.js';
import { pipelines } from '../../../src/passes/manager.js';
import { bindWeights } from '../../../src/weights/bind.js';
import { goldenCases, goldenFiles, goldenGraph, scaledDifference } from '../../helpers.js';

// The goldens are computed in float64 from the stored f32 weights and inputs, so they are the
// exact answers; the reference accumulates in f64 too, and only its f32 intermediate storage
// differs (6e-8 relative per rounding, a few dozen roundings deep, observed ~2e-7 of the
// output's scale). 2e-6 of the output's scale leaves a 10x margin and still sees a LayerNorm
// or GRN epsilon set to 0 (see below), which the old 1e-4 abs + rel did not.
const SCALE_RTOL = 2e-6;

describe('reference executor vs PyTorch goldens', () => {
  it('has the cases the issue asks for', () => {
    const names = goldenCases.map((c) => c.name);
    for (const wanted of ['grn', 'layernorm', 'dwconv', 'downsample', 'stem', 'convnextv1-mini', 'convnextv2-mini', 'layernorm-eps', 'grn-eps', 'v2-block-eps']) expect(names).toContain(wanted);
    expect(goldenCases.filter((c) => c.kind === 'model').some((c) => c.input_shape[2] !== c.input_shape[3])).toBe(true);
    expect(goldenCases.every((c) => c.input_shape[0] === 2)).toBe(true);
  });

  const cases = goldenCases.flatMap((c) => (['fused', 'unfused'] as const).map((pipeline) => [c.name, pipeline] as const));
  it.each(cases)('%s matches, %s', (name, pipeline) => {
    const { input, output, weights, paths } = goldenFiles(name);
    const graph = goldenGraph(name, input, pipelines[pipeline]);
    const result = executeReference(graph, bindWeights(graph, weights, paths.weights), input);
    expect(result.shape).toEqual(output.shape);
    expect(scaledDifference(result.data, output.data)).toBeLessThan(SCALE_RTOL);
  });

  // The issue this guards against: with eps dropped every golden still passed at 1e-4. (The ops
  // refuse eps = 0, so "dropped" is 1e-12 here.)
  it.each([
    ['layernorm-eps', 'layernorm'],
    ['grn-eps', 'grn'],
    ['grn-eps', 'grn_stats'],
    ['v2-block-eps', 'layernorm'],
    ['v2-block-eps', 'grn'],
    ['downsample-eps', 'layernorm'],
  ])('would notice %s with its %s epsilon dropped', (name, op) => {
    const { input, output, weights, paths } = goldenFiles(name);
    // GRN as written, or split into the statistics that hold its epsilon.
    const graph = goldenGraph(name, input, op === 'grn' ? ['eliminate-drop-path'] : pipelines.unfused);
    expect(graph.nodes.some((n) => n.op === op)).toBe(true);
    const zeroEps: Graph = { ...graph, nodes: graph.nodes.map((n) => (n.op === op ? { ...n, attrs: { ...n.attrs, eps: 1e-12 } } : n)) };
    expect(scaledDifference(executeReference(zeroEps, bindWeights(graph, weights, paths.weights), input).data, output.data)).toBeGreaterThan(SCALE_RTOL);
  });

  it('would notice a wrong weight', () => {
    // Guards the comparison itself: perturb one GRN gamma and the v2 model must fail it.
    const { input, output, weights, paths } = goldenFiles('convnextv2-mini');
    const graph = goldenGraph('convnextv2-mini', input);
    const bound = new Map(bindWeights(graph, weights, paths.weights));
    const gamma = bound.get('stages.1.1.grn.gamma')!;
    const changed = Float32Array.from(gamma.data);
    changed[3] += 0.05;
    bound.set('stages.1.1.grn.gamma', { shape: gamma.shape, data: changed });
    expect(scaledDifference(executeReference(graph, bound, input).data, output.data)).toBeGreaterThan(SCALE_RTOL);
  });
});
