// The safetensors weight format: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
// ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {string: string}}), then
// the data section, which offsets are relative to. Weight files come from users, so every field
// is checked before it is trusted: a bad file is a UserError naming the file and the tensor,
// never an out-of-bounds read or an allocation sized by an unchecked number.

import type { HostTensor } from '../ir/types.js';
import { userError } from '../util/diagnostics.js';
import { decodeLittleEndianFloats, encodeF32LittleEndian, STORED_FLOAT_BYTES, type StoredFloat } from './half.js';

export type { HostTensor };

export interface SafetensorsFile {
  readonly tensors: Map<string, HostTensor>;
  readonly metadata: Record<string, string>;
}

const METADATA_KEY = '__metadata__';
const HEADER_LENGTH_BYTES = 8;

const DTYPES: Readonly<Record<string, StoredFloat>> = { F32: 'f32', F16: 'f16', BF16: 'bf16', F64: 'f64' };
const SUPPORTED_DTYPES = Object.keys(DTYPES).join(', ');

interface TensorEntry {
  readonly name: string;
  readonly dtype: string;
  readonly shape: number[];
  readonly begin: number;
  readonly end: number;
}

/**
 * Reads every tensor of a safetensors file, converted to f32, in the order their data lies in
 * the file. `label` (the file path) prefixes every error message.
 */
export function readSafetensors(bytes: Uint8Array, label: string): Map<string, HostTensor> {
  return readSafetensorsWithMetadata(bytes, label).tensors;
}

/** Like readSafetensors, but also returns the optional "__metadata__" object. */
export function readSafetensorsWithMetadata(bytes: Uint8Array, label: string): SafetensorsFile {
  const fail = (message: string) => userError(`${label}: ${message}`);
  const header = parseHeader(bytes, fail);
  const dataStart = HEADER_LENGTH_BYTES + header.headerLength;
  const dataLength = bytes.byteLength - dataStart;

  const entries: TensorEntry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(header.json)) {
    if (name === METADATA_KEY) metadata = checkMetadata(value, fail);
    else entries.push(checkEntry(name, value, dataLength, fail));
  }
  checkLayout(entries, dataLength, fail);

  // Map order follows the data layout: JS objects hoist integer-like keys ("0", "10"), so the
  // header's own key order cannot be recovered from JSON.parse.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  const tensors = new Map<string, HostTensor>();
  for (const entry of entries) {
    const slice = bytes.subarray(dataStart + entry.begin, dataStart + entry.end);
    tensors.set(entry.name, { shape: entry.shape, data: decodeLittleEndianFloats(slice, DTYPES[entry.dtype]) });
  }
  return { tensors, metadata };
}

type Fail = (message: string) => Error;

function parseHeader(bytes: Uint8Array, fail: Fail): { headerLength: number; json: Record<string, unknown> } {
  if (bytes.byteLength < HEADER_LENGTH_BYTES) {
    throw fail(`file is ${bytes.byteLength} bytes, too short for a safetensors file (the header length alone is 8)`);
  }
  // Compared as a bigint so a corrupt length like 2^63 is rejected before anything is decoded.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const declared = view.getBigUint64(0, true);
  const available = bytes.byteLength - HEADER_LENGTH_BYTES;
  if (declared > BigInt(available)) {
    throw fail(
      `header length ${declared} is past the end of the file (only ${available} bytes follow the length field); ` +
        'the file is truncated or not a safetensors file',
    );
  }
  const headerLength = Number(declared);

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(HEADER_LENGTH_BYTES, HEADER_LENGTH_BYTES + headerLength));
  } catch {
    throw fail('header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw fail(`header is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!isPlainObject(json)) {
    throw fail(`header must be a JSON object mapping tensor names to {dtype, shape, data_offsets}, got ${kindOf(json)}`);
  }
  // JSON.parse keeps the last of two equal keys; the format forbids them, and silently taking one
  // of two tensors of the same name would load whichever the writer happened to put last.
  const duplicate = findDuplicateKey(text);
  if (duplicate !== undefined) throw fail(`header names ${JSON.stringify(duplicate).slice(0, 100)} twice; each key may appear once`);
  return { headerLength, json };
}

function checkMetadata(value: unknown, fail: Fail): Record<string, string> {
  if (!isPlainObject(value)) throw fail(`'${METADATA_KEY}' must be an object of strings, got ${kindOf(value)}`);
  const metadata: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') throw fail(`'${METADATA_KEY}' entry '${key}' must be a string, got ${kindOf(item)}`);
    metadata[key] = item;
  }
  return metadata;
}

function checkEntry(name: string, value: unknown, dataLength: number, fail: Fail): TensorEntry {
  const what = `tensor '${name}'`;
  if (!isPlainObject(value)) {
    throw fail(`${what} must be an object with dtype, shape and data_offsets, got ${kindOf(value)}`);
  }
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== 'string') throw fail(`${what} has no dtype string (got ${brief(dtype)}); supported: ${SUPPORTED_DTYPES}`);
  if (!Object.hasOwn(DTYPES, dtype)) throw fail(`${what} has dtype ${dtype}; supported: ${SUPPORTED_DTYPES}`);
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    throw fail(`${what} shape must be an array of non-negative integers, got ${brief(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
    throw fail(`${what} data_offsets must be two integers [begin, end] with 0 <= begin <= end, got ${brief(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (end > dataLength) {
    throw fail(`${what} data ends at byte ${end} but the data section is only ${dataLength} bytes`);
  }
  // BigInt so a shape with a huge product is reported exactly rather than as a rounded float.
  const expected = (shape as number[]).reduce((n, d) => n * BigInt(d), BigInt(STORED_FLOAT_BYTES[DTYPES[dtype]]));
  if (BigInt(end - begin) !== expected) {
    throw fail(`${what} has ${end - begin} bytes of data but shape ${brief(shape)} of ${dtype} needs ${expected} bytes`);
  }
  return { name, dtype, shape: [...(shape as number[])], begin, end };
}

/**
 * The tensors' bytes must tile the data section: no overlaps, no holes between tensors and no
 * bytes after the last one (the format forbids all three; a hole or a tail usually means a
 * wrong offset). Bytes before the first tensor are tolerated as alignment padding.
 */
function checkLayout(entries: readonly TensorEntry[], dataLength: number, fail: Fail): void {
  // Empty ranges hold no bytes, so they cannot overlap anything or leave a hole.
  const sorted = entries.filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin);
  let furthest: TensorEntry | undefined;
  if (sorted.length > 0 && sorted[0].begin > 0) {
    throw fail(`bytes [0, ${sorted[0].begin}) before tensor '${sorted[0].name}' belong to no tensor; the data_offsets are wrong or the file is corrupt`);
  }
  for (const entry of sorted) {
    if (furthest && entry.begin < furthest.end) {
      throw fail(
        `tensors '${furthest.name}' and '${entry.name}' overlap ` +
          `(bytes [${furthest.begin}, ${furthest.end}) and [${entry.begin}, ${entry.end}))`,
      );
    }
    if (furthest && entry.begin > furthest.end) {
      throw fail(
        `bytes [${furthest.end}, ${entry.begin}) between tensors '${furthest.name}' and '${entry.name}' belong to no tensor; ` +
          'the data_offsets are wrong or the file is corrupt',
      );
    }
    if (!furthest || entry.end > furthest.end) furthest = entry;
  }
  const end = furthest?.end ?? 0;
  if (end !== dataLength) {
    throw fail(`${dataLength - end} bytes after the last tensor's data belong to no tensor; the data section is ${dataLength} bytes but the tensors end at byte ${end}`);
  }
}

/** The first key that appears twice in one object of valid JSON `text`, if any. */
function findDuplicateKey(text: string): string | undefined {
  // A scanner over valid JSON (JSON.parse already accepted it): objects and arrays nest, and a
  // string is a key when it comes first in an object or right after a comma in one.
  const frames: { keys: Set<string> | undefined; expectKey: boolean }[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const start = i;
      for (i++; text[i] !== '"'; i++) if (text[i] === '\\') i++;
      const frame = frames.at(-1);
      if (frame?.keys && frame.expectKey) {
        const key = JSON.parse(text.slice(start, i + 1)) as string;
        if (frame.keys.has(key)) return key;
        frame.keys.add(key);
        frame.expectKey = false;
      }
    } else if (c === '{') frames.push({ keys: new Set(), expectKey: true });
    else if (c === '[') frames.push({ keys: undefined, expectKey: false });
    else if (c === '}' || c === ']') frames.pop();
    else if (c === ',') {
      const frame = frames.at(-1);
      if (frame?.keys) frame.expectKey = true;
    }
  }
  return undefined;
}

/**
 * Writes f32 tensors in iteration order. The header is padded with spaces to a multiple of 8
 * bytes, as the format recommends, so the data section starts 8-byte aligned.
 */
export function writeSafetensors(
  tensors: ReadonlyMap<string, HostTensor> | Iterable<[string, HostTensor]>,
  metadata?: Record<string, string>,
): Uint8Array {
  // The header is assembled by hand rather than JSON.stringify-ing one object, because object
  // key order puts integer-like names ("0", "1") first and the layout should follow the input.
  const headerParts: string[] = [];
  if (metadata !== undefined) headerParts.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`);
  const payloads: Uint8Array[] = [];
  const seen = new Set<string>();
  let offset = 0;
  for (const [name, tensor] of tensors) {
    if (name === METADATA_KEY) throw new Error(`writeSafetensors: '${METADATA_KEY}' is reserved and cannot name a tensor`);
    if (seen.has(name)) throw new Error(`writeSafetensors: duplicate tensor name '${name}'`);
    seen.add(name);
    const numel = tensor.shape.reduce((n, d) => n * d, 1);
    if (numel !== tensor.data.length) {
      throw new Error(`writeSafetensors: tensor '${name}' has shape [${tensor.shape}] but ${tensor.data.length} values`);
    }
    const payload = encodeF32LittleEndian(tensor.data);
    const entry = { dtype: 'F32', shape: [...tensor.shape], data_offsets: [offset, offset + payload.byteLength] };
    headerParts.push(`${JSON.stringify(name)}:${JSON.stringify(entry)}`);
    payloads.push(payload);
    offset += payload.byteLength;
  }

  const unpadded = new TextEncoder().encode(`{${headerParts.join(',')}}`);
  const headerLength = Math.ceil(unpadded.byteLength / 8) * 8;
  const out = new Uint8Array(HEADER_LENGTH_BYTES + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(unpadded, HEADER_LENGTH_BYTES);
  out.fill(0x20, HEADER_LENGTH_BYTES + unpadded.byteLength, HEADER_LENGTH_BYTES + headerLength);
  let position = HEADER_LENGTH_BYTES + headerLength;
  for (const payload of payloads) {
    out.set(payload, position);
    position += payload.byteLength;
  }
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** A JSON rendering short enough for an error message, even for a 10^6-element "shape". */
function brief(value: unknown): string {
  const text = value === undefined ? 'nothing' : JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
