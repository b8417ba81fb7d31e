// gpu.js's GL mode in Node needs the gl package (headless-gl) built, which npm does not do
// (allowScripts: its install script would download a prebuilt binary first). Where its sources
// are installed but not built, `convc run --backend gpujs` builds it once with
// scripts/setup-gpujs.sh, saying so first: minutes, once, instead of an error to act on.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageRoot } from '../../util/package-root.js';

const require = createRequire(import.meta.url);

/** Whether the gl package loads (its native part built). */
export function glLoads(): boolean {
  try {
    require('gl');
    return true;
  } catch {
    return false;
  }
}

/**
 * Builds gl where its sources are installed but not built, reporting through `say`. Returns
 * whether gl loads afterwards; the caller's own error says what is missing where it does not.
 */
export function buildGlIfMissing(say: (line: string) => void): boolean {
  if (glLoads()) return true;
  try {
    require.resolve('gl/package.json');
  } catch {
    return false;
  }
  const script = join(packageRoot(), 'scripts', 'setup-gpujs.sh');
  if (!existsSync(script)) return false;
  say("note: gpu.js's GL mode needs the gl package (headless-gl) built; building it now with scripts/setup-gpujs.sh (once; a few minutes)");
  const run = spawnSync('bash', [script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  for (const line of `${run.stdout ?? ''}${run.stderr ?? ''}`.split('\n')) if (line.trim() !== '') say(line);
  return run.status === 0 && glLoads();
}
