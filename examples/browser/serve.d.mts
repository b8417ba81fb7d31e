// Types for serve.mjs, which stays plain JavaScript so that `node examples/browser/serve.mjs` runs
// without a build; test/browser/browser.test.ts imports it.

export interface DemoServerOptions {
  /** A `convc compile` output: model.js and weights.bin, served at /model/. */
  readonly modelDir: string;
  /** Where preprocess.js and classes.js are, served at /convc/image/; dist/image by default. */
  readonly imageModules?: string;
  /** More folders to serve, by URL prefix (e.g. { '/fixtures/': dir }). */
  readonly mounts?: Readonly<Record<string, string>>;
  /** 0 (the default) picks a free port. */
  readonly port?: number;
  readonly host?: string;
}

export interface DemoServer {
  /** The page's URL, e.g. http://127.0.0.1:40123/ */
  readonly url: string;
  close(): Promise<void>;
}

/** dist/image of this repository. */
export const defaultImageModules: string;

export function startServer(options: DemoServerOptions): Promise<DemoServer>;
