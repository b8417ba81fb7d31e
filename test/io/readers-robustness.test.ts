// The weight and input readers face files from anywhere: the safetensors layout rules the format
// states (unique keys, tensors tiling the data section), and property tests that mutated files
// end in a UserError or a result, never in any other exception.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readNpy, writeNpy } from '../../src/io/npy.js';
import { readSafetensors, readSafetensorsWithMetadata, writeSafetensors } from '../../src/io/safetensors.js';
import { UserError } from '../../src/util/diagnostics.js';

const LABEL = 'w.safetensors';

function makeFile(header: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const headerBytes = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + headerBytes.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  out.set(data, 8 + headerBytes.byteLength);
  return out;
}

const entry = (begin: number, end: number, shape = [(end - begin) / 4]) => JSON.stringify({ dtype: 'F32', shape, data_offsets: [begin, end] });

describe('safetensors layout', () => {
  it('rejects a tensor name given twice', () => {
    const file = makeFile(`{"a":${entry(0, 4)},"a":${entry(4, 8)}}`, new Uint8Array(8));
    expect(() => readSafetensors(file, LABEL)).toThrow(UserError);
    expect(() => readSafetensors(file, LABEL)).toThrow(/header names "a" twice/);
  });

  it('rejects a key given twice inside an entry, and escaped spellings of the same name', () => {
    const inner = makeFile(`{"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}`, new Uint8Array(4));
    expect(() => readSafetensors(inner, LABEL)).toThrow(/"dtype" twice/);
    const escaped = makeFile(`{"a":${entry(0, 4)},"\\u0061":${entry(4, 8)}}`, new Uint8Array(8));
    expect(() => readSafetensors(escaped, LABEL)).toThrow(/"a" twice/);
  });

  it('accepts equal keys in different objects and strings that look like keys in arrays', () => {
    const file = makeFile(`{"__metadata__":{"a":"[\\"a\\",{"},"a":${entry(0, 4)},"b":${entry(4, 8)}}`, new Uint8Array(8));
    expect([...readSafetensors(file, LABEL).keys()]).toEqual(['a', 'b']);
  });

  it('rejects a hole between two tensors', () => {
    const file = makeFile(`{"a":${entry(0, 4)},"b":${entry(8, 12)}}`, new Uint8Array(12));
    expect(() => readSafetensors(file, LABEL)).toThrow(/bytes \[4, 8\) between tensors 'a' and 'b' belong to no tensor/);
  });

  it('rejects bytes after the last tensor', () => {
    const file = makeFile(`{"a":${entry(0, 4)}}`, new Uint8Array(5));
    expect(() => readSafetensors(file, LABEL)).toThrow(/1 bytes after the last tensor's data belong to no tensor/);
    expect(() => readSafetensors(makeFile('{}', new Uint8Array(3)), LABEL)).toThrow(/3 bytes after the last tensor/);
  });

  it('still reads what the writer writes, empty tensors included', () => {
    const bytes = writeSafetensors([
      ['x', { shape: [2], data: new Float32Array([1, 2]) }],
      ['empty', { shape: [0], data: new Float32Array(0) }],
      ['y', { shape: [1], data: new Float32Array([3]) }],
    ]);
    expect([...readSafetensors(bytes, LABEL).keys()].sort()).toEqual(['empty', 'x', 'y']);
  });
});

/** Applies one random damage to a copy of `bytes`. */
const damage = (bytes: Uint8Array) =>
  fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), data: fc.uint8Array({ maxLength: 16 }) }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }),
    fc.record({ kind: fc.constant('text' as const), at: fc.nat(), text: fc.constantFrom('"', '{', '}', '[', ']', ',', ':', '-1', '1e400', '9007199254740993', '"a"', 'null', '(', ')', "'", 'True', '\\', '\u0000', '\uFFFF') }),
  ).map((d) => {
    const at = bytes.length === 0 ? 0 : d.at % (bytes.length + 1);
    switch (d.kind) {
      case 'flip': {
        const out = bytes.slice();
        if (out.length > 0) out[at % out.length] = d.value;
        return out;
      }
      case 'truncate':
        return bytes.slice(0, at);
      case 'insert':
        return new Uint8Array([...bytes.subarray(0, at), ...d.data, ...bytes.subarray(at)]);
      case 'delete':
        return new Uint8Array([...bytes.subarray(0, at), ...bytes.subarray(at + d.length)]);
      case 'text':
        return new Uint8Array([...bytes.subarray(0, at), ...new TextEncoder().encode(d.text), ...bytes.subarray(at)]);
    }
  });

/** Several damages in a row. */
function mutated(seed: Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc.integer({ min: 1, max: 4 }).chain((n) => {
    let arb: fc.Arbitrary<Uint8Array> = fc.constant(seed);
    for (let i = 0; i < n; i++) arb = arb.chain((bytes) => damage(bytes));
    return arb;
  });
}

/** Returns, or throws a UserError; anything else fails the property. */
function onlyUserErrors(read: () => unknown): void {
  try {
    read();
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
  }
}

describe('readers on mutated files', () => {
  const tensors = new Map([
    ['stages.0.0.dwconv.weight', { shape: [2, 1, 3, 3], data: Float32Array.from({ length: 18 }, (_, i) => i / 7) }],
    ['0', { shape: [3], data: new Float32Array([1, -2, 3]) }],
    ['empty', { shape: [0, 4], data: new Float32Array(0) }],
  ]);
  const safetensors = writeSafetensors(tensors, { format: 'pt' });

  it('safetensors: a UserError or a result, never another exception', () => {
    fc.assert(
      fc.property(mutated(safetensors), (bytes) => onlyUserErrors(() => readSafetensorsWithMetadata(bytes, LABEL))),
      { numRuns: 3000 },
    );
  });

  it('safetensors: hand-written headers with odd fields', () => {
    const field = fc.oneof(fc.constant('F32'), fc.constant('F16'), fc.constant('I8'), fc.integer(), fc.double(), fc.constant(null), fc.array(fc.integer({ min: -2, max: 2 ** 53 }), { maxLength: 4 }), fc.string({ maxLength: 4 }));
    const header = fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.record({ dtype: field, shape: field, data_offsets: field }), field), { maxKeys: 4 });
    fc.assert(
      fc.property(header, fc.uint8Array({ maxLength: 64 }), (h, data) => onlyUserErrors(() => readSafetensors(makeFile(JSON.stringify(h), data), LABEL))),
      { numRuns: 2000 },
    );
  });

  it('npy: a UserError or a result, never another exception', () => {
    const npy = writeNpy({ shape: [2, 3, 1], data: new Float32Array([1, 2, 3, 4, 5, 6]) });
    fc.assert(fc.property(mutated(npy), (bytes) => onlyUserErrors(() => readNpy(bytes, 'x.npy'))), { numRuns: 3000 });
  });

  it('npy: deep or long headers end quickly', () => {
    const header = (text: string) => {
      const body = new TextEncoder().encode(text);
      const out = new Uint8Array(12 + body.length);
      out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0]);
      new DataView(out.buffer).setUint32(8, body.length, true);
      out.set(body, 12);
      return out;
    };
    for (const text of ['('.repeat(1_000_000), `{'shape': (${'1,'.repeat(200_000)}), 'descr': '<f4', 'fortran_order': False}`, "'".repeat(100_000)]) {
      const start = performance.now();
      expect(() => readNpy(header(text), 'x.npy')).toThrow(UserError);
      expect(performance.now() - start).toBeLessThan(5000);
    }
  });
});

describe('npy header', () => {
  it('rejects a dict key given twice', () => {
    const text = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'shape': (2,), }\n";
    const body = new TextEncoder().encode(text);
    const out = new Uint8Array(10 + body.length + 8);
    out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    new DataView(out.buffer).setUint16(8, body.length, true);
    out.set(body, 10);
    expect(() => readNpy(out, 'x.npy')).toThrow(UserError);
    expect(() => readNpy(out, 'x.npy')).toThrow(/key 'shape' appears twice/);
  });
});
