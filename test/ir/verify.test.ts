// The verifier must reject graphs that a buggy pass could produce.
import { describe, expect, it } from 'vitest';
import type { Graph, Node } from '../../src/ir/types.js';
import { verifyGraph } from '../../src/ir/verify.js';
import { printGraph } from '../../src/ir/print.js';
import { zooGraph } from '../helpers.js';

const base = (): Graph => zooGraph('convnextv2-atto', { batch: 2, height: 64, width: 48 });

function withNode(graph: Graph, id: number, change: (n: Node) => Node): Graph {
  return { ...graph, nodes: graph.nodes.map((n) => (n.id === id ? change(n) : n)) };
}

describe('verifyGraph', () => {
  it('accepts what elaboration builds', () => {
    expect(() => verifyGraph(base())).not.toThrow();
  });

  const find = (g: Graph, op: string) => g.nodes.find((n) => n.op === op)!.id;

  it.each<[string, (g: Graph) => Graph, RegExp]>([
    ['a wrong stored shape', (g) => withNode(g, find(g, 'gelu'), (n) => ({ ...n, type: { ...n.type, shape: [2, 1, 1, 1] } })), /says \[2, 1, 1, 1\].*shape rule gives/],
    ['a use before definition', (g) => withNode(g, 1, (n) => ({ ...n, inputs: [5] })), /reads %5, which is not defined before it/],
    ['a wrong arity', (g) => withNode(g, find(g, 'add'), (n) => ({ ...n, inputs: [n.inputs[0]] })), /has 1 inputs; add takes 2/],
    ['a missing weight', (g) => ({ ...g, params: new Map([...g.params].filter(([k]) => k !== 'head.bias')) }), /lacks its 'bias' weight/],
    ['an unused weight', (g) => ({ ...g, params: new Map([...g.params, ['orphan', { key: 'orphan', shape: [1], dtype: 'f32', init: { kind: 'uniform', lo: 0, hi: 1 } }]]) }), /weight 'orphan' is read by no node/],
    ['ids out of order', (g) => ({ ...g, nodes: [g.nodes[1], g.nodes[0], ...g.nodes.slice(2)] }), /ids must match positions/],
    ['a dangling output', (g) => ({ ...g, outputs: [{ name: 'output', id: 10_000 }] }), /output 'output' %10000 is not a node/],
    ['no output', (g) => ({ ...g, outputs: [] }), /needs at least one output/],
    ['two outputs of one name', (g) => ({ ...g, outputs: [g.outputs[0], { name: 'output', id: 1 }] }), /two outputs share a name/],
    ['no image input', (g) => withNode(g, 0, (n) => ({ ...n, op: 'gelu', inputs: [] })), /needs an image input/],
    ['an unknown op', (g) => withNode(g, find(g, 'gelu'), (n) => ({ ...n, op: 'swish' })), /unknown op/],
  ])('rejects %s', (_, corrupt, message) => {
    expect(() => verifyGraph(corrupt(base()), 'test')).toThrow(message);
  });

  it('prints a readable graph with names and shapes', () => {
    const text = printGraph(base());
    expect(text).toMatch(/^graph convnextv2-atto \{/);
    expect(text).toContain('= conv2d(%0) {in=3, out=40, kernel=[4, 4], stride=[4, 4], padding=[0, 0], groups=1, bias=true} downsample_layers.0.0 : [2, 40, 16, 12] f32');
    expect(text).toMatch(/= grn_stats\(%\d+\) \{dim=160, eps=0\.000001, over_batch=false\} stages\.0\.0\.grn : \[2, 160\] f32/);
  });
});
