// Which kernels render which op. An op without an entry cannot run on the WGSL backend.
import { conv2dKernels } from './conv2d.js';
import { addKernels, geluKernels, layerScaleKernels } from './elementwise.js';
import type { WgslKernels } from './kernel.js';
import { linearKernels } from './linear.js';
import { globalAvgPoolKernels, grnKernels, layernormKernels } from './normalization.js';

export const wgslKernels: ReadonlyMap<string, WgslKernels> = new Map([
  ['conv2d', conv2dKernels],
  ['linear', linearKernels],
  ['layernorm', layernormKernels],
  ['gelu', geluKernels],
  ['grn', grnKernels],
  ['layer_scale', layerScaleKernels],
  ['add', addKernels],
  ['global_avg_pool', globalAvgPoolKernels],
]);
