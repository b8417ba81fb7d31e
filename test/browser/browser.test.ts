// The browser demo (examples/browser) in Debian's Chromium, on its WebGPU over SwiftShader: the
// page decodes and preprocesses a fixed PNG, runs V2-atto through the generated runner and shows
// the top 5; its input, logits and list are checked against Node's preprocessing and the
// reference executor with the same seeded weights.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import sharp from 'sharp';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { startServer, type DemoServer } from '../../examples/browser/serve.mjs';
import { executeReference } from '../../src/backends/reference/executor.js';
import { main } from '../../src/cli/main.js';
import { loadModel } from '../../src/cli/model.js';
import { topClasses, type RankedClass } from '../../src/image/classes.js';
import { imagenetEval } from '../../src/image/preprocess.js';
import { randomWeights } from '../../src/weights/random.js';
import { captureIo, repoPath, scaledDifference } from '../helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const IMAGE = repoPath('test/fixtures/images/shapes.png');
const MODEL = repoPath('models/convnextv2-atto.cnx');
const SEED = 0;
const SIZE = 224;
const SCREENSHOT = repoPath('test-output/browser/demo.png');

// The page and Node run the same preprocessing code on the same bytes (PNG is lossless and the
// page reads the pixels unpremultiplied): integer resizing, then f32 arithmetic that every
// engine rounds the same way. So the tensors must be identical, not merely close.
const INPUT_TOLERANCE = 0;
// The page's logits come from f32 WGSL kernels on SwiftShader, the reference's from an
// executor accumulating in f64: as in test/backends/wgsl/webgpu.test.ts, f32 rounding over a
// few thousand terms and the approximated erf stay below 1e-5 of the output's scale; 2e-5
// relative to the largest |logit| leaves a 2x margin.
const LOGITS_RTOL = 2e-5;

/** What examples/browser/demo.js leaves in window.convcDemo. */
interface DemoState {
  readonly status: 'loading' | 'ready' | 'running' | 'done' | 'error';
  readonly error?: string;
  readonly adapter?: string;
  readonly adapterInfo?: { readonly vendor: string; readonly architecture: string; readonly device: string; readonly description: string; readonly isFallbackAdapter: boolean };
  readonly input?: number[];
  readonly logits?: number[];
  readonly top?: RankedClass[];
  readonly msPerRun?: number;
  readonly timing?: string;
}

type DemoWindow = Window & { convcDemo?: DemoState };

const cleanups: (() => Promise<void> | void)[] = [];

afterAll(async () => {
  // Last in, first out: the browser before the server, both before their folders.
  for (const cleanup of cleanups.reverse()) await cleanup();
});

function temporaryDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * src/image/*.ts as `npm run build` emits them (TypeScript, ES2022 modules), so the page runs
 * the current source whether or not dist/ is up to date.
 */
function transpileImageModules(outDir: string): void {
  const source = repoPath('src/image');
  for (const name of readdirSync(source).filter((n) => n.endsWith('.ts'))) {
    const { outputText } = ts.transpileModule(readFileSync(join(source, name), 'utf8'), {
      compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022 },
      fileName: name,
    });
    writeFileSync(join(outDir, name.replace(/\.ts$/, '.js')), outputText);
  }
}

function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

describe('browser demo', () => {
  it('classifies a PNG in Chromium with WebGPU as Node and the reference executor do', async () => {
    const started = performance.now();
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (Debian's package; this test never downloads a browser)`).toBe(true);

    const work = temporaryDir('convc-browser-');
    const modelDir = join(work, 'atto');
    const io = captureIo();
    expect(await main(['compile', MODEL, '-o', modelDir, '--random-weights', '--seed', String(SEED)], io), io.err()).toBe(0);
    const imageModules = join(work, 'image');
    mkdirSync(imageModules);
    transpileImageModules(imageModules);

    const server: DemoServer = await startServer({ modelDir, imageModules, mounts: { '/fixtures/': dirname(IMAGE) } });
    cleanups.push(() => server.close());
    const profile = temporaryDir('convc-chromium-');
    const context: BrowserContext = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 900, height: 700 },
      args: ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    cleanups.push(() => context.close());

    const page = await context.newPage();
    const messages: string[] = [];
    page.on('console', (message) => messages.push(`console.${message.type()}: ${message.text()}`));
    page.on('pageerror', (error) => messages.push(`page error: ${error.message}`));
    await page.goto(`${server.url}?image=/fixtures/shapes.png&runs=3`);
    await page.waitForFunction(() => ['done', 'error'].includes((window as DemoWindow).convcDemo?.status ?? ''), undefined, { timeout: 150_000, polling: 250 });
    const state = await page.evaluate(() => (window as DemoWindow).convcDemo!);
    const shown = await page.$$eval('#top li', (items) =>
      items.map((item) => ({ index: Number((item as HTMLElement).dataset.index), label: item.querySelector('.label')?.textContent ?? '', prob: item.querySelector('.prob')?.textContent ?? '' })),
    );
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT });
    if (process.env.UPDATE_SCREENSHOT === '1') copyFileSync(SCREENSHOT, repoPath('examples/browser/screenshot.png'));
    expect(state.status, `${state.error ?? ''}\n${messages.join('\n')}`).toBe('done');

    // (a) A WebGPU adapter, named by its info.
    console.log(`browser demo: adapter ${state.adapter} ${JSON.stringify(state.adapterInfo)}; ${state.msPerRun?.toFixed(1)} ms per run (${state.timing})`);
    expect(state.adapterInfo?.vendor || state.adapterInfo?.architecture || state.adapterInfo?.description).toBeTruthy();

    // (b) The page's preprocessing, from pixels it decoded itself, against Node's from sharp's.
    const { data: rgb, info } = await sharp(IMAGE).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const expectedInput = imagenetEval({ width: info.width, height: info.height, channels: 3, data: new Uint8Array(rgb.buffer, rgb.byteOffset, rgb.length) }, SIZE);
    const inputDifference = maxAbsDifference(state.input ?? [], expectedInput.data);
    console.log(`browser demo: input max |page - node| = ${inputDifference}`);
    expect(inputDifference).toBeLessThanOrEqual(INPUT_TOLERANCE);

    // (c) The logits, against the reference executor on the graph and weights compile used.
    const { graph } = loadModel(MODEL, { size: { batch: 1, height: SIZE, width: SIZE }, note: () => {} });
    const expected = executeReference(graph, randomWeights(graph, SEED), { shape: [1, 3, SIZE, SIZE], data: expectedInput.data });
    const logitsDifference = scaledDifference(Float32Array.from(state.logits ?? []), expected.data);
    console.log(`browser demo: logits scaled difference ${logitsDifference.toExponential(2)}`);
    expect(logitsDifference).toBeLessThan(LOGITS_RTOL);

    // (d) The list on the page is the reference's top 5. Its order is only meaningful where
    // neighbouring logits are further apart than the kernels' error: say so if the seed ties.
    const reference = topClasses(expected.data, 6);
    const scale = expected.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    for (let k = 0; k < 5; k++) {
      const gap = expected.data[reference[k].index] - expected.data[reference[k + 1].index];
      expect(gap, `reference logits ${k + 1} and ${k + 2} nearly tie; choose another SEED`).toBeGreaterThan(2 * LOGITS_RTOL * scale);
    }
    expect(shown.map(({ index, label }) => ({ index, label }))).toEqual(reference.slice(0, 5).map(({ index, label }) => ({ index, label })));
    for (const [k, { prob }] of shown.entries()) expect(Math.abs(Number.parseFloat(prob) - reference[k].prob * 100), prob).toBeLessThan(0.006);
    console.log(`browser demo: top 5 ${shown.map((c) => `${c.label} ${c.prob}`).join(', ')}; test ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }, 180_000);
});
