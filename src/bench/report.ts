// Presenting bench results: a table for the terminal, an SVG bar chart, a markdown table row.
// A configuration whose output disagreed with the reference executor is shown as wrong, and no
// ratio involving it is shown as a number.
import type { BenchResult, ConfigResult, Ratio } from './bench.js';
import type { BenchProfile } from './profile.js';

/** The cuda row where it was attempted (measured, wrong or failed); not where it was not run. */
function cudaRow(result: BenchResult): ConfigResult | undefined {
  return result.cuda && result.cuda.not_run === undefined ? result.cuda : undefined;
}

/** The gpujs row where it was attempted; not where it was not run. */
function gpujsRow(result: BenchResult): ConfigResult | undefined {
  return result.gpujs && result.gpujs.not_run === undefined ? result.gpujs : undefined;
}

function configs(result: BenchResult): [string, ConfigResult][] {
  const f16: [string, ConfigResult][] = result.fused_f16 ? [['convc fused f16', result.fused_f16]] : [];
  const cuda = cudaRow(result);
  const gpujs = gpujsRow(result);
  return [
    ['convc fused', result.fused],
    ['convc unfused', result.unfused],
    ...f16,
    ...(cuda ? [['convc cuda', cuda] as [string, ConfigResult]] : []),
    ...(gpujs ? [['convc gpujs', gpujs] as [string, ConfigResult]] : []),
    ...Object.entries(result.peers),
  ];
}

const fixed = (v: number | undefined, digits: number) => (v === undefined ? '-' : v.toFixed(digits));
const ratioText = (v: Ratio | undefined) => (v === undefined ? undefined : v === 'wrong' ? 'wrong' : `${v.toFixed(2)}x`);

function agreement(r: ConfigResult): string {
  if (r.max_scaled_diff_vs_reference === undefined) return '-';
  return `${r.wrong ? 'WRONG ' : ''}${r.max_scaled_diff_vs_reference.toExponential(1)}`;
}

function adapterCell(r: ConfigResult, convc: string): string {
  if (r.adapter === undefined) return '-';
  if (r.adapter === convc) return "convc's";
  return r.adapter_verified ? r.adapter.split(' ')[0].toLowerCase() : 'unverified';
}

export function formatTable(result: BenchResult): string {
  const header = ['config', 'median ms', 'IQR ms', 'min ms', 'max ms', 'images/s', 'GFLOP/s', 'dispatches', 'setup ms', 'vs reference', 'adapter'];
  const rows = configs(result).map(([name, r]) =>
    r.error
      ? [name, `error: ${r.error}`]
      : [
          name,
          fixed(r.median_ms, 2),
          fixed(r.iqr_ms, 2),
          fixed(r.min_ms, 2),
          fixed(r.max_ms, 2),
          fixed(r.images_per_s, 1),
          fixed(r.gflops, 2),
          r.dispatches === undefined ? '-' : String(r.dispatches),
          fixed(r.setup_ms, 0),
          agreement(r),
          adapterCell(r, result.adapter),
        ],
  );
  const widths = header.map((h, i) => Math.max(h.length, ...rows.filter((r) => r.length > 2).map((r) => r[i].length)));
  const line = (cells: string[]) => (cells.length === 2 ? `${cells[0].padEnd(widths[0])}  ${cells[1]}` : cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
  const ratios = [
    ['fused vs unfused', ratioText(result.ratios.fused_vs_unfused)],
    ['fused vs ort-webgpu', ratioText(result.ratios.fused_vs_ort_webgpu)],
    ['fused f16 vs fused', ratioText(result.ratios.fused_f16_vs_fused)],
    ['cuda vs fused', ratioText(result.ratios.cuda_vs_fused)],
    ['gpujs vs fused', ratioText(result.ratios.gpujs_vs_fused)],
  ].filter(([, text]) => text !== undefined);
  const otherAdapters = configs(result).filter(([, r]) => r.adapter !== undefined && r.adapter !== result.adapter && !r.adapter_verified);
  return [
    `${result.model}, batch ${result.batch}, ${result.size[0]}x${result.size[1]}, ${result.runs} timed runs each after ${result.warmup} warm-up; run order shuffled every round (order seed ${result.order_seed}); setup reported apart`,
    `adapter (--adapter ${result.adapter_choice}): ${result.adapter}`,
    ...otherAdapters.map(([name, r]) => `${name} adapter: ${r.adapter}`),
    // Not a WebGPU adapter: said outright, since 'cuda vs fused' compares two APIs, and only the
    // two names tell whether they ran on the same GPU (Dawn may have fallen back to lavapipe).
    ...(cudaRow(result)?.adapter ? [`convc cuda device: ${cudaRow(result)!.adapter}; not the WebGPU adapter: the model fused for the CUDA target, as CUDA kernels`] : []),
    ...(gpujsRow(result)?.adapter ? [`convc gpujs device: ${gpujsRow(result)!.adapter}; not the WebGPU adapter: the model fused for the gpu.js target, as gpu.js kernels`] : []),
    `vs reference: max |output - reference executor's| / max |reference|, worst run; over ${result.tolerance.toExponential(0)}${result.tolerance_f16 ? ` (${result.tolerance_f16.toExponential(0)} for f16 storage)` : ''} is WRONG (reference: ${(result.reference_ms / 1000).toFixed(1)} s on the CPU, untimed)`,
    '',
    line(header),
    ...rows.map(line),
    ...(ratios.length ? ['', `throughput ratios of medians, same process, same run: ${ratios.map(([label, text]) => `${label}: ${text}`).join(', ')}`] : []),
  ].join('\n');
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Horizontal bars of images/s, one per configuration, labelled with the adapter and date. */
export function renderSvg(result: BenchResult): string {
  const rows = configs(result);
  const best = Math.max(1e-9, ...rows.map(([, r]) => (r.wrong ? 0 : (r.images_per_s ?? 0))));
  const [left, barWidth, rowHeight, top] = [150, 420, 28, 58];
  const height = top + rows.length * rowHeight + 30;
  const bars = rows.map(([name, r], i) => {
    const y = top + i * rowHeight;
    const label = `<text x="${left - 8}" y="${y + 17}" text-anchor="end">${escapeXml(name)}</text>`;
    if (r.error || r.images_per_s === undefined) return `${label}<text x="${left}" y="${y + 17}" fill="#a00">error: ${escapeXml(r.error ?? 'no result').slice(0, 70)}</text>`;
    if (r.wrong) return `${label}<text x="${left}" y="${y + 17}" fill="#a00">wrong output (differs from the reference by ${r.max_scaled_diff_vs_reference!.toExponential(1)} of its scale); not compared</text>`;
    const w = Math.max(1, (barWidth * r.images_per_s) / best);
    const color = name.startsWith('convc fused') ? '#2a7' : name === 'convc cuda' ? '#76b' : name === 'convc gpujs' ? '#b97' : name.startsWith('convc') ? '#8bc' : '#c96';
    return `${label}<rect x="${left}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowHeight - 8}" fill="${color}"/><text x="${left + w + 6}" y="${y + 17}">${r.images_per_s.toFixed(1)} img/s (${r.median_ms!.toFixed(1)} ms, IQR ${r.iqr_ms!.toFixed(1)})</text>`;
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${left + barWidth + 190}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${escapeXml(`${result.model}, batch ${result.batch}, ${result.size[0]}x${result.size[1]}: images/s (median of ${result.runs})`)}</text>`,
    `<text x="10" y="38" fill="#555">${escapeXml(`${result.adapter.slice(0, 110)} - ${result.date.slice(0, 10)}`)}</text>`,
    ...bars,
    `</svg>`,
    '',
  ].join('\n');
}

/** One markdown table row for the README; with `cuda`, its two columns too ('-' where a row has none). */
export function markdownRow(result: BenchResult, cuda = false): string {
  const ms = (r: ConfigResult | undefined) =>
    r?.median_ms !== undefined ? `${r.median_ms.toFixed(1)} (${r.iqr_ms!.toFixed(1)})${r.wrong ? ' wrong' : ''}` : r?.error ? 'error' : '-';
  const x = (v: Ratio | undefined) => ratioText(v) ?? '-';
  const cells = [result.model, String(result.batch), `${result.size[0]}x${result.size[1]}`, ms(result.fused), ms(result.unfused), ms(result.peers['ort-webgpu']), ms(result.peers['ort-cpu'])];
  if (cuda) cells.push(ms(cudaRow(result)));
  cells.push(x(result.ratios.fused_vs_unfused), x(result.ratios.fused_vs_ort_webgpu));
  if (cuda) cells.push(x(result.ratios.cuda_vs_fused));
  return `| ${cells.join(' | ')} |`;
}

/** The README table's header; with `cuda`, the cuda row's time and its ratio to convc fused. */
export function markdownHeader(cuda = false): string {
  const columns = ['model', 'batch', 'size', 'fused ms (IQR)', 'unfused ms (IQR)', 'ort-webgpu ms (IQR)', 'ort-cpu ms (IQR)', ...(cuda ? ['cuda ms (IQR)'] : []), 'fused vs unfused', 'fused vs ort-webgpu', ...(cuda ? ['cuda vs fused'] : [])];
  return [`| ${columns.join(' | ')} |`, `| ${columns.map(() => '---').join(' | ')} |`].join('\n');
}

/**
 * The README table of several results: the cuda columns only where some result has a cuda row,
 * so a table measured without a CUDA driver keeps its columns, and one with the row shows it.
 */
export function markdownTable(results: readonly BenchResult[]): string {
  const cuda = results.some((r) => cudaRow(r) !== undefined);
  return [markdownHeader(cuda), ...results.map((r) => markdownRow(r, cuda))].join('\n');
}

/** Columns two spaces apart: text columns (the indexes in `left`) left-aligned, numbers right-aligned. */
function alignedTable(header: readonly string[], rows: readonly (readonly string[])[], left: readonly number[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (left.includes(i) ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

const rate = (v: number) => (v > 0 ? v.toFixed(2) : '-');
const percent = (share: number) => `${(100 * share).toFixed(1)}%`;

function kernelTable(profile: BenchProfile): string[] {
  const rows: string[][] = [];
  for (const [pipeline, p] of [['fused', profile.fused], ['unfused', profile.unfused]] as const) {
    for (const k of p.kernels) rows.push([pipeline, k.kernel, String(k.calls), k.total_ms.toFixed(2), percent(k.share), rate(k.gflops), rate(k.gbps)]);
    const flops = p.dispatches.reduce((sum, d) => sum + d.flops, 0);
    const bytes = p.dispatches.reduce((sum, d) => sum + d.bytes, 0);
    rows.push([pipeline, 'all kernels', String(p.dispatches.length), p.total_ms.toFixed(2), percent(1), rate(flops / p.total_ms / 1e6), rate(bytes / p.total_ms / 1e6)]);
  }
  return alignedTable(['pipeline', 'kernel', 'calls', 'total ms', 'share', 'GFLOP/s', 'GB/s'], rows, [0, 1]);
}

function comparisonTable(profile: BenchProfile): string[] {
  const replaces = (kernels: Readonly<Record<string, number>>) =>
    Object.entries(kernels)
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .map(([kernel, calls]) => `${calls} ${kernel}`)
      .join(', ');
  const rows = profile.fused_vs_unfused.map((r) => [
    r.kernel ?? '(no fused kernel)',
    String(r.calls),
    r.fused_ms.toFixed(2),
    String(r.unfused_calls),
    r.unfused_ms.toFixed(2),
    r.speedup === undefined ? '-' : `${r.speedup.toFixed(2)}x`,
    replaces(r.unfused_kernels),
  ]);
  const speedup = profile.unfused.total_ms / profile.fused.total_ms;
  rows.push(['all kernels', String(profile.fused.dispatches.length), profile.fused.total_ms.toFixed(2), String(profile.unfused.dispatches.length), profile.unfused.total_ms.toFixed(2), `${speedup.toFixed(2)}x`, '']);
  return alignedTable(['fused kernel', 'calls', 'fused ms', 'unfused calls', 'unfused ms', 'unfused/fused', 'replaces (unfused dispatches)'], rows, [0, 6]);
}

/** The --profile tables: GPU time per kernel kind, then each fused kernel beside what it replaces. */
export function formatProfile(profile: BenchProfile | { readonly error: string }): string {
  if ('error' in profile) return `profile: error: ${profile.error}`;
  return [
    `GPU time per kernel (timestamp queries around each dispatch; median per dispatch of ${profile.runs} runs after ${profile.warmup} warm-up, summed per kernel):`,
    '',
    ...kernelTable(profile),
    '',
    `GFLOP/s: ${profile.flops}.`,
    `GB/s: ${profile.bytes}.`,
    '',
    'Each fused kernel beside the unfused dispatches that compute the same IR nodes (matched by node name):',
    '',
    ...comparisonTable(profile),
  ].join('\n');
}
