import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/util/diagnostics.js';
import { readNpy, writeNpy } from '../../src/io/npy.js';

const LABEL = 'input.npy';

/** Builds a .npy file by hand: magic, version, header length, header text as given, data. */
function makeNpy(header: string, data: Uint8Array, version: [number, number] = [1, 0]): Uint8Array {
  const headerBytes = new TextEncoder().encode(header);
  const lengthBytes = version[0] === 1 ? 2 : 4;
  const out = new Uint8Array(8 + lengthBytes + headerBytes.byteLength + data.byteLength);
  out.set([0x93, ...new TextEncoder().encode('NUMPY'), version[0], version[1]]);
  const view = new DataView(out.buffer);
  if (lengthBytes === 2) view.setUint16(8, headerBytes.byteLength, true);
  else view.setUint32(8, headerBytes.byteLength, true);
  out.set(headerBytes, 8 + lengthBytes);
  out.set(data, 8 + lengthBytes + headerBytes.byteLength);
  return out;
}

function dict(descr: string, shape: string, fortranOrder = 'False'): string {
  return `{'descr': '${descr}', 'fortran_order': ${fortranOrder}, 'shape': ${shape}, }\n`;
}

function f32le(values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  values.forEach((v, i) => new DataView(out.buffer).setFloat32(i * 4, v, true));
  return out;
}

function expectUserError(read: () => unknown, message: RegExp): void {
  expect(read).toThrow(UserError);
  expect(read).toThrow(message);
  expect(read).toThrow(new RegExp(`^${LABEL}: `));
}

describe('writeNpy', () => {
  it("writes numpy's exact header for a (2, 3) float32 array", () => {
    // np.save(f, np.zeros((2, 3), np.float32)) starts with exactly these 128 bytes: numpy
    // 1.24 sizes the header to 118 (0x76) so the data lands on byte 128.
    const bytes = writeNpy({ shape: [2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) });
    const dictText = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    const expected = [0x93, ...'NUMPY'].map((c) => (typeof c === 'number' ? c : c.charCodeAt(0)));
    expected.push(1, 0, 0x76, 0x00);
    for (const c of dictText.padEnd(117, ' ') + '\n') expected.push(c.charCodeAt(0));
    expect(Array.from(bytes.subarray(0, 128))).toEqual(expected);
    expect(bytes.byteLength).toBe(128 + 24);
    expect(Array.from(new Float32Array(bytes.slice(128).buffer))).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('renders shapes the way Python writes tuples', () => {
    const headerOf = (shape: number[]) => {
      const bytes = writeNpy({ shape, data: new Float32Array(shape.reduce((n, d) => n * d, 1)) });
      return new TextDecoder().decode(bytes.subarray(10, 10 + new DataView(bytes.buffer).getUint16(8, true)));
    };
    expect(headerOf([])).toContain("'shape': (), }");
    expect(headerOf([5])).toContain("'shape': (5,), }");
    expect(headerOf([2, 3, 4, 4])).toContain("'shape': (2, 3, 4, 4), }");
  });

  it('starts the data at a multiple of 64 bytes, even when the header needs a second block', () => {
    // Twenty 1s push the header past one 64-byte block; numpy writes 196 bytes for this array.
    const shapes = [[], [5], Array<number>(20).fill(1), Array<number>(32).fill(1)];
    for (const shape of shapes) {
      const bytes = writeNpy({ shape, data: new Float32Array(shape.reduce((n, d) => n * d, 1)) });
      const headerLength = new DataView(bytes.buffer).getUint16(8, true);
      expect((10 + headerLength) % 64).toBe(0);
      expect(bytes[10 + headerLength - 1]).toBe(0x0a);
    }
    expect(writeNpy({ shape: Array<number>(20).fill(1), data: new Float32Array(1) }).byteLength).toBe(196);
  });
});

describe('readNpy', () => {
  it('round-trips 0-d, 1-d, 4-d and empty arrays', () => {
    const cases = [
      { shape: [], data: new Float32Array([3.25]) },
      { shape: [5], data: new Float32Array([1, -2, NaN, -0, Infinity]) },
      { shape: [1, 2, 2, 1], data: new Float32Array([1, 2, 3, 4]) },
      { shape: [0, 3], data: new Float32Array(0) },
    ];
    for (const t of cases) {
      const read = readNpy(writeNpy(t), LABEL);
      expect(read.shape).toEqual(t.shape);
      expect(new Uint8Array(read.data.buffer)).toEqual(new Uint8Array(t.data.buffer));
    }
  });

  it('reads from an unaligned buffer', () => {
    const file = writeNpy({ shape: [2], data: new Float32Array([1.5, -3]) });
    const backing = new Uint8Array(file.byteLength + 1);
    backing.set(file, 1);
    expect(readNpy(backing.subarray(1), LABEL)).toEqual({ shape: [2], data: new Float32Array([1.5, -3]) });
  });

  it('reads versions 2.0 and 3.0 and an unpadded, unaligned header', () => {
    const data = f32le([1, 2, 3]);
    expect(readNpy(makeNpy(dict('<f4', '(3,)'), data, [2, 0]), LABEL).data).toEqual(new Float32Array([1, 2, 3]));
    expect(readNpy(makeNpy(dict('<f4', '(1, 3)'), data, [3, 0]), LABEL).shape).toEqual([1, 3]);
  });

  it('accepts other spellings a Python dict literal allows', () => {
    const header = `{"shape":(2L,1L,),"fortran_order":False,"descr":"<f4","extra":[None, True, -1]}`;
    expect(readNpy(makeNpy(header, f32le([1, 2])), LABEL).shape).toEqual([2, 1]);
  });

  it('converts <f8 and <f2 to f32', () => {
    const f64 = new Uint8Array(8 * 4);
    const view = new DataView(f64.buffer);
    view.setBigUint64(0, 0x3ff0000000000000n, true); // 1.0
    view.setBigUint64(8, 0xc004000000000000n, true); // -2.5
    view.setBigUint64(16, 0x40effc0000000000n, true); // 65504
    view.setFloat64(24, 1e300, true); // beyond f32 range
    expect(Array.from(readNpy(makeNpy(dict('<f8', '(2, 2)'), f64), LABEL).data)).toEqual([1, -2.5, 65504, Infinity]);

    const f16 = new Uint8Array(2 * 5);
    [0x3c00, 0xc100, 0x7bff, 0x0001, 0xfc00].forEach((bits, i) => new DataView(f16.buffer).setUint16(i * 2, bits, true));
    expect(Array.from(readNpy(makeNpy(dict('<f2', '(5,)'), f16), LABEL).data)).toEqual([1, -2.5, 65504, 2 ** -24, -Infinity]);
  });
});

describe('malformed npy files', () => {
  const six = f32le([0, 1, 2, 3, 4, 5]);

  it('rejects bad magic', () => {
    const file = writeNpy({ shape: [1], data: new Float32Array(1) });
    file[1] = 0x4d; // "MUMPY"
    expectUserError(() => readNpy(file, LABEL), /not a \.npy file/);
    expectUserError(() => readNpy(new Uint8Array(3), LABEL), /not a \.npy file/);
  });

  it('rejects an unknown version', () => {
    expectUserError(() => readNpy(makeNpy(dict('<f4', '(6,)'), six, [4, 0]), LABEL), /unsupported \.npy format version 4\.0; supported: 1\.0, 2\.0, 3\.0/);
  });

  it('rejects big-endian data', () => {
    expectUserError(() => readNpy(makeNpy(dict('>f4', '(6,)'), six), LABEL), /dtype '>f4' is big-endian/);
  });

  it('rejects fortran order', () => {
    expectUserError(() => readNpy(makeNpy(dict('<f4', '(2, 3)', 'True'), six), LABEL), /fortran_order True \(column-major\)/);
  });

  it('rejects other dtypes, listing the supported ones', () => {
    expectUserError(() => readNpy(makeNpy(dict('<i4', '(6,)'), six), LABEL), /dtype '<i4' is not supported; supported: <f4, <f8, <f2/);
    const structured = "{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (6,), }";
    expectUserError(() => readNpy(makeNpy(structured, six), LABEL), /structured dtypes are not supported/);
  });

  it('rejects truncated data and extra bytes, giving both sizes', () => {
    expectUserError(
      () => readNpy(makeNpy(dict('<f4', '(2, 4)'), six), LABEL),
      /data is truncated: shape \(2, 4\) of <f4 needs 32 bytes but 24 follow the header/,
    );
    expectUserError(() => readNpy(makeNpy(dict('<f4', '(5,)'), six), LABEL), /extra bytes after the data: shape \(5,\) of <f4 needs 20 bytes but 24/);
  });

  it('rejects a header longer than the file', () => {
    const file = makeNpy(dict('<f4', '(6,)'), six).subarray(0, 40);
    expectUserError(() => readNpy(file, LABEL), /file is truncated: the header claims 58 bytes but only 30 follow/);
  });

  it('rejects headers that are not valid dict literals', () => {
    expectUserError(() => readNpy(makeNpy("{'descr': '<f4' 'shape': (6,)}", six), LABEL), /not a valid Python dict literal: expected '}' at offset 16/);
    expectUserError(() => readNpy(makeNpy("{'descr': '<f4", six), LABEL), /string starting at offset 10 is not closed/);
    expectUserError(() => readNpy(makeNpy("{'shape': __import__('os')}", six), LABEL), /unexpected '_' at offset 10/);
    expectUserError(() => readNpy(makeNpy('('.repeat(100000), six), LABEL), /brackets nested too deeply/);
  });

  it('rejects missing keys and bad shapes', () => {
    expectUserError(() => readNpy(makeNpy("{'descr': '<f4', 'fortran_order': False}", six), LABEL), /header has no 'shape' key/);
    expectUserError(() => readNpy(makeNpy(dict('<f4', '(6)'), six), LABEL), /'shape' must be a tuple of non-negative integers/);
    expectUserError(() => readNpy(makeNpy(dict('<f4', '(2, -3)'), six), LABEL), /'shape' must be a tuple of non-negative integers/);
    expectUserError(() => readNpy(makeNpy("['descr']", six), LABEL), /header must be a dict/);
  });
});
