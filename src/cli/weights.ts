// --weights FILE / --random-weights [--seed N], shared by run and compile.
import type { WeightMap } from '../backends/reference/executor.js';
import { readSafetensors } from '../io/safetensors.js';
import type { Graph } from '../ir/types.js';
import { userError } from '../util/diagnostics.js';
import { readRegularFile } from '../util/input-file.js';
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

/**
 * The bytes of a file the user named (`what`: "weights", "input"). Regular files only, read for
 * the size they have: a device, FIFO or directory is a clear error, never a hang.
 */
export function readBytes(path: string, what: string): Uint8Array {
  return readRegularFile(path, what);
}

/** The weights the options ask for, or undefined when neither option is given. */
export function loadWeights(graph: Graph, values: Parsed['values'], seed: number): WeightMap | undefined {
  const path = typeof values.weights === 'string' ? values.weights : undefined;
  if (path !== undefined && values['random-weights'] === true) throw userError('give either --weights FILE or --random-weights, not both');
  if (path !== undefined) return bindWeights(graph, readSafetensors(readBytes(path, 'weights'), path), path);
  if (values['random-weights'] === true) return randomWeights(graph, seed);
  return undefined;
}

/**
 * A note for a --seed that changes nothing: weights come from a file and, where the command
 * would draw a random input with it, so does the input. Undefined when the seed is used.
 */
export function unusedSeedNote(values: Parsed['values'], seedsInput: boolean): string | undefined {
  if (values.seed === undefined || values.weights === undefined || seedsInput) return undefined;
  return 'note: --seed is ignored: it seeds random weights (and a random input), and here they come from files\n';
}
