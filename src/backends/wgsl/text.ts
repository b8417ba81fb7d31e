// Text that goes into generated WGSL: comments that may quote user-chosen names, and literals.

export { commentSafe } from '../../kernel/comment-safe.js';

/** The shortest round-tripping decimal, with a point or exponent so WGSL reads it as f32. */
export function f32Literal(value: number): string {
  if (!Number.isFinite(value)) throw new Error(`internal: ${value} has no WGSL literal`);
  const text = String(value);
  return /[.e]/.test(text) ? text : `${text}.0`;
}
