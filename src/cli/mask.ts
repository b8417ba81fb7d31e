// The patch mask of models that take one (FCMAE): read from --mask, or drawn at random with
// --mask-ratio and --seed, and optionally written back with --mask-out so a run can be repeated.
import { graphInputs } from '../ir/graph-io.js';
import { formatShape, type Graph, type HostTensor } from '../ir/types.js';
import { readNpy, writeNpy } from '../io/npy.js';
import { checkPatchMask, randomPatchMask } from '../io/patch-mask.js';
import { userError } from '../util/diagnostics.js';
import { writeFileAtomically } from '../util/atomic-write.js';
import { checkOutputFile } from '../util/output-path.js';
import { stringOption, type OptionSpec, type Parsed } from './options.js';
import { readBytes } from './weights.js';

export const maskOptions: OptionSpec = {
  mask: { type: 'string' },
  'mask-ratio': { type: 'string' },
  'mask-out': { type: 'string' },
};

export const maskHelp = `  --mask FILE         for models with a patch mask input (FCMAE): the mask, .npy float32
                      [N, L] (L patches in row-major order; 0 keeps a patch, 1 masks it)
  --mask-ratio R      instead, mask this fraction of each sample's patches at random, as the
                      official gen_random_mask does (drawn from --seed; default: the model's
                      mask_ratio)
  --mask-out FILE     write the mask used as .npy float32 [N, L]`;

/** A mask as the caller holds it ([N, L]) and as the graph does ([N, rows, cols]). */
export interface ChosenMask {
  readonly given: HostTensor;
  readonly graph: HostTensor;
  /** Said on stderr when the mask was drawn at random. */
  readonly note?: string;
}

/** Whether the command line asks for a mask at all (to refuse it for models without one). */
function maskFlags(values: Parsed['values']): string[] {
  return Object.keys(maskOptions).filter((flag) => values[flag] !== undefined).map((flag) => `--${flag}`);
}

/** Refuses bad --mask-out paths before the run, not after it. */
export function checkMaskOptions(values: Parsed['values']): void {
  if (values.mask !== undefined && values['mask-ratio'] !== undefined) throw userError('--mask gives the mask; --mask-ratio draws one at random: use one of them');
  const out = stringOption(values, 'mask-out');
  if (out !== undefined) checkOutputFile(out, 'the mask output file');
}

function ratioOption(values: Parsed['values'], fallback: number): number {
  const text = stringOption(values, 'mask-ratio');
  if (text === undefined) return fallback;
  const ratio = Number(text);
  if (text.trim() === '' || !(ratio >= 0 && ratio <= 1)) throw userError(`--mask-ratio needs a fraction from 0 to 1, got '${text}'`);
  return ratio;
}

/**
 * The mask `graph` takes, or undefined for a model without one (refusing mask flags then).
 * `seed` draws a random mask; a mask that masks no patch of some sample is refused, since the
 * loss is a mean over masked patches.
 */
export function chooseMask(graph: Graph, values: Parsed['values'], seed: number): ChosenMask | undefined {
  const input = graphInputs(graph).find((i) => i.name === 'mask');
  if (!input) {
    const flags = maskFlags(values);
    if (flags.length > 0) throw userError(`${flags.join(', ')}: '${graph.name}' takes no patch mask (only models such as FCMAE do)`);
    return undefined;
  }
  const shape = input.node.type.shape;
  const [batch, rows, cols] = shape;
  const patches = rows * cols;
  const path = stringOption(values, 'mask');
  let given: HostTensor;
  let note: string | undefined;
  if (path !== undefined) {
    given = checkPatchMask(readNpy(readBytes(path, 'mask'), path), batch, patches, path);
  } else {
    const ratio = ratioOption(values, input.node.attrs.ratio as number);
    given = randomPatchMask(batch, patches, ratio, seed);
    const masked = given.data.reduce((sum, v) => sum + v, 0) / batch;
    const unasked = values['mask-ratio'] === undefined ? 'no --mask given; ' : '';
    note = `note: ${unasked}masking ${masked} of ${patches} patches of each sample at random (--mask-ratio ${ratio} --seed ${seed})\n`;
  }
  if (given.data.every((v) => v === 0)) {
    throw userError(`${path ?? `--mask-ratio ${values['mask-ratio'] as string}`}: the mask keeps every patch, but the loss is a mean over masked patches; mask at least one`);
  }
  return { given, graph: { shape, data: given.data }, ...(note ? { note } : {}) };
}

export function writeMaskOut(values: Parsed['values'], mask: ChosenMask): string | undefined {
  const out = stringOption(values, 'mask-out');
  if (out === undefined) return undefined;
  writeFileAtomically(out, writeNpy(mask.given));
  return out;
}

export function describeMask(mask: ChosenMask): string {
  const masked = mask.given.data.reduce((sum, v) => sum + v, 0);
  return `mask ${formatShape(mask.given.shape)} (${masked} of ${mask.given.data.length} patches masked)`;
}
