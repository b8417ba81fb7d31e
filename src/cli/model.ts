// From a .cnx path and options to a verified, optimised graph: the common start of commands.
import type { TargetDescription } from '../kernel/target.js';
import { elaborate, selectModel, type InputSize } from '../dsl/elaborate.js';
import { loadProgram, type Program } from '../dsl/load.js';
import type { Graph } from '../ir/types.js';
import { defaultPipeline, denseMasked, passRegistry, pipelines, runPipeline, type PassTrace } from '../passes/manager.js';
import { userError } from '../util/diagnostics.js';
import { defaultPassContext } from '../passes/context.js';

export interface LoadedModel {
  readonly program: Program;
  readonly graph: Graph;
}

/**
 * The pipeline that --passes or --no-fuse ask for, the fused one by default; --dense-mask
 * leaves sparse regions dense (computed everywhere, then masked).
 */
export function parsePassList(list: string | undefined, noFuse = false, denseMask = false): readonly string[] {
  if (list !== undefined && noFuse) throw userError('--passes and --no-fuse both choose the pipeline; give one of them');
  if (list !== undefined && denseMask) throw userError("--passes chooses the passes itself; leave out 'compact-sparse-regions' instead of giving --dense-mask");
  const dense = (names: readonly string[]) => (denseMask ? denseMasked(names) : names);
  if (noFuse) return dense(pipelines.unfused);
  if (list === undefined) return dense(defaultPipeline);
  const names = list.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const name of names) {
    if (!passRegistry.has(name)) throw userError(`unknown pass '${name}'; passes: ${[...passRegistry.keys()].join(', ')}`);
  }
  return names;
}

// Notes already printed: commands may load the same file more than once (at several sizes).
const notesShown = new Set<string>();

function noteOnce(line: string): void {
  if (notesShown.has(line)) return;
  notesShown.add(line);
  process.stderr.write(`${line}\n`);
}

export function loadModel(
  file: string,
  options: {
    readonly model?: string;
    readonly size: InputSize;
    readonly passes?: readonly string[];
    /** Where a note goes (a zoo name taken for a missing file); stderr, once a line, by default. */
    readonly note?: (line: string) => void;
    /** The device the passes fuse for (its limits and cost model); WebGPU's defaults by default. */
    readonly target?: TargetDescription;
    /** Visible patches of the masks the model will run with (PassContext.visiblePatches). */
    readonly visiblePatches?: number;
  },
  trace?: (t: PassTrace) => void,
): LoadedModel {
  const program = loadProgram(file, undefined, { note: options.note ?? noteOnce });
  const name = selectModel(program, options.model, file);
  const context = { target: options.target ?? defaultPassContext.target, ...(options.visiblePatches !== undefined ? { visiblePatches: options.visiblePatches } : {}) };
  const graph = runPipeline(elaborate(program, name, options.size), options.passes ?? defaultPipeline, { trace, context });
  return { program, graph };
}

/** The pipeline the parsed options choose. */
export function chosenPasses(values: Readonly<Record<string, string | boolean | undefined>>): readonly string[] {
  return parsePassList(typeof values.passes === 'string' ? values.passes : undefined, values['no-fuse'] === true, values['dense-mask'] === true);
}
