// The pass manager: runs a named pipeline of Graph -> Graph passes, verifying after each.
import { verifyGraph } from '../ir/verify.js';
import type { Graph } from '../ir/types.js';
import { defaultPassContext, type PassContext } from './context.js';
import { compactSparseRegions } from './compact-sparse-regions.js';
import { eliminateDropPath } from './eliminate-drop-path.js';
import { foldLayerScale } from './fold-layer-scale.js';
import { fuseEpilogues, fusePrologues } from './fuse.js';
import { partialStatistics } from './partial-statistics.js';
import { splitGrn } from './split-grn.js';
import { splitMaskedPatchLoss } from './split-masked-patch-loss.js';

export interface Pass {
  readonly name: string;
  readonly description: string;
  readonly run: (graph: Graph, context?: PassContext) => Graph;
}

export const passRegistry: ReadonlyMap<string, Pass> = new Map(
  [eliminateDropPath, compactSparseRegions, splitGrn, splitMaskedPatchLoss, fuseEpilogues, fusePrologues, foldLayerScale, partialStatistics].map((p) => [p.name, p]),
);

/** Named pipelines: `fused` is what compile, run, inspect and bench use unless told otherwise. */
export const pipelines: Readonly<Record<'fused' | 'unfused', readonly string[]>> = {
  fused: ['eliminate-drop-path', 'compact-sparse-regions', 'split-grn', 'split-masked-patch-loss', 'fuse-epilogues', 'fuse-prologues', 'fold-layer-scale', 'partial-statistics'],
  // GRN's split into statistics and apply, and the masked patch loss's into its parts, are
  // decompositions, not fusions: kernels only know the parts. Compacting sparse regions is not
  // a fusion either: it decides what is computed.
  unfused: ['eliminate-drop-path', 'compact-sparse-regions', 'split-grn', 'split-masked-patch-loss'],
};

export const defaultPipeline: readonly string[] = pipelines.fused;

/** A pipeline with its sparse regions left dense: computed everywhere, then masked (--dense-mask). */
export const denseMasked = (passes: readonly string[]): readonly string[] => passes.filter((p) => p !== 'compact-sparse-regions');

export interface PassTrace {
  readonly pass: string;
  readonly graph: Graph;
}

export interface PipelineOptions {
  readonly context?: PassContext;
  /** Called with the graph after each pass (`convc inspect --passes` shows them). */
  readonly trace?: (t: PassTrace) => void;
}

export function runPipeline(graph: Graph, names: readonly string[] = defaultPipeline, options: PipelineOptions = {}): Graph {
  const { context = defaultPassContext, trace } = options;
  let current = graph;
  for (const name of names) {
    const pass = passRegistry.get(name);
    if (!pass) throw new Error(`internal: unknown pass '${name}'`);
    current = pass.run(current, context);
    verifyGraph(current, `pass '${name}'`);
    trace?.({ pass: name, graph: current });
  }
  return current;
}
