// Random ConvNeXt models for property tests, as .cnx source: single blocks of either version
// and small whole networks, with odd widths and inputs that shrink to 1x1 or a little more.
// Each test file picks bounds that keep its runs affordable.
import fc from 'fast-check';
import { repoPath } from './helpers.js';

export interface ModelCase {
  readonly source: string;
  readonly batch: number;
  readonly height: number;
  readonly width: number;
  readonly seed: number;
}

const version = fc.constantFrom('v1', 'v2');

/** One block of either version at any width up to `maxDim`, down to a 1x1 image. */
export function blockCases(bounds: { readonly maxDim: number; readonly maxBatch: number }): fc.Arbitrary<ModelCase> {
  return fc
    .record({ version, dim: fc.integer({ min: 1, max: bounds.maxDim }), batch: fc.integer({ min: 1, max: bounds.maxBatch }), height: fc.integer({ min: 1, max: 9 }), width: fc.integer({ min: 1, max: 9 }), seed: fc.nat(1000) })
    .map(({ version: v, dim, ...rest }) => ({
      ...rest,
      source: `import "${repoPath(`models/convnext${v}.cnx`)}"\nfamily OneBlock(dim) {\n  input(dim)\n  block: ConvNeXt${v.toUpperCase()}Block(dim)\n}\nmodel m = OneBlock(${dim})\n`,
    }));
}

/** A whole network of 1 to `maxStages` stages of widths up to 20; inputs end at 1x1 plus up to `maxExtra`. */
export function networkCases(bounds: { readonly maxStages: number; readonly maxBatch: number; readonly maxExtra: number }): fc.Arbitrary<ModelCase> {
  return fc.integer({ min: 1, max: bounds.maxStages }).chain((stages) =>
    fc
      .record({
        version,
        depths: fc.array(fc.integer({ min: 1, max: 2 }), { minLength: stages, maxLength: stages }),
        dims: fc.array(fc.integer({ min: 1, max: 20 }), { minLength: stages, maxLength: stages }),
        classes: fc.integer({ min: 1, max: 10 }),
        inChans: fc.integer({ min: 1, max: 4 }),
        batch: fc.integer({ min: 1, max: bounds.maxBatch }),
        // The stem divides by 4 and each later stage by 2, so this much input reaches 1x1.
        extraH: fc.integer({ min: 0, max: bounds.maxExtra }),
        extraW: fc.integer({ min: 0, max: bounds.maxExtra }),
        seed: fc.nat(1000),
      })
      .map(({ version: v, depths, dims, classes, inChans, extraH, extraW, ...rest }) => {
        const minimum = 4 * 2 ** (stages - 1);
        return {
          ...rest,
          height: minimum + extraH,
          width: minimum + extraW,
          source: `import "${repoPath(`models/convnext${v}.cnx`)}"\nmodel m = ConvNeXt${v.toUpperCase()}(depths=[${depths}], dims=[${dims}], classes=${classes}, in_chans=${inChans})\n`,
        };
      }),
  );
}
