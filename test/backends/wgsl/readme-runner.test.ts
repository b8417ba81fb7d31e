// The README's runner example, run as written against a compiled package, from Node.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { executeReference } from '../../../src/backends/reference/executor.js';
import { driverDescriptionPath } from '../../../src/backends/webgpu/device.js';
import { main } from '../../../src/cli/main.js';
import { randomWeights } from '../../../src/weights/random.js';
import { captureIo, repoPath, toleranceRatio, zooGraph } from '../../helpers.js';
import { pipelines } from '../../../src/passes/manager.js';

// Inside the repository, so that the example's `import 'webgpu'` resolves as in a user's app.
const work = repoPath(`build/readme-runner-${process.pid}`);

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The environment a machine with this software driver installed would have. */
function driverEnvironment(): Record<string, string> {
  const description = JSON.parse(readFileSync(driverDescriptionPath(), 'utf8')) as { env?: Record<string, string>; preload?: string[] };
  const env: Record<string, string> = { ...description.env };
  if (description.preload?.length) env.LD_LIBRARY_PATH = dirname(description.preload[0]);
  return env;
}

describe('README runner example', () => {
  it('runs the compiled package from Node and matches the reference executor', async () => {
    mkdirSync(work, { recursive: true });
    const io = captureIo();
    expect(await main(['compile', repoPath('models/convnextv2-atto.cnx'), '-o', join(work, 'atto'), '--random-weights', '--size', '32'], io), io.err()).toBe(0);
    const readme = readFileSync(repoPath('README.md'), 'utf8');
    const example = /### The runner[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(example).toContain('createModel(device');
    writeFileSync(join(work, 'example.mjs'), `${example}\nconsole.log(JSON.stringify(Array.from(logits)));\n`);
    expect(existsSync(driverDescriptionPath())).toBe(true);
    const run = spawnSync(process.execPath, ['example.mjs'], { cwd: work, encoding: 'utf8', env: { ...process.env, ...driverEnvironment() }, timeout: 60_000 });
    expect(run.status, run.stderr).toBe(0);
    const logits = Float32Array.from(JSON.parse(run.stdout.trim().split('\n').at(-1)!));
    const graph = zooGraph('convnextv2-atto', { batch: 1, height: 32, width: 32 }, pipelines.fused);
    const expected = executeReference(graph, randomWeights(graph, 0), { shape: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32) });
    expect(logits).toHaveLength(1000);
    expect(toleranceRatio(logits, expected.data, 1e-4, 1e-4)).toBeLessThan(1);
  }, 120_000);
});
