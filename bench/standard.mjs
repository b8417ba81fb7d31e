#!/usr/bin/env node
// `npm run bench`: the standard benchmark set, each configuration in its own `convc bench`
// process on this machine's WebGPU adapter. Writes bench/results/<adapter>.json, an SVG chart
// per configuration, and the README's results table (between the bench markers). Where a CUDA
// driver answers, each bench has its cuda row, and the table its cuda columns.
// BENCH_RUNS (default 10) sets the timed runs per configuration. A row whose convc bench found
// a configuration's output wrong (exit 1) is kept, with its wrong cells, and fails the script.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const runs = process.env.BENCH_RUNS ?? '10';
const { standardSet } = await import(join(root, 'bench/standard-set.mjs'));

const { markdownTable, renderSvg } = await import(join(root, 'dist/bench/report.js'));
const resultsDir = join(root, 'bench/results');
mkdirSync(resultsDir, { recursive: true });
const results = [];
for (const [model, batch] of standardSet) {
  const json = join(resultsDir, `.partial-${process.pid}.json`);
  console.log(`\n== ${model}, batch ${batch}, 224x224, ${runs} runs`);
  const child = spawnSync(process.execPath, [join(root, 'bin/convc.js'), 'bench', join(root, `models/${model}.cnx`), '--batch', String(batch), '--runs', runs, '--json', json], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (child.status !== 0) {
    console.error(`convc bench failed for ${model} batch ${batch} (exit ${child.status})`);
    process.exitCode = 1;
    // Exit 1 after a full run means a wrong output: its JSON is written and the row says so.
    if (child.status !== 1 || !existsSync(json)) continue;
  }
  results.push(JSON.parse(readFileSync(json, 'utf8')));
  rmSync(json, { force: true });
}
if (results.length === 0) process.exit(1);

const adapter = results[0].adapter;
const slug = adapter.replace(/^vendor: /, '').split(',').slice(0, 3).join('-').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60) || 'adapter';
const file = join(resultsDir, `${slug}.json`);
writeFileSync(file, `${JSON.stringify({ adapter, date: new Date().toISOString(), runs: Number(runs), results }, null, 2)}\n`);
for (const r of results) writeFileSync(join(resultsDir, `${slug}-${r.model}-b${r.batch}.svg`), renderSvg(r));
console.log(`\nwrote ${file}`);

// The cuda row's device, named by the driver (every row of a run is on the same one).
const cudaDevice = results.map((r) => r.cuda).find((c) => c?.adapter !== undefined && c.not_run === undefined)?.adapter;
const cudaNote = cudaDevice ? ` convc cuda: the same model fused for the CUDA target, as CUDA kernels through its generated runner on ${cudaDevice}, not on the WebGPU adapter; cuda vs fused is fused ms / cuda ms.` : '';
const table = [
  `Adapter: ${adapter}. Date: ${new Date().toISOString().slice(0, 10)}. Median ms per batch and, in parentheses, the interquartile range of ${runs} timed runs per configuration; all configurations of a row in one process, their order shuffled every round; ORT given the ONNX export with batch and size fixed; every output within 2e-5 of the reference executor's unless marked wrong; ORT WebGPU's adapter unverified (\`npm run bench\`, order seeds in the JSON).${cudaNote}`,
  '',
  markdownTable(results),
].join('\n');
const readmePath = join(root, 'README.md');
const readme = readFileSync(readmePath, 'utf8');
const start = '<!-- bench:start -->';
const end = '<!-- bench:end -->';
if (readme.includes(start) && readme.includes(end)) {
  writeFileSync(readmePath, `${readme.slice(0, readme.indexOf(start) + start.length)}\n${table}\n${readme.slice(readme.indexOf(end))}`);
  console.log('updated the README table');
}
