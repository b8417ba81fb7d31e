// Lowering a model reuses the kernel of an earlier node lowered alike (lowerNodes), and renders
// each distinct program once (sameRendering). Both are shortcuts: they must give exactly what
// lowering and rendering every node would.
import { describe, expect, it } from 'vitest';
import { elaborate, selectModel } from '../../src/dsl/elaborate.js';
import { loadProgram } from '../../src/dsl/load.js';
import type { KernelProgram } from '../../src/kernel/ir.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { lowerNode, lowerNodes } from '../../src/kernel/lower/index.js';
import { renderingBucket, sameRendering } from '../../src/kernel/same.js';
import { splitForKernels } from '../../src/kernel/split.js';
import { recomputeLimits, webgpuDefaultTarget, type TargetDescription } from '../../src/kernel/target.js';
import { pipelines, runPipeline } from '../../src/passes/manager.js';
import { repoPath, zooGraph } from '../helpers.js';
import { readdirSync } from 'node:fs';

const emulated: TargetDescription = { ...webgpuDefaultTarget, name: 'a CPU emulation with subgroups of 8', subgroups: true, subgroupSize: 8, emulated: true, prologueRecomputeLimit: recomputeLimits.software };
const variants = readdirSync(repoPath('models'))
  .filter((f) => /^convnextv\d-\w+\.cnx$/.test(f))
  .map((f) => f.replace(/\.cnx$/, ''));

describe('lowerNodes', () => {
  it('found the zoo', () => expect(variants.length).toBeGreaterThanOrEqual(13));

  it.each(variants)('%s: every kernel equals lowering its node alone, fused and unfused, on two targets, f32 and f16', (variant) => {
    const file = repoPath(`models/${variant}.cnx`);
    const source = loadProgram(file);
    let reused = 0;
    for (const target of [webgpuDefaultTarget, emulated]) {
      for (const pipeline of ['fused', 'unfused'] as const) {
        const graph = splitForKernels(runPipeline(elaborate(source, selectModel(source, undefined, file), { batch: 1, height: 64, width: 64 }), pipelines[pipeline], { context: { target } }));
        for (const storage of ['f32', 'f16'] as const) {
          const device = storage === 'f16' ? { ...target, f16: true } : target;
          const programs = lowerNodes(graph, device, () => undefined, storage);
          graph.nodes.forEach((node, i) => {
            const alone = lowerNode(graph, node, device, undefined, storage);
            expect(programs[i], `${pipeline} ${storage} ${node.name}`).toEqual(alone);
            if (programs.slice(0, i).some((p) => p.body === programs[i].body)) reused++;
          });
        }
      }
    }
    // The shortcut was taken (a model repeats its blocks), so the comparison above tested it.
    expect(reused).toBeGreaterThan(0);
  });
});

describe('lowerNodes with a value read twice', () => {
  it('does not take add(a, a) for add(a, b): a kernel binds a value read twice once', () => {
    const b = new GraphBuilder('twice');
    const x = b.add({ op: 'input', inputs: [], attrs: { channels: 8, shape: [1, 8, 4, 4] }, name: '' });
    const a = b.add({ op: 'gelu', inputs: [x], attrs: {}, name: 'a' });
    const c = b.add({ op: 'gelu', inputs: [a], attrs: {}, name: 'c' });
    const same = b.add({ op: 'add', inputs: [c, c], attrs: {}, name: '' });
    const apart = b.add({ op: 'add', inputs: [same, c], attrs: {}, name: '' });
    // Neither add is the output, which lowering keys apart.
    const graph = b.build(b.add({ op: 'gelu', inputs: [apart], attrs: {}, name: 'out' }));
    const programs = lowerNodes(graph, webgpuDefaultTarget, () => undefined);
    graph.nodes.forEach((node, i) => expect(programs[i], `%${node.id}`).toEqual(lowerNode(graph, node, webgpuDefaultTarget)));
    expect(programs[same].buffers.filter((buffer) => buffer.access === 'read')).toHaveLength(1);
    expect(programs[apart].buffers.filter((buffer) => buffer.access === 'read')).toHaveLength(2);
  });
});

describe('sameRendering', () => {
  const graph = splitForKernels(zooGraph('convnextv2-atto', { batch: 1, height: 32, width: 32 }, pipelines.fused));
  const programs = graph.nodes.map((node) => lowerNode(graph, node, webgpuDefaultTarget));
  const withConstant = (p: KernelProgram, value: number): KernelProgram => ({ ...p, body: [{ kind: 'let', name: 'probe', value: { kind: 'const', type: 'f32', value } }, ...p.body] });

  it('ignores the nodes covered and where buffers come from, nothing else', () => {
    const p = programs[2];
    expect(sameRendering(p, { ...p, covers: 'another node', buffers: p.buffers.map((b) => ({ ...b, ref: { kind: 'weight', key: 'elsewhere' } })) })).toBe(true);
    expect(sameRendering(p, { ...p, workgroups: p.workgroups + 1 })).toBe(false);
    expect(sameRendering(p, { ...p, buffers: p.buffers.map((b, i) => (i === 0 ? { ...b, name: 'renamed' } : b)) })).toBe(false);
    expect(sameRendering(p, { ...p, body: p.body.slice(1) })).toBe(false);
  });

  it('tells -0 from 0 and the infinities apart, as their literals differ', () => {
    const p = programs[2];
    expect(sameRendering(withConstant(p, 0), withConstant(p, -0))).toBe(false);
    expect(sameRendering(withConstant(p, Infinity), withConstant(p, -Infinity))).toBe(false);
    expect(sameRendering(withConstant(p, NaN), withConstant(p, NaN))).toBe(true);
    // The bucket is only a first sieve: these share one.
    expect(renderingBucket(withConstant(p, 0))).toBe(renderingBucket(withConstant(p, -0)));
  });

  it('finds programs of different nodes alike exactly when their WGSL is alike', async () => {
    const { renderWgsl } = await import('../../src/backends/wgsl/render.js');
    const header = /^\/\/ Computes IR node\(s\):.*$/m;
    let alike = 0;
    for (let i = 0; i < programs.length; i++) {
      for (let j = 0; j < i; j++) {
        const same = sameRendering(programs[i], programs[j]);
        expect(same, `${programs[i].covers} vs ${programs[j].covers}`).toBe(renderWgsl(programs[i]).replace(header, '') === renderWgsl(programs[j]).replace(header, ''));
        if (same) alike++;
      }
    }
    expect(alike).toBeGreaterThan(0);
  });
});
