// convc bench's gpujs row: the fused graph built for the gpu.js target, run through its
// generated runner in gpu.js's GL mode (headless-gl in Node), timed in the same shuffled rounds
// as the WebGPU rows. It is not on the WebGPU adapter but on the OpenGL of the X display (on a
// machine without a GPU, Mesa's llvmpipe on Xvfb), and the row says so.
//
// By default (--gpujs auto) the row is attempted only where gpu.js's GL mode is available (the
// gl package built, a display or Xvfb), so a bench elsewhere prints no error row it cannot act
// on; the JSON still records why there is no row.
import { performance } from 'node:perf_hooks';
import { createGpuJsModel } from '../backends/gpujs/execute.js';
import { ensureDisplay } from '../backends/gpujs/display.js';
import type { WeightMap } from '../backends/reference/executor.js';
import type { Graph } from '../ir/types.js';
import { UserError } from '../util/diagnostics.js';
import type { ConfigResult } from './bench.js';

/** --gpujs: 'auto' runs the row where gpu.js's GL mode is available, 'on' insists, 'off' never runs it. */
export type GpuJsChoice = 'auto' | 'on' | 'off';
export const gpujsChoices: readonly GpuJsChoice[] = ['auto', 'on', 'off'];

/** What the bench is asked for: the choice and, unless off, the fused graph built for the gpu.js target. */
export type GpuJsRowRequest = { readonly choice: 'off' } | { readonly choice: Exclude<GpuJsChoice, 'off'>; readonly graph: Graph };

/** The gpujs row, set up to be timed: kernels built, weights handed over. */
export interface GpuJsRunnable {
  readonly run: () => Promise<Float32Array>;
  readonly release: () => void;
  /** Where it runs, in words. */
  readonly device: string;
  readonly setup_ms: number;
  readonly dispatches: number;
}

/**
 * The gpujs row of --gpujs `row.choice`: ready to time, or its outcome without a timing. Where
 * GL mode is unavailable (a user error naming what is missing), auto records why (`not_run`, no
 * row) and on makes it the row's error; any other failure is an error either way.
 */
export async function gpujsRow(row: GpuJsRowRequest, weightsFor: (graph: Graph) => WeightMap, input: Float32Array): Promise<GpuJsRunnable | { readonly outcome: ConfigResult }> {
  if (row.choice === 'off') return { outcome: { not_run: '--gpujs off' } };
  const { graph } = row;
  const given = process.env.DISPLAY;
  try {
    const started = performance.now();
    const { program, model, gpu } = await createGpuJsModel(graph, weightsFor(graph), 'gpu');
    const setup_ms = performance.now() - started;
    const display = given ? `X display ${given}` : `a private Xvfb (${await ensureDisplay()}: Mesa's llvmpipe)`;
    return {
      run: async () => {
        const output = await model.run(input);
        if (!(output instanceof Float32Array)) throw new Error(`internal: the gpu.js runner of ${graph.name} gave named outputs; the bench compares one`);
        return output;
      },
      release: () => {
        model.destroy();
        void gpu.destroy();
      },
      device: `gpu.js GL mode: headless-gl (WebGL 1 over ANGLE) on ${display}`,
      setup_ms,
      dispatches: program.steps.length,
    };
  } catch (error) {
    const why = (error as Error).message;
    if (error instanceof UserError && row.choice === 'auto') return { outcome: { not_run: why } };
    return { outcome: { error: why } };
  }
}
