// Parameter counts and MACs of the 13 zoo variants against the papers' tables (224x224).
import { describe, expect, it } from 'vitest';
import { graphCost } from '../../src/ir/cost.js';
import { zooGraph } from '../helpers.js';

// [variant, params in millions, GMACs] as printed in the ConvNeXt (Liu et al. 2022, table 1 and
// appendix) and ConvNeXt V2 (Woo et al. 2023, table 13) papers.
const published: readonly [string, number, number][] = [
  ['convnextv1-tiny', 28.6, 4.5],
  ['convnextv1-small', 50.2, 8.7],
  ['convnextv1-base', 88.6, 15.4],
  ['convnextv1-large', 197.8, 34.4],
  ['convnextv1-xlarge', 350.2, 60.9],
  ['convnextv2-atto', 3.7, 0.55],
  ['convnextv2-femto', 5.2, 0.78],
  ['convnextv2-pico', 9.1, 1.37],
  ['convnextv2-nano', 15.6, 2.45],
  ['convnextv2-tiny', 28.6, 4.47],
  ['convnextv2-base', 89, 15.4],
  ['convnextv2-large', 198, 34.4],
  ['convnextv2-huge', 660, 115],
];

/** Half a unit in the last printed digit: 4.5 covers [4.45, 4.55]. */
function halfUnit(printed: number): number {
  const decimals = (String(printed).split('.')[1] ?? '').length;
  return 0.5 * 10 ** -decimals;
}

describe('zoo cost at 224x224', () => {
  it.each(published)('%s has %fM params and %fG MACs', (variant, paramsM, gmacs) => {
    const cost = graphCost(zooGraph(variant));
    // The papers round their figures; the MAC counts there (fvcore) also include a little
    // normalisation work that our conv+linear convention leaves out, worth under 0.5%.
    expect(Math.abs(cost.params / 1e6 - paramsM)).toBeLessThanOrEqual(halfUnit(paramsM) + 1e-9);
    expect(Math.abs(cost.macs / 1e9 - gmacs)).toBeLessThanOrEqual(halfUnit(gmacs) + 0.005 * gmacs);
  });
});
