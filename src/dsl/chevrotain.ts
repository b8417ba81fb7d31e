// chevrotain, loaded from its one-file build. The package's entry point is its unbundled build:
// hundreds of ES modules with lodash-es, which take Node longer to load than convc takes to compile
// a model. The same release publishes the same API bundled into lib/chevrotain.mjs; the entry
// point is used only where that file is missing.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as Chevrotain from 'chevrotain';

const bundle = join(dirname(createRequire(import.meta.url).resolve('chevrotain')), '..', 'chevrotain.mjs');
const chevrotain = (await import(existsSync(bundle) ? pathToFileURL(bundle).href : 'chevrotain')) as typeof Chevrotain;

export const { createToken, EmbeddedActionsParser, Lexer } = chevrotain;
export type { IToken, TokenType } from 'chevrotain';
