// The statements of the generated gpu.js runner's createModel, as TypeScript text that
// runner-frame.ts places into the function with ts-morph. They read the model's tables
// (modelInfo, bufferPlan, stepPlan, kernelFunctions, helperFunctions), declared after them.

/** This file, whose text the cached frame is keyed on. */
export const createModelSourceUrl = import.meta.url;

export const createModelBody = `
const name = modelInfo.name;
const mode = options.mode ?? 'gpu';
// gpu.js settles for another mode than the one asked for without a word (WebAssembly or the
// CPU where WebGL is missing): the kernel kind it chose must be the one asked for.
const chosen = gpu.Kernel?.mode;
if (chosen !== mode) {
  throw new Error(\`\${name}: gpu.js was asked for its \${mode} mode but chose \${chosen === undefined ? 'none' : \`'\${chosen}' (\${gpu.Kernel?.name ?? 'an unknown kernel'})\`}\`);
}
const values = weights instanceof Float32Array ? weights : weights instanceof ArrayBuffer ? new Float32Array(weights) : new Float32Array(weights.buffer, weights.byteOffset, weights.byteLength / 4);
if (values.length !== modelInfo.weightFloats) {
  throw new RangeError(\`\${name}: the weights hold \${values.length} float32 values, the model needs \${modelInfo.weightFloats}\`);
}
// gpu.js keeps a tensor of n values in a texture of about sqrt(n) x sqrt(n) texels
// (its closestSquareDimensions); a side past MAX_TEXTURE_SIZE is refused before any kernel runs.
const maxTexture = gpu.Kernel?.features?.maxTextureSize;
if (mode === 'gpu' && maxTexture !== undefined) {
  for (const buffer of bufferPlan) {
    let high = Math.ceil(Math.sqrt(buffer.floats));
    let low = Math.floor(Math.sqrt(buffer.floats));
    while (high * low < buffer.floats) {
      high--;
      low = Math.ceil(buffer.floats / high);
    }
    const side = Math.max(low, Math.ceil(buffer.floats / low));
    if (side > maxTexture) {
      throw new RangeError(\`\${name}: a tensor of \${buffer.floats} values (\${buffer.role}) needs textures \${side} texels wide, more than this device's MAX_TEXTURE_SIZE (\${maxTexture}); compile the model for a smaller batch or input size\`);
    }
  }
}
for (const helper of helperFunctions) {
  gpu.addFunction(helper.fn, { argumentTypes: Object.fromEntries(helper.parameters.map((p) => [p, 'Number'])), returnType: 'Number' });
}
// Each step is a kernel of its own (gpu.js fixes a kernel's output size), pipelined: its output
// stays a texture for the steps that read it. A kernel reuses its texture on every call, which is
// safe because each buffer's value is read only by the steps before its next writer.
const kernels = stepPlan.map((step) => gpu.createKernel(kernelFunctions[step.kernel], { output: [step.elements], pipeline: true, precision: 'single', tactic: 'precision' }));
const fixed = new Map<number, Float32Array>();
bufferPlan.forEach((buffer, index) => {
  if (buffer.weight === undefined) return;
  const packed = modelInfo.weights.find((w) => w.key === buffer.weight);
  if (packed === undefined) throw new Error(\`\${name}: no packed weight '\${buffer.weight}'\`);
  fixed.set(index, values.subarray(packed.offset, packed.offset + packed.floats));
});
const read = (value: unknown, elements: number): Float32Array => {
  const data = value instanceof Float32Array ? value : (value as { toArray(): Float32Array }).toArray();
  return data.length === elements ? new Float32Array(data) : data.slice(0, elements);
};
let destroyed = false;
return {
  info: modelInfo,
  mode,
  async run(...inputs: ModelInputs): Promise<ModelOutput> {
    if (destroyed) throw new Error(\`\${name}: run() after destroy()\`);
    const given: readonly Float32Array[] = inputs;
    if (given.length !== modelInfo.inputs.length) {
      throw new RangeError(\`\${name}: run() takes \${modelInfo.inputs.length} inputs (\${modelInfo.inputs.map((i) => i.name).join(', ')}), got \${given.length}\`);
    }
    const live = new Map<number, unknown>(fixed);
    modelInfo.inputs.forEach((input, i) => {
      const expected = input.shape.reduce((a, b) => a * b, 1);
      if (!(given[i] instanceof Float32Array) || given[i].length !== expected) {
        throw new RangeError(\`\${name}: input '\${input.name}' must be a Float32Array of \${expected} values (\${JSON.stringify(input.shape)}), got \${given[i] instanceof Float32Array ? given[i].length : typeof given[i]}\`);
      }
      if (input.keeps !== undefined) {
        const kept = given[i].reduce((sum, m) => sum + (m === 0 ? 1 : 0), 0);
        if (kept !== input.keeps) {
          throw new RangeError(\`\${name}: the \${input.name} keeps \${kept} patches, but this runner computes masks keeping \${input.keeps} in all (its model's mask ratio); compile with --dense-mask to run masks of any count\`);
        }
      }
      live.set(input.buffer, given[i]);
    });
    stepPlan.forEach((step, i) => {
      const args = step.reads.map((buffer) => {
        if (!live.has(buffer)) throw new Error(\`\${name}: step \${i} reads buffer \${buffer} before anything wrote it\`);
        return live.get(buffer);
      });
      live.set(step.writes, kernels[i](...args));
    });
    const outputs = modelInfo.outputs.map((o) => [o.name, read(live.get(o.buffer), o.shape.reduce((a, b) => a * b, 1))] as const);
    return (outputs.length === 1 ? outputs[0][1] : Object.fromEntries(outputs)) as ModelOutput;
  },
  destroy(): void {
    if (destroyed) return;
    destroyed = true;
    for (const kernel of kernels) kernel.destroy?.();
  },
};
`;
