// Dawn's OpenGL ES backend and gpu.js's GL mode (headless-gl) in one process end it with an X
// error once both make contexts current; the second to start is refused with a user error
// instead. This file holds Dawn's GL adapter first (each test file runs in its own process);
// gpujs.test.ts checks the other order.
import { afterAll, describe, expect, it } from 'vitest';
import { createGpuJs } from '../../../src/backends/gpujs/execute.js';
import { acquireGpu, type AcquiredGpu } from '../../../src/backends/webgpu/device.js';

let gl: AcquiredGpu | undefined;
afterAll(() => gl?.destroy());

describe("gpu.js's GL mode after Dawn's OpenGL backend", () => {
  it('is refused, saying why, and the process lives on', async () => {
    gl = await acquireGpu({ adapter: 'gl' });
    await expect(createGpuJs('gpu')).rejects.toThrow(
      "gpu.js's GL mode (headless-gl) cannot start in this process: Dawn's OpenGL ES backend (the WebGPU gl adapter) already uses OpenGL here",
    );
    // CPU mode has no GL: it runs.
    const cpu = await createGpuJs('cpu');
    expect(cpu.Kernel?.mode).toBe('cpu');
    await cpu.destroy();
  });
});
