// Vitest's worker reports each test to the main process over IPC and gives every report 60 s to be
// answered. The answer is only read when the worker's event loop polls for I/O, and awaiting an
// already-settled promise never gets that far: tests that compute synchronously (or await only
// work that resolves at once) back to back for more than 60 s fail the run with
// `Timeout calling "onTaskUpdate"` although every test passed. A timer followed by an immediate
// is one full turn of the loop, its poll phase included, so replies waiting in the pipe are read.
import { setImmediate, setTimeout } from 'node:timers/promises';

/** One full turn of the event loop (timers, I/O poll, immediates); immune to vi.useFakeTimers. */
export async function yieldToEventLoop(): Promise<void> {
  await setTimeout(0);
  await setImmediate();
}
