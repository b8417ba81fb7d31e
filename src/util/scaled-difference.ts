// How far an output is from a reference, as the tests and `convc bench` judge it: relative to
// the reference's scale, so that elements which happen to be near zero do not dominate.

/**
 * Largest |output - reference| over the largest |reference|. NaN anywhere, or a length
 * mismatch, gives Infinity; an all-zero reference compares absolute differences.
 */
export function scaledDifference(output: Float32Array, reference: Float32Array): number {
  if (output.length !== reference.length) return Infinity;
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < output.length; i++) {
    const difference = Math.abs(output[i] - reference[i]);
    if (!(difference <= worst)) worst = Number.isNaN(difference) ? Infinity : difference;
    scale = Math.max(scale, Math.abs(reference[i]));
  }
  return worst / (scale || 1);
}
