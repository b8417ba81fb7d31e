#!/usr/bin/env node
// Runs every PyTorch golden case (test/fixtures/golden and, where given, a directory of more in
// the same layout) through `convc run` on each backend named, exactly as a user would, and
// checks each output against the golden within 1e-4 of its scale. Prints one line a case and
// backend, writes the results as JSON, and exits 1 if any case is off or fails to run.
//
//   node bench/check-goldens.mjs --backend cuda --backend webgpu [--cases DIR] [--json FILE]
//
// `npm run build` first: it runs bin/convc.js and reads dist/.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { backend: { type: 'string', multiple: true }, cases: { type: 'string', multiple: true }, json: { type: 'string' } } });
const backends = values.backend ?? ['reference'];
const caseDirs = [join(root, 'test/fixtures/golden'), ...(values.cases ?? []).map((d) => resolve(d))];
const { readNpy } = await import(join(root, 'dist/io/npy.js'));
const { scaledDifference } = await import(join(root, 'dist/util/scaled-difference.js'));

// The goldens are f64 PyTorch; every backend computes in f32. 1e-4 of the output's scale is
// issue 13's bound for CUDA and holds with a wide margin for f32 kernels on these small cases.
const tolerance = 1e-4;
const scratch = mkdtempSync(join(tmpdir(), 'convc-goldens-'));
const results = [];
try {
  for (const dir of caseDirs) {
    const { cases } = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    for (const c of cases) {
      for (const backend of backends) {
        const out = join(scratch, `${c.name}-${backend}.npy`);
        const started = Date.now();
        const run = spawnSync(
          process.execPath,
          [join(root, 'bin/convc.js'), 'run', join(dir, 'cases.cnx'), '--model', c.name, '--weights', join(dir, c.name, 'weights.safetensors'), '--input', join(dir, c.name, 'input.npy'), '--out', out, '--backend', backend],
          { encoding: 'utf8' },
        );
        const seconds = (Date.now() - started) / 1000;
        let difference = Infinity;
        let error;
        if (run.status !== 0) error = (run.stderr || run.stdout).trim().split('\n').slice(0, 3).join(' | ');
        else {
          const expected = readNpy(new Uint8Array(readFileSync(join(dir, c.name, 'output.npy'))), 'output.npy');
          difference = scaledDifference(readNpy(new Uint8Array(readFileSync(out)), out).data, expected.data);
        }
        const ok = error === undefined && difference <= tolerance;
        results.push({ case: c.name, backend, ok, max_scaled_diff: Number.isFinite(difference) ? difference : null, seconds, ...(error ? { error } : {}) });
        console.log(`${ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(18)} ${backend.padEnd(14)} ${error ?? `max scaled diff ${difference.toExponential(2)}`} (${seconds.toFixed(1)} s)`);
      }
    }
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
if (values.json) writeFileSync(values.json, `${JSON.stringify({ date: new Date().toISOString(), tolerance, results }, null, 2)}\n`);
const failed = results.filter((r) => !r.ok).length;
console.log(`${results.length - failed} of ${results.length} within ${tolerance} of the goldens`);
process.exitCode = failed > 0 ? 1 : 0;
