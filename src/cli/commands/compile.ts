// convc compile: checks a model and writes the compiled artifact: the verified IR, the kernels
// (WGSL for WebGPU, or CUDA C and its fat binary for CUDA) and a TypeScript runner (plus its
// JavaScript), and with weights, weights.bin.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspectReport } from './inspect.js';
import { chosenPasses, loadModel } from '../model.js';
import { inputSize, modelHelp, modelOptions, nonNegativeInt, parseCommandLine, precisionHelp, precisionOption, precisionOptions, requireOne, sizeHelp, sizeOptions, stringOption, tuningHelp, tuningOptions } from '../options.js';
import { scheduleForCommand } from '../../tune/lookup.js';
import { webgpuDefaultTarget } from '../../kernel/target.js';
import { commentSafe } from '../../kernel/comment-safe.js';
import { progress, type CliIo } from '../io.js';
import { loadWeights, unusedSeedNote, weightHelp, weightOptions } from '../weights.js';
import { lowerToWgsl, packWeights } from '../../backends/wgsl/lower.js';
import { generateRunnerFiles } from '../../backends/wgsl/runner.js';
import { lowerToCuda, type CudaProgram } from '../../backends/cuda/lower.js';
import { compileCuda, findNvcc, nvccCommand, resourceViolations } from '../../backends/cuda/nvcc.js';
import { cudaTarget } from '../../backends/cuda/target.js';
import { generateCudaRunnerFiles } from '../../backends/cuda/runner.js';
import { lowerToGpuJs, type GpuJsProgram } from '../../backends/gpujs/lower.js';
import { generateGpuJsRunnerFiles } from '../../backends/gpujs/runner.js';
import { gpujsTarget } from '../../backends/gpujs/target.js';
import type { ModelProgram } from '../../kernel/model-program.js';
import { runFailure, userError } from '../../util/diagnostics.js';
import { humanCount } from '../../ir/cost.js';
import { graphToJson, printGraph } from '../../ir/print.js';
import { formatShape } from '../../ir/types.js';
import { writeDirectoryAtomically, writeLargeFile } from '../../util/atomic-write.js';
import { checkRegularFile } from '../../util/input-file.js';
import { yieldToSignals } from '../../util/interrupt-cleanup.js';
import { outputMarkerName, planOutputDirectory } from '../../util/output-directory.js';

export const compileHelp = `convc compile <file.cnx> [options]

Parses and checks the model, builds its IR for one input size, runs the pass pipeline
(verifying the graph after every pass) and writes a self-contained package. For WebGPU
(--target webgpu, the default):
  DIR/model.ts        the runner: createModel(device, weights) -> { run(input), destroy() };
                      it imports nothing but the WebGPU API (types: @webgpu/types)
  DIR/model.js        the same runner as JavaScript
  DIR/kernels/*.wgsl  the WGSL kernels the runner embeds, one file per kernel
For CUDA (--target cuda):
  DIR/model.ts        the runner: createModel(weights) -> { run(input), destroy() }, calling
                      the CUDA driver (libcuda.so.1) through koffi; Node only
  DIR/model.js        the same runner as JavaScript
  DIR/kernels.cu      the CUDA C kernels, one extern "C" __global__ function per kernel
  DIR/kernels.fatbin  where nvcc is installed: the kernels for sm_80 and sm_90, and PTX for
                      newer GPUs; without nvcc, a note says how to build it
For gpu.js (--target gpujs; WebGL in browsers without WebGPU, headless-gl or the CPU in Node):
  DIR/model.ts        the runner: createModel(gpu, weights) -> { run(input), destroy() } on a
                      GPU from gpu.js, with the kernel functions it builds; gpu.js's GL mode
                      by default, { mode: 'cpu' } for its CPU mode
  DIR/model.js        the same runner as JavaScript
  DIR/kernels.js      the kernel functions alone, for reading (the runner holds its own copy)
All:
  DIR/weights.bin     with --weights or --random-weights: the weights packed for the runner
  DIR/graph.json      the verified IR graph
  DIR/summary.txt     shapes, parameter count, MACs and the graph in text form
  DIR/${outputMarkerName}   marks DIR as convc's output and lists the files above
The directory is written whole or not at all: in a staging directory beside DIR, removed on
an error or Ctrl-C, then renamed into place. DIR may be new, empty, or a previous convc output
holding only the files it wrote, which is replaced; anything else is refused (a file always).

Options:
  -o, --out-dir DIR   where to write (default: build/<model name>)
  --target NAME       webgpu | cuda | gpujs (default webgpu)
  --force             replace DIR even if it holds files convc did not write; never a file,
                      /, a home directory, the current directory or one holding it, or one
                      holding the model or weights being compiled
${weightHelp}
${modelHelp}
${sizeHelp}
${precisionHelp}
${tuningHelp}
                      (compile uses a tuning file only when given one: its runner is portable;
                      tuning files are for WebGPU adapters, not for --target cuda or gpujs)
  --verbose           say which tuning file is used
  -h, --help          show this help`;

export const compileTargets = ['webgpu', 'cuda', 'gpujs'] as const;

export async function compileCommand(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandLine('compile', args, {
    ...modelOptions,
    ...sizeOptions,
    ...weightOptions,
    ...precisionOptions,
    ...tuningOptions,
    verbose: { type: 'boolean' },
    'out-dir': { type: 'string', short: 'o' },
    target: { type: 'string' },
    force: { type: 'boolean' },
  });
  if (values.help) {
    io.stdout.write(`${compileHelp}\n`);
    return 0;
  }
  const file = requireOne(positionals, 'compile', 'a .cnx file');
  const precision = precisionOption(values);
  const targetName = stringOption(values, 'target') ?? 'webgpu';
  if (!(compileTargets as readonly string[]).includes(targetName)) throw userError(`unknown target '${targetName}'; targets: ${compileTargets.join(', ')}`);
  const cuda = targetName === 'cuda';
  const gpujs = targetName === 'gpujs';
  if ((cuda || gpujs) && (values.tuning !== undefined || values['no-tuning'] === true)) throw userError(`--tuning and --no-tuning choose WebGPU tuning files; --target ${targetName} uses its default schedules`);
  if (gpujs && precision !== 'f32') throw userError(`--precision ${precision}: gpu.js stores f32 only (its precision 'single')`);
  checkRegularFile(file, 'model file', { ignoreMissing: true });
  // The passes fuse for the target the kernels are for: its limits and cost model decide.
  const { graph } = loadModel(file, { model: stringOption(values, 'model'), size: inputSize(values), passes: chosenPasses(values), ...(cuda ? { target: cudaTarget() } : gpujs ? { target: gpujsTarget } : {}) });
  // Where the output goes is settled before the weights are read or drawn and the model lowered.
  const explicitOut = stringOption(values, 'out-dir');
  const outDir = explicitOut ?? join('build', graph.name);
  const weightsPath = stringOption(values, 'weights');
  const plan = planOutputDirectory(outDir, {
    force: values.force === true,
    createParents: explicitOut === undefined,
    inputs: [{ path: file, what: 'model file' }, ...(weightsPath === undefined ? [] : [{ path: weightsPath, what: 'weights file' }])],
  });
  // The large variants take seconds to tens of seconds (their weights above all): a bar on a
  // terminal over the steps, then over the weights file's bytes.
  const bar = progress(io, `compiling ${graph.name}`);
  const steps = 4;
  const weights = loadWeights(graph, values, nonNegativeInt(values.seed, '--seed', 0));
  bar.update(1, steps);
  const seedNote = unusedSeedNote(values, false);
  if (seedNote) io.stderr.write(seedNote);
  let program: ModelProgram;
  let files: (dir: string) => string[];
  if (cuda) {
    const compiled = compileCudaPackage(lowerToCuda(graph, { precision }), outDir, io);
    program = compiled.program;
    files = compiled.write;
  } else if (gpujs) {
    const lowered = lowerToGpuJs(graph);
    program = lowered;
    files = (dir) => {
      writeFileSync(join(dir, 'kernels.js'), gpuJsKernelsFile(lowered));
      return [`kernels.js (${lowered.shaders.length} kernels)`];
    };
  } else {
    const schedule = scheduleForCommand(values, { adapter: undefined, graphs: [graph], target: webgpuDefaultTarget, precision, say: (line) => io.stderr.write(`${line}\n`) });
    const wgsl = lowerToWgsl(graph, { precision, ...(schedule ? { schedule } : {}) });
    program = wgsl;
    files = (dir) => {
      mkdirSync(join(dir, 'kernels'));
      wgsl.shaders.forEach((shader, index) => {
        writeFileSync(join(dir, 'kernels', `${String(index).padStart(3, '0')}-${shader.name}.wgsl`), shader.code);
      });
      return [`${wgsl.shaders.length} kernels`];
    };
  }
  bar.update(2, steps);
  const report = inspectReport(graph, file, chosenPasses(values), program);
  const runner = cuda ? generateCudaRunnerFiles(program as CudaProgram) : gpujs ? generateGpuJsRunnerFiles(program as GpuJsProgram) : generateRunnerFiles(program);
  bar.update(3, steps);
  const packed = weights ? packWeights(graph, program, weights) : undefined;
  bar.update(4, steps);
  bar.finish();
  const language = cuda ? 'CUDA' : gpujs ? 'gpu.js' : 'WGSL';
  let written: string[] = [];
  // Only writing happens while the staging directory exists; each step lets a Ctrl-C through.
  await writeDirectoryAtomically(plan, async (dir) => {
    writeFileSync(join(dir, 'model.ts'), runner.ts);
    writeFileSync(join(dir, 'model.js'), runner.js);
    written = files(dir);
    await yieldToSignals();
    if (packed) {
      const writing = progress(io, 'writing weights.bin (MiB)');
      const mib = (bytes: number) => Math.ceil(bytes / 2 ** 20);
      await writeLargeFile(join(dir, 'weights.bin'), new Uint8Array(packed.buffer, packed.byteOffset, packed.byteLength), undefined, (done, total) => writing.update(mib(done), mib(total)));
      writing.finish();
    }
    writeFileSync(join(dir, 'graph.json'), `${JSON.stringify(graphToJson(graph), null, 1)}\n`);
    const summary = [
      `model       ${report.model}  (${file})`,
      ...namedLines('input', report.inputs),
      ...namedLines('output', report.outputs),
      `params      ${report.params} (${humanCount(report.params)})`,
      `MACs        ${report.macs} (${humanCount(report.macs)})`,
      `dispatches  ${program.dispatches.length} (${language}, ${program.shaders.length} distinct kernels)`,
      `storage     ${precision} activations and weights${precision === 'f16' ? `${cuda ? '' : ' (the device needs shader-f16)'}, f32 arithmetic` : ''}`,
      '',
      printGraph(graph),
      '',
    ].join('\n');
    writeFileSync(join(dir, 'summary.txt'), summary);
  });
  io.stdout.write(
    `compiled ${graph.name}: ${signature(report.inputs)} -> ${signature(report.outputs)}, ` +
      `${humanCount(report.params)} params, ${humanCount(report.macs)} MACs, ${program.dispatches.length} ${language} ${cuda ? 'launches' : gpujs ? 'kernel runs' : 'dispatches'}\n` +
      `wrote ${outDir.replace(/[\\/]+$/, '')}/ (model.ts, model.js, ${[...written, ...(weights ? ['weights.bin'] : [])].join(', ')}, graph.json, summary.txt)\n`,
  );
  return 0;
}

/** `input       [1, 3, 224, 224] f32`, or a line per name where a model has several. */
function namedLines(what: string, tensors: readonly { readonly name: string; readonly shape: readonly number[] }[]): string[] {
  return tensors.map((t) => `${(tensors.length === 1 ? what : `${what} ${t.name}`).padEnd(11)} ${formatShape(t.shape)} f32`);
}

/** `[1, 3, 224, 224]`, or `input [..], mask [..]` where a model has several. */
function signature(tensors: readonly { readonly name: string; readonly shape: readonly number[] }[]): string {
  return tensors.length === 1 ? formatShape(tensors[0].shape) : tensors.map((t) => `${t.name} ${formatShape(t.shape)}`).join(', ');
}

/** kernels.js: a gpu.js package's kernel functions and the helpers they call, as the runner holds them. */
function gpuJsKernelsFile(program: GpuJsProgram): string {
  const header = [
    `// gpu.js kernel functions of model '${commentSafe(program.model)}', generated by convc: the ones model.js runs, for reading.`,
    `// ${program.shaders.length} kernels for ${program.steps.length} kernel runs a forward pass; each one's header names the IR nodes it covers.`,
    '',
  ];
  return [...header, ...program.shaders.map((s) => s.code), ...program.helpers.map((h) => h.source)].join('\n');
}

/**
 * A CUDA package's kernels: kernels.cu, and where nvcc is installed the fat binary the runner
 * loads, compiled (and checked against the target by ptxas's report) before anything is written.
 */
function compileCudaPackage(program: CudaProgram, outDir: string, io: CliIo): { program: CudaProgram; write: (dir: string) => string[] } {
  const nvcc = findNvcc();
  let fatbin: Uint8Array | undefined;
  if (nvcc !== undefined) {
    const compiled = compileCuda(program.module, undefined, nvcc);
    const blocks = new Map(program.shaders.map((s) => [s.name, s.needs.workgroupSize]));
    const over = resourceViolations(compiled.resources, program.target, blocks);
    if (over.length > 0) throw runFailure(`the CUDA kernels of ${program.model} exceed ${program.target.name}'s limits (a convc bug; please report it)`, over);
    fatbin = compiled.image;
  } else {
    const dir = outDir.replace(/[\\/]+$/, '');
    io.stderr.write(`note: nvcc not found (PATH, $NVCC, /usr/local/cuda/bin): wrote kernels.cu without kernels.fatbin, which the runner loads; build it with\n  ${nvccCommand(`${dir}/kernels.cu`, `${dir}/kernels.fatbin`)}\n`);
  }
  return {
    program,
    write: (dir) => {
      writeFileSync(join(dir, 'kernels.cu'), program.module);
      if (fatbin) writeFileSync(join(dir, 'kernels.fatbin'), fatbin);
      return [`kernels.cu (${program.shaders.length} kernels)`, ...(fatbin ? ['kernels.fatbin'] : [])];
    },
  };
}
