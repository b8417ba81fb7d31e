// The CPU interpreter of the kernel IR: runs a KernelProgram over Float32Arrays with real
// workgroup semantics (threads that meet at barriers, fresh workgroup memory per workgroup),
// GPU arithmetic (every f32 step rounded, u32/i32 wrapping) and checks a GPU would not make:
// bounds, read-only stores, barrier divergence and workgroup-memory races. Tests use it to
// prove a lowering right without a GPU, and to make a wrong one fail loudly instead of
// giving plausible numbers.
//
// Speed matters (property tests run many programs), so each Expr and Stmt is compiled once
// into closures over a per-thread state, with scalars in slots fixed at compile time. Only
// statement lists that can reach a barrier become generators, which yield at each barrier;
// the driver steps every thread of a workgroup to its next barrier, then checks they agree.
// A vec4f expression compiles to a closure that fills and returns a 4-float array of its own
// (Float32Array, so each component is rounded to f32 as it is stored); its parent reads it
// before anything can run that closure again. A vec4f let or var takes four slots.
import { erfF32 } from './erf.js';
import { roundF16 } from './f16.js';
import { expandReductions } from './expand.js';
import type { BinaryOp, Expr, KernelProgram, ScalarType, Stmt, UnaryOp } from './ir.js';

export class KernelFault extends Error {
  override readonly name = 'KernelFault';
}

export interface InterpretOptions {
  /** check for workgroup-memory data races (default true) */
  readonly races?: boolean;
}

/** One thread's private state. Bools live in `slots` as 1 and 0. */
interface Thread {
  readonly local: number;
  readonly group: number;
  readonly slots: Float64Array;
  readonly regs: (Float32Array | undefined)[];
}

type Num = (t: Thread) => number;
/** A vec4f: the returned array belongs to the closure and is overwritten by its next call. */
type Vec = (t: Thread) => Float32Array;
type Bool = (t: Thread) => boolean;
type Plain = (t: Thread) => void;
/** Yields the id of the barrier the thread waits at. */
type Gen = (t: Thread) => Generator<number, void, undefined>;
type Compiled = { readonly gen: false; readonly run: Plain } | { readonly gen: true; readonly run: Gen };

type Binding =
  | { readonly kind: 'scalar'; readonly slot: number; readonly type: ScalarType; readonly mutable: boolean }
  | { readonly kind: 'registers'; readonly slot: number; readonly length: number };

class Scope {
  readonly names = new Map<string, Binding>();
  constructor(readonly parent: Scope | undefined) {}
  find(name: string): Binding | undefined {
    for (let s: Scope | undefined = this; s; s = s.parent) {
      const b = s.names.get(name);
      if (b) return b;
    }
    return undefined;
  }
}

/** A workgroup array with, per cell, who wrote and read it since the last barrier. */
interface SharedState {
  readonly data: Float32Array;
  /** Tracking is valid for a cell only where stamp equals the current epoch, so a barrier resets it in O(1). */
  readonly stamp: Int32Array;
  readonly writer: Int32Array;
  readonly reader: Int32Array;
  /** A reader other than `reader`, so a later write by `reader` itself still finds a conflict. */
  readonly otherReader: Int32Array;
}

/** What the compiled closures reach at run time; the driver refreshes it per workgroup. */
interface Runtime {
  shared: SharedState[];
  epoch: number;
}

/** What a vector access requires of its memory (see ir.ts). */
const vectorRule = 'vector loads and stores need a buffer or shared array declared vector: 4';

const U32_MAX = 0xffffffff;
const I32_MIN = -0x80000000;
const I32_MAX = 0x7fffffff;

class Compiler {
  slots = 0;
  regSlots = 0;
  barriers = 0;
  /** Collective points that are subgroup shuffles rather than barriers, by id. */
  readonly shuffles = new Map<number, { readonly slot: number; readonly mask: number }>();
  readonly sharedIndex = new Map<string, number>();
  readonly bufferIndex = new Map<string, number>();

  constructor(
    readonly program: KernelProgram,
    readonly rt: Runtime,
    readonly buffers: readonly Float32Array[],
    readonly races: boolean,
  ) {
    program.buffers.forEach((b, i) => {
      if (this.bufferIndex.has(b.name)) throw this.static(`buffer ${b.name} is declared twice`);
      this.vectorDecl('buffer', b);
      if (b.dtype !== 'f32' && b.dtype !== 'f16') throw this.static(`buffer ${b.name} stores ${String(b.dtype)} (f32 and f16 exist)`);
      const elements = b.layout.shape.reduce((a, d) => a * d, 1);
      if (b.layout.axes.length !== b.layout.shape.length || elements !== b.length) {
        throw this.static(`buffer ${b.name}'s layout [${b.layout.axes.join(', ')}] of shape [${b.layout.shape.join(', ')}] does not hold its length ${b.length}`);
      }
      this.bufferIndex.set(b.name, i);
    });
    program.shared.forEach((s, i) => {
      if (this.sharedIndex.has(s.name) || this.bufferIndex.has(s.name)) throw this.static(`workgroup array ${s.name} is declared twice`);
      if (!Number.isInteger(s.length) || s.length < 0) throw this.static(`workgroup array ${s.name} has length ${s.length}`);
      this.vectorDecl('workgroup array', s);
      this.sharedIndex.set(s.name, i);
    });
  }

  vectorDecl(what: string, d: { readonly name: string; readonly length: number; readonly vector?: number }): void {
    if (d.vector === undefined) return;
    if (d.vector !== 4) throw this.static(`${what} ${d.name} declares vector ${d.vector} (only 4 exists)`);
    if (d.length % 4 !== 0) throw this.static(`${what} ${d.name} is vector: 4 but its length ${d.length} is not a multiple of 4`);
  }

  static(what: string): KernelFault {
    return new KernelFault(`kernel ${this.program.name} (checked before running): ${what}`);
  }

  fault(t: Thread, what: string): KernelFault {
    return new KernelFault(`kernel ${this.program.name}, workgroup ${t.group}, thread ${t.local}: ${what}`);
  }

  // ---- expressions ----

  num(e: Expr, sc: Scope): Num {
    if (e.type === 'bool') throw this.static(`a bool expression (${e.kind}) where a number is needed`);
    if (e.type === 'vec4f') throw this.static(`a vec4f expression (${e.kind}) where a scalar is needed`);
    switch (e.kind) {
      case 'const': {
        const v = e.value;
        if (typeof v !== 'number') throw this.static(`${e.type} constant ${String(v)} is not a number`);
        if (e.type === 'f32') {
          const c = Math.fround(v);
          return () => c;
        }
        const ok = e.type === 'u32' ? Number.isInteger(v) && v >= 0 && v <= U32_MAX : Number.isInteger(v) && v >= I32_MIN && v <= I32_MAX;
        if (!ok) throw this.static(`${v} is not a ${e.type}`);
        const c = v === 0 ? 0 : v; // no -0 in integer arithmetic
        return () => c;
      }
      case 'ref': {
        const slot = this.scalar(e.name, e.type, sc);
        return (t) => t.slots[slot];
      }
      case 'builtin':
        return e.name === 'local' ? (t) => t.local : (t) => t.group;
      case 'binary':
        return this.arith(e.op, e.type, e.a, e.b, sc);
      case 'unary':
        return this.unaryNum(e.op, e.type, e.a, sc);
      case 'cast':
        return this.castNum(e.type, e.a, sc);
      case 'select': {
        this.sameType(e.type, e.a.type, 'select');
        this.sameType(e.type, e.b.type, 'select');
        const c = this.bool(e.cond, sc);
        const a = this.num(e.a, sc);
        const b = this.num(e.b, sc);
        return (t) => {
          const x = a(t);
          const y = b(t);
          return c(t) ? x : y;
        };
      }
      case 'load':
        return this.load(e.memory, e.index, sc);
      case 'component': {
        const k = e.index;
        if (k !== 0 && k !== 1 && k !== 2 && k !== 3) throw this.static(`component ${String(k)} of a vec4f`);
        const v = this.vec(e.a, sc);
        return (t) => v(t)[k];
      }
    }
  }

  /** A vec4f expression. */
  vec(e: Expr, sc: Scope): Vec {
    if (e.type !== 'vec4f') throw this.static(`a ${e.type} expression (${e.kind}) where a vec4f is needed`);
    switch (e.kind) {
      case 'ref': {
        const slot = this.scalar(e.name, 'vec4f', sc);
        const out = new Float32Array(4);
        return (t) => {
          const s = t.slots;
          out[0] = s[slot];
          out[1] = s[slot + 1];
          out[2] = s[slot + 2];
          out[3] = s[slot + 3];
          return out;
        };
      }
      case 'vector': {
        if (e.parts.length !== 4) throw this.static(`a vec4f of ${e.parts.length} parts`);
        const [a, b, c, d] = e.parts.map((p) => {
          if (p.type !== 'f32') throw this.static(`a vec4f part of type ${p.type}`);
          return this.num(p, sc);
        });
        const out = new Float32Array(4);
        return (t) => {
          out[0] = a(t);
          out[1] = b(t);
          out[2] = c(t);
          out[3] = d(t);
          return out;
        };
      }
      case 'binary':
        return this.vecArith(e.op, e.a, e.b, sc);
      case 'load':
        return this.load4(e.memory, e.index, sc);
      default:
        throw this.static(`${e.kind} of vec4f is not supported (see the vector rules in ir.ts)`);
    }
  }

  /** Componentwise arithmetic; storing into the Float32Array rounds each component to f32. */
  vecArith(op: BinaryOp, ea: Expr, eb: Expr, sc: Scope): Vec {
    if (ea.type !== 'vec4f' || eb.type !== 'vec4f') throw this.static(`${op} of ${ea.type} and ${eb.type} as a vec4f (both operands must be vec4f)`);
    const a = this.vec(ea, sc);
    const b = this.vec(eb, sc);
    const out = new Float32Array(4);
    const m = Math;
    switch (op) {
      case 'add': return (t) => {
        const x = a(t);
        const y = b(t);
        out[0] = x[0] + y[0]; out[1] = x[1] + y[1]; out[2] = x[2] + y[2]; out[3] = x[3] + y[3];
        return out;
      };
      case 'sub': return (t) => {
        const x = a(t);
        const y = b(t);
        out[0] = x[0] - y[0]; out[1] = x[1] - y[1]; out[2] = x[2] - y[2]; out[3] = x[3] - y[3];
        return out;
      };
      case 'mul': return (t) => {
        const x = a(t);
        const y = b(t);
        out[0] = x[0] * y[0]; out[1] = x[1] * y[1]; out[2] = x[2] * y[2]; out[3] = x[3] * y[3];
        return out;
      };
      case 'div': return (t) => {
        const x = a(t);
        const y = b(t);
        out[0] = x[0] / y[0]; out[1] = x[1] / y[1]; out[2] = x[2] / y[2]; out[3] = x[3] / y[3];
        return out;
      };
      case 'min': return (t) => {
        const x = a(t);
        const y = b(t);
        out[0] = m.min(x[0], y[0]); out[1] = m.min(x[1], y[1]); out[2] = m.min(x[2], y[2]); out[3] = m.min(x[3], y[3]);
        return out;
      };
      case 'max': return (t) => {
        const x = a(t);
        const y = b(t);
        out[0] = m.max(x[0], y[0]); out[1] = m.max(x[1], y[1]); out[2] = m.max(x[2], y[2]); out[3] = m.max(x[3], y[3]);
        return out;
      };
    }
    throw this.static(`${op} of vec4f (only add, sub, mul, div, min and max are componentwise)`);
  }

  bool(e: Expr, sc: Scope): Bool {
    if (e.type !== 'bool') throw this.static(`a ${e.type} expression (${e.kind}) where a bool is needed`);
    switch (e.kind) {
      case 'const': {
        const v = e.value;
        if (typeof v !== 'boolean') throw this.static(`bool constant ${v} is not a boolean`);
        return () => v;
      }
      case 'ref': {
        const slot = this.scalar(e.name, 'bool', sc);
        return (t) => t.slots[slot] !== 0;
      }
      case 'binary':
        return this.compare(e.op, e.a, e.b, sc);
      case 'unary': {
        if (e.op !== 'not') throw this.static(`${e.op} of a bool`);
        const a = this.bool(e.a, sc);
        return (t) => !a(t);
      }
      case 'select': {
        const c = this.bool(e.cond, sc);
        const a = this.bool(e.a, sc);
        const b = this.bool(e.b, sc);
        return (t) => {
          const x = a(t);
          const y = b(t);
          return c(t) ? x : y;
        };
      }
      case 'cast':
        throw this.static('casts to or from bool are not supported');
    }
    // Builtins and loads are typed u32 and f32, so the guard above already rejected them.
    throw this.static(`a malformed bool expression`);
  }

  sameType(want: ScalarType, got: ScalarType, what: string): void {
    if (want !== got) throw this.static(`${what} of ${got} where ${want} is expected`);
  }

  scalar(name: string, type: ScalarType, sc: Scope): number {
    const b = sc.find(name);
    if (!b) throw this.static(`${name} is used but not declared in scope`);
    if (b.kind !== 'scalar') throw this.static(`${name} is a register array, not a scalar`);
    if (b.type !== type) throw this.static(`${name} is ${b.type} but used as ${type}`);
    return b.slot;
  }

  arith(op: BinaryOp, type: ScalarType, ea: Expr, eb: Expr, sc: Scope): Num {
    this.sameType(type, ea.type, op);
    this.sameType(type, eb.type, op);
    const a = this.num(ea, sc);
    const b = this.num(eb, sc);
    const f = Math.fround;
    if (type === 'f32') {
      switch (op) {
        case 'add': return (t) => f(a(t) + b(t));
        case 'sub': return (t) => f(a(t) - b(t));
        case 'mul': return (t) => f(a(t) * b(t));
        case 'div': return (t) => f(a(t) / b(t));
        case 'rem': return (t) => f(a(t) % b(t));
        case 'min': return (t) => f(Math.min(a(t), b(t)));
        case 'max': return (t) => f(Math.max(a(t), b(t)));
      }
    } else if (type === 'u32') {
      switch (op) {
        case 'add': return (t) => (a(t) + b(t)) >>> 0;
        case 'sub': return (t) => (a(t) - b(t)) >>> 0;
        case 'mul': return (t) => Math.imul(a(t), b(t)) >>> 0;
        case 'div': return (t) => {
          const x = a(t);
          const y = b(t);
          if (y === 0) throw this.fault(t, `u32 division ${x} / 0`);
          return Math.trunc(x / y);
        };
        case 'rem': return (t) => {
          const x = a(t);
          const y = b(t);
          if (y === 0) throw this.fault(t, `u32 remainder ${x} % 0`);
          return x % y;
        };
        case 'min': return (t) => Math.min(a(t), b(t));
        case 'max': return (t) => Math.max(a(t), b(t));
        case 'xor': return (t) => (a(t) ^ b(t)) >>> 0;
      }
    } else {
      switch (op) {
        case 'add': return (t) => (a(t) + b(t)) | 0;
        case 'sub': return (t) => (a(t) - b(t)) | 0;
        case 'mul': return (t) => Math.imul(a(t), b(t));
        // Truncation, and the most negative i32 over -1 wraps to itself, as on the targets.
        case 'div': return (t) => {
          const x = a(t);
          const y = b(t);
          if (y === 0) throw this.fault(t, `i32 division ${x} / 0`);
          return Math.trunc(x / y) | 0;
        };
        case 'rem': return (t) => {
          const x = a(t);
          const y = b(t);
          if (y === 0) throw this.fault(t, `i32 remainder ${x} % 0`);
          return (x % y) | 0;
        };
        case 'min': return (t) => Math.min(a(t), b(t));
        case 'max': return (t) => Math.max(a(t), b(t));
      }
    }
    throw this.static(`${op} does not give a ${type}`);
  }

  compare(op: BinaryOp, ea: Expr, eb: Expr, sc: Scope): Bool {
    if (ea.type !== eb.type) throw this.static(`${op} of ${ea.type} and ${eb.type}`);
    if (ea.type === 'vec4f') throw this.static(`${op} of vec4f (vectors have no comparisons)`);
    if (op === 'and' || op === 'or') {
      const a = this.bool(ea, sc);
      const b = this.bool(eb, sc);
      // Short-circuit like WGSL's && and ||: neither side has effects, and a fault on the
      // right (say, a division by zero) is then as unreachable as on the GPU.
      return op === 'and' ? (t) => a(t) && b(t) : (t) => a(t) || b(t);
    }
    if (ea.type === 'bool') {
      const a = this.bool(ea, sc);
      const b = this.bool(eb, sc);
      if (op === 'eq') return (t) => a(t) === b(t);
      if (op === 'ne') return (t) => a(t) !== b(t);
      throw this.static(`${op} of bools`);
    }
    const a = this.num(ea, sc);
    const b = this.num(eb, sc);
    switch (op) {
      case 'lt': return (t) => a(t) < b(t);
      case 'le': return (t) => a(t) <= b(t);
      case 'gt': return (t) => a(t) > b(t);
      case 'ge': return (t) => a(t) >= b(t);
      case 'eq': return (t) => a(t) === b(t);
      case 'ne': return (t) => a(t) !== b(t);
    }
    throw this.static(`${op} does not give a bool`);
  }

  unaryNum(op: UnaryOp, type: ScalarType, ea: Expr, sc: Scope): Num {
    this.sameType(type, ea.type, op);
    const a = this.num(ea, sc);
    const f = Math.fround;
    if (type === 'f32') {
      switch (op) {
        case 'neg': return (t) => -a(t);
        case 'abs': return (t) => Math.abs(a(t));
        case 'sqrt': return (t) => f(Math.sqrt(a(t)));
        case 'rsqrt': return (t) => f(1 / Math.sqrt(a(t)));
        case 'exp': return (t) => f(Math.exp(a(t)));
        case 'erf': return (t) => erfF32(a(t));
      }
    } else if (type === 'i32') {
      switch (op) {
        case 'neg': return (t) => -a(t) | 0;
        case 'abs': return (t) => Math.abs(a(t)) | 0;
      }
    } else {
      switch (op) {
        case 'neg': return (t) => -a(t) >>> 0;
        case 'abs': return a;
      }
    }
    throw this.static(`${op} of ${type}`);
  }

  castNum(type: ScalarType, ea: Expr, sc: Scope): Num {
    if (ea.type === 'bool' || type === 'bool') throw this.static('casts to or from bool are not supported');
    const a = this.num(ea, sc);
    if (type === ea.type) return a;
    if (type === 'f32') return (t) => Math.fround(a(t));
    if (ea.type === 'f32') {
      // Out-of-range and NaN clamp rather than wrap: the targets saturate f32 -> int.
      return type === 'u32'
        ? (t) => {
            const x = a(t);
            return x !== x ? 0 : x <= 0 ? 0 : x >= U32_MAX ? U32_MAX : Math.trunc(x);
          }
        : (t) => {
            const x = a(t);
            return x !== x ? 0 : x <= I32_MIN ? I32_MIN : x >= I32_MAX ? I32_MAX : Math.trunc(x) | 0;
          };
    }
    return type === 'u32' ? (t) => a(t) >>> 0 : (t) => a(t) | 0;
  }

  // ---- memory ----

  /** The named memory as load and store see it: register array, workgroup array or buffer. */
  memory(name: string, sc: Scope):
    | { readonly kind: 'registers'; readonly slot: number; readonly length: number; readonly vector: false }
    | { readonly kind: 'shared'; readonly index: number; readonly length: number; readonly vector: boolean }
    | { readonly kind: 'buffer'; readonly index: number; readonly length: number; readonly writable: boolean; readonly vector: boolean; readonly half: boolean } {
    const b = sc.find(name);
    if (b) {
      if (b.kind !== 'registers') throw this.static(`${name} is a scalar, not memory`);
      return { kind: 'registers', slot: b.slot, length: b.length, vector: false };
    }
    const s = this.sharedIndex.get(name);
    if (s !== undefined) return { kind: 'shared', index: s, length: this.program.shared[s].length, vector: this.program.shared[s].vector === 4 };
    const i = this.bufferIndex.get(name);
    if (i !== undefined) {
      const d = this.program.buffers[i];
      return { kind: 'buffer', index: i, length: d.length, writable: d.access === 'read_write', vector: d.vector === 4, half: d.dtype === 'f16' };
    }
    throw this.static(`memory ${name} is not declared`);
  }

  index(e: Expr, sc: Scope): Num {
    if (e.type !== 'u32' && e.type !== 'i32') throw this.static(`a ${e.type} index`);
    return this.num(e, sc);
  }

  load(name: string, indexExpr: Expr, sc: Scope): Num {
    const m = this.memory(name, sc);
    const index = this.index(indexExpr, sc);
    const n = m.length;
    const outside = (t: Thread, i: number): KernelFault => this.fault(t, `load of ${name}[${i}] out of bounds (length ${n})`);
    if (m.kind === 'registers') {
      const slot = m.slot;
      return (t) => {
        const i = index(t);
        if (i < 0 || i >= n) throw outside(t, i);
        return (t.regs[slot] as Float32Array)[i];
      };
    }
    if (m.kind === 'buffer') {
      const data = this.buffers[m.index];
      // f16 memory holds what the host or a store rounded to f16; reading rounds, as a device's would hold it.
      if (m.half) {
        return (t) => {
          const i = index(t);
          if (i < 0 || i >= n) throw outside(t, i);
          return roundF16(data[i]);
        };
      }
      return (t) => {
        const i = index(t);
        if (i < 0 || i >= n) throw outside(t, i);
        return data[i];
      };
    }
    const rt = this.rt;
    const k = m.index;
    if (!this.races) {
      return (t) => {
        const i = index(t);
        if (i < 0 || i >= n) throw outside(t, i);
        return rt.shared[k].data[i];
      };
    }
    return (t) => {
      const i = index(t);
      if (i < 0 || i >= n) throw outside(t, i);
      const s = rt.shared[k];
      const other = readCell(s, i, t.local, rt.epoch);
      if (other >= 0) throw this.race(t, name, i, other);
      return s.data[i];
    };
  }

  /** The checks of a vector access at `i`: memory declared vector (before running), alignment and bounds. */
  vectorAccess(what: 'load4 of' | 'store4 to', name: string, m: { readonly kind: string; readonly vector: boolean; readonly length: number }): (t: Thread, i: number) => void {
    if (!m.vector) throw this.static(`${what} ${name}, which is not declared vector: 4 (${vectorRule})`);
    const n = m.length;
    return (t, i) => {
      if (i % 4 !== 0) throw this.fault(t, `unaligned vector access: ${what} ${name}[${i}] (the index must be a multiple of 4)`);
      if (i < 0 || i + 4 > n) throw this.fault(t, `${what} ${name}[${i}..${i + 3}] out of bounds (length ${n})`);
    };
  }

  /** A vector load: elements i .. i+3. */
  load4(name: string, indexExpr: Expr, sc: Scope): Vec {
    const m = this.memory(name, sc);
    const check = this.vectorAccess('load4 of', name, m);
    const index = this.index(indexExpr, sc);
    const out = new Float32Array(4);
    if (m.kind === 'buffer') {
      const data = this.buffers[m.index];
      const half = m.half;
      return (t) => {
        const i = index(t);
        check(t, i);
        out[0] = data[i]; out[1] = data[i + 1]; out[2] = data[i + 2]; out[3] = data[i + 3];
        if (half) for (let c = 0; c < 4; c++) out[c] = roundF16(out[c]);
        return out;
      };
    }
    const rt = this.rt;
    const k = m.kind === 'shared' ? m.index : -1;
    const races = this.races;
    return (t) => {
      const i = index(t);
      check(t, i);
      const s = rt.shared[k];
      for (let c = 0; c < 4; c++) {
        if (races) {
          const other = readCell(s, i + c, t.local, rt.epoch);
          if (other >= 0) throw this.race(t, name, i + c, other);
        }
        out[c] = s.data[i + c];
      }
      return out;
    };
  }

  race(t: Thread, name: string, i: number, other: number): KernelFault {
    const [a, b] = other < t.local ? [other, t.local] : [t.local, other];
    return this.fault(t, `race on ${name}[${i}] between threads ${a} and ${b} (one writes what the other touches with no barrier between)`);
  }

  store(s: Extract<Stmt, { kind: 'store' }>, sc: Scope): Plain {
    const m = this.memory(s.memory, sc);
    if (m.kind === 'buffer' && !m.writable) throw this.static(`store to ${s.memory}, a read-only buffer`);
    if (s.value.type === 'vec4f') return this.store4(s, m, sc);
    if (s.value.type !== 'f32') throw this.static(`store of a ${s.value.type} to ${s.memory} (memory values are f32)`);
    const index = this.index(s.index, sc);
    const value = this.num(s.value, sc);
    const n = m.length;
    const name = s.memory;
    const outside = (t: Thread, i: number): KernelFault => this.fault(t, `store to ${name}[${i}] out of bounds (length ${n})`);
    if (m.kind === 'registers') {
      const slot = m.slot;
      return (t) => {
        const i = index(t);
        const v = value(t);
        if (i < 0 || i >= n) throw outside(t, i);
        (t.regs[slot] as Float32Array)[i] = v;
      };
    }
    if (m.kind === 'buffer') {
      const data = this.buffers[m.index];
      const half = m.half;
      return (t) => {
        const i = index(t);
        const v = value(t);
        if (i < 0 || i >= n) throw outside(t, i);
        data[i] = half ? roundF16(v) : v;
      };
    }
    const rt = this.rt;
    const k = m.index;
    if (!this.races) {
      return (t) => {
        const i = index(t);
        const v = value(t);
        if (i < 0 || i >= n) throw outside(t, i);
        rt.shared[k].data[i] = v;
      };
    }
    return (t) => {
      const i = index(t);
      const v = value(t);
      if (i < 0 || i >= n) throw outside(t, i);
      const sh = rt.shared[k];
      const other = writeCell(sh, i, t.local, rt.epoch);
      if (other >= 0) throw this.race(t, name, i, other);
      sh.data[i] = v;
    };
  }

  /** A vector store: elements i .. i+3 from a vec4f value. */
  store4(s: Extract<Stmt, { kind: 'store' }>, m: ReturnType<Compiler['memory']>, sc: Scope): Plain {
    const name = s.memory;
    const check = this.vectorAccess('store4 to', name, m);
    const index = this.index(s.index, sc);
    const value = this.vec(s.value, sc);
    if (m.kind === 'buffer') {
      const data = this.buffers[m.index];
      return (t) => {
        const i = index(t);
        const v = value(t);
        check(t, i);
        data[i] = v[0]; data[i + 1] = v[1]; data[i + 2] = v[2]; data[i + 3] = v[3];
        if (m.half) for (let c = 0; c < 4; c++) data[i + c] = roundF16(data[i + c]);
      };
    }
    const rt = this.rt;
    const k = m.kind === 'shared' ? m.index : -1;
    const races = this.races;
    return (t) => {
      const i = index(t);
      const v = value(t);
      check(t, i);
      const sh = rt.shared[k];
      for (let c = 0; c < 4; c++) {
        if (races) {
          const other = writeCell(sh, i + c, t.local, rt.epoch);
          if (other >= 0) throw this.race(t, name, i + c, other);
        }
        sh.data[i + c] = v[c];
      }
    };
  }

  // ---- statements ----

  declare(sc: Scope, name: string, b: Binding): void {
    if (sc.names.has(name)) throw this.static(`${name} is declared twice in one scope`);
    sc.names.set(name, b);
  }

  stmt(s: Stmt, sc: Scope): Compiled | undefined {
    switch (s.kind) {
      case 'comment':
        return undefined;
      case 'let':
      case 'var': {
        const slot = this.slots;
        this.slots += s.value.type === 'vec4f' ? 4 : 1;
        const set = this.setter(slot, s.value, sc);
        this.declare(sc, s.name, { kind: 'scalar', slot, type: s.value.type, mutable: s.kind === 'var' });
        return { gen: false, run: set };
      }
      case 'assign': {
        const b = sc.find(s.name);
        if (!b) throw this.static(`assignment to ${s.name}, which is not declared`);
        if (b.kind !== 'scalar' || !b.mutable) throw this.static(`assignment to ${s.name}, which is not a var`);
        if (b.type !== s.value.type) throw this.static(`assignment of a ${s.value.type} to ${s.name}, a ${b.type}`);
        return { gen: false, run: this.setter(b.slot, s.value, sc) };
      }
      case 'registers': {
        const slot = this.regSlots++;
        const length = s.length;
        if (!Number.isInteger(length) || length < 0) throw this.static(`register array ${s.name} has length ${length}`);
        this.declare(sc, s.name, { kind: 'registers', slot, length });
        return {
          gen: false,
          run: (t) => {
            t.regs[slot] = new Float32Array(length);
          },
        };
      }
      case 'store':
        return { gen: false, run: this.store(s, sc) };
      case 'barrier': {
        const id = this.barriers++;
        return {
          gen: true,
          run: function* () {
            yield id;
          },
        };
      }
      case 'if': {
        const cond = this.bool(s.cond, sc);
        const then = this.block(s.then, new Scope(sc));
        const else_ = s.else ? this.block(s.else, new Scope(sc)) : undefined;
        if (!then.gen && (!else_ || !else_.gen)) {
          const a = then.run;
          const b = else_?.run;
          return {
            gen: false,
            run: b
              ? (t) => {
                  if (cond(t)) a(t);
                  else b(t);
                }
              : (t) => {
                  if (cond(t)) a(t);
                },
          };
        }
        const a = asGen(then);
        const b = else_ ? asGen(else_) : undefined;
        return {
          gen: true,
          run: function* (t) {
            if (cond(t)) yield* a(t);
            else if (b) yield* b(t);
          },
        };
      }
      case 'loop':
        return this.loop(s, sc);
      case 'shuffle-xor': {
        // A collective: the thread stores its own value in the binding's slot and waits; when
        // every thread has arrived, the driver swaps in the partner's value (shuffles below).
        const size = this.program.subgroupSize;
        if (s.value.type !== 'f32') throw this.static(`subgroup shuffle of a ${s.value.type}`);
        if (size === undefined || !Number.isInteger(s.mask) || s.mask < 1 || s.mask >= size || this.program.workgroupSize % size !== 0) {
          throw this.static(`subgroup shuffle by ${s.mask} with subgroups of ${String(size)} in a workgroup of ${this.program.workgroupSize}`);
        }
        const slot = this.slots++;
        const set = this.setter(slot, s.value, sc);
        this.declare(sc, s.into, { kind: 'scalar', slot, type: 'f32', mutable: false });
        const id = this.barriers++;
        this.shuffles.set(id, { slot, mask: s.mask });
        return {
          gen: true,
          run: function* (t) {
            set(t);
            yield id;
          },
        };
      }
      case 'reduce':
        // expandReductions returns a program whose reductions are all over one lane unchanged
        // (its early return), and a one-lane sum is just the thread's own value.
        if (s.lanes === 1) return this.stmt({ kind: 'let', name: s.into, value: s.value }, sc);
        throw new Error(`internal: ${this.program.name} reached the interpreter with an unexpanded reduce`);
    }
  }

  setter(slot: number, e: Expr, sc: Scope): Plain {
    if (e.type === 'vec4f') {
      const v = this.vec(e, sc);
      return (t) => {
        const x = v(t);
        const s = t.slots;
        s[slot] = x[0];
        s[slot + 1] = x[1];
        s[slot + 2] = x[2];
        s[slot + 3] = x[3];
      };
    }
    if (e.type === 'bool') {
      const v = this.bool(e, sc);
      return (t) => {
        t.slots[slot] = v(t) ? 1 : 0;
      };
    }
    const v = this.num(e, sc);
    return (t) => {
      t.slots[slot] = v(t);
    };
  }

  loop(s: Extract<Stmt, { kind: 'loop' }>, sc: Scope): Compiled {
    for (const [what, e] of [['from', s.from], ['to', s.to], ['step', s.step]] as const) {
      if (e.type !== 'u32') throw this.static(`loop ${s.index}'s ${what} is ${e.type}, not u32`);
    }
    const from = this.num(s.from, sc);
    const to = this.num(s.to, sc);
    const step = this.num(s.step, sc);
    // The index has a scope of its own around the body's, so the body may shadow it as WGSL allows.
    const indexScope = new Scope(sc);
    const slot = this.slots++;
    this.declare(indexScope, s.index, { kind: 'scalar', slot, type: 'u32', mutable: false });
    const body = this.block(s.body, new Scope(indexScope));
    const name = s.index;
    // A zero step or an index that would wrap never ends on a GPU; fail instead of hanging.
    const bounds = (t: Thread): [number, number, number] => {
      const f = from(t);
      const e = to(t);
      const d = step(t);
      if (d === 0 && f < e) throw this.fault(t, `loop ${name} has step 0`);
      if (f < e && f + Math.floor((e - 1 - f) / d) * d + d > U32_MAX) throw this.fault(t, `loop ${name} would wrap its u32 index (to ${e}, step ${d})`);
      return [f, e, d];
    };
    if (!body.gen) {
      const run = body.run;
      return {
        gen: false,
        run: (t) => {
          const [f, e, d] = bounds(t);
          for (let i = f; i < e; i += d) {
            t.slots[slot] = i;
            run(t);
          }
        },
      };
    }
    const run = body.run;
    return {
      gen: true,
      run: function* (t) {
        const [f, e, d] = bounds(t);
        for (let i = f; i < e; i += d) {
          t.slots[slot] = i;
          yield* run(t);
        }
      },
    };
  }

  /** A statement list in `sc`; a plain function unless some statement in it can reach a barrier. */
  block(stmts: readonly Stmt[], sc: Scope): Compiled {
    // Runs of barrier-free statements merge into one plain step, so generators stay coarse.
    const parts: Compiled[] = [];
    let plain: Plain[] = [];
    const flush = (): void => {
      if (plain.length > 0) parts.push({ gen: false, run: sequence(plain) });
      plain = [];
    };
    for (const s of stmts) {
      const c = this.stmt(s, sc);
      if (!c) continue;
      if (c.gen) {
        flush();
        parts.push(c);
      } else plain.push(c.run);
    }
    flush();
    if (parts.length === 0) return { gen: false, run: () => {} };
    if (parts.length === 1) return parts[0];
    const steps = parts;
    return {
      gen: true,
      run: function* (t) {
        for (const p of steps) {
          if (p.gen) yield* p.run(t);
          else p.run(t);
        }
      },
    };
  }
}

/**
 * Notes a read of cell i by thread `me`: returns a thread that wrote the cell since the last
 * barrier (a race), or -1. Tracking is valid only where the stamp is the current epoch.
 */
function readCell(s: SharedState, i: number, me: number, epoch: number): number {
  if (s.stamp[i] !== epoch) {
    s.stamp[i] = epoch;
    s.writer[i] = -1;
    s.reader[i] = me;
    s.otherReader[i] = -1;
    return -1;
  }
  const w = s.writer[i];
  if (w >= 0 && w !== me) return w;
  const r = s.reader[i];
  if (r < 0) s.reader[i] = me;
  else if (r !== me && s.otherReader[i] < 0) s.otherReader[i] = me;
  return -1;
}

/** Notes a write of cell i by thread `me`: returns another thread that touched it since the last barrier (a race), or -1. */
function writeCell(s: SharedState, i: number, me: number, epoch: number): number {
  if (s.stamp[i] !== epoch) {
    s.stamp[i] = epoch;
    s.reader[i] = -1;
    s.otherReader[i] = -1;
  } else {
    const w = s.writer[i];
    if (w >= 0 && w !== me) return w;
    const r = s.reader[i];
    // otherReader differs from reader, so when reader is this thread it is someone else.
    const other = r >= 0 && r !== me ? r : s.otherReader[i];
    if (other >= 0) return other;
  }
  s.writer[i] = me;
  return -1;
}

function sequence(fs: readonly Plain[]): Plain {
  if (fs.length === 1) return fs[0];
  if (fs.length === 2) {
    const [a, b] = fs;
    return (t) => {
      a(t);
      b(t);
    };
  }
  return (t) => {
    for (let i = 0; i < fs.length; i++) fs[i](t);
  };
}

function asGen(c: Compiled): Gen {
  if (c.gen) return c.run;
  const run = c.run;
  return function* (t) {
    run(t);
  };
}

/** Runs every workgroup of `program` over `memory` (one Float32Array per BufferDecl name, length >= decl.length). Writes go into the arrays. */
export function interpret(program: KernelProgram, memory: Readonly<Record<string, Float32Array>>, options: InterpretOptions = {}): void {
  const expanded = expandReductions(program);
  const { workgroupSize, workgroups } = expanded;
  if (!Number.isInteger(workgroupSize) || workgroupSize < 1) throw new KernelFault(`kernel ${expanded.name}: workgroup size ${workgroupSize}`);
  if (!Number.isInteger(workgroups) || workgroups < 0) throw new KernelFault(`kernel ${expanded.name}: ${workgroups} workgroups`);
  const buffers = expanded.buffers.map((d) => {
    const data = memory[d.name];
    // The caller's mistake rather than the kernel's, hence a plain Error.
    if (!(data instanceof Float32Array)) throw new Error(`interpret ${expanded.name}: no Float32Array for buffer ${d.name}`);
    if (data.length < d.length) throw new Error(`interpret ${expanded.name}: buffer ${d.name} has ${data.length} floats; the kernel declares ${d.length}`);
    return data;
  });
  const races = options.races !== false;
  const rt: Runtime = { shared: [], epoch: 0 };
  const compiler = new Compiler(expanded, rt, buffers, races);
  const body = compiler.block(expanded.body, new Scope(undefined));
  const { slots, regSlots } = compiler;

  for (let group = 0; group < workgroups; group++) {
    rt.shared = expanded.shared.map((s) => ({
      data: new Float32Array(s.length),
      stamp: new Int32Array(races ? s.length : 0),
      writer: new Int32Array(races ? s.length : 0),
      reader: new Int32Array(races ? s.length : 0),
      otherReader: new Int32Array(races ? s.length : 0),
    }));
    rt.epoch++; // stamps start at 0, so the first epoch must not be 0
    const threads: Thread[] = [];
    for (let local = 0; local < workgroupSize; local++) {
      threads.push({ local, group, slots: new Float64Array(slots), regs: new Array<Float32Array | undefined>(regSlots) });
    }
    if (!body.gen) {
      for (const t of threads) body.run(t);
      continue;
    }
    const run = body.run;
    const gens = threads.map((t) => run(t));
    for (;;) {
      let waitingAt = -1;
      let firstWaiting = -1;
      let firstDone = -1;
      for (let i = 0; i < gens.length; i++) {
        const r = gens[i].next();
        if (r.done) {
          if (firstDone < 0) firstDone = i;
        } else if (firstWaiting < 0) {
          firstWaiting = i;
          waitingAt = r.value;
        } else if (r.value !== waitingAt) {
          throw compiler.fault(threads[i], `barrier divergence: thread ${i} waits at barrier #${r.value} while thread ${firstWaiting} waits at barrier #${waitingAt}`);
        }
      }
      if (firstWaiting < 0) break;
      if (firstDone >= 0) {
        throw compiler.fault(threads[firstWaiting], `barrier divergence: thread ${firstWaiting} waits at barrier #${waitingAt} while thread ${firstDone} has finished`);
      }
      const shuffle = compiler.shuffles.get(waitingAt);
      if (shuffle) {
        // Subgroups are runs of consecutive threads, so the partner is local XOR mask. Not a
        // memory barrier: race tracking carries on.
        const values = threads.map((t) => t.slots[shuffle.slot]);
        for (const t of threads) t.slots[shuffle.slot] = values[t.local ^ shuffle.mask];
        continue;
      }
      rt.epoch++;
    }
  }
}
