// Issue 13's AddressSanitizer run: whole models' CUDA kernels (V2-atto fused, unfused and f16,
// V1-tiny fused, FCMAE's compacted encoder) at small odd shapes, compiled with
// -fsanitize=address and run on the sanitized emulated driver, whose buffers are allocated to
// their exact size: an index one past a buffer's end cannot pass by landing in padding.
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { repoPath } from '../../helpers.js';

describe('CUDA kernels under AddressSanitizer', () => {
  it('read and write only inside their buffers, and compute what the reference does', async () => {
    const asanRuntime = spawnSync('g++', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).stdout.trim();
    // Asynchronously, so the test worker stays responsive while the child runs.
    const run = await promisify(execFile)(process.execPath, ['--import', 'tsx', repoPath('test/backends/cuda/asan-child.ts')], {
      cwd: repoPath('.'),
      encoding: 'utf8',
      env: { ...process.env, LD_PRELOAD: asanRuntime, ASAN_OPTIONS: 'detect_leaks=0' },
      timeout: 570_000,
      maxBuffer: 16 * 1024 * 1024,
    }).catch((error: { stdout?: string; stderr?: string; code?: number }) => ({ stdout: error.stdout ?? '', stderr: `exit ${error.code}: ${error.stderr ?? String(error)}` }));
    expect(run.stderr).not.toContain('AddressSanitizer');
    expect(run.stderr).not.toMatch(/^exit /);
    const lines = run.stdout.trim().split('\n').map((line) => line.split(' '));
    expect(lines.map(([name]) => name)).toEqual(['convnextv2-atto-fused', 'convnextv2-atto-fused-f16', 'convnextv2-atto-unfused', 'convnextv1-tiny-fused', 'fcmae']);
    // f32 kernels within the goldens' 1e-4; f16 storage rounds every activation to 11 bits.
    for (const [name, difference] of lines) expect(Number(difference), name).toBeLessThan(name.endsWith('f16') ? 5e-3 : 1e-4);
  }, 600_000);
});
