// Checkpoints in another layout, named by `alias ... as LAYOUT`: ConvNeXt V2's FCMAE checkpoint
// stores its sparse encoder's kernels as MinkowskiEngine does. The golden files hold one such
// checkpoint and the same weights after ConvNeXt-V2's own remap to dense layouts
// (test/reference/make-fcmae-goldens.py); both must bind to the same weights.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { elaborate, selectModel } from '../../src/dsl/elaborate.js';
import { loadProgram } from '../../src/dsl/load.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import type { HostTensor } from '../../src/ir/types.js';
import { UserError } from '../../src/util/diagnostics.js';
import { bindWeights } from '../../src/weights/bind.js';
import { weightLayouts } from '../../src/weights/layouts.js';
import { repoPath } from '../helpers.js';

const golden = repoPath('test/fixtures/golden-fcmae/fcmae-mini-normpix');
const sparse = readSafetensors(readFileSync(join(golden, 'weights.safetensors')), 'weights.safetensors');
const dense = readSafetensors(readFileSync(join(golden, 'weights-dense.safetensors')), 'weights-dense.safetensors');
const minkowski = weightLayouts.get('minkowski')!;

// The encoder of that checkpoint (depths [1, 1, 1, 1], dims [8, 8, 16, 16]) under the official
// FCMAE names, with aliases for the MinkowskiEngine layouts and for the remapped names.
const encoder = `
import "${repoPath('models/convnextv2.cnx').replace(/\\/g, '/')}"
family Encoder(depths, dims, in_chans = 3) {
  alias "encoder.stages.{i}.{j}.dwconv.kernel" = "encoder.stages.{i}.{j}.dwconv.weight" as minkowski
  alias "encoder.downsample_layers.{i}.1.kernel" = "encoder.downsample_layers.{i}.1.weight" as minkowski
  alias "encoder.downsample_layers.{i}.0.ln" = "encoder.downsample_layers.{i}.0"
  alias "encoder.stages.{i}.{j}.norm.ln" = "encoder.stages.{i}.{j}.norm"
  alias "encoder.stages.{i}.{j}.pwconv1.linear" = "encoder.stages.{i}.{j}.pwconv1"
  alias "encoder.stages.{i}.{j}.pwconv2.linear" = "encoder.stages.{i}.{j}.pwconv2"
  alias "stages.{i}" = "encoder.stages.{i}"
  alias "downsample_layers.{i}" = "encoder.downsample_layers.{i}"
  input(in_chans)
  encoder {
    for i in 0..len(dims) {
      downsample_layers.{i} {
        if i == 0 {
          0: conv2d(in_chans, dims[0], kernel=4, stride=4)
          1: layernorm(dims[0], eps=1e-6)
        } else {
          0: layernorm(dims[i - 1], eps=1e-6)
          1: conv2d(dims[i - 1], dims[i], kernel=2, stride=2)
        }
      }
      for j in 0..depths[i] {
        stages.{i}.{j}: ConvNeXtV2Block(dims[i])
      }
    }
  }
}
model encoder = Encoder(depths=[1, 1, 1, 1], dims=[8, 8, 16, 16])
`;

const scratch = mkdtempSync(join(tmpdir(), 'convc-layouts-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function encoderGraph(source = encoder) {
  const file = join(scratch, `encoder-${Math.random().toString(36).slice(2)}.cnx`);
  writeFileSync(file, source);
  const program = loadProgram(file);
  return elaborate(program, selectModel(program, undefined, file), { batch: 1, height: 64, width: 64 });
}

const onlyEncoder = (tensors: ReadonlyMap<string, HostTensor>, keep: (key: string) => boolean) => new Map([...tensors].filter(([key]) => keep(key)));
const isEncoder = (key: string) => key.startsWith('encoder.') || key.startsWith('stages.') || key.startsWith('downsample_layers.');

describe('the minkowski layout', () => {
  it('turns each MinkowskiEngine kernel of the checkpoint into the dense weight ConvNeXt-V2’s remap gives', () => {
    let kernels = 0;
    for (const [key, tensor] of sparse) {
      if (!key.endsWith('.kernel')) continue;
      const remapped = dense.get(key.replace(/^encoder\./, '').replace(/\.kernel$/, '.weight'))!;
      expect(minkowski.convert(tensor.shape, tensor.data, remapped.shape), key).toEqual(remapped.data);
      kernels++;
    }
    // Four depthwise kernels ([49, C]) and three downsampling ones ([4, Cin, Cout]).
    expect(kernels).toBe(7);
  });

  it('leaves tensors of other shapes to be bound as stored', () => {
    expect(minkowski.convert([1, 8], new Float32Array(8), [8])).toBeUndefined();
    expect(minkowski.convert([49, 8], new Float32Array(49 * 8), [8, 2, 7, 7])).toBeUndefined();
  });

  it('binds the official FCMAE encoder weights and their remapped dense form to the same weights', () => {
    const graph = encoderGraph();
    const fromSparse = bindWeights(graph, onlyEncoder(sparse, isEncoder), 'weights.safetensors');
    const fromDense = bindWeights(graph, onlyEncoder(dense, isEncoder), 'weights-dense.safetensors');
    expect(fromSparse.size).toBe(graph.params.size);
    for (const [key, tensor] of fromSparse) expect(fromDense.get(key)!.data, key).toEqual(tensor.data);
    // The kernels really were rearranged: read as stored they would differ.
    expect(sparse.get('encoder.stages.0.0.dwconv.kernel')!.data).not.toEqual(fromSparse.get('encoder.stages.0.0.dwconv.weight')!.data);
  });

  it('says when a tensor fits neither as stored nor in the layout', () => {
    const graph = encoderGraph();
    const broken = onlyEncoder(sparse, isEncoder);
    broken.set('encoder.stages.0.0.dwconv.kernel', { shape: [25, 8], data: new Float32Array(25 * 8) });
    let message = '';
    try {
      bindWeights(graph, broken, 'w.safetensors');
    } catch (error) {
      message = (error as UserError).diagnostics.map((d) => d.message).join('\n');
    }
    expect(message).toMatch(
      /tensor 'encoder\.stages\.0\.0\.dwconv\.kernel' \(read as 'encoder\.stages\.0\.0\.dwconv\.weight'\) has shape \[25, 8\], but the model expects \[8, 1, 7, 7\]; read in the minkowski layout \(MinkowskiEngine .*\), it does not fit either/,
    );
  });

  it('is the only layout an alias may name; a misspelt one is a located error with a suggestion', () => {
    const misspelt = encoder.replace('dwconv.weight" as minkowski', 'dwconv.weight" as minkowsky');
    let error: unknown;
    try {
      encoderGraph(misspelt);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UserError);
    const [diagnostic] = (error as UserError).diagnostics;
    expect(diagnostic.message).toBe("unknown weight layout 'minkowsky'; did you mean 'minkowski'?");
    expect(diagnostic.loc).toMatchObject({ line: 4, length: 'minkowsky'.length });
  });
});
