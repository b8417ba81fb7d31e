// ONNX lowerings of the patch-compaction ops (src/ir/ops/patch-compaction.ts), which the
// compact-sparse-regions pass places around FCMAE's encoder, in opset 17's standard ops.
//
// The tables (slots, visible patches) stay f32 values as in the IR; a lowering casts them to
// int64 where Gather reads them. Everything fixed by the graph's geometry (which neighbour
// patch and site a halo position reads) is a precomputed int64 table indexed by a patch's place
// in its sample, so the only data-dependent steps are lookups through the mask's tables, and
// the batch axis stays free as in the rest of the export. The count of visible patches V is
// fixed per graph, as in the IR: a file serves masks that keep exactly V patches.
//
// Reads of masked or off-image sites are sent to index 0 (a valid row, V >= 1) and their
// results replaced by 0 with Where, so no runtime's handling of out-of-range indices matters,
// and a non-finite value at row 0 cannot leak through (as it would with a multiply by 0).
import { intAttr, pairAttr } from '../ir/op.js';
import { ints, OnnxDataType, type Lowering, type OnnxGraphBuilder } from './onnx-builder.js';

const toInt64 = { to: { int: OnnxDataType.int64 } } as const;
const toFloat = { to: { int: OnnxDataType.float } } as const;

/** A 0-D int64 constant: CumSum's axis, and the divisor that splits a patch number. */
const int64Scalar = (b: OnnxGraphBuilder, value: number): string => b.table(`const/i64(${value})`, [], [value], 'int64');

/** A slots value [N, rows, cols] as one list [P], patch p's slot at p; made once per value. */
function flatSlots(b: OnnxGraphBuilder, slots: string): string {
  return b.shared(`${slots}/flat`, () => b.step(slots, 'flat', 'Reshape', [slots, b.int64s([-1])]));
}

/** A table of slots (f32, -1 at masked patches) as Gather indices: 0 where masked. */
function slotIndices(b: OnnxGraphBuilder, label: string, slots: string, valid: string): string {
  const kept = b.step(label, 'slot_or_zero', 'Where', [valid, slots, b.scalar('const/zero', 0)]);
  return b.step(label, 'slot_index', 'Cast', [kept], toInt64);
}

/**
 * For each place l = row * cols + col of a patch in its sample and each position (i, j) of
 * its haloed h x w block: the place of the patch holding that site (-1 off the image), and
 * the site's index within that patch. Sites more than one patch away (a halo wider than a
 * patch, as at a stage where patches are 1 x 1 sites) are found alike.
 */
function haloTables(rows: number, cols: number, h: number, w: number, halo: number): { readonly places: number[]; readonly sites: number[] } {
  const places: number[] = [];
  const sites: number[] = [];
  for (let row = 0; row < rows; row++)
    for (let col = 0; col < cols; col++)
      for (let i = 0; i < h + 2 * halo; i++)
        for (let j = 0; j < w + 2 * halo; j++) {
          const [y, x] = [row * h + i - halo, col * w + j - halo];
          const inside = y >= 0 && x >= 0 && y < rows * h && x < cols * w;
          places.push(inside ? Math.floor(y / h) * cols + Math.floor(x / w) : -1);
          sites.push(inside ? (y % h) * w + (x % w) : 0);
        }
  return { places, sites };
}

export const compactionLowerings: Readonly<Record<string, Lowering>> = {
  patch_slots(b, node, [mask], out, label) {
    // A visible patch's slot is the count of visible patches up to and including it, less
    // one: an inclusive CumSum over the batch's patches in order. Counts stay far below
    // 2^24, so f32 holds them exactly.
    const [, rows, cols] = node.type.shape;
    const flat = b.step(label, 'mask_flat', 'Reshape', [mask, b.int64s([-1])]);
    const visible = b.step(label, 'visible', 'Equal', [flat, b.scalar('const/zero', 0)]);
    const counts = b.step(label, 'visible_f32', 'Cast', [visible], toFloat);
    const upTo = b.step(label, 'visible_up_to', 'CumSum', [counts, int64Scalar(b, 0)]);
    const slot = b.step(label, 'slot', 'Sub', [upTo, b.scalar('const/one', 1)]);
    const slots = b.step(label, 'slots_flat', 'Where', [visible, slot, b.scalar('const/minus_one', -1)]);
    b.op('Reshape', label, [slots, b.int64s([-1, rows, cols])], out);
  },

  visible_patches(b, node, [slots], out, label) {
    // Slot v's patch is the first (only) p with slots[p] == v: ArgMax over a [V, P] match
    // table. NonZero would find the visible patches too, but with a data-dependent shape; V is
    // the graph's. A slot no patch holds (a mask keeping fewer than V) reads patch 0, as the
    // reference leaves it.
    const count = intAttr(node.attrs, 'count');
    const row = b.step(label, 'slots_row', 'Reshape', [flatSlots(b, slots), b.int64s([1, -1])]);
    const numbers = b.table(`const/slot_numbers[${count}]`, [count, 1], Array.from({ length: count }, (_, v) => v), 'float');
    const matches = b.step(label, 'matches', 'Equal', [row, numbers]);
    const matchesF = b.step(label, 'matches_f32', 'Cast', [matches], toFloat);
    const patch = b.step(label, 'patch', 'ArgMax', [matchesF], { axis: { int: 1 }, keepdims: { int: 0 } });
    b.op('Cast', label, [patch], out, toFloat);
  },

  gather_patches(b, node, [x, visible], out, label) {
    // x [N, C, rows*h, cols*w] as one sample per patch [P, C, h, w], in patch order (n, row,
    // col), then the visible ones picked by number.
    const [rows, cols] = pairAttr(node.attrs, 'grid');
    const [, c, h, w] = node.type.shape;
    const split = b.step(label, 'split', 'Reshape', [x, b.int64s([0, c, rows, h, cols, w])]);
    const ordered = b.step(label, 'patch_major', 'Transpose', [split], { perm: ints([0, 2, 4, 1, 3, 5]) });
    const patches = b.step(label, 'patches', 'Reshape', [ordered, b.int64s([-1, c, h, w])]);
    const numbers = b.step(label, 'visible_index', 'Cast', [visible], toInt64);
    b.op('Gather', label, [patches, numbers], out, { axis: { int: 0 } });
  },

  scatter_patches(b, node, [x, slots], out, label) {
    // Each patch of the batch takes its slot's sample [P, C, h, w] (zero where masked), then
    // the patches go back in place: the inverse of gather_patches' rearrangement.
    const [, c, h, w] = b.shapeOf(node.inputs[0]);
    const [, rows, cols] = b.shapeOf(node.inputs[1]);
    const perPatch = b.step(label, 'slots', 'Reshape', [flatSlots(b, slots), b.int64s([-1, 1, 1, 1])]);
    const valid = b.step(label, 'visible', 'GreaterOrEqual', [perPatch, b.scalar('const/zero', 0)]);
    const index = b.step(label, 'slot_index_flat', 'Reshape', [slotIndices(b, label, perPatch, valid), b.int64s([-1])]);
    const gathered = b.step(label, 'gathered', 'Gather', [x, index], { axis: { int: 0 } });
    const kept = b.step(label, 'kept', 'Where', [valid, gathered, b.scalar('const/zero', 0)]);
    const split = b.step(label, 'split', 'Reshape', [kept, b.int64s([-1, rows, cols, c, h, w])]);
    const ordered = b.step(label, 'channel_major', 'Transpose', [split], { perm: ints([0, 3, 1, 4, 2, 5]) });
    b.op('Reshape', label, [ordered, b.int64s([-1, c, rows * h, cols * w])], out);
  },

  patch_halo(b, node, [x, visible, slots], out, label) {
    // out[v, c, i, j] = x[slot of the patch holding the site, c, site within it], where the
    // geometry (which patch place, which site) comes from static tables indexed by the place
    // l of slot v's patch p = n * L + l in its sample, and the slot from the mask's table.
    const halo = intAttr(node.attrs, 'halo');
    const [count, c, h, w] = b.shapeOf(node.inputs[0]);
    const [, rows, cols] = b.shapeOf(node.inputs[2]);
    const [outH, outW] = [h + 2 * halo, w + 2 * halo];
    const places = rows * cols;
    const geometry = `${rows}x${cols} patches of ${h}x${w}, halo ${halo}`;
    const tables = haloTables(rows, cols, h, w, halo);
    const placeTable = b.table(`const/halo_places[${geometry}]`, [places, outH, outW], tables.places, 'int64');
    const siteTable = b.table(`const/halo_sites[${geometry}]`, [places, outH, outW], tables.sites, 'int64');

    const patch = b.step(label, 'patch', 'Cast', [visible], toInt64);
    const perSample = int64Scalar(b, places);
    const place = b.step(label, 'place', 'Mod', [patch, perSample]);
    const sampleStart = b.step(label, 'sample_start', 'Sub', [patch, place]);
    // [V, outH, outW]: the place of each site's patch in the sample, -1 off the image.
    const sourcePlace = b.step(label, 'source_place', 'Gather', [placeTable, place], { axis: { int: 0 } });
    const onImage = b.step(label, 'on_image', 'GreaterOrEqual', [sourcePlace, int64Scalar(b, 0)]);
    const placeOrZero = b.step(label, 'source_place_or_zero', 'Where', [onImage, sourcePlace, int64Scalar(b, 0)]);
    const start = b.step(label, 'sample_start_vhw', 'Reshape', [sampleStart, b.int64s([count, 1, 1])]);
    const sourcePatch = b.step(label, 'source_patch', 'Add', [start, placeOrZero]);
    const slot = b.step(label, 'source_slot', 'Gather', [flatSlots(b, slots), sourcePatch], { axis: { int: 0 } });
    const visibleSlot = b.step(label, 'source_visible', 'GreaterOrEqual', [slot, b.scalar('const/zero', 0)]);
    const valid = b.step(label, 'valid', 'And', [onImage, visibleSlot]);
    const slotIndex = slotIndices(b, label, slot, valid);
    // x as [C, V * h * w], so one Gather on axis 1 reads every channel of each site.
    const site = b.step(label, 'source_site', 'Gather', [siteTable, place], { axis: { int: 0 } });
    const slotStart = b.step(label, 'slot_start', 'Mul', [slotIndex, int64Scalar(b, h * w)]);
    const source = b.step(label, 'source', 'Add', [slotStart, site]);
    const channelMajor = b.step(label, 'channel_major', 'Transpose', [x], { perm: ints([1, 0, 2, 3]) });
    const rowsOfChannels = b.step(label, 'channel_rows', 'Reshape', [channelMajor, b.int64s([c, -1])]);
    const gathered = b.step(label, 'gathered', 'Gather', [rowsOfChannels, source], { axis: { int: 1 } });
    const kept = b.step(label, 'kept', 'Where', [valid, gathered, b.scalar('const/zero', 0)]);
    b.op('Transpose', label, [kept], out, { perm: ints([1, 0, 2, 3]) });
  },
};
