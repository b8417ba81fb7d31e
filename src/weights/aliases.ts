// Weight-name aliases declared in .cnx families (`alias "timm.{i}" = "official.{i}"`).
import type { WeightAlias } from '../ir/types.js';

/**
 * Rewrites a key through the first alias whose pattern matches its leading segments; `{x}`
 * matches any one segment and is substituted into the target. Returns undefined if none does.
 */
export function applyAliases(key: string, aliases: readonly WeightAlias[]): string | undefined {
  return matchAlias(key, aliases)?.key;
}

/** The key `key` names through the first alias that matches it, and that alias. */
export function matchAlias(key: string, aliases: readonly WeightAlias[]): { readonly key: string; readonly alias: WeightAlias } | undefined {
  const segments = key.split('.');
  for (const alias of aliases) {
    const pattern = alias.from.split('.');
    if (pattern.length > segments.length) continue;
    const bindings = new Map<string, string>();
    const matches = pattern.every((part, i) => {
      const placeholder = /^\{(\w+)\}$/.exec(part);
      if (!placeholder) return part === segments[i];
      bindings.set(placeholder[1], segments[i]);
      return true;
    });
    if (!matches) continue;
    const target = alias.to.replace(/\{(\w+)\}/g, (_, name: string) => bindings.get(name) ?? '');
    return { key: [target, ...segments.slice(pattern.length)].join('.'), alias };
  }
  return undefined;
}
