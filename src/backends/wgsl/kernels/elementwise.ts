// Standalone kernels for per-element ops (GELU, residual add, layer scale, GRN apply): one
// invocation per element, the op's expression from steps.ts, as in a fused kernel.
import { renderStep } from '../steps.js';
import type { KernelBinding, KernelSpec } from '../program.js';
import { nhwc, type LoweringContext, type WgslKernels } from './kernel.js';

const names: Readonly<Record<string, string>> = { add: 'residual_add', gelu: 'gelu', layer_scale: 'layer_scale', grn_apply: 'grn_apply', drop_path: 'copy' };

function perElementKernel(ctx: LoweringContext): KernelSpec {
  const { node } = ctx;
  const { positions, channels } = nhwc(node.type);
  // The running value is input 0; operands are the node's other inputs, positions 1, 2, ...
  const weights: KernelBinding[] = [];
  const step = renderStep({ op: node.op, attrs: node.attrs, params: node.params, operands: node.inputs.slice(1).map((_, i) => i + 1), name: node.name }, '', channels, {
    operand: (position) => ctx.input(position),
    param(key, index) {
      let binding = weights.find((w) => w.buffer.kind === 'weight' && w.buffer.key === key);
      if (!binding) {
        binding = { name: `weight${weights.length}`, access: 'read', buffer: { kind: 'weight', key } };
        weights.push(binding);
      }
      return `${binding.name}[${index}]`;
    },
  });
  // Rendering the expression first collects the weights it reads.
  const expression = step.apply('v', { index: 'index', n: 'n', c: 'c' });
  return {
    name: names[node.op] ?? node.op,
    summary: step.summary,
    bindings: [{ name: 'input', access: 'read', buffer: ctx.input(0) }, ...step.bindings, ...weights, { name: 'output', access: 'read_write', buffer: ctx.output }],
    invocations: node.type.shape.reduce((a, b) => a * b, 1),
    constants: { ...step.constants, C: channels, P: positions },
    helpers: step.helpers,
    body: `
let n = index / (P * C);
let c = index % C;
let v = input[index];
output[index] = ${expression};`,
  };
}

export const perElementKernels: WgslKernels = { lower: (ctx) => [perElementKernel(ctx)] };
