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

const ops: readonly OpDef[] = [input, conv2d, linear, layernorm, geluOp, grn, layerScale, add, globalAvgPool, dropPath, grnStats, grnApply];

export const opRegistry: ReadonlyMap<string, OpDef> = new Map(ops.map((op) => [op.name, op]));

export function getOp(name: string): OpDef {
  const op = opRegistry.get(name);
  if (!op) throw new Error(`internal: unknown op '${name}'`);
  return op;
}
