// What a WebGPU device allows a compute kernel, and what each kernel needs of it. A compiled
// runner is portable by default: its kernels must fit WebGPU's default limits, which every
// conformant device and browser grants, and the runner checks the device it is given before
// creating anything.
import type { KernelSpec } from './program.js';
import type { Schedule } from './schedule.js';

/** The limits a kernel can exceed; names as in GPUSupportedLimits. */
export interface TargetLimits {
  readonly maxComputeWorkgroupStorageSize: number;
  readonly maxComputeInvocationsPerWorkgroup: number;
  readonly maxComputeWorkgroupSizeX: number;
  readonly maxStorageBuffersPerShaderStage: number;
}

/** The WebGPU specification's defaults (the limits a device has unless more are requested). */
export const webgpuDefaultLimits: TargetLimits = {
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxStorageBuffersPerShaderStage: 8,
};

/** What one kernel needs of the device. */
export interface KernelNeeds {
  readonly workgroupStorageBytes: number;
  readonly workgroupSize: number;
  readonly storageBuffers: number;
}

/** Elements of a `name: array<f32, N>` workgroup declaration (N a number or WORKGROUP_SIZE). */
function declarationFloats(declaration: string, schedule: Schedule): number {
  const match = /^\s*\w+\s*:\s*array<f32,\s*(\d+|WORKGROUP_SIZE)\s*>\s*$/.exec(declaration);
  if (!match) throw new Error(`internal: cannot size workgroup variable '${declaration}'`);
  return match[1] === 'WORKGROUP_SIZE' ? schedule.workgroupSize : Number(match[1]);
}

export function kernelNeeds(spec: KernelSpec, schedule: Schedule): KernelNeeds {
  const floats = (spec.cooperative?.workgroupVars ?? []).reduce((sum, d) => sum + declarationFloats(d, schedule), 0);
  return { workgroupStorageBytes: 4 * floats, workgroupSize: schedule.workgroupSize, storageBuffers: spec.bindings.length };
}

/** Each way `needs` exceeds `limits`, as readable text; empty when it fits. */
export function limitViolations(needs: KernelNeeds, limits: TargetLimits): string[] {
  const found: string[] = [];
  if (needs.workgroupStorageBytes > limits.maxComputeWorkgroupStorageSize) {
    found.push(`${needs.workgroupStorageBytes} bytes of workgroup memory (maxComputeWorkgroupStorageSize ${limits.maxComputeWorkgroupStorageSize})`);
  }
  if (needs.workgroupSize > limits.maxComputeInvocationsPerWorkgroup || needs.workgroupSize > limits.maxComputeWorkgroupSizeX) {
    found.push(`${needs.workgroupSize} invocations per workgroup (maxComputeInvocationsPerWorkgroup ${limits.maxComputeInvocationsPerWorkgroup}, maxComputeWorkgroupSizeX ${limits.maxComputeWorkgroupSizeX})`);
  }
  if (needs.storageBuffers > limits.maxStorageBuffersPerShaderStage) {
    found.push(`${needs.storageBuffers} storage buffers (maxStorageBuffersPerShaderStage ${limits.maxStorageBuffersPerShaderStage})`);
  }
  return found;
}
