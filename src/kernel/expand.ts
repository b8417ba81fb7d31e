// Expands `reduce` statements into loads, stores and barriers on workgroup memory, so that
// renderers and the interpreter run exactly the same reduction code.
//
// A tree over `lanes` threads, then the total broadcast through a cell of its own, written by
// the run's first thread and read by all after a further barrier, rather than read by all
// straight from the tree's root. Mesa 22's llvmpipe behind Dawn's OpenGL ES path gave threads
// outside the first SIMD batch of eight a stale root in that form (wrong LayerNorm statistics,
// and NaN where a variance came out negative), while Vulkan drivers were right; the dedicated
// cell is correct on both. Every reduction of a kernel reuses the same two arrays: no thread
// touches them again before the next reduction's first barrier.
import { add, barrier, eq, if_, let_, load, local, lt, ref, rem, store, u32, div, mul } from './build.js';
import type { KernelProgram, SharedDecl, Stmt } from './ir.js';

export const reducePartial = 'reduce_partial';
export const reduceTotal = 'reduce_total';

function expandStmts(stmts: readonly Stmt[], totals: { cells: number }): Stmt[] {
  const out: Stmt[] = [];
  for (const s of stmts) {
    switch (s.kind) {
      case 'loop':
        out.push({ ...s, body: expandStmts(s.body, totals) });
        break;
      case 'if':
        out.push({ ...s, then: expandStmts(s.then, totals), ...(s.else ? { else: expandStmts(s.else, totals) } : {}) });
        break;
      case 'reduce': {
        if (s.lanes === 1) {
          out.push(let_(s.into, s.value));
          break;
        }
        if (s.strategy === 'subgroup') {
          // A butterfly: after the step with mask m, each thread holds the sum of its run of 2m.
          let value = s.value;
          let step = 0;
          for (let mask = s.lanes / 2; mask >= 1; mask /= 2, step++) {
            const mine = `${s.into}_part${step}`;
            out.push(let_(mine, value), { kind: 'shuffle-xor', into: `${mine}_xor`, value: ref(mine, 'f32'), mask });
            value = add(ref(mine, 'f32'), ref(`${mine}_xor`, 'f32'));
          }
          out.push(let_(s.into, value));
          break;
        }
        const lanes = u32(s.lanes);
        const lane = rem(local, lanes);
        const run = div(local, lanes);
        out.push(store(reducePartial, local, s.value), barrier);
        for (let stride = s.lanes / 2; stride >= 1; stride /= 2) {
          out.push(if_(lt(lane, u32(stride)), [store(reducePartial, local, add(load(reducePartial, local), load(reducePartial, add(local, u32(stride)))))]), barrier);
        }
        out.push(if_(eq(lane, u32(0)), [store(reduceTotal, run, load(reducePartial, mul(run, lanes)))]), barrier);
        out.push(let_(s.into, load(reduceTotal, run)));
        totals.cells = Math.max(totals.cells, 1);
        break;
      }
      default:
        out.push(s);
    }
  }
  return out;
}

function lanesOf(stmts: readonly Stmt[], found: Set<number>): Set<number> {
  for (const s of stmts) {
    if (s.kind === 'reduce') {
      if (s.lanes < 1 || (s.lanes & (s.lanes - 1)) !== 0) throw new Error(`internal: a reduction over ${s.lanes} lanes (not a power of two)`);
      // Subgroup reductions use no workgroup memory.
      if (s.strategy === 'tree') found.add(s.lanes);
      else found.add(1);
    } else if (s.kind === 'loop') lanesOf(s.body, found);
    else if (s.kind === 'if') {
      lanesOf(s.then, found);
      if (s.else) lanesOf(s.else, found);
    }
  }
  return found;
}

/** The program with its reductions expanded and their workgroup arrays declared. */
export function expandReductions(program: KernelProgram): KernelProgram {
  const all = lanesOf(program.body, new Set());
  if (all.size === 0) return program;
  const lanes = [...all].filter((l) => l > 1);
  // Reductions over one lane are plain bindings and need no workgroup memory.
  if (lanes.length === 0) return { ...program, body: expandStmts(program.body, { cells: 0 }) };
  for (const l of lanes) {
    if (program.workgroupSize % l !== 0) throw new Error(`internal: ${program.name} reduces over ${l} lanes in a workgroup of ${program.workgroupSize}`);
  }
  const body = expandStmts(program.body, { cells: 0 });
  const shared: SharedDecl[] = [
    ...program.shared,
    { name: reducePartial, length: program.workgroupSize },
    { name: reduceTotal, length: program.workgroupSize / Math.min(...lanes) },
  ];
  return { ...program, body, shared };
}
