// The statements of the generated CUDA runner's functions, as TypeScript text that
// runner-frame.ts places into functions with ts-morph: createModel, which calls the CUDA driver
// API (libcuda.so.1) through koffi, and its two helpers. They read the model's tables
// (modelInfo, bufferPlan, dispatchPlan, kernelTargets, kernelBuildCommand), declared after them.

/** This file, whose text the cached frame is keyed on. */
export const createModelSourceUrl = import.meta.url;

// The driver's own names for everything, so an error message can be looked up in CUDA's
// documentation. Handles (CUcontext, CUmodule, CUfunction) are pointers, which koffi 3 gives as
// BigInt; CUdeviceptr is a 64-bit integer, BigInt here too. The unversioned cuMemAlloc,
// cuMemcpy* and cuDevicePrimaryCtxRelease are the legacy 32-bit-pointer entry points kept for old
// binaries; cuda.h maps those names to the _v2 functions, which are the ones to call.
export const createModelBody = `
const name = modelInfo.name;
const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));
// Everything the caller hands over is checked before the driver is touched.
const weightBytes = modelInfo.precision === 'f16' ? 2 : 4;
const [weightStore, weightStart, weightLength] = weights instanceof ArrayBuffer ? [weights, 0, weights.byteLength] : [weights.buffer, weights.byteOffset, weights.byteLength];
if (weightLength !== modelInfo.weightFloats * weightBytes) {
  throw new RangeError(
    \`\${name}: the weights hold \${weightLength} bytes, the model needs \${modelInfo.weightFloats * weightBytes} (\${modelInfo.weightFloats} \${modelInfo.precision} values)\`,
  );
}
const device = options.device ?? 0;
if (!Number.isInteger(device) || device < 0) throw new RangeError(\`\${name}: device must be a CUDA device ordinal (0, 1, ...), not \${device}\`);
let image = options.module ?? readKernelImage();
if (image.byteLength === 0) throw new Error(\`\${name}: the kernel image is empty; it should be kernels.fatbin as nvcc writes it\`);
// The driver reads a fat binary's headers in place, as 8-byte words.
if (image.byteOffset % 8 !== 0) image = new Uint8Array(image);
const koffi = options.koffi ?? (await importKoffi());
const libraryPath = options.library ?? 'libcuda.so.1';
let library: KoffiLibrary;
try {
  library = koffi.load(libraryPath);
} catch (error) {
  throw new Error(
    \`\${name}: cannot load the CUDA driver library \${libraryPath}. This runner needs a machine with an NVIDIA GPU and the NVIDIA driver installed (the driver provides libcuda.so.1; nvidia-smi shows whether it works). koffi: \${messageOf(error)}\`,
  );
}
const declare = (declaration: string): CFunction => {
  try {
    return library.func(declaration);
  } catch (error) {
    throw new Error(\`\${name}: \${libraryPath} is not a CUDA driver this runner can use: \${messageOf(error)}\`);
  }
};
const cuGetErrorName = declare('int cuGetErrorName(int error, _Out_ const char **name)');
const cuInit = declare('int cuInit(unsigned int flags)');
const cuDeviceGet = declare('int cuDeviceGet(_Out_ int *device, int ordinal)');
const cuDeviceGetAttribute = declare('int cuDeviceGetAttribute(_Out_ int *value, int attribute, int device)');
const cuDevicePrimaryCtxRetain = declare('int cuDevicePrimaryCtxRetain(_Out_ void **context, int device)');
const cuDevicePrimaryCtxRelease = declare('int cuDevicePrimaryCtxRelease_v2(int device)');
const cuCtxSetCurrent = declare('int cuCtxSetCurrent(void *context)');
const cuCtxSynchronize = declare('int cuCtxSynchronize()');
const cuModuleLoadData = declare('int cuModuleLoadData(_Out_ void **module, const void *image)');
const cuModuleGetFunction = declare('int cuModuleGetFunction(_Out_ void **function, void *module, const char *name)');
const cuModuleUnload = declare('int cuModuleUnload(void *module)');
const cuMemAlloc = declare('int cuMemAlloc_v2(_Out_ uint64_t *pointer, size_t bytes)');
const cuMemFree = declare('int cuMemFree_v2(uint64_t pointer)');
const cuMemcpyHtoD = declare('int cuMemcpyHtoD_v2(uint64_t destination, const void *source, size_t bytes)');
const cuMemcpyDtoH = declare('int cuMemcpyDtoH_v2(void *destination, uint64_t source, size_t bytes)');
const cuMemsetD8 = declare('int cuMemsetD8_v2(uint64_t destination, unsigned char value, size_t count)');
const cuLaunchKernel = declare(
  'int cuLaunchKernel(void *function, unsigned int gridX, unsigned int gridY, unsigned int gridZ, unsigned int blockX, unsigned int blockY, unsigned int blockZ, unsigned int sharedBytes, void *stream, void **parameters, void **extra)',
);

/** The failure of a driver call as an Error naming the call and the CUresult (CUDA_ERROR_...). */
const failure = (result: unknown, call: string, hint = ''): Error => {
  const named: [unknown] = [null];
  const known = cuGetErrorName(result, named) === 0 && typeof named[0] === 'string';
  return new Error(\`\${name}: \${call} failed: \${known ? named[0] : \`CUresult \${String(result)}\`}\${hint}\`);
};
const check = (result: unknown, call: string, hint = ''): void => {
  if (result !== 0) throw failure(result, call, hint);
};

check(cuInit(0), 'cuInit', ' (nvidia-smi shows whether the driver sees a GPU)');
const deviceOut: [number] = [0];
check(cuDeviceGet(deviceOut, device), \`cuDeviceGet (device \${device})\`, ' (nvidia-smi lists the devices; CUDA_VISIBLE_DEVICES hides some)');
const handle = deviceOut[0];
const attribute = (attribute: number, what: string): number => {
  const value: [number] = [0];
  check(cuDeviceGetAttribute(value, attribute, handle), \`cuDeviceGetAttribute (\${what})\`);
  return value[0];
};
// Every kernel and grid must fit this device; say which does not before creating anything.
const maxThreads = attribute(ATTRIBUTE_MAX_THREADS_PER_BLOCK, 'CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK');
const maxShared = attribute(ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, 'CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK');
const maxGrid = [attribute(ATTRIBUTE_MAX_GRID_DIM_X, 'CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X'), attribute(ATTRIBUTE_MAX_GRID_DIM_Y, 'CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y')];
const shortfalls: string[] = [];
for (const kernel of modelInfo.kernels) {
  if (kernel.blockSize > maxThreads) shortfalls.push(\`kernel \${kernel.name} needs \${kernel.blockSize} threads per block (the device allows \${maxThreads})\`);
  if (kernel.sharedBytes > maxShared) shortfalls.push(\`kernel \${kernel.name} needs \${kernel.sharedBytes} bytes of shared memory per block (the device allows \${maxShared})\`);
}
for (const [index, dispatch] of dispatchPlan.entries()) {
  if (dispatch.grid[0] > maxGrid[0] || dispatch.grid[1] > maxGrid[1]) {
    shortfalls.push(\`launch \${index} (\${modelInfo.kernels[dispatch.kernel].name}) needs a grid of \${dispatch.grid.join(' x ')} blocks (the device allows \${maxGrid.join(' x ')})\`);
  }
}
if (shortfalls.length > 0) throw new RangeError(\`\${name}: CUDA device \${device} is too small for the model: \${shortfalls.join('; ')}\`);

// What exists so far, so that a failure part-way, and destroy(), free exactly that.
let context: unknown = null;
let module: unknown = null;
const pointers: bigint[] = [];
let parameterBlock: bigint | undefined;
/** Frees everything created; with \`strict\`, throws the first failure after trying every step. */
const release = (strict: boolean): void => {
  const failures: Error[] = [];
  const attempt = (result: unknown, call: string): void => {
    if (result !== 0) failures.push(failure(result, call));
  };
  if (context !== null) attempt(cuCtxSetCurrent(context), 'cuCtxSetCurrent');
  for (const [index, pointer] of pointers.entries()) attempt(cuMemFree(pointer), \`cuMemFree_v2 (buffer \${index})\`);
  pointers.length = 0;
  if (module !== null) attempt(cuModuleUnload(module), 'cuModuleUnload');
  module = null;
  if (parameterBlock !== undefined) koffi.free(parameterBlock);
  parameterBlock = undefined;
  if (context !== null) attempt(cuDevicePrimaryCtxRelease(handle), \`cuDevicePrimaryCtxRelease_v2 (device \${device})\`);
  context = null;
  // The library stays loaded: the driver's threads outlive a context, and dlopen counts references anyway.
  if (strict && failures.length > 0) throw failures[0];
};

const functions: unknown[] = [];
const bytesOf = (plan: (typeof bufferPlan)[number]): number => plan.floats * (plan.dtype === 'f16' ? 2 : 4);
// Weights are copied as bytes, so a view at any offset into the caller's buffer will do.
const bytesAt = (offset: number, length: number): Uint8Array => new Uint8Array(weightStore, weightStart + offset, length);
let launches: { readonly function: unknown; readonly parameters: readonly bigint[] }[];
try {
  const contextOut: [unknown] = [null];
  check(cuDevicePrimaryCtxRetain(contextOut, handle), \`cuDevicePrimaryCtxRetain (device \${device})\`);
  context = contextOut[0];
  check(cuCtxSetCurrent(context), 'cuCtxSetCurrent');
  const moduleOut: [unknown] = [null];
  const loaded = cuModuleLoadData(moduleOut, image);
  // No code for this GPU (209), or PTX newer than the driver (218, 222): say what the image holds.
  const mismatch = loaded === 209 || loaded === 218 || loaded === 222;
  check(
    loaded,
    'cuModuleLoadData (the kernels)',
    mismatch ? \` (the kernels were compiled for \${kernelTargets}; this GPU is not among them, or the driver is older than the PTX)\` : loaded === 200 ? ' (not a kernel image: kernels.fatbin as nvcc builds it from kernels.cu)' : '',
  );
  module = moduleOut[0];
  for (const kernel of modelInfo.kernels) {
    const functionOut: [unknown] = [null];
    check(cuModuleGetFunction(functionOut, module, kernel.name), \`cuModuleGetFunction (kernel \${kernel.name})\`, ' (the kernel image is not this runner\\'s; compile them together)');
    functions.push(functionOut[0]);
  }
  for (const [index, plan] of bufferPlan.entries()) {
    // A zero-byte allocation is an error to the driver; an empty buffer still gets a pointer.
    const bytes = Math.max(4, bytesOf(plan));
    const pointerOut: [unknown] = [0];
    check(cuMemAlloc(pointerOut, bytes), \`cuMemAlloc_v2 (buffer \${index}, \${bytes} bytes)\`);
    pointers.push(BigInt(pointerOut[0] as number | bigint));
  }
  const filled = bufferPlan.map(() => 0);
  for (const weight of modelInfo.weights) {
    const index = bufferPlan.findIndex((plan) => plan.weight === weight.key);
    const bytes = weight.floats * weightBytes;
    check(cuMemcpyHtoD(pointers[index], bytesAt(weight.offset * weightBytes, bytes), bytes), \`cuMemcpyHtoD_v2 (weight '\${weight.key}', \${bytes} bytes)\`);
    filled[index] = bytes;
  }
  // WebGPU hands out zeroed buffers, and the kernels are lowered for both targets (a vector
  // load may read a buffer's padding); cuMemAlloc's memory holds whatever was there, so all
  // that the weights do not fill starts as zeros here too.
  for (const [index, plan] of bufferPlan.entries()) {
    const bytes = Math.max(4, bytesOf(plan)) - filled[index];
    if (bytes > 0) check(cuMemsetD8(pointers[index] + BigInt(filled[index]), 0, bytes), \`cuMemsetD8_v2 (zeroing buffer \${index})\`);
  }
  // cuLaunchKernel takes one pointer per kernel parameter, each to the parameter's value: here a
  // device pointer, 8 bytes, kept in memory of koffi's (not the JS heap, where values move).
  const slots = dispatchPlan.reduce((sum, dispatch) => sum + dispatch.buffers.length, 0);
  const block: unknown = koffi.alloc('uint64_t', Math.max(1, slots));
  if (typeof block !== 'bigint') throw new Error(\`\${name}: koffi gave a pointer as \${typeof block}, not a BigInt; the runner needs koffi 3 or later\`);
  parameterBlock = block;
  let slot = 0;
  launches = dispatchPlan.map((dispatch) => ({
    function: functions[dispatch.kernel],
    parameters: dispatch.buffers.map((buffer) => {
      const offset = 8 * slot++;
      koffi.encode(block, offset, 'uint64_t', pointers[buffer]);
      return block + BigInt(offset);
    }),
  }));
} catch (error) {
  try {
    release(false);
  } catch {
    // The first failure is the one to report.
  }
  throw error;
}

const inputFloats = modelInfo.inputs.map((input) => input.shape.reduce<number>((a, b) => a * b, 1));
const outputFloats = modelInfo.outputs.map((output) => output.shape.reduce<number>((a, b) => a * b, 1));
/** Checks the caller's inputs against the model's and copies them to their buffers. */
const upload = (inputs: readonly Float32Array[]): void => {
  if (inputs.length !== modelInfo.inputs.length) {
    throw new RangeError(\`\${name}: expected \${modelInfo.inputs.length} input(s) (\${modelInfo.inputs.map((input) => input.name).join(', ')}), got \${inputs.length}\`);
  }
  for (const [index, input] of modelInfo.inputs.entries()) {
    const data = inputs[index];
    const shape = \`\${input.shape.length === 4 ? 'NCHW ' : ''}\${JSON.stringify(input.shape)}\`;
    const what = input.name === 'input' ? 'an input' : input.name;
    // The bytes go to the driver as they are: another element type would be read as float32.
    if (!(data instanceof Float32Array)) throw new TypeError(\`\${name}: expected \${what} as a Float32Array (\${shape}), got \${Object.prototype.toString.call(data)}\`);
    if (data.length !== inputFloats[index]) throw new RangeError(\`\${name}: expected \${what} of \${inputFloats[index]} floats (\${shape}), got \${data.length}\`);
    // A compacted sparse region computes exactly this many visible patches.
    const kept = input.keeps === undefined ? undefined : data.reduce((count, value) => (value === 0 ? count + 1 : count), 0);
    if (kept !== undefined && kept !== input.keeps) {
      throw new RangeError(\`\${name}: the \${input.name} keeps \${kept} patches, but this runner computes masks keeping \${input.keeps} in all (its model's mask ratio); compile with --dense-mask to run masks of any count\`);
    }
  }
  for (const [index, input] of modelInfo.inputs.entries()) {
    check(cuMemcpyHtoD(pointers[input.buffer], inputs[index], inputFloats[index] * 4), \`cuMemcpyHtoD_v2 (input \${input.name})\`);
  }
};
/** A model of one output returns it; one of several returns them by name. */
const shaped = (outputs: readonly Float32Array[]): ModelOutput =>
  (modelInfo.outputs.length > 1 ? Object.fromEntries(modelInfo.outputs.map((output, index) => [output.name, outputs[index]])) : outputs[0]) as ModelOutput;
let destroyed = false;
return {
  info: modelInfo,
  async run(...inputs: ModelInputs): Promise<ModelOutput> {
    if (destroyed) throw new Error(\`\${name}: run() after destroy(); create the model again\`);
    // Another model (or library) on this thread may have made its own context current.
    check(cuCtxSetCurrent(context), 'cuCtxSetCurrent');
    upload(inputs);
    for (const [index, launch] of launches.entries()) {
      const dispatch = dispatchPlan[index];
      const kernel = modelInfo.kernels[dispatch.kernel];
      check(
        cuLaunchKernel(launch.function, dispatch.grid[0], dispatch.grid[1], dispatch.grid[2], kernel.blockSize, 1, 1, 0, null, launch.parameters, null),
        \`cuLaunchKernel (launch \${index}, kernel \${kernel.name})\`,
      );
    }
    // Launches are asynchronous: a kernel's own fault is reported here.
    check(cuCtxSynchronize(), 'cuCtxSynchronize (after the forward pass)');
    const results = modelInfo.outputs.map((output, index) => {
      const values = new Float32Array(outputFloats[index]);
      check(cuMemcpyDtoH(values, pointers[output.buffer], values.byteLength), \`cuMemcpyDtoH_v2 (output \${output.name})\`);
      return values;
    });
    return shaped(results);
  },
  destroy(): void {
    if (destroyed) return;
    destroyed = true;
    release(true);
  },
};`;

/** The default kernel image: kernels.fatbin beside the runner. */
export const readKernelImageBody = `
const url = new URL('./kernels.fatbin', import.meta.url);
try {
  return readFileSync(url);
} catch (error) {
  const path = url.protocol === 'file:' ? fileURLToPath(url) : url.href;
  throw new Error(
    \`\${modelInfo.name}: cannot read the kernels, \${path} (\${error instanceof Error ? error.message : String(error)}); build them from kernels.cu with: \${kernelBuildCommand}; or pass createModel's module option\`,
  );
}`;

/** koffi, imported only when the caller brings none. */
export const importKoffiBody = `
try {
  return (await import('koffi')).default;
} catch (error) {
  throw new Error(
    \`\${modelInfo.name}: the CUDA runner calls the driver through koffi, which did not load (\${error instanceof Error ? error.message : String(error)}); install it (npm install koffi) or pass createModel's koffi option\`,
  );
}`;
