// The README's gpu.js runner example, run as written against a compiled package, from Node in
// gpu.js's GL mode (headless-gl), and checked against the reference executor.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureDisplay } from '../../../src/backends/gpujs/display.js';
import { executeReference } from '../../../src/backends/reference/executor.js';
import { main } from '../../../src/cli/main.js';
import { pipelines } from '../../../src/passes/manager.js';
import { randomWeights } from '../../../src/weights/random.js';
import { captureIo, repoPath, scaledDifference, zooGraph } from '../../helpers.js';

// Inside the repository, so that the example's `import 'gpu.js'` resolves as in a user's app.
const work = repoPath(`build/readme-gpujs-${process.pid}`);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("README's gpu.js runner example", () => {
  it('runs the compiled package in GL mode and matches the reference executor', async () => {
    mkdirSync(work, { recursive: true });
    const io = captureIo();
    expect(await main(['compile', repoPath('models/convnextv2-atto.cnx'), '--target', 'gpujs', '-o', join(work, 'atto-gpujs'), '--random-weights', '--size', '32'], io), io.err()).toBe(0);
    const readme = readFileSync(repoPath('README.md'), 'utf8');
    const example = /## gpu\.js \(WebGL\)[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(example).toContain("new GPU({ mode: 'headlessgl' })");
    writeFileSync(join(work, 'example.mjs'), `${example}\nconsole.log(JSON.stringify(Array.from(logits)));\n`);
    // headless-gl opens an X display: the one convc would start for itself.
    const display = await ensureDisplay();
    expect(display).toBeDefined();
    const run = spawnSync(process.execPath, ['example.mjs'], { cwd: work, encoding: 'utf8', env: { ...process.env, DISPLAY: display }, timeout: 120_000 });
    expect(run.status, run.stderr).toBe(0);
    const logits = Float32Array.from(JSON.parse(run.stdout.trim().split('\n').at(-1)!));
    const graph = zooGraph('convnextv2-atto', { batch: 1, height: 32, width: 32 }, pipelines.unfused);
    const expected = executeReference(graph, randomWeights(graph, 0), { shape: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32) });
    expect(scaledDifference(logits, expected.data)).toBeLessThan(1e-4);
  }, 180_000);
});
