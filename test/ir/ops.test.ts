// Op-level facts: shape rules that follow PyTorch, erf accuracy, and small semantic checks.
import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../src/ir/op.js';
import { conv2d } from '../../src/ir/ops/conv2d.js';
import { erf, gelu } from '../../src/ir/ops/gelu.js';
import { grn } from '../../src/ir/ops/grn.js';
import type { Attrs } from '../../src/ir/types.js';

const conv = (attrs: Partial<Record<string, unknown>>): Attrs =>
  ({ in: 4, out: 8, kernel: [3, 3], stride: [1, 1], padding: [0, 0], groups: 1, bias: true, ...attrs }) as Attrs;
const t = (...shape: number[]) => ({ shape, dtype: 'f32' as const });

describe('conv2d shape rule', () => {
  it.each<[number, number, number, number, number]>([
    // [size, kernel, stride, padding, expected] = floor((size + 2p - k) / s) + 1
    [67, 4, 4, 0, 16],
    [45, 4, 4, 0, 11],
    [11, 2, 2, 0, 5],
    [5, 2, 2, 0, 2],
    [1, 7, 1, 3, 1],
    [9, 7, 1, 3, 9],
  ])('size %i, kernel %i, stride %i, padding %i gives %i', (size, k, s, p, expected) => {
    const out = conv2d.infer([t(2, 4, size, size)], conv({ kernel: [k, k], stride: [s, s], padding: [p, p] }));
    expect(out.shape).toEqual([2, 8, expected, expected]);
  });

  it.each<[string, Partial<Record<string, unknown>>, number[], RegExp]>([
    ['channel mismatch', {}, [1, 3, 8, 8], /expects 4 channels, but its input has 3/],
    ['too small', { kernel: [4, 4] }, [1, 4, 3, 3], /does not fit a 3x3 input/],
    ['groups', { groups: 3 }, [1, 4, 8, 8], /groups=3 must divide both in=4 and out=8/],
    ['rank', {}, [4, 8], /rank-4/],
  ])('reports %s', (_, attrs, shape, message) => {
    expect(() => conv2d.infer([t(...shape)], conv(attrs))).toThrow(ShapeError);
    expect(() => conv2d.infer([t(...shape)], conv(attrs))).toThrow(message);
  });
});

describe('erf and GELU', () => {
  it('match tabulated erf values to 1e-12', () => {
    // Abramowitz & Stegun table 7.1 (and erf(-x) = -erf(x)).
    const table: [number, number][] = [
      [0, 0],
      [0.1, 0.1124629160182849],
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [2, 0.9953222650189527],
      [3, 0.9999779095030014],
      [4, 0.9999999845827421],
      [-1.5, -0.9661051464753108],
    ];
    for (const [x, value] of table) expect(Math.abs(erf(x) - value)).toBeLessThan(1e-12);
  });

  it('is continuous where the series hands over to the continued fraction', () => {
    expect(Math.abs(erf(3 - 1e-12) - erf(3 + 1e-12))).toBeLessThan(1e-12);
  });

  it('gives GELU(1) = 0.8413447460685429 (the normal CDF at 1)', () => {
    expect(gelu(1)).toBeCloseTo(0.8413447460685429, 14);
    expect(gelu(-10)).toBeCloseTo(0, 15);
  });
});

describe('GRN', () => {
  it('is an identity when gamma and beta are zero (why goldens must not use that init)', () => {
    const x = { shape: [1, 2, 1, 2], data: Float32Array.from([1, 2, 3, 4]) };
    const zero = { shape: [2], data: new Float32Array(2) };
    expect([...grn.evaluate([x], { gamma: zero, beta: zero }, { dim: 2, eps: 1e-6 }, t(1, 2, 1, 2))]).toEqual([1, 2, 3, 4]);
  });

  it('scales each channel by its L2 norm over the mean norm', () => {
    // Channel norms: |(3,4)| = 5 and |(0,0)| = 0, mean 2.5, so Nx = (2, 0).
    const x = { shape: [1, 2, 1, 2], data: Float32Array.from([3, 4, 0, 0]) };
    const one = { shape: [2], data: Float32Array.from([1, 1]) };
    const zero = { shape: [2], data: new Float32Array(2) };
    const out = grn.evaluate([x], { gamma: one, beta: zero }, { dim: 2, eps: 0 + 1e-12 }, t(1, 2, 1, 2));
    expect(out[0]).toBeCloseTo(3 * 2 + 3, 5);
    expect(out[1]).toBeCloseTo(4 * 2 + 4, 5);
    expect(out[2]).toBe(0);
  });
});
