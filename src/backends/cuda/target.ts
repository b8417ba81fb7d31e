// The CUDA targets: what a block may use on the GPUs convc compiles for, as a target
// description (kernel/target.ts), so that schedules are chosen and checked against a CUDA GPU's
// limits the way they are against a WebGPU device's. The description's fields carry WebGPU's
// names; here they mean the CUDA limits of the same role.
import { recomputeLimits, type TargetDescription } from '../../kernel/target.js';
import { warpSize } from './render.js';

export type CudaArch = 'sm_80' | 'sm_90';

export interface CudaTarget extends TargetDescription {
  /** The architecture kernels are compiled and checked for; PTX of the newest rides along for JIT. */
  readonly arch: CudaArch;
  /** Registers a thread may use before ptxas spills (255 on every architecture since sm_35). */
  readonly maxRegistersPerThread: number;
  /** Registers a block's threads share: a kernel of R registers runs blocks of at most this / R threads. */
  readonly maxRegistersPerBlock: number;
}

/** The architectures a compiled model carries code for, oldest first. */
export const cudaArchs: readonly CudaArch[] = ['sm_80', 'sm_90'];

/**
 * sm_80 (A100) and sm_90 (H100, H200) alike for convc's kernels: 1024 threads a block and 48 KiB
 * of static shared memory a block (more needs dynamic shared memory and an opt-in per kernel,
 * which the kernels do not use), 64K registers a block, at most 255 a thread, warps of 32.
 */
export function cudaTarget(arch: CudaArch = 'sm_90'): CudaTarget {
  return {
    name: `CUDA ${arch}`,
    arch,
    maxComputeWorkgroupStorageSize: 48 * 1024,
    maxComputeInvocationsPerWorkgroup: 1024,
    maxComputeWorkgroupSizeX: 1024,
    // Kernel parameters hold the bindings: 4 KiB of them, 8 bytes a pointer.
    maxStorageBuffersPerShaderStage: 512,
    // Kernels index in u32 elements; 2 GiB keeps every element index and byte offset in range.
    maxStorageBufferBindingSize: 2 ** 31,
    subgroups: true,
    subgroupSize: warpSize,
    f16: true,
    prologueRecomputeLimit: recomputeLimits.gpu,
    emulated: false,
    maxRegistersPerThread: 255,
    maxRegistersPerBlock: 65536,
  };
}
