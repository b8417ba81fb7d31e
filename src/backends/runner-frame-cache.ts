// The on-disk cache of a runner frame (the generated runner's model-independent code, built with
// ts-morph): one JSON file per version in the project cache, keyed by a hash of the source files
// that build the frame and the versions of ts-morph and its TypeScript, so an edit or an upgrade
// builds a new frame. A missing, unreadable or corrupt file, or an unwritable cache directory,
// only means building it again. Both runners' frames (WGSL and CUDA) are kept so.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as TsMorph from 'ts-morph';
import { packageRoot } from '../util/package-root.js';

/** The cache directory: $CONVC_CACHE_DIR, else the package's .cache/convc. */
export function runnerCacheDirectory(): string {
  const dir = process.env.CONVC_CACHE_DIR;
  return dir !== undefined && dir !== '' ? resolve(dir) : join(packageRoot(), '.cache', 'convc');
}

/** A frame in both languages the compile command writes. */
export interface CachedFrame {
  readonly ts: string;
  readonly js: string;
}

const require = createRequire(import.meta.url);

/**
 * A frame built in `file` (a ts-morph source file of `project`) in both languages: formatted,
 * and transpiled to JavaScript that reads like it (TypeScript's emitter indents by four).
 */
export function emitFrame(project: TsMorph.Project, file: TsMorph.SourceFile): CachedFrame {
  const { ts } = require('ts-morph') as typeof TsMorph;
  const format = { indentSize: 2, convertTabsToSpaces: true };
  file.formatText(format);
  const typescript = file.getFullText();
  const transpiled = ts.transpileModule(typescript, {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022, removeComments: false },
  }).outputText;
  const javascript = project.createSourceFile(`${file.getBaseNameWithoutExtension()}.js`, transpiled, { overwrite: true });
  javascript.formatText(format);
  return { ts: typescript, js: javascript.getFullText() };
}

/** What a frame depends on: its sources' text and the versions of ts-morph and its TypeScript. */
function frameKey(sourceUrls: readonly string[]): string {
  const tsMorphPackage = require.resolve('ts-morph/package.json');
  const commonPackage = createRequire(tsMorphPackage).resolve('@ts-morph/common/package.json');
  const version = (path: string) => (JSON.parse(readFileSync(path, 'utf8')) as { version?: unknown }).version;
  const hash = createHash('sha256');
  // This file too: it emits every frame (emitFrame).
  for (const url of [...sourceUrls, import.meta.url]) hash.update(readFileSync(fileURLToPath(url)));
  return hash.update(JSON.stringify([version(tsMorphPackage), version(commonPackage)])).digest('hex').slice(0, 32);
}

function readCachedFrame(path: string, key: string): CachedFrame | undefined {
  try {
    const entry = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    if (entry === null || typeof entry !== 'object') return undefined;
    const { key: entryKey, ts, js } = entry as Record<string, unknown>;
    return entryKey === key && typeof ts === 'string' && typeof js === 'string' && ts !== '' && js !== '' ? { ts, js } : undefined;
  } catch {
    return undefined;
  }
}

function writeCachedFrame(path: string, key: string, frame: CachedFrame): void {
  // Written beside the target and renamed, so a concurrent compile never reads half a file.
  const temporary = `${path}.${process.pid}-${Math.random().toString(36).slice(2, 8)}.partial`;
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(temporary, JSON.stringify({ key, ...frame }));
    renameSync(temporary, path);
  } catch {
    // No cache this time; the frame in hand is used all the same.
    try {
      rmSync(temporary, { force: true });
    } catch {
      // The directory itself is missing or not one: nothing was written.
    }
  }
}

/**
 * The frame `name` from the cache in `cacheDir` when it holds the version `sourceUrls` (file
 * URLs) make, else built by `build` and cached as `<name>-<key>.json`.
 */
export function loadCachedFrame(name: string, sourceUrls: readonly string[], build: () => CachedFrame, cacheDir: string): CachedFrame {
  let key: string;
  try {
    key = frameKey(sourceUrls);
  } catch {
    // The sources are not where their URLs say (a bundle, say): nothing safe to key on.
    return build();
  }
  const path = join(cacheDir, `${name}-${key}.json`);
  const cached = readCachedFrame(path, key);
  if (cached) return cached;
  const frame = build();
  writeCachedFrame(path, key, frame);
  return frame;
}
