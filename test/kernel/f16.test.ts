import { describe, expect, it } from 'vitest';
import { f16Bits, f16Value, roundF16 } from '../../src/kernel/f16.js';

describe('f16 conversions', () => {
  it('converts known values to their binary16 bit patterns', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [0.1, 0x2e66], // 0.0999755859375
      [65504, 0x7bff], // the largest finite half
      [65519, 0x7bff], // below the midpoint to 65536: rounds down
      [65520, 0x7c00], // the midpoint, ties to even: infinity
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -14, 0x0400], // the smallest normal
      [2 ** -24, 0x0001], // the smallest subnormal
      [2 ** -25, 0x0000], // half of it, ties to even: zero
      [3 * 2 ** -25, 0x0002], // 1.5 units, ties to even: 2
      [5 * 2 ** -25, 0x0002], // 2.5 units: 2
      [1 + 2 ** -11, 0x3c00], // a tie between 1 and its successor: even (1)
      [1 + 3 * 2 ** -11, 0x3c02], // a tie between 0x3c01 and 0x3c02: even
      [2 ** -14 - 2 ** -25, 0x0400], // the largest subnormal's successor tie rounds up into the normals
    ];
    for (const [x, bits] of cases) expect(f16Bits(x), `f16Bits(${x})`).toBe(bits);
    expect(f16Bits(NaN) & 0x7c00).toBe(0x7c00);
    expect(f16Bits(NaN) & 0x3ff).not.toBe(0);
  });

  it('round-trips every finite bit pattern, and is monotonic', () => {
    let previous = -Infinity;
    for (let bits = 0xfbff; bits >= 0x8000; bits--) {
      const v = f16Value(bits);
      expect(f16Bits(v)).toBe(bits === 0x8000 ? 0x8000 : bits);
      expect(v).toBeGreaterThanOrEqual(previous);
      previous = v;
    }
    for (let bits = 0; bits <= 0x7bff; bits++) {
      const v = f16Value(bits);
      if (f16Bits(v) !== bits) expect.fail(`bits ${bits.toString(16)} -> ${v} -> ${f16Bits(v).toString(16)}`);
      expect(v).toBeGreaterThanOrEqual(previous);
      previous = v;
    }
  });

  it('rounds to the nearer neighbour: never more than half an ulp away', () => {
    for (let k = 0; k < 2000; k++) {
      const x = Math.fround((Math.sin(k * 12.9898) * 43758.5453) % 1000);
      const r = roundF16(x);
      const bits = f16Bits(x);
      const ulp = Math.abs(f16Value(bits + 1) - f16Value(bits));
      expect(Math.abs(r - x)).toBeLessThanOrEqual(ulp / 2);
    }
  });
});
