// The demo page: a ConvNeXt compiled by `convc compile` classifies an image with WebGPU.
//
// The served files (examples/browser/serve.mjs) are the page, the compiled package at ./model/
// (model.js, the generated runner, and weights.bin) and convc's image modules at ./convc/image/
// (the ImageNet eval transform and class names, from `npm run build`).
//
// Query parameters: ?image=URL classifies that image once the model is ready (for automation;
// it goes through the same steps as a picked file); ?runs=N times N runs (default 5).
//
// window.convcDemo holds what the page did last, for people in the console and for the test
// (test/browser/browser.test.ts): status ('loading', 'ready', 'running', 'done' or 'error'),
// error, adapter, model, and after a run image, input (the preprocessed tensor), logits, top,
// msPerRun and timing.
import { decodeImage } from './decode.js';

const TOP = 5;
const params = new URLSearchParams(location.search);
const timedRuns = Math.max(1, Math.min(100, Number.parseInt(params.get('runs') ?? '5', 10) || 5));

const element = (id) => document.getElementById(id);
const demo = { status: 'loading' };
window.convcDemo = demo;

/** An error the page shows as `${stage}: ${message}`: what failed, then why. */
class DemoError extends Error {
  constructor(stage, message) {
    super(message);
    this.stage = stage;
  }
}

function say(status, text) {
  demo.status = status;
  element('status').textContent = text;
}

function showError(error, stage = 'Error') {
  const text = error instanceof DemoError ? `${error.stage}: ${error.message}` : `${stage}: ${error?.message ?? String(error)}`;
  demo.status = 'error';
  demo.error = text;
  element('status').textContent = '';
  element('error').textContent = text;
  element('error').hidden = false;
  console.error(text);
}

/** E.g. "google swiftshader (fallback adapter: ...)": whatever of the adapter's info is filled in. */
function describeAdapter(adapter) {
  const info = adapter.info ?? {};
  const name = info.description || [info.vendor, info.architecture, info.device].filter(Boolean).join(' ') || 'an unnamed adapter';
  return info.isFallbackAdapter ? `${name} (fallback adapter: a software rasterizer, slow)` : name;
}

/** The adapter, device, model and image modules; everything a classification needs. */
async function setUp() {
  if (!navigator.gpu) {
    throw new DemoError('No WebGPU', 'this browser has no navigator.gpu. Use a browser with WebGPU (a recent Chrome, Edge or Chromium, for one) over http://127.0.0.1, http://localhost or https; Chrome on Linux may need --enable-unsafe-webgpu.');
  }
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new DemoError('No WebGPU', 'navigator.gpu.requestAdapter() found no adapter (WebGPU may be disabled or blocklisted for this GPU; see chrome://gpu).');
  demo.adapter = describeAdapter(adapter);
  demo.adapterInfo = { ...Object.fromEntries(['vendor', 'architecture', 'device', 'description'].map((k) => [k, adapter.info?.[k] ?? ''])), isFallbackAdapter: adapter.info?.isFallbackAdapter === true };
  element('adapter').textContent = demo.adapter;

  const loading = (what, promise) => promise.catch((error) => Promise.reject(new DemoError(what, error.message)));
  const imageModules = 'convc\'s image modules failed to load (the server serves dist/image: run `npm run build`)';
  const [runner, preprocess, { topClasses }, weights] = await Promise.all([
    loading('The model failed to load (./model/model.js, from `convc compile`)', import('./model/model.js')),
    loading(imageModules, import('./convc/image/preprocess.js')),
    loading(imageModules, import('./convc/image/classes.js')),
    loading('The model failed to load', fetchOk('./model/weights.bin', 'compile with --weights FILE or --random-weights').then((response) => response.arrayBuffer())),
  ]);
  const { modelInfo } = runner;
  const [batch, channels, height, width] = modelInfo.inputShape;
  if (batch !== 1 || channels !== 3 || height !== width || modelInfo.outputShape.length !== 2) {
    throw new DemoError('The model does not fit this demo', `it takes [${modelInfo.inputShape}] and gives [${modelInfo.outputShape}]; the demo needs a classifier of batch 1 and a square RGB input`);
  }
  // The adapter's default limits: createModel says which kernel needs more, if one does. A model
  // compiled with --precision f16 needs shader-f16, which a device has only when asked for it.
  const f16 = modelInfo.precision === 'f16';
  if (f16 && !adapter.features.has('shader-f16')) {
    throw new DemoError('The model does not fit this adapter', 'it was compiled with --precision f16 and this adapter lacks the shader-f16 feature; compile it in f32 (the default)');
  }
  const device = await adapter.requestDevice({ requiredFeatures: f16 ? ['shader-f16'] : [] });
  device.lost.then((lost) => {
    if (lost.reason !== 'destroyed') showError(new DemoError('WebGPU device lost', lost.message));
  });
  device.addEventListener('uncapturederror', (event) => showError(new DemoError('WebGPU error', event.error.message)));
  let model;
  try {
    model = await runner.createModel(device, weights);
  } catch (error) {
    throw new DemoError('The model failed to load', error.message);
  }
  demo.model = { name: modelInfo.name, inputShape: modelInfo.inputShape, outputShape: modelInfo.outputShape, dispatches: modelInfo.dispatches, precision: modelInfo.precision };
  element('model').textContent = `${modelInfo.name}: [${modelInfo.inputShape.join(', ')}] → [${modelInfo.outputShape.join(', ')}], ${modelInfo.dispatches} dispatches, ${modelInfo.precision}`;
  addEventListener('pagehide', () => {
    model.destroy();
    device.destroy();
  });
  return { device, model, size: height, preprocess, topClasses };
}

async function fetchOk(url, hint) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${response.statusText}${hint ? ` (${hint})` : ''}`);
  return response;
}

/** Resolves once the page has drawn what changed so far. */
const painted = () => new Promise((done) => requestAnimationFrame(() => setTimeout(done)));

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Decode, preprocess, run once to warm up (its logits are the result), then time `timedRuns` runs. */
async function classify(setup, blob, name) {
  const { device, model, size, preprocess, topClasses } = setup;
  element('error').hidden = true;
  element('result').hidden = true;
  Object.assign(demo, { error: undefined, image: name, input: undefined, logits: undefined, top: undefined, msPerRun: undefined, runTimes: undefined, timing: undefined });
  say('running', `Decoding ${name}…`);
  let image;
  try {
    image = await decodeImage(device, blob);
  } catch (error) {
    throw new DemoError(`The image failed to decode (${name})`, error.message);
  }
  say('running', `Preprocessing ${name} (${image.width}x${image.height})…`);
  await painted(); // the status shows while a large photo is resized on this thread
  const input = preprocess.imagenetEval(image, size);
  drawCrop(input, preprocess);
  say('running', 'Running the model (one warm-up run)…');
  const logits = await model.run(input.data);
  const times = [];
  for (let i = 0; i < timedRuns; i++) {
    say('running', `Timing run ${i + 1} of ${timedRuns}…`);
    const start = performance.now();
    await model.run(input.data);
    times.push(performance.now() - start);
  }
  const top = topClasses(logits, TOP);
  const msPerRun = median(times);
  const timing = `median of ${timedRuns} run${timedRuns === 1 ? '' : 's'} after one warm-up; a run uploads the input, dispatches the kernels and reads the logits back`;
  showTop(top);
  element('time').textContent = `${msPerRun.toFixed(1)} ms per run`;
  element('timing').textContent = `(${timing})`;
  element('result').hidden = false;
  Object.assign(demo, { input: Array.from(input.data), logits: Array.from(logits), top, msPerRun, runTimes: times, timing });
  say('done', `Classified ${name} (${image.width}x${image.height}).`);
}

/** The crop the model sees, from the normalised tensor back to bytes. */
function drawCrop(input, { IMAGENET_MEAN: mean, IMAGENET_STD: std }) {
  const [, , height, width] = input.shape;
  const pixels = new ImageData(width, height);
  const plane = width * height;
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) pixels.data[p * 4 + c] = Math.round((input.data[c * plane + p] * std[c] + mean[c]) * 255);
    pixels.data[p * 4 + 3] = 255;
  }
  const canvas = element('crop');
  canvas.width = width;
  canvas.height = height;
  canvas.getContext('2d').putImageData(pixels, 0, 0);
}

function showTop(top) {
  const list = element('top');
  list.replaceChildren(
    ...top.map(({ index, label, prob }) => {
      const item = document.createElement('li');
      item.dataset.index = String(index);
      const name = document.createElement('span');
      name.className = 'label';
      name.textContent = label;
      const percent = document.createElement('span');
      percent.className = 'prob';
      percent.textContent = `${(prob * 100).toFixed(2)} %`;
      const bar = document.createElement('span');
      bar.className = 'bar';
      bar.style.width = `${(prob * 100).toFixed(2)}%`;
      item.append(name, percent, bar);
      return item;
    }),
  );
}

// One classification at a time, in the order asked for; each waits for the set-up and does
// nothing where it failed (its error is on the page).
const ready = setUp();
let queue = ready.then(
  () => say('ready', 'Ready: choose or drop an image.'),
  (error) => {
    if (demo.adapter === undefined) element('adapter').textContent = 'none';
    if (demo.model === undefined) element('model').textContent = 'not loaded';
    showError(error);
  },
);

/** Queues `task(setup)`; an error it throws is shown with `stage` unless it names its own. */
function enqueue(stage, task) {
  queue = queue.then(async () => {
    const setup = await ready.catch(() => undefined);
    if (setup === undefined) return;
    try {
      await task(setup);
    } catch (error) {
      showError(error, stage);
    }
  });
}

const classifyFile = (file) => enqueue('The run failed', (setup) => classify(setup, file, file.name));

element('file').addEventListener('change', (event) => {
  const [file] = event.target.files;
  if (file) classifyFile(file);
});

const drop = element('drop');
for (const type of ['dragenter', 'dragover']) {
  document.addEventListener(type, (event) => {
    event.preventDefault();
    drop.classList.add('dragging');
  });
}
document.addEventListener('dragleave', (event) => {
  if (event.relatedTarget === null) drop.classList.remove('dragging');
});
document.addEventListener('drop', (event) => {
  event.preventDefault();
  drop.classList.remove('dragging');
  const [file] = event.dataTransfer?.files ?? [];
  if (file) classifyFile(file);
});

const imageUrl = params.get('image');
if (imageUrl !== null) {
  const name = decodeURIComponent(imageUrl.split('/').pop() || imageUrl);
  enqueue('The run failed', async (setup) => {
    let blob;
    try {
      blob = await (await fetchOk(new URL(imageUrl, location.href))).blob();
    } catch (error) {
      throw new DemoError(`The image failed to load (${name})`, error.message);
    }
    await classify(setup, blob, name);
  });
}
