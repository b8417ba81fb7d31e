// The gpu.js target: kernels as gpu.js kernel functions, which gpu.js compiles to WebGL fragment
// shaders (or runs as JavaScript in its CPU mode). A fragment shader returns the value of the
// one output element it runs for: no workgroup memory, no barriers, no writes elsewhere. The
// target description says so (threadWrites), so schedules compute an element per thread and
// the passes make no fusion that needs more.
import { recomputeLimits, type TargetDescription } from '../../kernel/target.js';

/**
 * Elements a tensor may hold on this target: index arithmetic runs in GLSL floats (gpu.js on
 * WebGL1 has no integers), exact for integers below 2^24; 2^22 leaves the quotients and
 * remainders of the renderer's index division (render.ts) their margin.
 */
export const maxGpuJsElements = 2 ** 22;

export const gpujsTarget: TargetDescription = {
  name: 'gpu.js (WebGL)',
  maxComputeWorkgroupStorageSize: 0,
  // A "workgroup" is only how kernels number their threads: gpu.js runs one per output element.
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  // Each bound tensor is a texture a shader samples: WebGL 1 grants 8 texture units at least.
  maxStorageBuffersPerShaderStage: 8,
  maxStorageBufferBindingSize: 4 * maxGpuJsElements,
  subgroups: false,
  f16: false,
  prologueRecomputeLimit: recomputeLimits.gpu,
  emulated: false,
  threadWrites: 'own-element',
};
