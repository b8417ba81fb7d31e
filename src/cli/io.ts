// What commands may touch of the outside world, so tests can run them in-process.
export interface CliIo {
  readonly stdout: { write(text: string): unknown; readonly isTTY?: boolean };
  readonly stderr: { write(text: string): unknown; readonly isTTY?: boolean };
}

export const processIo: CliIo = { stdout: process.stdout, stderr: process.stderr };

/**
 * A one-line progress display on a terminal, redrawn in place. Nothing when stderr is not a
 * terminal (a log, a pipe, a test): lines of percentages there are noise. Silent too for work
 * that finishes within `quietMs`, where a bar would only flicker.
 */
export function progress(io: CliIo, label: string, quietMs = 1000): { update(done: number, total: number): void; finish(): void } {
  const tty = io.stderr.isTTY === true;
  const started = Date.now();
  let lastPercent = -1;
  return {
    update(done, total) {
      if (Date.now() - started < quietMs) return;
      const percent = Math.floor((100 * done) / total);
      if (percent === lastPercent) return;
      lastPercent = percent;
      if (tty) {
        const width = 30;
        const filled = Math.round((width * done) / total);
        io.stderr.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`);
      }
    },
    finish() {
      if (tty && lastPercent >= 0) io.stderr.write('\n');
    },
  };
}
