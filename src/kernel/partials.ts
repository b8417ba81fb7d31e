// The partial sums a GEMM writes beside its value for a statistic (Fusion.partials), computed
// apart from that GEMM: for running a statistics kernel that finishes them on its own (the
// tuner and the schedule tests, one kernel at a time). A small kernel program on the
// interpreter, so the statistic's term is the op's declared math, evaluated with f32 rounding
// as kernels do (about 30 ms for V2-atto's largest).
import { add, assign, div, f32, group, if_, let_, load, local, loop, lt, mul, ref, rem, store, u32, var_ } from './build.js';
import { interpret } from './interpret.js';
import { sitelessContext } from './math.js';
import type { KernelProgram } from './ir.js';
import { getOp } from '../ir/registry.js';
import type { Node } from '../ir/types.js';

/** `producer`'s partial sums ([runs, c]) from its value in the kernels' NHWC layout. */
export function partialSumsOf(producer: Node, value: Float32Array): Float32Array {
  const partials = producer.fusion?.partials;
  if (!partials) throw new Error(`internal: node %${producer.id} writes no partial sums`);
  const math = getOp(partials.op).kernel;
  if (math.kind !== 'reduction' || math.stats.length !== 1) throw new Error(`internal: ${partials.op} has no single statistic to sum in parts`);
  const [n, c, h, w] = producer.type.shape;
  const run = partials.positions;
  const runs = (n * h * w) / run;
  const out = new Float32Array(runs * c);
  const workgroupSize = 64;
  const [t, r, ch, p] = [ref('t', 'u32'), ref('r', 'u32'), ref('ch', 'u32'), ref('p', 'u32')];
  const C = u32(c, 'C');
  const program: KernelProgram = {
    name: `${partials.op}_partial_sums`,
    summary: `partial sums of ${partials.op}'s statistic over runs of ${run} positions`,
    covers: '',
    buffers: [
      { name: 'value', access: 'read', length: value.length, dtype: 'f32', layout: { axes: ['n', 'h', 'w', 'c'], shape: [n, h, w, c] }, ref: { kind: 'value', id: producer.id } },
      { name: 'partials', access: 'read_write', length: out.length, dtype: 'f32', layout: { axes: ['run', 'c'], shape: [runs, c] }, ref: { kind: 'partials', id: producer.id, floats: out.length } },
    ],
    shared: [],
    workgroupSize,
    workgroups: Math.ceil(out.length / workgroupSize),
    schedule: {},
    body: [
      let_('t', add(mul(group, u32(workgroupSize)), local)),
      if_(lt(t, u32(out.length)), [
        let_('r', div(t, C)),
        let_('ch', rem(t, C)),
        var_('sum', f32(0)),
        loop('p', 0, run, [assign('sum', add(ref('sum', 'f32'), math.stats[0].term(load('value', add(mul(add(mul(r, u32(run)), p), C), ch)), {}, partials.attrs, sitelessContext)))]),
        store('partials', t, ref('sum', 'f32')),
      ]),
    ],
  };
  interpret(program, { value, partials: out });
  return out;
}
