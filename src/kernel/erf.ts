// The one erf approximation every target renders and the interpreter runs, so that a kernel
// means the same everywhere. WGSL and CUDA's fast paths have no erf of their own to agree on.
//
// Abramowitz & Stegun 7.1.26: erf(x) ~ sign(x) * (1 - t * P(t) * exp(-x^2)), t = 1 / (1 + p |x|),
// with absolute error below 1.5e-7, under f32's own rounding at the magnitudes GELU sees.
export const erfP = 0.3275911;
/** P's coefficients a1..a5, lowest power first: P(t) = a1 + t (a2 + t (a3 + t (a4 + t a5))). */
export const erfCoefficients: readonly number[] = [0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429];

/** The approximation in f32 steps, as a GPU computes it (each operation rounded to f32). */
export function erfF32(x: number): number {
  const f = Math.fround;
  const t = f(1 / f(1 + f(f(erfP) * Math.abs(x))));
  let poly = f(erfCoefficients[4]);
  for (let i = 3; i >= 0; i--) poly = f(f(erfCoefficients[i]) + f(t * poly));
  poly = f(t * poly);
  const e = f(Math.exp(f(-f(x * x))));
  return f(Math.sign(x) * f(1 - f(poly * e)));
}
