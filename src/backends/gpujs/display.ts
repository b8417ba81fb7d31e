// headless-gl renders without a window but still opens an X display. Where the process has none
// (a server, CI) and Xvfb is installed, convc starts a private one for itself, so that
// `convc run --backend gpujs` works without `xvfb-run`; it ends with the process.
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

let started: Promise<string> | undefined;

function onPath(program: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, program), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * The X display GL contexts open: $DISPLAY where set, else a private Xvfb started now (and
 * $DISPLAY set to it for this process). Undefined where there is neither.
 */
export async function ensureDisplay(): Promise<string | undefined> {
  if (process.env.DISPLAY) return process.env.DISPLAY;
  if (!onPath('Xvfb')) return undefined;
  started ??= new Promise<string>((resolve, reject) => {
    // -displayfd: Xvfb picks a free display and writes its number to fd 3 once it is ready.
    // It runs under a shell that kills it when its stdin closes, which happens when this
    // process ends however it ends (a test worker is killed without an 'exit' event).
    const script = 'Xvfb -displayfd 3 -nolisten tcp -screen 0 64x64x24 & xvfb=$!; read _; kill $xvfb';
    const shell = spawn('/bin/sh', ['-c', script], { stdio: ['pipe', 'ignore', 'pipe', 'pipe'] });
    let number = '';
    let errors = '';
    shell.stderr?.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    // Once it is ready, nothing of it keeps this process alive.
    const release = () => {
      shell.unref();
      for (const stream of [shell.stdin, shell.stdio[3], shell.stderr]) (stream as unknown as { unref?: () => void } | null)?.unref?.();
    };
    (shell.stdio[3] as NodeJS.ReadableStream | null)?.on('data', (chunk: Buffer) => {
      number += chunk.toString();
      if (number.includes('\n')) {
        const display = `:${number.trim()}`;
        process.env.DISPLAY = display;
        release();
        resolve(display);
      }
    });
    shell.on('error', reject);
    shell.on('exit', (code) => reject(new Error(`Xvfb exited (${code}) before it was ready: ${errors.trim().split('\n').slice(-3).join(' ')}`)));
  });
  return started;
}
