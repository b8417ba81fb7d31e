// The graph's input image. The language states its channels (`input(in_chans)`); batch and
// spatial size come from the compile options and are stored in the `shape` attribute.
import { intAttr, ShapeError, type OpDef } from '../op.js';


export const input: OpDef = {
  name: 'input',
  summary: 'the model input, NCHW',
  kind: 'opaque',
  graphInput: 'input',
  arity: 0,
  callable: true,
  attrs: [{ name: 'channels', type: 'int', doc: 'input channels' }],
  params: () => [],
  infer(_inputs, attrs) {
    const channels = intAttr(attrs, 'channels');
    if (channels < 1) throw new ShapeError(`input needs at least one channel, got ${channels}`);
    const shape = attrs.shape;
    if (!Array.isArray(shape) || shape.length !== 4) throw new Error('internal: input node without a shape');
    return { shape: [shape[0], channels, shape[2], shape[3]], dtype: 'f32' };
  },
  macs: () => 0,
  kernel: { kind: 'input' },
  evaluate() {
    throw new Error('internal: the executor binds the input node directly');
  },
};
