// Binding checkpoint tensors to a graph's weights: official names, timm names, and errors.
import { describe, expect, it } from 'vitest';
import { executeReference } from '../../src/backends/reference/executor.js';
import type { HostTensor } from '../../src/ir/types.js';
import { UserError } from '../../src/util/diagnostics.js';
import { applyAliases } from '../../src/weights/aliases.js';
import { bindWeights, shapesCompatible } from '../../src/weights/bind.js';
import { randomWeights } from '../../src/weights/random.js';
import { goldenFiles, goldenGraph, zooGraph } from '../helpers.js';

/** timm's names for the official keys, written out by hand from timm's ConvNeXt module layout. */
function toTimm(key: string): string {
  const rules: [RegExp, string][] = [
    [/^downsample_layers\.0\.(\d)\./, 'stem.$1.'],
    [/^downsample_layers\.(\d)\.(\d)\./, 'stages.$1.downsample.$2.'],
    [/^stages\.(\d+)\.(\d+)\.dwconv\./, 'stages.$1.blocks.$2.conv_dw.'],
    [/^stages\.(\d+)\.(\d+)\.norm\./, 'stages.$1.blocks.$2.norm.'],
    [/^stages\.(\d+)\.(\d+)\.pwconv1\./, 'stages.$1.blocks.$2.mlp.fc1.'],
    [/^stages\.(\d+)\.(\d+)\.pwconv2\./, 'stages.$1.blocks.$2.mlp.fc2.'],
    [/^stages\.(\d+)\.(\d+)\.grn\.gamma$/, 'stages.$1.blocks.$2.mlp.grn.weight'],
    [/^stages\.(\d+)\.(\d+)\.grn\.beta$/, 'stages.$1.blocks.$2.mlp.grn.bias'],
    [/^stages\.(\d+)\.(\d+)\.gamma$/, 'stages.$1.blocks.$2.gamma'],
    [/^norm\./, 'head.norm.'],
    [/^head\./, 'head.fc.'],
  ];
  for (const [pattern, replacement] of rules) if (pattern.test(key)) return key.replace(pattern, replacement);
  throw new Error(`no timm name for ${key}`);
}

function messages(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof UserError) return error.diagnostics.map((d) => d.message);
    throw error;
  }
  throw new Error('expected a UserError');
}

describe('weight binding', () => {
  it.each(['convnextv1-mini', 'convnextv2-mini'])('%s loads under timm names (and timm GRN shapes) with the same result', (name) => {
    const { input, weights, paths } = goldenFiles(name);
    const graph = goldenGraph(name, input);
    const official = executeReference(graph, bindWeights(graph, weights, paths.weights), input);
    const timm = new Map<string, HostTensor>();
    for (const [key, tensor] of weights) {
      // timm stores GRN's gamma and beta as [C] where the official checkpoints use [1, 1, 1, C].
      timm.set(toTimm(key), key.includes('.grn.') ? { shape: [tensor.data.length], data: tensor.data } : tensor);
    }
    expect([...timm.keys()].some((k) => k.includes('.blocks.'))).toBe(true);
    const viaTimm = executeReference(graph, bindWeights(graph, timm, 'timm.safetensors'), input);
    expect(viaTimm.data).toEqual(official.data);
  });

  it('names every missing, extra and mis-shaped tensor with both shapes', () => {
    const { input, weights } = goldenFiles('convnextv2-mini');
    const graph = goldenGraph('convnextv2-mini', input);
    const broken = new Map(weights);
    broken.delete('head.bias');
    broken.set('stages.0.0.dwconv.weight', { shape: [16, 1, 5, 5], data: new Float32Array(16 * 25) });
    broken.set('decoder.pred.weight', { shape: [4, 4], data: new Float32Array(16) });
    const found = messages(() => bindWeights(graph, broken, 'w.safetensors'));
    expect(found).toHaveLength(3);
    expect(found).toContainEqual(expect.stringMatching(/^w\.safetensors: missing tensor 'head\.bias' \(the model expects shape \[10\]\)$/));
    expect(found).toContainEqual(expect.stringMatching(/'stages\.0\.0\.dwconv\.weight' has shape \[16, 1, 5, 5\], but the model expects \[16, 1, 7, 7\]/));
    expect(found).toContainEqual(expect.stringMatching(/unexpected tensor 'decoder\.pred\.weight' \[4, 4\]/));
  });

  it('refuses two tensors for one weight (an official and a timm name)', () => {
    const { input, weights } = goldenFiles('convnextv2-mini');
    const graph = goldenGraph('convnextv2-mini', input);
    const doubled = new Map(weights);
    doubled.set('head.fc.bias', weights.get('head.bias')!);
    expect(messages(() => bindWeights(graph, doubled, 'w'))).toEqual([expect.stringMatching(/'head\.bias' and 'head\.fc\.bias' both give weight 'head\.bias'/)]);
  });

  it('treats shapes as compatible only when they differ by size-1 axes', () => {
    expect(shapesCompatible([1, 1, 1, 8], [8])).toBe(true);
    expect(shapesCompatible([8, 4, 1, 1], [8, 4])).toBe(true);
    expect(shapesCompatible([4, 8], [8, 4])).toBe(false);
    expect(shapesCompatible([2, 8], [16])).toBe(false);
  });

  it('rewrites keys through aliases segment by segment', () => {
    const aliases = [
      { from: 'stages.{i}.blocks.{j}.conv_dw', to: 'stages.{i}.{j}.dwconv' },
      { from: 'head.fc', to: 'head' },
    ];
    expect(applyAliases('stages.2.blocks.10.conv_dw.weight', aliases)).toBe('stages.2.10.dwconv.weight');
    expect(applyAliases('head.fc.bias', aliases)).toBe('head.bias');
    expect(applyAliases('head.bias', aliases)).toBeUndefined();
    expect(applyAliases('stages.2.blocks', aliases)).toBeUndefined();
  });

  it('draws the same random weights for the same seed, different ones for another', () => {
    const graph = zooGraph('convnextv2-atto', { batch: 1, height: 32, width: 32 });
    const a = randomWeights(graph, 7).get('stages.0.0.grn.gamma')!.data;
    const b = randomWeights(graph, 7).get('stages.0.0.grn.gamma')!.data;
    const c = randomWeights(graph, 8).get('stages.0.0.grn.gamma')!.data;
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a.every((v) => v !== 0)).toBe(true);
  });
});
