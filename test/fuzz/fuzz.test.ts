// Runs the mutational fuzzer (scripts/fuzz.ts) for a bounded time. The seed is printed, so a
// failure replays with `npm run fuzz -- --seed S --runs N` (N: the inputs it got through; input
// i depends only on the seed and i); FUZZ_SEED and FUZZ_SECONDS override.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { repoPath } from '../helpers.js';

const seconds = Number(process.env.FUZZ_SECONDS ?? 40);
const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));

interface Finished {
  readonly status: number | null;
  readonly error: Error | undefined;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs the fuzzer as a child without blocking this worker: a synchronous wait longer than 60 s
 * would leave vitest's IPC unanswered (test/event-loop.ts), and FUZZ_SECONDS may ask for longer.
 */
function runFuzzer(args: readonly string[], timeoutMs: number): Promise<Finished> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', repoPath('scripts/fuzz.ts'), ...args], { cwd: repoPath(''), timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    let error: Error | undefined;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (e) => (error = e));
    child.on('close', (status, signal) => {
      if (signal !== null && error === undefined) error = new Error(`the fuzzer was killed by ${signal}`);
      resolve({ status, error, stdout, stderr });
    });
  });
}

it(`fuzzes the front end, passes and WGSL lowering for ${seconds} s (seed ${seed})`, async () => {
  const out = mkdtempSync(join(tmpdir(), 'convc-fuzz-'));
  console.log(`fuzz seed ${seed}; replay: npm run fuzz -- --seed ${seed} --runs <inputs it reports>`);
  const run = await runFuzzer(['--seconds', String(seconds), '--seed', String(seed), '--timeout-ms', '20000', '--out', out], (seconds + 60) * 1000);
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
