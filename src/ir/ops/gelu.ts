// Exact GELU, x * Phi(x) with the error function, as nn.GELU() computes by default.
import { type OpDef } from '../op.js';
import { add, erf as erfExpr, f32, mul } from '../../kernel/build.js';

/**
 * erf in double precision. Math has none; a Maclaurin series is exact to ~1e-15 for |x| < 3,
 * and beyond that a continued fraction for erfc converges fast. Speed is secondary here:
 * this is the reference that other backends' approximations are judged against.
 */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax > 6) return Math.sign(x);
  if (ax < 3) {
    let term = x;
    let sum = x;
    const x2 = x * x;
    for (let n = 1; n < 100; n++) {
      term *= -x2 / n;
      const delta = term / (2 * n + 1);
      sum += delta;
      if (Math.abs(delta) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))), evaluated bottom-up.
  let fraction = ax;
  for (let k = 60; k >= 1; k--) fraction = ax + k / 2 / fraction;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / fraction;
  return Math.sign(x) * (1 - erfc);
}

export function gelu(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

export const geluOp: OpDef = {
  name: 'gelu',
  summary: 'GELU with the exact error function',
  kind: 'elementwise',
  arity: 1,
  callable: true,
  attrs: [],
  params: () => [],
  infer: ([x]) => x,
  macs: () => 0,
  kernel: { kind: 'elementwise', apply: (x) => mul(mul(f32(0.5), x), add(f32(1), erfExpr(mul(x, f32(Math.SQRT1_2))))) },
  evaluate([x]) {
    const result = new Float32Array(x.data.length);
    for (let i = 0; i < result.length; i++) result[i] = gelu(x.data[i]);
    return result;
  },
};
