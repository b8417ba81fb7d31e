// NumPy's .npy format: magic "\x93NUMPY", a major/minor version, a header length (u16 in 1.0,
// u32 in 2.0 and 3.0), then a Python dict literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// padded with spaces and a final '\n', then the raw data in C order. Input tensors come from
// users, so every part is checked and a bad file is a UserError that names the file.

import { userError } from '../util/diagnostics.js';
import { decodeLittleEndianFloats, encodeF32LittleEndian, STORED_FLOAT_BYTES, type StoredFloat } from './half.js';
import type { HostTensor } from '../ir/types.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
const DESCRS: Readonly<Record<string, StoredFloat>> = { '<f4': 'f32', '<f8': 'f64', '<f2': 'f16' };
const SUPPORTED_DESCRS = Object.keys(DESCRS).join(', ');
// numpy aligns the data to 64 bytes so it can be memory-mapped with any SIMD width.
const DATA_ALIGNMENT = 64;
// Modern numpy leaves room to rewrite shape[0] in place when appending; matching it makes our
// files byte-identical to np.save's.
const GROWTH_AXIS_MAX_DIGITS = 21;

/** Reads a .npy file of little-endian f4, f8 or f2, converted to f32. `label` prefixes errors. */
export function readNpy(bytes: Uint8Array, label: string): HostTensor {
  const fail = (message: string) => userError(`${label}: ${message}`);
  if (bytes.byteLength < 10 || MAGIC.some((byte, i) => bytes[i] !== byte)) {
    throw fail('not a .npy file (it does not start with the magic bytes "\\x93NUMPY")');
  }
  const major = bytes[6];
  const minor = bytes[7];
  if (![1, 2, 3].includes(major) || minor !== 0) {
    throw fail(`unsupported .npy format version ${major}.${minor}; supported: 1.0, 2.0, 3.0`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lengthFieldBytes = major === 1 ? 2 : 4;
  const headerStart = 8 + lengthFieldBytes;
  if (bytes.byteLength < headerStart) throw fail(`file is truncated inside the header length (${bytes.byteLength} bytes)`);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = headerStart + headerLength;
  if (dataStart > bytes.byteLength) {
    throw fail(`file is truncated: the header claims ${headerLength} bytes but only ${bytes.byteLength - headerStart} follow`);
  }

  const headerText = decodeHeaderText(bytes.subarray(headerStart, dataStart), major, fail);
  const header = parsePythonLiteral(headerText, (message) => fail(`header is not a valid Python dict literal: ${message}`));
  const { kind, descr, shape } = checkHeader(header, fail);

  const numel = shape.reduce((n, d) => n * BigInt(d), 1n);
  const needed = numel * BigInt(STORED_FLOAT_BYTES[kind]);
  const present = bytes.byteLength - dataStart;
  if (BigInt(present) !== needed) {
    const problem = BigInt(present) < needed ? 'data is truncated' : 'file has extra bytes after the data';
    throw fail(`${problem}: shape ${pythonTuple(shape)} of ${descr} needs ${needed} bytes but ${present} follow the header`);
  }
  return { shape, data: decodeLittleEndianFloats(bytes.subarray(dataStart), kind) };
}

function decodeHeaderText(header: Uint8Array, major: number, fail: (message: string) => Error): string {
  if (major === 3) {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(header);
    } catch {
      throw fail('header is not valid UTF-8 (required by .npy version 3.0)');
    }
  }
  // Versions 1.0 and 2.0 are latin-1, where every byte is the code point of the same value.
  let text = '';
  for (const byte of header) text += String.fromCharCode(byte);
  return text;
}

function checkHeader(
  header: PythonLiteral,
  fail: (message: string) => Error,
): { kind: StoredFloat; descr: string; shape: number[] } {
  if (!(header instanceof Map)) throw fail("header must be a dict with 'descr', 'fortran_order' and 'shape'");
  for (const key of ['descr', 'fortran_order', 'shape']) {
    if (!header.has(key)) throw fail(`header has no '${key}' key`);
  }
  const descr = header.get('descr');
  if (typeof descr !== 'string') throw fail(`structured dtypes are not supported; supported: ${SUPPORTED_DESCRS}`);
  if (descr.startsWith('>')) {
    throw fail(`dtype '${descr}' is big-endian, which is not supported; convert with arr.astype('<f4') before saving`);
  }
  if (!Object.hasOwn(DESCRS, descr)) throw fail(`dtype '${descr}' is not supported; supported: ${SUPPORTED_DESCRS}`);

  const fortranOrder = header.get('fortran_order');
  if (typeof fortranOrder !== 'boolean') throw fail("'fortran_order' must be True or False");
  if (fortranOrder) {
    throw fail('fortran_order True (column-major) arrays are not supported; save np.ascontiguousarray(arr) instead');
  }

  const shape = header.get('shape');
  if (!(typeof shape === 'object' && shape !== null && 'tuple' in shape) || !shape.tuple.every(isCount)) {
    throw fail("'shape' must be a tuple of non-negative integers");
  }
  return { kind: DESCRS[descr], descr, shape: shape.tuple as number[] };
}

/** Writes a version 1.0 '<f4' C-order .npy file, byte-identical to np.save of the same array. */
export function writeNpy(t: HostTensor): Uint8Array {
  const numel = t.shape.reduce((n, d) => n * d, 1);
  if (numel !== t.data.length) throw new Error(`writeNpy: shape ${pythonTuple(t.shape)} but ${t.data.length} values`);
  const growthRoom = t.shape.length > 0 ? GROWTH_AXIS_MAX_DIGITS - String(t.shape[0]).length : 0;
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${pythonTuple(t.shape)}, }${' '.repeat(growthRoom)}`;
  // numpy always adds 1..64 spaces (never zero) before the newline; copy that for identical bytes.
  const prefixBytes = MAGIC.length + 2 + 2;
  const padding = DATA_ALIGNMENT - ((prefixBytes + dict.length + 1) % DATA_ALIGNMENT);
  const header = `${dict}${' '.repeat(padding)}\n`;
  if (header.length > 0xffff) throw new Error(`writeNpy: ${t.shape.length} dimensions do not fit a version 1.0 header`);

  const payload = encodeF32LittleEndian(t.data);
  const out = new Uint8Array(prefixBytes + header.length + payload.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[prefixBytes + i] = header.charCodeAt(i); // ASCII only
  out.set(payload, prefixBytes + header.length);
  return out;
}

/** Python's repr of a tuple of ints: (), (5,), (2, 3). */
function pythonTuple(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}

function isCount(value: PythonLiteral): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

// The header is a Python literal, parsed here rather than evaluated. Only the forms np.save can
// produce are understood: dicts, tuples, lists, quoted strings, ints, True, False and None.

type PythonLiteral = string | number | boolean | null | PythonTuple | PythonList | Map<string, PythonLiteral>;
interface PythonTuple {
  readonly tuple: PythonLiteral[];
}
interface PythonList {
  readonly list: PythonLiteral[];
}

const ATOM = /-?\d+L?|True|False|None/y;
// Bounds recursion so a hostile header of a million '(' fails cleanly instead of overflowing.
const MAX_NESTING = 64;

function parsePythonLiteral(text: string, fail: (message: string) => Error): PythonLiteral {
  let pos = 0;
  let depth = 0;
  const found = () => (pos < text.length ? `'${text[pos]}'` : 'the end of the header');
  const skipSpace = () => {
    while (pos < text.length && ' \t\r\n'.includes(text[pos])) pos++;
  };
  const expect = (char: string) => {
    skipSpace();
    if (text[pos] !== char) throw fail(`expected '${char}' at offset ${pos}, found ${found()}`);
    pos++;
  };
  // Reads `item`s up to `close`, allowing a trailing comma; reports whether any comma was seen,
  // since that is what makes "(5,)" a tuple and "(5)" a plain int.
  const sequence = (close: string, item: () => void): boolean => {
    let sawComma = false;
    for (;;) {
      skipSpace();
      if (text[pos] === close) break;
      item();
      skipSpace();
      if (text[pos] !== ',') break;
      sawComma = true;
      pos++;
    }
    expect(close);
    return sawComma;
  };

  const value = (): PythonLiteral => {
    skipSpace();
    const char = text[pos];
    if (char === "'" || char === '"') return quoted(char);
    if (char === '{' || char === '(' || char === '[') {
      if (++depth > MAX_NESTING) throw fail(`brackets nested too deeply at offset ${pos}`);
      pos++;
      const result = container(char);
      depth--;
      return result;
    }
    ATOM.lastIndex = pos;
    const word = ATOM.exec(text)?.[0];
    if (word === undefined) throw fail(`unexpected ${found()} at offset ${pos}`);
    pos += word.length;
    if (word === 'True' || word === 'False') return word === 'True';
    if (word === 'None') return null;
    return Number(word.replace('L', '')); // Python 2 wrote long ints as "3L"
  };

  const container = (open: '{' | '(' | '['): PythonLiteral => {
    if (open === '{') {
      const dict = new Map<string, PythonLiteral>();
      sequence('}', () => {
        const key = value();
        if (typeof key !== 'string') throw fail(`dict keys must be strings (near offset ${pos})`);
        // np.save never repeats a key; a repeated 'shape' or 'descr' would leave the real one unclear.
        if (dict.has(key)) throw fail(`key '${key.slice(0, 40)}' appears twice (near offset ${pos})`);
        expect(':');
        dict.set(key, value());
      });
      return dict;
    }
    const items: PythonLiteral[] = [];
    const sawComma = sequence(open === '(' ? ')' : ']', () => items.push(value()));
    if (open === '[') return { list: items };
    return items.length === 1 && !sawComma ? items[0] : { tuple: items };
  };

  const quoted = (quote: string): string => {
    const start = pos++;
    let result = '';
    while (pos < text.length && text[pos] !== quote) {
      if (text[pos] === '\\') pos++; // an escaped character stands for itself
      result += text[pos++] ?? '';
    }
    if (pos >= text.length) throw fail(`string starting at offset ${start} is not closed`);
    pos++;
    return result;
  };

  const result = value();
  skipSpace();
  if (pos !== text.length) throw fail(`unexpected ${found()} at offset ${pos} after the dict`);
  return result;
}
