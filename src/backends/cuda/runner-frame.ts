// The model-independent part of the generated CUDA runner: the exported interfaces and
// createModel (its statements are in runner-create-model.ts). Like the WGSL runner's frame it is
// built with ts-morph (TypeScript, and JavaScript by TypeScript's transpiler) once and kept in
// the project cache (runner-frame-cache.ts), since loading the TypeScript compiler costs more
// than compiling a model.
import { createRequire } from 'node:module';
import type * as TsMorph from 'ts-morph';
import { createModelBody, createModelSourceUrl, importKoffiBody, readKernelImageBody } from './runner-create-model.js';
import { emitFrame, loadCachedFrame, runnerCacheDirectory, type CachedFrame } from '../runner-frame-cache.js';

/** The frame in both languages the compile command writes. */
export type CudaRunnerFrame = CachedFrame;

const require = createRequire(import.meta.url);

/** Builds the frame with ts-morph (loaded here, on demand: it brings the whole TypeScript compiler). */
export function buildCudaRunnerFrame(): CudaRunnerFrame {
  const { Project, StructureKind, VariableDeclarationKind } = require('ts-morph') as typeof TsMorph;
  const project = new Project({ useInMemoryFileSystem: true });
  const file = project.createSourceFile('frame.ts', '', { overwrite: true });
  file.addImportDeclarations([
    { moduleSpecifier: 'node:fs', namedImports: ['readFileSync'] },
    { moduleSpecifier: 'node:url', namedImports: ['fileURLToPath'] },
  ]);
  const constant = (name: string, initializer: string, leadingTrivia?: string) => ({
    declarationKind: VariableDeclarationKind.Const,
    declarations: [{ name, initializer }],
    ...(leadingTrivia ? { leadingTrivia } : {}),
  });
  file.addVariableStatements([
    constant('ATTRIBUTE_MAX_THREADS_PER_BLOCK', '1', '// CUdevice_attribute values (cuda.h).\n'),
    constant('ATTRIBUTE_MAX_GRID_DIM_X', '5'),
    constant('ATTRIBUTE_MAX_GRID_DIM_Y', '6'),
    constant('ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK', '8'),
  ]);
  file.addTypeAlias({
    name: 'CFunction',
    type: '(...args: unknown[]) => unknown',
    docs: ['A C function as koffi declares it.'],
  });
  file.addInterfaces([
    {
      kind: StructureKind.Interface,
      name: 'KoffiLibrary',
      isExported: true,
      docs: ['A shared library loaded by koffi: what the runner uses of it.'],
      methods: [{ name: 'func', parameters: [{ name: 'declaration', type: 'string' }], returnType: 'CFunction' }],
    },
    {
      kind: StructureKind.Interface,
      name: 'Koffi',
      isExported: true,
      docs: ["What the runner uses of the koffi module (koffi 3: pointers are BigInt), declared here so that the runner type-checks with koffi's own types or none."],
      methods: [
        { name: 'load', parameters: [{ name: 'path', type: 'string' }], returnType: 'KoffiLibrary' },
        { name: 'alloc', parameters: [{ name: 'type', type: 'string' }, { name: 'length', type: 'number' }], returnType: 'unknown' },
        {
          name: 'encode',
          parameters: [
            { name: 'pointer', type: 'bigint' },
            { name: 'offset', type: 'number' },
            { name: 'type', type: 'string' },
            { name: 'value', type: 'bigint' },
          ],
          returnType: 'void',
        },
        { name: 'free', parameters: [{ name: 'pointer', type: 'bigint' }], returnType: 'void' },
      ],
    },
    {
      kind: StructureKind.Interface,
      name: 'CreateModelOptions',
      isExported: true,
      properties: [
        { name: 'module', type: 'Uint8Array', isReadonly: true, hasQuestionToken: true, docs: ["The kernels as the driver loads them (a fat binary or cubin); by default kernels.fatbin beside this file."] },
        { name: 'library', type: 'string', isReadonly: true, hasQuestionToken: true, docs: ['The CUDA driver library to load; libcuda.so.1 by default.'] },
        { name: 'koffi', type: 'Koffi', isReadonly: true, hasQuestionToken: true, docs: ["The koffi module to call the driver through; by default `await import('koffi')`."] },
        { name: 'device', type: 'number', isReadonly: true, hasQuestionToken: true, docs: ['The CUDA device ordinal; 0 by default.'] },
      ],
    },
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
      name: 'KernelInfo',
      isExported: true,
      docs: ['A kernel of the module: its extern "C" name, threads per block (1-D) and static shared memory.'],
      properties: [
        { name: 'name', type: 'string', isReadonly: true },
        { name: 'blockSize', type: 'number', isReadonly: true },
        { name: 'sharedBytes', type: 'number', isReadonly: true },
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
          docs: [
            'One forward pass: the inputs of `info.inputs` in order, float32 (an image NCHW); resolves to the output, or to the outputs by name where there are several. The driver is called on this thread: the pass blocks it until the GPU is done.',
          ],
        },
        { name: 'destroy', returnType: 'void', docs: ["Frees the model's GPU memory and kernels and releases its hold on the device's primary context."] },
      ],
    },
  ]);
  // The model's tables (modelInfo, bufferPlan, dispatchPlan, kernelTargets, kernelBuildCommand)
  // and the types of its inputs and output (ModelInputs, ModelOutput) follow the frame;
  // createModel reads them only when called, after the module has been evaluated.
  file.addFunction({
    isExported: true,
    isAsync: true,
    name: 'createModel',
    docs: ['Loads the kernels on a CUDA device, allocates the buffers and uploads the packed weights (weights.bin).'],
    parameters: [
      { name: 'weights', type: 'ArrayBuffer | ArrayBufferView' },
      { name: 'options', type: 'CreateModelOptions', initializer: '{}' },
    ],
    returnType: 'Promise<ConvcModel>',
    statements: createModelBody.trim(),
  });
  file.addFunction({ name: 'readKernelImage', returnType: 'Uint8Array', statements: readKernelImageBody.trim() });
  file.addFunction({ name: 'importKoffi', isAsync: true, returnType: 'Promise<Koffi>', statements: importKoffiBody.trim() });
  return emitFrame(project, file);
}

/** The frame, from the cache in `cacheDir` when it holds this version's, else built (and cached). */
export function loadCudaRunnerFrame(cacheDir: string = runnerCacheDirectory()): CudaRunnerFrame {
  // The frame is made of this file and the function bodies' text: either changed, a new frame.
  const sources = [import.meta.url, createModelSourceUrl];
  return loadCachedFrame('cuda-runner-frame', sources, buildCudaRunnerFrame, cacheDir);
}

let frameOfProcess: CudaRunnerFrame | undefined;

/** The frame, loaded once a process. */
export function cudaRunnerFrame(): CudaRunnerFrame {
  frameOfProcess ??= loadCudaRunnerFrame();
  return frameOfProcess;
}
