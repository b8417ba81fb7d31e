// Command-line parsing shared by the commands: node's parseArgs in strict mode (so unknown
// flags are errors), plus the checks that turn option strings into typed values.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { adapterChoices, type AdapterChoice } from '../backends/webgpu/device.js';
import { defaultInputSize, type InputSize } from '../dsl/elaborate.js';
import type { StorageType } from '../kernel/ir.js';
import { userError } from '../util/diagnostics.js';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  readonly values: Record<string, string | boolean | undefined>;
  readonly positionals: readonly string[];
}

export function parseCommandLine(command: string, args: readonly string[], options: OptionSpec): Parsed {
  try {
    const { values, positionals } = parseArgs({ args: [...args], options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    return { values: values as Parsed['values'], positionals };
  } catch (error) {
    const message = (error as Error).message.replace(/\. To specify a positional argument.*$/s, '');
    throw userError(`${message.replace(/^Unknown option/, 'unknown option')} (see 'convc ${command} --help')`);
  }
}

export function positiveInt(value: string | boolean | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (typeof value !== 'string' || !/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw userError(`${flag} needs a positive integer, got '${String(value)}'`);
  }
  return n;
}

export function nonNegativeInt(value: string | boolean | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw userError(`${flag} needs a non-negative integer, got '${String(value)}'`);
  }
  return Number(value);
}

/** `--size 224` or `--size 67x45` (height x width). */
export function inputSize(values: Parsed['values']): InputSize {
  const batch = positiveInt(values.batch, '--batch', defaultInputSize.batch);
  const size = values.size;
  if (size === undefined) return { ...defaultInputSize, batch };
  const match = typeof size === 'string' ? /^(\d+)(?:x(\d+))?$/.exec(size) : null;
  if (!match || Number(match[1]) < 1 || Number(match[2] ?? match[1]) < 1) {
    throw userError(`--size needs HxW or one number for a square, e.g. 224 or 67x45; got '${String(size)}'`);
  }
  return { batch, height: Number(match[1]), width: Number(match[2] ?? match[1]) };
}

export function requireOne(positionals: readonly string[], command: string, what: string): string {
  if (positionals.length === 0) throw userError(`convc ${command} needs ${what} (see 'convc ${command} --help')`);
  if (positionals.length > 1) throw userError(`convc ${command} takes one ${what}, got ${positionals.length}: ${positionals.join(' ')}`);
  return positionals[0];
}

export function stringOption(values: Parsed['values'], name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

export const modelOptions: OptionSpec = {
  model: { type: 'string' },
  passes: { type: 'string' },
  'no-fuse': { type: 'boolean' },
  'dense-mask': { type: 'boolean' },
};

export const sizeOptions: OptionSpec = {
  batch: { type: 'string' },
  size: { type: 'string' },
};

export const modelHelp = `  --model NAME        which model of the file to use (needed when it defines several)
  --no-fuse           run the unfused pipeline (one kernel per op) instead of the fused one
  --passes a,b,...    run exactly these passes, in order (see 'convc inspect --help')
  --dense-mask        models with a sparse region (FCMAE's encoder): compute every position
                      and mask afterwards, instead of the visible patches only`;

export const sizeHelp = `  --batch N           batch size (default 1)
  --size HxW          input height x width, or one number for a square (default 224)`;

/** `--adapter auto|vulkan|gl`: which of Dawn's paths a WebGPU command takes. */
export function adapterOption(values: Parsed['values']): AdapterChoice {
  const value = stringOption(values, 'adapter') ?? 'auto';
  if (!(adapterChoices as readonly string[]).includes(value)) throw userError(`--adapter needs one of ${adapterChoices.join(', ')}; got '${value}'`);
  return value as AdapterChoice;
}

export const adapterHelp = `  --adapter NAME      which WebGPU adapter: auto (a GPU's Vulkan driver, then lavapipe, then
                      OpenGL ES), vulkan, or gl (Dawn's OpenGL ES path); default auto`;

export const precisionOptions: OptionSpec = {
  precision: { type: 'string' },
};

export const precisionHelp = `  --precision P       how the GPU stores activations and weights: f32 (default) or f16 (half
                      the memory and weights.bin; arithmetic stays f32; needs shader-f16)`;

/** `--precision f32|f16`. */
export function precisionOption(values: Parsed['values']): StorageType {
  const value = stringOption(values, 'precision') ?? 'f32';
  if (value !== 'f32' && value !== 'f16') throw userError(`--precision needs f32 or f16; got '${value}'`);
  return value;
}

/** `--tuning FILE` and `--no-tuning`, for the commands that lower kernels (see src/tune/lookup.ts). */
export const tuningOptions: OptionSpec = {
  tuning: { type: 'string' },
  'no-tuning': { type: 'boolean' },
};

export const tuningHelp = `  --tuning FILE       use this tuning file ('convc tune') instead of the cached one of the adapter
  --no-tuning         use the default heuristic's schedules, no tuning file`;
