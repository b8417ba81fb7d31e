// FCMAE's golden cases (test/reference/make-fcmae-goldens.py) as graphs, weights and inputs.
import fc from 'fast-check';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { elaborate, selectModel } from '../../src/dsl/elaborate.js';
import { loadProgram } from '../../src/dsl/load.js';
import { readNpy } from '../../src/io/npy.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import type { Graph, HostTensor } from '../../src/ir/types.js';
import { denseMasked, pipelines, runPipeline } from '../../src/passes/manager.js';
export { denseMasked } from '../../src/passes/manager.js';
import { repoPath } from '../helpers.js';

export const fcmaeDir = repoPath('test/fixtures/golden-fcmae');

export interface FcmaeCase {
  readonly name: string;
  readonly config: {
    readonly depths: readonly number[];
    readonly dims: readonly number[];
    readonly decoder_embed_dim: number;
    readonly decoder_depth: number;
    readonly in_chans: number;
    readonly patch_size: number;
    readonly img_size: number;
    readonly norm_pix_loss: boolean;
    readonly mask_ratio: number;
  };
  readonly loss: number;
}

export const fcmaeCases: readonly FcmaeCase[] = JSON.parse(readFileSync(join(fcmaeDir, 'manifest.json'), 'utf8')).cases;

export const fcmaeNpy = (name: string, file: string): HostTensor => readNpy(readFileSync(join(fcmaeDir, name, file)), file);
export const fcmaeWeights = (name: string, file = 'weights.safetensors'): Map<string, HostTensor> => readSafetensors(readFileSync(join(fcmaeDir, name, file)), file);

/** The one-line model of a case, as a user would write it. */
export function fcmaeModelLine(c: FcmaeCase): string {
  const k = c.config;
  return (
    `model ${c.name} = FCMAE(depths=[${k.depths.join(', ')}], dims=[${k.dims.join(', ')}], decoder_dim=${k.decoder_embed_dim}, ` +
    `decoder_depth=${k.decoder_depth}, patch=${k.patch_size}, mask_ratio=${k.mask_ratio}, norm_pix_loss=${k.norm_pix_loss}, in_chans=${k.in_chans})`
  );
}

let scratch: string | undefined;

/** A case's graph; by default unfused and dense-masked, so that it runs on any mask. */
export function fcmaeGraph(c: FcmaeCase, batch: number, passes: readonly string[] = denseMasked(pipelines.unfused), size = c.config.img_size): Graph {
  scratch ??= mkdtempSync(join(tmpdir(), 'convc-fcmae-'));
  const file = join(scratch, `${c.name}.cnx`);
  writeFileSync(file, `import "${repoPath('models/fcmae.cnx').replace(/\\/g, '/')}"\n${fcmaeModelLine(c)}\n`);
  const program = loadProgram(file);
  return runPipeline(elaborate(program, selectModel(program, undefined, file), { batch, height: size, width: size }), passes);
}

/**
 * Masks of `patches` values (1 = masked) for properties: every patch visible, a single one
 * visible, or any with at least one visible (the encoder then computes something).
 */
export function randomMasks(patches: number): fc.Arbitrary<number[]> {
  return fc.oneof(
    fc.constant(new Array<number>(patches).fill(0)),
    fc.nat(patches - 1).map((keep) => Array.from({ length: patches }, (_, i) => (i === keep ? 0 : 1))),
    fc.array(fc.integer({ min: 0, max: 1 }), { minLength: patches, maxLength: patches }).filter((m) => m.includes(0)),
  );
}
