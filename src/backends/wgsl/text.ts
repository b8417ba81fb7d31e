// Text that goes into generated WGSL: comments that may quote user-chosen names, and literals.

/** Comments may quote user-chosen names; keep them on one line and unable to end the comment. */
export function commentSafe(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').replace(/\*\//g, '* /').replace(/[^\x20-\x7e]/g, '?');
}

/** The shortest round-tripping decimal, with a point or exponent so WGSL reads it as f32. */
export function f32Literal(value: number): string {
  if (!Number.isFinite(value)) throw new Error(`internal: ${value} has no WGSL literal`);
  const text = String(value);
  return /[.e]/.test(text) ? text : `${text}.0`;
}
