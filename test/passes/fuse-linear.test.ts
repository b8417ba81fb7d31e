// The linear-time fusion passes give exactly the graphs of the original one-fusion-at-a-time
// passes (kept below as the reference, verbatim but for imports): on every zoo model, and on
// random small networks of both versions with odd widths, depths and sizes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { elaborate } from '../../src/dsl/elaborate.js';
import { loadProgram } from '../../src/dsl/load.js';
import { getOp } from '../../src/ir/registry.js';
import type { FusedStep, Graph, Node } from '../../src/ir/types.js';
import { fuseEpilogues, fusePrologues } from '../../src/passes/fuse.js';
import { runPipeline } from '../../src/passes/manager.js';
import { rewriteGraph, useCounts } from '../../src/passes/rewrite.js';
import { foldLayerScale } from '../../src/passes/fold-layer-scale.js';
import { webgpuDefaultTarget } from '../../src/kernel/target.js';
import { repoPath, zooGraph } from '../helpers.js';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isGraphOutput } from '../../src/ir/graph-io.js';

// ---- the original quadratic passes ----
const perElement = (op: string) => ['elementwise', 'broadcast'].includes(getOp(op).kind);
const isChannelReduction = (op: string) => getOp(op).kind === 'reduction' && getOp(op).reduces === 'channels';

function step(node: Node, operands: readonly number[]): FusedStep {
  return { op: node.op, attrs: node.attrs, params: node.params, operands, name: node.name };
}

/** One epilogue fusion, or undefined when none applies. */
function fuseOneEpilogue(graph: Graph): Graph | undefined {
  const uses = useCounts(graph);
  for (const anchor of graph.nodes) {
    if (getOp(anchor.op).kind !== 'out-elementwise-fusable' || uses[anchor.id] !== 1 || isGraphOutput(graph, anchor.id)) continue;
    const consumer = graph.nodes.find((n) => n.inputs.includes(anchor.id))!;
    if (consumer.fusion) continue;
    const def = getOp(consumer.op);
    const epilogue = anchor.fusion?.epilogue ?? [];
    const legal =
      perElement(consumer.op) ||
      (isChannelReduction(consumer.op) && getOp(anchor.op).channelEpilogue === true && ![...(anchor.fusion?.prologue ?? []), ...epilogue].some((s) => isChannelReduction(s.op)));
    if (!legal) continue;
    // The running value must be the op's first operand; a commutative op may take it second.
    let others: number[];
    if (consumer.inputs[0] === anchor.id) others = consumer.inputs.slice(1);
    else if (def.commutative && consumer.inputs.length === 2 && consumer.inputs[1] === anchor.id) others = [consumer.inputs[0]];
    else continue;
    // The fused node sits where the anchor was, so every other operand must exist by then.
    if (others.some((id) => id >= anchor.id)) continue;
    const base = anchor.inputs.length;
    const fused: Node = {
      ...anchor,
      inputs: [...anchor.inputs, ...others],
      type: consumer.type,
      fusion: { prologue: anchor.fusion?.prologue ?? [], epilogue: [...epilogue, step(consumer, others.map((_, i) => base + i))] },
    };
    return rewriteGraph(graph, new Map([[consumer.id, anchor.id]]), new Map([[anchor.id, fused]]));
  }
  return undefined;
}

/** One prologue fusion, or undefined when none applies. */
function fuseOnePrologue(graph: Graph): Graph | undefined {
  const uses = useCounts(graph);
  for (const anchor of graph.nodes) {
    const def = getOp(anchor.op);
    if (def.kind !== 'out-elementwise-fusable' || !def.readsInputElementwise?.(anchor.attrs)) continue;
    const producer = graph.nodes[anchor.inputs[0]];
    if (producer.fusion || uses[producer.id] !== 1 || isGraphOutput(graph, producer.id)) continue;
    // A channel reduction must be the prologue's last step (the anchor normalises what it
    // loads), and one kernel owns one normalisation.
    const hasChannelReduction = [...(anchor.fusion?.prologue ?? []), ...(anchor.fusion?.epilogue ?? [])].some((s) => isChannelReduction(s.op));
    const input = producer.type;
    const normalises = isChannelReduction(producer.op) && def.channelPrologue?.(anchor.attrs, input) === true && !anchor.fusion && !hasChannelReduction;
    // A spatial reduction (pooling) may only come first, before a channel reduction at most.
    const pools =
      getOp(producer.op).kind === 'reduction' &&
      getOp(producer.op).reduces === 'spatial' &&
      producer.op === 'global_avg_pool' &&
      def.spatialPrologue?.(anchor.attrs, input) === true &&
      (anchor.fusion?.prologue ?? []).every((s) => isChannelReduction(s.op)) &&
      (anchor.fusion?.epilogue ?? []).every((s) => !isChannelReduction(s.op));
    if (!perElement(producer.op) && !normalises && !pools) continue;
    const others = producer.inputs.slice(1);
    const base = anchor.inputs.length;
    const fused: Node = {
      ...anchor,
      inputs: [producer.inputs[0], ...anchor.inputs.slice(1), ...others],
      fusion: { prologue: [step(producer, others.map((_, i) => base + i)), ...(anchor.fusion?.prologue ?? [])], epilogue: anchor.fusion?.epilogue ?? [] },
    };
    return rewriteGraph(graph, new Map([[producer.id, producer.inputs[0]]]), new Map([[anchor.id, fused]]));
  }
  return undefined;
}

function toFixpoint(graph: Graph, once: (g: Graph) => Graph | undefined): Graph {
  let current = graph;
  for (let next = once(current); next; next = once(current)) current = next;
  return current;
}
// ---- end of the original passes ----

/** The fused pipeline with the original fusion passes. */
function referenceFused(graph: Graph): Graph {
  const prefix = runPipeline(graph, ['eliminate-drop-path', 'split-grn']);
  return foldLayerScale.run(toFixpoint(toFixpoint(prefix, fuseOneEpilogue), fuseOnePrologue));
}

/**
 * The fused pipeline with the linear passes, on a target whose cost model never refuses a
 * prologue (the original passes had none; fuse.test.ts tests the cost model itself).
 */
function linearFused(graph: Graph): Graph {
  const prefix = runPipeline(graph, ['eliminate-drop-path', 'split-grn']);
  const anything = { target: { ...webgpuDefaultTarget, prologueRecomputeLimit: Number.POSITIVE_INFINITY } };
  return foldLayerScale.run(fusePrologues.run(fuseEpilogues.run(prefix), anything));
}

/** Graphs compare by value; loc objects and param maps included. */
function expectSameGraph(actual: Graph, expected: Graph): void {
  expect(actual.outputs).toEqual(expected.outputs);
  expect(actual.nodes).toEqual(expected.nodes);
  expect([...actual.params.keys()].sort()).toEqual([...expected.params.keys()].sort());
}

describe('linear fusion == the original fusion', () => {
  const zoo = readdirSync(repoPath('models')).filter((f) => f.includes('-')).map((f) => f.replace('.cnx', ''));
  it.each(zoo)('%s', (variant) => {
    const graph = zooGraph(variant, { batch: 1, height: 64, width: 64 }, []);
    expectSameGraph(linearFused(graph), referenceFused(graph));
  });

  it('on random networks', () => {
    const dir = mkdtempSync(join(tmpdir(), 'convc-fuse-linear-'));
    let n = 0;
    let compared = 0;
    const network = fc.record({
      version: fc.constantFrom('v1', 'v2'),
      stages: fc.integer({ min: 1, max: 4 }),
      depth: fc.integer({ min: 1, max: 3 }),
      dim: fc.integer({ min: 1, max: 20 }),
      size: fc.integer({ min: 4, max: 40 }),
    });
    fc.assert(
      fc.property(network, ({ version, stages, depth, dim, size }) => {
        const file = join(dir, `case${n++}.cnx`);
        const family = version === 'v1' ? 'ConvNeXtV1' : 'ConvNeXtV2';
        const dims = Array.from({ length: stages }, (_, i) => dim + i);
        writeFileSync(file, `import "${repoPath(`models/convnext${version}.cnx`).replace(/\\/g, '/')}"\nmodel m = ${family}(depths=[${Array(stages).fill(depth).join(', ')}], dims=[${dims.join(', ')}], classes=3)\n`);
        let graph: Graph;
        try {
          graph = elaborate(loadProgram(file), 'm', { batch: 1, height: size * 8, width: size * 8 });
        } catch {
          return; // an input too small for the stages
        }
        expectSameGraph(linearFused(graph), referenceFused(graph));
        compared++;
      }),
      { numRuns: 60 },
    );
    expect(compared).toBeGreaterThan(30);
  });
});
