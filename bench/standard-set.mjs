// The standard benchmark set: [zoo model, batch], each at 224x224 (bench/standard.mjs runs it,
// bench/prepare-cuda.mjs compiles its CUDA kernels ahead).
export const standardSet = [
  ['convnextv2-atto', 1],
  ['convnextv2-atto', 8],
  ['convnextv2-tiny', 1],
  ['convnextv2-tiny', 8],
  ['convnextv1-tiny', 1],
];
