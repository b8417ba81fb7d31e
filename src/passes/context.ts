// What passes know of where the graph will run: the target description, so that fusion only
// makes kernels the device can run (src/ir itself knows no target limits).
import { webgpuDefaultTarget, type TargetDescription } from '../kernel/target.js';

/** What passes know of where the graph will run. */
export interface PassContext {
  /** The device the kernels are for: fusion makes only kernels this target can run. */
  readonly target: TargetDescription;
}

/** For a portable compiled runner: WebGPU's default limits, which every device grants. */
export const defaultPassContext: PassContext = { target: webgpuDefaultTarget };
