// convc inspect: what a model is made of, what it costs, and what fusion did to it.
import { chosenPasses, loadModel } from '../model.js';
import { inputSize, modelHelp, modelOptions, parseCommandLine, requireOne, sizeHelp, sizeOptions, stringOption } from '../options.js';
import type { CliIo } from '../io.js';
import { lowerToWgsl } from '../../backends/wgsl/lower.js';
import type { WgslProgram } from '../../backends/wgsl/program.js';
import { renderWgsl } from '../../backends/wgsl/render.js';
import { graphCost, humanCount } from '../../ir/cost.js';
import { printGraph } from '../../ir/print.js';
import { formatShape, type Graph } from '../../ir/types.js';
import type { KernelProgram, ScheduleValue } from '../../kernel/ir.js';
import { printKernel } from '../../kernel/print.js';
import { passRegistry, pipelines } from '../../passes/manager.js';
import { runFailure, userError } from '../../util/diagnostics.js';
import { spawnSync } from 'node:child_process';
import { graphToDot } from '../../kernel/dot.js';
import { lowerModel } from '../../kernel/lower/index.js';
import { splitForKernels } from '../../kernel/split.js';
import { webgpuDefaultTarget } from '../../kernel/target.js';
import { writeFileAtomically } from '../../util/atomic-write.js';
import { checkOutputFile } from '../../util/output-path.js';
import { graphInput, mainOutput } from '../../ir/graph-io.js';

export const inspectHelp = `convc inspect <file.cnx> [options]

Prints a model's input and output shapes, parameter count, MACs (multiply-adds of conv and
linear layers, the papers' "FLOPs"), op counts, and what one forward pass costs on the WGSL
backend: kernel dispatches and the bytes they bind (an estimate of memory traffic).

Options:
${modelHelp}
${sizeHelp}
  --graph             also print the IR graph
  --after PASS        print the IR graph as it is right after PASS, and stop
  --kernels           also list the WGSL dispatches of one forward pass, one a line: index,
                      kernel, schedule, workgroups x threads, and the IR nodes it computes
  --kernel N          print only dispatch N's kernel (0-based, as --kernels numbers them):
                      its kernel program as text, then its WGSL
  --dot FILE          also write the kernels as a Graphviz graph: a box per WGSL dispatch
                      naming its kernel and the IR nodes it covers, edges from what it reads
  --svg FILE          also render that graph as SVG (needs Graphviz's dot: apt-get install graphviz)
  --json              print JSON instead: {model, file, pipeline, input, output, params, macs,
                      dispatches, bytes_moved, ops, nodes}, with --kernels also
                      kernels: [{index, name, schedule, workgroups, workgroup_size, covers}];
                      with --kernel N only {index, name, schedule, text, wgsl}
  -h, --help          show this help

Pipelines: fused (the default): ${pipelines.fused.join(', ')}
           unfused (--no-fuse): ${pipelines.unfused.join(', ')}
Passes:
${[...passRegistry.values()].map((p) => `  ${p.name.padEnd(20)}${p.description}`).join('\n')}`;

export interface InspectReport {
  readonly model: string;
  readonly file: string;
  readonly pipeline: readonly string[];
  readonly input: readonly number[];
  readonly output: readonly number[];
  readonly params: number;
  readonly macs: number;
  /** Kernel dispatches of one forward pass on the WGSL backend. */
  readonly dispatches: number;
  /** Bytes the dispatches bind, summed: an estimate of the memory traffic of one pass. */
  readonly bytes_moved: number;
  readonly ops: Readonly<Record<string, number>>;
  readonly nodes: number;
  /** Every input and output by name (a classifier: input, output; FCMAE: input, mask; pred, loss). */
  readonly inputs: readonly { readonly name: string; readonly shape: readonly number[] }[];
  readonly outputs: readonly { readonly name: string; readonly shape: readonly number[] }[];
  /** Dispatches computing on visible patches only (a sparse region compacted). */
  readonly sparse_dispatches: number;
  /** Only when asked for (--kernels), so the default report stays small. */
  readonly kernels?: readonly KernelEntry[];
}

export interface KernelEntry {
  readonly index: number;
  readonly name: string;
  readonly schedule: ScheduleValue;
  readonly workgroups: number;
  readonly workgroup_size: number;
  /** Comment-safe, as in the WGSL header: these are user-given names. */
  readonly covers: string;
  /** Computes on visible patches only (a compacted sparse region). */
  readonly sparse: boolean;
}

export function kernelEntries(program: WgslProgram): KernelEntry[] {
  return program.programs.map((p, index) => ({
    index,
    name: p.name,
    schedule: p.schedule,
    workgroups: p.workgroups,
    workgroup_size: p.workgroupSize,
    covers: program.dispatches[index].covers,
    sparse: program.dispatches[index].sparse === true,
  }));
}

/**
 * A schedule in one short phrase: `gemm rows=32 cols=32 depth=16 thread=4x4 unroll`, or
 * `strategy key=value ...`, short enough for one line of the listing. A workgroup size equal to
 * the kernel's is left out, since the threads column already shows it; a true flag is its bare
 * name, a false one absent.
 */
export function compactSchedule(kernel: KernelProgram): string {
  const { strategy, ...params } = kernel.schedule;
  const words = strategy === undefined ? [] : [String(strategy)];
  const merged = typeof params.threadRows === 'number' && typeof params.threadCols === 'number';
  for (const [key, value] of Object.entries(params)) {
    if (key === 'workgroupSize' && value === kernel.workgroupSize) continue;
    if (merged && key === 'threadCols') continue;
    if (merged && key === 'threadRows') words.push(`thread=${params.threadRows}x${params.threadCols}`);
    else if (value === true) words.push(key);
    else if (value !== false) words.push(`${key}=${String(value)}`);
  }
  return words.join(' ') || 'none';
}

/** `dot` rendered by Graphviz's dot as SVG; a user error naming the package where dot is missing. */
function renderSvgWithDot(dot: string): string {
  const run = spawnSync('dot', ['-Tsvg'], { input: dot, encoding: 'utf8', maxBuffer: 256 * 2 ** 20 });
  if (run.error && (run.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw userError("--svg needs Graphviz's dot, which is not installed", undefined, ['install it (Debian: apt-get install graphviz), or write the graph with --dot FILE and render it elsewhere']);
  }
  if (run.status !== 0) throw runFailure(`dot -Tsvg failed (exit ${run.status}): ${(run.stderr ?? '').trim().split('\n').slice(-3).join(' ')}`);
  return run.stdout;
}

/** The --kernels table: a header, then a line per dispatch, columns padded to their widest cell. */
function kernelTable(entries: readonly KernelEntry[], program: WgslProgram): string {
  const rows = [
    ['#', 'kernel', 'schedule', 'workgroups x threads', 'covers'],
    ...entries.map((e) => [String(e.index), e.name, compactSchedule(program.programs[e.index]), `${e.workgroups} x ${e.workgroup_size}`, `${e.sparse ? '[sparse] ' : ''}${e.covers}`]),
  ];
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  return rows
    .map((row) =>
      row
        .map((cell, column) => (column === 0 ? cell.padStart(widths[0]) : column === row.length - 1 ? cell : cell.padEnd(widths[column])))
        .join('  '),
    )
    .join('\n');
}

/** `--kernel N` as a dispatch index; checked against the lowered program, so the error can give the range. */
function kernelIndex(value: string, program: WgslProgram): number {
  const count = program.dispatches.length;
  const range = `0..${count - 1}`;
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw userError(`--kernel needs a dispatch index, an integer in ${range}; got '${value}'`);
  }
  const index = Number(value);
  if (index >= count) throw userError(`--kernel ${value}: the model has ${count} dispatches (${range})`);
  return index;
}

export function inspectReport(graph: Graph, file: string, pipeline: readonly string[], program: WgslProgram = lowerToWgsl(graph)): InspectReport {
  const cost = graphCost(graph);
  const input = graphInput(graph, 'input');
  return {
    model: graph.name,
    file,
    pipeline,
    input: input.type.shape,
    output: graph.nodes[mainOutput(graph)].type.shape,
    params: cost.params,
    macs: cost.macs,
    dispatches: program.dispatches.length,
    bytes_moved: program.dispatches.reduce((sum, d) => sum + d.bytes, 0),
    ops: cost.ops,
    nodes: graph.nodes.length,
    inputs: program.inputs.map(({ name, shape }) => ({ name, shape })),
    outputs: program.outputs.map(({ name, shape }) => ({ name, shape })),
    sparse_dispatches: program.dispatches.filter((d) => d.sparse).length,
  };
}

export async function inspectCommand(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandLine('inspect', args, {
    ...modelOptions,
    ...sizeOptions,
    graph: { type: 'boolean' },
    after: { type: 'string' },
    kernels: { type: 'boolean' },
    kernel: { type: 'string' },
    json: { type: 'boolean' },
    dot: { type: 'string' },
    svg: { type: 'string' },
  });
  if (values.help) {
    io.stdout.write(`${inspectHelp}\n`);
    return 0;
  }
  const file = requireOne(positionals, 'inspect', 'a .cnx file');
  if ((values.dot !== undefined || values.svg !== undefined) && (values.kernel !== undefined || values.after !== undefined)) {
    throw userError('--dot and --svg draw the whole model; they do not go with --kernel or --after');
  }
  // Before the model is built: a bad path fails now.
  for (const flag of ['dot', 'svg'] as const) {
    const path = stringOption(values, flag);
    if (path !== undefined) checkOutputFile(path, `the --${flag} file`, { createParents: true });
  }
  const passes = chosenPasses(values);
  const after = stringOption(values, 'after');
  if (after !== undefined && !passes.includes(after)) {
    throw userError(`--after ${after}: that pass is not in the pipeline (${passes.join(', ') || 'no passes'})`);
  }
  let snapshot: Graph | undefined;
  const { graph } = loadModel(file, { model: stringOption(values, 'model'), size: inputSize(values), passes }, (t) => {
    if (t.pass === after) snapshot = t.graph;
  });
  if (snapshot) {
    io.stdout.write(`# after ${after}\n${printGraph(snapshot)}\n`);
    return 0;
  }
  const program = lowerToWgsl(graph);
  const kernelOption = stringOption(values, 'kernel');
  if (kernelOption !== undefined) {
    const index = kernelIndex(kernelOption, program);
    const kernel = program.programs[index];
    const text = printKernel(kernel);
    const wgsl = renderWgsl(kernel);
    if (values.json) io.stdout.write(`${JSON.stringify({ index, name: kernel.name, schedule: kernel.schedule, text, wgsl }, null, 2)}\n`);
    else io.stdout.write(`# dispatch ${index}: kernel program\n${text}\n# dispatch ${index}: WGSL\n${wgsl}`);
    return 0;
  }
  const dotPath = stringOption(values, 'dot');
  const svgPath = stringOption(values, 'svg');
  if (dotPath !== undefined || svgPath !== undefined) {
    const lowered = splitForKernels(graph);
    const dot = graphToDot(lowered, lowerModel(lowered, webgpuDefaultTarget, () => undefined));
    // The SVG first: without Graphviz nothing is written.
    if (svgPath !== undefined) writeFileAtomically(svgPath, renderSvgWithDot(dot));
    if (dotPath !== undefined) writeFileAtomically(dotPath, dot);
  }
  const report = inspectReport(graph, file, passes, program);
  if (values.json) {
    io.stdout.write(`${JSON.stringify(values.kernels ? { ...report, kernels: kernelEntries(program) } : report, null, 2)}\n`);
    return 0;
  }
  const ops = Object.entries(report.ops)
    .map(([op, n]) => `${op} ${n}`)
    .join(', ');
  io.stdout.write(
    [
      `model       ${report.model}  (${file})`,
      `pipeline    ${passes.join(', ') || '(none)'}`,
      ...(report.inputs.length === 1 ? [`input       ${formatShape(report.input)} f32`] : report.inputs.map((t, i) => `${i === 0 ? 'inputs' : ''.padEnd(6)}      ${t.name} ${formatShape(t.shape)} f32`)),
      ...(report.outputs.length === 1 ? [`output      ${formatShape(report.output)} f32`] : report.outputs.map((t, i) => `${i === 0 ? 'outputs' : ''.padEnd(7)}     ${t.name} ${formatShape(t.shape)} f32`)),
      `params      ${report.params.toLocaleString('en-US')} (${humanCount(report.params)})`,
      `MACs        ${report.macs.toLocaleString('en-US')} (${humanCount(report.macs)})`,
      `dispatches  ${report.dispatches} (WGSL, one forward pass)${report.sparse_dispatches > 0 ? `; ${report.sparse_dispatches} of them sparse (on visible patches only; --kernels marks them)` : ''}`,
      `bytes       ${report.bytes_moved.toLocaleString('en-US')} (${humanCount(report.bytes_moved)}B bound by those dispatches)`,
      `ops         ${ops}`,
      '',
    ].join('\n'),
  );
  if (values.kernels) {
    io.stdout.write(`\n${kernelTable(kernelEntries(program), program)}\n`);
  }
  if (values.graph) io.stdout.write(`\n${printGraph(graph)}\n`);
  return 0;
}
