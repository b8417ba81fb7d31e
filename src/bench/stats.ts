// Summaries of repeated timings. Medians, not means: one descheduled run should not move the
// figure. The interquartile range says how wide the middle half of the runs spread, which min
// and max (one outlier each) do not.

export interface TimingSummary {
  readonly median_ms: number;
  /** First and third quartiles, and their difference. */
  readonly q1_ms: number;
  readonly q3_ms: number;
  readonly iqr_ms: number;
  readonly min_ms: number;
  readonly max_ms: number;
  readonly runs: number;
  readonly images_per_s: number;
}

/**
 * The q-quantile of the values, interpolating linearly between the two nearest ranks (the
 * usual definition, R's type 7 and numpy's default), so that quantile(v, 0.5) is the median.
 */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new Error('internal: quantile of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * q;
  const below = Math.floor(position);
  const above = Math.min(below + 1, sorted.length - 1);
  return sorted[below] + (sorted[above] - sorted[below]) * (position - below);
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

export function summarize(times: readonly number[], batch: number): TimingSummary {
  const m = median(times);
  const q1 = quantile(times, 0.25);
  const q3 = quantile(times, 0.75);
  return {
    median_ms: m,
    q1_ms: q1,
    q3_ms: q3,
    iqr_ms: q3 - q1,
    min_ms: Math.min(...times),
    max_ms: Math.max(...times),
    runs: times.length,
    images_per_s: (1000 * batch) / m,
  };
}

/** Fisher-Yates with the given generator: each permutation equally likely. */
export function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
