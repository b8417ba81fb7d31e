// The part of a kernel's schedule space the tuner searches, and in which order. Pruned by rules
// measured on lavapipe, then sampled with a fixed seed so that two runs try the same schedules:
//   - staged GEMM tiles with more than 16 outputs per thread (threadRows x threadCols > 16)
//     are left out: their unrolled register tiles take 5-35 s each just to compile on
//     lavapipe, and spill on GPUs; unstaged ones (no workgroup memory, far less code per
//     output) compile in well under a second up to 32, the most they are searched with;
//   - workgroups of fewer than 64 threads are left out (32 leaves SIMD lanes idle on every
//     desktop GPU and was never faster on lavapipe), as are GEMM tiles of more than 256 threads
//     (the limit every WebGPU device grants); except, on a CPU emulation, GEMM row bands
//     (every thread on the same rows, see `rowBand`), which are fastest there with a subgroup
//     of threads and may keep up to 192 outputs a thread (16 rows x 16 columns, 256, took
//     minutes to compile);
//   - of what remains, a kernel tries at most `maxCandidates`, in an order shuffled from a seed
//     made of the kernel's key, so the same kernel is searched the same way every time.
import { createHash } from 'node:crypto';
import { isRowBand, scheduleSpace, type Schedule } from '../kernel/schedule.js';
import type { TargetDescription } from '../kernel/target.js';
import type { Node } from '../ir/types.js';
import { seededRandom } from '../weights/random.js';
import { canonicalJson } from './key.js';

/** Most register outputs a GEMM thread may keep (see above), staged, unstaged and row bands. */
export const maxGemmOutputsPerThread = { staged: 16, unstaged: 32, rowBand: 192 } as const;
/** Fewest and most threads a candidate's workgroup may have. */
export const workgroupThreads = { min: 64, max: 256 } as const;
/** Most candidates besides the default a kernel is screened with. */
export const maxCandidates = 40;

/** Whether the tuner considers `schedule` on `target` (the default heuristic's is always considered). */
export function searched(schedule: Schedule, target: TargetDescription): boolean {
  if (schedule.strategy === 'gemm') {
    const threads = (schedule.rows / schedule.threadRows) * (schedule.cols / schedule.threadCols);
    const outputs = schedule.threadRows * schedule.threadCols;
    if (isRowBand(schedule)) return target.emulated && outputs <= maxGemmOutputsPerThread.rowBand && threads <= workgroupThreads.max;
    const most = schedule.stage ? maxGemmOutputsPerThread.staged : maxGemmOutputsPerThread.unstaged;
    return outputs <= most && threads >= workgroupThreads.min && threads <= workgroupThreads.max;
  }
  return schedule.workgroupSize >= workgroupThreads.min && schedule.workgroupSize <= workgroupThreads.max;
}

/**
 * The candidates of `node` on `target` besides the default (`scheduleSpace`'s first), pruned
 * and in the seeded order they are tried; `key` seeds the order.
 */
export function candidateOrder(node: Node, target: TargetDescription, key: string, limit = maxCandidates): Schedule[] {
  const [preferred, ...rest] = scheduleSpace(node, target);
  const wanted = rest.filter((s) => searched(s, target));
  const random = seededRandom(createHash('sha256').update(key).digest().readUInt32LE(0));
  // Fisher-Yates from the seed, then the first `limit`.
  for (let i = wanted.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [wanted[i], wanted[j]] = [wanted[j], wanted[i]];
  }
  const defaultText = canonicalJson(preferred);
  return wanted.filter((s) => canonicalJson(s) !== defaultText).slice(0, limit);
}
