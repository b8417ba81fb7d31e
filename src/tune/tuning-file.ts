// The tuning file: which schedule won for each kernel on one adapter, with the times that made
// it win, as JSON. It lives in the project's cache (.cache/convc/tuning/<adapter>.json, or under
// $CONVC_CACHE_DIR) unless a path is given; `convc tune` writes it (atomically, merged with the
// kernels already there), and compile, run and bench read it through lookup.ts.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Schedule } from '../kernel/schedule.js';
import { writeFileAtomically } from '../util/atomic-write.js';
import { userError } from '../util/diagnostics.js';

export const tuningFormat = 'convc-tuning';
export const tuningVersion = 1;

/** One kernel's result: the schedule to use and what it was measured against. */
export interface TunedKernel {
  /** The kernel's entry point under the chosen schedule, for people reading the file. */
  readonly kernel: string;
  readonly schedule: Schedule;
  /** Median GPU ms of one dispatch under `schedule`, from the final re-timing. */
  readonly ms: number;
  /** Median GPU ms of the default heuristic's schedule, timed alongside. */
  readonly default_ms: number;
  /** Whether `schedule` is the default's (no candidate beat it by the margin). */
  readonly is_default: boolean;
  /** Candidates compiled, timed and checked; and how many of them disagreed with the reference. */
  readonly candidates: number;
  readonly rejected: number;
}

/** A whole-model comparison made after tuning, per model and input shape. */
export interface TunedModel {
  /** Median GPU ms of a forward pass (sum of its dispatches), tuned and default schedules. */
  readonly tuned_ms: number;
  readonly default_ms: number;
  readonly runs: number;
  readonly budget_s: number;
  readonly seconds: number;
  readonly date: string;
}

export interface TuningFile {
  readonly format: typeof tuningFormat;
  readonly version: typeof tuningVersion;
  /** The adapter as `AcquiredGpu.adapterInfo` describes it; a file is used only on that adapter. */
  readonly adapter: string;
  readonly kernels: Readonly<Record<string, TunedKernel>>;
  /** Keyed by "<model> <input shape>", e.g. "convnextv2-atto [1, 3, 224, 224]". */
  readonly models: Readonly<Record<string, TunedModel>>;
}

/** The adapter description as a file name: readable, and a hash so that two never collide. */
export function adapterSlug(adapter: string): string {
  const readable = adapter
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60)
    .replace(/-+$/, '');
  return `${readable}-${createHash('sha256').update(adapter).digest('hex').slice(0, 8)}`;
}

/** The nearest directory from `cwd` up holding a package.json; `cwd` itself where none does. */
export function projectRoot(cwd: string = process.cwd()): string {
  let dir = resolve(cwd);
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) return resolve(cwd);
    dir = up;
  }
}

/** Where tuning files go by default: $CONVC_CACHE_DIR/tuning, else <project root>/.cache/convc/tuning. */
export function tuningDirectory(): string {
  const cache = process.env.CONVC_CACHE_DIR;
  return join(cache !== undefined && cache !== '' ? resolve(cache) : join(projectRoot(), '.cache', 'convc'), 'tuning');
}

/** The default tuning file of an adapter. */
export function defaultTuningPath(adapter: string): string {
  return join(tuningDirectory(), `${adapterSlug(adapter)}.json`);
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Reads and checks a tuning file; a user error (naming the file) when it is unreadable, not
 * JSON, or not a tuning file of this format version. Schedules are only checked for shape
 * here: whether each is a legal schedule of its kernel is decided where it is used.
 */
export function readTuningFile(path: string): TuningFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw userError(`cannot read the tuning file '${path}': ${(error as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw userError(`the tuning file '${path}' is not JSON: ${(error as Error).message}`);
  }
  const bad = (why: string) => userError(`'${path}' is not a convc tuning file (format ${tuningFormat}, version ${tuningVersion}): ${why}`, undefined, ["make one with 'convc tune'"]);
  if (!isRecord(data) || data.format !== tuningFormat) throw bad('no "format": "convc-tuning"');
  if (data.version !== tuningVersion) throw bad(`it is version ${String(data.version)}`);
  if (typeof data.adapter !== 'string') throw bad('no "adapter"');
  if (!isRecord(data.kernels) || !isRecord(data.models)) throw bad('no "kernels" or "models"');
  for (const [key, entry] of Object.entries(data.kernels)) {
    if (!isRecord(entry) || !isRecord(entry.schedule) || typeof entry.schedule.strategy !== 'string' || typeof entry.ms !== 'number' || typeof entry.default_ms !== 'number') {
      throw bad(`kernel '${key}' has no schedule with its times`);
    }
  }
  return data as unknown as TuningFile;
}

/** An empty tuning file for `adapter`. */
export function emptyTuning(adapter: string): TuningFile {
  return { format: tuningFormat, version: tuningVersion, adapter, kernels: {}, models: {} };
}

/** Writes `tuning` to `path` whole or not at all (a temporary sibling renamed into place). */
export function writeTuningFile(path: string, tuning: TuningFile): void {
  writeFileAtomically(path, `${JSON.stringify(tuning, null, 2)}\n`, { what: 'the tuning file', createParents: true });
}
