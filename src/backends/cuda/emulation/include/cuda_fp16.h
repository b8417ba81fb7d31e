// Stand-in for CUDA's cuda_fp16.h when kernels.cu is compiled by g++ with the emulation header:
// __half as the 16-bit IEEE binary16 storage type (same size and alignment as CUDA's) and the
// conversions convc's kernels use. Arithmetic on halves is not provided: kernels widen to
// float, compute, and narrow with __float2half_rn.
#pragma once

#include <stdint.h>
#include <string.h>

struct __half {
  unsigned short __x;  // the binary16 bits
};
static_assert(sizeof(__half) == 2 && alignof(__half) == 2, "__half must match CUDA's layout");

static inline unsigned int convc_float_bits(float f) {
  unsigned int bits;
  memcpy(&bits, &f, sizeof bits);
  return bits;
}

static inline float convc_bits_float(unsigned int bits) {
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

/** Exact: every binary16 value is a float. */
static inline float __half2float(__half h) {
  const unsigned int sign = static_cast<unsigned int>(h.__x & 0x8000u) << 16;
  const unsigned int exponent = (h.__x >> 10) & 0x1fu;
  unsigned int mantissa = h.__x & 0x3ffu;
  if (exponent == 0x1fu) return convc_bits_float(sign | 0x7f800000u | (mantissa << 13));  // inf, NaN (payload kept)
  if (exponent != 0) return convc_bits_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
  if (mantissa == 0) return convc_bits_float(sign);  // ±0
  // Subnormal: mantissa × 2^-24, normalised for the float's exponent field.
  int shift = 0;
  while ((mantissa & 0x400u) == 0) {
    mantissa <<= 1;
    ++shift;
  }
  return convc_bits_float(sign | ((113u - static_cast<unsigned int>(shift)) << 23) | ((mantissa & 0x3ffu) << 13));
}

/** Round to nearest, ties to even; overflow to inf; NaN to the canonical NaN a GPU's cvt gives. */
static inline __half __float2half_rn(float f) {
  const unsigned int bits = convc_float_bits(f);
  const unsigned short sign = static_cast<unsigned short>((bits >> 16) & 0x8000u);
  const unsigned int magnitude = bits & 0x7fffffffu;
  __half h;
  if (magnitude > 0x7f800000u) {
    h.__x = 0x7fffu;
  } else if (magnitude >= 0x477ff000u) {
    // 65520 and above round to inf (65520 is the tie between 65504 and 2^16, whose even side is inf).
    h.__x = static_cast<unsigned short>(sign | 0x7c00u);
  } else if (magnitude >= 0x38800000u) {
    // Normal in binary16: rebias the exponent (127 → 15) and round away 13 mantissa bits.
    const unsigned int rebased = magnitude - (112u << 23);
    const unsigned int rounded = rebased + 0xfffu + ((rebased >> 13) & 1u);
    h.__x = static_cast<unsigned short>(sign | (rounded >> 13));
  } else if (magnitude > 0x33000000u) {
    // Subnormal in binary16: the value in units of 2^-24, rounded; may round up to the smallest normal.
    const unsigned int exponent = magnitude >> 23;
    const unsigned int mantissa = (magnitude & 0x7fffffu) | 0x800000u;
    const unsigned int shift = 126u - exponent;  // 14..24
    unsigned int units = mantissa >> shift;
    const unsigned int rest = mantissa & ((1u << shift) - 1u);
    const unsigned int half = 1u << (shift - 1u);
    if (rest > half || (rest == half && (units & 1u) != 0)) ++units;
    h.__x = static_cast<unsigned short>(sign | units);
  } else {
    // At most 2^-25, half the smallest subnormal: ties to even give zero.
    h.__x = sign;
  }
  return h;
}

static inline __half __float2half(float f) { return __float2half_rn(f); }
static inline unsigned short __half_as_ushort(__half h) { return h.__x; }
static inline __half __ushort_as_half(unsigned short bits) {
  __half h;
  h.__x = bits;
  return h;
}
