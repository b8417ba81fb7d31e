// Summaries of repeated timings. Medians, not means: one descheduled run should not move the
// figure, and min/max show the spread.

export interface TimingSummary {
  readonly median_ms: number;
  readonly min_ms: number;
  readonly max_ms: number;
  readonly runs: number;
  readonly images_per_s: number;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function summarize(times: readonly number[], batch: number): TimingSummary {
  const m = median(times);
  return {
    median_ms: m,
    min_ms: Math.min(...times),
    max_ms: Math.max(...times),
    runs: times.length,
    images_per_s: (1000 * batch) / m,
  };
}
