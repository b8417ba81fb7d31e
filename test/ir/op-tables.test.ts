// The op tables are closed: every op in the registry brings its kernel math, has an ONNX
// lowering, and is computed by some golden case checked against PyTorch. A new op that
// lacks one of these fails here, not later in a backend.
import { describe, expect, it } from 'vitest';
import { onnxExportableOps } from '../../src/export/onnx.js';
import type { OpDef } from '../../src/ir/op.js';
import type { Graph } from '../../src/ir/types.js';
import { relu } from '../kernel/relu.js';
import { opRegistry, registerOp } from '../../src/ir/registry.js';
import { passRegistry, pipelines } from '../../src/passes/manager.js';
import { goldenCases, goldenFiles, goldenGraph } from '../helpers.js';
import { fcmaeCases, fcmaeGraph } from '../models/fcmae-helpers.js';

/** Ops computed by the golden cases: as written, and after each pipeline. */
function goldenOps(): Set<string> {
  const seen = new Set<string>();
  const add = (graph: Graph) => {
    for (const node of graph.nodes) {
      seen.add(node.op);
      for (const step of [...(node.fusion?.prologue ?? []), ...(node.fusion?.epilogue ?? [])]) seen.add(step.op);
    }
  };
  for (const passes of [[], pipelines.unfused, pipelines.fused]) {
    for (const c of goldenCases) add(goldenGraph(c.name, goldenFiles(c.name).input, passes));
    // FCMAE's cases (test/models/fcmae-reference.test.ts).
    for (const c of fcmaeCases) add(fcmaeGraph(c, 2, passes));
  }
  return seen;
}

/** What each op lacks, as readable lines; empty when the tables are closed. */
function gaps(ops: Iterable<OpDef>, golden: ReadonlySet<string>): string[] {
  const found: string[] = [];
  for (const op of ops) {
    const math = op.kernel as OpDef['kernel'] | undefined;
    if (!math || !['elementwise', 'reduction', 'contraction', 'gather', 'input', 'split'].includes(math.kind)) found.push(`${op.name}: no kernel math`);
    else if (math.kind === 'split' && !passRegistry.has(math.pass)) found.push(`${op.name}: split by unknown pass '${math.pass}'`);
    else if (math.kind === 'split' && !pipelines.unfused.includes(math.pass)) found.push(`${op.name}: split by '${math.pass}', which the unfused pipeline does not run`);
    if (!onnxExportableOps.includes(op.name)) found.push(`${op.name}: no ONNX lowering`);
    if (!golden.has(op.name)) found.push(`${op.name}: no golden case computes it`);
  }
  return found;
}

describe('the op tables', () => {
  const golden = goldenOps();

  it('are closed: every registered op has kernel math, an ONNX lowering and a golden case', () => {
    expect(gaps(opRegistry.values(), golden)).toEqual([]);
  });

  it('would name what a new op lacks', () => {
    
    const unregister = registerOp(relu);
    try {
      expect(gaps(opRegistry.values(), golden)).toEqual(['relu: no ONNX lowering', 'relu: no golden case computes it']);
      const { kernel: _, ...withoutMath } = relu;
      expect(gaps([withoutMath as OpDef], golden)).toContain('relu: no kernel math');
    } finally {
      unregister();
    }
  });
});
