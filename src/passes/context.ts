// What passes know of where the graph will run: the target description, so that fusion only
// makes kernels the device can run (src/ir itself knows no target limits).
import { webgpuDefaultTarget, type TargetDescription } from '../kernel/target.js';

/** What passes know of where the graph will run. */
export interface PassContext {
  /** The device the kernels are for: fusion makes only kernels this target can run. */
  readonly target: TargetDescription;
  /**
   * How many patches in all the masks the graph will run with keep visible (FCMAE): sparse
   * regions are compacted to that many. Unset, a patch_mask's own ratio gives it, as the
   * official gen_random_mask keeps int(L * (1 - ratio)) patches of each sample.
   */
  readonly visiblePatches?: number;
}

/** For a portable compiled runner: WebGPU's default limits, which every device grants. */
export const defaultPassContext: PassContext = { target: webgpuDefaultTarget };
