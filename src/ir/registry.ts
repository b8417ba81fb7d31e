// The op registry: the one place that lists every op the IR knows.
import type { OpDef } from './op.js';
import { add } from './ops/add.js';
import { conv2d } from './ops/conv2d.js';
import { dropPath } from './ops/drop-path.js';
import { geluOp } from './ops/gelu.js';
import { globalAvgPool } from './ops/global-avg-pool.js';
import { grn } from './ops/grn.js';
import { grnApply, grnStats } from './ops/grn-split.js';
import { input } from './ops/input.js';
import { layerScale } from './ops/layer-scale.js';
import { layernorm } from './ops/layernorm.js';
import { linear } from './ops/linear.js';
import { applyMask } from './ops/apply-mask.js';
import { maskFill } from './ops/mask-fill.js';
import { maskedPatchLossOp } from './ops/masked-patch-loss.js';
import { patchMask } from './ops/patch-mask.js';
import { gatherPatches, patchHalo, patchSlots, scatterPatches, visiblePatches } from './ops/patch-compaction.js';
import { patchify } from './ops/patchify.js';
import { channelNorm } from './ops/channel-norm.js';
import { squaredError } from './ops/squared-error.js';
import { maskedMean } from './ops/masked-mean.js';

const ops: readonly OpDef[] = [
  input, conv2d, linear, layernorm, geluOp, grn, layerScale, add, globalAvgPool, dropPath, grnStats, grnApply,
  patchMask, applyMask, maskFill, maskedPatchLossOp, patchify, channelNorm, squaredError, maskedMean,
  patchSlots, visiblePatches, gatherPatches, patchHalo, scatterPatches,
];

const registry = new Map(ops.map((op) => [op.name, op]));

export const opRegistry: ReadonlyMap<string, OpDef> = registry;

/**
 * Adds an op to the registry until the returned function is called: how a test (or an
 * embedding application) extends the language. An op brings everything with it in its
 * OpDef (shape rule, reference math, kernel math); no backend needs to know it.
 */
export function registerOp(op: OpDef): () => void {
  if (registry.has(op.name)) throw new Error(`internal: op '${op.name}' is already registered`);
  registry.set(op.name, op);
  return () => {
    registry.delete(op.name);
  };
}

export function getOp(name: string): OpDef {
  const op = opRegistry.get(name);
  if (!op) throw new Error(`internal: unknown op '${name}'`);
  return op;
}
