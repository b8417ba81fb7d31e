// Pointwise layers (1x1 convolutions and linear layers over channels) as GEMMs over pixels:
// out[row, oc] = sum_k in[row, k] * weight[k, oc]. Staged tiles go through workgroup memory,
// once or double-buffered; unstaged ones read straight from memory, scalar or vec4. Which of
// them a node gets is its schedule's choice (src/kernel/schedule.ts).
import { add, and, assign, barrier, bind, comment, component, div, f32, group, if_, let_, load, load4, local, loop, lt, mul, ref, registers, rem, store, sub, u32, var_, vec4, xor } from '../build.js';
import type { Expr, KernelProgram, Stmt } from '../ir.js';
import { sitelessContext } from '../math.js';
import type { Schedule } from '../schedule.js';
import { getOp } from '../../ir/registry.js';
import type { Graph, Node } from '../../ir/types.js';
import { KernelBuilder, type OpUse, type Site } from './builder.js';
import { anatomy, biasOf, contractionWeight, geometry, loadInput, program, type Geometry } from './contraction.js';

/**
 * A pointwise layer as a GEMM, out[row, oc] = sum_k in[row, k] * weight[k, oc], rows being
 * pixels: tiles of both operands are staged in workgroup memory (the prologue applied once per
 * staged input element), each thread accumulates threadRows x threadCols outputs. With two
 * buffers, the next step's tiles are staged while the current ones are multiplied.
 */
export function lowerGemm(graph: Graph, node: Node, schedule: Extract<Schedule, { strategy: 'gemm' }>): KernelProgram {
  const b = new KernelBuilder(graph, node);
  const a = anatomy(node);
  const g = geometry(b, a.c);
  if (!schedule.stage) return lowerGemmUnstaged(graph, node, schedule);
  const { rows, cols, depth, threadRows, threadCols, unroll, vector } = schedule;
  const buffers = schedule.buffers ?? 1;
  const wide = vector === 4 ? 4 : undefined;
  const input = b.input(0, 'input', wide);
  const weight = contractionWeight(b, a.c, wide);
  const output = b.output();
  const threads = (rows / threadRows) * (cols / threadCols);
  const k = a.c.inChannels;
  const K = g.CIN;
  const ROWS = u32(g.rows, 'ROWS');
  const tileIn = b.sharedArray('tile_in', buffers * rows * depth, wide);
  const tileWeight = b.sharedArray('tile_weight', buffers * depth * cols, wide);
  const tilesAcross = Math.ceil(a.c.outChannels / cols);
  const body: Stmt[] = [
    comment(`Tile: ${rows} rows x ${cols} output channels, K in steps of ${depth}; ${threadRows}x${threadCols} outputs per thread.`),
    let_('row0', mul(div(group, u32(tilesAcross, 'TILES_ACROSS')), u32(rows, 'TILE_ROWS'))),
    let_('col0', mul(rem(group, u32(tilesAcross, 'TILES_ACROSS')), u32(cols, 'TILE_COLS'))),
    let_('thread_row', mul(div(local, u32(cols / threadCols)), u32(threadRows, 'THREAD_ROWS'))),
    let_('thread_col', mul(rem(local, u32(cols / threadCols)), u32(threadCols, 'THREAD_COLS'))),
    registers('acc', threadRows * threadCols),
    registers('a', threadRows),
    registers('b', threadCols),
  ];
  const [row0, col0, threadRow, threadCol] = ['row0', 'col0', 'thread_row', 'thread_col'].map((x) => ref(x, 'u32'));
  const e = ref('e', 'u32');
  const zero: Expr = { kind: 'const', type: 'f32', value: 0 };
  const staged: Expr = wide ? vec4(zero, zero, zero, zero) : zero;
  const [row, kk, col] = [ref('row', 'u32'), ref('k', 'u32'), ref('col', 'u32')];
  const vectorStep = vector;
  /**
   * Statements staging the tiles of K from `k0` (through the prologue) at offsets `inAt` and
   * `weightAt` of the tile arrays; with vec4 staging, four channels at a time (channels, depth
   * and columns all divide by four, so a vector never straddles an edge).
   */
  const stageTiles = (k0: Expr, inAt: Expr, weightAt: Expr): Stmt[] => {
    const stageIn: Stmt[] = [let_('row', add(row0, div(e, u32(depth, 'TILE_DEPTH')))), let_('k', add(k0, rem(e, u32(depth, 'TILE_DEPTH')))), var_('x', staged)];
    const loaded: Stmt[] = [];
    if (wide) {
      const raw = bind(loaded, 'x4', load4(input, add(mul(row, K), kk)));
      const site = (j: number): Site => ({ index: add(add(mul(row, K), kk), u32(j)), n: div(row, g.P_OUT), c: add(kk, u32(j)), shape: b.inputType(0).shape });
      const parts = ([0, 1, 2, 3] as const).map((j) => b.applyElementwise(a.pre, component(raw, j), site(j), loaded));
      loaded.push(assign('x', vec4(parts[0], parts[1], parts[2], parts[3])));
    } else {
      loaded.push(assign('x', loadInput(b, g, a.pre, input, row, kk, div(row, g.P_OUT), loaded)));
    }
    stageIn.push(if_(and(lt(row, ROWS), lt(kk, K)), loaded), store(tileIn, add(inAt, e), ref('x', staged.type)));
    const stageWeight: Stmt[] = [let_('k', add(k0, div(e, u32(cols, 'TILE_COLS')))), let_('col', add(col0, rem(e, u32(cols, 'TILE_COLS')))), var_('w', staged)];
    const weightIndex = add(mul(kk, g.COUT), col);
    stageWeight.push(if_(and(lt(kk, K), lt(col, g.COUT)), [assign('w', wide ? load4(weight, weightIndex) : load(weight, weightIndex))]), store(tileWeight, add(weightAt, e), ref('w', staged.type)));
    return [
      loop('e', mul(local, u32(vectorStep)), rows * depth, stageIn, { step: threads * vectorStep }),
      loop('e', mul(local, u32(vectorStep)), depth * cols, stageWeight, { step: threads * vectorStep }),
    ];
  };
  const i = ref('i', 'u32');
  const j = ref('j', 'u32');
  const step = ref('kk', 'u32');
  /** The multiply of the tiles at offsets `inAt` and `weightAt`. */
  const multiply = (inAt: Expr, weightAt: Expr): Stmt =>
    loop('kk', 0, u32(depth, 'TILE_DEPTH'), [
      loop('i', 0, threadRows, [store('a', i, load(tileIn, add(inAt, add(mul(add(threadRow, i), u32(depth, 'TILE_DEPTH')), step))))], { unroll }),
      loop('j', 0, threadCols, [store('b', j, load(tileWeight, add(weightAt, add(mul(step, u32(cols, 'TILE_COLS')), add(threadCol, j)))))], { unroll }),
      loop('i', 0, threadRows, [loop('j', 0, threadCols, [store('acc', add(mul(i, u32(threadCols)), j), add(load('acc', add(mul(i, u32(threadCols)), j)), mul(load('a', i), load('b', j))))], { unroll })], { unroll }),
    ]);
  const k0 = ref('k0', 'u32');
  const TILE_DEPTH = u32(depth, 'TILE_DEPTH');
  if (buffers === 1) {
    body.push(loop('k0', 0, K, [...stageTiles(k0, u32(0), u32(0)), barrier, multiply(u32(0), u32(0)), barrier], { step: TILE_DEPTH }));
  } else {
    // Tiles of step s live in buffer s % 2. Step s loads step s+1's tiles into the other
    // buffer, which step s-1 read before the barrier that ended it, then multiplies its own,
    // which the barrier before it made visible: no thread writes a tile another may still read.
    const [TILE_IN, TILE_WEIGHT] = [u32(rows * depth, 'TILE_IN_FLOATS'), u32(depth * cols, 'TILE_WEIGHT_FLOATS')];
    body.push(comment('Double-buffered: the next tiles load while these are multiplied.'));
    body.push(...stageTiles(u32(0), u32(0), u32(0)), barrier);
    const stepBody: Stmt[] = [];
    const current = bind(stepBody, 'buffer', rem(div(k0, TILE_DEPTH), u32(2)));
    const next = bind(stepBody, 'next_buffer', sub(u32(1), current));
    stepBody.push(if_(lt(add(k0, TILE_DEPTH), K), [let_('k_next', add(k0, TILE_DEPTH)), ...stageTiles(ref('k_next', 'u32'), mul(next, TILE_IN), mul(next, TILE_WEIGHT))]));
    stepBody.push(multiply(mul(current, TILE_IN), mul(current, TILE_WEIGHT)), barrier);
    body.push(loop('k0', 0, K, stepBody, { step: TILE_DEPTH }));
  }
  // Each accumulator through the epilogue; unrolled with the multiply so `acc` stays in registers.
  const storeOne: Stmt[] = [let_('out_row', add(add(row0, threadRow), i)), let_('oc', add(add(col0, threadCol), j))];
  const [outRow, oc] = [ref('out_row', 'u32'), ref('oc', 'u32')];
  const epilogue: Stmt[] = [let_('out_index', add(mul(outRow, g.COUT), oc))];
  const outIndex = ref('out_index', 'u32');
  const bias = biasOf(b, a.c, oc);
  const acc = load('acc', add(mul(i, u32(threadCols)), j));
  const v = b.applyElementwise(a.before, bias ? bind(epilogue, 'v_bias', add(acc, bias)) : acc, { index: outIndex, n: div(outRow, g.P_OUT), c: oc, shape: node.type.shape }, epilogue);
  epilogue.push(store(output, outIndex, v));
  const partials = partialSums(b, node, { threadRows, threadCols, unroll }, { start: add(row0, threadRow), col: add(col0, threadCol), ROWS, COUT: g.COUT });
  if (partials) body.push(partials.registers), epilogue.push(partials.add(v));
  storeOne.push(if_(and(lt(outRow, ROWS), lt(oc, g.COUT)), epilogue));
  body.push(loop('i', 0, threadRows, [loop('j', 0, threadCols, storeOne, { unroll })], { unroll }));
  if (partials) body.push(...partials.write);
  void k;
  return program(b, node, a.c, schedule, threads, Math.ceil(g.rows / rows) * tilesAcross, body, '_tiled');
}

/**
 * The GEMM without workgroup memory: each thread reads its threadRows inputs (through the
 * prologue) and threadCols weights straight from the buffers at every step of K and keeps its
 * outputs in registers. No barriers; neighbouring threads share rows and read neighbouring
 * weights. Workgroups tile the output as the staged GEMM does (rows x cols).
 */
function lowerGemmUnstaged(graph: Graph, node: Node, schedule: Extract<Schedule, { strategy: 'gemm' }>): KernelProgram {
  const b = new KernelBuilder(graph, node);
  const a = anatomy(node);
  const g = geometry(b, a.c);
  const { rows, cols, threadRows, threadCols, unroll, vector } = schedule;
  const wide = vector === 4 ? 4 : undefined;
  const input = b.input(0, 'input', wide);
  const weight = contractionWeight(b, a.c, wide);
  const output = b.output();
  const threads = (rows / threadRows) * (cols / threadCols);
  const K = g.CIN;
  const ROWS = u32(g.rows, 'ROWS');
  const tilesAcross = Math.ceil(a.c.outChannels / cols);
  const body: Stmt[] = [
    comment(`Tile: ${rows} rows x ${cols} output channels, read straight from memory; ${threadRows}x${threadCols} outputs per thread.`),
    // A row band's rows depend on the workgroup alone, written so: a compiler can then see that
    // they are the same for every thread (scalar loads on a CPU emulation, see rowBand).
    let_('row0', rows === threadRows ? mul(div(group, u32(tilesAcross, 'TILES_ACROSS')), u32(rows, 'TILE_ROWS')) : add(mul(div(group, u32(tilesAcross, 'TILES_ACROSS')), u32(rows, 'TILE_ROWS')), mul(div(local, u32(cols / threadCols)), u32(threadRows, 'THREAD_ROWS')))),
    let_('col0', add(mul(rem(group, u32(tilesAcross, 'TILES_ACROSS')), u32(cols, 'TILE_COLS')), mul(rem(local, u32(cols / threadCols)), u32(threadCols, 'THREAD_COLS')))),
    registers('acc', threadRows * threadCols),
    registers('a', threadRows * vector),
    registers('b', threadCols * vector),
  ];
  const [row0, col0] = ['row0', 'col0'].map((x) => ref(x, 'u32'));
  const [i, j, k] = ['i', 'j', 'k'].map((x) => ref(x, 'u32'));
  const row = ref('row', 'u32');
  const shared = schedule.share === 'subgroup';
  const lane = ref('lane', 'u32');
  if (shared) body.push(comment(`The band's ${rows} rows are a subgroup's lanes: each lane loads one, shuffles pass them round.`), let_('lane', rem(local, u32(rows, 'TILE_ROWS'))));
  const col = ref('col', 'u32');
  const slot = add(mul(i, u32(threadCols)), j);
  if (wide) {
    body.push(loop('k', 0, K, unstagedVectorStep(b, g, a.pre, { input, weight }, { threadRows, threadCols, unroll }), { step: 4 }));
  } else {
    let readRows: Stmt[];
    if (shared) {
      // This lane loads row row0 + lane; the lane `lane ^ m` has row row0 + (lane ^ m), so
      // a[m] holds that row's input and the outputs of slot m belong to it.
      const readRow: Stmt[] = [let_('row', add(row0, lane)), var_('x', f32(0))];
      const loaded: Stmt[] = [];
      loaded.push(assign('x', loadInput(b, g, a.pre, input, row, k, div(row, g.P_OUT), loaded)));
      readRow.push(if_(lt(row, ROWS), loaded), store('a', u32(0), ref('x', 'f32')));
      for (let m = 1; m < rows; m++) readRow.push({ kind: 'shuffle-xor', into: `x_${m}`, value: ref('x', 'f32'), mask: m }, store('a', u32(m), ref(`x_${m}`, 'f32')));
      readRows = readRow;
    } else {
      const readRow: Stmt[] = [let_('row', add(row0, i)), var_('x', f32(0))];
      const loaded: Stmt[] = [];
      loaded.push(assign('x', loadInput(b, g, a.pre, input, row, k, div(row, g.P_OUT), loaded)));
      readRow.push(if_(lt(row, ROWS), loaded), store('a', i, ref('x', 'f32')));
      readRows = [loop('i', 0, threadRows, readRow, { unroll })];
    }
    const readCol: Stmt[] = [let_('col', add(col0, j)), var_('w', f32(0))];
    readCol.push(if_(lt(col, g.COUT), [assign('w', load(weight, add(mul(k, g.COUT), col)))]), store('b', j, ref('w', 'f32')));
    body.push(
      loop('k', 0, K, [
        ...readRows,
        loop('j', 0, threadCols, readCol, { unroll }),
        loop('i', 0, threadRows, [loop('j', 0, threadCols, [store('acc', slot, add(load('acc', slot), mul(load('a', i), load('b', j))))], { unroll })], { unroll }),
      ]),
    );
  }
  const storeOne: Stmt[] = [let_('out_row', add(row0, shared ? xor(lane, i) : i)), let_('oc', add(col0, j))];
  const [outRow, oc] = [ref('out_row', 'u32'), ref('oc', 'u32')];
  const epilogue: Stmt[] = [let_('out_index', add(mul(outRow, g.COUT), oc))];
  const outIndex = ref('out_index', 'u32');
  const bias = biasOf(b, a.c, oc);
  const v = b.applyElementwise(a.before, bias ? bind(epilogue, 'v_bias', add(load('acc', slot), bias)) : load('acc', slot), { index: outIndex, n: div(outRow, g.P_OUT), c: oc, shape: node.type.shape }, epilogue);
  epilogue.push(store(output, outIndex, v));
  const partials = partialSums(b, node, { threadRows, threadCols, unroll }, { start: row0, col: col0, ROWS, COUT: g.COUT, ...(shared ? { lane } : {}) });
  if (partials) body.push(partials.registers), epilogue.push(partials.add(v));
  storeOne.push(if_(and(lt(outRow, ROWS), lt(oc, g.COUT)), epilogue));
  body.push(loop('i', 0, threadRows, [loop('j', 0, threadCols, storeOne, { unroll })], { unroll }));
  if (partials) body.push(...partials.write);
  return program(b, node, a.c, schedule, threads, Math.ceil(g.rows / rows) * tilesAcross, body, shared ? '_gemm_shared' : '_gemm');
}

/**
 * One step of the unstaged GEMM over four channels of K (from `k`): each of the thread's rows
 * read as one vec4 of input channels (the prologue applied per component), each four of its
 * columns as one vec4 per channel, then four rank-1 updates in K's order, so every output sums
 * its terms in the same order as with scalar loads. Registers: a[i * 4 + q] holds row i's
 * channel k + q, b[q * threadCols + j] column j's weight of channel k + q.
 */
function unstagedVectorStep(
  b: KernelBuilder,
  g: Geometry,
  pre: readonly OpUse[],
  names: { input: string; weight: string },
  s: { threadRows: number; threadCols: number; unroll: boolean },
): Stmt[] {
  const { threadRows, threadCols, unroll } = s;
  const [row0, col0, row, col, i, j, k, q] = ['row0', 'col0', 'row', 'col', 'i', 'j', 'k', 'q'].map((x) => ref(x, 'u32'));
  const zero = f32(0);
  const zeros = vec4(zero, zero, zero, zero);
  const quads = [0, 1, 2, 3] as const;
  const readRow: Stmt[] = [let_('row', add(row0, i)), var_('x', zeros)];
  const loaded: Stmt[] = [];
  const at = add(mul(row, g.CIN), k);
  const raw = bind(loaded, 'x4', load4(names.input, at));
  const site = (c: number): Site => ({ index: add(at, u32(c)), n: div(row, g.P_OUT), c: add(k, u32(c)), shape: b.inputType(0).shape });
  const parts = quads.map((c) => b.applyElementwise(pre, component(raw, c), site(c), loaded));
  loaded.push(assign('x', vec4(parts[0], parts[1], parts[2], parts[3])));
  readRow.push(if_(lt(row, u32(g.rows, 'ROWS')), loaded), ...quads.map((c) => store('a', add(mul(i, u32(4)), u32(c)), component(ref('x', 'vec4f'), c))));
  // Column vectors start at multiples of 4 and output channels divide by 4: a vector is
  // either wholly inside the layer or wholly past its last channel.
  const readCols: Stmt[] = [let_('col', add(col0, j)), ...quads.map((c) => var_(`w${c}`, zeros))];
  readCols.push(if_(lt(col, g.COUT), quads.map((c) => assign(`w${c}`, load4(names.weight, add(mul(add(k, u32(c)), g.COUT), col))))));
  for (const c of quads) for (const m of quads) readCols.push(store('b', add(add(u32(c * threadCols), j), u32(m)), component(ref(`w${c}`, 'vec4f'), m)));
  const slot = add(mul(i, u32(threadCols)), j);
  return [
    loop('i', 0, threadRows, readRow, { unroll }),
    loop('j', 0, threadCols, readCols, { unroll, step: 4 }),
    loop(
      'q',
      0,
      4,
      [loop('i', 0, threadRows, [loop('j', 0, threadCols, [store('acc', slot, add(load('acc', slot), mul(load('a', add(mul(i, u32(4)), q)), load('b', add(mul(q, u32(threadCols)), j)))))], { unroll })], { unroll })],
      { unroll },
    ),
  ];
}

/**
 * The partial sums a GEMM writes beside its value when the graph asks for them
 * (Fusion.partials): each thread adds the statistic's term of each output it writes into a
 * register per run of `positions` of its rows and per column, then writes one partial per run
 * and column. A thread's rows are `threadRows` consecutive ones from `start` (a multiple of
 * threadRows); in a shared band, its slot i holds row start + (lane ^ i), so slot runs i / run
 * hold row runs (lane / run) ^ (i / run), run being a power of two. The run divides H x W
 * (the pass sees to it), so no run straddles two samples, and rows past the last are whole
 * runs the guard skips.
 */
function partialSums(
  b: KernelBuilder,
  node: Node,
  s: { readonly threadRows: number; readonly threadCols: number; readonly unroll: boolean },
  at: { readonly start: Expr; readonly col: Expr; readonly ROWS: Expr; readonly COUT: Expr; readonly lane?: Expr },
): { readonly registers: Stmt; readonly add: (v: Expr) => Stmt; readonly write: Stmt[] } | undefined {
  const partials = node.fusion?.partials;
  if (!partials) return undefined;
  const run = partials.positions;
  if (s.threadRows % run !== 0) throw new Error(`internal: ${s.threadRows} rows per thread do not split into runs of ${run} positions`);
  const math = getOp(partials.op).kernel;
  if (math.kind !== 'reduction' || math.stats.length !== 1) throw new Error(`internal: ${partials.op} has no single statistic to sum in parts`);
  const memory = b.partials(node.id, run, 'read_write');
  const [i, j, r] = [ref('i', 'u32'), ref('j', 'u32'), ref('r', 'u32')];
  const RUN = u32(run, 'PARTIAL_RUN');
  const cols = u32(s.threadCols);
  const slot = add(mul(div(i, RUN), cols), j);
  const add_ = (v: Expr): Stmt => store('partial', slot, add(load('partial', slot), math.stats[0].term(v, {}, partials.attrs, sitelessContext)));
  const runRow = add(at.start, mul(at.lane === undefined ? r : xor(div(at.lane, RUN), r), RUN));
  const writeOne: Stmt[] = [let_('run_row', runRow), let_('run_col', add(at.col, j))];
  const [row, col] = [ref('run_row', 'u32'), ref('run_col', 'u32')];
  writeOne.push(if_(and(lt(row, at.ROWS), lt(col, at.COUT)), [store(memory, add(mul(div(row, RUN), at.COUT), col), load('partial', add(mul(r, cols), j)))]));
  return {
    registers: registers('partial', (s.threadRows / run) * s.threadCols),
    add: add_,
    write: [comment(`Partial sums of ${partials.op}'s statistic over runs of ${run} rows, one per run and output channel.`), loop('r', 0, s.threadRows / run, [loop('j', 0, s.threadCols, writeOne, { unroll: s.unroll })], { unroll: s.unroll })],
  };
}
