// A patch mask as a graph input (FCMAE): per sample, one value per patch of `patch` x `patch`
// pixels in row-major order, 1 = masked (removed), 0 = visible, as the official
// gen_random_mask makes it. Callers pass it as [N, L]; the graph holds the same values as
// [N, H/patch, W/patch], so ops that read it know the patch grid from its shape. `ratio` is
// the fraction a caller masks when it draws the mask at random (src/io/patch-mask.ts).
import { ShapeError, type OpDef } from '../op.js';

export const patchMask: OpDef = {
  name: 'patch_mask',
  summary: 'a patch mask input, [N, H/patch, W/patch], 1 = masked',
  kind: 'opaque',
  graphInput: 'mask',
  arity: 0,
  callable: true,
  attrs: [
    { name: 'patch', type: 'int', doc: "a patch's side in input pixels" },
    { name: 'ratio', type: 'float', default: 0.6, doc: 'the fraction of patches a random mask removes' },
  ],
  params: () => [],
  infer(_inputs, attrs) {
    const patch = attrs.patch as number;
    const ratio = attrs.ratio as number;
    if (!(patch >= 1)) throw new ShapeError(`patch_mask needs a patch of at least 1 pixel, got ${patch}`);
    if (!(ratio >= 0 && ratio < 1)) throw new ShapeError(`patch_mask's ratio is the fraction of patches removed, from 0 up to (not including) 1; got ${ratio}`);
    const shape = attrs.shape;
    if (!Array.isArray(shape) || shape.length !== 3) throw new Error('internal: patch_mask node without a shape');
    return { shape: [...shape], dtype: 'f32' };
  },
  macs: () => 0,
  kernel: { kind: 'input' },
  evaluate() {
    throw new Error('internal: the executor binds the mask input directly');
  },
};
