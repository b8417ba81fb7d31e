// erf for f32. WGSL has none.

/**
 * Abramowitz & Stegun 7.1.26: absolute error below 1.5e-7, under f32's own rounding at the
 * magnitudes GELU sees, so GELU stays well within the 1e-4 tolerance against the reference.
 */
export const erfHelper = `
fn erf_approx(x: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.3275911 * abs(x));
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return sign(x) * (1.0 - poly * exp(-x * x));
}`;
