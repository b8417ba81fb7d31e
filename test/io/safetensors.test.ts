import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/util/diagnostics.js';
import {
  bf16BitsToF32,
  decodeLittleEndianFloats,
  decodeLittleEndianFloatsPortable,
  f16BitsToF32,
  type StoredFloat,
} from '../../src/io/half.js';
import { readSafetensors, readSafetensorsWithMetadata, writeSafetensors, type HostTensor } from '../../src/io/safetensors.js';

const LABEL = 'weights.safetensors';

/** Builds a safetensors file by hand: length field, header text, data. */
function makeFile(header: unknown, data: Uint8Array = new Uint8Array(0), declaredLength?: bigint): Uint8Array {
  const headerBytes = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  return makeRawFile(headerBytes, data, declaredLength);
}

function makeRawFile(headerBytes: Uint8Array, data: Uint8Array, declaredLength?: bigint): Uint8Array {
  const out = new Uint8Array(8 + headerBytes.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, declaredLength ?? BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  out.set(data, 8 + headerBytes.byteLength);
  return out;
}

function u16le(values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  values.forEach((v, i) => new DataView(out.buffer).setUint16(i * 2, v, true));
  return out;
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

const SMALLEST_F16_SUBNORMAL = 2 ** -24;

describe('f16 and bf16 bits', () => {
  it('decodes hand-computed f16 bit patterns', () => {
    expect(f16BitsToF32(0x3c00)).toBe(1);
    expect(f16BitsToF32(0xc100)).toBe(-2.5); // 1 10000 0100000000: -(1 + 1/4) * 2^1
    expect(f16BitsToF32(0x7bff)).toBe(65504); // largest finite
    expect(f16BitsToF32(0x0001)).toBe(SMALLEST_F16_SUBNORMAL);
    expect(f16BitsToF32(0x03ff)).toBe(1023 * 2 ** -24); // largest subnormal
    expect(f16BitsToF32(0x0400)).toBe(2 ** -14); // smallest normal
    expect(f16BitsToF32(0x7c00)).toBe(Infinity);
    expect(f16BitsToF32(0xfc00)).toBe(-Infinity);
    expect(f16BitsToF32(0x7e00)).toBeNaN();
    expect(Object.is(f16BitsToF32(0x8000), -0)).toBe(true);
  });

  it('decodes hand-computed bf16 bit patterns', () => {
    expect(bf16BitsToF32(0x3f80)).toBe(1);
    expect(bf16BitsToF32(0xc020)).toBe(-2.5);
    expect(bf16BitsToF32(0x477f)).toBe(65280); // 65504 is not a bf16 value; this is the nearest below
    expect(bf16BitsToF32(0x0001)).toBe(2 ** -133); // smallest bf16 subnormal
    expect(bf16BitsToF32(0x7f80)).toBe(Infinity);
    expect(bf16BitsToF32(0xff80)).toBe(-Infinity);
    expect(bf16BitsToF32(0x7fc0)).toBeNaN();
  });

  it('fast and portable decoders agree on every kind, at odd byte offsets', () => {
    const backing = new Uint8Array(1 + 8 * 64);
    for (let i = 0; i < backing.length; i++) backing[i] = (i * 97 + 13) & 0xff;
    const bytes = backing.subarray(1);
    for (const kind of ['f16', 'bf16', 'f32', 'f64'] as StoredFloat[]) {
      const fast = decodeLittleEndianFloats(bytes, kind);
      const portable = decodeLittleEndianFloatsPortable(bytes, kind);
      if (kind === 'f64') expect(Array.from(fast)).toEqual(Array.from(portable)); // NaN payloads may differ
      else expect(new Uint8Array(fast.buffer)).toEqual(new Uint8Array(portable.buffer));
    }
  });
});

describe('readSafetensors', () => {
  it('converts F16, BF16 and F64 to f32', () => {
    const f64 = new Uint8Array(8 * 5);
    const view = new DataView(f64.buffer);
    view.setBigUint64(0, 0x3ff0000000000000n, true); // 1.0
    view.setBigUint64(8, 0xc004000000000000n, true); // -2.5
    view.setBigUint64(16, 0x40effc0000000000n, true); // 65504
    view.setBigUint64(24, 0x7ff0000000000000n, true); // inf
    view.setFloat64(32, 0.1, true); // rounds to the nearest f32
    const f16 = u16le([0x3c00, 0xc100, 0x7bff, 0x0001, 0x7c00]);
    const bf16 = u16le([0x3f80, 0xc020, 0x477f, 0x0001, 0x7f80]);
    const data = new Uint8Array([...f16, ...bf16, ...f64]);
    const file = makeFile(
      {
        half: { dtype: 'F16', shape: [5], data_offsets: [0, 10] },
        brain: { dtype: 'BF16', shape: [5], data_offsets: [10, 20] },
        double: { dtype: 'F64', shape: [5], data_offsets: [20, 60] },
      },
      data,
    );
    const tensors = readSafetensors(file, LABEL);
    expect(Array.from(tensors.get('half')!.data)).toEqual([1, -2.5, 65504, SMALLEST_F16_SUBNORMAL, Infinity]);
    expect(Array.from(tensors.get('brain')!.data)).toEqual([1, -2.5, 65280, 2 ** -133, Infinity]);
    expect(Array.from(tensors.get('double')!.data)).toEqual([1, -2.5, 65504, Infinity, Math.fround(0.1)]);
  });

  it('reads tensors at unaligned offsets from an unaligned buffer', () => {
    // A header padded to 8k + 5 bytes puts the data section at an odd byte; 'a' starts 2 bytes
    // past it, so its floats are unaligned on top (leading filler bytes would be a hole).
    const header = '{"b":{"dtype":"F16","shape":[1],"data_offsets":[0,2]},"a":{"dtype":"F32","shape":[2],"data_offsets":[2,10]}}';
    const padded = header + ' '.repeat(13 - (header.length % 8));
    const data = new Uint8Array([...u16le([0xc100]), ...f32le([1.5, -3])]);
    const file = makeFile(padded, data);
    const backing = new Uint8Array(file.byteLength + 3);
    backing.set(file, 3);
    const tensors = readSafetensors(backing.subarray(3), LABEL);
    expect(Array.from(tensors.get('a')!.data)).toEqual([1.5, -3]);
    expect(Array.from(tensors.get('b')!.data)).toEqual([-2.5]);
  });

  it('refuses bytes before the first tensor, which belong to no tensor', () => {
    const file = makeFile({ x: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, new Uint8Array([0, 0, 0, 0, ...f32le([7])]));
    expect(() => readSafetensors(file, LABEL)).toThrow(/bytes \[0, 4\) before tensor 'x' belong to no tensor/);
  });

  it('returns the __metadata__ object and ignores it as a tensor', () => {
    const file = makeFile({ __metadata__: { format: 'pt' }, x: { dtype: 'F32', shape: [], data_offsets: [0, 4] } }, f32le([7]));
    const { tensors, metadata } = readSafetensorsWithMetadata(file, LABEL);
    expect(metadata).toEqual({ format: 'pt' });
    expect([...tensors.keys()]).toEqual(['x']);
    expect(tensors.get('x')).toEqual({ shape: [], data: new Float32Array([7]) });
  });
});

describe('writeSafetensors', () => {
  const tensors: [string, HostTensor][] = [
    ['stem.weight', { shape: [2, 3], data: new Float32Array([1, -2, 3.5, NaN, -0, Infinity]) }],
    ['scalar', { shape: [], data: new Float32Array([42]) }],
    ['empty', { shape: [0, 3], data: new Float32Array(0) }],
    ['10', { shape: [1], data: new Float32Array([-1]) }],
  ];

  it('round-trips f32 tensors, 0-d and empty ones included, with metadata', () => {
    const bytes = writeSafetensors(tensors, { format: 'pt', note: 'ünïcode' });
    const { tensors: read, metadata } = readSafetensorsWithMetadata(bytes, LABEL);
    expect(metadata).toEqual({ format: 'pt', note: 'ünïcode' });
    expect([...read.keys()]).toEqual(['stem.weight', 'scalar', 'empty', '10']);
    for (const [name, tensor] of tensors) {
      expect(read.get(name)!.shape).toEqual(tensor.shape);
      // Byte comparison so NaN and -0 count as preserved.
      expect(new Uint8Array(read.get(name)!.data.buffer)).toEqual(new Uint8Array(tensor.data.slice().buffer));
    }
  });

  it('pads the header with spaces to a multiple of 8 and lays tensors out in order', () => {
    const bytes = writeSafetensors(new Map(tensors));
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLength % 8).toBe(0);
    const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength));
    expect(headerText).toMatch(/^\{.*\} *$/);
    const header = JSON.parse(headerText) as Record<string, { data_offsets: number[] }>;
    // Integer-like names stay where they were written, not hoisted to the front.
    expect(Object.keys(header)).toEqual(['10', 'stem.weight', 'scalar', 'empty']);
    expect(headerText.indexOf('"stem.weight"')).toBeLessThan(headerText.indexOf('"10"'));
    expect(header['stem.weight'].data_offsets).toEqual([0, 24]);
    expect(header.scalar.data_offsets).toEqual([24, 28]);
    expect(header.empty.data_offsets).toEqual([28, 28]);
    expect(header['10'].data_offsets).toEqual([28, 32]);
    expect(bytes.byteLength).toBe(8 + headerLength + 32);
  });

  it('writes an empty file that reads back as no tensors', () => {
    expect(readSafetensors(writeSafetensors([]), LABEL).size).toBe(0);
  });

  it('rejects tensors whose data does not match their shape', () => {
    expect(() => writeSafetensors([['x', { shape: [2, 2], data: new Float32Array(3) }]])).toThrow(/shape \[2,2\] but 3 values/);
  });
});

describe('malformed safetensors files', () => {
  const okEntry = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
  const eightBytes = f32le([1, 2]);

  it('rejects a file shorter than the length field', () => {
    expectUserError(() => readSafetensors(new Uint8Array(5), LABEL), /file is 5 bytes, too short/);
  });

  it('rejects a header length past the end of the file', () => {
    const file = makeFile({ x: okEntry }, eightBytes, 1000n);
    expectUserError(() => readSafetensors(file, LABEL), /header length 1000 is past the end of the file/);
  });

  it('rejects a header length of 2^53 before decoding or allocating anything', () => {
    const file = makeFile('{}', new Uint8Array(0), 2n ** 53n);
    const start = performance.now();
    expectUserError(() => readSafetensors(file, LABEL), /header length 9007199254740992 is past the end of the file \(only 2 bytes/);
    expect(performance.now() - start).toBeLessThan(100);
  });

  it('rejects a header length of 2^64 - 1', () => {
    const file = makeFile('{}', new Uint8Array(0), 2n ** 64n - 1n);
    expectUserError(() => readSafetensors(file, LABEL), /header length 18446744073709551615 is past the end/);
  });

  it('rejects a header that is not UTF-8', () => {
    const file = makeRawFile(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), new Uint8Array(0));
    expectUserError(() => readSafetensors(file, LABEL), /header is not valid UTF-8/);
  });

  it('rejects a header that is not JSON', () => {
    expectUserError(() => readSafetensors(makeFile('{"x": {'), LABEL), /header is not valid JSON/);
    expectUserError(() => readSafetensors(makeFile(''), LABEL), /header is not valid JSON/);
  });

  it('rejects a header that is a JSON array rather than an object', () => {
    expectUserError(() => readSafetensors(makeFile([okEntry]), LABEL), /header must be a JSON object .* got an array/);
    expectUserError(() => readSafetensors(makeFile('null'), LABEL), /header must be a JSON object .* got null/);
  });

  it('rejects an entry that is not an object', () => {
    const file = makeFile({ 'stem.weight': [0, 8] });
    expectUserError(() => readSafetensors(file, LABEL), /tensor 'stem.weight' must be an object with dtype, shape and data_offsets, got an array/);
  });

  it('rejects an unsupported dtype, naming the tensor, the dtype and the supported ones', () => {
    const file = makeFile({ 'head.weight': { dtype: 'I8', shape: [8], data_offsets: [0, 8] } }, eightBytes);
    expectUserError(
      () => readSafetensors(file, LABEL),
      /^weights\.safetensors: tensor 'head\.weight' has dtype I8; supported: F32, F16, BF16, F64$/,
    );
  });

  it('rejects a missing dtype', () => {
    const file = makeFile({ x: { shape: [2], data_offsets: [0, 8] } }, eightBytes);
    expectUserError(() => readSafetensors(file, LABEL), /tensor 'x' has no dtype string/);
  });

  it('rejects shapes that are not arrays of non-negative safe integers', () => {
    for (const shape of [[-1], [1.5], ['2'], 2, null, [2 ** 53]]) {
      const file = makeFile({ x: { dtype: 'F32', shape, data_offsets: [0, 8] } }, eightBytes);
      expectUserError(() => readSafetensors(file, LABEL), /tensor 'x' shape must be an array of non-negative integers/);
    }
  });

  it('rejects data_offsets that are not two ordered integers', () => {
    for (const offsets of [[8, 0], [0], [0, 4, 8], ['0', '8'], [-1, 7], [0, 8.5], undefined]) {
      const file = makeFile({ x: { dtype: 'F32', shape: [2], data_offsets: offsets } }, eightBytes);
      expectUserError(() => readSafetensors(file, LABEL), /tensor 'x' data_offsets must be two integers \[begin, end\]/);
    }
  });

  it('rejects data past the end of the data section', () => {
    const file = makeFile({ x: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, eightBytes);
    expectUserError(() => readSafetensors(file, LABEL), /tensor 'x' data ends at byte 16 but the data section is only 8 bytes/);
  });

  it('rejects a byte length that does not match the shape, giving both numbers', () => {
    const file = makeFile({ x: { dtype: 'F16', shape: [2, 3], data_offsets: [0, 8] } }, eightBytes);
    expectUserError(() => readSafetensors(file, LABEL), /tensor 'x' has 8 bytes of data but shape \[2,3\] of F16 needs 12 bytes/);
  });

  it('reports the exact size for a shape whose product overflows a double', () => {
    const file = makeFile({ x: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 8] } }, eightBytes);
    expectUserError(() => readSafetensors(file, LABEL), /needs 4835703278458516698824704 bytes/);
  });

  it('rejects overlapping tensors, naming both', () => {
    const file = makeFile(
      {
        a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
        b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
        c: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
      },
      f32le([1, 2, 3]),
    );
    expectUserError(() => readSafetensors(file, LABEL), /tensors 'b' and 'c' overlap \(bytes \[4, 12\) and \[8, 12\)\)/);
  });

  it('allows empty tensors to share an offset with others', () => {
    const file = makeFile(
      { a: { dtype: 'F32', shape: [0], data_offsets: [4, 4] }, b: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } },
      eightBytes,
    );
    expect(readSafetensors(file, LABEL).get('a')).toEqual({ shape: [0], data: new Float32Array(0) });
  });

  it('rejects __metadata__ that is not an object of strings', () => {
    expectUserError(() => readSafetensors(makeFile({ __metadata__: { epoch: 3 } }), LABEL), /'__metadata__' entry 'epoch' must be a string, got a number/);
    expectUserError(() => readSafetensors(makeFile({ __metadata__: 'pt' }), LABEL), /'__metadata__' must be an object of strings/);
  });
});

describe('Node Buffers', () => {
  it('reads a file held in a pooled Buffer view, as readFileSync returns small files', () => {
    const bytes = writeSafetensors([['w', { shape: [3], data: new Float32Array([1.5, -2, 3.25]) }]]);
    // Place the file at an odd offset inside a larger buffer, the way Node's pool does.
    const pool = Buffer.alloc(bytes.length + 13, 0x7f);
    pool.set(bytes, 5);
    const view = pool.subarray(5, 5 + bytes.length);
    expect([...readSafetensors(view, 'pooled').get('w')!.data]).toEqual([1.5, -2, 3.25]);
  });
});
