// Which kernels render which op. An op without an entry cannot run on the WGSL backend.
import { conv2dKernels } from './conv2d.js';
import { perElementKernels } from './elementwise.js';
import type { WgslKernels } from './kernel.js';
import { linearKernels } from './linear.js';
import { globalAvgPoolKernels, grnKernels, grnStatsKernels, layernormKernels } from './normalization.js';

export const wgslKernels: ReadonlyMap<string, WgslKernels> = new Map([
  ['conv2d', conv2dKernels],
  ['linear', linearKernels],
  ['layernorm', layernormKernels],
  ['gelu', perElementKernels],
  ['grn', grnKernels],
  ['grn_stats', grnStatsKernels],
  ['grn_apply', perElementKernels],
  ['layer_scale', perElementKernels],
  ['add', perElementKernels],
  ['drop_path', perElementKernels],
  ['global_avg_pool', globalAvgPoolKernels],
]);
