// A child process of the emulation tests, for launches meant to abort the process (a divergent
// barrier, AddressSanitizer's report). Run as
//   node --import tsx emulation-child.ts '<json>'
// where the JSON names the driver, the kernels object and the launches; each launch gets fresh
// buffers of the given float counts, buffer k holding ((i + k) % 7) at index i. Prints one line
// per launch (`launch <kernel> <CUresult>`), then buffer 0's values if asked.
import { emulatedModuleImage } from '../../../src/backends/cuda/emulation/build.js';
import { deviceBuffer, launch, loadCudaDriver, loadFunction, openContext, readFloats } from './emulated-driver.js';

interface ChildLaunch {
  readonly kernel: string;
  readonly grid: readonly [number, number];
  readonly block: number;
  readonly buffers: readonly number[];
  /** Print this many of buffer 0's values after the launch. */
  readonly read?: number;
}

interface ChildSpec {
  readonly driver: string;
  readonly kernels: string;
  readonly launches: readonly ChildLaunch[];
}

const spec = JSON.parse(process.argv[2]) as ChildSpec;
const cuda = loadCudaDriver(spec.driver);
openContext(cuda);
const { functions } = loadFunction(cuda, emulatedModuleImage(spec.kernels), [...new Set(spec.launches.map((l) => l.kernel))]);
for (const step of spec.launches) {
  const pointers = step.buffers.map((floats, k) => deviceBuffer(cuda, Float32Array.from({ length: floats }, (_, i) => (i + k) % 7)));
  const code = launch(cuda, functions.get(step.kernel), step.grid, step.block, pointers);
  console.log(`launch ${step.kernel} ${code}`);
  if (step.read !== undefined) console.log(`values ${JSON.stringify(Array.from(readFloats(cuda, pointers[0], step.read)))}`);
}
