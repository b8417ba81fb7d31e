// The model-independent part of the generated runner: the WebGPU flag constants, the exported
// interfaces and createModel. It is built with ts-morph (TypeScript, and JavaScript by
// TypeScript's transpiler), but loading the TypeScript compiler costs several times more than
// compiling a model, so the frame is built once and kept in the project cache
// (.cache/convc/runner-frame-<key>.json, or under $CONVC_CACHE_DIR; runner-frame-cache.ts). The
// key hashes this file and the versions of ts-morph and its TypeScript, so an edit here or an
// upgrade builds a new frame.
import { createRequire } from 'node:module';
import type * as TsMorph from 'ts-morph';
import { emitFrame, loadCachedFrame, runnerCacheDirectory } from '../runner-frame-cache.js';

export { runnerCacheDirectory } from '../runner-frame-cache.js';

/** The frame in both languages the compile command writes. */
export interface RunnerFrame {
  readonly ts: string;
  readonly js: string;
}

const require = createRequire(import.meta.url);

const createModelBody = `
const limits = device.limits;
const bindingLimit = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
// Values are f32, or f16 where the model was compiled with --precision f16 (not the input and output).
const bytesOf = (plan: (typeof bufferPlan)[number], values = plan.floats) => values * (plan.dtype === 'f16' ? 2 : 4);
for (const [index, plan] of bufferPlan.entries()) {
  const bytes = bytesOf(plan);
  if (bytes > bindingLimit) {
    const what = plan.weight !== undefined ? \`weight '\${plan.weight}'\` : \`\${plan.role} buffer \${index}\`;
    throw new RangeError(
      \`\${modelInfo.name}: \${what} needs \${bytes} bytes, more than this device allows in one binding (\${bindingLimit}); compile for a smaller batch or input size\`,
    );
  }
}
// Every kernel must fit this device's compute limits; say which does not before creating anything.
const shortfalls: string[] = [];
for (const source of shaderSources) {
  const { workgroupStorageBytes, workgroupSize, storageBuffers, subgroupSize, f16 } = source.needs;
  if (f16 === true && !device.features.has('shader-f16')) {
    shortfalls.push(\`kernel \${source.name} stores f16 and needs the shader-f16 feature\`);
  }
  if (workgroupStorageBytes > limits.maxComputeWorkgroupStorageSize) {
    shortfalls.push(\`kernel \${source.name} needs \${workgroupStorageBytes} bytes of workgroup memory (maxComputeWorkgroupStorageSize is \${limits.maxComputeWorkgroupStorageSize})\`);
  }
  if (workgroupSize > limits.maxComputeInvocationsPerWorkgroup || workgroupSize > limits.maxComputeWorkgroupSizeX) {
    shortfalls.push(\`kernel \${source.name} needs \${workgroupSize} invocations per workgroup (maxComputeInvocationsPerWorkgroup is \${limits.maxComputeInvocationsPerWorkgroup})\`);
  }
  if (storageBuffers > limits.maxStorageBuffersPerShaderStage) {
    shortfalls.push(\`kernel \${source.name} needs \${storageBuffers} storage buffers (maxStorageBuffersPerShaderStage is \${limits.maxStorageBuffersPerShaderStage})\`);
  }
  // Kernels compiled for one device's subgroups (convc run and bench) need that size exactly.
  const info = (device as GPUDevice & { readonly adapterInfo?: GPUAdapterInfo & { readonly subgroupMinSize?: number; readonly subgroupMaxSize?: number } }).adapterInfo;
  if (subgroupSize !== undefined && (!device.features.has('subgroups') || info?.subgroupMinSize !== subgroupSize || info?.subgroupMaxSize !== subgroupSize)) {
    shortfalls.push(\`kernel \${source.name} needs the subgroups feature with subgroups of exactly \${subgroupSize} threads\`);
  }
}
if (shortfalls.length > 0) {
  throw new RangeError(\`\${modelInfo.name}: this device's limits are too small for the model: \${shortfalls.join('; ')}\`);
}
const weightBytes = modelInfo.precision === 'f16' ? 2 : 4;
const [bytes, byteOffset, byteLength] = weights instanceof ArrayBuffer ? [weights, 0, weights.byteLength] : [weights.buffer, weights.byteOffset, weights.byteLength];
if (byteLength !== modelInfo.weightFloats * weightBytes) {
  throw new RangeError(
    \`\${modelInfo.name}: the weights hold \${byteLength} bytes, the model needs \${modelInfo.weightFloats * weightBytes} (\${modelInfo.weightFloats} \${modelInfo.precision} values)\`,
  );
}
const packed = modelInfo.precision === 'f16' ? new Uint16Array(bytes, byteOffset, byteLength / 2) : new Float32Array(bytes, byteOffset, byteLength / 4);

device.pushErrorScope('validation');
const modules = shaderSources.map((source) => device.createShaderModule({ label: source.name, code: source.code }));
for (const [index, module] of modules.entries()) {
  const info = await module.getCompilationInfo();
  const errors = info.messages.filter((m) => m.type === 'error');
  if (errors.length > 0) {
    throw new Error(\`\${modelInfo.name}: kernel \${shaderSources[index].name} does not compile: \${errors.map((e) => \`\${e.lineNum}:\${e.linePos} \${e.message}\`).join('; ')}\`);
  }
}
const pipelines = await Promise.all(
  modules.map((module, index) =>
    device.createComputePipelineAsync({ label: shaderSources[index].name, layout: 'auto', compute: { module, entryPoint: shaderSources[index].name } }),
  ),
);
const buffers = bufferPlan.map((plan, index) =>
  device.createBuffer({
    label: plan.weight ?? \`\${plan.role} \${index}\`,
    size: Math.max(4, bytesOf(plan)),
    usage: STORAGE | COPY_DST | COPY_SRC,
    mappedAtCreation: plan.weight !== undefined,
  }),
);
for (const weight of modelInfo.weights) {
  const index = bufferPlan.findIndex((plan) => plan.weight === weight.key);
  const range = buffers[index].getMappedRange();
  const part = packed.subarray(weight.offset, weight.offset + weight.floats);
  (modelInfo.precision === 'f16' ? new Uint16Array(range) : new Float32Array(range)).set(part);
  buffers[index].unmap();
}
const bindGroups = dispatchPlan.map((dispatch) =>
  device.createBindGroup({
    layout: pipelines[dispatch.shader].getBindGroupLayout(0),
    entries: dispatch.buffers.map((buffer, binding) => ({ binding, resource: { buffer: buffers[buffer] } })),
  }),
);
// The outputs' own sizes: buffers are rounded up to whole vec4s, outputs are not. One readback
// buffer holds them all, one after another.
const outputBytes = modelInfo.outputs.map((output) => output.shape.reduce<number>((a, b) => a * b, 1) * 4);
const outputOffsets = outputBytes.map((_, index) => outputBytes.slice(0, index).reduce((a, b) => a + b, 0));
const readbackBytes = outputBytes.reduce((a, b) => a + b, 0);
const readback = device.createBuffer({ label: 'readback', size: readbackBytes, usage: MAP_READ | COPY_DST });
const setupError = await device.popErrorScope();
if (setupError) throw new Error(\`\${modelInfo.name}: WebGPU rejected the model: \${setupError.message}\`);

/** The value of an IEEE binary16 bit pattern (for reading f16 buffers back). */
const halfValue = (bits: number): number => {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return exponent === 0 ? sign * mantissa * 2 ** -24 : sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
};
const inputFloats = modelInfo.inputs.map((input) => input.shape.reduce<number>((a, b) => a * b, 1));
/** Checks the caller's inputs against the model's and writes them to their buffers. */
const upload = (inputs: readonly Float32Array[]): void => {
  if (inputs.length !== modelInfo.inputs.length) {
    throw new RangeError(\`\${modelInfo.name}: expected \${modelInfo.inputs.length} input(s) (\${modelInfo.inputs.map((input) => input.name).join(', ')}), got \${inputs.length}\`);
  }
  for (const [index, input] of modelInfo.inputs.entries()) {
    const data = inputs[index];
    if (data.length !== inputFloats[index]) {
      const shape = \`\${input.shape.length === 4 ? 'NCHW ' : ''}\${JSON.stringify(input.shape)}\`;
      throw new RangeError(\`\${modelInfo.name}: expected \${input.name === 'input' ? 'an input' : input.name} of \${inputFloats[index]} floats (\${shape}), got \${data.length}\`);
    }
    // A compacted sparse region computes exactly this many visible patches.
    const kept = input.keeps === undefined ? undefined : data.reduce((count, value) => (value === 0 ? count + 1 : count), 0);
    if (kept !== undefined && kept !== input.keeps) {
      throw new RangeError(\`\${modelInfo.name}: the \${input.name} keeps \${kept} patches, but this runner computes masks keeping \${input.keeps} in all (its model's mask ratio); compile with --dense-mask to run masks of any count\`);
    }
  }
  for (const [index, input] of modelInfo.inputs.entries()) {
    const data = inputs[index];
    device.queue.writeBuffer(buffers[input.buffer], 0, data.buffer, data.byteOffset, data.byteLength);
  }
};
/** A model of one output returns it; one of several returns them by name. */
const shaped = (outputs: readonly Float32Array[]): ModelOutput =>
  (modelInfo.outputs.length > 1 ? Object.fromEntries(modelInfo.outputs.map((output, index) => [output.name, outputs[index]])) : outputs[0]) as ModelOutput;
let running = false;
return {
  info: modelInfo,
  async run(...inputs: ModelInputs): Promise<ModelOutput> {
    if (running) throw new Error(\`\${modelInfo.name}: run() is already in progress; await it before calling again\`);
    running = true;
    try {
      upload(inputs);
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      for (const [index, dispatch] of dispatchPlan.entries()) {
        pass.setPipeline(pipelines[dispatch.shader]);
        pass.setBindGroup(0, bindGroups[index]);
        pass.dispatchWorkgroups(dispatch.workgroups[0], dispatch.workgroups[1], dispatch.workgroups[2]);
      }
      pass.end();
      for (const [index, output] of modelInfo.outputs.entries()) encoder.copyBufferToBuffer(buffers[output.buffer], 0, readback, outputOffsets[index], outputBytes[index]);
      device.queue.submit([encoder.finish()]);
      await readback.mapAsync(MAP_MODE_READ);
      const range = readback.getMappedRange();
      const results = outputBytes.map((bytes, index) => new Float32Array(range.slice(outputOffsets[index], outputOffsets[index] + bytes)));
      readback.unmap();
      return shaped(results);
    } finally {
      running = false;
    }
  },
  async findNonFinite(...inputs: ModelInputs): Promise<NonFiniteReport | null> {
    if (running) throw new Error(\`\${modelInfo.name}: run() is already in progress; await it before calling again\`);
    running = true;
    // One dispatch per submission, each followed by a readback of what it wrote: slow, and only
    // for finding which kernel first produced a NaN or an infinity.
    const probeBytes = Math.max(4, ...dispatchPlan.map((dispatch) => bytesOf(bufferPlan[dispatch.writes[0]], dispatch.writes[1])));
    const probe = device.createBuffer({ label: 'non-finite probe', size: probeBytes, usage: MAP_READ | COPY_DST });
    try {
      upload(inputs);
      for (const [index, dispatch] of dispatchPlan.entries()) {
        const [written, floats] = dispatch.writes;
        const encoder = device.createCommandEncoder();
        const pass = encoder.beginComputePass();
        pass.setPipeline(pipelines[dispatch.shader]);
        pass.setBindGroup(0, bindGroups[index]);
        pass.dispatchWorkgroups(dispatch.workgroups[0], dispatch.workgroups[1], dispatch.workgroups[2]);
        pass.end();
        // Copies must be whole 4-byte words; an odd count of f16 values rounds up into the buffer's padding.
        const size = Math.ceil(bytesOf(bufferPlan[written], floats) / 4) * 4;
        encoder.copyBufferToBuffer(buffers[written], 0, probe, 0, size);
        device.queue.submit([encoder.finish()]);
        await probe.mapAsync(MAP_MODE_READ, 0, size);
        const range = probe.getMappedRange(0, size);
        const values = bufferPlan[written].dtype === 'f16' ? Array.from(new Uint16Array(range, 0, floats), halfValue) : new Float32Array(range);
        const at = values.findIndex((value) => !Number.isFinite(value));
        const report = at < 0 ? null : { dispatch: index, kernel: shaderSources[dispatch.shader].name, covers: dispatch.covers, index: at, value: values[at] };
        probe.unmap();
        if (report) return report;
      }
      return null;
    } finally {
      probe.destroy();
      running = false;
    }
  },
  destroy(): void {
    for (const buffer of buffers) buffer.destroy();
    readback.destroy();
  },
};`;

/** Builds the frame with ts-morph (loaded here, on demand: it brings the whole TypeScript compiler). */
export function buildRunnerFrame(): RunnerFrame {
  const { Project, StructureKind, VariableDeclarationKind } = require('ts-morph') as typeof TsMorph;
  const project = new Project({ useInMemoryFileSystem: true });
  const file = project.createSourceFile('frame.ts', '', { overwrite: true });
  // Numeric flags rather than the GPUBufferUsage globals, which Node hosts may not define.
  file.addVariableStatements([
    { declarationKind: VariableDeclarationKind.Const, declarations: [{ name: 'STORAGE', initializer: '0x80' }], leadingTrivia: '// GPUBufferUsage and GPUMapMode flags (WebGPU spec values).\n' },
    { declarationKind: VariableDeclarationKind.Const, declarations: [{ name: 'COPY_SRC', initializer: '0x04' }] },
    { declarationKind: VariableDeclarationKind.Const, declarations: [{ name: 'COPY_DST', initializer: '0x08' }] },
    { declarationKind: VariableDeclarationKind.Const, declarations: [{ name: 'MAP_READ', initializer: '0x01' }] },
    { declarationKind: VariableDeclarationKind.Const, declarations: [{ name: 'MAP_MODE_READ', initializer: '0x01' }] },
  ]);
  file.addInterfaces([
    {
      kind: StructureKind.Interface,
      name: 'PackedWeightInfo',
      isExported: true,
      docs: ['Where a weight lies in the packed weights file, in values (f32, or f16 per modelInfo.precision), and how it was rearranged.'],
      properties: [
        { name: 'key', type: 'string', isReadonly: true },
        { name: 'offset', type: 'number', isReadonly: true },
        { name: 'floats', type: 'number', isReadonly: true },
        { name: 'layout', type: 'string', isReadonly: true },
        { name: 'parts', type: 'readonly string[]', isReadonly: true, hasQuestionToken: true, docs: ['For a group of small weights sharing one buffer: the weights, in order.'] },
      ],
    },
    {
      kind: StructureKind.Interface,
      name: 'TensorInfo',
      isExported: true,
      docs: ['A model input or output: f32, images NCHW, in a buffer of its own.'],
      properties: [
        { name: 'name', type: 'string', isReadonly: true },
        { name: 'shape', type: 'readonly number[]', isReadonly: true },
        { name: 'buffer', type: 'number', isReadonly: true },
        { name: 'keeps', type: 'number', isReadonly: true, hasQuestionToken: true, docs: ['For a patch mask of a model computed on visible patches only: how many patches (value 0) its masks keep, in all.'] },
      ],
    },
    {
      kind: StructureKind.Interface,
      name: 'ConvcModel',
      isExported: true,
      properties: [{ name: 'info', type: 'typeof modelInfo', isReadonly: true }],
      methods: [
        {
          name: 'run',
          parameters: [{ name: 'inputs', type: 'ModelInputs', isRestParameter: true }],
          returnType: 'Promise<ModelOutput>',
          docs: ['One forward pass: the inputs of `info.inputs` in order, float32 (an image NCHW); resolves to the output, or to the outputs by name where there are several.'],
        },
        {
          name: 'findNonFinite',
          parameters: [{ name: 'inputs', type: 'ModelInputs', isRestParameter: true }],
          returnType: 'Promise<NonFiniteReport | null>',
          docs: ['Runs the forward pass one dispatch at a time and reports the first that wrote a NaN or an infinity (slow; for debugging).'],
        },
        { name: 'destroy', returnType: 'void', docs: ["Frees the model's GPU buffers. The device stays the caller's."] },
      ],
    },
    {
      kind: StructureKind.Interface,
      name: 'NonFiniteReport',
      isExported: true,
      docs: ['The first dispatch of a forward pass that wrote a non-finite value.'],
      properties: [
        { name: 'dispatch', type: 'number', isReadonly: true, docs: ['Its position in the forward pass.'] },
        { name: 'kernel', type: 'string', isReadonly: true },
        { name: 'covers', type: 'string', isReadonly: true, docs: ['The IR nodes it computes.'] },
        { name: 'index', type: 'number', isReadonly: true, docs: ['The first non-finite element of what it wrote (NHWC for activations).'] },
        { name: 'value', type: 'number', isReadonly: true },
      ],
    },
  ]);
  // The model's tables (modelInfo, shaderSources, bufferPlan, dispatchPlan) and the types of its
  // inputs and output (ModelInputs, ModelOutput) follow the frame; createModel reads the tables
  // only when called, after the module has been evaluated.
  file.addFunction({
    isExported: true,
    isAsync: true,
    name: 'createModel',
    docs: ['Creates the kernels and buffers on `device` and uploads the packed weights (weights.bin).'],
    parameters: [
      { name: 'device', type: 'GPUDevice' },
      { name: 'weights', type: 'ArrayBuffer | ArrayBufferView' },
    ],
    returnType: 'Promise<ConvcModel>',
    statements: createModelBody.trim(),
  });
  return emitFrame(project, file);
}

/** The frame, from the cache in `cacheDir` when it holds this version's, else built (and cached). */
export function loadRunnerFrame(cacheDir: string = runnerCacheDirectory()): RunnerFrame {
  return loadCachedFrame('runner-frame', [import.meta.url], buildRunnerFrame, cacheDir);
}

let frameOfProcess: RunnerFrame | undefined;

/** The frame, loaded once a process. */
export function runnerFrame(): RunnerFrame {
  frameOfProcess ??= loadRunnerFrame();
  return frameOfProcess;
}
