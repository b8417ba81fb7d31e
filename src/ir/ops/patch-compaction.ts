// FCMAE's sparse encoder computed on visible patches only: a sparse region's values are held
// compacted, one "sample" per visible patch ([V, C, h, w], h x w the sites a patch covers at
// that resolution), so every kernel of the region does work in proportion to the visible
// fraction. These ops move values in and out of that form; the compact-sparse-regions pass
// places them. The mask is [N, rows, cols] (patch_mask, 1 = masked); patches are numbered
// p = (n * rows + row) * cols + col, and visible ones get slots 0..V-1 in that order.
import type { Expr } from '../../kernel/ir.js';
import { add, and, cast, div, eq, f32, ge, gt, lt, max, min, mul, rem, select, sub, u32 } from '../../kernel/build.js';
import { expectRank, intAttr, pairAttr, ShapeError, type OpDef } from '../op.js';
import { formatShape, type HostTensor } from '../types.js';

/** The patch and site within it of compact coordinates: p -> (n, row, col). */
function patchOf(p: Expr, rows: number, cols: number): readonly [Expr, Expr, Expr] {
  const perSample = u32(rows * cols);
  const l = rem(p, perSample);
  return [div(p, perSample), div(l, u32(cols)), rem(l, u32(cols))];
}

/** A visible-patch number read from an f32 table, kept within the table's patches. */
const patchIndex = (value: Expr, patches: number): Expr => min(cast('u32', value), u32(patches - 1));

/** slots[p]: the patch's slot among the visible patches, -1 where it is masked. */
export const patchSlots: OpDef = {
  name: 'patch_slots',
  summary: 'each patch of a patch mask: its slot among the visible patches, or -1',
  kind: 'opaque',
  holdsIndices: true,
  arity: 1,
  callable: false,
  attrs: [],
  params: () => [],
  infer([mask]) {
    expectRank(mask, 3, 'patch_slots');
    return { shape: mask.shape, dtype: 'f32' };
  },
  macs: () => 0,
  kernel: {
    kind: 'gather',
    value: (at) => {
      // Patches are few (N x rows x cols), so each slot counts the visible patches before it.
      const [n, row, col] = at.coords;
      const shape = at.shapes[0];
      const [, rows, cols] = shape;
      const self = add(mul(add(mul(n, u32(rows)), row), u32(cols)), col);
      const visibleBefore = at.sum(shape[0] * rows * cols, (i) => {
        const [pn, pr, pc] = patchOf(i, rows, cols);
        return select(lt(i, self), sub(f32(1), at.read(0, [pn, pr, pc])), f32(0));
      });
      return select(gt(at.read(0, [n, row, col]), f32(0.5)), f32(-1), visibleBefore);
    },
  },
  evaluate([mask]) {
    const slots = new Float32Array(mask.data.length);
    let next = 0;
    for (let p = 0; p < slots.length; p++) slots[p] = mask.data[p] === 0 ? next++ : -1;
    return slots;
  },
};

/** visible[v]: the patch in slot v (the inverse of patch_slots), for `count` visible patches. */
export const visiblePatches: OpDef = {
  name: 'visible_patches',
  summary: 'the patch number in each slot of the visible patches',
  kind: 'opaque',
  holdsIndices: true,
  arity: 1,
  callable: false,
  attrs: [{ name: 'count', type: 'int', doc: 'visible patches in the batch' }],
  params: () => [],
  infer([slots], attrs) {
    expectRank(slots, 3, 'visible_patches');
    const count = intAttr(attrs, 'count');
    const patches = slots.shape[0] * slots.shape[1] * slots.shape[2];
    if (count < 1 || count > patches) throw new ShapeError(`visible_patches: ${count} visible patches of ${patches}`);
    return { shape: [count], dtype: 'f32' };
  },
  macs: () => 0,
  kernel: {
    kind: 'gather',
    value: (at) => {
      const [v] = at.coords;
      const [n, rows, cols] = at.shapes[0];
      return at.sum(n * rows * cols, (i) => {
        const [pn, pr, pc] = patchOf(i, rows, cols);
        return select(eq(at.read(0, [pn, pr, pc]), cast('f32', v)), cast('f32', i), f32(0));
      });
    },
  },
  evaluate([slots], _weights, attrs) {
    const visible = new Float32Array(intAttr(attrs, 'count'));
    const kept = slots.data.reduce((n, slot) => (slot >= 0 ? n + 1 : n), 0);
    if (kept !== visible.length) throw new Error(`the mask keeps ${kept} patches, but the graph was compacted for masks keeping ${visible.length} (PassContext.visiblePatches)`);
    slots.data.forEach((slot, p) => {
      if (slot >= 0 && slot < visible.length) visible[slot] = p;
    });
    return visible;
  },
};

function expectTable(visible: { shape: readonly number[] }, what: string): void {
  if (visible.shape.length !== 1) throw new ShapeError(`${what} needs a list of visible patches, got ${formatShape(visible.shape)}`);
}

/** out[v, c, i, j] = x[n, c, row * h + i, col * w + j] for the patch (n, row, col) in slot v. */
export const gatherPatches: OpDef = {
  name: 'gather_patches',
  summary: 'the visible patches of a value, one compact sample each',
  kind: 'opaque',
  arity: 2,
  callable: false,
  attrs: [{ name: 'grid', type: 'int-pair', doc: "the mask's patch rows and columns" }],
  params: () => [],
  infer([x, visible], attrs) {
    expectRank(x, 4, 'gather_patches');
    expectTable(visible, 'gather_patches');
    const [rows, cols] = pairAttr(attrs, 'grid');
    const [, c, h, w] = x.shape;
    if (h % rows !== 0 || w % cols !== 0) throw new ShapeError(`gather_patches: ${h}x${w} does not divide into ${rows}x${cols} patches`);
    return { shape: [visible.shape[0], c, h / rows, w / cols], dtype: x.dtype };
  },
  macs: () => 0,
  kernel: {
    kind: 'gather',
    value: (at, attrs) => {
      const [v, c, i, j] = at.coords;
      const [rows, cols] = pairAttr(attrs, 'grid');
      const [batch] = at.shapes[0];
      const [, , h, w] = at.shape;
      const [n, row, col] = patchOf(patchIndex(at.read(1, [v]), batch * rows * cols), rows, cols);
      return at.read(0, [n, c, add(mul(row, u32(h)), i), add(mul(col, u32(w)), j)]);
    },
  },
  evaluate([x, visible], _weights, attrs, out) {
    const [rows, cols] = pairAttr(attrs, 'grid');
    const [, c, height, width] = x.shape;
    const [count, , h, w] = out.shape;
    const result = new Float32Array(count * c * h * w);
    for (let v = 0; v < count; v++) {
      const p = visible.data[v];
      const [n, row, col] = [Math.floor(p / (rows * cols)), Math.floor((p % (rows * cols)) / cols), p % cols];
      for (let ch = 0; ch < c; ch++)
        for (let i = 0; i < h; i++)
          for (let j = 0; j < w; j++) result[((v * c + ch) * h + i) * w + j] = x.data[((n * c + ch) * height + row * h + i) * width + col * w + j];
    }
    return result;
  },
};

/**
 * A compact value with `halo` sites around each patch, taken from the neighbouring patches
 * where they are visible and zero where they are masked or off the image: what a k x k
 * convolution (padding k/2) over visible sites reads, so it can run unpadded on the result.
 */
export const patchHalo: OpDef = {
  name: 'patch_halo',
  summary: 'each compact patch with a border of its visible neighbours',
  kind: 'opaque',
  arity: 3,
  callable: false,
  attrs: [{ name: 'halo', type: 'int', doc: 'sites added on each side' }],
  params: () => [],
  infer([x, visible, slots], attrs) {
    expectRank(x, 4, 'patch_halo');
    expectTable(visible, 'patch_halo');
    expectRank(slots, 3, 'patch_halo');
    const halo = intAttr(attrs, 'halo');
    if (halo < 0) throw new ShapeError(`patch_halo needs a halo of at least 0, got ${halo}`);
    const [v, c, h, w] = x.shape;
    return { shape: [v, c, h + 2 * halo, w + 2 * halo], dtype: x.dtype };
  },
  macs: () => 0,
  kernel: {
    kind: 'gather',
    value: (at, attrs) => {
      const [v, c, i, j] = at.coords;
      const halo = intAttr(attrs, 'halo');
      const [, , h, w] = at.shapes[0];
      const [batch, rows, cols] = at.shapes[2];
      const [n, row, col] = patchOf(patchIndex(at.read(1, [v]), batch * rows * cols), rows, cols);
      // Image sites shifted by the halo, so they stay unsigned: y + halo, x + halo.
      const ys = add(mul(row, u32(h)), i);
      const xs = add(mul(col, u32(w)), j);
      const inside = and(and(ge(ys, u32(halo)), lt(ys, u32(rows * h + halo))), and(ge(xs, u32(halo)), lt(xs, u32(cols * w + halo))));
      const yIn = min(sub(max(ys, u32(halo)), u32(halo)), u32(rows * h - 1));
      const xIn = min(sub(max(xs, u32(halo)), u32(halo)), u32(cols * w - 1));
      const slot = at.read(2, [n, div(yIn, u32(h)), div(xIn, u32(w))]);
      const value = at.read(0, [patchIndex(slot, at.shapes[0][0]), c, rem(yIn, u32(h)), rem(xIn, u32(w))]);
      return select(and(inside, ge(slot, f32(0))), value, f32(0));
    },
  },
  evaluate([x, visible, slots], _weights, attrs, out) {
    const halo = intAttr(attrs, 'halo');
    const [count, c, h, w] = x.shape;
    const [, rows, cols] = slots.shape;
    const [, , outH, outW] = out.shape;
    const result = new Float32Array(count * c * outH * outW);
    for (let v = 0; v < count; v++) {
      const p = visible.data[v];
      const [n, row, col] = [Math.floor(p / (rows * cols)), Math.floor((p % (rows * cols)) / cols), p % cols];
      for (let i = 0; i < outH; i++) {
        for (let j = 0; j < outW; j++) {
          const [y, xx] = [row * h + i - halo, col * w + j - halo];
          if (y < 0 || xx < 0 || y >= rows * h || xx >= cols * w) continue;
          const slot = slots.data[(n * rows + Math.floor(y / h)) * cols + Math.floor(xx / w)];
          if (slot < 0) continue;
          for (let ch = 0; ch < c; ch++) result[((v * c + ch) * outH + i) * outW + j] = x.data[((slot * c + ch) * h + (y % h)) * w + (xx % w)];
        }
      }
    }
    return result;
  },
};

/** The dense value of a compact one: each visible patch's sites in place, zero at masked patches. */
export const scatterPatches: OpDef = {
  name: 'scatter_patches',
  summary: 'a compact value back in place, zero at masked patches',
  kind: 'opaque',
  arity: 2,
  callable: false,
  attrs: [],
  params: () => [],
  infer([x, slots]) {
    expectRank(x, 4, 'scatter_patches');
    expectRank(slots, 3, 'scatter_patches');
    const [, c, h, w] = x.shape;
    const [n, rows, cols] = slots.shape;
    return { shape: [n, c, rows * h, cols * w], dtype: x.dtype };
  },
  macs: () => 0,
  kernel: {
    kind: 'gather',
    value: (at) => {
      const [n, c, y, x] = at.coords;
      const [count, , h, w] = at.shapes[0];
      const slot = at.read(1, [n, div(y, u32(h)), div(x, u32(w))]);
      const value = at.read(0, [patchIndex(slot, count), c, rem(y, u32(h)), rem(x, u32(w))]);
      return select(ge(slot, f32(0)), value, f32(0));
    },
  },
  evaluate([x, slots], _weights, _attrs, out) {
    const [, c, h, w] = x.shape;
    const [n, , height, width] = out.shape;
    const [, rows, cols] = slots.shape;
    const result = new Float32Array(n * c * height * width);
    for (let b = 0; b < n; b++)
      for (let ch = 0; ch < c; ch++)
        for (let y = 0; y < height; y++)
          for (let xx = 0; xx < width; xx++) {
            const slot = slots.data[(b * rows + Math.floor(y / h)) * cols + Math.floor(xx / w)];
            if (slot >= 0) result[((b * c + ch) * height + y) * width + xx] = x.data[((slot * c + ch) * h + (y % h)) * w + (xx % w)];
          }
    return result;
  },
};

/** Patches a mask keeps in all. */
export function visibleCount(mask: HostTensor): number {
  return mask.data.reduce((count, m) => (m === 0 ? count + 1 : count), 0);
}
