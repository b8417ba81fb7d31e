// Cleanup on Ctrl-C and SIGTERM while temporary files exist. The handlers are installed only
// while something needs cleaning, so at any other time a signal keeps its default effect. A
// handler runs between event-loop turns, never inside synchronous work, so long writers yield
// now and then (see `yieldToSignals`) to let an interrupt through.
import { setImmediate as nextTurn } from 'node:timers/promises';

const signals = ['SIGINT', 'SIGTERM'] as const;
/** The shell's convention: 128 + the signal number. */
const exitCodes: Readonly<Record<(typeof signals)[number], number>> = { SIGINT: 130, SIGTERM: 143 };

const cleanups = new Set<() => void>();
let installed = false;

function onSignal(signal: (typeof signals)[number]): void {
  if (cleanups.size > 0) process.stderr.write(`\nconvc: ${signal}: stopped, and removed the partial output\n`);
  for (const cleanup of cleanups) {
    try {
      cleanup();
    } catch {
      // Exiting matters more than a temporary file that could not be removed.
    }
  }
  cleanups.clear();
  process.exit(exitCodes[signal]);
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const signal of signals) process.on(signal, onSignal);
}

function uninstallIfIdle(): void {
  if (!installed || cleanups.size > 0) return;
  installed = false;
  for (const signal of signals) process.off(signal, onSignal);
}

/**
 * Runs `cleanup` if SIGINT or SIGTERM arrives, then exits with 130 or 143. Returns the function
 * that withdraws it. The handlers stay one more event-loop turn after the last withdrawal, so
 * a signal that arrived during the final synchronous step still stops the process rather than
 * being swallowed.
 */
export function cleanUpOnSignal(cleanup: () => void): () => void {
  cleanups.add(cleanup);
  install();
  return () => {
    cleanups.delete(cleanup);
    setImmediate(uninstallIfIdle);
  };
}

/** Lets pending signal handlers run; call between long synchronous steps. */
export async function yieldToSignals(): Promise<void> {
  await nextTurn();
}
