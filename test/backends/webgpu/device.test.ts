// The WebGPU device through Dawn: a real compute dispatch with a readback, shader diagnostics,
// and a process that exits by itself after destroying its device. Machines without a GPU need
// `bash scripts/setup-webgpu.sh` first (npm test's pretest and .ci/run do that).
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireGpu, driverDescriptionPath, type AcquiredGpu } from '../../../src/backends/webgpu/device.js';
import { repoPath } from '../../helpers.js';

const AFFINE_WGSL = /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  if (id.x < arrayLength(&y)) {
    y[id.x] = 2.0 * x[id.x] + 1.0;
  }
}
`;

async function runAffine(device: GPUDevice, input: Float32Array): Promise<Float32Array> {
  const bytes = input.byteLength;
  const x = device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE, mappedAtCreation: true });
  new Float32Array(x.getMappedRange()).set(input);
  x.unmap();
  const y = device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const readback = device.createBuffer({ size: bytes, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });

  const pipeline = device.createComputePipeline({
    layout: 'auto',
    compute: { module: device.createShaderModule({ code: AFFINE_WGSL }), entryPoint: 'main' },
  });
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: x } },
      { binding: 1, resource: { buffer: y } },
    ],
  });
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(Math.ceil(input.length / 64));
  pass.end();
  encoder.copyBufferToBuffer(y, 0, readback, 0, bytes);
  device.queue.submit([encoder.finish()]);

  await readback.mapAsync(GPUMapMode.READ);
  const result = new Float32Array(readback.getMappedRange().slice(0));
  readback.unmap();
  for (const buffer of [x, y, readback]) buffer.destroy();
  return result;
}

describe('WebGPU device', () => {
  let gpu: AcquiredGpu;

  beforeAll(async () => {
    gpu = await acquireGpu();
  });

  afterAll(() => {
    gpu?.destroy();
  });

  it('describes its adapter and raises the buffer limits', () => {
    expect(gpu.adapterInfo).toMatch(/\w/);
    // WebGPU's defaults; the adapter's maxima are at least these.
    expect(gpu.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 1024 * 1024);
    expect(gpu.limits.maxBufferSize).toBeGreaterThanOrEqual(gpu.limits.maxStorageBufferBindingSize);
    expect(gpu.limits.maxComputeInvocationsPerWorkgroup).toBeGreaterThanOrEqual(128);
  });

  it('computes y = 2x + 1 over 1000 floats exactly', async () => {
    const x = new Float32Array(1000);
    for (let i = 0; i < x.length; i++) x[i] = (i - 500) * 0.37;
    const y = await runAffine(gpu.device, x);
    // 2x is exact in f32, so with or without an fma the one rounding is that of the add.
    const expected = Float32Array.from(x, (v) => 2 * v + 1);
    expect(Array.from(y)).toEqual(Array.from(expected));
  });

  it('reports WGSL errors through getCompilationInfo', async () => {
    const { device } = gpu;
    // Swallow the validation error the bad module raises, so it is not printed as uncaptured.
    device.pushErrorScope('validation');
    const module = device.createShaderModule({
      code: '@compute @workgroup_size(1) fn main() {\n  let v: f32 = no_such_function(1.0);\n}\n',
    });
    const info = await module.getCompilationInfo();
    const scopeError = await device.popErrorScope();
    const errors = info.messages.filter((m) => m.type === 'error');
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0].message).toContain('no_such_function');
    expect(errors[0].lineNum).toBe(2);
    expect(scopeError).not.toBeNull();
  });

  // A child with none of the variables this process may have set, like a fresh shell: it has to
  // find the driver by itself, and exit soon and cleanly after destroying its device.
  function runChild(mode: 'bare' | 'readback'): { adapterInfo: string; values: number[] } {
    const env = { ...process.env };
    for (const key of ['VK_DRIVER_FILES', 'VK_ICD_FILENAMES', 'EGL_PLATFORM']) delete env[key];
    const child = spawnSync(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', repoPath('test/backends/webgpu/fixtures/acquire-and-exit.mjs'), repoPath('src/backends/webgpu/device.ts'), mode],
      { cwd: repoPath('.'), env, encoding: 'utf8', timeout: 45_000 },
    );
    const exitedAt = Date.now();
    expect(child.error, 'the child hung until the timeout killed it').toBeUndefined();
    expect(child.signal, child.stderr).toBeNull();
    expect(child.status, child.stderr).toBe(0);
    const report = JSON.parse(child.stdout.trim().split('\n').pop()!);
    expect(exitedAt - report.destroyedAt).toBeLessThan(5000);
    return report;
  }

  it('lets a process that acquires and destroys a device exit by itself', () => {
    expect(runChild('bare').adapterInfo).toBe(gpu.adapterInfo);
  });

  it('lets a process exit by itself after a mapAsync readback', () => {
    expect(runChild('readback').values).toEqual([1, 2, 3, 4]);
  });

  it('looks for the driver description under the package root', () => {
    expect(driverDescriptionPath()).toBe(repoPath('.cache/webgpu/driver.json'));
  });
});
