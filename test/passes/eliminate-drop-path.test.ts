// Pass tests compare the graph after a pass with the graph it should equal (TVM's style).
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../src/ir/builder.js';
import { printGraph } from '../../src/ir/print.js';
import { eliminateDropPath } from '../../src/passes/eliminate-drop-path.js';
import { runPipeline } from '../../src/passes/manager.js';

const input = { channels: 4, shape: [1, 4, 5, 5] };

function before() {
  const b = new GraphBuilder('g');
  const x = b.add({ op: 'input', inputs: [], attrs: input, name: '' });
  const g = b.add({ op: 'gelu', inputs: [x], attrs: {}, name: '' });
  const d = b.add({ op: 'drop_path', inputs: [g], attrs: { rate: 0.1 }, name: '' });
  const s = b.add({ op: 'add', inputs: [x, d], attrs: {}, name: '' });
  const d2 = b.add({ op: 'drop_path', inputs: [s], attrs: { rate: 0 }, name: '' });
  return b.build(d2);
}

function expected() {
  const b = new GraphBuilder('g');
  const x = b.add({ op: 'input', inputs: [], attrs: input, name: '' });
  const g = b.add({ op: 'gelu', inputs: [x], attrs: {}, name: '' });
  return b.build(b.add({ op: 'add', inputs: [x, g], attrs: {}, name: '' }));
}

describe('eliminate-drop-path', () => {
  it('removes drop_path nodes, rewiring their uses and the output', () => {
    expect(printGraph(runPipeline(before(), ['eliminate-drop-path']))).toBe(printGraph(expected()));
  });

  it('leaves a graph without drop_path unchanged', () => {
    const graph = expected();
    expect(eliminateDropPath.run(graph)).toBe(graph);
  });
});
