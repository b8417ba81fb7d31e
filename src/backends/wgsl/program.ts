// The WGSL backend's program is the target-neutral model program (kernel/model-program.ts) with
// its kernels rendered as WGSL modules.
export type { Dispatch, PackedWeight, ProgramBuffer, ProgramTensor, ShaderModuleSource } from '../../kernel/model-program.js';
export type { ModelProgram as WgslProgram } from '../../kernel/model-program.js';
