// --weights FILE / --random-weights [--seed N], shared by run and compile.
import { readFileSync } from 'node:fs';
import type { WeightMap } from '../backends/reference/executor.js';
import { readSafetensors } from '../io/safetensors.js';
import type { Graph } from '../ir/types.js';
import { userError } from '../util/diagnostics.js';
import { bindWeights } from '../weights/bind.js';
import { randomWeights } from '../weights/random.js';
import type { OptionSpec, Parsed } from './options.js';

export const weightOptions: OptionSpec = {
  weights: { type: 'string' },
  'random-weights': { type: 'boolean' },
  seed: { type: 'string' },
};

export const weightHelp = `  --weights FILE      safetensors weights (F32, F16 or BF16), with the official checkpoint
                      names (stages.0.0.dwconv.weight, ...) or timm's names
  --random-weights    use seeded random weights instead
  --seed N            seed for --random-weights (default 0)`;

export function readBytes(path: string, what: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw userError(`cannot read ${what} '${path}': ${code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
  }
}

/** The weights the options ask for, or undefined when neither option is given. */
export function loadWeights(graph: Graph, values: Parsed['values'], seed: number): WeightMap | undefined {
  const path = typeof values.weights === 'string' ? values.weights : undefined;
  if (path !== undefined && values['random-weights'] === true) throw userError('give either --weights FILE or --random-weights, not both');
  if (path !== undefined) return bindWeights(graph, readSafetensors(readBytes(path, 'weights'), path), path);
  if (values['random-weights'] === true) return randomWeights(graph, seed);
  return undefined;
}
