// convc models: the bundled zoo, one line a variant, with what `convc inspect` reports for its
// size. Only elaboration runs: parameters and MACs do not change under the passes.
import { join } from 'node:path';
import { parseCommandLine } from '../options.js';
import type { CliIo } from '../io.js';
import { defaultInputSize, elaborate } from '../../dsl/elaborate.js';
import { loadProgram } from '../../dsl/load.js';
import { graphCost, humanCount } from '../../ir/cost.js';
import { userError } from '../../util/diagnostics.js';
import { zooDir, zooFiles } from '../../util/zoo.js';

export const modelsHelp = `convc models [--json]

Lists the model zoo that ships with convc (its models/ folder): each variant's file, model
name, family, parameters and MACs for one 224x224 image, and the family files they import.
A zoo file's name works in any command from any folder: 'convc compile convnextv2-base.cnx'
(or just convnextv2-base) uses models/convnextv2-base.cnx when there is no such file where you
are, and 'import "convnextv2.cnx"' in your own file finds the family the same way.

Options:
  --json              print JSON instead: {directory, families, models: [{file, path, model,
                      family, params, macs}]}
  -h, --help          show this help`;

export interface ZooModel {
  /** The file's name in models/, which is also what commands accept from any folder. */
  readonly file: string;
  readonly path: string;
  readonly model: string;
  readonly family: string;
  readonly params: number;
  /** Multiply-adds of one 224x224 image, as `convc inspect` counts them. */
  readonly macs: number;
}

export interface ZooListing {
  readonly directory: string;
  /** Files that define families and no model: what variants import. */
  readonly families: readonly string[];
  readonly models: readonly ZooModel[];
}

export function zooListing(): ZooListing {
  const directory = zooDir();
  const families: string[] = [];
  const models: ZooModel[] = [];
  for (const file of zooFiles()) {
    const path = join(directory, file);
    const program = loadProgram(path);
    if (program.entryModels.length === 0) {
      families.push(file);
      continue;
    }
    for (const model of program.entryModels) {
      const cost = graphCost(elaborate(program, model, defaultInputSize));
      models.push({ file, path, model, family: program.models.get(model)!.family, params: cost.params, macs: cost.macs });
    }
  }
  // Smallest first within a family, as the papers' tables list them.
  models.sort((a, b) => a.family.localeCompare(b.family) || a.params - b.params);
  return { directory, families, models };
}

function smallest(models: readonly ZooModel[]): ZooModel | undefined {
  return models.reduce<ZooModel | undefined>((best, m) => (best === undefined || m.params < best.params ? m : best), undefined);
}

export async function modelsCommand(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandLine('models', args, { json: { type: 'boolean' } });
  if (values.help) {
    io.stdout.write(`${modelsHelp}\n`);
    return 0;
  }
  if (positionals.length > 0) throw userError(`convc models takes no file, got: ${positionals.join(' ')} (see 'convc models --help')`);
  const listing = zooListing();
  if (values.json) {
    io.stdout.write(`${JSON.stringify(listing, null, 2)}\n`);
    return 0;
  }
  const rows = [['file', 'model', 'family', 'params', 'MACs at 224'], ...listing.models.map((m) => [m.file, m.model, m.family, humanCount(m.params), humanCount(m.macs)])];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const line = (row: readonly string[]) =>
    row
      .map((cell, i) => (i >= 3 ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  io.stdout.write(
    [
      `The bundled zoo (${listing.directory}):`,
      '',
      ...rows.map(line),
      '',
      `families: ${listing.families.join(', ')}`,
      `Use a file's name from any folder, e.g. 'convc compile ${smallest(listing.models)?.file ?? 'convnextv2-atto.cnx'}'.`,
      '',
    ].join('\n'),
  );
  return 0;
}
