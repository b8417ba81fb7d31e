// The runtimes convc is measured against, on the same input and weights: ONNX Runtime's WebGPU
// provider (on the same adapter, as far as it can be made and told to) and its CPU provider.
import type { HostTensor } from '../ir/types.js';

/** What is known of the adapter a configuration ran on. */
export interface ConfigAdapter {
  readonly description: string;
  /**
   * True when the runtime itself was given or reported the adapter; false when it is only
   * inferred (onnxruntime-node's WebGPU provider can do neither), so a reader does not take a
   * guess for a fact.
   */
  readonly verified: boolean;
}

export interface PeerSession {
  readonly adapter: ConfigAdapter;
  /** The input shape the runtime's session declares: fixed, as convc's kernels are specialised. */
  readonly inputShape: readonly (number | string)[];
  run(): Promise<Float32Array>;
  release(): Promise<void>;
}

/** convc's adapter, which a GPU peer must match. */
export interface ConvcAdapter {
  /** AcquiredGpu.adapterInfo: vendor, device, ..., `backend: vulkan; core feature level, via ...`. */
  readonly info: string;
}

export interface Peer {
  readonly name: string;
  readonly describe: string;
  /** Throws, with a message saying why, when the peer cannot run or would run on another adapter. */
  create(model: Uint8Array, input: HostTensor, convc: ConvcAdapter): Promise<PeerSession>;
}

type OrtModule = typeof import('onnxruntime-node');

async function loadOrt(): Promise<OrtModule> {
  try {
    return await import('onnxruntime-node');
  } catch (error) {
    throw new Error(`onnxruntime-node is not installed or does not load here: ${(error as Error).message}`);
  }
}

/** The Dawn backend a core-feature-level request with no backend named gets on this platform. */
function dawnDefaultBackend(): string | undefined {
  return { linux: 'vulkan', win32: 'd3d12', darwin: 'metal' }[process.platform as string];
}

/**
 * Where onnxruntime-node's WebGPU provider will run, compared with convc's adapter. Its Node
 * binding (1.30) rejects a `device` option, passes no Dawn backend or adapter choice through
 * (`extra` session entries such as ep.webgpuexecutionprovider.dawnBackendType are ignored, and
 * that entry knows only D3D12 and Vulkan anyway) and reports no adapter info: ONNX Runtime
 * creates its own Dawn instance inside this process and takes Dawn's default high-performance
 * adapter on the core feature level. So a mismatch that is certain (convc on OpenGL ES, or on
 * another backend than that default) is refused; otherwise the adapter is recorded as unverified.
 */
export function ortWebGpuAdapter(convc: ConvcAdapter): ConfigAdapter {
  // Dawn's backend names; "backend: Dawn's default" (not reported) leaves it unknown.
  const backend = /backend: (vulkan|d3d12|d3d11|metal|opengles|opengl|null)\b/i.exec(convc.info)?.[1]?.toLowerCase();
  const compatibility = /compatibility feature level/.test(convc.info);
  const expected = dawnDefaultBackend();
  if (compatibility || (backend !== undefined && expected !== undefined && backend !== expected)) {
    throw new Error(
      `adapter mismatch, not run: convc runs on ${backend ?? 'an unknown backend'}${compatibility ? ' (compatibility feature level)' : ''}, but onnxruntime-node's WebGPU provider ` +
        `can only take Dawn's default core-feature-level adapter (${expected ?? 'platform default'}) and cannot be given convc's; use --adapter vulkan to compare with it`,
    );
  }
  // In this process the Vulkan loader ORT's Dawn uses sees the drivers convc's adapter was
  // found with: with VK_DRIVER_FILES set (the lavapipe setup) that is the one driver listed.
  const drivers = process.env.VK_DRIVER_FILES ?? process.env.VK_ICD_FILENAMES;
  const where = `Dawn's default high-performance ${expected ?? ''} adapter`.replace('  ', ' ');
  return {
    description: `unverified: onnxruntime-node can neither be given an adapter nor report the one it uses; it takes ${where} in this process${drivers ? `, with the Vulkan loader limited to ${drivers} as convc's was` : ''}`,
    verified: false,
  };
}

function ortPeer(name: string, provider: 'webgpu' | 'cpu', describe: string): Peer {
  return {
    name,
    describe,
    async create(model, input, convc) {
      const adapter: ConfigAdapter = provider === 'webgpu' ? ortWebGpuAdapter(convc) : { description: 'CPU (no WebGPU adapter)', verified: true };
      const ort = await loadOrt();
      const session = await ort.InferenceSession.create(model, { executionProviders: [provider], graphOptimizationLevel: 'all' });
      const metadata = session.inputMetadata[0];
      const inputShape = metadata?.isTensor ? metadata.shape : [];
      if (inputShape.length !== input.shape.length || inputShape.some((dim, i) => dim !== input.shape[i])) {
        await session.release();
        throw new Error(`internal: ONNX Runtime's session takes input [${inputShape.join(', ')}], not the fixed [${input.shape.join(', ')}] convc's kernels are specialised to`);
      }
      const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', input.data, [...input.shape]) };
      const outputName = session.outputNames[0];
      return {
        adapter,
        inputShape,
        async run() {
          const result = await session.run(feeds);
          return result[outputName].data as Float32Array;
        },
        release: () => session.release(),
      };
    },
  };
}

export const peers: readonly Peer[] = [
  ortPeer('ort-webgpu', 'webgpu', "ONNX Runtime's WebGPU provider (Dawn's default adapter; refused where that cannot be convc's)"),
  ortPeer('ort-cpu', 'cpu', "ONNX Runtime's CPU provider"),
];
