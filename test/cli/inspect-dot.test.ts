// convc inspect --dot and --svg: the kernels of a model as a Graphviz graph (a box per dispatch
// naming its kernel and the IR nodes it covers, edges from what it reads), rendered as SVG by
// Graphviz's dot where it is installed and refused with a clear error where it is not.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { graphToDot } from '../../src/kernel/dot.js';
import { lowerModel } from '../../src/kernel/lower/index.js';
import { webgpuDefaultTarget } from '../../src/kernel/target.js';
import { captureIo, goldenDir, zooGraph } from '../helpers.js';
import { pipelines } from '../../src/passes/manager.js';

const scratch = mkdtempSync(join(tmpdir(), 'convc-dot-'));
const hasDot = spawnSync('dot', ['-V']).status === 0;

async function convc(...args: string[]) {
  const io = captureIo();
  const code = await main(args, io);
  return { code, out: io.out(), err: io.err() };
}

describe('convc inspect --dot', () => {
  it("draws a V2 block's six kernels (four fused, two layout changes), their edges, and the model's input and output", async () => {
    const file = join(scratch, 'block.dot');
    const { code, err } = await convc('inspect', join(goldenDir, 'cases.cnx'), '--model', 'v2-block', '--dot', file);
    expect(err).toBe('');
    expect(code).toBe(0);
    const dot = readFileSync(file, 'utf8');
    expect(dot).toMatch(/^\/\/ convc inspect --dot: model 'v2-block', 6 kernel dispatches/);
    const boxes = [...dot.matchAll(/"kernel_(\d+)" \[shape=box[^\n]*label="\d+: (\w+)\\n([^"]*)"\]/g)].map((m) => [m[2], m[3]]);
    expect(boxes.map(([name]) => name)).toEqual(['nchw_to_nhwc', 'conv2d_depthwise_7x7_layernorm', 'linear_gelu_gemm', 'grn_stats', 'grn_apply_linear_add', 'nhwc_to_nchw']);
    expect(boxes[4][1]).toMatch(/^%\d+ grn_apply\+linear\+add block\.pwconv2 \[1, 20, 224, 224\]$/);
    const edges = [...dot.matchAll(/^ {2}"(\w+)" -> "(\w+)";$/gm)].map((m) => `${m[1]}->${m[2]}`);
    // pw2 reads pw1's output, the GRN statistics and the block's input (the residual).
    expect(edges).toEqual(expect.arrayContaining(['input_input->kernel_0', 'kernel_2->kernel_4', 'kernel_3->kernel_4', 'kernel_0->kernel_4', 'kernel_4->kernel_5', 'kernel_5->output_output']));
    expect(edges).toHaveLength(9);
  });

  it('escapes quotes and backslashes in the names it quotes', () => {
    const graph = zooGraph('convnextv2-atto', { batch: 1, height: 32, width: 32 }, pipelines.fused);
    const named = { ...graph, name: 'a"b\\c', nodes: graph.nodes.map((n) => (n.id === 1 ? { ...n, name: 'x"y' } : n)) };
    const dot = graphToDot(named, lowerModel(named, webgpuDefaultTarget, () => undefined));
    expect(dot).toContain('digraph "a\\"b\\\\c" {');
    expect(dot).toContain('x\\"y');
    expect(dot).not.toMatch(/[^\\]"y/);
  });

  it.runIf(hasDot)('renders the graph as SVG with Graphviz', async () => {
    const file = join(scratch, 'atto.svg');
    const { code, err } = await convc('inspect', 'convnextv2-atto.cnx', '--size', '32', '--svg', file);
    expect(err).toBe('');
    expect(code).toBe(0);
    const svg = readFileSync(file, 'utf8');
    expect(svg).toMatch(/<svg[\s\S]*conv2d_depthwise_7x7_layernorm[\s\S]*<\/svg>/);
  });

  it('without Graphviz refuses --svg, names the package and writes nothing', async () => {
    const saved = process.env.PATH;
    process.env.PATH = scratch;
    try {
      const file = join(scratch, 'none.svg');
      const { code, err } = await convc('inspect', 'convnextv2-atto.cnx', '--size', '32', '--svg', file, '--dot', join(scratch, 'none.dot'));
      expect(code).toBe(2);
      expect(err).toContain("--svg needs Graphviz's dot, which is not installed");
      expect(err).toContain('apt-get install graphviz');
      expect(existsSync(file)).toBe(false);
      expect(existsSync(join(scratch, 'none.dot'))).toBe(false);
    } finally {
      process.env.PATH = saved;
    }
  });

  it('refuses --dot with --kernel', async () => {
    const { code, err } = await convc('inspect', 'convnextv2-atto.cnx', '--kernel', '0', '--dot', join(scratch, 'k.dot'));
    expect(code).toBe(2);
    expect(err).toContain('--dot and --svg draw the whole model; they do not go with --kernel or --after');
  });
});
