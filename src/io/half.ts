// Little-endian float decoding shared by the weight readers (safetensors, npy): every supported
// storage type becomes f32, because f32 is what the reference executor and backends compute in.
// Inputs are byte slices of a file, so nothing here may assume the slice is 2/4/8-byte aligned.

export type StoredFloat = 'f16' | 'bf16' | 'f32' | 'f64';

export const STORED_FLOAT_BYTES: Readonly<Record<StoredFloat, number>> = {
  f16: 2,
  bf16: 2,
  f32: 4,
  f64: 8,
};

// Typed arrays use host byte order; on a little-endian host (every platform Node runs on in
// practice) a copied slice can be viewed directly, which is far faster than a DataView loop.
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** IEEE 754 binary16 bits to the (exactly representable) f32 value. */
export function f16BitsToF32(bits: number): number {
  const negative = (bits & 0x8000) !== 0;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  let magnitude: number;
  if (exponent === 0) magnitude = fraction * 2 ** -24; // zero and subnormals
  else if (exponent === 0x1f) magnitude = fraction === 0 ? Infinity : NaN;
  else magnitude = (1 + fraction / 1024) * 2 ** (exponent - 15);
  return negative ? -magnitude : magnitude;
}

// One f32 seen as bits, so bf16 bits can be placed in its top half.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** bfloat16 bits to f32: bf16 is the top half of an f32, so this is exact. */
export function bf16BitsToF32(bits: number): number {
  scratchU32[0] = (bits & 0xffff) << 16;
  return scratchF32[0];
}

// All 65536 f16 values, built on first use; a table lookup beats the branchy arithmetic when
// converting tens of millions of weights.
let f16Table: Float32Array | undefined;
function f16ToF32Table(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let bits = 0; bits < 65536; bits++) f16Table[bits] = f16BitsToF32(bits);
  }
  return f16Table;
}

/**
 * Decodes `bytes` (little-endian elements of `kind`, any alignment) into a new Float32Array.
 * The caller has already checked that the length is a whole number of elements.
 */
export function decodeLittleEndianFloats(bytes: Uint8Array, kind: StoredFloat): Float32Array {
  const size = STORED_FLOAT_BYTES[kind];
  if (bytes.byteLength % size !== 0) {
    throw new Error(`decodeLittleEndianFloats: ${bytes.byteLength} bytes is not a whole number of ${kind}`);
  }
  const count = bytes.byteLength / size;
  if (HOST_IS_LITTLE_ENDIAN) {
    // Copying through the Uint8Array constructor gives a fresh, aligned ArrayBuffer. (slice()
    // would not: on a Node Buffer it returns a view into the shared pool.)
    const aligned = new Uint8Array(bytes).buffer;
    switch (kind) {
      case 'f32':
        return new Float32Array(aligned);
      case 'f64':
        return new Float32Array(new Float64Array(aligned)); // rounds to nearest f32
      case 'f16': {
        const table = f16ToF32Table();
        const halves = new Uint16Array(aligned);
        const out = new Float32Array(count);
        for (let i = 0; i < count; i++) out[i] = table[halves[i]];
        return out;
      }
      case 'bf16': {
        const halves = new Uint16Array(aligned);
        const out = new Float32Array(count);
        const outBits = new Uint32Array(out.buffer); // writing bits keeps NaN payloads intact
        for (let i = 0; i < count; i++) outBits[i] = halves[i] << 16;
        return out;
      }
    }
  }
  return decodeLittleEndianFloatsPortable(bytes, kind);
}

/** The byte-order-independent path; exported so tests can exercise it on little-endian hosts. */
export function decodeLittleEndianFloatsPortable(bytes: Uint8Array, kind: StoredFloat): Float32Array {
  const count = Math.floor(bytes.byteLength / STORED_FLOAT_BYTES[kind]);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  // f32 and bf16 are moved as bits, not through a JS number, so NaN payloads survive as they
  // do on the fast path.
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < count; i++) {
    switch (kind) {
      case 'f32':
        outBits[i] = view.getUint32(i * 4, true);
        break;
      case 'f64':
        out[i] = view.getFloat64(i * 8, true);
        break;
      case 'f16':
        out[i] = f16BitsToF32(view.getUint16(i * 2, true));
        break;
      case 'bf16':
        outBits[i] = view.getUint16(i * 2, true) << 16;
        break;
    }
  }
  return out;
}

/** The little-endian bytes of `data`, as a new array the caller may place anywhere. */
export function encodeF32LittleEndian(data: Float32Array): Uint8Array {
  if (HOST_IS_LITTLE_ENDIAN) return new Uint8Array(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  const out = new Uint8Array(data.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i], true);
  return out;
}
