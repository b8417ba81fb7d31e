// convc's entry point: dispatches to a command and turns user errors into rustc-style
// diagnostics with exit code 2. Anything else is a bug and says so.
import { readFileSync } from 'node:fs';
import { processIo, type CliIo } from './io.js';
import { formatDiagnostic, UserError } from '../util/diagnostics.js';

interface Command {
  readonly run: (args: readonly string[], io: CliIo) => Promise<number>;
  readonly help: string;
}

// Each command's module is imported only when it runs (or its help is asked for): between them
// they bring in the parser, the WebGPU runtime, ONNX Runtime and more, which no one command needs.
const commands: Readonly<Record<string, { load: () => Promise<Command>; summary: string }>> = {
  compile: {
    load: async () => import('./commands/compile.js').then((m) => ({ run: m.compileCommand, help: m.compileHelp })),
    summary: 'check a model and write the compiled artifact',
  },
  run: {
    load: async () => import('./commands/run.js').then((m) => ({ run: m.runCommand, help: m.runHelp })),
    summary: 'run a model on an input (.npy) with weights (.safetensors)',
  },
  inspect: {
    load: async () => import('./commands/inspect.js').then((m) => ({ run: m.inspectCommand, help: m.inspectHelp })),
    summary: "print a model's shapes, parameters, MACs and kernels",
  },
  classify: {
    load: async () => import('./commands/classify.js').then((m) => ({ run: m.classifyCommand, help: m.classifyHelp })),
    summary: 'top ImageNet classes of JPEG and PNG images',
  },
  bench: {
    load: async () => import('./commands/bench.js').then((m) => ({ run: m.benchCommand, help: m.benchHelp })),
    summary: 'time fused vs unfused convc and ONNX Runtime on one adapter',
  },
  export: {
    load: async () => import('./commands/export.js').then((m) => ({ run: m.exportCommand, help: m.exportHelp })),
    summary: 'export a model to ONNX',
  },
  models: {
    load: async () => import('./commands/models.js').then((m) => ({ run: m.modelsCommand, help: m.modelsHelp })),
    summary: 'list the bundled model zoo with parameters and MACs',
  },
  tune: {
    load: async () => import('./commands/tune.js').then((m) => ({ run: m.tuneCommand, help: m.tuneHelp })),
    summary: 'search kernel schedules on this adapter and cache the fastest',
  },
};

export const mainHelp = `convc - a compiler for ConvNeXt models written in .cnx

Usage: convc <command> [options]

Commands:
${Object.entries(commands)
  .map(([name, c]) => `  ${name.padEnd(10)}${c.summary}`)
  .join('\n')}
  help CMD  show a command's help

Run 'convc <command> --help' for a command's options. Errors in user input exit with code 2;
a run that produces no valid result (NaN or infinity in the output) exits with code 1.`;

function readSourceForDiagnostic(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const [name, ...rest] = argv;
  try {
    if (name === undefined || name === '--help' || name === '-h') {
      io.stdout.write(`${mainHelp}\n`);
      return name === undefined ? 2 : 0;
    }
    if (name === '--version') {
      io.stdout.write('convc 0.1.0\n');
      return 0;
    }
    if (name === 'help') {
      const topic = rest[0];
      if (topic !== undefined && !commands[topic]) throw new UserError({ message: `no command '${topic}'; commands: ${Object.keys(commands).join(', ')}` });
      io.stdout.write(`${topic ? (await commands[topic].load()).help : mainHelp}\n`);
      return 0;
    }
    const command = commands[name];
    if (!command) throw new UserError({ message: `unknown command '${name}'; commands: ${Object.keys(commands).join(', ')} (see 'convc --help')` });
    return await (await command.load()).run(rest, io);
  } catch (error) {
    if (error instanceof UserError) {
      const text = error.diagnostics.map((d) => formatDiagnostic(d, readSourceForDiagnostic)).join('\n\n');
      const count = error.diagnostics.length;
      io.stderr.write(`${text}\n${count > 1 ? `\n${count} errors\n` : ''}`);
      return error.exitCode;
    }
    io.stderr.write(`internal error (a bug in convc; please report it with the command that caused it):\n${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}
