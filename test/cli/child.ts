// Runs convc from src/ in a child process (through tsx, no build needed), in any folder and with
// any environment: for what only a fresh process shows (stderr, the working folder, native output).
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { repoPath } from '../helpers.js';

const tsx = pathToFileURL(repoPath('node_modules/tsx/dist/loader.mjs')).href;
const entry = repoPath('test/cli/fixtures/convc-from-src.mjs');

export function convcChild(args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, ['--import', tsx, entry, ...args], {
    cwd: options.cwd ?? repoPath('.'),
    env: options.env ?? process.env,
    encoding: 'utf8',
    timeout: 120_000,
  });
}
