#!/usr/bin/env node
// A static server for the browser demo, with no dependencies: the page (this folder) at /, a
// package from `convc compile` at /model/, and convc's image modules (dist/image, built by
// `npm run build`) at /convc/image/. WebGPU needs a secure context, which http://127.0.0.1 is.
//
//   node examples/browser/serve.mjs DIR [--port 8080]
//
// The browser test starts the same server through startServer().
import { createReadStream, existsSync, realpathSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const repository = resolve(here, '../..');
export const defaultImageModules = join(repository, 'dist/image');

const mimeTypes = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
  '.wgsl': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.bin': 'application/octet-stream',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.bmp': 'image/bmp',
  '.avif': 'image/avif',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

/**
 * The file under `root` that `path` (the URL path below the mount, still percent-encoded) names,
 * or undefined where it names none or would leave `root` (`..`, an encoded slash, a symbolic
 * link pointing out).
 */
function fileUnder(root, path) {
  let decoded;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return undefined;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return undefined;
  const segments = decoded.split('/').filter((s) => s !== '');
  if (segments.some((s) => s === '..' || s === '.')) return undefined;
  const candidate = join(root, ...segments);
  try {
    const real = realpathSync(candidate);
    const back = relative(realpathSync(root), real);
    if (back === '..' || back.startsWith(`..${sep}`) || isAbsolute(back)) return undefined;
    return statSync(real).isFile() ? real : undefined;
  } catch {
    return undefined;
  }
}

function send(response, status, text) {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  response.end(`${text}\n`);
}

/**
 * Starts the server on 127.0.0.1. `modelDir`: a `convc compile` output (model.js, weights.bin);
 * `imageModules`: where preprocess.js and classes.js are (dist/image by default); `mounts`: more
 * folders to serve, by URL prefix ('/fixtures/': a folder), as the test serves its images;
 * `port`: 0 picks a free one. Resolves to the page's URL and a function that stops the server.
 */
export async function startServer({ modelDir, imageModules = defaultImageModules, mounts = {}, port = 0, host = '127.0.0.1' }) {
  const roots = [
    ['/model/', resolve(modelDir)],
    ['/convc/image/', resolve(imageModules)],
    ...Object.entries(mounts).map(([prefix, dir]) => [prefix.endsWith('/') ? prefix : `${prefix}/`, resolve(dir)]),
    ['/', here],
  ];
  const server = createServer((request, response) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('allow', 'GET, HEAD');
      send(response, 405, 'only GET and HEAD');
      return;
    }
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    const [prefix, root] = roots.find(([p]) => path.startsWith(p));
    const rest = path === '/' ? 'index.html' : path.slice(prefix.length);
    const file = fileUnder(root, rest);
    if (file === undefined) {
      send(response, 404, `not found: ${path}`);
      return;
    }
    // The model and the image modules change with every compile and build: never cache.
    response.writeHead(200, {
      'content-type': mimeTypes[extname(file).toLowerCase()] ?? 'application/octet-stream',
      'content-length': statSync(file).size,
      'cache-control': 'no-store',
    });
    if (request.method === 'HEAD') response.end();
    else createReadStream(file).pipe(response);
  });
  await new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      done();
    });
  });
  const address = server.address();
  const url = `http://${host}:${address.port}/`;
  const close = () =>
    new Promise((done) => {
      server.close(() => done());
      server.closeAllConnections();
    });
  return { url, close };
}

async function commandLine() {
  const usage = 'usage: node examples/browser/serve.mjs DIR [--port 8080]   (DIR: from `convc compile MODEL -o DIR --random-weights` or --weights)';
  let parsed;
  try {
    parsed = parseArgs({ allowPositionals: true, options: { port: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  } catch (error) {
    console.error(`${error.message}\n${usage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (positionals.length !== 1) {
    console.error(usage);
    return 2;
  }
  const port = values.port === undefined ? 8080 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`--port needs a port number, not '${values.port}'`);
    return 2;
  }
  const modelDir = positionals[0];
  for (const name of ['model.js', 'weights.bin']) {
    if (!existsSync(join(modelDir, name))) {
      console.error(`${join(modelDir, name)} is missing: compile a model for WebGPU with weights, e.g.\n  node bin/convc.js compile models/convnextv2-atto.cnx -o ${modelDir} --random-weights`);
      return 1;
    }
  }
  for (const name of ['preprocess.js', 'classes.js']) {
    if (!existsSync(join(defaultImageModules, name))) {
      console.error(`${join(defaultImageModules, name)} is missing: run \`npm run build\` first`);
      return 1;
    }
  }
  const { url } = await startServer({ modelDir, port });
  console.log(`serving the convc demo with ${resolve(modelDir)} at ${url}  (Ctrl-C stops)`);
  return undefined;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  commandLine().then(
    (code) => {
      if (code !== undefined) process.exitCode = code;
    },
    (error) => {
      console.error(error.code === 'EADDRINUSE' ? `port in use: ${error.message}; choose another with --port` : error);
      process.exitCode = 1;
    },
  );
}
