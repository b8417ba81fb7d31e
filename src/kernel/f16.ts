// IEEE 754 binary16 ("half", WGSL's f16) conversions: what a device does when it stores an f32
// value into f16 memory (round to nearest, ties to even; overflow to infinity; subnormals kept)
// and reads it back. The interpreter uses them for f16 buffers; hosts use them to pack f16 data.
const f32 = new Float32Array(1);
const bits32 = new Uint32Array(f32.buffer);

/** The binary16 bit pattern nearest to `x` taken as f32 (NaN stays NaN, signs are kept). */
export function f16Bits(x: number): number {
  f32[0] = x;
  const b = bits32[0];
  const sign = (b >>> 16) & 0x8000;
  const exponent = (b >>> 23) & 0xff;
  const mantissa = b & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  // The significand's bits below the result's last one decide the rounding.
  let kept: number;
  let dropped: number;
  let shift: number;
  if (e > 0) {
    shift = 13;
    kept = (e << 10) | (mantissa >>> shift);
    dropped = mantissa & ((1 << shift) - 1);
  } else {
    // Subnormal: the value in units of 2^-24, from the significand with its implicit 1.
    shift = 14 - e;
    if (shift > 24) return sign;
    const significand = mantissa | 0x800000;
    kept = significand >>> shift;
    dropped = significand & ((1 << shift) - 1);
  }
  const half = 1 << (shift - 1);
  // A carry out of the mantissa steps the exponent, up to infinity: both are right.
  if (dropped > half || (dropped === half && (kept & 1) === 1)) kept++;
  return sign | kept;
}

/** The value of a binary16 bit pattern. */
export function f16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** `x` as f32 memory would hold it after a round trip through f16. */
export function roundF16(x: number): number {
  return f16Value(f16Bits(x));
}
