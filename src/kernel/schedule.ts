// Schedules as data: how a node's kernel maps its math onto threads, workgroups and memory.
// The math (src/ir/ops, declared once) never depends on it; lowering checks every program a
// schedule produces against the target, so no schedule yields a kernel the device refuses.
// `scheduleSpace` lists the legal schedules of a node (the property tests draw from it, a
// tuner searches it); `defaultSchedule` is the heuristic used when nothing better is known.
import { getOp } from '../ir/registry.js';
import type { Node } from '../ir/types.js';
import type { TargetDescription } from './target.js';

export type Schedule =
  /**
   * One thread per element; a gather of an image, one thread per site looping over its
   * channels, unless `element` (a thread per element, for targets whose threads write only
   * their own element: TargetDescription.threadWrites).
   */
  | { readonly strategy: 'elementwise'; readonly workgroupSize: number; readonly element?: true }
  /**
   * Reductions: `lanes` threads share each reduced row (1: a thread owns a row), and reduce
   * through workgroup memory ('tree') or subgroup shuffles ('subgroup', lanes within a subgroup).
   */
  | {
      readonly strategy: 'rows';
      readonly workgroupSize: number;
      readonly lanes: number;
      readonly reduction: Reduction;
      /**
       * A thread per element of the value instead of per row (lanes 1): each computes its
       * row's statistics again and writes its own element, for targets whose threads write
       * only their own element (TargetDescription.threadWrites). Absent: per row.
       */
      readonly element?: true;
    }
  /** Convolutions and linear layers, one thread per output. */
  | { readonly strategy: 'direct'; readonly workgroupSize: number }
  /**
   * Pointwise layers as a GEMM tiled through workgroup memory: each workgroup computes `rows`
   * (pixels) x `cols` (output channels), stepping over input channels `depth` at a time; each
   * thread keeps threadRows x threadCols outputs in registers. `unroll` unrolls the inner step.
   */
  | {
      readonly strategy: 'gemm';
      readonly rows: number;
      readonly cols: number;
      readonly depth: number;
      readonly threadRows: number;
      readonly threadCols: number;
      readonly unroll: boolean;
      /**
       * Floats a load reads: 4 reads input channels and weight columns as vec4, into staged
       * tiles or, unstaged, straight into a thread's registers four channels of K at a time.
       */
      readonly vector: 1 | 4;
      /**
       * Whether tiles are staged in workgroup memory (`depth` channels at a time, between
       * barriers) or each thread reads its operands straight from memory (depth unused).
       */
      readonly stage: boolean;
      /**
       * Staged only: 2 keeps two pairs of tiles in workgroup memory, the next step's being
       * loaded while the current one is multiplied (one barrier a step instead of two). Absent
       * means one pair, so schedules and tuning files written before it read the same.
       */
      readonly buffers?: 2;
      /**
       * Row bands only ('subgroup'): the band's rows are a subgroup's lanes, each lane loading
       * one row's input (through the prologue) and the subgroup passing them round by
       * shuffles, so an input element is loaded and its prologue computed once a subgroup,
       * not once a thread. Needs fixed-size subgroups of `rows` lanes. Absent: every thread
       * loads every row of its band.
       */
      readonly share?: 'subgroup';
    }
  /**
   * A contraction normalised over channels after (LayerNorm epilogue): `lanes` threads per
   * output pixel; `registers` keeps each thread's channels in registers between the passes
   * (at most 16 a thread) instead of re-reading them from the output. A depthwise convolution
   * may give the lanes a run of `pixels` adjacent output pixels of a row (absent: 1), whose
   * overlapping windows share their loads (lower/pixel-run.ts). `stage` (runs only) has a
   * workgroup take consecutive runs of one row and load their input window and the filter
   * into workgroup memory once for all of them, `lanes` channels at a time.
   */
  | { readonly strategy: 'pixel'; readonly workgroupSize: number; readonly lanes: number; readonly registers: boolean; readonly reduction: Reduction; readonly pixels?: number; readonly stage?: boolean }
  /**
   * A convolution normalising its input over channels (LayerNorm prologue): a workgroup per
   * `pixels` output pixels stages their normalised input windows, `stagingFloats` at a time
   * in all, so that each weight it loads serves every one of its pixels.
   */
  | { readonly strategy: 'window'; readonly workgroupSize: number; readonly stagingFloats: number; readonly pixels: number }
  /**
   * A linear layer over pooled samples with a pooling or LayerNorm prologue: a workgroup per
   * sample, or per `outputsPerWorkgroup` of its outputs (absent: all), each such workgroup
   * pooling and normalising the sample again for its slice.
   */
  | { readonly strategy: 'sample'; readonly workgroupSize: number; readonly outputsPerWorkgroup?: number };

export type Reduction = 'tree' | 'subgroup';

/** Whether `lanes` threads can reduce by subgroup shuffles on `target`. */
function subgroupFits(lanes: number, workgroupSize: number, target: TargetDescription): boolean {
  const size = target.subgroupSize;
  return size !== undefined && lanes > 1 && size % lanes === 0 && workgroupSize % size === 0;
}

/** Which family of kernels a node's math and fused steps call for. */
export type KernelShape = 'layout' | 'elementwise' | 'rows' | 'contraction' | 'pixel' | 'window' | 'sample';

const isChannelReduction = (op: string) => {
  const math = getOp(op).kernel;
  return math.kind === 'reduction' && math.over === 'channels';
};
const isSpatialReduction = (op: string) => {
  const math = getOp(op).kernel;
  return math.kind === 'reduction' && math.over === 'spatial';
};

export function kernelShape(node: Node): KernelShape {
  const math = getOp(node.op).kernel;
  switch (math.kind) {
    case 'input':
      return 'layout';
    case 'elementwise':
      return 'elementwise';
    case 'reduction':
      return 'rows';
    case 'split':
      throw new Error(`internal: '${node.op}' reaches kernels only after the '${math.pass}' pass`);
    case 'gather':
      // One thread per element, as for elementwise ops (src/kernel/lower/gather.ts).
      return 'elementwise';
    case 'contraction': {
      const prologue = node.fusion?.prologue ?? [];
      const epilogue = node.fusion?.epilogue ?? [];
      if (node.type.shape.length === 2 && prologue.some((s) => isChannelReduction(s.op) || isSpatialReduction(s.op))) return 'sample';
      if (prologue.some((s) => isChannelReduction(s.op))) return 'window';
      if (prologue.some((s) => isSpatialReduction(s.op))) throw new Error(`internal: ${node.op} pools its input only over pooled samples`);
      if (epilogue.some((s) => isChannelReduction(s.op))) return 'pixel';
      return 'contraction';
    }
  }
}

const workgroupSizes = [32, 64, 128, 256];
const powersOfTwoUpTo = (limit: number): number[] => {
  const out: number[] = [];
  for (let p = 1; p <= limit; p *= 2) out.push(p);
  return out;
};

/** Whether a 1x1, stride-1, ungrouped contraction (a GEMM over pixels) computes this node. */
function isGemm(node: Node): boolean {
  const math = getOp(node.op).kernel;
  if (math.kind !== 'contraction') return false;
  const c = math.contraction(node.attrs);
  return c.kernel.every((k) => k === 1) && c.stride.every((s) => s === 1) && c.padding.every((p) => p === 0) && c.groups === 1;
}

/**
 * vec4 loads need whole vectors everywhere: channels by fours, and staged, tile columns and
 * depth; unstaged, each thread's columns (which then start at a multiple of 4, so a vector
 * never straddles the last output channel).
 */
function vectorizable(node: Node, s: Extract<Schedule, { strategy: 'gemm' }>): boolean {
  const math = getOp(node.op).kernel;
  if (math.kind !== 'contraction') return false;
  const c = math.contraction(node.attrs);
  const channels = c.inChannels % 4 === 0 && c.outChannels % 4 === 0;
  return channels && (s.stage ? s.cols % 4 === 0 && s.depth % 4 === 0 : s.threadCols % 4 === 0);
}

/** Workgroup memory a staged GEMM's tiles take, in bytes: one or two pairs of f32 tiles. */
export function gemmTileBytes(s: Extract<Schedule, { strategy: 'gemm' }>): number {
  return 4 * (s.rows + s.cols) * s.depth * (s.buffers ?? 1);
}

/** Channels a register-held pixel may give one thread: unrolled code grows with it. */
const maxRegisterChannels = 16;

/** Values a thread may hold in registers for a run of pixels (pixels x its channels). */
const maxRunRegisters = 32;

/**
 * Workgroup memory (floats) of a staged run-of-pixels kernel (lower/pixel-run.ts): the input
 * window of its runs and the filter, `lanes` channels of each, and a tree reduction's arrays.
 */
function runSharedFloats(node: Node, s: Extract<Schedule, { strategy: 'pixel' }>): number {
  const math = getOp(node.op).kernel;
  if (math.kind !== 'contraction') return Infinity;
  const c = math.contraction(node.attrs);
  const [kh, kw] = c.kernel;
  const haloCols = ((s.workgroupSize / s.lanes) * (s.pixels ?? 1) - 1) * c.stride[1] + kw;
  return kh * haloCols * s.lanes + kh * kw * s.lanes + 2 * s.workgroupSize;
}

/** Whether a contraction is depthwise (a group per channel), which a run of pixels needs. */
function isDepthwise(node: Node): boolean {
  const math = getOp(node.op).kernel;
  if (math.kind !== 'contraction' || node.type.shape.length !== 4) return false;
  const c = math.contraction(node.attrs);
  return c.groups === c.inChannels && c.groups === c.outChannels && c.kernel.some((k) => k > 1);
}

function outChannels(node: Node): number {
  return node.type.shape[1];
}

function gemmThreads(s: Extract<Schedule, { strategy: 'gemm' }>): number {
  return (s.rows / s.threadRows) * (s.cols / s.threadCols);
}

/**
 * Workgroup memory (floats) of a normalising window kernel (lower/contraction.ts, lowerWindow):
 * its staged windows, and each statistic of the LayerNorm for every tap of every pixel.
 */
function windowSharedFloats(node: Node, s: Extract<Schedule, { strategy: 'window' }>): number {
  const math = getOp(node.op).kernel;
  if (math.kind !== 'contraction') return Infinity;
  const c = math.contraction(node.attrs);
  const taps = c.kernel[0] * c.kernel[1];
  const chunk = Math.max(1, Math.min(taps * c.inChannels, Math.floor(s.stagingFloats / s.pixels)));
  const norm = (node.fusion?.prologue ?? []).map((step) => getOp(step.op).kernel).find((m) => m.kind === 'reduction' && m.over === 'channels');
  const stats = norm?.kind === 'reduction' ? norm.stats.length : 0;
  return s.pixels * chunk + stats * s.pixels * taps;
}

/** Whether `schedule` may compute `node` on `target` (before the program's own needs are checked). */
export function scheduleFits(node: Node, schedule: Schedule, target: TargetDescription): boolean {
  if (target.threadWrites === 'own-element' && !writesOwnElement(schedule)) return false;
  const maxThreads = Math.min(target.maxComputeInvocationsPerWorkgroup, target.maxComputeWorkgroupSizeX);
  const threads = schedule.strategy === 'gemm' ? gemmThreads(schedule) : schedule.workgroupSize;
  if (!Number.isInteger(threads) || threads < 1 || threads > maxThreads) return false;
  const shape = kernelShape(node);
  // Only GEMMs write partial sums beside their value.
  if (node.fusion?.partials !== undefined && schedule.strategy !== 'gemm') return false;
  switch (schedule.strategy) {
    case 'elementwise':
      return shape === 'elementwise' || shape === 'layout';
    case 'rows':
      return (
        shape === 'rows' &&
        schedule.lanes >= 1 &&
        (schedule.element === undefined || schedule.lanes === 1) &&
        schedule.workgroupSize % schedule.lanes === 0 &&
        (schedule.lanes & (schedule.lanes - 1)) === 0 &&
        (schedule.reduction === 'tree' || subgroupFits(schedule.lanes, schedule.workgroupSize, target))
      );
    case 'direct':
      return shape === 'contraction';
    case 'gemm':
      return (
        shape === 'contraction' &&
        isGemm(node) &&
        schedule.rows % schedule.threadRows === 0 &&
        schedule.cols % schedule.threadCols === 0 &&
        (schedule.vector === 1 || vectorizable(node, schedule)) &&
        (schedule.buffers === undefined || (schedule.stage && schedule.buffers === 2)) &&
        (schedule.share === undefined || sharesFit(schedule, target)) &&
        // Partial sums are summed per thread over runs of its rows (gemm.ts).
        (node.fusion?.partials === undefined || schedule.threadRows % node.fusion.partials.positions === 0) &&
        (!schedule.stage || gemmTileBytes(schedule) <= target.maxComputeWorkgroupStorageSize)
      );
    case 'pixel': {
      const pixels = schedule.pixels ?? 1;
      const perThread = Math.ceil(outChannels(node) / schedule.lanes);
      return (
        shape === 'pixel' &&
        schedule.workgroupSize % schedule.lanes === 0 &&
        (schedule.lanes & (schedule.lanes - 1)) === 0 &&
        Number.isInteger(pixels) &&
        pixels >= 1 &&
        (pixels === 1 || isDepthwise(node)) &&
        (schedule.stage === undefined || (pixels > 1 && 4 * runSharedFloats(node, schedule) <= target.maxComputeWorkgroupStorageSize)) &&
        (!schedule.registers || (perThread <= maxRegisterChannels && pixels * perThread <= maxRunRegisters)) &&
        (schedule.reduction === 'tree' || subgroupFits(schedule.lanes, schedule.workgroupSize, target))
      );
    }
    case 'window':
      return shape === 'window' && Number.isInteger(schedule.pixels) && schedule.pixels >= 1 && schedule.stagingFloats >= schedule.pixels && 4 * windowSharedFloats(node, schedule) <= target.maxComputeWorkgroupStorageSize;
    case 'sample':
      return shape === 'sample' && (schedule.outputsPerWorkgroup === undefined || (Number.isInteger(schedule.outputsPerWorkgroup) && schedule.outputsPerWorkgroup >= 1));
  }
}

/**
 * Whether every thread of a kernel under `schedule` writes one element of its value, the one
 * its global index numbers, and shares nothing with other threads: one thread per element
 * (elementwise, direct) or, for reductions, per element recomputing its row (rows.element).
 */
function writesOwnElement(schedule: Schedule): boolean {
  return schedule.strategy === 'direct' || ((schedule.strategy === 'elementwise' || schedule.strategy === 'rows') && schedule.element === true);
}

/** Every schedule worth trying for `node` on `target`, the default heuristic's first. */
export function scheduleSpace(node: Node, target: TargetDescription): Schedule[] {
  const candidates: Schedule[] = [];
  const shape = kernelShape(node);
  const reductions: readonly Reduction[] = ['tree', 'subgroup'];
  for (const workgroupSize of workgroupSizes) {
    switch (shape) {
      case 'layout':
      case 'elementwise':
        candidates.push({ strategy: 'elementwise', workgroupSize, ...(target.threadWrites === 'own-element' ? { element: true as const } : {}) });
        break;
      case 'rows':
        for (const lanes of powersOfTwoUpTo(workgroupSize)) for (const reduction of reductions) candidates.push({ strategy: 'rows', workgroupSize, lanes, reduction });
        // Slow where threads may share a row, so tried only where they may not.
        if (target.threadWrites === 'own-element') candidates.push({ strategy: 'rows', workgroupSize, lanes: 1, reduction: 'tree', element: true });
        break;
      case 'contraction':
        candidates.push({ strategy: 'direct', workgroupSize });
        break;
      case 'pixel':
        for (const lanes of powersOfTwoUpTo(workgroupSize))
          for (const registers of [false, true])
            for (const reduction of reductions)
              for (const pixels of isDepthwise(node) ? [1, 2, 4, 8] : [1]) {
                candidates.push({ strategy: 'pixel', workgroupSize, lanes, registers, reduction, ...(pixels > 1 ? { pixels } : {}) });
                if (pixels === 4) candidates.push({ strategy: 'pixel', workgroupSize, lanes, registers, reduction, pixels, stage: true });
              }
        break;
      case 'window':
        for (const stagingFloats of [256, 512, 1024, 2048, 3072]) for (const pixels of [1, 2, 4, 8, 16]) candidates.push({ strategy: 'window', workgroupSize, stagingFloats, pixels });
        break;
      case 'sample':
        candidates.push({ strategy: 'sample', workgroupSize });
        for (const slice of [1, 2, 4]) if (slice * workgroupSize < outChannels(node)) candidates.push({ strategy: 'sample', workgroupSize, outputsPerWorkgroup: slice * workgroupSize });
        break;
    }
  }
  if (shape === 'contraction' && isGemm(node)) {
    for (const rows of [16, 32, 64])
      for (const cols of [16, 32, 64])
        for (const depth of [4, 8, 16, 32])
          for (const threadRows of [1, 2, 4, 8])
            for (const threadCols of [1, 2, 4, 8])
              for (const unroll of [true, false])
                for (const vector of [1, 4] as const) candidates.push({ strategy: 'gemm', rows, cols, depth, threadRows, threadCols, unroll, vector, stage: true });
    // Double-buffered tiles, unrolled only: they hide a load behind a multiply, which pays
    // where the multiply is long, and the space stays small enough to walk in the tests.
    for (const rows of [16, 32, 64])
      for (const cols of [16, 32, 64])
        for (const depth of [4, 8, 16, 32])
          for (const threadRows of [1, 2, 4, 8])
            for (const threadCols of [1, 2, 4, 8])
              for (const vector of [1, 4] as const) candidates.push({ strategy: 'gemm', rows, cols, depth, threadRows, threadCols, unroll: true, vector, stage: true, buffers: 2 });
    // Unstaged: depth does not apply; 16 columns a thread for GEMMs whose prologue every
    // column thread recomputes. vec4 reads four channels of K a step.
    for (const vector of [1, 4] as const)
      for (const rows of [16, 32, 64])
        for (const cols of [16, 32, 64])
          for (const threadRows of [1, 2, 4, 8])
            for (const threadCols of [1, 2, 4, 8, 16])
              for (const unroll of [true, false]) candidates.push({ strategy: 'gemm', rows, cols, depth: 1, threadRows, threadCols, unroll, vector, stage: false });
    // Row bands: every thread of a workgroup on the same rows (see rowBand).
    for (const vector of [1, 4] as const)
      for (const rows of [4, 8, 12, 16])
        for (const threadCols of [4, 8, 16])
          for (const threads of [2, 4, 8, 16]) candidates.push(rowBand(rows, threadCols * threads, threadCols, vector));
    // Bands whose subgroups share their rows, where subgroups have a fixed size.
    if (target.subgroupSize !== undefined)
      for (const threadCols of [2, 4, 5, 8, 16])
        for (const subgroups of [1, 2]) candidates.push(sharedBand(target.subgroupSize, threadCols * target.subgroupSize * subgroups, threadCols));
  }
  const fitting = candidates.filter((s) => scheduleFits(node, s, target));
  const preferred = defaultSchedule(node, target);
  return [preferred, ...fitting.filter((s) => JSON.stringify(s) !== JSON.stringify(preferred))];
}

/** Adjacent output pixels of a row a depthwise convolution's lanes compute together. */
const DEPTHWISE_RUN = 4;

/**
 * Output pixels a normalising window kernel computes per workgroup: its weights, the bulk of
 * what it reads, are loaded once for all of them. Measured on lavapipe, V1-tiny's three
 * downsampling kernels at 224: 1 pixel 497 ms, 4 345 ms, 8 199 ms, 16 341 ms (one run each).
 */
const WINDOW_PIXELS = 8;

/**
 * The heuristic: 64 threads a workgroup (fits every WebGPU device), a thread per row where
 * rows are short, and GEMM tiles where the GEMM fills them. Measured on lavapipe; the tuner's
 * results replace it per adapter.
 */
export function defaultSchedule(node: Node, target: TargetDescription): Schedule {
  const workgroupSize = Math.min(64, target.maxComputeInvocationsPerWorkgroup, target.maxComputeWorkgroupSizeX);
  switch (kernelShape(node)) {
    case 'layout':
    case 'elementwise':
      return { strategy: 'elementwise', workgroupSize, ...(target.threadWrites === 'own-element' ? { element: true as const } : {}) };
    case 'rows': {
      if (target.threadWrites === 'own-element') return { strategy: 'rows', workgroupSize, lanes: 1, reduction: 'tree', element: true };
      const math = getOp(node.op).kernel;
      // GRN statistics end with a reduction over channels: a workgroup per sample shares it;
      // a reduction of the whole tensor is one row, for a workgroup to share.
      return { strategy: 'rows', workgroupSize, lanes: math.kind === 'reduction' && (math.then || math.over === 'all') ? workgroupSize : 1, reduction: 'tree' };
    }
    case 'pixel':
      // Eight threads per pixel, adjacent channels in adjacent threads: their loads are
      // contiguous (a thread per pixel gathers with a stride of C), and a reduction over eight
      // lanes is three barrier steps. Fastest of 1-32 lanes on lavapipe for V2-atto's blocks.
    {
      const lanes = Math.min(8, workgroupSize);
      // Shuffles within a subgroup where the target has fixed-size subgroups: no barriers.
      const reduction: Reduction = subgroupFits(lanes, workgroupSize, target) ? 'subgroup' : 'tree';
      const perThread = Math.ceil(outChannels(node) / lanes);
      if (isDepthwise(node)) {
        // Runs of 4 pixels of a row, whose overlapping windows share loads: V2-atto's twelve
        // 7x7 depthwise + LayerNorm kernels at 224 on lavapipe took 101 ms a pixel each, 42 ms
        // in runs of 4 (the 160- and 320-channel ones 4-5x faster), 92 ms in runs of 2.
        // No longer than a row: compact patches (FCMAE's sparse encoder) are rows of 2 or 1.
        const width = node.type.shape[3] ?? 1;
        const pixels = Math.min(DEPTHWISE_RUN, 2 ** Math.floor(Math.log2(Math.max(1, width))));
        return { strategy: 'pixel', workgroupSize, lanes, registers: perThread <= maxRegisterChannels && pixels * perThread <= maxRunRegisters, reduction, ...(pixels > 1 ? { pixels } : {}) };
      }
      return { strategy: 'pixel', workgroupSize, lanes, registers: perThread <= maxRegisterChannels, reduction };
    }
    case 'window':
      return { strategy: 'window', workgroupSize, stagingFloats: Math.min(2048, Math.floor(target.maxComputeWorkgroupStorageSize / 8)), pixels: WINDOW_PIXELS };
    case 'sample':
      // One workgroup per sample. Slices of the outputs (outputsPerWorkgroup) spread the head's
      // linear layer over the device but pool and normalise again per slice; on lavapipe,
      // V2-tiny's head at batch 1 took 1.6-2.0 ms in 2 or 8 slices against 1.5-2.2 ms in one
      // (timestamp medians of 5-9 runs, within noise), so slices stay for the tuner to try.
      return { strategy: 'sample', workgroupSize };
    case 'contraction': {
      // Pointwise layers as GEMMs with the operands read straight from memory, no workgroup
      // staging: on lavapipe (V2-atto at 224, GPU time of the 36 pointwise kernels) staging
      // 32x32x16 tiles between barriers took 680 ms fused / 640 ms unfused; unstaged 4x8 per
      // thread in 32x64 tiles 334 / 301 ms, 8x8 in 64x64 418 / 185 ms. A GEMM whose prologue
      // (GRN apply) is recomputed by every thread reading an input wants few threads per row:
      // pw2 with GRN took 214 ms at 4x8, 140 ms at 4x16 (32x64 tiles), 298 ms at 8x8; one
      // without wants the most reuse per load (8x8). Staged tiles stay in the space for devices
      // where workgroup memory pays; the tuner measures both. Tiling pays off only when the GEMM
      // fills its tiles; small ones run a thread per output.
      const prologue = (node.fusion?.prologue ?? []).length > 0;
      const gemm: Schedule = target.emulated
        ? emulatedGemm(outChannels(node), target)
        : prologue
          ? { strategy: 'gemm', rows: 32, cols: 64, depth: 1, threadRows: 4, threadCols: 16, unroll: true, vector: 1, stage: false }
          : { strategy: 'gemm', rows: 64, cols: 64, depth: 1, threadRows: 8, threadCols: 8, unroll: true, vector: 1, stage: false };
      if (target.threadWrites === 'own-element') return { strategy: 'direct', workgroupSize };
      if (isGemm(node) && scheduleFits(node, gemm, target)) {
        const math = getOp(node.op).kernel;
        const c = math.kind === 'contraction' ? math.contraction(node.attrs) : undefined;
        const rows = node.type.shape.length === 4 ? node.type.shape[0] * node.type.shape[2] * node.type.shape[3] : node.type.shape[0];
        if (c && rows >= 16 && c.outChannels >= 32 && c.inChannels >= 16) return gemm;
      }
      return { strategy: 'direct', workgroupSize };
    }
  }
}

/**
 * An unstaged GEMM whose workgroup is one band of `rows` rows: every thread takes all of them
 * and `threadCols` adjacent output channels. The row index is then the same for every thread
 * (it depends on the workgroup alone), so on a CPU emulation each input load is one scalar
 * load shared by the subgroup's SIMD lanes, and only the weight loads differ per thread.
 */
export function rowBand(rows: number, cols: number, threadCols: number, vector: 1 | 4 = 1): Extract<Schedule, { strategy: 'gemm' }> {
  return { strategy: 'gemm', rows, cols, depth: 1, threadRows: rows, threadCols, unroll: true, vector, stage: false };
}

/**
 * A row band whose subgroups share their input loads by shuffles (see the `share` field):
 * each of its `rows` lanes loads one row. The default on a CPU emulation with subgroups of
 * `rows` threads where a prologue is folded in (see emulatedGemm).
 */
export function sharedBand(rows: number, cols: number, threadCols: number): Extract<Schedule, { strategy: 'gemm' }> {
  return { ...rowBand(rows, cols, threadCols), share: 'subgroup' };
}

/** Whether a GEMM's subgroups can share its band's rows: one lane per row, whole subgroups. */
function sharesFit(s: Extract<Schedule, { strategy: 'gemm' }>, target: TargetDescription): boolean {
  const size = target.subgroupSize;
  return s.share === 'subgroup' && size !== undefined && target.subgroups && !s.stage && s.vector === 1 && s.rows === s.threadRows && s.rows === size && gemmThreads(s) % size === 0;
}

/** Whether every thread of a GEMM's workgroup computes the same rows. */
export function isRowBand(s: Schedule): boolean {
  return s.strategy === 'gemm' && !s.stage && s.rows === s.threadRows;
}

/**
 * The GEMM default on a CPU emulation: a band of rows, one subgroup a workgroup whose lanes
 * share the band's rows (sharedBand), each lane taking up to 16 output channels. Without
 * fixed-size subgroups, a band of 8 rows, 16 output channels a thread (8 for narrow layers)
 * and at most 8 threads. Measured on lavapipe (subgroups of 8), V1-tiny's pw1 GEMMs at 224
 * (GPU time of the 18): 64x64 tiles of 8x8 a thread 615 ms; bands of 8 rows x 64 channels
 * (8x8 a thread) 543 ms, x 128 channels (8x16) 465 ms, 12 rows x 128 433 ms but twice the
 * shader compile time of 8 rows (400 against 190 ms a kernel); 16 rows (256 registers a
 * thread) 701 ms. Sharing the rows by shuffles then took all 72 of V1-tiny's GEMMs from 1948
 * to 1383 ms (wall-clock sums, scripts/kernel-times.ts), and V2-atto's pw2 with the GRN
 * apply folded in from 187-197 to 45-66 ms: each input element's prologue once a subgroup.
 */
function emulatedGemm(channels: number, target: TargetDescription): Extract<Schedule, { strategy: 'gemm' }> {
  const lanes = target.subgroupSize;
  if (target.subgroups && lanes !== undefined && lanes >= 4 && lanes <= 16) {
    // One subgroup a workgroup, its lanes sharing the band's rows: up to 16 columns a lane.
    const threadCols = Math.min(16, Math.ceil(channels / lanes));
    const shared = sharedBand(lanes, lanes * threadCols, threadCols);
    if (sharesFit(shared, target)) return shared;
  }
  const threadCols = channels >= 128 ? 16 : 8;
  return rowBand(8, Math.min(8 * threadCols, Math.ceil(channels / threadCols) * threadCols), threadCols);
}

/**
 * How many threads of `node`'s kernel under `schedule` read (and so run the prologue on) each
 * input element: a GEMM's threads across the output channels, a thread per output channel
 * for the direct strategy; 1 where a kernel stages or owns its inputs. Row bands on a CPU
 * emulation are no exception: their subgroup's lanes share the input loads, but measured on
 * lavapipe the GRN apply still cost each lane its arithmetic (V2-atto's pw2 with it folded in
 * ran at 0.63x of its unfused parts). A shared band's subgroup computes it once per element.
 */
export function prologueReaders(node: Node, schedule: Schedule): number {
  const channels = outChannels(node);
  switch (schedule.strategy) {
    case 'gemm':
      // A shared band's workgroup computes each input element's prologue once a subgroup.
      if (schedule.share === 'subgroup') return Math.ceil(channels / schedule.cols) * (gemmThreads(schedule) / schedule.rows);
      return Math.ceil(channels / (schedule.stage ? schedule.cols : schedule.threadCols));
    case 'direct':
      return channels;
    default:
      return 1;
  }
}
