// The reference executor against PyTorch: every golden case from make-goldens.py.
import { describe, expect, it } from 'vitest';
import { executeReference } from '../../../src/backends/reference/executor.js';
import { pipelines } from '../../../src/passes/manager.js';
import { bindWeights } from '../../../src/weights/bind.js';
import { goldenCases, goldenFiles, goldenGraph, toleranceRatio } from '../../helpers.js';

// The goldens are computed in float64 from the stored f32 weights and inputs, so they are the
// exact answers; the reference accumulates in f64 too, and only its f32 intermediate storage
// differs. 1e-4 abs + rel is the project's fp32 tolerance; observed errors are ~2e-7.
const ATOL = 1e-4;
const RTOL = 1e-4;

describe('reference executor vs PyTorch goldens', () => {
  it('has the cases the issue asks for', () => {
    const names = goldenCases.map((c) => c.name);
    for (const wanted of ['grn', 'layernorm', 'dwconv', 'downsample', 'stem', 'convnextv1-mini', 'convnextv2-mini']) expect(names).toContain(wanted);
    expect(goldenCases.filter((c) => c.kind === 'model').some((c) => c.input_shape[2] !== c.input_shape[3])).toBe(true);
    expect(goldenCases.every((c) => c.input_shape[0] === 2)).toBe(true);
  });

  const cases = goldenCases.flatMap((c) => (['fused', 'unfused'] as const).map((pipeline) => [c.name, pipeline] as const));
  it.each(cases)('%s matches, %s', (name, pipeline) => {
    const { input, output, weights, paths } = goldenFiles(name);
    const graph = goldenGraph(name, input, pipelines[pipeline]);
    const result = executeReference(graph, bindWeights(graph, weights, paths.weights), input);
    expect(result.shape).toEqual(output.shape);
    expect(toleranceRatio(result.data, output.data, ATOL, RTOL)).toBeLessThan(1);
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
    expect(toleranceRatio(executeReference(graph, bound, input).data, output.data, ATOL, RTOL)).toBeGreaterThan(1);
  });
});
