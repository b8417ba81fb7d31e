// convc bench's cuda row: the fused graph built for the CUDA target, run through its generated
// CUDA runner, timed in the same shuffled rounds as the WebGPU rows. It is not on the WebGPU
// adapter: the driver itself names the device, and the row says so.
//
// By default (--cuda auto) the row is attempted only where a CUDA driver answers, so that every
// bench on a machine without NVIDIA's driver (CI, laptops, lavapipe) neither pays for nvcc nor
// prints an error row it cannot act on; the JSON still records why there is no row.
import { performance } from 'node:perf_hooks';
import type koffiModule from 'koffi';
import { createCudaModel, type CudaDriverKind } from '../backends/cuda/execute.js';
import { emulatedDriverPath } from '../backends/cuda/emulation/build.js';
import { convcKoffi } from '../backends/cuda/load-runner.js';
import type { WeightMap } from '../backends/reference/executor.js';
import type { Graph } from '../ir/types.js';
import type { ConfigResult } from './bench.js';

/** --cuda: 'auto' runs the row where a CUDA driver answers, 'on' insists, 'off' never runs it. */
export type CudaChoice = 'auto' | 'on' | 'off';
export const cudaChoices: readonly CudaChoice[] = ['auto', 'on', 'off'];

/** What the bench is asked for: the choice and, unless off, the fused graph built for the CUDA target. */
export type CudaRowRequest = { readonly choice: 'off' } | { readonly choice: Exclude<CudaChoice, 'off'>; readonly graph: Graph };

/** The driver's library: NVIDIA's, found as the runner finds it, or convc's emulation (tests). */
function driverLibrary(driver: CudaDriverKind): string {
  return driver === 'cuda' ? 'libcuda.so.1' : emulatedDriverPath();
}

// cuda.h's CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR and _MINOR.
const computeCapabilityMajor = 75;
const computeCapabilityMinor = 76;

/**
 * The device the runner will take (ordinal 0), as the driver names it, e.g. "CUDA device 0:
 * NVIDIA H200, compute capability 9.0, driver 12.4 (libcuda.so.1)". Loading the library and
 * cuInit are what the runner does first anyway, and cost milliseconds. The runner's model
 * reports the model (`info`), not the device, so the bench asks the driver itself. Throws, saying
 * which step failed: no library, no device, or a driver that refuses.
 */
export function probeCudaDevice(driver: CudaDriverKind): string {
  const library = driverLibrary(driver);
  const koffi = convcKoffi() as typeof koffiModule;
  let lib: ReturnType<typeof koffi.load>;
  try {
    lib = koffi.load(library);
  } catch (error) {
    throw new Error(`no CUDA driver (${library}) on this machine: ${(error as Error).message.split('\n')[0]}`);
  }
  const call = (declaration: string) => {
    try {
      return lib.func(declaration);
    } catch (error) {
      throw new Error(`${library} is not a CUDA driver convc can use: ${(error as Error).message.split('\n')[0]}`);
    }
  };
  const cuGetErrorName = call('int cuGetErrorName(int error, _Out_ const char **name)');
  const check = (result: number, what: string) => {
    if (result === 0) return;
    const named: [string | null] = [null];
    const known = cuGetErrorName(result, named) === 0 && typeof named[0] === 'string';
    throw new Error(`the CUDA driver (${library}) answers, but ${what} failed: ${known ? named[0] : `CUresult ${result}`}`);
  };
  check(call('int cuInit(unsigned int flags)')(0), 'cuInit');
  const count: [number] = [0];
  check(call('int cuDeviceGetCount(_Out_ int *count)')(count), 'cuDeviceGetCount');
  if (count[0] < 1) throw new Error(`the CUDA driver (${library}) sees no device (CUDA_VISIBLE_DEVICES may hide them)`);
  const device: [number] = [0];
  check(call('int cuDeviceGet(_Out_ int *device, int ordinal)')(device, 0), 'cuDeviceGet (device 0)');
  const name = Buffer.alloc(256);
  check(call('int cuDeviceGetName(char *name, int length, int device)')(name, name.length, device[0]), 'cuDeviceGetName');
  const attribute = call('int cuDeviceGetAttribute(_Out_ int *value, int attribute, int device)');
  const capability = [computeCapabilityMajor, computeCapabilityMinor].map((which) => {
    const value: [number] = [0];
    check(attribute(value, which, device[0]), 'cuDeviceGetAttribute (compute capability)');
    return value[0];
  });
  const version: [number] = [0];
  check(call('int cuDriverGetVersion(_Out_ int *version)')(version), 'cuDriverGetVersion');
  const deviceName = name.toString('utf8').replace(/\0.*$/s, '');
  // cuDriverGetVersion gives 1000 x major + 10 x minor.
  const driverVersion = `${Math.floor(version[0] / 1000)}.${Math.floor((version[0] % 1000) / 10)}`;
  return `CUDA device 0: ${deviceName}, compute capability ${capability.join('.')}, driver ${driverVersion} (${driver === 'cuda' ? library : "convc's emulated driver, on the CPU"})`;
}

/** The cuda row, set up to be timed: kernels compiled (nvcc, cached) and weights uploaded. */
export interface CudaRunnable {
  readonly run: () => Promise<Float32Array>;
  readonly release: () => void;
  /** The device, as probeCudaDevice names it. */
  readonly device: string;
  readonly setup_ms: number;
  readonly dispatches: number;
}

/**
 * The cuda row of --cuda `row.choice`: ready to time, or its outcome without a timing. Where the
 * driver cannot be used, auto records why (`not_run`, no row), on makes it the row's error; a
 * failure after the driver answered is an error either way. Always f32: the row compares CUDA
 * with WebGPU on the same arithmetic, held to the same bound as convc fused.
 */
export async function cudaRow(
  row: CudaRowRequest,
  weightsFor: (graph: Graph) => WeightMap,
  input: Float32Array,
  driver: CudaDriverKind,
): Promise<CudaRunnable | { readonly outcome: ConfigResult }> {
  if (row.choice === 'off') return { outcome: { not_run: '--cuda off' } };
  let device: string;
  try {
    device = probeCudaDevice(driver);
  } catch (error) {
    const why = (error as Error).message;
    return { outcome: row.choice === 'on' ? { error: why } : { not_run: why } };
  }
  const { graph } = row;
  try {
    const started = performance.now();
    const { program, model } = await createCudaModel(graph, weightsFor(graph), { driver, precision: 'f32' });
    const setup_ms = performance.now() - started;
    return {
      run: async () => {
        const output = await model.run(input);
        if (!(output instanceof Float32Array)) throw new Error(`internal: the CUDA runner of ${graph.name} gave named outputs; the bench compares one`);
        return output;
      },
      release: () => model.destroy(),
      device,
      setup_ms,
      dispatches: program.dispatches.length,
    };
  } catch (error) {
    return { outcome: { error: (error as Error).message, adapter: device } };
  }
}
