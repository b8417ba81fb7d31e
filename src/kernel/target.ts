// What a device allows a compute kernel (the target description), and what each kernel
// program needs of it. Schedules are chosen and validated against a target: for a portable
// compiled runner, WebGPU's default limits, which every conformant device and browser grants;
// for `convc run` and `bench`, the limits of the device they run on.
import { expandReductions } from './expand.js';
import type { BufferDecl, KernelProgram, StorageType } from './ir.js';

export interface TargetDescription {
  /** For messages and tuning keys: e.g. "WebGPU default limits", or the adapter's description. */
  readonly name: string;
  readonly maxComputeWorkgroupStorageSize: number;
  readonly maxComputeInvocationsPerWorkgroup: number;
  readonly maxComputeWorkgroupSizeX: number;
  readonly maxStorageBuffersPerShaderStage: number;
  readonly maxStorageBufferBindingSize: number;
  /** Whether subgroup operations exist (WebGPU's `subgroups` feature). */
  readonly subgroups: boolean;
  /** The subgroup size where subgroups exist and the size is fixed (adapter's min = max). */
  readonly subgroupSize?: number;
  /** Whether f16 arithmetic and storage exist (WebGPU's `shader-f16`). */
  readonly f16: boolean;
  /**
   * Cost model: how many threads may each recompute a fused elementwise prologue on the same
   * input element before a kernel of its own (one more write and read of the tensor) is the
   * cheaper way. Large on GPUs, where memory traffic dominates and recomputing is nearly free;
   * small on a CPU emulating a GPU (lavapipe, SwiftShader), where arithmetic is what costs.
   */
  readonly prologueRecomputeLimit: number;
  /**
   * Whether the target is a CPU emulating a GPU (lavapipe, SwiftShader): a subgroup's threads
   * are the SIMD lanes of one core, so a value or load that is the same for every thread of a
   * subgroup costs one scalar operation, while loads that differ per thread are gathers.
   */
  readonly emulated: boolean;
  /**
   * What a thread may write. Absent: any elements of its kernel's buffers (a compute shader).
   * 'own-element': exactly one element of its kernel's value, the one numbered by its global
   * thread index (group x workgroup size + local), and nothing else; no workgroup memory,
   * barriers or sums across threads either. That is a fragment shader: gpu.js on WebGL, where
   * a kernel returns the value of the output element it is run for. Schedules then compute an
   * element per thread, and fusions that would need more (a LayerNorm over a kernel's output
   * channels) are not made.
   */
  readonly threadWrites?: 'own-element';
}

/**
 * prologueRecomputeLimit for GPUs, and for CPU emulations: measured on lavapipe, V2 pw2 with
 * its GRN prologue (recomputed by ceil(out channels / 16) threads per element) was level with
 * its unfused parts on V2-atto (3-20 readers) and 0.74x of them on V2-tiny (6-48 readers).
 */
export const recomputeLimits = { gpu: 64, software: 8 } as const;

/** The WebGPU specification's defaults: the limits a device has unless more are requested. */
export const webgpuDefaultTarget: TargetDescription = {
  name: 'WebGPU default limits',
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxStorageBuffersPerShaderStage: 8,
  maxStorageBufferBindingSize: 134217728,
  subgroups: false,
  f16: false,
  // A compiled runner is for GPUs.
  prologueRecomputeLimit: recomputeLimits.gpu,
  emulated: false,
};

/**
 * WebGPU's default limits for a portable runner whose buffers are stored as `storage`: f16
 * storage asks for the shader-f16 feature beyond them (the runner checks the device has it).
 */
export function portableTarget(storage: StorageType): TargetDescription {
  return storage === 'f16' ? { ...webgpuDefaultTarget, name: 'WebGPU default limits with shader-f16', f16: true } : webgpuDefaultTarget;
}

/** The target a WebGPU device is: its limits and features as granted. */
export function targetOfDevice(device: GPUDevice, name: string): TargetDescription {
  const l = device.limits;
  return {
    name,
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    maxStorageBufferBindingSize: Math.min(l.maxStorageBufferBindingSize, l.maxBufferSize),
    subgroups: device.features.has('subgroups'),
    ...(fixedSubgroupSize(device) ? { subgroupSize: fixedSubgroupSize(device) } : {}),
    f16: device.features.has('shader-f16'),
    prologueRecomputeLimit: isSoftware(device) ? recomputeLimits.software : recomputeLimits.gpu,
    emulated: isSoftware(device),
  };
}

/** Whether the device is a CPU emulating a GPU (lavapipe, llvmpipe, SwiftShader). */
function isSoftware(device: GPUDevice): boolean {
  const info = (device as GPUDevice & { readonly adapterInfo?: GPUAdapterInfo }).adapterInfo;
  return info !== undefined && (info.architecture === 'software' || /llvmpipe|lavapipe|swiftshader/i.test(`${info.device} ${info.description}`));
}

function fixedSubgroupSize(device: GPUDevice): number | undefined {
  if (!device.features.has('subgroups')) return undefined;
  // GPUDevice.adapterInfo is recent; without it the size is unknown and subgroups go unused.
  const info = (device as GPUDevice & { readonly adapterInfo?: GPUAdapterInfo }).adapterInfo as (GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number }) | undefined;
  const [lo, hi] = [info?.subgroupMinSize, info?.subgroupMaxSize];
  return lo !== undefined && lo === hi && lo > 0 ? lo : undefined;
}

/** What one kernel needs of the device. */
export interface KernelNeeds {
  readonly workgroupStorageBytes: number;
  readonly workgroupSize: number;
  readonly storageBuffers: number;
  /** Subgroups of exactly this size, for kernels that use subgroup operations. */
  readonly subgroupSize?: number;
  /** Set when a buffer stores f16 (WebGPU's `shader-f16`). */
  readonly f16?: true;
}

/** Read off the program itself (after its reductions are expanded), never estimated apart. */
export function programNeeds(program: KernelProgram): KernelNeeds {
  const expanded = expandReductions(program);
  return {
    workgroupStorageBytes: 4 * expanded.shared.reduce((sum, s) => sum + s.length, 0),
    workgroupSize: program.workgroupSize,
    storageBuffers: program.buffers.length,
    ...(program.subgroupSize !== undefined ? { subgroupSize: program.subgroupSize } : {}),
    ...(program.buffers.some((b) => b.dtype === 'f16') ? { f16: true as const } : {}),
  };
}

/** Bytes a buffer binding of the program holds: its elements at its storage type's size. */
export function bindingBytes(buffer: BufferDecl): number {
  return buffer.length * (buffer.dtype === 'f16' ? 2 : 4);
}

/** The limits a kernel can exceed, as in GPUSupportedLimits. */
export type TargetLimits = Pick<
  TargetDescription,
  'maxComputeWorkgroupStorageSize' | 'maxComputeInvocationsPerWorkgroup' | 'maxComputeWorkgroupSizeX' | 'maxStorageBuffersPerShaderStage'
> & { readonly subgroupSize?: number; readonly f16?: boolean };

/** Each way `needs` exceeds `limits`, as readable text; empty when it fits. */
export function limitViolations(needs: KernelNeeds, limits: TargetLimits): string[] {
  const found: string[] = [];
  if (needs.workgroupStorageBytes > limits.maxComputeWorkgroupStorageSize) {
    found.push(`${needs.workgroupStorageBytes} bytes of workgroup memory (maxComputeWorkgroupStorageSize ${limits.maxComputeWorkgroupStorageSize})`);
  }
  if (needs.workgroupSize > limits.maxComputeInvocationsPerWorkgroup || needs.workgroupSize > limits.maxComputeWorkgroupSizeX) {
    found.push(
      `${needs.workgroupSize} invocations per workgroup (maxComputeInvocationsPerWorkgroup ${limits.maxComputeInvocationsPerWorkgroup}, maxComputeWorkgroupSizeX ${limits.maxComputeWorkgroupSizeX})`,
    );
  }
  if (needs.subgroupSize !== undefined && needs.subgroupSize !== limits.subgroupSize) {
    found.push(`subgroups of ${needs.subgroupSize} threads (the target's are ${limits.subgroupSize === undefined ? 'unknown or absent' : limits.subgroupSize})`);
  }
  if (needs.f16 && limits.f16 !== true) found.push('f16 storage (the shader-f16 feature)');
  if (needs.storageBuffers > limits.maxStorageBuffersPerShaderStage) {
    found.push(`${needs.storageBuffers} storage buffers (maxStorageBuffersPerShaderStage ${limits.maxStorageBuffersPerShaderStage})`);
  }
  return found;
}
