// How kernels map onto the GPU: workgroup size and the dispatch grid. Kept apart from the
// kernels' math (program.ts, kernels/) so tuning never touches correctness.

export interface Schedule {
  /** Threads per workgroup (one dimension). */
  readonly workgroupSize: number;
}

export const defaultSchedule: Schedule = { workgroupSize: 64 };

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
