// The runtimes convc is measured against, on the same input and weights: ONNX Runtime's WebGPU
// provider (on the same adapter, through the same driver) and its CPU provider.
import type { HostTensor } from '../ir/types.js';

export interface PeerSession {
  run(): Promise<Float32Array>;
  release(): Promise<void>;
}

export interface Peer {
  readonly name: string;
  readonly describe: string;
  create(model: Uint8Array, input: HostTensor): Promise<PeerSession>;
}

type OrtModule = typeof import('onnxruntime-node');

async function loadOrt(): Promise<OrtModule> {
  try {
    return await import('onnxruntime-node');
  } catch (error) {
    throw new Error(`onnxruntime-node is not installed or does not load here: ${(error as Error).message}`);
  }
}

function ortPeer(name: string, provider: 'webgpu' | 'cpu', describe: string): Peer {
  return {
    name,
    describe,
    async create(model, input) {
      const ort = await loadOrt();
      const session = await ort.InferenceSession.create(model, { executionProviders: [provider], graphOptimizationLevel: 'all' });
      const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', input.data, [...input.shape]) };
      const outputName = session.outputNames[0];
      return {
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
  ortPeer('ort-webgpu', 'webgpu', "ONNX Runtime's WebGPU provider (same adapter)"),
  ortPeer('ort-cpu', 'cpu', "ONNX Runtime's CPU provider"),
];
