// How kernels map onto the GPU: workgroup size and the dispatch grid. Kept apart from the
// kernels' math (program.ts, kernels/) so tuning never touches correctness.

export interface GemmTiling {
  /** Output rows and columns one workgroup computes, and the depth of one step over K. */
  readonly rows: number;
  readonly cols: number;
  readonly depth: number;
  /** Output rows and columns one thread keeps in registers. */
  readonly threadRows: number;
  readonly threadCols: number;
}

export interface Schedule {
  /** Threads per workgroup (one dimension). For tiled GEMMs it must equal the tiling's threads. */
  readonly workgroupSize: number;
  /** How pointwise layers (GEMMs) are tiled through workgroup memory. */
  readonly gemm: GemmTiling;
  /** The most floats a kernel stages at once in workgroup memory (e.g. a conv's input window). */
  readonly stagingFloats: number;
}

// 32x32 outputs per workgroup, 4x4 per thread: 64 threads, and each input and weight value
// loaded into workgroup memory is used 32 times instead of once.
// Staging 2048 floats (8 KiB) leaves room under WebGPU's default 16 KiB of workgroup memory.
export const defaultSchedule: Schedule = { workgroupSize: 64, gemm: { rows: 32, cols: 32, depth: 16, threadRows: 4, threadCols: 4 }, stagingFloats: 2048 };

/** WebGPU's guaranteed maximum workgroups per grid dimension. */
export const maxWorkgroupsPerDimension = 65535;

/**
 * A 2-D grid big enough for `invocations` threads: x wraps at the per-dimension limit, so a
 * kernel's linear index is (wg.y * num_workgroups.x + wg.x) * size + local.x.
 */
export function dispatchGrid(invocations: number, schedule: Schedule): [number, number, number] {
  const groups = Math.max(1, Math.ceil(invocations / schedule.workgroupSize));
  if (groups <= maxWorkgroupsPerDimension) return [groups, 1, 1];
  const y = Math.ceil(groups / maxWorkgroupsPerDimension);
  return [Math.ceil(groups / y), y, 1];
}
