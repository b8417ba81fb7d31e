// Text both runner generators (WGSL and CUDA) write the same way: their tables as JSON arrays,
// the inputs' and outputs' descriptions and the usage line of their doc comments, and the
// types run() takes and resolves to.
import type CodeBlockWriter from 'code-block-writer';
import type { ModelProgram, ProgramTensor } from '../kernel/model-program.js';

/** `items` as an array literal, one JSON value a line. */
export function writeJsonArray(writer: CodeBlockWriter, items: readonly unknown[]): void {
  writer.write('[').newLine();
  writer.indent(() => {
    for (const item of items) writer.writeLine(`${JSON.stringify(item)},`);
  });
  writer.write(']');
}

/** The same array as writeJsonArray writes at the top level, as text. */
export function jsonArrayText(items: readonly unknown[]): string {
  return `[\n${items.map((item) => `  ${JSON.stringify(item)},\n`).join('')}]`;
}

/** A tensor's shape as a doc comment gives it: `NCHW [1,3,224,224]` for an image. */
export const tensorText = (t: ProgramTensor): string => `${t.shape.length === 4 ? 'NCHW ' : ''}${JSON.stringify(t.shape)}`;

/** The usage line: `run(inputNCHW)` for a classifier, `{ pred, loss } = ... run(input, mask)` for FCMAE. */
export function usageLine(program: ModelProgram): string {
  const args = program.inputs.map((input) => (input.name === 'input' ? 'inputNCHW' : input.name)).join(', ');
  const result = program.outputs.length > 1 ? `{ ${program.outputs.map((o) => o.name).join(', ')} }` : program.outputs[0].shape.length === 2 ? 'logits' : 'output';
  return `  const ${result} = await model.run(${args});`;
}

/** A label for a tuple element: the input's name where it is an identifier. */
const label = (name: string, index: number): string => (/^[A-Za-z_$][\w$]*$/.test(name) ? name : `input${index}`);

/** The ModelInputs tuple type: each input's values, in order. */
export const modelInputsType = (program: ModelProgram): string => `[${program.inputs.map((input, i) => `${label(input.name, i)}: Float32Array`).join(', ')}]`;

/** The ModelOutput type: the output, or for several, each by name. */
export const modelOutputType = (program: ModelProgram): string =>
  program.outputs.length > 1 ? `{ ${program.outputs.map((o) => `readonly ${JSON.stringify(o.name)}: Float32Array`).join('; ')} }` : 'Float32Array';
