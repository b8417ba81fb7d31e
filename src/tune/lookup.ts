// Which tuning file a command uses, and the `schedule` callback it gives lowering. run and
// bench know their adapter: they use the cached file of that adapter, if there is one. compile
// writes a portable runner and knows no adapter: it uses a tuning file only when given one with
// --tuning FILE. --tuning FILE on run or bench is used only if it was made on the same adapter
// (else it is ignored with a note); --no-tuning uses none. Every tuned schedule is checked
// before use: it must be in the kernel's schedule space and lower on the target, else that
// kernel keeps the default heuristic's schedule.
import { existsSync } from 'node:fs';
import { BindingSizeError, lowerNode, ScheduleError } from '../kernel/lower/index.js';
import { scheduleSpace, type Schedule } from '../kernel/schedule.js';
import { splitForKernels } from '../kernel/split.js';
import type { TargetDescription } from '../kernel/target.js';
import type { Graph, Node } from '../ir/types.js';
import { userError } from '../util/diagnostics.js';
import { canonicalJson, kernelKey } from './key.js';
import { defaultTuningPath, readTuningFile, type TuningFile } from './tuning-file.js';

/** What --tuning FILE and --no-tuning asked for. */
export type TuningRequest = { readonly kind: 'auto' } | { readonly kind: 'off' } | { readonly kind: 'file'; readonly path: string };

/** A tuning file chosen for a command, or none, with the reason in words. */
export interface TuningChoice {
  readonly tuning?: TuningFile;
  readonly path?: string;
  /** For --verbose: which file is used, or why none is. */
  readonly note: string;
  /** A note to print even without --verbose (a file given but ignored). */
  readonly warning?: string;
}

/**
 * Picks the tuning file for a command. `adapter` is the adapter the command runs on, or
 * undefined for compile (no device: only an explicit file is used).
 */
export function chooseTuning(request: TuningRequest, adapter: string | undefined): TuningChoice {
  if (request.kind === 'off') return { note: 'tuning: none (--no-tuning)' };
  if (request.kind === 'file') {
    const tuning = readTuningFile(request.path);
    if (adapter !== undefined && tuning.adapter !== adapter) {
      const warning = `note: ignoring the tuning file '${request.path}': it was made on another adapter (${tuning.adapter}), not this one (${adapter})`;
      return { note: 'tuning: none (the --tuning file is for another adapter)', warning };
    }
    return { tuning, path: request.path, note: `tuning: ${request.path} (--tuning; tuned on ${tuning.adapter})` };
  }
  if (adapter === undefined) {
    return { note: "tuning: none (compile writes a portable runner and uses a tuning file only with --tuning FILE)" };
  }
  const path = defaultTuningPath(adapter);
  if (!existsSync(path)) return { note: `tuning: none (no tuning file for this adapter at ${path}; 'convc tune' makes one)` };
  let tuning: TuningFile;
  try {
    tuning = readTuningFile(path);
  } catch (error) {
    const warning = `note: ignoring the cached tuning file: ${(error as Error).message}`;
    return { note: 'tuning: none (the cached tuning file is unreadable)', warning };
  }
  if (tuning.adapter !== adapter) {
    return { note: `tuning: none (${path} is for another adapter: ${tuning.adapter})`, warning: `note: ignoring the tuning file '${path}': it was made on another adapter (${tuning.adapter})` };
  }
  return { tuning, path, note: `tuning: ${path} (the cached file of this adapter)` };
}

/** The schedules of a tuning file that apply to a graph, as lowering's `schedule` callback. */
export interface TunedSchedules {
  readonly schedule: (node: Node) => Schedule | undefined;
  /** Distinct kernels of the graph with a tuned schedule in use (not where the default won). */
  readonly used: number;
  /** Kernels whose tuned schedule is not legal or does not lower here: they use the default. */
  readonly refused: number;
  /** Distinct kernels of the graph. */
  readonly kernels: number;
}

/**
 * The tuned schedules for `graphs` on `target`: each checked on every node it would compute (in
 * the schedule space, and lowering accepts it), so lowering the graph with them cannot fail
 * where the default would not. Nodes of other graphs (another batch size) get the default.
 */
export function tunedSchedules(tuning: TuningFile, graphs: readonly Graph[], target: TargetDescription): TunedSchedules {
  const chosen = new Map<string, Schedule>();
  const refused = new Set<string>();
  const keys = new Set<string>();
  for (const split of graphs.map(splitForKernels)) {
    for (const node of split.nodes) {
      const key = kernelKey(node);
      keys.add(key);
      const entry = tuning.kernels[key];
      // Where the default won, the default stays whatever it is now: a heuristic improved
      // since tuning is not pinned to the old one's schedule.
      if (!entry || entry.is_default || refused.has(key)) continue;
      const wanted = canonicalJson(entry.schedule);
      const legal = scheduleSpace(node, target).find((s) => canonicalJson(s) === wanted);
      try {
        if (!legal) throw new ScheduleError('not in the schedule space');
        lowerNode(split, node, target, legal);
        chosen.set(key, legal);
      } catch (error) {
        if (!(error instanceof ScheduleError) && !(error instanceof BindingSizeError)) throw error;
        refused.add(key);
        chosen.delete(key);
      }
    }
  }
  return { schedule: (node) => (chosen.size === 0 ? undefined : chosen.get(kernelKey(node))), used: chosen.size, refused: refused.size, kernels: keys.size };
}

/** Parses --tuning FILE and --no-tuning. */
export function tuningRequest(values: Readonly<Record<string, string | boolean | undefined>>): TuningRequest {
  const file = values.tuning;
  if (values['no-tuning'] === true) {
    if (file !== undefined) throw userError('--tuning FILE and --no-tuning contradict each other; give one of them');
    return { kind: 'off' };
  }
  return typeof file === 'string' ? { kind: 'file', path: file } : { kind: 'auto' };
}

/** Where the tuning a command uses is decided, and what it prints. */
export interface TuningContext {
  /** The adapter the command runs on; undefined for compile (no device). */
  readonly adapter: string | undefined;
  /** The graphs the command lowers (bench: fused and unfused). */
  readonly graphs: readonly Graph[];
  /** The target they are lowered for. */
  readonly target: TargetDescription;
  /** How buffers are stored; the tuner measures f32 kernels, so f16 runs use the defaults. */
  readonly precision?: string;
  /** Where lines go (stderr): a note on the choice with --verbose, a warning always. */
  readonly say: (line: string) => void;
}

/**
 * The one call compile, run and bench make: the `schedule` callback for lowering from the
 * tuning file the command line and the adapter choose (undefined: the default heuristic
 * everywhere). Prints which file was used, or none and why, when --verbose is set.
 */
export function scheduleForCommand(values: Readonly<Record<string, string | boolean | undefined>>, context: TuningContext): ((node: Node) => Schedule | undefined) | undefined {
  const request = tuningRequest(values);
  const verbose = values.verbose === true;
  if (context.precision !== undefined && context.precision !== 'f32' && request.kind !== 'off') {
    if (verbose) context.say(`tuning: none (tuning files hold f32 kernels; --precision ${context.precision} uses the default schedules)`);
    return undefined;
  }
  const choice = chooseTuning(request, context.adapter);
  if (choice.warning) context.say(choice.warning);
  if (!choice.tuning) {
    if (verbose) context.say(choice.note);
    return undefined;
  }
  const tuned = tunedSchedules(choice.tuning, context.graphs, context.target);
  const refused = tuned.refused > 0 ? `, ${tuned.refused} no longer fit and use the default` : '';
  if (verbose) context.say(`${choice.note}: ${tuned.used} of ${tuned.kernels} kernels of ${context.graphs[0]?.name ?? 'the model'} tuned${refused}`);
  return tuned.schedule;
}
