// A minimal protobuf *writer*: exactly the wire types ONNX's ModelProto needs (varint, 32-bit
// fixed and length-delimited). It writes, never parses, and knows no schema: the caller says
// which field number holds what (see onnx.ts). Encoding rules:
// https://protobuf.dev/programming-guides/encoding/

/** The wire types used here; 64-bit fixed (1) and the deprecated groups (3, 4) are not needed. */
export const WireType = { varint: 0, lengthDelimited: 2, fixed32: 5 } as const;
type WireTypeValue = (typeof WireType)[keyof typeof WireType];

/**
 * Payloads at least this long are kept by reference and copied once, when the message is
 * finished: weights are most of a model's bytes, so they should not be copied per nesting level.
 */
const KEEP_BY_REFERENCE = 1024;

const utf8 = new TextEncoder();

/**
 * The varint encoding of an integer: 7 bits a byte, least significant first, high bit set on
 * every byte but the last. Negative numbers are int64 two's complement (always 10 bytes), as
 * protobuf encodes int32 and int64 fields.
 */
export function encodeVarint(value: number | bigint): Uint8Array {
  const bytes: number[] = [];
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new RangeError(`protobuf varint: ${value} is not a safe integer`);
    if (value >= 0) {
      // Division, not >>>: shifts would cut the value to 32 bits.
      let rest = value;
      while (rest >= 0x80) {
        bytes.push((rest % 0x80) | 0x80);
        rest = Math.floor(rest / 0x80);
      }
      bytes.push(rest);
      return Uint8Array.from(bytes);
    }
  }
  const min = -(1n << 63n);
  const max = (1n << 64n) - 1n;
  const big = BigInt(value);
  if (big < min || big > max) throw new RangeError(`protobuf varint: ${big} does not fit 64 bits`);
  let rest = BigInt.asUintN(64, big);
  while (rest >= 0x80n) {
    bytes.push(Number(rest & 0x7fn) | 0x80);
    rest >>= 7n;
  }
  bytes.push(Number(rest));
  return Uint8Array.from(bytes);
}

/**
 * Builds one message. Field methods append `tag, payload`; `message` nests another writer's
 * bytes behind a length prefix. `finish` returns the bytes, which is the serialized message.
 */
export class ProtobufWriter {
  /** Finished pieces, in order: copies of the scratch buffer and large payloads by reference. */
  private readonly chunks: Uint8Array[] = [];
  private chunkBytes = 0;
  private scratch = new Uint8Array(256);
  private used = 0;

  /** Bytes written so far. */
  get length(): number {
    return this.chunkBytes + this.used;
  }

  /** A varint-encoded field: int32, int64, uint64, bool and enum fields are all this. */
  varint(field: number, value: number | bigint): this {
    this.tag(field, WireType.varint);
    this.raw(encodeVarint(value));
    return this;
  }

  /** A `float` field: IEEE 754 single precision, little-endian. */
  float(field: number, value: number): this {
    this.tag(field, WireType.fixed32);
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    this.raw(bytes);
    return this;
  }

  /** A `string` field, UTF-8. */
  string(field: number, value: string): this {
    return this.bytes(field, utf8.encode(value));
  }

  /** A `bytes` field. Large payloads are kept by reference until `finish`: do not change them before. */
  bytes(field: number, value: Uint8Array): this {
    this.tag(field, WireType.lengthDelimited);
    this.raw(encodeVarint(value.length));
    this.raw(value);
    return this;
  }

  /** An embedded message field, built by `build` on a fresh writer. */
  message(field: number, build: (writer: ProtobufWriter) => void): this {
    const inner = new ProtobufWriter();
    build(inner);
    this.tag(field, WireType.lengthDelimited);
    this.raw(encodeVarint(inner.length));
    inner.flush();
    for (const chunk of inner.chunks) this.raw(chunk);
    return this;
  }

  /** A packed repeated varint field (repeated int64 / int32). Nothing is written for an empty list. */
  packedVarints(field: number, values: readonly (number | bigint)[]): this {
    if (values.length === 0) return this;
    const encoded = values.map((v) => encodeVarint(v));
    this.tag(field, WireType.lengthDelimited);
    this.raw(encodeVarint(encoded.reduce((sum, e) => sum + e.length, 0)));
    for (const e of encoded) this.raw(e);
    return this;
  }

  /** A packed repeated float field. Nothing is written for an empty list. */
  packedFloats(field: number, values: readonly number[]): this {
    if (values.length === 0) return this;
    const bytes = new Uint8Array(4 * values.length);
    const view = new DataView(bytes.buffer);
    values.forEach((v, i) => view.setFloat32(4 * i, v, true));
    return this.bytes(field, bytes);
  }

  /** The serialized message. The writer can still be appended to afterwards. */
  finish(): Uint8Array {
    this.flush();
    if (this.chunks.length === 1) return this.chunks[0];
    const result = new Uint8Array(this.chunkBytes);
    let offset = 0;
    for (const chunk of this.chunks) {
      result.set(chunk, offset);
      offset += chunk.length;
    }
    this.chunks.splice(0, this.chunks.length, result);
    return result;
  }

  private tag(field: number, wireType: WireTypeValue): void {
    if (!Number.isInteger(field) || field < 1 || field > 0x1fffffff) throw new RangeError(`protobuf: invalid field number ${field}`);
    this.raw(encodeVarint(field * 8 + wireType));
  }

  /** Appends bytes: small ones to the scratch buffer, large ones as their own chunk. */
  private raw(bytes: Uint8Array): void {
    if (bytes.length >= KEEP_BY_REFERENCE) {
      this.append(bytes);
      return;
    }
    if (this.used + bytes.length > this.scratch.length) {
      const grown = new Uint8Array(Math.max(2 * this.scratch.length, this.used + bytes.length));
      grown.set(this.scratch.subarray(0, this.used));
      this.scratch = grown;
    }
    this.scratch.set(bytes, this.used);
    this.used += bytes.length;
  }

  private append(chunk: Uint8Array): void {
    this.flush();
    this.chunks.push(chunk);
    this.chunkBytes += chunk.length;
  }

  /** Moves the scratch buffer's bytes into the chunk list. */
  private flush(): void {
    if (this.used === 0) return;
    this.chunks.push(this.scratch.slice(0, this.used));
    this.chunkBytes += this.used;
    this.used = 0;
  }
}
