// Turning a classifier's logits into named classes. Imports nothing from Node: the browser
// example loads this file as it is.
import { imagenetClasses } from './imagenet-classes.js';

export { imagenetClasses };

/** One of an image's top classes. */
export interface RankedClass {
  /** 0-based class index: the logit's position. */
  readonly index: number;
  /** ImageNet-1k's name for it, or `class N` where a model has other classes. */
  readonly label: string;
  /** Softmax probability over all the logits. */
  readonly prob: number;
}

/** The `count` most probable classes of one sample's logits, most probable first. */
export function topClasses(logits: ArrayLike<number>, count: number): RankedClass[] {
  const n = logits.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[i]);
  // Softmax in f64 with the maximum subtracted: no overflow, and exp(0) = 1 keeps the sum >= 1.
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(logits[i] - max);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
  const names = n === imagenetClasses.length ? imagenetClasses : undefined;
  return order.slice(0, Math.max(0, count)).map((index) => ({
    index,
    label: names?.[index] ?? `class ${index}`,
    prob: Math.exp(logits[index] - max) / sum,
  }));
}
