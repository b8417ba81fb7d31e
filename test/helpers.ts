// Shared test helpers: loading zoo models and golden cases.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { elaborate, selectModel, type InputSize } from '../src/dsl/elaborate.js';
import { loadProgram } from '../src/dsl/load.js';
import { readNpy } from '../src/io/npy.js';
import { readSafetensors } from '../src/io/safetensors.js';
import type { Graph, HostTensor } from '../src/ir/types.js';
import { pipelines, runPipeline } from '../src/passes/manager.js';
import type { CliIo } from '../src/cli/io.js';
export { scaledDifference } from '../src/util/scaled-difference.js';

export const repoPath = (relative: string): string => fileURLToPath(new URL(`../${relative}`, import.meta.url));

export function zooGraph(variant: string, size?: InputSize, passes: readonly string[] = pipelines.unfused): Graph {
  const file = repoPath(`models/${variant}.cnx`);
  const program = loadProgram(file);
  return runPipeline(elaborate(program, selectModel(program, undefined, file), size), passes);
}

export interface GoldenCase {
  readonly name: string;
  readonly kind: 'op' | 'model';
  readonly input_shape: readonly number[];
  readonly output_shape: readonly number[];
}

export const goldenDir = repoPath('test/fixtures/golden');
export const goldenCases: readonly GoldenCase[] = JSON.parse(readFileSync(`${goldenDir}/manifest.json`, 'utf8')).cases;

export function goldenFiles(name: string): { input: HostTensor; output: HostTensor; weights: Map<string, HostTensor>; paths: Record<'input' | 'output' | 'weights', string> } {
  const paths = { input: `${goldenDir}/${name}/input.npy`, output: `${goldenDir}/${name}/output.npy`, weights: `${goldenDir}/${name}/weights.safetensors` };
  return {
    input: readNpy(readFileSync(paths.input), paths.input),
    output: readNpy(readFileSync(paths.output), paths.output),
    weights: readSafetensors(readFileSync(paths.weights), paths.weights),
    paths,
  };
}

export function goldenGraph(name: string, input: HostTensor, passes: readonly string[] = pipelines.unfused): Graph {
  const program = loadProgram(`${goldenDir}/cases.cnx`);
  return runPipeline(elaborate(program, name, { batch: input.shape[0], height: input.shape[2], width: input.shape[3] }), passes);
}

/**
 * Largest |a - b| / (atol + rtol * |b|). Below 1 means every element is within tolerance.
 */
export function toleranceRatio(actual: Float32Array, expected: Float32Array, atol: number, rtol: number): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const ratio = Math.abs(actual[i] - expected[i]) / (atol + rtol * Math.abs(expected[i]));
    if (!(ratio <= worst)) worst = Number.isNaN(ratio) ? Infinity : ratio;
  }
  return worst;
}

export function captureIo(): CliIo & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
    out: () => out,
    err: () => err,
  };
}
