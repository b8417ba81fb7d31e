// A workgroup-wide sum, the one way the WGSL kernels reduce across threads.
//
// The total is broadcast through its own workgroup cell (`reduced[slot]`), written by thread 0
// after the tree and read by every thread after a further barrier, rather than read by all
// threads straight from partial[0]. Mesa 22's llvmpipe behind Dawn's OpenGL ES path gave
// threads outside the first SIMD batch of eight a stale partial[0] in that form (a wrong
// LayerNorm mean and variance, and NaN where the variance came out negative), while Vulkan
// drivers were right; the dedicated cell is correct on both.

/** Workgroup variables a kernel using workgroupSum with `slots` results declares. */
export function reductionVars(slots: number): string[] {
  return ['partial: array<f32, WORKGROUP_SIZE>', `reduced: array<f32, ${slots}>`];
}

/**
 * WGSL lines that sum each thread's `value` over the workgroup into `let into`. Every thread of
 * the workgroup must reach them (they hold barriers); `slot` must differ between the sums of one
 * kernel that can be live at once.
 */
export function workgroupSum(value: string, into: string, slot: number): string[] {
  return [
    `partial[local] = ${value};`,
    'workgroupBarrier();',
    'for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {',
    '  if (local < stride) { partial[local] += partial[local + stride]; }',
    '  workgroupBarrier();',
    '}',
    `if (local == 0u) { reduced[${slot}u] = partial[0]; }`,
    'workgroupBarrier();',
    `let ${into} = reduced[${slot}u];`,
  ];
}
