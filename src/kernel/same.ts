// When two kernel programs render to the same code: equal in everything but the nodes they
// cover (a header comment) and where their buffers come from (the runner's business, not the
// kernel's). Lowering a model finds most of its programs equal to an earlier one (every block of
// a stage repeats), so this runs once per dispatch and must cost less than rendering.

import type { KernelProgram } from './ir.js';

/**
 * A short key that equal programs share (name, grid, sizes, buffers): programs with different
 * keys differ, programs with the same key are compared with `sameRendering`.
 */
export function renderingBucket(program: KernelProgram): string {
  const buffers = program.buffers.map((b) => `${b.name}:${b.length}:${b.dtype}`).join(',');
  return `${program.name}|${program.workgroups}|${program.workgroupSize}|${program.body.length}|${buffers}`;
}

/** Whether `a` and `b` render alike: structurally equal but for `covers` and the buffers' `ref`. */
export function sameRendering(a: KernelProgram, b: KernelProgram): boolean {
  if (a === b) return true;
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (key === 'covers') continue;
    const x = (a as unknown as Record<string, unknown>)[key];
    const y = (b as unknown as Record<string, unknown>)[key];
    if (key === 'buffers') {
      const xs = x as KernelProgram['buffers'];
      const ys = y as KernelProgram['buffers'];
      if (xs.length !== ys.length || xs.some((buffer, i) => !equalValues({ ...buffer, ref: undefined }, { ...ys[i], ref: undefined }))) return false;
    } else if (!equalValues(x, y)) return false;
  }
  return true;
}

/**
 * Structural equality of plain data (objects, arrays, strings, numbers, booleans): numbers by
 * Object.is, so -0 differs from 0 and NaN equals NaN, as their rendered literals do. A key set
 * to undefined counts as absent, as it does for JSON.
 */
function equalValues(x: unknown, y: unknown): boolean {
  if (Object.is(x, y)) return true;
  if (typeof x !== 'object' || typeof y !== 'object' || x === null || y === null) return false;
  if (Array.isArray(x) !== Array.isArray(y)) return false;
  if (Array.isArray(x)) {
    const ys = y as unknown[];
    if (x.length !== ys.length) return false;
    for (let i = 0; i < x.length; i++) if (!equalValues(x[i], ys[i])) return false;
    return true;
  }
  const xr = x as Record<string, unknown>;
  const yr = y as Record<string, unknown>;
  let defined = 0;
  for (const key in xr) {
    if (xr[key] === undefined) continue;
    defined++;
    if (!equalValues(xr[key], yr[key])) return false;
  }
  for (const key in yr) if (yr[key] !== undefined) defined--;
  return defined === 0;
}
