// Runs the mutational fuzzer (scripts/fuzz.ts) for a bounded time. The seed is printed, so a
// failure replays with `npm run fuzz -- --seed S --runs N` (N: the inputs it got through; input
// i depends only on the seed and i); FUZZ_SEED and FUZZ_SECONDS override.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { repoPath } from '../helpers.js';

const seconds = Number(process.env.FUZZ_SECONDS ?? 40);
const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));

it(`fuzzes the front end, passes and WGSL lowering for ${seconds} s (seed ${seed})`, () => {
  const out = mkdtempSync(join(tmpdir(), 'convc-fuzz-'));
  console.log(`fuzz seed ${seed}; replay: npm run fuzz -- --seed ${seed} --runs <inputs it reports>`);
  const run = spawnSync(process.execPath, ['--import', 'tsx', repoPath('scripts/fuzz.ts'), '--seconds', String(seconds), '--seed', String(seed), '--timeout-ms', '20000', '--out', out], {
    cwd: repoPath(''),
    encoding: 'utf8',
    timeout: (seconds + 60) * 1000,
  });
  console.log(run.stdout);
  try {
    expect(run.error).toBeUndefined();
    expect(run.stdout).toMatch(/fuzz: seed \d+: [1-9]\d* inputs in/);
    expect(run.stdout).not.toMatch(/FAIL/);
    expect(run.status).toBe(0);
  } finally {
    if (run.status === 0) rmSync(out, { recursive: true, force: true });
    else console.log(`failing inputs kept in ${out}\n${run.stderr}`);
  }
}, (seconds + 90) * 1000);
