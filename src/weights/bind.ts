// Matches a checkpoint's tensors to the weights a graph declares. Official names match
// directly; other names (timm's) go through the family's aliases. Every missing, extra or
// mis-shaped tensor is reported, each by name and with both shapes.
import { matchAlias } from './aliases.js';
import { layoutMismatch, weightLayouts } from './layouts.js';
import { withDerivedWeights } from './derive.js';
import type { WeightMap } from '../backends/reference/executor.js';
import { formatShape, numel, type Graph, type HostTensor } from '../ir/types.js';
import { UserError, type Diagnostic } from '../util/diagnostics.js';

/**
 * Shapes agree when they are equal once size-1 axes are dropped: official GRN weights are
 * [1, 1, 1, C] where timm's are [C], and a 1x1 conv's [O, I, 1, 1] is a linear layer's [O, I].
 * Dropping size-1 axes never reorders data, so the bytes mean the same thing either way.
 */
export function shapesCompatible(a: readonly number[], b: readonly number[]): boolean {
  const squeeze = (s: readonly number[]) => s.filter((d) => d !== 1);
  const sa = squeeze(a);
  const sb = squeeze(b);
  return numel(a) === numel(b) && sa.length === sb.length && sa.every((d, i) => d === sb[i]);
}

export function bindWeights(graph: Graph, tensors: ReadonlyMap<string, HostTensor>, label: string): WeightMap {
  const bound = new Map<string, HostTensor>();
  const sources = new Map<string, string>();
  const problems: Diagnostic[] = [];
  const extra: string[] = [];
  for (const [name, tensor] of tensors) {
    const alias = graph.params.has(name) ? undefined : matchAlias(name, graph.aliases);
    const key = alias ? alias.key : graph.params.has(name) ? name : undefined;
    const spec = key === undefined ? undefined : graph.params.get(key);
    if (key === undefined || !spec || spec.derived) {
      extra.push(name);
      continue;
    }
    const shown = key === name ? `'${name}'` : `'${name}' (read as '${key}')`;
    if (sources.has(key)) {
      problems.push({ message: `${label}: tensors '${sources.get(key)}' and '${name}' both give weight '${key}'` });
      continue;
    }
    sources.set(key, name);
    // A tensor stored in another layout (the alias says which) is rearranged; one the layout
    // does not cover (a bias beside a kernel) binds as stored.
    const layout = alias?.alias.layout;
    const converted = layout === undefined ? undefined : weightLayouts.get(layout)?.convert(tensor.shape, tensor.data, spec.shape);
    if (converted) {
      bound.set(key, { shape: spec.shape, data: converted });
      continue;
    }
    if (!shapesCompatible(tensor.shape, spec.shape)) {
      const why = layout === undefined ? '' : `; ${layoutMismatch(layout)}`;
      problems.push({ message: `${label}: tensor ${shown} has shape ${formatShape(tensor.shape)}, but the model expects ${formatShape(spec.shape)}${why}` });
      continue;
    }
    bound.set(key, { shape: spec.shape, data: tensor.data });
  }
  for (const name of extra) {
    problems.push({ message: `${label}: unexpected tensor '${name}' ${formatShape(tensors.get(name)!.shape)}: the model '${graph.name}' has no such weight` });
  }
  for (const spec of graph.params.values()) {
    if (!spec.derived && !sources.has(spec.key)) problems.push({ message: `${label}: missing tensor '${spec.key}' (the model expects shape ${formatShape(spec.shape)})` });
  }
  if (problems.length > 0) throw new UserError(problems);
  return withDerivedWeights(graph, bound);
}
