// Sizes the IR guarantees to every pass and target. A graph past them is refused where it is
// built (the elaborator turns that into an error at the user's line), so no pass, cost model or
// code generator ever sees a size it cannot represent exactly.

/**
 * Nodes in one graph: about 12,000 ConvNeXt blocks, ten times the largest published model.
 * Passes are linear in it, but memory and generated code are not free.
 */
export const MAX_GRAPH_NODES = 100_000;

/**
 * Elements of one tensor (activation or weight). WGSL indexes storage arrays with u32 and some
 * kernels compute offsets in i32, so everything must stay below 2^31; that also keeps byte
 * counts (4 per element) far inside the 2^53 that JS numbers hold exactly.
 */
export const MAX_TENSOR_ELEMENTS = 2 ** 31 - 1;

/** Whether every dimension is a non-negative safe integer and the product fits the limit. */
export function elementsWithinLimit(shape: readonly number[]): boolean {
  let product = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) return false;
    product *= d;
    if (product > MAX_TENSOR_ELEMENTS) return false;
  }
  return true;
}
