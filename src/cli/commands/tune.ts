// convc tune: searches the schedule space of each distinct kernel of a model on the adapter
// (src/tune/search.ts) and writes the winners to the adapter's tuning file, which compile (with
// --tuning FILE), run and bench then use (src/tune/lookup.ts).
import { existsSync } from 'node:fs';
import { acquireGpu } from '../../backends/webgpu/device.js';
import { formatShape } from '../../ir/types.js';
import { targetOfDevice } from '../../kernel/target.js';
import { tunedSchedules } from '../../tune/lookup.js';
import { maxCandidates, maxGemmOutputsPerThread, workgroupThreads } from '../../tune/space.js';
import { minimumGain, tuneKernels, type TuneHooks } from '../../tune/search.js';
import { defaultTuningPath, emptyTuning, readTuningFile, tuningDirectory, writeTuningFile, type TunedKernel, type TuningFile } from '../../tune/tuning-file.js';
import { timeWholeModel } from '../../tune/whole-model.js';
import { userError } from '../../util/diagnostics.js';
import { checkOutputFile } from '../../util/output-path.js';
import { randomInput, randomWeights } from '../../weights/random.js';
import type { CliIo } from '../io.js';
import { chosenPasses, loadModel } from '../model.js';
import { singleInputOutput } from '../../ir/graph-io.js';
import { adapterHelp, adapterOption, inputSize, modelHelp, modelOptions, nonNegativeInt, parseCommandLine, positiveInt, requireOne, sizeHelp, sizeOptions, stringOption } from '../options.js';

/** The search's budget unless --budget says otherwise: V2-atto at 224 then tunes in about 2 minutes on lavapipe. */
export const defaultBudgetSeconds = 75;

export const tuneHelp = `convc tune <file.cnx> [options]

Searches the schedules of each distinct kernel of the model on a WebGPU adapter and writes the
fastest to a tuning file that convc run and bench then use on that adapter (and compile with
--tuning FILE). Nodes with the same op, attributes, fused steps and shapes share a kernel and
are tuned once. Each candidate runs alone on the node's real inputs (one reference-executor
pass at the tuning size, random weights) and is timed on the GPU by timestamp queries; its
output must agree with the reference executor's (within 2e-5 of the output's scale) before it
may win, and one that disagrees, or that lowering or the device refuses, is never cached.
A candidate wins only if its median beats the default heuristic's, timed alongside it, by 5%
or the default's own spread, whichever is larger; otherwise the default is recorded.

The search is pruned: staged GEMM tiles with more than ${maxGemmOutputsPerThread.staged} outputs per thread (unstaged: ${maxGemmOutputsPerThread.unstaged};
they take minutes to compile on lavapipe) and workgroups outside ${workgroupThreads.min}-${workgroupThreads.max} threads are not tried; of the rest, each kernel
tries at most ${maxCandidates} in an order fixed by a seed, the kernels taking most of the model's time first
and longest (the budget is shared in proportion to each kernel's time). Every candidate is
timed twice; the best three that look faster than the default are re-timed with it,
interleaved, and checked again. Then the whole model is timed with the tuned and the default
schedules (medians of --runs passes) and both are printed and recorded.

The tuning file (JSON, format version 1) holds the adapter's description and, per kernel, the
chosen schedule with its time and the default's; it is written whole (atomically) and merged
with the kernels already in it. By default it is
  <project root>/.cache/convc/tuning/<adapter>.json
where the project root is the nearest directory up from the current one with a package.json,
or $CONVC_CACHE_DIR/tuning/<adapter>.json when CONVC_CACHE_DIR is set (now: ${tuningDirectory()}).

Options:
${modelHelp}
${sizeHelp}
${adapterHelp}
  --budget TIME       wall-clock time for the search, e.g. 60s, 2m or 90 (seconds); the
                      final whole-model timing comes after it (default ${defaultBudgetSeconds}s)
  --runs N            whole-model passes timed per configuration at the end (default 6)
  --seed N            seed for the random weights and input (default 0)
  -o, --out FILE      write the tuning file here instead of the adapter's default location
  --verbose           say which adapter and driver are used
  -h, --help          show this help`;

/** `--budget 60s`, `2m`, `500ms` or a bare number of seconds, as milliseconds. */
export function parseBudget(value: string | boolean | undefined): number {
  if (value === undefined) return defaultBudgetSeconds * 1000;
  const match = typeof value === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value.trim()) : null;
  const ms = match ? Number(match[1]) * (match[2] === 'ms' ? 1 : match[2] === 'm' ? 60_000 : 1000) : NaN;
  if (!(ms > 0)) throw userError(`--budget needs a time such as 60s, 2m or 90 (seconds); got '${String(value)}'`);
  return ms;
}

export async function tuneCommand(args: readonly string[], io: CliIo, hooks: TuneHooks = {}): Promise<number> {
  const { values, positionals } = parseCommandLine('tune', args, {
    ...modelOptions,
    ...sizeOptions,
    adapter: { type: 'string' },
    budget: { type: 'string' },
    runs: { type: 'string' },
    seed: { type: 'string' },
    out: { type: 'string', short: 'o' },
    verbose: { type: 'boolean' },
  });
  if (values.help) {
    io.stdout.write(`${tuneHelp}\n`);
    return 0;
  }
  const file = requireOne(positionals, 'tune', 'a .cnx file');
  const adapter = adapterOption(values);
  const budgetMs = parseBudget(values.budget);
  const runs = positiveInt(values.runs, '--runs', 6);
  const seed = nonNegativeInt(values.seed, '--seed', 0);
  const explicitOut = stringOption(values, 'out');
  if (explicitOut !== undefined) checkOutputFile(explicitOut, 'the tuning file', { createParents: true });
  const { graph } = loadModel(file, { model: stringOption(values, 'model'), size: inputSize(values), passes: chosenPasses(values) });
  // The tuner measures kernels on one image input (FCMAE's patch mask is not fed to them yet).
  singleInputOutput(graph, 'convc tune');
  const weights = randomWeights(graph, seed);
  const input = randomInput(graph.nodes[0].type.shape, seed + 1);

  const gpu = await acquireGpu({ adapter, verbose: values.verbose ? (line) => io.stderr.write(`${line}\n`) : undefined });
  try {
    if (!gpu.features.has('timestamp-query')) {
      throw userError(`convc tune times kernels with timestamp queries, which this adapter does not offer ('timestamp-query'): ${gpu.adapterInfo}`, undefined, ['try another --adapter']);
    }
    const started = performance.now();
    const out = explicitOut ?? defaultTuningPath(gpu.adapterInfo);
    const target = targetOfDevice(gpu.device, 'this device');
    const inputShape = formatShape(graph.nodes[0].type.shape);
    // A line per kernel as it is tuned, on a terminal only: in a log the summary below says it all.
    const say = io.stderr.isTTY === true ? (line: string) => io.stderr.write(`${line}\n`) : () => {};
    say(`tuning ${graph.name} at ${inputShape} on ${gpu.adapterInfo}, budget ${(budgetMs / 1000).toFixed(0)} s`);
    const outcomes = await tuneKernels({ device: gpu.device, graph, target, weights, input, budgetMs, hooks, log: (line) => say(`  ${line}`) });

    // Merged with what the file already holds for this adapter; a file of another adapter is replaced.
    let previous: TuningFile = emptyTuning(gpu.adapterInfo);
    if (existsSync(out)) {
      try {
        const read = readTuningFile(out);
        if (read.adapter === gpu.adapterInfo) previous = read;
        else io.stderr.write(`note: ${out} was made on another adapter (${read.adapter}); it is replaced\n`);
      } catch (error) {
        io.stderr.write(`note: ${out} is replaced: ${(error as Error).message}\n`);
      }
    }
    const found: Record<string, TunedKernel> = {};
    for (const o of outcomes) if (o.tuned) found[o.key] = o.tuned;
    const kernels = { ...previous.kernels, ...found };
    const schedules = tunedSchedules({ ...previous, kernels }, [graph], target);
    say(`  timing the whole model, tuned and default (${runs} passes each)`);
    const whole = await timeWholeModel(gpu.device, graph, target, weights, input, schedules.schedule, runs);
    const seconds = (performance.now() - started) / 1000;
    const tuning: TuningFile = {
      ...previous,
      kernels,
      models: { ...previous.models, [`${graph.name} ${inputShape}`]: { ...whole, runs, budget_s: budgetMs / 1000, seconds, date: new Date().toISOString() } },
    };
    writeTuningFile(out, tuning);

    const tunedCount = outcomes.filter((o) => o.tuned && !o.tuned.is_default).length;
    const lines = [`tuned ${graph.name} at ${inputShape} in ${seconds.toFixed(0)} s: ${outcomes.length} distinct kernels, ${tunedCount} faster than the default by over ${(100 * minimumGain).toFixed(0)}%`];
    const wrong = outcomes.reduce((sum, o) => sum + (o.tuned?.rejected ?? 0), 0);
    if (wrong > 0) lines.push(`  ${wrong} candidate schedule${wrong === 1 ? '' : 's'} computed a wrong result and ${wrong === 1 ? 'was' : 'were'} rejected`);
    const unsearched = outcomes.filter((o) => !o.tuned && o.skipped?.startsWith('not searched')).length;
    if (unsearched > 0) lines.push(`  ${unsearched} kernels not searched: the budget was spent on those taking more of the model's time (a larger --budget reaches them)`);
    for (const o of outcomes) {
      if (!o.tuned && !o.skipped?.startsWith('not searched')) lines.push(`  ${o.key}: ${o.skipped}`);
      else if (o.tuned && !o.tuned.is_default) lines.push(`  ${o.tuned.kernel} ${o.key.replace(/ #.*/, '')} x${o.nodes}: ${o.tuned.default_ms.toFixed(2)} -> ${o.tuned.ms.toFixed(2)} ms`);
    }
    lines.push(
      `whole model, GPU ms per forward pass (median of ${runs}): tuned ${whole.tuned_ms.toFixed(1)}, default ${whole.default_ms.toFixed(1)} (${(whole.default_ms / whole.tuned_ms).toFixed(2)}x)`,
      `wrote ${out}`,
    );
    io.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } finally {
    gpu.destroy();
  }
}
