#!/usr/bin/env node
// Compiles, on a machine with nvcc, the CUDA kernels bench/device-check.sh will run, into the
// cache `convc run --backend cuda` and the bench's cuda row look in first (.cache/convc/cuda,
// keyed by a hash of kernels.cu), for a GPU machine without nvcc: carry .cache/convc/cuda there.
// The graphs are built as those commands build them: the default passes fused for the CUDA
// target, f32, the golden cases at their own shapes and the standard set at 224x224.
//   npm run build && node bench/prepare-cuda.mjs
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { loadModel } = await import(join(root, 'dist/cli/model.js'));
const { lowerToCuda } = await import(join(root, 'dist/backends/cuda/lower.js'));
const { cachedCudaImage, cudaCacheDirectory } = await import(join(root, 'dist/backends/cuda/nvcc.js'));
const { cudaTarget } = await import(join(root, 'dist/backends/cuda/target.js'));
const { defaultPipeline } = await import(join(root, 'dist/passes/manager.js'));
const { standardSet } = await import(join(root, 'bench/standard-set.mjs'));

const target = cudaTarget();
const compile = (label, file, model, [batch, , height, width]) => {
  const started = Date.now();
  const { graph } = loadModel(file, { model, size: { batch, height, width }, passes: defaultPipeline, target, note: () => {} });
  cachedCudaImage(lowerToCuda(graph, { precision: 'f32' }));
  console.log(`${label}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
};
const goldens = join(root, 'test/fixtures/golden');
for (const c of JSON.parse(readFileSync(join(goldens, 'manifest.json'), 'utf8')).cases) compile(`golden ${c.name}`, join(goldens, 'cases.cnx'), c.name, c.input_shape);
for (const [model, batch] of standardSet) compile(`${model} batch ${batch}`, join(root, `models/${model}.cnx`), undefined, [batch, 3, 224, 224]);
console.log(`compiled kernels are in ${cudaCacheDirectory()}`);
