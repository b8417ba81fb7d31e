// Progress on long work: a bar redrawn in place on a terminal, nothing at all when stderr is
// not one (a log, a pipe), and nothing for work that ends before the quiet period.
import { describe, expect, it } from 'vitest';
import { progress, type CliIo } from '../../src/cli/io.js';

function fakeIo(tty: boolean): CliIo & { text: () => string } {
  let text = '';
  const stream = { isTTY: tty, write: (s: string) => (text += s) };
  return { stdout: stream, stderr: stream, text: () => text };
}

describe('progress', () => {
  it('draws a bar on a terminal, redrawn in place, and ends its line when finished', () => {
    const io = fakeIo(true);
    const bar = progress(io, 'compiling m', 0);
    bar.update(1, 4);
    bar.update(4, 4);
    bar.finish();
    expect(io.text()).toBe('\rcompiling m [########......................] 1/4\rcompiling m [##############################] 4/4\n');
  });

  it('writes nothing when stderr is not a terminal', () => {
    const io = fakeIo(false);
    const bar = progress(io, 'compiling m', 0);
    for (let i = 0; i <= 8; i++) bar.update(i, 8);
    bar.finish();
    expect(io.text()).toBe('');
  });

  it('writes nothing for work that ends within its quiet period', () => {
    const io = fakeIo(true);
    const bar = progress(io, 'compiling m', 60_000);
    bar.update(1, 2);
    bar.update(2, 2);
    bar.finish();
    expect(io.text()).toBe('');
  });
});
