// The passes scale linearly: a 2000-block model (16,000 nodes) goes through the fused pipeline
// in seconds (about 3 s here). Fusion used to rebuild the whole graph once per fusion: 8.4 s
// at 300 blocks here, quadratic, so several minutes at 2000, far past this bound.
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { elaborate } from '../../src/dsl/elaborate.js';
import { loadProgram } from '../../src/dsl/load.js';
import { pipelines, runPipeline } from '../../src/passes/manager.js';
import { repoPath } from '../helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'convc-scale-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Generous for a loaded two-core machine; the quadratic fusion took ~100x this long. */
const FUSED_PIPELINE_BOUND_MS = 40_000;

it('fuses a 2000-block ConvNeXt V2 within a generous linear-time bound', () => {
  const file = join(dir, 'big.cnx');
  writeFileSync(file, `import "${repoPath('models/convnextv2.cnx').replace(/\\/g, '/')}"\nmodel big = ConvNeXtV2(depths=[2000, 1, 1, 1], dims=[8, 8, 8, 8])\n`);
  const graph = elaborate(loadProgram(file), 'big', { batch: 1, height: 64, width: 64 });
  expect(graph.nodes.length).toBeGreaterThan(16_000);
  const start = performance.now();
  const fused = runPipeline(graph, pipelines.fused);
  const elapsed = performance.now() - start;
  console.log(`fused pipeline over ${graph.nodes.length} nodes: ${Math.round(elapsed)} ms`);
  // Three dispatches per block plus a few for the stem, downsampling and head.
  expect(fused.nodes.length).toBeLessThan(graph.nodes.length / 1.8);
  expect(elapsed).toBeLessThan(FUSED_PIPELINE_BOUND_MS);
}, 120_000);
