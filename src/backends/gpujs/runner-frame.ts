// The model-independent part of the generated gpu.js runner: the exported interfaces, the types
// kernel functions are declared with, and createModel (its statements are in
// runner-create-model.ts). Built with ts-morph (TypeScript, and JavaScript by TypeScript's
// transpiler) once and kept in the project cache (runner-frame-cache.ts), like the other runners'.
import { createRequire } from 'node:module';
import type * as TsMorph from 'ts-morph';
import { emitFrame, loadCachedFrame, runnerCacheDirectory, type CachedFrame } from '../runner-frame-cache.js';
import { createModelBody, createModelSourceUrl } from './runner-create-model.js';

const require = createRequire(import.meta.url);

/** Builds the frame with ts-morph (loaded here, on demand: it brings the whole TypeScript compiler). */
export function buildGpuJsRunnerFrame(): CachedFrame {
  const { Project, StructureKind } = require('ts-morph') as typeof TsMorph;
  const project = new Project({ useInMemoryFileSystem: true });
  const file = project.createSourceFile('frame.ts', '', { overwrite: true });
  const readonly = (name: string, type: string, docs?: string, optional = false) => ({ name, type, isReadonly: true, ...(optional ? { hasQuestionToken: true } : {}), ...(docs ? { docs: [docs] } : {}) });
  file.addTypeAliases([
    {
      name: 'KernelInput',
      isExported: true,
      type: '{ readonly [index: number]: number }',
      docs: ["What a kernel function reads: a Float32Array, or in GL mode the texture of an earlier kernel's output, indexed by element."],
    },
    { name: 'GpuJsMode', isExported: true, type: "'gpu' | 'cpu'", docs: ["gpu.js's modes this runner runs in: 'gpu' (any WebGL, headless-gl in Node) or 'cpu' (the kernels as JavaScript)."] },
  ]);
  file.addInterfaces([
    {
      kind: StructureKind.Interface,
      name: 'KernelThis',
      isExported: true,
      docs: ['`this` inside a kernel function: gpu.js runs it once per output element, `thread.x` its index.'],
      properties: [readonly('thread', '{ readonly x: number }')],
    },
    {
      kind: StructureKind.Interface,
      name: 'GpuJsKernel',
      isExported: true,
      docs: ['A kernel gpu.js made: called with its inputs, it returns its output (a texture when pipelined, else a Float32Array).'],
      callSignatures: [{ parameters: [{ name: 'args', type: 'unknown[]', isRestParameter: true }], returnType: 'unknown' }],
      properties: [readonly('destroy', '() => void', undefined, true)],
    },
    {
      kind: StructureKind.Interface,
      name: 'GpuJs',
      isExported: true,
      docs: ["What the runner uses of gpu.js's GPU, declared here so that the runner type-checks with gpu.js's own types or none."],
      properties: [
        readonly('Kernel', '{ readonly mode: string; readonly name: string; readonly features?: { readonly maxTextureSize?: number } | null } | null', 'The kind of kernel gpu.js chose: its mode is "gpu" for every WebGL kind.'),
      ],
      methods: [
        { name: 'addFunction', parameters: [{ name: 'fn', type: '(...args: number[]) => number' }, { name: 'settings', type: 'Readonly<Record<string, unknown>>' }], returnType: 'unknown' },
        { name: 'createKernel', parameters: [{ name: 'fn', type: '(this: KernelThis, ...args: KernelInput[]) => number' }, { name: 'settings', type: 'Readonly<Record<string, unknown>>' }], returnType: 'GpuJsKernel' },
      ],
    },
    {
      kind: StructureKind.Interface,
      name: 'CreateModelOptions',
      isExported: true,
      properties: [readonly('mode', 'GpuJsMode', "The mode the GPU must be in ('gpu' by default); createModel refuses a GPU in any other.", true)],
    },
    {
      kind: StructureKind.Interface,
      name: 'PackedWeightInfo',
      isExported: true,
      docs: ['Where a weight lies in the packed weights file, in float32 values, and how it was rearranged.'],
      properties: [
        readonly('key', 'string'),
        readonly('offset', 'number'),
        readonly('floats', 'number'),
        readonly('layout', 'string'),
        readonly('parts', 'readonly string[]', 'For a group of small weights sharing one buffer: the weights, in order.', true),
      ],
    },
    {
      kind: StructureKind.Interface,
      name: 'TensorInfo',
      isExported: true,
      docs: ['A model input or output: f32, images NCHW.'],
      properties: [
        readonly('name', 'string'),
        readonly('shape', 'readonly number[]'),
        readonly('buffer', 'number'),
        readonly('keeps', 'number', 'For a patch mask of a model computed on visible patches only: how many patches (value 0) its masks keep, in all.', true),
      ],
    },
    {
      kind: StructureKind.Interface,
      name: 'ConvcModel',
      isExported: true,
      properties: [readonly('info', 'typeof modelInfo'), readonly('mode', 'GpuJsMode', 'The mode its kernels run in, as checked.')],
      methods: [
        {
          name: 'run',
          parameters: [{ name: 'inputs', type: 'ModelInputs', isRestParameter: true }],
          returnType: 'Promise<ModelOutput>',
          docs: [
            'One forward pass: the inputs of `info.inputs` in order, float32 (an image NCHW); resolves to the output, or to the outputs by name where there are several. gpu.js computes on this thread: the pass blocks it until the output is read back.',
          ],
        },
        { name: 'destroy', returnType: 'void', docs: ["Frees the model's kernels and their textures; the GPU stays the caller's."] },
      ],
    },
  ]);
  // The model's tables and kernel functions follow the frame; createModel reads them only when
  // called, after the module has been evaluated.
  file.addFunction({
    isExported: true,
    isAsync: true,
    name: 'createModel',
    docs: ["Builds the model's kernels on `gpu` (a gpu.js GPU in the mode options.mode names) with the packed weights (weights.bin)."],
    parameters: [
      { name: 'gpu', type: 'GpuJs' },
      { name: 'weights', type: 'ArrayBuffer | ArrayBufferView' },
      { name: 'options', type: 'CreateModelOptions', initializer: '{}' },
    ],
    returnType: 'Promise<ConvcModel>',
    statements: createModelBody.trim(),
  });
  return emitFrame(project, file);
}

/** The frame, from the cache in `cacheDir` when it holds this version's, else built (and cached). */
export function loadGpuJsRunnerFrame(cacheDir: string = runnerCacheDirectory()): CachedFrame {
  return loadCachedFrame('gpujs-runner-frame', [import.meta.url, createModelSourceUrl], buildGpuJsRunnerFrame, cacheDir);
}

let frameOfProcess: CachedFrame | undefined;

/** The frame, loaded once a process. */
export function gpuJsRunnerFrame(): CachedFrame {
  frameOfProcess ??= loadGpuJsRunnerFrame();
  return frameOfProcess;
}
